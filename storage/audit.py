"""The audit log: every command, allowed or refused, and every state change, with who, where and the outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from storage.db import Database
from storage.models import AuditRow


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    actor: str
    platform: str
    chat: str
    command: str
    arguments: str
    outcome: str
    detail: str
    ref: str


def audit_row(
    *,
    actor: str,
    platform: str,
    chat: str,
    command: str,
    outcome: str,
    arguments: str = "",
    detail: str = "",
    ref: str = "",
    at: datetime | None = None,
) -> AuditRow:
    """An audit row with every field cut to its column, for writing inside a caller's transaction."""
    row = AuditRow(
        actor=actor[:120],
        platform=platform[:16],
        chat=chat[:120],
        command=command[:40],
        arguments=arguments[:4000],
        outcome=outcome[:16],
        detail=detail[:4000],
        ref=ref[:32],
    )
    if at is not None:
        row.at = at
    return row


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self,
        *,
        actor: str,
        platform: str,
        chat: str,
        command: str,
        arguments: str,
        outcome: str,
        detail: str = "",
        ref: str = "",
    ) -> None:
        with self.db.session() as session:
            session.add(
                audit_row(
                    actor=actor,
                    platform=platform,
                    chat=chat,
                    command=command,
                    arguments=arguments,
                    outcome=outcome,
                    detail=detail,
                    ref=ref,
                )
            )

    def recent(self, limit: int = 50) -> list[AuditEntry]:
        with self.db.session() as session:
            rows = session.scalars(select(AuditRow).order_by(col(AuditRow.id).desc()).limit(limit))
            return [
                AuditEntry(r.at, r.actor, r.platform, r.chat, r.command, r.arguments, r.outcome, r.detail, r.ref)
                for r in rows
            ]
