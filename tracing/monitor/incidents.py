"""Incidents: alerts grouped into something an officer acts on, with a state machine
(open → acknowledged → resolved, and back from acknowledged to open), an AML disposition on resolution, and
escalation to the on-call roster when nobody acknowledges in time.

Every transition is one transaction that writes the incident, its timeline event, an audit-log row and the
outbox edit that updates the alert messages in chat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, exists
from sqlalchemy.orm import Session
from sqlmodel import col, select

from storage import (
    AlertRow,
    Database,
    EscalationPolicyRow,
    IncidentEventRow,
    IncidentRow,
    OnCallRow,
    audit_row,
    begin_write,
)
from tracing.chain.address import short
from tracing.errors import InvalidArgument, NotFound, UserError
from tracing.monitor.clock import Clock, SystemClock, sleep_or_stop
from tracing.monitor.outbox import EscalationNotice, OutboxKind, enqueue

log = logging.getLogger(__name__)

DEFAULT_WINDOW = timedelta(hours=1)
"""A new alert joins the watch's unresolved incident when that incident had an alert this recently."""

ANY_CHAT = "*"
"""The `chat` of a platform-wide escalation policy."""


class IncidentState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Disposition(StrEnum):
    """How an AML officer closes an incident."""

    TRUE_POSITIVE = "true_positive"
    FALSE_POSITIVE = "false_positive"
    ESCALATED = "escalated"
    REPORTED = "reported"

    @property
    def display(self) -> str:
        return self.value.replace("_", " ")

    @classmethod
    def parse(cls, text: str) -> Disposition:
        key = text.strip().lower().replace("-", "_")
        found = _DISPOSITION_ALIASES.get(key)
        if found is None:
            raise InvalidArgument(f"“{text[:30]}” is not a disposition; use one of: {', '.join(d for d in cls)}.")
        return found


_DISPOSITION_ALIASES = {d.value: d for d in Disposition} | {
    "tp": Disposition.TRUE_POSITIVE,
    "fp": Disposition.FALSE_POSITIVE,
    "sar": Disposition.REPORTED,
    "str": Disposition.REPORTED,
}


class InvalidTransition(UserError):
    """The incident is not in a state that allows this (acking a resolved incident, ...)."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who changes an incident: `key` is `platform:user_id`, `name` what chat shows."""

    key: str
    name: str
    platform: str
    chat: str = ""


