"""Ops counters kept in the store (`ops_counter` rows named `family:label:…`): blocks the watcher processed, alerts
it created, the outbox's delivery outcomes and the platforms' 429s.

Each is bumped inside the transaction of the work it counts, so the numbers are exact across restarts and every
process (watcher, notifier) adds to the same rows; any process can read them (the bot's /metrics does, at scrape
time)."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlmodel import col, select

from storage import Database, OpsCounter

NAME_LENGTH = 64
"""`ops_counter.name`: chains (32), platforms (16) and alert kinds (24) fit with their family."""


class OpsCount(StrEnum):
    BLOCKS = "blocks"
    """Per chain: blocks the watcher finished."""
    ALERTS = "alerts"
    """Per chain and alert kind: alerts created (a de-duplicated one is not counted again)."""
    DELIVERIES = "deliveries"
    """Per platform and `DeliveryOutcome`: how the outbox's messages went."""
    RATE_LIMITED = "rate_limited"
    """Per platform: sends the platform refused with a rate limit (a 429 or its flood-control kin)."""


class DeliveryOutcome(StrEnum):
    SENT = "sent"
    RETRIED = "retried"
    IN_DOUBT = "in_doubt"
    """Sent, but the answer was lost: checked on the platform before any re-send."""
    RATE_LIMITED = "rate_limited"
    FAILED = "failed"
    SUPERSEDED = "superseded"


def _name(family: OpsCount, labels: tuple[str, ...]) -> str:
    name = ":".join((family.value, *labels))
    if len(name) > NAME_LENGTH or any(":" in label for label in labels):
        raise ValueError(f"counter {name!r} does not fit ops_counter.name")
    return name


def bump(session: Session, family: OpsCount, *labels: str, by: int = 1) -> None:
    """Add `by` to one counter inside the caller's transaction (one atomic upsert)."""
    if by <= 0:
        return
    dialect = postgresql if session.connection().dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(OpsCounter)
        .values(name=_name(family, labels), value=by)
        .on_conflict_do_update(index_elements=["name"], set_={"value": col(OpsCounter.value) + by})
    )
    session.execute(stmt)


def ops_counts(db: Database, family: OpsCount) -> dict[tuple[str, ...], int]:
    """Every counter of one family, by its labels."""
    prefix = family.value + ":"
    of_family = col(OpsCounter.name).startswith(prefix, autoescape=True)
    with db.session() as session:
        rows = session.execute(select(col(OpsCounter.name), col(OpsCounter.value)).where(of_family)).all()
    return {tuple(name[len(prefix) :].split(":")): int(value) for name, value in rows}
