"""The test front end: push a message, pop the reply — through exactly the path a real platform uses. Alerts come the
other way through the same contract: the notifier sends (or edits) through this backend, and the test pops what
was delivered."""

from __future__ import annotations

from dataclasses import dataclass

from bot.backends.base import PostHistory, PostMarker
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


@dataclass(frozen=True)
class Delivered:
    """A message the bot sent unprompted (an alert, a notice), or an edit of one (`edit`)."""

    chat_id: str
    message_id: str
    reply: Reply
    text: str
    edit: bool = False
    marker: PostMarker | None = None


class TestBackend:
    __test__ = False  # not a pytest test class
    platform = "test"

    def __init__(
        self,
        bot: Bot | None = None,
        *,
        platform: str = "console",
        chat_id: str = "test-chat",
        user_id: str = "tester",
        history: PostHistory | None = None,
    ) -> None:
        """`bot`: the bot commands are pushed to (none is needed to receive alerts). `history`: how the backend finds
        its earlier posts, like Slack's; None (the default) is Telegram's "cannot tell"."""
        self.bot = bot
        self.platform = platform
        self.chat_id = chat_id
        self.user = Identity(platform, user_id, user_id)
        self._history = history
        self.delivered: list[Delivered] = []
        """Sent and edited messages not popped yet, oldest first."""
        self._posts = 0
        self._shown: dict[str, str] = {}

    @property
    def history(self) -> PostHistory | None:
        return self._history

    async def serve(self) -> None:
        """Nothing to serve: a test pushes each message with `say`."""

    async def say(self, text: str, *, user: Identity | None = None, chat_id: str | None = None) -> SaidReply:
        assert self.bot is not None, "a TestBackend without a bot only receives alerts"
        message = IncomingMessage(self.platform, chat_id or self.chat_id, user or self.user, text)
        reply = await self.bot.handle(message)
        return SaidReply(reply, render_text(reply) if reply is not None else "")

    async def send(self, chat_id: str, reply: Reply, *, marker: PostMarker | None = None) -> str:
        self._posts += 1
        message_id = str(self._posts)
        self._record(Delivered(chat_id, message_id, reply, render_text(reply), marker=marker))
        return message_id

    async def edit(self, chat_id: str, message_id: str, reply: Reply) -> None:
        self._record(Delivered(chat_id, message_id, reply, render_text(reply), edit=True))

    def _record(self, delivered: Delivered) -> None:
        self.delivered.append(delivered)
        self._shown[delivered.message_id] = delivered.text

    def pop(self) -> Delivered:
        """The oldest delivery not popped yet."""
        assert self.delivered, "nothing was delivered"
        return self.delivered.pop(0)

    def shown(self, message_id: str) -> str:
        """What a message sent earlier shows now (after its edits)."""
        return self._shown[message_id]
