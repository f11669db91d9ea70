"""The backend contract: a platform adapter turns its events into `IncomingMessage`s for `Bot.handle` and renders
each `Reply` its own way. Outbound pushes (alerts) go through `send`."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from typing import Protocol

from bot.messages import Reply


class Backend(Protocol):
    platform: str

    async def serve(self) -> None:
        """Run until stopped."""

    async def send(self, chat_id: str, reply: Reply) -> str:
        """Post a reply to a chat unprompted; returns the platform's message id."""
        ...


async def serve_until_signalled(
    start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]], stopping: asyncio.Event
) -> None:
    """Start a front end, run until SIGINT/SIGTERM (or `stopping` is set elsewhere), then stop it cleanly."""
    await start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stopping.set)
    try:
        await stopping.wait()
    finally:
        await stop()
