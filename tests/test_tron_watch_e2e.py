"""End to end on TRON (issue 14): `/watch` a `T…` address from Telegram and from Slack, then move USDT on a real
anvil chain that answers as TRON (its chain id, and TRON's `/jsonrpc` rules through `tests/support/tron_server.py`),
with the test token's code placed at USDT-TRC20's own 20 bytes (TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t). The watcher and
the notifier run for real and the recording chat servers get one alert each: the amount in units and USD
("25 USDT ($25.00)"), the counterparty as `T…`, the transaction id in TRON's form (no `0x`); confirmed at TRON's
solidified depth (19 blocks), and one incident holds both alerts. Then Tether freezes an address someone checked:
the watcher makes the freeze a label once its block is solidified, and the check's chat gets a label alert; a node
whose logs name another block than the one followed gets its freeze recorded only once it agrees."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.backends.base import Backend
from bot.backends.testing import TestBackend
from bot.cli.watch import run_watch
from bot.messages import Identity
from storage import Database, KeyValueRow
from storage.settings import Settings
from tests.support.anvil import AnvilNode
from tests.support.chat_harness import sending_chats
from tests.support.contracts import CONTRACTS_DIR, Contract, deploy, load_artifact
from tests.support.fixtures import require_anvil
from tests.support.slack_server import FakeSlack
from tests.support.telegram_server import Call, FakeTelegram
from tests.support.tron_server import TRON_CHAIN_ID, USDT, TronServer
from tracing.chain.address import tron_from_hex, tron_to_hex
from tracing.chain.config import WELL_KNOWN, ChainConfig, get_chain, load_chains
from tracing.chain.tron import rpc_source
from tracing.labels import Category, LabelBook, freeze_cursor
from tracing.monitor.alerts import AlertBook, AlertKind
from tracing.monitor.watcher import ChainFeed, Watcher, watch_status

pytestmark = pytest.mark.anvil

SUN = 10**6
TG_CHAT = "-1007"
SLACK_CHAT = "C0TRON"


@dataclass
class Tron:
    node: AnvilNode
    server: TronServer
    usdt: Contract
    heidi: str
    bob: str


def put_usdt(node: AnvilNode) -> Contract:
    """The test token's runtime code at USDT-TRC20's address, with symbol "USDT" and 6 decimals in its storage
    (slots 1 and 2 of TestToken's layout: a short string holds its bytes and twice its length in the last byte)."""
    address = tron_to_hex(USDT)
    runtime = json.loads((CONTRACTS_DIR / "TestToken.json").read_text())["deployedBytecode"]
    rpc = node.rpc
    rpc.call("anvil_setCode", address, runtime)
    rpc.call("anvil_setStorageAt", address, "0x1", "0x" + (b"USDT".ljust(31, b"\0") + bytes([8])).hex())
    rpc.call("anvil_setStorageAt", address, "0x2", "0x" + f"{6:064x}")
    return Contract(rpc, address, load_artifact("TestToken"))


@pytest.fixture
async def tron() -> AsyncIterator[Tron]:
    require_anvil()
    with AnvilNode(chain_id=TRON_CHAIN_ID) as node:
        usdt = put_usdt(node)
        heidi, bob = node.rpc.accounts()[:2]
        node.rpc.wait_receipt(usdt.transact("mint", heidi, 1_000 * SUN, sender=heidi))
        async with TronServer(upstream=node.url) as server:
            yield Tron(node, server, usdt, tron_from_hex(heidi), tron_from_hex(bob))


@pytest.fixture
def tron_app(tron: Tron, tmp_path: Path, prepared_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    monkeypatch.setenv("TRON_RPC_URL", tron.server.jsonrpc_url)
    monkeypatch.setenv("TRON_API_URL", tron.server.url)  # types the TRX values through /wallet/getblockbynum
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        demo_data=False,
        chains="eth,tron",
        allowed_chats=[f"telegram:{TG_CHAT}", f"slack:{SLACK_CHAT}"],
        officers=["telegram:5", "slack:U5"],
    )
    the_app = build_app(settings, database_url=prepared_database_url)
    yield the_app
    the_app.close()


@pytest.fixture
async def backends(tron_app: App) -> AsyncIterator[tuple[FakeTelegram, FakeSlack, dict[str, Backend]]]:
    async with sending_chats(tron_app) as c:
        yield c.telegram, c.slack, {"telegram": c.telegram_backend, "slack": c.slack_backend}


def text_of(call: Call) -> str:
    return str(call.params.get("text", ""))


async def test_a_watched_tron_address_moving_usdt_alerts_on_telegram_and_slack_in_units_and_usd(
    tron: Tron, tron_app: App, backends: tuple[FakeTelegram, FakeSlack, dict[str, Backend]]
) -> None:
    telegram, slack, chat_backends = backends
    for platform, chat, user in (("telegram", TG_CHAT, "5"), ("slack", SLACK_CHAT, "U5")):
        front = TestBackend(tron_app.bot, platform=platform, chat_id=chat, user_id=user)
        said = await front.say(f"/watch {tron.heidi} --channel", user=Identity(platform, user, "anna"))
        assert "tron" in said.text and tron.heidi in said.text, said.text
    chain = get_chain("tron", load_chains(tron_app.settings.chain_variables()))
    assert chain.confirmations == 19 and chain.rpc_urls == (tron.server.jsonrpc_url,)
    start = tron.node.rpc.mine()
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_watch(tron_app, [chain], stop, backends=chat_backends, poll_interval=0.1, start_block=start)
    )
    try:
        usdt_tx = await asyncio.to_thread(
            tron.usdt.transact, "transfer", tron_to_hex(tron.bob), 25 * SUN, sender=tron_to_hex(tron.heidi)
        )
        usdt_id = usdt_tx.removeprefix("0x")  # TRON's transaction id, as Tronscan shows it
        await telegram.wait_for("sendMessage", lambda c: usdt_id in text_of(c), within=60)
        await slack.wait_for("chat.postMessage", lambda c: usdt_id in c.text, within=60)
        trx_tx = await asyncio.to_thread(
            tron.node.rpc.send_transaction,
            {"from": tron_to_hex(tron.bob), "to": tron_to_hex(tron.heidi), "value": 7 * SUN, "gas": 21_000},
        )
        await telegram.wait_for("sendMessage", lambda c: trx_tx[2:] in text_of(c), within=60)
        await slack.wait_for("chat.postMessage", lambda c: trx_tx[2:] in c.text, within=60)
        # TRON's solidified depth: 18 blocks on top leave the USDT alert provisional, the 19th confirms it
        await asyncio.to_thread(tron.node.rpc.mine, 17)
        await asyncio.sleep(1.0)
        assert not [c for c in telegram.sent("editMessageText") if "✅ confirmed" in text_of(c)]
        await asyncio.to_thread(tron.node.rpc.mine, 2)
        await telegram.wait_for("editMessageText", lambda c: usdt_id in text_of(c) and "✅ confirmed" in text_of(c))
        await asyncio.sleep(1.0)  # anything extra would show up now
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)

    tg_posts = [c for c in telegram.sent("sendMessage") if c.result is not None]
    slack_posts = slack.sent("chat.postMessage")
    assert len(tg_posts) == 2 and len(slack_posts) == 2
    for text in (text_of(tg_posts[0]), slack_posts[0].text):
        assert "Sent 25 USDT ($25.00) to" in text and "provisional" in text, text
        assert tron.bob in text and f"tx {usdt_id} in block" in text
        assert "0x" + tron_to_hex(tron.bob)[2:6] not in text  # never the hex form
    shown = (text_of(tg_posts[0]), json.dumps([slack_posts[0].params.get(k) for k in ("text", "blocks")]))
    assert all("0x" + usdt_id not in text for text in shown)  # (the Slack post's metadata keeps the stored form)
    for text in (text_of(tg_posts[1]), slack_posts[1].text):
        assert "Received 7 TRX" in text and tron.bob in text, text
    incidents = await TestBackend(tron_app.bot, platform="telegram", chat_id=TG_CHAT, user_id="5").say(
        "/incidents", user=Identity("telegram", "5", "anna")
    )
    assert "Activity of watched " + tron.heidi[:5] in incidents.text and "on tron (2 alerts)" in incidents.text
    assert not [m for m in tron.server.rpc_calls if m.startswith(("trace_", "debug_"))]
    assert tron.server.wallet_calls >= 1  # the TRX value was checked against its transaction's type


