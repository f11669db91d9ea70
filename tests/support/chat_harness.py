"""A chat platform's recording server and the bot's harness on it, started and stopped together (pytest fixtures)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from bot.app import App
from bot.backends.slack import SlackBackend
from bot.backends.telegram import TelegramBackend
from tests.support.slack_server import FakeSlack
from tests.support.telegram_server import TOKEN, FakeTelegram


class Startable(Protocol):
    async def start(self) -> Any: ...

    async def stop(self) -> None: ...


S = TypeVar("S", bound=Startable)
H = TypeVar("H", bound=Startable)


@asynccontextmanager
async def running(server: S, harness: Callable[[S], H]) -> AsyncIterator[H]:
    """Start `server`, then the harness made on it; stop both afterwards (harness first)."""
    await server.start()
    started = harness(server)
    await started.start()
    try:
        yield started
    finally:
        await started.stop()
        await server.stop()


@dataclass(frozen=True, slots=True)
class SendingChats:
    """Recording Telegram and Slack servers and the bot's two backends on them, set up to send only (no polling)."""

    telegram: FakeTelegram
    slack: FakeSlack
    telegram_backend: TelegramBackend
    slack_backend: SlackBackend


@asynccontextmanager
async def sending_chats(app: App) -> AsyncIterator[SendingChats]:
    """Both recording servers started and `app`'s Telegram and Slack backends pointed at them; all stopped after."""
    telegram, slack = FakeTelegram(), FakeSlack()
    await telegram.start()
    await slack.start()
    settings = app.settings.model_copy(
        update={
            "telegram_bot_token": TOKEN,
            "telegram_base_url": telegram.base_url,
            "slack_bot_token": "xoxb-test",
            "slack_signing_secret": "not-used-for-sending",
            "slack_api_base_url": slack.api_url,
        }
    )
    tg_backend = TelegramBackend(app.bot, settings)
    await tg_backend.application.initialize()  # send only: no polling
    try:
        yield SendingChats(telegram, slack, tg_backend, SlackBackend(app.bot, settings))
    finally:
        await tg_backend.application.shutdown()
        await slack.stop()
        await telegram.stop()
