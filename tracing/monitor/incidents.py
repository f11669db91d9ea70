"""Incidents: alerts grouped into something an officer acts on, with a state machine
(open → acknowledged → resolved, and back from acknowledged to open) and an AML disposition on resolution.
`IncidentDesk` reads and changes them; the roster is `oncall`, the loop that calls it `escalation`.

Every transition is one transaction that writes the incident, its timeline event, an audit-log row and the
outbox edit that updates the alert messages in chat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.orm import Session
from sqlmodel import col, select

from storage import AlertRow, Database, IncidentEventRow, IncidentRow, audit_row, begin_write
from tracing.chain import short
from tracing.errors import InvalidArgument, NotFound, UserError
from tracing.monitor.actor import SYSTEM, Actor
from tracing.monitor.clock import Clock, SystemClock
from tracing.monitor.oncall import policy_for
from tracing.monitor.outbox import OutboxKind, enqueue

DEFAULT_WINDOW = timedelta(hours=1)
"""A new alert joins the watch's unresolved incident when that incident had an alert this recently."""


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


def add_event(session: Session, incident: IncidentRow, actor: Actor, kind: str, detail: str, now: datetime) -> None:
    assert incident.id is not None
    session.add(IncidentEventRow(incident_id=incident.id, at=now, actor=actor.key[:120], kind=kind, detail=detail))


def add_audit(session: Session, incident: IncidentRow, actor: Actor, command: str, detail: str, now: datetime) -> None:
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
        add_event(session, incident, SYSTEM, "opened", f"opened by alert ({alert.kind})", now)
        add_audit(session, incident, SYSTEM, "incident.open", f"opened: {incident.title}", now)
    else:
        incident.alert_count += 1
        incident.last_alert_at = now
        incident.updated_at = now
        session.add(incident)
        session.flush()
        add_event(session, incident, SYSTEM, "alert", f"alert joined ({alert.kind})", now)
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
        add_event(session, incident, SYSTEM, "alert_" + alert.status, detail, now)


class IncidentDesk:
    """Reads incidents and moves them through their states."""

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
            add_event(session, row, actor, "acknowledged", f"acknowledged by {actor.name}; owner {actor.name}", now)
            add_audit(session, row, actor, "incident.ack", "open → acknowledged", now)
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
            add_event(session, row, actor, "unacknowledged", f"acknowledgement withdrawn by {actor.name}", now)
            add_audit(session, row, actor, "incident.unack", "acknowledged → open", now)
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
            add_event(session, row, actor, "assigned", f"owner {before} → {owner_name} (by {actor.name})", now)
            add_audit(session, row, actor, "incident.assign", f"owner {before} → {owner_name}", now)
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
            add_event(session, row, actor, "resolved", detail, now)
            add_audit(session, row, actor, "incident.resolve", f"{before} → resolved ({disposition.value}) {note}", now)
            _edit(session, row, now)
            return Incident.from_row(row)
