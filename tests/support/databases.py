"""Test databases: a fresh SQLite file per test, and a fresh PostgreSQL database when TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_SKIP = "PostgreSQL tests need TEST_DATABASE_URL (set by .ci/run when a server answers on 127.0.0.1:5432)"


def postgres_base_url() -> str | None:
    return os.environ.get("TEST_DATABASE_URL") or None


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create a throw-away database next to TEST_DATABASE_URL's and drop it afterwards."""
    base = postgres_base_url()
    if not base:
        pytest.skip(PG_SKIP)
    url = make_url(base)
    name = f"cs_t_{secrets.token_hex(5)}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # server went away between CI's check and now
        admin.dispose()
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def database_url_for(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'chainsleuth.sqlite3'}"
    else:
        with fresh_postgres_database() as url:
            yield url
