"""The watcher over an in-memory chain: each alert once across restarts and failed commits, confirmations,
reorgs (orphaned alerts reorged out, re-included ones revived), poisoning dropped and counted, the risky
counterparty rule, and retro-alerts on new labels — on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlmodel import col, select

from storage.db import Database
from storage.models import RiskCheckRow
from storage.ops_models import ChainCursor, IncidentRow, OutboxMessage
from tests.support.fake_chain import FakeChain, move
from tracing.chain.transfer import TransferKind
from tracing.labels import Category, Label, LabelBook, LabelSet
from tracing.monitor import watcher as watcher_module
from tracing.monitor.alerts import AlertBook, AlertKind, AlertStatus, retro_alerts
from tracing.monitor.clock import ManualClock
from tracing.monitor.watch import WatchBook
from tracing.monitor.watcher import ChainFeed, LabelRisk, Step, Watcher, watch_status

W = "0x" + "a1" * 20
X = "0x" + "b2" * 20
Y = "0x" + "c3" * 20
TOKEN = "0x" + "d4" * 20
FORWARDER = "0x" + "e5" * 20
CHAT = "-1001"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def watcher(db: Database, chain: FakeChain, clock: ManualClock, **feed: int) -> Watcher:
    options = {"confirmations": 2, "start_block": 1} | feed
    return Watcher(db, ChainFeed("eth", chain, poll_interval=1, **options), risk=LabelRisk(LabelBook(db)), clock=clock)


def watch(db: Database, address: str = W, chat: str = CHAT, min_amount: Decimal | None = None) -> int:
    created, _ = WatchBook(db).watch(
        chain="eth",
        address=address,
        platform="telegram",
        chat=chat,
        channel=True,
        created_by="telegram:7",
        min_amount=min_amount,
    )
    return created.id


def outbox(db: Database) -> list[tuple[str, int | None]]:
    with db.session() as session:
        rows = session.scalars(select(OutboxMessage).order_by(col(OutboxMessage.id)))
        return [(r.kind, r.alert_id or r.incident_id) for r in rows]


def three_movements(chain: FakeChain) -> None:
    chain.mine(move(W, X, 10**18, tx=1))  # ETH out
    chain.mine(move(W, Y, 5 * 10**6, tx=2, kind=TransferKind.ERC20, position="log:0", token=TOKEN, decimals=6))
    chain.mine(
        move(X, FORWARDER, 2 * 10**18, tx=3),  # not W's: no alert
        move(FORWARDER, W, 2 * 10**18, tx=3, kind=TransferKind.INTERNAL, position="trace:0"),  # internal in
    )


async def test_each_movement_alerts_once_across_restarts(db: Database, clock: ManualClock) -> None:
    chain = FakeChain()
    watch(db)
    three_movements(chain)
    first = watcher(db, chain, clock)
    assert await first.catch_up() == 3
    alerts = AlertBook(db).all()
    assert [(a.direction.value if a.direction else "", a.transfer_kind, a.block_number) for a in alerts] == [
        ("out", "native", 1),
        ("out", "erc20", 2),
        ("in", "internal", 3),
    ]
    assert {a.status for a in alerts} == {AlertStatus.PROVISIONAL, AlertStatus.CONFIRMED}
    assert first.cursor() == (3, chain.blocks[3].hash)
    # a second watcher process on the same store, and the first one again: nothing new
    assert await watcher(db, chain, clock).catch_up() == 0
    assert await first.step() is Step.IDLE
    assert len(AlertBook(db).all()) == 3
    assert Counter(kind for kind, _ in outbox(db))["alert"] == 3
    with db.session() as session:
        incidents = session.scalars(select(IncidentRow)).all()
    assert [(i.alert_count, i.state) for i in incidents] == [(3, "open")]  # one incident for the burst


async def test_a_failed_commit_leaves_nothing_and_the_block_is_redone(
    db: Database, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = FakeChain()
    watch(db)
    chain.mine(move(W, X, 1, tx=1), move(W, Y, 2, tx=2))
    real = watcher_module.record_alert
    calls = 0

    def crash_on_second(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("killed mid-block")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(watcher_module, "record_alert", crash_on_second)
    with pytest.raises(RuntimeError):
        await watcher(db, chain, clock).step()
    assert AlertBook(db).all() == [] and outbox(db) == []
    assert watcher(db, chain, clock).cursor() == (0, chain.blocks[0].hash)
    monkeypatch.setattr(watcher_module, "record_alert", real)
    assert await watcher(db, chain, clock).catch_up() == 1
    assert len(AlertBook(db).all()) == 2


async def test_provisional_until_confirmations_then_edited(db: Database, clock: ManualClock) -> None:
    chain = FakeChain()
    watch(db)
    chain.mine(move(W, X, 1, tx=1))
    follower = watcher(db, chain, clock, confirmations=2)
    await follower.catch_up()
    (alert,) = AlertBook(db).all()
    assert alert.status is AlertStatus.PROVISIONAL
    chain.mine_empty(1)
    await follower.catch_up()
    assert AlertBook(db).get(alert.id).status is AlertStatus.PROVISIONAL  # type: ignore[union-attr]
    chain.mine_empty(1)
    await follower.catch_up()
    confirmed = AlertBook(db).get(alert.id)
    assert confirmed is not None and confirmed.status is AlertStatus.CONFIRMED
    assert confirmed.confirmed_at == clock.now()
    assert outbox(db) == [("alert", alert.id), ("alert_edit", alert.id)]


async def test_reorg_reorgs_out_orphaned_alerts_and_follows_the_new_branch(db: Database, clock: ManualClock) -> None:
    chain = FakeChain()
    watch(db)
    chain.mine(move(W, X, 1, tx=1))
    chain.mine(move(W, X, 2, tx=2))  # will be re-included in the new branch
    chain.mine(move(W, X, 3, tx=3))  # will vanish
    follower = watcher(db, chain, clock, confirmations=5)
    await follower.catch_up()
    before = {a.tx_hash[-1:]: a for a in AlertBook(db).all() if a.tx_hash}
    assert set(before) == {"1", "2", "3"}

    chain.fork(keep=1)
    chain.mine()
    chain.mine(move(W, X, 2, tx=2), move(Y, W, 4, tx=4))  # tx 2 again, one block later; tx 4 is new
    chain.mine()
    assert await follower.step() is Step.REORG
    await follower.catch_up()

    after = {a.tx_hash[-1:]: a for a in AlertBook(db).all() if a.tx_hash}
    assert after["1"].status is AlertStatus.PROVISIONAL and after["1"].block_hash == chain.blocks[1].hash
    assert after["3"].status is AlertStatus.REORGED_OUT
    assert after["2"].id == before["2"].id  # revived, not doubled
    assert after["2"].status is AlertStatus.PROVISIONAL and after["2"].block_number == 3
    assert after["2"].block_hash == chain.blocks[3].hash
    assert after["4"].status is AlertStatus.PROVISIONAL and after["4"].block_number == 3
    assert len(after) == 4
    edits = Counter(ref for kind, ref in outbox(db) if kind == "alert_edit")
    assert edits == {before["2"].id: 2, before["3"].id: 1}  # 2: reorged out then back; 3: reorged out
    assert follower.cursor() == (4, chain.blocks[4].hash)
    with db.session() as session:
        assert session.get(ChainCursor, "eth").reorgs == 1  # type: ignore[union-attr]


async def test_reorg_deeper_than_the_kept_blocks(db: Database, clock: ManualClock) -> None:
    chain = FakeChain()
    watch(db)
    chain.mine_empty(5)
    chain.mine(move(W, X, 1, tx=1))
    follower = watcher(db, chain, clock, keep_blocks=2, confirmations=1)
    await follower.catch_up()
    chain.fork(keep=2)
    chain.mine_empty(5)
    await follower.catch_up()
    (alert,) = AlertBook(db).all()
    assert alert.status is AlertStatus.REORGED_OUT
    assert follower.cursor() == (7, chain.blocks[7].hash)


async def test_poisoning_is_dropped_and_counted(db: Database, clock: ManualClock) -> None:
    real = "0x1234" + "5" * 32 + "abcd"
    fake = "0x1234" + "9" * 32 + "abcd"
    chain = FakeChain()
    watch(db)
    chain.mine(move(W, real, 10**18, tx=1))  # a real payment: `real` becomes a known counterparty
    chain.mine(
        move(fake, W, 1, tx=2),  # dust from a look-alike
        move(W, fake, 0, tx=3, kind=TransferKind.ERC20, position="log:0", token=TOKEN, decimals=6),  # zero-value
        move(Y, W, 5, tx=4),  # a genuine new counterparty
    )
    follower = watcher(db, chain, clock)
    await follower.catch_up()
    assert [a.tx_hash[-1:] for a in AlertBook(db).all() if a.tx_hash] == ["1", "4"]
    assert follower.stats.poisoning_dropped == 2
    (status,) = watch_status(db)
    assert (status.chain, status.block, status.alerts, status.poisoning_dropped) == ("eth", 2, 2, 2)


async def test_risky_counterparty_alerts_below_the_minimum(db: Database, clock: ManualClock) -> None:
    LabelBook(db).add(Label(address=Y, category=Category.SANCTIONS, name="Test SDN", source="test"))
    chain = FakeChain()
    watch(db, min_amount=Decimal(100))
    chain.mine(move(X, W, 1, tx=1), move(Y, W, 1, tx=2))
    await watcher(db, chain, clock).catch_up()
    (alert,) = AlertBook(db).all()
    assert alert.kind is AlertKind.COUNTERPARTY_RISK and alert.counterparty == Y
    assert alert.details["counterparty_level"] == "severe"


async def test_unwatched_address_stops_alerting(db: Database, clock: ManualClock) -> None:
    chain = FakeChain()
    watch(db)
    follower = watcher(db, chain, clock)
    chain.mine(move(W, X, 1, tx=1))
    await follower.catch_up()
    WatchBook(db).unwatch(chain="eth", address=W, platform="telegram", chat=CHAT)
    chain.mine(move(W, X, 1, tx=2))
    await follower.catch_up()
    assert len(AlertBook(db).all()) == 1


async def test_two_chats_watching_one_address_each_get_one_alert(db: Database, clock: ManualClock) -> None:
    chain = FakeChain()
    first, second = watch(db, chat="-1"), watch(db, chat="-2")
    chain.mine(move(W, X, 1, tx=1))
    await watcher(db, chain, clock).catch_up()
    alerts = AlertBook(db).all()
    assert sorted((a.watch_id, a.chat) for a in alerts) == [(first, "-1"), (second, "-2")]
    assert len({a.incident_id for a in alerts}) == 2


# -- retro-alerts --------------------------------------------------------------------------------------------

SDN = LabelSet("test-sdn", "2026-01-01", "https://example.org/sdn", "public domain")


def sdn(*addresses: str) -> list[Label]:
    return [Label(address=a, category=Category.SANCTIONS, name=f"SDN {a[-4:]}", source="test-sdn") for a in addresses]


def test_new_sanctions_label_reaches_watchers_and_recent_risk_checkers(db: Database, clock: ManualClock) -> None:
    watch(db, chat="-1")
    now = clock.now()
    with db.session() as session:
        session.add(RiskCheckRow(address=X, chain="eth", platform="slack", chat="C1", actor="slack:U1", at=now))
        session.add(
            RiskCheckRow(
                address=Y, chain="eth", platform="slack", chat="C2", actor="slack:U2", at=now - timedelta(days=91)
            )
        )
    created: list[object] = []
    book = LabelBook(db, hooks=[lambda s, b, a: created.extend(retro_alerts(db, b, a, session=s, clock=clock))])
    book.replace_set(SDN, sdn(W))
    book.replace_set(SDN, sdn(W, X, Y))  # a newer list: X and Y added
    book.replace_set(SDN, sdn(W, X, Y))  # the same list again: nothing new
    alerts = AlertBook(db).all()
    assert sorted((a.platform, a.chat, a.address) for a in alerts) == [("slack", "C1", X), ("telegram", "-1", W)]
    assert all(a.kind is AlertKind.LABEL_CHANGE and a.status is AlertStatus.CONFIRMED for a in alerts)
    assert len(created) == 2
    assert sum(1 for kind, _ in outbox(db) if kind == "alert") == 2


def test_delisting_and_non_risk_labels_do_not_alert(db: Database, clock: ManualClock) -> None:
    watch(db)
    before = {(W, ("*", "cex", "exchange", "Some exchange"))}
    assert retro_alerts(db, set(), before, clock=clock) == []  # an exchange label is no risk
    assert retro_alerts(db, {(W, ("*", "s", "sanctions", "SDN"))}, set(), clock=clock) == []  # removed
    assert AlertBook(db).all() == []


def test_label_import_through_the_app_hook_alerts(db: Database) -> None:
    from bot.app import build_app
    from storage.settings import Settings

    settings = Settings(_env_file=None, demo_data=False)  # type: ignore[call-arg]
    the_app = build_app(settings, database_url=db.url)
    try:
        watch(the_app.db)
        the_app.investigator.labels.replace_set(SDN, sdn(W))
        (alert,) = AlertBook(the_app.db).all()
        assert alert.kind is AlertKind.LABEL_CHANGE and "SDN" in alert.reasons[0]
    finally:
        the_app.close()
