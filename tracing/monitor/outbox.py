"""The outbox: chat messages (alert posts, edits, escalation notices) written in the same transaction as the
change they report, then claimed and delivered by the notifier.

A claim is a lease (a notifier that dies loses it when the lease runs out), taken with `FOR UPDATE SKIP LOCKED`
on PostgreSQL. A chat's messages are only ever claimed from the front of its queue, so several notifiers keep
each chat's order. Failed messages are never deleted: they stay `failed`, counted by `outbox_stats` for /status.
Every outcome is also counted per platform in the ops counters (`counters`), in the same transaction.

A message whose send may have reached the platform (a crash mid-send, or an answer lost to a time-out, a dropped
connection or a 5xx) stays `sending` until its lease runs out, and is then claimed `interrupted`: the notifier
finds the post again or flags the re-send (`bot.delivery.notifier`). `sending` in the stats counts those too.

A notice (a message of its own, not an alert's) is typed here: `OpsNotice`, `EscalationNotice`. It is stored as the
row's JSON payload (`{"type": "ops", "text": …}`, `{"type": "escalation", "level": …, …}`) and read back, checked,
by `notice_from_payload`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import and_, exists, func, or_, update
from sqlalchemy.orm import Session
from sqlmodel import col, select

from storage import Database, OutboxMessage, begin_write
from tracing.monitor.clock import Clock, SystemClock
from tracing.monitor.counters import DeliveryOutcome, OpsCount, bump


class OutboxKind(StrEnum):
    ALERT = "alert"
    """Post an alert (several ready at once for one chat may go out as one digest)."""
    ALERT_EDIT = "alert_edit"
    """An alert changed state (confirmed, reorged out, revived): edit the message that shows it."""
    INCIDENT_EDIT = "incident_edit"
    """An incident changed state (acked, assigned, resolved): edit the messages showing its alerts."""
    NOTICE = "notice"
    """A message of its own, described by its `Notice` (escalations, ops notices)."""


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SUPERSEDED = "superseded"
    """Nothing to send any more (an edit whose message was not posted yet: the post shows the new state)."""


UNDELIVERED = (OutboxStatus.PENDING.value, OutboxStatus.SENDING.value)


@dataclass(frozen=True, slots=True)
class OpsNotice:
    """A word to the ops chat: a problem found (head lag, source errors, failed deliveries) or recovered from."""

    text: str


@dataclass(frozen=True, slots=True)
class EscalationNotice:
    """An incident (the outbox row's) nobody acknowledged in time, calling the on-call officer of `level`."""

    level: int
    oncall_key: str
    oncall_name: str
    open_minutes: int


Notice = OpsNotice | EscalationNotice


class NoticeError(ValueError):
    """A stored notice that is not one we know, or lacks what it needs."""


def notice_payload(notice: Notice) -> dict[str, object]:
    """How a notice is stored: the row's JSON payload."""
    if isinstance(notice, OpsNotice):
        return {"type": "ops", "text": notice.text}
    return {
        "type": "escalation",
        "level": notice.level,
        "oncall_key": notice.oncall_key,
        "oncall_name": notice.oncall_name,
        "open_minutes": notice.open_minutes,
    }


def notice_from_payload(payload: Mapping[str, object]) -> Notice:
    """The notice a row's payload holds; `NoticeError` when it holds none we know."""
    kind = payload.get("type")
    if kind == "ops":
        return OpsNotice(_text(payload, "text"))
    if kind == "escalation":
        return EscalationNotice(
            level=_number(payload, "level", 1),
            oncall_key=_text(payload, "oncall_key"),
            oncall_name=_text(payload, "oncall_name"),
            open_minutes=_number(payload, "open_minutes", 0),
        )
    raise NoticeError(f"unknown notice {kind!r}")


def _text(payload: Mapping[str, object], key: str) -> str:
    value = payload.get(key, "")
    if not isinstance(value, str):
        raise NoticeError(f"notice {payload.get('type')!r}: {key} is not text: {value!r}")
    return value


def _number(payload: Mapping[str, object], key: str, default: int) -> int:
    value = payload.get(key, default)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise NoticeError(f"notice {payload.get('type')!r}: {key} is not a whole number: {value!r}")


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    platform: str
    chat: str
    kind: OutboxKind
    alert_id: int | None
    incident_id: int | None
    payload: Mapping[str, object]
    attempts: int
    created_at: datetime
    interrupted: bool = False
    """Claimed again after a claim whose lease ran out: the last send may have reached the platform already."""
    ready_at: datetime | None = None
    """When the row last became ready to send (`next_attempt_at`). Claiming does not move it, so every send attempt
    since the row was last queued — an interrupted one included — happened after it: where to start looking for a
    post that may have got through."""

    def notice(self) -> Notice:
        """What a `NOTICE` row says; `NoticeError` when its payload is not a notice we know."""
        return notice_from_payload(self.payload)

    @classmethod
    def from_row(cls, row: OutboxMessage) -> OutboxItem:
        assert row.id is not None
        return cls(
            id=row.id,
            platform=row.platform,
            chat=row.chat,
            kind=OutboxKind(row.kind),
            alert_id=row.alert_id,
            incident_id=row.incident_id,
            payload=dict(row.payload or {}),
            attempts=row.attempts,
            created_at=row.created_at,
            ready_at=row.next_attempt_at,
        )


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A message already on the platform: the outbox row that posted it (the digest's first row for a digest)."""

    lead_id: int
    platform: str
    chat: str
    message_id: str
    content_hash: str
    alert_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class FailedMessage:
    id: int
    platform: str
    chat: str
    kind: str
    attempts: int
    last_error: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """For /status: what waits, what is being sent, what failed for good (never dropped)."""

    pending: int
    sending: int
    sent: int
    failed: int
    superseded: int
    oldest_pending: datetime | None
    recent_failures: tuple[FailedMessage, ...]

    @property
    def healthy(self) -> bool:
        return self.failed == 0


def enqueue(
    session: Session,
    *,
    platform: str,
    chat: str,
    kind: OutboxKind,
    now: datetime,
    alert_id: int | None = None,
    incident_id: int | None = None,
    notice: Notice | None = None,
) -> OutboxMessage:
    """Add a message to the outbox inside the caller's transaction (so it exists exactly when the change does).
    A `NOTICE` row carries its `notice`."""
    row = OutboxMessage(
        platform=platform,
        chat=chat,
        kind=kind.value,
        alert_id=alert_id,
        incident_id=incident_id,
        payload=notice_payload(notice) if notice is not None else {},
        status=OutboxStatus.PENDING.value,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    return row


class Outbox:
    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()

    # -- claiming -----------------------------------------------------------------------------------------

    def claim(
        self,
        worker: str,
        *,
        platforms: Collection[str],
        limit: int = 100,
        per_chat: int = 20,
        lease: timedelta = timedelta(minutes=5),
    ) -> list[OutboxItem]:
        """Lease up to `limit` ready messages for `worker`, a chat at a time: the chats whose queue front is ready,
        the one waiting longest first, each with up to `per_chat` of its messages (so a burst for one chat is
        claimed together and can go out as a digest, however many other chats have messages waiting).

        Only a prefix of each chat's undelivered queue is taken: a message waiting for a retry (or held by
        another worker) holds back the later messages of its chat, which keeps the order per chat.
        """
        if not platforms:
            return []
        now = self.clock.now()
        ready = or_(
            and_(col(OutboxMessage.status) == OutboxStatus.PENDING.value, col(OutboxMessage.next_attempt_at) <= now),
            and_(col(OutboxMessage.status) == OutboxStatus.SENDING.value, col(OutboxMessage.lease_until) < now),
        )
        in_platforms = col(OutboxMessage.platform).in_(list(platforms))
        with self.db.session() as session:
            ready_rows = select(exists().where(ready, in_platforms))
            if not session.scalar(ready_rows):
                return []  # the usual idle poll: no write lock taken
        with self.db.session() as session:
            begin_write(session)
            fronts = (
                select(func.min(col(OutboxMessage.id)))
                .where(col(OutboxMessage.status).in_(UNDELIVERED), in_platforms)
                .group_by(col(OutboxMessage.platform), col(OutboxMessage.chat))
            )
            chats = session.execute(
                select(col(OutboxMessage.platform), col(OutboxMessage.chat))
                .where(col(OutboxMessage.id).in_(fronts), ready)
                .order_by(col(OutboxMessage.id))
                .limit(max(1, limit))
            ).all()
            claimed: list[OutboxMessage] = []
            for platform, chat in chats:
                room = min(per_chat, limit - len(claimed))
                if room <= 0:
                    break
                of_chat = and_(
                    col(OutboxMessage.platform) == platform,
                    col(OutboxMessage.chat) == chat,
                    col(OutboxMessage.status).in_(UNDELIVERED),
                )
                front = session.scalars(
                    select(col(OutboxMessage.id)).where(of_chat).order_by(col(OutboxMessage.id)).limit(room)
                ).all()
                rows = session.scalars(
                    select(OutboxMessage)
                    .where(col(OutboxMessage.id).in_(list(front)), ready)
                    .order_by(col(OutboxMessage.id))
                    .with_for_update(skip_locked=True)
                ).all()
                # Only the unbroken front: a row locked by another claimer, or not ready, ends the chat's share.
                for row, front_id in zip(rows, front, strict=False):
                    if row.id != front_id:
                        break
                    claimed.append(row)
            items = []
            for row in claimed:
                # A row still `sending` was held by a worker that died mid-send, or left in doubt by a send whose
                # outcome is unknown (`retry_in_doubt`): it may be on the platform already.
                interrupted = row.status == OutboxStatus.SENDING.value
                items.append(replace(OutboxItem.from_row(row), interrupted=interrupted))
                row.status = OutboxStatus.SENDING.value
                row.claimed_by = worker[:64]
                row.lease_until = now + lease
                session.add(row)
        return sorted(items, key=lambda item: item.id)

    # -- outcomes -----------------------------------------------------------------------------------------

    def mark_sent(
        self, ids: Sequence[int], message_id: str, *, group_id: int | None = None, content_hash: str = ""
    ) -> None:
        """The messages went out (as one platform message when several ids: a digest led by `group_id`)."""
        now = self.clock.now()
        with self.db.session() as session:
            platforms = session.scalars(
                update(OutboxMessage)
                .where(col(OutboxMessage.id).in_(list(ids)))
                .values(
                    status=OutboxStatus.SENT.value,
                    message_id=message_id[:120],
                    group_id=group_id,
                    sent_at=now,
                    lease_until=None,
                    last_error="",
                )
                .returning(col(OutboxMessage.platform))
            ).all()
            _count(session, platforms, DeliveryOutcome.SENT)
            if content_hash:
                lead = group_id if group_id is not None else ids[0]
                session.execute(
                    update(OutboxMessage).where(col(OutboxMessage.id) == lead).values(content_hash=content_hash)
                )

    def mark_done(self, item_id: int, status: OutboxStatus, note: str = "") -> None:
        """Settle a message that needed no platform call (`sent` for an unchanged edit, or `superseded`)."""
        with self.db.session() as session:
            platforms = session.scalars(
                update(OutboxMessage)
                .where(col(OutboxMessage.id) == item_id)
                .values(status=status.value, sent_at=self.clock.now(), lease_until=None, last_error=note[:2000])
                .returning(col(OutboxMessage.platform))
            ).all()
            outcome = _SETTLED.get(status)
            if outcome is not None:
                _count(session, platforms, outcome)

    def set_content_hash(self, lead_id: int, content_hash: str) -> None:
        with self.db.session() as session:
            session.execute(
                update(OutboxMessage).where(col(OutboxMessage.id) == lead_id).values(content_hash=content_hash)
            )

    def _update(
        self, ids: Sequence[int], values: dict[str, object], outcome: DeliveryOutcome, *, count_attempt: bool
    ) -> None:
        """Set `values` on the rows `ids`, counting one more attempt when asked, and count the outcome."""
        if count_attempt:
            values = {**values, "attempts": col(OutboxMessage.attempts) + 1}
        with self.db.session() as session:
            platforms = session.scalars(
                update(OutboxMessage)
                .where(col(OutboxMessage.id).in_(list(ids)))
                .values(**values)
                .returning(col(OutboxMessage.platform))
            ).all()
            _count(session, platforms, outcome)

    def retry_later(self, ids: Sequence[int], delay: float, error: str, *, count_attempt: bool) -> None:
        """Back to the queue, not before `delay` seconds. A retry that does not count as a failed attempt is a
        rate limit (`count_attempt=False`): counted as the platform's 429 in the ops counters."""
        values: dict[str, object] = {
            "status": OutboxStatus.PENDING.value,
            "next_attempt_at": self.clock.now() + timedelta(seconds=max(0.0, delay)),
            "lease_until": None,
            "last_error": error[:2000],
        }
        outcome = DeliveryOutcome.RETRIED if count_attempt else DeliveryOutcome.RATE_LIMITED
        self._update(ids, values, outcome, count_attempt=count_attempt)

    def retry_in_doubt(self, ids: Sequence[int], delay: float, error: str, *, count_attempt: bool = True) -> None:
        """A send whose outcome is unknown (a time-out or a dropped connection after the request went out, a 5xx):
        the rows stay `sending` with their lease cut to `delay` seconds, exactly as a claim of a process that died
        mid-send, so the next claim after that hands them out `interrupted` and the notifier checks (or flags)
        before posting again. `next_attempt_at` is kept: it still marks the start of every attempt so far.
        `count_attempt=False` is a rate limit, as for `retry_later`."""
        values: dict[str, object] = {
            "status": OutboxStatus.SENDING.value,
            "lease_until": self.clock.now() + timedelta(seconds=max(0.0, delay)),
            "last_error": error[:2000],
        }
        outcome = DeliveryOutcome.IN_DOUBT if count_attempt else DeliveryOutcome.RATE_LIMITED
        self._update(ids, values, outcome, count_attempt=count_attempt)

    def release(self, ids: Sequence[int]) -> None:
        """Give claimed messages back untouched (their turn comes after an earlier message of the chat)."""
        if not ids:
            return
        with self.db.session() as session:
            session.execute(
                update(OutboxMessage)
                .where(col(OutboxMessage.id).in_(list(ids)), col(OutboxMessage.status) == OutboxStatus.SENDING.value)
                .values(status=OutboxStatus.PENDING.value, lease_until=None)
            )

    def mark_failed(self, ids: Sequence[int], error: str, *, count_attempt: bool = True) -> None:
        """Given up on: kept as `failed` (visible in /status and the store), no longer holding back its chat."""
        values: dict[str, object] = {
            "status": OutboxStatus.FAILED.value,
            "lease_until": None,
            "last_error": error[:2000],
        }
        self._update(ids, values, DeliveryOutcome.FAILED, count_attempt=count_attempt)

    def requeue_failed(self, ids: Sequence[int] | None = None) -> int:
        """Put failed messages back in the queue (all of them, or `ids`) with a fresh attempt count."""
        query = update(OutboxMessage).where(col(OutboxMessage.status) == OutboxStatus.FAILED.value)
        if ids is not None:
            query = query.where(col(OutboxMessage.id).in_(list(ids)))
        with self.db.session() as session:
            result = session.execute(
                query.values(status=OutboxStatus.PENDING.value, attempts=0, next_attempt_at=self.clock.now())
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # -- what was sent ------------------------------------------------------------------------------------

    def post_of_alert(self, alert_id: int) -> tuple[OutboxStatus, SentMessage | None] | None:
        """The state of the post that carries an alert, with the platform message once it is sent."""
        with self.db.session() as session:
            row = session.scalars(
                select(OutboxMessage)
                .where(col(OutboxMessage.alert_id) == alert_id, col(OutboxMessage.kind) == OutboxKind.ALERT.value)
                .order_by(col(OutboxMessage.id))
                .limit(1)
            ).first()
            if row is None:
                return None
            status = OutboxStatus(row.status)
            lead = row.group_id if row.group_id is not None else row.id
            if status is not OutboxStatus.SENT or lead is None:
                return status, None
            return status, self._message(session, lead)

    def messages_of_incident(self, incident_id: int, alert_ids: Sequence[int], limit: int = 20) -> list[SentMessage]:
        """The newest `limit` platform messages showing any of an incident's alerts."""
        if not alert_ids:
            return []
        with self.db.session() as session:
            rows = session.scalars(
                select(OutboxMessage)
                .where(
                    col(OutboxMessage.alert_id).in_(list(alert_ids)),
                    col(OutboxMessage.kind) == OutboxKind.ALERT.value,
                    col(OutboxMessage.status) == OutboxStatus.SENT.value,
                )
                .order_by(col(OutboxMessage.id).desc())
            ).all()
            leads: list[int] = []
            for row in rows:
                lead = row.group_id if row.group_id is not None else row.id
                assert lead is not None
                if lead not in leads:
                    leads.append(lead)
                if len(leads) >= limit:
                    break
            return [self._message(session, lead) for lead in sorted(leads)]

    @staticmethod
    def _message(session: Session, lead_id: int) -> SentMessage:
        lead = session.get(OutboxMessage, lead_id)
        assert lead is not None and lead.id is not None
        members = session.scalars(
            select(OutboxMessage)
            .where(or_(col(OutboxMessage.id) == lead_id, col(OutboxMessage.group_id) == lead_id))
            .order_by(col(OutboxMessage.id))
        ).all()
        alert_ids = tuple(dict.fromkeys(m.alert_id for m in members if m.alert_id is not None))
        return SentMessage(lead.id, lead.platform, lead.chat, lead.message_id, lead.content_hash, alert_ids)


_SETTLED = {OutboxStatus.SENT: DeliveryOutcome.SENT, OutboxStatus.SUPERSEDED: DeliveryOutcome.SUPERSEDED}
"""What `mark_done` settles a message as, for the counters."""


def _count(session: Session, platforms: Sequence[str], outcome: DeliveryOutcome) -> None:
    """Count one delivery outcome (one platform call, whatever the number of rows it carried) for the platform of
    the rows it settled (`platforms`, one per row; none when the rows are gone), and a rate limit as that
    platform's 429 too."""
    if not platforms:
        return
    platform = platforms[0]
    bump(session, OpsCount.DELIVERIES, platform, outcome.value)
    if outcome is DeliveryOutcome.RATE_LIMITED:
        bump(session, OpsCount.RATE_LIMITED, platform)


def outbox_stats(db: Database, *, failures: int = 5) -> OutboxStats:
    """Counts per status, the oldest waiting message and the latest failures (for /status)."""
    with db.session() as session:
        counts = dict(
            session.execute(select(col(OutboxMessage.status), func.count()).group_by(col(OutboxMessage.status))).all()
        )
        oldest = session.scalars(
            select(func.min(col(OutboxMessage.created_at))).where(col(OutboxMessage.status).in_(UNDELIVERED))
        ).first()
        failed_rows = session.scalars(
            select(OutboxMessage)
            .where(col(OutboxMessage.status) == OutboxStatus.FAILED.value)
            .order_by(col(OutboxMessage.id).desc())
            .limit(failures)
        ).all()
        recent = tuple(
            FailedMessage(r.id or 0, r.platform, r.chat, r.kind, r.attempts, r.last_error, r.created_at)
            for r in failed_rows
        )
    return OutboxStats(
        pending=int(counts.get(OutboxStatus.PENDING.value, 0)),
        sending=int(counts.get(OutboxStatus.SENDING.value, 0)),
        sent=int(counts.get(OutboxStatus.SENT.value, 0)),
        failed=int(counts.get(OutboxStatus.FAILED.value, 0)),
        superseded=int(counts.get(OutboxStatus.SUPERSEDED.value, 0)),
        oldest_pending=oldest,
        recent_failures=recent,
    )
