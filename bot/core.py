"""The bot core: one path from a message to a reply, whatever the platform.

message → (allow-list) → `Invocation` (grammar) → (role) → handler → `Reply`; every outcome is audited.
A pressed button is the same path: its stored command runs as if the presser had typed it. Addresses pasted in
an allowed chat are offered a risk check, at most once per address per chat per quiet period.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, update
from sqlmodel import col

from bot.access import AccessPolicy
from bot.commands import Invocation, Registry
from bot.messages import Action, IncomingMessage, Reply, Text
from bot.metrics import COMMAND_SECONDS, COMMANDS
from bot.roles import Role
from storage.audit import AuditLog
from storage.db import Database
from storage.models import ButtonRow, utcnow
from storage.settings import Settings
from tracing.address import checksum, parse_address
from tracing.errors import NotAllowed, UserError
from tracing.investigator import Asker, Investigator

log = logging.getLogger(__name__)

REFUSAL = "This chat is not authorised to use chainsleuth."
BUTTON_LIFETIME = timedelta(days=30)
MAX_OFFERS = 3
"""Addresses offered a risk check from one message, at most."""

_PASTED_ADDRESS = re.compile(r"(?<![0-9A-Za-z])0x[0-9a-fA-F]{40}(?![0-9A-Za-z])")


@dataclass(frozen=True, slots=True)
class Pressed:
    """What pressing a stored button gave: the reply, and whether this press used up a one-off button (the platform
    then removes it from the message)."""

    reply: Reply
    used_up: bool = False
    command: str = ""
    """The command the button ran (empty when the press was refused before running anything)."""


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
        self._offered: dict[tuple[str, str, str], float] = {}

    def is_command(self, text: str) -> bool:
        return self.registry.split(text) is not None

    async def handle(self, message: IncomingMessage) -> Reply | None:
        """The reply to a message, or None when the message is not for the bot."""
        started = time.perf_counter()
        reply = await self._handle(message)
        split = self.registry.split(message.text) if reply is not None else None
        if split is not None:
            COMMAND_SECONDS.labels(command=self._metric_name(split[0])).observe(time.perf_counter() - started)
        return reply

    def _metric_name(self, name: str) -> str:
        """Registered command names only: whatever users type must not create metric series."""
        spec = self.registry.get(name)
        return spec.name if spec is not None else "unknown"

    async def _handle(self, message: IncomingMessage) -> Reply | None:
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

    def store_actions(
        self, platform: str, chat_id: str, actions: Sequence[Action], *, pressable_by: str = "", created_by: str = ""
    ) -> list[str]:
        """Keep each action server-side and return the ids the platform's buttons carry, in order."""
        now = utcnow()
        ids = [secrets.token_urlsafe(12) for _ in actions]
        with self.db.session() as session:
            session.execute(delete(ButtonRow).where(col(ButtonRow.expires_at) < now))
            for button_id, action in zip(ids, actions, strict=True):
                session.add(
                    ButtonRow(
                        id=button_id,
                        platform=platform,
                        chat=chat_id,
                        pressable_by=pressable_by,
                        command=action.command,
                        once=action.once,
                        created_by=created_by,
                        created_at=now,
                        expires_at=now + BUTTON_LIFETIME,
                    )
                )
        return ids

    async def press(self, presser: IncomingMessage, button_id: str) -> Pressed:
        """Run a stored button's command as `presser` (platform, chat and user; its text is ignored)."""
        with self.db.session() as session:
            row = session.get(ButtonRow, button_id[:32])
        refused = self._button_refusal(presser, row)
        if refused is not None:
            outcome, text = refused
            self._audit(presser, "button", button_id[:40], outcome, text)
            return Pressed(Reply.error(text))
        assert row is not None
        claimed = row.once and self._claim(row.id, presser.user.key)
        if row.once and not claimed:
            self._audit(presser, "button", row.id, "error", "already used")
            return Pressed(Reply.error("Someone has already pressed this button."))
        reply = await self.handle(replace(presser, text=row.command))
        if reply is None:
            reply = Reply.error("This button no longer does anything.")
        if claimed and reply.is_error:
            self._release(row.id, presser.user.key)  # nothing ran: let someone with the right role press it
            claimed = False
        return Pressed(reply, used_up=claimed, command=row.command)

    def _button_refusal(self, presser: IncomingMessage, row: ButtonRow | None) -> tuple[str, str] | None:
        if row is None:
            return "error", "This button is no longer valid."
        if (row.platform, row.chat) != (presser.platform, presser.chat_id):
            return "refused", "This button belongs to another chat."
        if row.pressable_by and row.pressable_by != presser.user.key:
            return "refused", "This button is for someone else."
        expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
        if expires < datetime.now(UTC):
            return "error", "This button has expired; run the command again."
        return None

    def _claim(self, button_id: str, who: str) -> bool:
        with self.db.session() as session:
            result = session.execute(
                update(ButtonRow)
                .where(col(ButtonRow.id) == button_id, col(ButtonRow.used_at).is_(None))
                .values(used_at=utcnow(), used_by=who[:120])
            )
            return bool(getattr(result, "rowcount", 0) == 1)

    def _release(self, button_id: str, who: str) -> None:
        with self.db.session() as session:
            session.execute(
                update(ButtonRow)
                .where(col(ButtonRow.id) == button_id, col(ButtonRow.used_by) == who[:120])
                .values(used_at=None, used_by="")
            )

    def offer_risk_checks(self, message: IncomingMessage) -> Reply | None:
        """For a chat message that is not a command: a "Check risk" button per pasted address not offered in this
        chat during the quiet period. Nothing for chats off the allow-list."""
        if self.is_command(message.text) or not self.access.chat_allowed(message):
            return None
        found: list[str] = []
        for match in _PASTED_ADDRESS.finditer(message.text):
            try:
                address = parse_address(match.group(0))
            except UserError:
                continue  # a mistyped checksum is not worth a reply to a chat message
            if address not in found:
                found.append(address)
        fresh = [a for a in found[:MAX_OFFERS] if self._first_offer(message, a)]
        if not fresh:
            return None
        if len(fresh) == 1:
            text = f"Check the risk of {checksum(fresh[0])}?"
        else:
            text = "Check the risk of these addresses?\n" + "\n".join(checksum(a) for a in fresh)
        actions = tuple(Action(f"Check risk {checksum(a)[:8]}…", f"/risk {a}", once=True) for a in fresh)
        return Reply((Text(text),), actions=actions)

    def _first_offer(self, message: IncomingMessage, address: str) -> bool:
        now = time.monotonic()
        quiet = self.settings.address_offer_minutes * 60
        if len(self._offered) > 10_000:
            self._offered = {k: t for k, t in self._offered.items() if now - t < quiet}
        key = (message.platform, message.chat_id, address)
        last = self._offered.get(key)
        if last is not None and now - last < quiet:
            return False
        self._offered[key] = now
        return True

    def _audit(
        self, message: IncomingMessage, command: str, arguments: str, outcome: str, detail: str, ref: str = ""
    ) -> None:
        COMMANDS.labels(command=self._metric_name(command), outcome=outcome).inc()
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
