"""The bot core: one path from a message to a reply, whatever the platform.

message → (allow-list) → (role) → typed arguments (grammar) → handler → `Reply`; every outcome is audited.
A pressed button is the same path: its stored command runs as if the presser had typed it. Addresses pasted in
an allowed chat are offered a risk check, at most once per address per chat per quiet period (remembered in the
store, so a restart or a second bot process does not offer it again).

What `/risk` and `/trace` read on every call — every label, and the chain's transfer graph — is loaded in a worker
thread (`Bot.warm_up` at start-up, `Bot.caches_ready` before each such command), never on the event loop: loading
them takes most of a second on the bundled label sets alone, and the loop must keep acknowledging chat requests.

A store that cannot be written (disk full, read-only, locked past the timeout; `storage.faults`) never escapes as an
exception: the command's own transaction is rolled back whole, the user gets one sentence naming the cause with a
reference, the log an error line with that reference, and `STORE_FAULTS` (/status, /metrics, the ops channel) a count.
When only the audit row cannot be written, the command's answer still goes out and the missing row is logged and
counted the same way.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import secrets
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, update
from sqlmodel import col

from bot.access import AccessPolicy
from bot.commands import Registry
from bot.context import Context
from bot.messages import Action, IncomingMessage, Reply, Text
from bot.metrics import COMMAND_SECONDS, COMMANDS, STORE_FAULT_COUNT, UNAUDITED_COMMANDS
from bot.once import Claims
from bot.roles import Role
from storage import STORE_FAULTS, AuditLog, ButtonRow, Database, Settings, StoreUnavailable, store_fault, utcnow
from tracing import IncidentDesk, Investigator, NotAllowed, OnCallBook, UserError, WatchBook, checksum, parse_address

log = logging.getLogger(__name__)

REFUSAL = "This chat is not authorised to use chainsleuth."
BUTTON_LIFETIME = timedelta(days=30)
BUTTON_SWEEP_SECONDS = 600.0
MAX_OFFERS = 3
"""Addresses offered a risk check from one message, at most."""
EVENT_MEMORY = timedelta(hours=1)
"""How long a platform event id is remembered (Slack re-delivers within minutes)."""

_PASTED_ADDRESS = re.compile(r"(?<![0-9A-Za-z])0x[0-9a-fA-F]{40}(?![0-9A-Za-z])")


def one_line(sentence: str) -> str:
    """A refusal as one line: line breaks and other control characters it quotes from the input are shown escaped
    (`\\n`), so a quoted word cannot make a reply of several lines."""
    return "".join(
        c if c == " " or unicodedata.category(c) not in ("Cc", "Zl", "Zp") else c.encode("unicode_escape").decode()
        for c in sentence
    )


@dataclass(frozen=True, slots=True)
class Pressed:
    """What pressing a stored button gave: the reply, and whether this press used up a one-off button (the platform
    then removes it from the message)."""

    reply: Reply
    used_up: bool = False
    command: str = ""
    """The command the button ran (empty when the press was refused before running anything)."""


class Bot:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        investigator: Investigator,
        registry: Registry,
        *,
        incidents: IncidentDesk | None = None,
        watches: WatchBook | None = None,
        oncall: OnCallBook | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.investigator = investigator
        self.registry = registry
        self.incidents = incidents or IncidentDesk(db)
        self.watches = watches or WatchBook(db)
        self.oncall = oncall or OnCallBook(db)
        self.access = AccessPolicy(settings, db)
        self.audit = AuditLog(db)
        self.claims = Claims(db)
        self._loading: dict[str, asyncio.Future[None]] = {}
        self._checked: dict[str, float] = {}
        self._buttons_swept = -BUTTON_SWEEP_SECONDS

    # --- caches the tracing commands read ------------------------------------------------------------------------

    async def warm_up(self) -> None:
        """Load the label cache and the default chain's transfer graph before the front end serves anyone (a failure
        is logged: the first command tries again)."""
        started = time.perf_counter()
        try:
            await self.caches_ready(None)
        except Exception:
            log.exception("loading the caches at start failed; the first command loads them")
            return
        log.info("caches loaded in %.2fs", time.perf_counter() - started)

    async def caches_ready(self, chain: str | None) -> None:
        """Bring the label cache and `chain`'s transfer graph up to date in a worker thread. Concurrent callers share
        one load (the first wave of commands after a start, or after a label import, waits for one load, not fifty),
        and the event loop keeps serving meanwhile. The investigator's own checks then find both fresh."""
        name = chain or self.investigator.default_chain
        loading = self._loading.get(name)
        if loading is None:
            # The investigator checks its caches at most every `check_interval`; checking here twice as often keeps
            # every check (and any reload it finds due) in the worker thread, while most commands skip the hop.
            now = time.monotonic()
            if now - self._checked.get(name, -math.inf) < self.investigator.label_cache.check_interval / 2:
                return
            self._checked[name] = now
            loading = asyncio.ensure_future(asyncio.to_thread(self._load_caches, name))
            self._loading[name] = loading
            loading.add_done_callback(lambda done: self._loaded(name, done))
        await asyncio.shield(loading)

    def _loaded(self, chain: str, done: asyncio.Future[None]) -> None:
        self._loading.pop(chain, None)
        if done.cancelled() or done.exception() is not None:
            self._checked.pop(chain, None)  # the next command tries again

    def _load_caches(self, chain: str) -> None:
        investigator = self.investigator
        if not investigator.use_graph:
            return  # everything is read from SQL as needed
        # Every label in memory: rebuilt and swapped in whole when the label table changed, so readers are safe.
        investigator.label_cache.for_addresses([])
        # The graph's first load builds a new graph and swaps it in (safe beside readers); appending new transfers to
        # a loaded graph changes it in place, so that stays on the event loop (`Investigator.source`, cheap).
        if investigator.graphs.wait(chain, timeout=0) is None:
            investigator.graphs.get(chain)

    def is_command(self, text: str) -> bool:
        return self.registry.split(text) is not None

    async def handle(self, message: IncomingMessage) -> Reply | None:
        """The reply to a message, or None when the message is not for the bot."""
        started = time.perf_counter()
        try:
            reply = await self._handle(message)
        except Exception as exc:  # a store fault outside the handler (the allow-list or role look-up)
            fault = store_fault(exc)
            if fault is None:
                raise
            split = self.registry.split(message.text)
            reply = self._store_fault(message, split[0] if split else "message", split[1] if split else "", fault)
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
        role = self._standing(message)
        if role is None:
            self._audit(message, name, rest, "refused", "chat not on the allow-list")
            return Reply.error(REFUSAL)
        spec = self.registry.get(name)
        if spec is None:
            self._audit(message, name, rest, "error", "unknown command")
            return Reply.error(f"Unknown command /{name[:30]}; try /help.")
        context = Context(
            settings=self.settings,
            db=self.db,
            investigator=self.investigator,
            incidents=self.incidents,
            oncall=self.oncall,
            watches=self.watches,
            access=self.access,
            audit=self.audit,
            registry=self.registry.grammar,
            message=message,
            role=role,
            load_caches=self.caches_ready,
        )
        try:
            if role < spec.role:
                raise NotAllowed(f"/{spec.name} needs the {spec.role.title} role; you are {role.title}.")
            arguments = self.registry.parse(spec, rest)
            reply = await spec.handler(context, arguments)
        except NotAllowed as exc:
            self._audit(message, spec.name, rest, "refused", str(exc))
            return Reply.error(one_line(str(exc)))
        except UserError as exc:
            self._audit(message, spec.name, rest, "error", str(exc))
            return Reply.error(one_line(str(exc)))
        except Exception as exc:
            fault = store_fault(exc)
            if fault is not None:
                return self._store_fault(message, spec.name, rest, fault)
            ref = secrets.token_hex(4)
            log.exception("command /%s failed (ref %s)", spec.name, ref)
            self._audit(message, spec.name, rest, "failed", f"{type(exc).__name__}: {exc}", ref)
            return Reply.error("Something went wrong on our side; the operators can look it up.", ref)
        self._audit(message, spec.name, rest, "ok", "")
        return reply

    def _store_fault(self, message: IncomingMessage, command: str, arguments: str, fault: StoreUnavailable) -> Reply:
        """One sentence naming the cause; the transaction that met the fault was rolled back whole."""
        ref = secrets.token_hex(4)
        # No traceback: the cause is known, and a full disk under load would otherwise fill what is left with them.
        log.error("command /%s met a store fault (ref %s): %s", command[:40], ref, fault)
        STORE_FAULTS.note(fault, ref, f"/{command[:40]}")
        STORE_FAULT_COUNT.labels(kind=fault.kind).inc()
        self._audit(message, command, arguments, "failed", str(fault), ref)
        cause = fault.cause[0].upper() + fault.cause[1:]
        return Reply.error(f"{cause}, so nothing was done or saved; please try again later.", ref)

    def _standing(self, message: IncomingMessage) -> Role | None:
        """The sender's role, or None when the chat may not use the bot."""
        if not self.access.chat_allowed(message):
            return None
        return self.access.role_of(message.user)

    def store_actions(
        self, platform: str, chat_id: str, actions: Sequence[Action], *, pressable_by: str = "", created_by: str = ""
    ) -> list[str]:
        """Keep each action server-side and return the ids the platform's buttons carry, in order. Expired buttons
        are deleted at most every `BUTTON_SWEEP_SECONDS`. No ids (the reply goes out without buttons) when the store
        cannot be written."""
        try:
            return self._store_actions(platform, chat_id, actions, pressable_by=pressable_by, created_by=created_by)
        except StoreUnavailable as fault:
            self._background_fault(fault, "storing reply buttons")
            return []

    def _background_fault(self, fault: StoreUnavailable, what: str) -> None:
        """A store fault outside a command's own path: logged with a reference and counted, nothing shown."""
        ref = secrets.token_hex(4)
        log.error("%s met a store fault (ref %s): %s", what, ref, fault)
        STORE_FAULTS.note(fault, ref, what)
        STORE_FAULT_COUNT.labels(kind=fault.kind).inc()

    def _store_actions(
        self, platform: str, chat_id: str, actions: Sequence[Action], *, pressable_by: str, created_by: str
    ) -> list[str]:
        now = utcnow()
        ids = [secrets.token_urlsafe(12) for _ in actions]
        rows = [
            {
                "id": button_id,
                "platform": platform,
                "chat": chat_id,
                "pressable_by": pressable_by,
                "command": action.command,
                "once": action.once,
                "created_by": created_by,
                "created_at": now,
                "expires_at": now + BUTTON_LIFETIME,
                "used_by": "",
            }
            for button_id, action in zip(ids, actions, strict=True)
        ]
        sweep = time.monotonic() - self._buttons_swept >= BUTTON_SWEEP_SECONDS
        with self.db.session() as session:
            if sweep:
                self._buttons_swept = time.monotonic()
                session.execute(delete(ButtonRow).where(col(ButtonRow.expires_at) < now))
            if rows:
                session.execute(insert(ButtonRow), rows)
        return ids

    async def press(self, presser: IncomingMessage, button_id: str) -> Pressed:
        """Run a stored button's command as `presser` (platform, chat and user; its text is ignored)."""
        try:
            return await self._press(presser, button_id)
        except Exception as exc:
            fault = store_fault(exc)
            if fault is None:
                raise
            return Pressed(self._store_fault(presser, "button", button_id[:40], fault))

    async def _press(self, presser: IncomingMessage, button_id: str) -> Pressed:
        row = self._button(button_id[:32])
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

    def _button(self, button_id: str) -> ButtonRow | None:
        with self.db.session() as session:
            return session.get(ButtonRow, button_id)

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
        try:
            fresh = [a for a in found[:MAX_OFFERS] if self._first_offer(message, a)]
        except StoreUnavailable as fault:
            self._background_fault(fault, "offering a risk check")
            return None  # an offer that cannot be remembered would be repeated on every paste
        if not fresh:
            return None
        if len(fresh) == 1:
            text = f"Check the risk of {checksum(fresh[0])}?"
        else:
            text = "Check the risk of these addresses?\n" + "\n".join(checksum(a) for a in fresh)
        actions = tuple(Action(f"Check risk {checksum(a)[:8]}…", f"/risk {a}", once=True) for a in fresh)
        return Reply((Text(text),), actions=actions)

    def _first_offer(self, message: IncomingMessage, address: str) -> bool:
        quiet = timedelta(minutes=self.settings.address_offer_minutes)
        return self.claims.first("offer", (message.platform, message.chat_id, address), quiet)

    def first_delivery(self, platform: str, event_id: str) -> bool:
        """True the first time a platform event id is seen (within `EVENT_MEMORY`, by any bot process on this store);
        False for a re-delivery of an event already taken."""
        if not event_id:
            return True  # nothing to recognise it by
        try:
            return self.claims.first(f"{platform}-event", (event_id,), EVENT_MEMORY)
        except StoreUnavailable as fault:
            # Taken: the command it carries then meets the same fault and says so, rather than vanishing unanswered.
            self._background_fault(fault, f"remembering a {platform[:16]} event")
            return True

    def _audit(
        self, message: IncomingMessage, command: str, arguments: str, outcome: str, detail: str, ref: str = ""
    ) -> None:
        COMMANDS.labels(command=self._metric_name(command), outcome=outcome).inc()
        try:
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
        except StoreUnavailable as fault:
            # The answer still goes out (a read-only command's answer is as good as ever; a change already committed
            # stands): the missing row is an error in the log, with what it would have held, and a count.
            missing = ref or secrets.token_hex(4)
            log.error(
                "audit row not written (ref %s): %s; /%s by %s in %s:%s, outcome %s",
                missing,
                fault,
                command[:40],
                message.user.key,
                message.platform,
                message.chat_id,
                outcome,
            )
            if not ref:
                STORE_FAULTS.note(fault, missing, f"the audit row of /{command[:40]}")
                STORE_FAULT_COUNT.labels(kind=fault.kind).inc()
            STORE_FAULTS.note_unaudited()
            UNAUDITED_COMMANDS.inc()