SYSTEM = Actor("system", "chainsleuth", "system")


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    platform: str
    chat: str
    chain: str
    address: str
    watch_id: int | None
    state: IncidentState
    title: str
    opened_at: datetime
    last_alert_at: datetime
    alert_count: int
    owner_key: str
    owner_name: str
    acked_by: str
    acked_at: datetime | None
    resolved_by: str
    resolved_at: datetime | None
    disposition: Disposition | None
    resolution_note: str
    escalation_level: int
    next_escalation_at: datetime | None

    @property
    def active(self) -> bool:
        return self.state is not IncidentState.RESOLVED

    @classmethod
    def from_row(cls, row: IncidentRow) -> Incident:
        assert row.id is not None
        return cls(
            id=row.id,
            platform=row.platform,
            chat=row.chat,
            chain=row.chain,
            address=row.address,
            watch_id=row.watch_id,
            state=IncidentState(row.state),
            title=row.title,
            opened_at=row.opened_at,
            last_alert_at=row.last_alert_at,
            alert_count=row.alert_count,
            owner_key=row.owner_key,
            owner_name=row.owner_name,
            acked_by=row.acked_by,
            acked_at=row.acked_at,
            resolved_by=row.resolved_by,
            resolved_at=row.resolved_at,
            disposition=Disposition(row.disposition) if row.disposition else None,
            resolution_note=row.resolution_note,
            escalation_level=row.escalation_level,
            next_escalation_at=row.next_escalation_at,
        )


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    at: datetime
    actor: str
    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class EscalationPolicy:
    """`steps[0]`: how long an open incident may wait before level 1 is called; `steps[n]`: the wait after
    level n before level n + 1. After the last step the incident stays open and listed, without more calls."""

    steps: tuple[timedelta, ...]

    def delay(self, level: int) -> timedelta | None:
        """The wait before escalating from `level` (0: not escalated yet) to the next, None after the last."""
        return self.steps[level] if 0 <= level < len(self.steps) else None

    @property
    def minutes(self) -> tuple[int, ...]:
        return tuple(int(step.total_seconds() // 60) for step in self.steps)


DEFAULT_POLICY = EscalationPolicy((timedelta(minutes=15), timedelta(minutes=15)))


@dataclass(frozen=True, slots=True)
class OnCall:
    level: int
    user_key: str
    user_name: str


@dataclass(frozen=True, slots=True)
class Escalation:
    incident_id: int
    level: int
    oncall: OnCall | None


def _event(session: Session, incident: IncidentRow, actor: Actor, kind: str, detail: str, now: datetime) -> None:
    assert incident.id is not None
    session.add(IncidentEventRow(incident_id=incident.id, at=now, actor=actor.key[:120], kind=kind, detail=detail))


def _audit(session: Session, incident: IncidentRow, actor: Actor, command: str, detail: str, now: datetime) -> None:
    session.add(
        audit_row(
            at=now,
            actor=actor.key,
            platform=(actor.platform if actor is not SYSTEM else incident.platform),
            chat=(actor.chat or incident.chat),
            command=command,
            arguments=f"#{incident.id}",
            outcome="ok",
            detail=detail,
        )
    )


def _edit(session: Session, incident: IncidentRow, now: datetime) -> None:
    enqueue(
        session,
        platform=incident.platform,
        chat=incident.chat,
        kind=OutboxKind.INCIDENT_EDIT,
        incident_id=incident.id,
        now=now,
    )


def policy_for(session: Session, platform: str, chat: str) -> EscalationPolicy:
    """The chat's policy, else the platform-wide one, else the default."""
    for where in (chat, ANY_CHAT):
        row = session.get(EscalationPolicyRow, (platform, where))
        if row is not None and row.steps_minutes:
            return EscalationPolicy(tuple(timedelta(minutes=int(m)) for m in row.steps_minutes))
    return DEFAULT_POLICY


def attach_alert(
    session: Session, alert: AlertRow, now: datetime, *, window: timedelta = DEFAULT_WINDOW
) -> IncidentRow:
    """Put a new alert into the watch's unresolved incident from within `window`, or open a new incident.

    Alerts without a watch (label changes reaching a chat that ran /risk) group by chat and address.
    """
    query = select(IncidentRow).where(
        col(IncidentRow.state) != IncidentState.RESOLVED.value, col(IncidentRow.last_alert_at) >= now - window
    )
    if alert.watch_id is not None:
        query = query.where(col(IncidentRow.watch_id) == alert.watch_id)
    else:
        query = query.where(
            col(IncidentRow.watch_id).is_(None),
            col(IncidentRow.platform) == alert.platform,
            col(IncidentRow.chat) == alert.chat,
            col(IncidentRow.chain) == alert.chain,
            col(IncidentRow.address) == alert.address,
        )
    incident = session.scalars(query.order_by(col(IncidentRow.id).desc()).limit(1).with_for_update()).first()
    if incident is None:
        delay = policy_for(session, alert.platform, alert.chat).delay(0)
        incident = IncidentRow(
            platform=alert.platform,
            chat=alert.chat,
            chain=alert.chain,
            address=alert.address,
            watch_id=alert.watch_id,
            state=IncidentState.OPEN.value,
            title=_title(alert),
            opened_at=now,
            last_alert_at=now,
            alert_count=1,
            next_escalation_at=now + delay if delay is not None else None,
            updated_at=now,
        )
        session.add(incident)
        session.flush()
        _event(session, incident, SYSTEM, "opened", f"opened by alert ({alert.kind})", now)
        _audit(session, incident, SYSTEM, "incident.open", f"opened: {incident.title}", now)
    else:
        incident.alert_count += 1
        incident.last_alert_at = now
        incident.updated_at = now
        session.add(incident)
        session.flush()
        _event(session, incident, SYSTEM, "alert", f"alert joined ({alert.kind})", now)
    alert.incident_id = incident.id
    return incident


def _title(alert: AlertRow) -> str:
    if alert.kind == "label_change":
        return f"{short(alert.address)} on {alert.chain} got a new risk label"
    return f"Activity of watched {short(alert.address)} on {alert.chain}"


def note_alert_change(session: Session, alert: AlertRow, detail: str, now: datetime) -> None:
    """Put an alert's state change (reorged out, back in a block) on its incident's timeline."""
    if alert.incident_id is None:
        return
    incident = session.get(IncidentRow, alert.incident_id)
    if incident is not None:
        _event(session, incident, SYSTEM, "alert_" + alert.status, detail, now)


class IncidentDesk:
    """Reads and changes incidents, the on-call roster and escalation policies."""

    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()

    # -- reading ------------------------------------------------------------------------------------------

    def get(self, incident_id: int, *, platform: str | None = None) -> Incident:
        with self.db.session() as session:
            return Incident.from_row(self._load(session, incident_id, platform))

    def many(self, ids: Sequence[int]) -> dict[int, Incident]:
        if not ids:
            return {}
        with self.db.session() as session:
            rows = session.scalars(select(IncidentRow).where(col(IncidentRow.id).in_(list(ids))))
            return {row.id: Incident.from_row(row) for row in rows if row.id is not None}

    def listing(
        self, *, platform: str, chats: Sequence[str], scope: str, actor_key: str, limit: int = 20
    ) -> list[Incident]:
        """`open`: unresolved incidents of these chats; `mine`: unresolved ones owned by the actor (any chat of
        the platform); `all`: every incident of these chats, newest first."""
        query = select(IncidentRow).where(col(IncidentRow.platform) == platform)
        if scope == "mine":
            query = query.where(
                col(IncidentRow.owner_key) == actor_key, col(IncidentRow.state) != IncidentState.RESOLVED.value
            )
        else:
            query = query.where(col(IncidentRow.chat).in_(list(chats)))
            if scope == "open":
                query = query.where(col(IncidentRow.state) != IncidentState.RESOLVED.value)
        query = query.order_by(col(IncidentRow.id).desc()).limit(limit)
        with self.db.session() as session:
            return [Incident.from_row(row) for row in session.scalars(query)]

    def events(self, incident_id: int) -> list[IncidentEvent]:
        with self.db.session() as session:
            rows = session.scalars(
                select(IncidentEventRow)
                .where(col(IncidentEventRow.incident_id) == incident_id)
                .order_by(col(IncidentEventRow.id))
            )
            return [IncidentEvent(r.at, r.actor, r.kind, r.detail) for r in rows]

    def alert_ids(self, incident_id: int) -> list[int]:
        with self.db.session() as session:
            return [
                i
                for i in session.scalars(
                    select(col(AlertRow.id)).where(col(AlertRow.incident_id) == incident_id).order_by(col(AlertRow.id))
                )
                if i is not None
            ]

    @staticmethod
    def _load(session: Session, incident_id: int, platform: str | None, *, lock: bool = False) -> IncidentRow:
        query = select(IncidentRow).where(col(IncidentRow.id) == incident_id)
        if lock:
            query = query.with_for_update()
        row = session.scalars(query).first()
        if row is None or (platform is not None and row.platform != platform):
            raise NotFound(f"No incident #{incident_id}.")
        return row

    # -- transitions --------------------------------------------------------------------------------------

    def ack(self, incident_id: int, actor: Actor, *, platform: str | None = None) -> Incident:
        """Acknowledge: the acker owns the incident and escalation stops."""
        now = self.clock.now()
        with self.db.session() as session:
            begin_write(session)
            row = self._load(session, incident_id, platform, lock=True)
            if row.state == IncidentState.RESOLVED.value:
                raise InvalidTransition(f"Incident #{incident_id} is already resolved.")
            if row.state == IncidentState.ACKNOWLEDGED.value:
                raise InvalidTransition(f"Incident #{incident_id} is already acknowledged by {row.acked_by}.")
            row.state = IncidentState.ACKNOWLEDGED.value
            row.acked_by = actor.name[:120]
            row.acked_at = now
            row.owner_key, row.owner_name = actor.key[:120], actor.name[:120]
            row.next_escalation_at = None
            row.updated_at = now
            session.add(row)
            _event(session, row, actor, "acknowledged", f"acknowledged by {actor.name}; owner {actor.name}", now)
            _audit(session, row, actor, "incident.ack", "open → acknowledged", now)
            _edit(session, row, now)
            return Incident.from_row(row)

    def unack(self, incident_id: int, actor: Actor, *, platform: str | None = None) -> Incident:
        """Back to open: nobody owns it and escalation starts again from the first level."""
        now = self.clock.now()
        with self.db.session() as session:
            begin_write(session)
            row = self._load(session, incident_id, platform, lock=True)
            if row.state != IncidentState.ACKNOWLEDGED.value:
                raise InvalidTransition(f"Incident #{incident_id} is {row.state}, not acknowledged.")
            delay = policy_for(session, row.platform, row.chat).delay(0)
            row.state = IncidentState.OPEN.value
            row.acked_by, row.acked_at = "", None
            row.owner_key, row.owner_name = "", ""
            row.escalation_level = 0
            row.next_escalation_at = now + delay if delay is not None else None
            row.updated_at = now
            session.add(row)
            _event(session, row, actor, "unacknowledged", f"acknowledgement withdrawn by {actor.name}", now)
            _audit(session, row, actor, "incident.unack", "acknowledged → open", now)
            _edit(session, row, now)
            return Incident.from_row(row)

    def assign(
        self, incident_id: int, actor: Actor, owner_key: str, owner_name: str, *, platform: str | None = None
    ) -> Incident:
        now = self.clock.now()
        with self.db.session() as session:
            begin_write(session)
            row = self._load(session, incident_id, platform, lock=True)
            if row.state == IncidentState.RESOLVED.value:
                raise InvalidTransition(f"Incident #{incident_id} is already resolved.")
            before = row.owner_name or "nobody"
            row.owner_key, row.owner_name = owner_key[:120], owner_name[:120]
            row.updated_at = now
            session.add(row)
            _event(session, row, actor, "assigned", f"owner {before} → {owner_name} (by {actor.name})", now)
            _audit(session, row, actor, "incident.assign", f"owner {before} → {owner_name}", now)
            _edit(session, row, now)
            return Incident.from_row(row)

    def resolve(
        self,
        incident_id: int,
        actor: Actor,
        disposition: Disposition,
        note: str = "",
        *,
        platform: str | None = None,
    ) -> Incident:
        now = self.clock.now()
        with self.db.session() as session:
            begin_write(session)
            row = self._load(session, incident_id, platform, lock=True)
            if row.state == IncidentState.RESOLVED.value:
                raise InvalidTransition(
                    f"Incident #{incident_id} is already resolved ({row.disposition.replace('_', ' ')})."
                )
            before = row.state
            row.state = IncidentState.RESOLVED.value
            row.disposition = disposition.value
            row.resolution_note = note
            row.resolved_by, row.resolved_at = actor.name[:120], now
            if not row.owner_key:
                row.owner_key, row.owner_name = actor.key[:120], actor.name[:120]
            row.next_escalation_at = None
            row.updated_at = now
            session.add(row)
            detail = f"resolved as {disposition.display} by {actor.name}" + (f": {note}" if note else "")
            _event(session, row, actor, "resolved", detail, now)
            _audit(session, row, actor, "incident.resolve", f"{before} → resolved ({disposition.value}) {note}", now)
            _edit(session, row, now)
            return Incident.from_row(row)

    # -- escalation ---------------------------------------------------------------------------------------

    def escalate_due(self, limit: int = 100) -> list[Escalation]:
        """Escalate every open incident whose acknowledgement is overdue: re-notify its chat, mentioning the
        on-call officer of the next level, and schedule the level after that."""
        now = self.clock.now()
        done: list[Escalation] = []
        with self.db.session() as session:
            begin_write(session)
            rows = session.scalars(
                select(IncidentRow)
                .where(
                    col(IncidentRow.state) == IncidentState.OPEN.value,
                    col(IncidentRow.next_escalation_at).is_not(None),
                    col(IncidentRow.next_escalation_at) <= now,
                )
                .order_by(col(IncidentRow.next_escalation_at))
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                assert row.id is not None
                policy = policy_for(session, row.platform, row.chat)
                live = session.scalar(
                    select(exists().where(col(AlertRow.incident_id) == row.id, col(AlertRow.status) != "reorged_out"))
                )
                if not live:  # every alert of it was reorged out: nothing to call anyone about, look again later
                    row.next_escalation_at = now + (policy.delay(row.escalation_level) or DEFAULT_POLICY.steps[0])
                    session.add(row)
                    continue
                level = row.escalation_level + 1
                oncall = _oncall_at(session, row.platform, row.chat, level)
                delay = policy.delay(level)
                row.escalation_level = level
                row.next_escalation_at = now + delay if delay is not None else None
                row.updated_at = now
                session.add(row)
                who = oncall.user_name if oncall else "nobody (no on-call roster for this chat)"
                _event(session, row, SYSTEM, "escalated", f"level {level}: {who}", now)
                _audit(session, row, SYSTEM, "incident.escalate", f"not acknowledged; level {level}: {who}", now)
                enqueue(
                    session,
                    platform=row.platform,
                    chat=row.chat,
                    kind=OutboxKind.NOTICE,
                    incident_id=row.id,
                    now=now,
                    notice=EscalationNotice(
                        level=level,
                        oncall_key=oncall.user_key if oncall else "",
                        oncall_name=oncall.user_name if oncall else "",
                        open_minutes=int((now - row.opened_at).total_seconds() // 60),
                    ),
                )
                done.append(Escalation(row.id, level, oncall))
        return done

    async def run_escalations(self, stop: asyncio.Event, *, interval: float = 15.0) -> None:
        """Escalate overdue incidents every `interval` seconds until `stop` is set."""
        while not stop.is_set():
            try:
                for escalation in self.escalate_due():
                    log.info("incident #%d escalated to level %d", escalation.incident_id, escalation.level)
            except Exception:  # the loop must outlive a store hiccup; the next round retries
                log.exception("escalation round failed")
            if await sleep_or_stop(self.clock, interval, stop):
                return

    # -- roster and policy --------------------------------------------------------------------------------

    def roster(self, platform: str, chat: str) -> list[OnCall]:
        with self.db.session() as session:
            rows = session.scalars(
                select(OnCallRow)
                .where(col(OnCallRow.platform) == platform, col(OnCallRow.chat) == chat)
                .order_by(col(OnCallRow.level))
            )
            return [OnCall(r.level, r.user_key, r.user_name) for r in rows]

    def set_oncall(self, platform: str, chat: str, level: int, user_key: str, user_name: str, actor: Actor) -> None:
        if not 1 <= level <= 5:
            raise InvalidArgument("The on-call level is 1 (first responder) to 5.")
        now = self.clock.now()
        with self.db.session() as session:
            begin_write(session)
            row = session.get(OnCallRow, (platform, chat, level)) or OnCallRow(
                platform=platform, chat=chat, level=level, user_key=user_key
            )
            row.user_key, row.user_name = user_key[:120], user_name[:120]
            row.set_by, row.set_at = actor.key[:120], now
            session.add(row)
            session.add(
                audit_row(
                    at=now,
                    actor=actor.key,
                    platform=platform,
                    chat=chat,
                    command="oncall.set",
                    arguments=f"level {level}",
                    outcome="ok",
                    detail=f"level {level}: {user_name}",
                )
            )

    def clear_oncall(self, platform: str, chat: str, level: int, actor: Actor) -> bool:
        now = self.clock.now()
        with self.db.session() as session:
            begin_write(session)
            result = session.execute(
                delete(OnCallRow).where(
                    col(OnCallRow.platform) == platform, col(OnCallRow.chat) == chat, col(OnCallRow.level) == level
                )
            )
            removed = bool(result.rowcount)  # type: ignore[attr-defined]
            if removed:
                session.add(
                    audit_row(
                        at=now,
                        actor=actor.key,
                        platform=platform,
                        chat=chat,
                        command="oncall.clear",
                        arguments=f"level {level}",
                        outcome="ok",
                    )
                )
            return removed

    def policy(self, platform: str, chat: str) -> EscalationPolicy:
        with self.db.session() as session:
            return policy_for(session, platform, chat)

    def set_policy(self, platform: str, chat: str, minutes: Sequence[int], actor: Actor) -> EscalationPolicy:
        if not minutes or any(m < 1 or m > 7 * 24 * 60 for m in minutes) or len(minutes) > 5:
            raise InvalidArgument("Give 1 to 5 waits in minutes, each between 1 and 10080 (a week).")
        now = self.clock.now()
        with self.db.session() as session:
            begin_write(session)
            row = session.get(EscalationPolicyRow, (platform, chat)) or EscalationPolicyRow(
                platform=platform, chat=chat
            )
            row.steps_minutes = [int(m) for m in minutes]
            row.updated_by, row.updated_at = actor.key[:120], now
            session.add(row)
            session.add(
                audit_row(
                    at=now,
                    actor=actor.key,
                    platform=platform,
                    chat=chat,
                    command="oncall.policy",
                    arguments=",".join(str(m) for m in minutes),
                    outcome="ok",
                )
            )
        return EscalationPolicy(tuple(timedelta(minutes=m) for m in minutes))


def _oncall_at(session: Session, platform: str, chat: str, level: int) -> OnCall | None:
    """The roster entry for `level`, else the nearest level below it."""
    row = session.scalars(
        select(OnCallRow)
        .where(col(OnCallRow.platform) == platform, col(OnCallRow.chat) == chat, col(OnCallRow.level) <= level)
        .order_by(col(OnCallRow.level).desc())
        .limit(1)
    ).first()
    return OnCall(row.level, row.user_key, row.user_name) if row else None
