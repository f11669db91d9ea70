"""/watch, /unwatch and /watchlist through the push/pop test front end: where alerts go, who may watch, and the
one-sentence errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.backends.testing import TestBackend
from bot.messages import Identity
from storage.settings import Settings
from tracing.monitor.watch import WatchBook

ADDRESS = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"
CANONICAL = ADDRESS.lower()
GROUP = "-200"
ANNA = Identity("telegram", "5", "anna")  # analyst
VERA = Identity("telegram", "3", "vera")  # viewer


@pytest.fixture
def team_app(tmp_path: Path, prepared_database_url: str) -> Iterator[App]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        demo_data=False,
        allowed_chats=[f"telegram:{GROUP}"],
        analysts=["telegram:5"],
    )
    the_app = build_app(settings, database_url=prepared_database_url)
    yield the_app
    the_app.close()


@pytest.fixture
def group(team_app: App) -> TestBackend:
    return TestBackend(team_app.bot, platform="telegram", chat_id=GROUP, user_id="3")


async def test_watch_for_yourself_or_for_the_chat(group: TestBackend, team_app: App) -> None:
    mine = await group.say(f"/watch {ADDRESS} --note 'Ronin exploiter' --min 10", user=ANNA)
    assert "Now watching 0x098B716B8Aaf21512996dC57EB0615e2383E2f96 on eth" in mine.text
    assert "at least 10" in mine.text and "alerts to you directly — Ronin exploiter" in mine.text
    shared = await group.say(f"/watch {ADDRESS} --channel", user=ANNA)
    assert "any movement, alerts to this chat" in shared.text
    assert f"/unwatch {CANONICAL} --chain eth --channel" in shared.text  # the Unwatch button
    book = WatchBook(team_app.db)
    assert {(w.chat, w.channel) for w in book.for_chats("telegram", [GROUP, "5"])} == {(GROUP, True), ("5", False)}
    listing = await group.say("/watchlist", user=ANNA)
    assert "Watched addresses (2)" in listing.text
    assert "Watched addresses (1)" in (await group.say("/watchlist", user=VERA)).text  # vera sees the chat's


async def test_rewatch_updates_and_unwatch_removes(group: TestBackend) -> None:
    await group.say(f"/watch {ADDRESS} --channel", user=ANNA)
    again = await group.say(f"/watch {ADDRESS} --channel --min 2.5", user=ANNA)
    assert again.text.startswith("Updated the watch on") and "at least 2.5" in again.text
    gone = await group.say(f"/unwatch {ADDRESS} --channel", user=ANNA)
    assert gone.text == f"Stopped watching {ADDRESS} on eth."
    missing = await group.say(f"/unwatch {ADDRESS}", user=ANNA)
    assert missing.is_error and "not watched for you" in missing.text and "--channel" in missing.text
    assert "No watched addresses here" in (await group.say("/watchlist", user=ANNA)).text


async def test_viewers_cannot_watch(group: TestBackend) -> None:
    reply = await group.say(f"/watch {ADDRESS}", user=VERA)
    assert reply.is_error and "analyst" in reply.text


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (f"/watch {ADDRESS} --min -3", "amount"),
        (f"/watch {ADDRESS} --min lots", "not an amount"),
        (f"/watch {ADDRESS} --chain nosuchchain", "not configured"),
        (f"/watch {ADDRESS[:-1]}", "EVM address"),
    ],
)
async def test_bad_watch_commands_are_one_sentence(group: TestBackend, command: str, words: str) -> None:
    reply = await group.say(command, user=ANNA)
    assert reply.is_error and words in reply.text and "\n" not in reply.text


async def test_console_operator_watches(bot: TestBackend) -> None:
    reply = await bot.say(f"/watch {ADDRESS} --channel")
    assert "alerts to this chat" in reply.text
