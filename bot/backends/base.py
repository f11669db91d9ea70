"""The backend contract: a platform adapter turns its events into `IncomingMessage`s for `Bot.handle` and renders
each `Reply` its own way; the notifier posts and edits alerts through the same adapter (`send`, `edit`). Where the
platform lets a bot read a chat back (Slack), the adapter's `history` finds a post again by the marker it carried,
so a post interrupted by a crash is not sent twice; where it cannot (Telegram, the console), `history` is None."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.messages import Reply


@dataclass(frozen=True, slots=True)
class PostMarker:
    """What a post says about itself where the platform can carry it (Slack: message metadata): the outbox rows it
    delivers, the lead (a digest's first row) first, each with its alert's dedup key ("" for a notice)."""

    entries: tuple[tuple[int, str], ...]

    @property
    def outbox_ids(self) -> tuple[int, ...]:
        return tuple(outbox_id for outbox_id, _key in self.entries)

    @property
    def lead_id(self) -> int:
        return self.entries[0][0]


@dataclass(frozen=True, slots=True)
class FoundPost:
    """A post found on the platform by its marker."""

    message_id: str
    marker: PostMarker


class PostHistory(Protocol):
    """Finding a bot's earlier posts in a chat by the marker they carry."""

    async def find_posted(self, chat_id: str, marker: PostMarker, since: datetime) -> list[FoundPost]:
        """Posts in `chat_id` since `since` whose marker names any of `marker`'s entries (outbox id and dedup key
        both equal), oldest first. An empty list means "not posted"; when it cannot tell it raises
        (`HistoryUnavailable`, or the network's error)."""
        ...


class Backend(Protocol):
    """A chat platform: serves its front end, and posts and edits messages unprompted (alerts, notices).

    `send` and `edit` raise `RateLimited` or `DeliveryError` (`bot.backends.errors`) when they fail."""

    platform: str

    @property
    def history(self) -> PostHistory | None:
        """How to find an earlier post again, or None where the platform gives a bot no way to read a chat back."""
        ...

    async def serve(self) -> None:
        """Run until stopped."""
        ...

    async def send(self, chat_id: str, reply: Reply, *, marker: PostMarker | None = None) -> str:
        """Post a reply to a chat unprompted; returns the platform's message id. `marker` goes along where the
        platform can carry it (so that `history` finds the post again)."""
        ...

    async def edit(self, chat_id: str, message_id: str, reply: Reply) -> None:
        """Replace the content (and buttons) of a message posted earlier."""
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