@dataclass
class Frozen:
    node: AnvilNode
    server: TronServer
    usdt: Contract
    owner: str
    heidi: str


@pytest.fixture
async def frozen() -> AsyncIterator[Frozen]:
    """Tether's contract at USDT-TRC20's 20 bytes: the TetherLikeToken's code, its owner in slot 4."""
    require_anvil()
    with AnvilNode(chain_id=TRON_CHAIN_ID) as node:
        owner, heidi = node.rpc.accounts()[:2]
        model = deploy(node.rpc, "TetherLikeToken", "Tether USD", "USDT", 6, sender=owner)
        usdt = tron_to_hex(USDT)
        node.rpc.call("anvil_setCode", usdt, node.rpc.get_code(model.address))
        node.rpc.call("anvil_setStorageAt", usdt, "0x4", "0x" + owner[2:].rjust(64, "0"))
        token = Contract(node.rpc, usdt, model.artifact)
        node.rpc.wait_receipt(token.transact("issue", heidi, 100 * SUN, sender=owner))
        async with TronServer(upstream=node.url) as server:
            yield Frozen(node, server, token, owner, tron_from_hex(heidi))


def freeze_mark(app: App) -> int | None:
    with app.db.session() as session:
        row = session.get(KeyValueRow, "watch-freezes:tron")
        return int(str(row.value["last_block"])) if row is not None else None


async def solidified(app: App, node: AnvilNode, within: float = 30) -> int:
    """Wait until the watcher has recorded the freezes of every block 19 under the head; that block."""
    wanted = node.rpc.block_number() - 19
    deadline = asyncio.get_running_loop().time() + within
    while freeze_mark(app) != wanted:
        assert asyncio.get_running_loop().time() < deadline, f"freezes recorded to {freeze_mark(app)}, not {wanted}"
        await asyncio.sleep(0.1)
    return wanted


