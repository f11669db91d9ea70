"""Once per key per period, across restarts and across bot processes sharing the store.

A claim is a row of the `kv` table (`key` = `<kind>:<what>`, `updated_at` = when it was claimed). Claiming is one
atomic upsert: a new key is inserted; an existing key is taken over only when its claim is older than the period.
Two processes claiming the same key at once: exactly one wins (the primary key decides). Expired claims of a kind
are deleted now and then by whoever claims next.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from storage import Database, KeyValueRow, utcnow

MAX_KEY = 200
"""`kv.key` is a VARCHAR(200)."""
SWEEP_SECONDS = 600.0
"""Expired claims of a kind are deleted at most this often per process."""


def claim_key(kind: str, *parts: str) -> str:
    key = ":".join((kind, *parts))
    if len(key) <= MAX_KEY:
        return key
    return f"{kind}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


class Claims:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._swept: dict[str, float] = {}

    def first(
        self, kind: str, parts: tuple[str, ...], period: timedelta, detail: dict[str, object] | None = None
    ) -> bool:
        """True for the first claim of (kind, parts) in `period` (then the claim is held), False while a claim holds."""
        now = utcnow()
        cutoff = now - period
        self._sweep(kind, cutoff)
        table = KeyValueRow.__table__  # type: ignore[attr-defined]
        dialect = postgresql if self.db.dialect == "postgresql" else sqlite
        insert = dialect.insert(table).values(key=claim_key(kind, *parts), value=detail or {}, updated_at=now)
        stmt = insert.on_conflict_do_update(
            index_elements=["key"],
            set_={"value": insert.excluded.value, "updated_at": insert.excluded.updated_at},
            where=table.c.updated_at <= cutoff,
        ).returning(table.c.key)  # a row back: inserted or taken over (rowcount is -1 with psycopg)
        with self.db.session() as session:
            return session.connection().execute(stmt).first() is not None

    def _sweep(self, kind: str, cutoff: datetime) -> None:
        now = time.monotonic()
        if now - self._swept.get(kind, -SWEEP_SECONDS) < SWEEP_SECONDS:
            return
        self._swept[kind] = now
        with self.db.session() as session:
            expired = col(KeyValueRow.key).startswith(f"{kind}:"), col(KeyValueRow.updated_at) < cutoff
            session.execute(delete(KeyValueRow).where(*expired))
