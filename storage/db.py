"""Engines and sessions for SQLite (embedded default) and PostgreSQL (`DATABASE_URL`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from storage.faults import StoreError, store_fault
from storage.migrate import upgrade

__all__ = ["Database", "StoreError", "make_engine", "open_database", "redact_url"]


@dataclass
class Database:
    url: str
    engine: Engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error. A store that cannot be written (disk full,
        read-only, locked past the timeout) raises a `StoreUnavailable` subclass after the rollback."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException as exc:
                session.rollback()
                fault = store_fault(exc)
                if fault is not None and fault is not exc:
                    raise fault from exc
                raise

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets a watcher write while the bot reads; busy_timeout rides over short write locks.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def open_database(url: str, *, migrate: bool = True) -> Database:
    """Open the store at `url`, applying pending migrations first (first run creates the schema)."""
    try:
        engine = make_engine(url)
        if migrate:
            upgrade(engine)
    except Exception as exc:  # the operator needs the URL (without password) and the cause
        raise StoreError(f"cannot open the store at {redact_url(url)}: {exc}") from exc
    return Database(url=url, engine=engine)


def redact_url(url: str) -> str:
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"