async def test_a_freeze_becomes_a_label_when_its_block_is_solidified_and_alerts_who_checked_the_address(
    frozen: Frozen, tmp_path: Path, prepared_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRON_RPC_URL", frozen.server.jsonrpc_url)
    monkeypatch.setenv("TRON_API_URL", frozen.server.url)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        demo_data=False,
        chains="eth,tron",
        allowed_chats=[f"telegram:{TG_CHAT}"],
    )
    app = build_app(settings, database_url=prepared_database_url)
    try:
        front = TestBackend(app.bot, platform="telegram", chat_id=TG_CHAT, user_id="5")
        checked = await front.say(f"/risk {frozen.heidi}", user=Identity("telegram", "5", "anna"))
        assert "FROZEN" not in checked.text, checked.text
        chain = get_chain("tron", load_chains(app.settings.chain_variables()))
        stop = asyncio.Event()
        task = asyncio.create_task(run_watch(app, [chain], stop, poll_interval=0.1, start_block=frozen.node.rpc.mine()))
        try:
            freeze = await asyncio.to_thread(
                frozen.usdt.transact, "addBlackList", tron_to_hex(frozen.heidi), sender=frozen.owner
            )
            block = int((await asyncio.to_thread(frozen.node.rpc.wait_receipt, freeze))["blockNumber"], 16)
            await asyncio.to_thread(frozen.node.rpc.mine, 18)  # 18 on top: not solidified, no label yet
            assert await solidified(app, frozen.node) == block - 1
            assert not app.investigator.labels.for_address(frozen.heidi, "tron")
            await asyncio.to_thread(frozen.node.rpc.mine, 1)
            assert await solidified(app, frozen.node) == block
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)

        (label,) = app.investigator.labels.for_address(frozen.heidi, "tron")
        assert label.category is Category.FROZEN and label.active and label.chain == "tron"
        assert label.details["frozen_block"] == block and label.details["frozen_tx"] == freeze[2:]
        stamp = int(frozen.node.rpc.get_block(block)["timestamp"], 16)  # the block's time: TRON's logs carry none
        assert label.details["frozen_at"] == datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        assert label.source_url == f"https://tronscan.org/#/transaction/{freeze[2:]}"
        assert freeze_cursor(app.investigator.labels, "tron") == block  # `labels tether-freezes` goes on after it
        (alert,) = [a for a in AlertBook(app.db).all() if a.kind is AlertKind.LABEL_CHANGE]
        assert (alert.address, alert.platform, alert.chat) == (frozen.heidi, "telegram", TG_CHAT)
        assert "Frozen by Tether (USDT-TRC20) (tether-blacklist)" in alert.reasons[0]
        again = await front.say(f"/risk {frozen.heidi}", user=Identity("telegram", "5", "anna"))
        assert "FROZEN" in again.text and freeze[2:] in again.text and freeze not in again.text
        logs = [m for m in frozen.server.rpc_calls if m == "eth_getLogs"]
        assert logs, "the freezes came from eth_getLogs"
    finally:
        app.close()


async def test_a_freeze_log_from_another_branch_than_the_blocks_followed_is_not_recorded(
    frozen: Frozen, db: Database
) -> None:
    """A node whose logs say another block hash than the block the watcher followed (a pool of nodes on two branches):
    the freeze waits, the watcher says why in its status, and it is recorded once the node agrees."""
    known = WELL_KNOWN["tron"]
    config = ChainConfig("tron", TRON_CHAIN_ID, "TRX", (frozen.server.jsonrpc_url,), decimals=6, family=known.family)
    book = LabelBook(db)
    async with rpc_source(config) as source:
        await source.connect()
        feed = ChainFeed("tron", source, confirmations=19, start_block=frozen.node.rpc.mine(), freeze_contracts=(USDT,))
        watcher = Watcher(db, feed, labels=book)
        freeze = await asyncio.to_thread(
            frozen.usdt.transact, "addBlackList", tron_to_hex(frozen.heidi), sender=frozen.owner
        )
        block = int((await asyncio.to_thread(frozen.node.rpc.wait_receipt, freeze))["blockNumber"], 16)
        await asyncio.to_thread(frozen.node.rpc.mine, 19)  # solidified
        frozen.server.log_block_hash = "0x" + "ee" * 32
        await watcher.catch_up()
        assert not book.for_address(frozen.heidi, "tron")
        (status,) = watch_status(db)
        assert f"freezes of blocks {block}-{block} not read" in status.last_error
        assert "not from the block followed" in status.last_error
        frozen.server.log_block_hash = None
        await asyncio.to_thread(frozen.node.rpc.mine, 1)
        await watcher.catch_up()
    (label,) = book.for_address(frozen.heidi, "tron")
    assert label.details["frozen_block"] == block and label.details["frozen_tx"] == freeze[2:]
    assert watch_status(db)[0].last_error == ""
