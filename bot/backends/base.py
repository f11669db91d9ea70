"""The backend contract: a platform adapter turns its events into `IncomingMessage`s for `Bot.handle` and renders
each `Reply` its own way. Outbound pushes (alerts) go through `send`."""

from __future__ import annotations

from typing import Protocol

from bot.messages import Reply


class Backend(Protocol):
    platform: str

    async def serve(self) -> None:
        """Run until stopped."""

    async def send(self, chat_id: str, reply: Reply) -> str:
        """Post a reply to a chat unprompted; returns the platform's message id."""
        ...
