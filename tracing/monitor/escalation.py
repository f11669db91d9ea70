"""The escalation loop: an open incident nobody acknowledged in time is re-notified in its chat, mentioning the
on-call officer of the next level (`oncall`), and the level after that is scheduled."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy import exists
from sqlmodel import col, select

from storage import AlertRow, Database, IncidentRow, begin_write
from tracing.monitor.actor import SYSTEM
from tracing.monitor.clock import Clock, SystemClock, sleep_or_stop
from tracing.monitor.incidents import IncidentState, add_audit, add_event
from tracing.monitor.oncall import DEFAULT_POLICY, OnCall, oncall_at, policy_for
from tracing.monitor.outbox import EscalationNotice, OutboxKind, enqueue

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Escalation:
    incident_id: int
    level: int
    oncall: OnCall | None


class Escalator:
    """Escalates overdue incidents, once (`escalate_due`) or in a loop (`run_escalations`)."""

    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()

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
                oncall = oncall_at(session, row.platform, row.chat, level)
                delay = policy.delay(level)
                row.escalation_level = level
                row.next_escalation_at = now + delay if delay is not None else None
                row.updated_at = now
                session.add(row)
                who = oncall.user_name if oncall else "nobody (no on-call roster for this chat)"
                add_event(session, row, SYSTEM, "escalated", f"level {level}: {who}", now)
                add_audit(session, row, SYSTEM, "incident.escalate", f"not acknowledged; level {level}: {who}", now)
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
