"""Incidents from alert to resolution through the chat commands: roles (viewers cannot ack), the state machine
with un-ack, dispositions, escalation on time with an injected clock, the on-call roster, joining alerts into an
open incident, and every transition in the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.app import App, build_app
from bot.backends.testing import TestBackend
from bot.messages import Identity
from storage.audit import AuditLog
from storage.ops_models import OutboxMessage
from storage.settings import Settings
from tests.support.fake_chain import FakeChain, move
from tracing.monitor import Actor, Disposition, Escalator, IncidentDesk, IncidentState
from tracing.monitor.alerts import AlertBook
from tracing.monitor.clock import ManualClock
from tracing.monitor.watch import WatchBook
from tracing.monitor.watcher import ChainFeed, Watcher

W = "0x" + "a1" * 20
X = "0x" + "b2" * 20
GROUP = "-100"
OLGA = Identity("telegram", "7", "olga")  # officer
OSCAR = Identity("telegram", "8", "oscar")  # officer
VERA = Identity("telegram", "3", "vera")  # viewer


@pytest.fixture
def ops_app(tmp_path: Path, prepared_database_url: str) -> Iterator[App]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        demo_data=False,
        allowed_chats=[f"telegram:{GROUP}"],
        officers=["telegram:7", "telegram:8"],
    )
    the_app = build_app(settings, database_url=prepared_database_url)
    yield the_app
    the_app.close()


@pytest.fixture
def chat(ops_app: App) -> TestBackend:
    return TestBackend(ops_app.bot, platform="telegram", chat_id=GROUP, user_id="3")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


class Chain:
    """A watched address on a fake chain, for raising alerts on demand."""

    def __init__(self, app: App, clock: ManualClock) -> None:
        WatchBook(app.db).watch(
            chain="eth", address=W, platform="telegram", chat=GROUP, channel=True, created_by="telegram:7"
        )
        self.chain = FakeChain()
        self.watcher = Watcher(app.db, ChainFeed("eth", self.chain, start_block=1), clock=clock)
        self.tx = 0

    async def alert(self) -> int:
        self.tx += 1
        self.chain.mine(move(W, X, 1, tx=self.tx))
        await self.watcher.catch_up()
        latest = AlertBook(self.watcher.db).all()[-1]
        assert latest.incident_id is not None
        return latest.incident_id


async def test_a_viewer_may_list_but_not_ack(ops_app: App, chat: TestBackend, clock: ManualClock) -> None:
    incident = await Chain(ops_app, clock).alert()
    listed = await chat.say("/incidents", user=VERA)
    assert f"#{incident} open" in listed.text
    refused = await chat.say(f"/ack {incident}", user=VERA)
    assert refused.is_error and "officer" in refused.text
    assert IncidentDesk(ops_app.db).get(incident).state is IncidentState.OPEN
    assert AuditLog(ops_app.db).recent(1)[0].outcome == "refused"


async def test_officer_ack_owns_it_and_stops_escalation(ops_app: App, chat: TestBackend, clock: ManualClock) -> None:
    incident = await Chain(ops_app, clock).alert()
    desk = IncidentDesk(ops_app.db, clock)
    reply = await chat.say(f"/ack {incident}", user=OLGA)
    assert not reply.is_error and "Acknowledged by olga" in reply.text
    acked = desk.get(incident)
    assert (acked.state, acked.owner_key, acked.next_escalation_at) == (IncidentState.ACKNOWLEDGED, OLGA.key, None)
    clock.advance(minutes=120)
    assert Escalator(ops_app.db, clock).escalate_due() == []
    again = await chat.say(f"/ack {incident}", user=OSCAR)
    assert again.is_error and "already acknowledged by olga" in again.text
    with ops_app.db.session() as session:
        kinds = session.scalars(select(OutboxMessage.kind).order_by(col(OutboxMessage.id))).all()
    assert kinds == ["alert", "incident_edit"]  # the alert message is edited to show who acked


async def test_unacked_incident_escalates_on_time_level_by_level(
    ops_app: App, chat: TestBackend, clock: ManualClock
) -> None:
    assert not (await chat.say("/oncall @alice", user=OLGA)).is_error
    roster = await chat.say("/oncall @bob --level 2 --after 10,20", user=OLGA)
    assert "level 1: alice" in roster.text and "level 2: bob" in roster.text and "10 min, then 20 min" in roster.text
    incident = await Chain(ops_app, clock).alert()
    desk = IncidentDesk(ops_app.db, clock)

    clock.advance(minutes=9, seconds=59)
    assert Escalator(ops_app.db, clock).escalate_due() == []
    clock.advance(seconds=1)
    (first,) = Escalator(ops_app.db, clock).escalate_due()
    assert (first.incident_id, first.level, first.oncall and first.oncall.user_name) == (incident, 1, "alice")
    clock.advance(minutes=19)
    assert Escalator(ops_app.db, clock).escalate_due() == []
    clock.advance(minutes=1)
    (second,) = Escalator(ops_app.db, clock).escalate_due()
    assert (second.level, second.oncall and second.oncall.user_name) == (2, "bob")
    clock.advance(hours=5)
    assert Escalator(ops_app.db, clock).escalate_due() == []  # no level 3: it stays open and listed
    with ops_app.db.session() as session:
        notices = session.scalars(select(OutboxMessage).where(col(OutboxMessage.kind) == "notice")).all()
    assert [(n.payload["level"], n.payload["oncall_name"]) for n in notices] == [(1, "alice"), (2, "bob")]

    assert not (await chat.say(f"/ack {incident}", user=OSCAR)).is_error
    assert not (await chat.say(f"/unack {incident}", user=OSCAR)).is_error
    # un-acked: open again and escalation starts over from level 1, timed from the un-ack (real time here)
    reopened = desk.get(incident)
    assert reopened.state is IncidentState.OPEN and reopened.escalation_level == 0
    assert reopened.next_escalation_at is not None and reopened.owner_key == ""


async def test_resolution_needs_a_disposition_and_closes_it(
    ops_app: App, chat: TestBackend, clock: ManualClock
) -> None:
    incident = await Chain(ops_app, clock).alert()
    ask = await chat.say(f"/resolve {incident}", user=OLGA)
    assert "/resolve 1 false_positive" in ask.text and "/resolve 1 reported" in ask.text
    bad = await chat.say(f"/resolve {incident} maybe", user=OLGA)
    assert bad.is_error and "not a disposition" in bad.text
    done = await chat.say(f"/resolve #{incident} fp exchange hot wallet", user=OLGA)
    assert "Resolved as false positive by olga: exchange hot wallet" in done.text
    late = await chat.say(f"/ack {incident}", user=OSCAR)
    assert late.is_error and "already resolved" in late.text
    assert "No open incidents here." in (await chat.say("/incidents", user=VERA)).text
    assert f"#{incident} resolved, false positive" in (await chat.say("/incidents all", user=VERA)).text

    desk = IncidentDesk(ops_app.db)
    assert [e.kind for e in desk.events(incident)] == ["opened", "resolved"]
    commands = [e.command for e in AuditLog(ops_app.db).recent(50)]
    assert "incident.open" in commands and "incident.resolve" in commands


async def test_assign_and_my_incidents(ops_app: App, chat: TestBackend, clock: ManualClock) -> None:
    incident = await Chain(ops_app, clock).alert()
    assert "Owner: oscar" in (await chat.say(f"/assign {incident} me", user=OSCAR)).text
    assert f"#{incident}" in (await chat.say("/incidents mine", user=OSCAR)).text
    assert "You own no open incidents." in (await chat.say("/incidents mine", user=OLGA)).text
    assert (await chat.say(f"/assign {incident} @carol", user=VERA)).is_error
    assert IncidentDesk(ops_app.db).get(incident).owner_name == "oscar"  # the viewer's /assign was refused


async def test_alerts_join_the_open_incident_within_the_window(ops_app: App, clock: ManualClock) -> None:
    chain = Chain(ops_app, clock)
    first = await chain.alert()
    clock.advance(minutes=30)
    assert await chain.alert() == first
    clock.advance(minutes=61)
    second = await chain.alert()  # an hour of quiet: a new incident
    assert second != first
    IncidentDesk(ops_app.db).resolve(second, Actor(OLGA.key, "olga", "telegram"), Disposition.FALSE_POSITIVE)
    assert await chain.alert() not in (first, second)  # a resolved incident is never joined
    assert IncidentDesk(ops_app.db).get(first).alert_count == 2


async def test_incidents_of_other_platforms_are_out_of_reach(
    ops_app: App, chat: TestBackend, clock: ManualClock
) -> None:
    WatchBook(ops_app.db).watch(chain="eth", address=X, platform="slack", chat="C1", channel=True, created_by="x")
    chain = FakeChain()
    chain.mine(move(X, W, 1))
    await Watcher(ops_app.db, ChainFeed("eth", chain, start_block=1), clock=clock).catch_up()
    (alert,) = AlertBook(ops_app.db).all()
    reply = await chat.say(f"/ack {alert.incident_id}", user=OLGA)
    assert reply.is_error and "No incident" in reply.text


async def test_escalation_waits_while_every_alert_is_reorged_out(ops_app: App, clock: ManualClock) -> None:
    chain = Chain(ops_app, clock)
    incident = await chain.alert()
    chain.chain.fork(keep=0)  # the alert's block is replaced by two empty ones
    chain.chain.mine_empty(2)
    await chain.watcher.catch_up()
    desk = IncidentDesk(ops_app.db, clock)
    clock.advance(minutes=16)
    assert Escalator(ops_app.db, clock).escalate_due() == []  # nothing happened on the final chain: nobody is called
    postponed = desk.get(incident)
    assert postponed.escalation_level == 0 and postponed.next_escalation_at == clock.now() + timedelta(minutes=15)
