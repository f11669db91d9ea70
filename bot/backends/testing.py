"""The test front end: push a message, pop the reply — through exactly the path a real platform uses."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core import Bot
from bot.messages import Identity, IncomingMessage, Reply
from bot.render.text import render_text


@dataclass
class SaidReply:
    reply: Reply | None
    text: str

    @property
    def is_error(self) -> bool:
        return self.reply is not None and self.reply.is_error


class TestBackend:
    __test__ = False  # not a pytest test class
    platform = "test"

    def __init__(
        self, bot: Bot, *, platform: str = "console", chat_id: str = "test-chat", user_id: str = "tester"
    ) -> None:
        self.bot = bot
        self.platform = platform
        self.chat_id = chat_id
        self.user = Identity(platform, user_id, user_id)
        self.outbox: list[tuple[str, Reply]] = []

    async def say(self, text: str, *, user: Identity | None = None, chat_id: str | None = None) -> SaidReply:
        message = IncomingMessage(self.platform, chat_id or self.chat_id, user or self.user, text)
        reply = await self.bot.handle(message)
        return SaidReply(reply, render_text(reply) if reply is not None else "")

    async def send(self, chat_id: str, reply: Reply) -> str:
        self.outbox.append((chat_id, reply))
        return str(len(self.outbox))

    def pop(self) -> tuple[str, Reply]:
        return self.outbox.pop(0)
