"""The on-call roster and the escalation policies of each chat: who is called at each escalation level, and how long
an open incident may wait before each call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session
from sqlmodel import col, select

from storage import Database, EscalationPolicyRow, OnCallRow, audit_row, begin_write
from tracing.errors import InvalidArgument
from tracing.monitor.actor import Actor
from tracing.monitor.clock import Clock, SystemClock

ANY_CHAT = "*"
"""The `chat` of a platform-wide escalation policy."""


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


def policy_for(session: Session, platform: str, chat: str) -> EscalationPolicy:
    """The chat's policy, else the platform-wide one, else the default."""
    for where in (chat, ANY_CHAT):
        row = session.get(EscalationPolicyRow, (platform, where))
        if row is not None and row.steps_minutes:
            return EscalationPolicy(tuple(timedelta(minutes=int(m)) for m in row.steps_minutes))
    return DEFAULT_POLICY


def oncall_at(session: Session, platform: str, chat: str, level: int) -> OnCall | None:
    """The roster entry for `level`, else the nearest level below it."""
    row = session.scalars(
        select(OnCallRow)
        .where(col(OnCallRow.platform) == platform, col(OnCallRow.chat) == chat, col(OnCallRow.level) <= level)
        .order_by(col(OnCallRow.level).desc())
        .limit(1)
    ).first()
    return OnCall(row.level, row.user_key, row.user_name) if row else None


class OnCallBook:
    """Reads and changes the on-call roster and the escalation policies."""

    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()

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
