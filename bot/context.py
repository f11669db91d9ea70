"""What a command handler may use: the `Context` of one command (settings, store, the investigator facade, the
incident desk, on-call book and watch book built once for the app, access, audit, the grammar, the message and the
sender's role). It sits below both `bot.commands` (which types handlers with it) and `bot.core` (which builds it), so
the two do not import each other."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.access import AccessPolicy
from bot.grammar import Grammar
from bot.messages import IncomingMessage
from bot.roles import Role
from storage import AuditLog, Database, Settings
from tracing import Asker, IncidentDesk, Investigator, OnCallBook, WatchBook


async def _nothing_to_load(chain: str | None) -> None:
    return None


@dataclass
class Context:
    """What a handler may use."""

    settings: Settings
    db: Database
    investigator: Investigator
    incidents: IncidentDesk
    oncall: OnCallBook
    watches: WatchBook
    access: AccessPolicy
    audit: AuditLog
    registry: Grammar
    message: IncomingMessage
    role: Role
    load_caches: Callable[[str | None], Awaitable[None]] = _nothing_to_load

    async def caches_ready(self, chain: str | None) -> None:
        """Before tracing on `chain`: its transfer graph and the label cache loaded and fresh (off the event loop)."""
        await self.load_caches(chain)

    @property
    def asker(self) -> Asker:
        return Asker(self.message.platform, self.message.chat_id, self.message.user.key)
