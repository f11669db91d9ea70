"""Scopes: incidents are listed and acted on within the same scope, unconfigured chains are refused by every
command that reads chain data, and one user-id syntax names people everywhere."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import update

from bot.app import App, build_app
from bot.backends.testing import TestBackend
from bot.delivery.notifier import Notifier
from bot.messages import Identity
from storage.ops_models import ChainCursor
from storage.settings import Settings
from tests.support.cli import run_cli
from tests.support.fake_chain import FakeChain, move
from tests.test_cli import env_for
from tracing.monitor.alerts import AlertBook
from tracing.monitor.clock import ManualClock
from tracing.monitor.outbox import OpsNotice, OutboxKind, enqueue, outbox_stats
from tracing.monitor.watch import WatchBook
from tracing.monitor.watcher import ChainFeed, Watcher

W = "0x" + "a1" * 20
X = "0x" + "b2" * 20
HERE, THERE = "-100", "-200"
ADA = Identity("telegram", "1", "ada")  # admin
OLGA = Identity("telegram", "7", "olga")  # officer
LAZARUS = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"


@pytest.fixture
def scoped_app(tmp_path: Path, prepared_database_url: str) -> Iterator[App]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        demo_data=False,
        allowed_chats=[f"telegram:{HERE}", f"telegram:{THERE}"],
        admins=["telegram:1"],
        officers=["telegram:7"],
    )
    the_app = build_app(settings, database_url=prepared_database_url)
    yield the_app
    the_app.close()


@pytest.fixture
def here(scoped_app: App) -> TestBackend:
    return TestBackend(scoped_app.bot, platform="telegram", chat_id=HERE, user_id="7")


async def incident_in(app: App, chat: str, platform: str = "telegram") -> int:
    """An incident raised by an alert for `chat`."""
    WatchBook(app.db).watch(chain="eth", address=W, platform=platform, chat=chat, channel=True, created_by="x")
    chain = FakeChain()
    chain.mine(move(W, X, 1, tx=1))
    await Watcher(app.db, ChainFeed("eth", chain, start_block=1), clock=ManualClock()).catch_up()
    incident = AlertBook(app.db).all()[-1].incident_id
    assert incident is not None
    return incident


async def test_an_incident_of_another_chat_is_neither_listed_nor_acted_on(scoped_app: App, here: TestBackend) -> None:
    incident = await incident_in(scoped_app, THERE)
    assert "No incidents here." in (await here.say("/incidents all", user=OLGA)).text
    for command in (f"/ack {incident}", f"/assign {incident} me", f"/resolve {incident} fp", f"/unack {incident}"):
        reply = await here.say(command, user=OLGA)
        assert reply.is_error and f"No incident #{incident}." in reply.text, command
    there = await here.say("/incidents all", user=OLGA, chat_id=THERE)
    assert f"#{incident} open" in there.text
    assert "acknowledged" in (await here.say(f"/ack {incident}", user=OLGA, chat_id=THERE)).text


async def test_admins_reach_every_incident_of_their_platform(scoped_app: App, here: TestBackend) -> None:
    incident = await incident_in(scoped_app, THERE)
    assert f"#{incident} open" in (await here.say("/incidents", user=ADA)).text
    assert "acknowledged" in (await here.say(f"/ack {incident}", user=ADA)).text


async def test_an_owner_reaches_the_incident_wherever_it_was_raised(scoped_app: App, here: TestBackend) -> None:
    incident = await incident_in(scoped_app, THERE)
    assert "Owner: 7" in (await here.say(f"/assign {incident} telegram:7", user=ADA)).text
    assert f"#{incident} open" in (await here.say("/incidents mine", user=OLGA)).text
    assert "resolved" in (await here.say(f"/resolve {incident} fp dust", user=OLGA)).text.lower()


@pytest.mark.parametrize("command", [f"/risk {LAZARUS} --chain foo", f"/trace {LAZARUS} --chain foo"])
async def test_unconfigured_chains_are_refused_like_watch_does(here: TestBackend, command: str) -> None:
    reply = await here.say(command, user=ADA)
    assert reply.is_error and "not configured" in reply.text and "SEVERE" not in reply.text


async def test_one_user_id_syntax_for_role_assign_and_oncall(scoped_app: App, here: TestBackend) -> None:
    granted = await here.say("/role console:bob officer", user=ADA)
    assert "console:bob is now officer" in granted.text
    assert "Owner: bob" in (await here.say(f"/assign {await incident_in(scoped_app, HERE)} console:bob", user=ADA)).text
    assert "console:bob" in (await here.say("/oncall console:bob", user=ADA)).text
    for command in ("/role martian:1 officer", "/assign 1 martian:1", "/oncall martian:1"):
        reply = await here.say(command, user=ADA)
        assert reply.is_error and "Unknown platform" in reply.text, command
    assert "not a telegram user id" in (await here.say("/role telegram:abc", user=ADA)).text
    assert "not a telegram user id" in (await here.say("/oncall telegram:abc", user=ADA)).text


async def test_messages_for_the_cli_chat_are_marked_undeliverable_and_shown_in_status(
    scoped_app: App, here: TestBackend
) -> None:
    now = ManualClock().now()
    with scoped_app.db.session() as session:
        enqueue(session, platform="cli", chat="cli", kind=OutboxKind.NOTICE, now=now, notice=OpsNotice("hello"))
        enqueue(session, platform="telegram", chat=HERE, kind=OutboxKind.NOTICE, now=now, notice=OpsNotice("hi"))
    chat = TestBackend(platform="telegram")
    notifier = Notifier(scoped_app.db, {"telegram": chat}, clock=ManualClock(), jitter=lambda: 0.0)
    assert await notifier.drain_once() == 2
    assert chat.pop().chat_id == HERE  # the deliverable one still went out
    stats = outbox_stats(scoped_app.db)
    assert (stats.pending, stats.sent, stats.failed) == (0, 1, 1)
    assert stats.recent_failures[0].last_error.startswith("undeliverable: `chainsleuth say` has no chat")
    status = await here.say("/status", user=ADA)
    assert "1 failed" in status.text and "to cli:cli" in status.text and "undeliverable" in status.text
    assert await notifier.drain_once() == 0  # nothing left waiting: the idle poll writes nothing


async def test_watch_says_when_no_watcher_follows_the_chain(
    scoped_app: App, here: TestBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ETH_RPC_URL", raising=False)
    unset = await here.say(f"/watch {W} --channel", user=ADA)
    assert "Now watching" in unset.text and "ETH_RPC_URL is not set" in unset.text
    monkeypatch.setenv("ETH_RPC_URL", "http://127.0.0.1:1")
    never = await here.say(f"/watch {W} --channel --min 1", user=ADA)
    assert "No watcher has followed eth yet" in never.text
    await incident_in(scoped_app, HERE)  # a watcher ran over eth, on a clock of 2026-01-01
    quiet = await here.say(f"/watch {W} --channel --min 2", user=ADA)
    assert "The eth watcher has not moved since 2026-01-01 00:00 UTC" in quiet.text
    with scoped_app.db.session() as session:
        session.execute(update(ChainCursor).values(updated_at=datetime.now(UTC)))
    followed = await here.say(f"/watch {W} --channel --min 3", user=ADA)
    assert "Warning" not in followed.text
    said = await TestBackend(scoped_app.bot, platform="cli", chat_id="cli", user_id="operator").say(f"/watch {W}")
    assert "alerts to this chat cannot be delivered" in said.text


def test_the_cli_refuses_unconfigured_chains_too(tmp_path: Path, prepared_database_url: str) -> None:
    env = env_for(tmp_path, prepared_database_url)
    for command in (["risk", LAZARUS, "--chain", "foo"], ["trace", LAZARUS, "--chain", "foo"]):
        result = run_cli(command, env)
        assert result.returncode == 1 and "not configured" in result.stderr and "SEVERE" not in result.stdout
