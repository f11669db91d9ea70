"""The bot core: one path from a message to a reply, whatever the platform.

message → (allow-list) → `Invocation` (grammar) → (role) → handler → `Reply`; every outcome is audited.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from bot.access import AccessPolicy
from bot.commands import Invocation, Registry
from bot.messages import IncomingMessage, Reply
from bot.roles import Role
from storage.audit import AuditLog
from storage.db import Database
from storage.settings import Settings
from tracing.errors import NotAllowed, UserError
from tracing.investigator import Asker, Investigator

log = logging.getLogger(__name__)

REFUSAL = "This chat is not authorised to use chainsleuth."


@dataclass
class Context:
    """What a handler may use."""

    settings: Settings
    db: Database
    investigator: Investigator
    access: AccessPolicy
    audit: AuditLog
    registry: Registry
    message: IncomingMessage
    role: Role

    @property
    def asker(self) -> Asker:
        return Asker(self.message.platform, self.message.chat_id, self.message.user.key)


class Bot:
    def __init__(self, settings: Settings, db: Database, investigator: Investigator, registry: Registry) -> None:
        self.settings = settings
        self.db = db
        self.investigator = investigator
        self.registry = registry
        self.access = AccessPolicy(settings, db)
        self.audit = AuditLog(db)

    def is_command(self, text: str) -> bool:
        return self.registry.split(text) is not None

    async def handle(self, message: IncomingMessage) -> Reply | None:
        """The reply to a message, or None when the message is not for the bot."""
        split = self.registry.split(message.text)
        if split is None:
            return None
        name, rest = split
        if not self.access.chat_allowed(message):
            self._audit(message, name, rest, "refused", "chat not on the allow-list")
            return Reply.error(REFUSAL)
        spec = self.registry.get(name)
        if spec is None:
            self._audit(message, name, rest, "error", "unknown command")
            return Reply.error(f"Unknown command /{name[:30]}; try /help.")
        role = self.access.role_of(message.user)
        context = Context(
            settings=self.settings,
            db=self.db,
            investigator=self.investigator,
            access=self.access,
            audit=self.audit,
            registry=self.registry,
            message=message,
            role=role,
        )
        try:
            if role < spec.role:
                raise NotAllowed(f"/{spec.name} needs the {spec.role.title} role; you are {role.title}.")
            invocation: Invocation = self.registry.parse(spec, rest, message)
            reply = await spec.handler(context, invocation)
        except NotAllowed as exc:
            self._audit(message, spec.name, rest, "refused", str(exc))
            return Reply.error(str(exc))
        except UserError as exc:
            self._audit(message, spec.name, rest, "error", str(exc))
            return Reply.error(str(exc))
        except Exception as exc:
            ref = secrets.token_hex(4)
            log.exception("command /%s failed (ref %s)", spec.name, ref)
            self._audit(message, spec.name, rest, "failed", f"{type(exc).__name__}: {exc}", ref)
            return Reply.error("Something went wrong on our side; the operators can look it up.", ref)
        self._audit(message, spec.name, rest, "ok", "")
        return reply

    def _audit(
        self, message: IncomingMessage, command: str, arguments: str, outcome: str, detail: str, ref: str = ""
    ) -> None:
        self.audit.record(
            actor=message.user.key,
            platform=message.platform,
            chat=message.chat_id,
            command=command,
            arguments=arguments,
            outcome=outcome,
            detail=detail,
            ref=ref,
        )
