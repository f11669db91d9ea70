"""Test databases: a fresh store per test, on SQLite (always) and on PostgreSQL (when TEST_DATABASE_URL is set).

Preparing a store the way a first start does (migrations, then ~10,600 bundled labels) takes about a second, and
most tests start from such a store. So each kind of contents is built once per session as a template, and each
test gets its own copy of it: a file copy on SQLite, `CREATE DATABASE … TEMPLATE …` on PostgreSQL. A copy holds
exactly what building it afresh would leave there; no two tests share a store.

Under pytest-xdist every worker is a session of its own: it builds its own templates (SQLite files under its own
basetemp, PostgreSQL databases whose names carry the worker's id) and drops only the databases it created.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from bot.app import build_app
from storage.db import open_database
from storage.settings import Settings

PG_SKIP = "PostgreSQL tests need TEST_DATABASE_URL (set by .ci/run when a server answers on 127.0.0.1:5432)"


class Contents(StrEnum):
    """What a test's store holds when the test starts."""

    EMPTY = "empty"  # nothing: whatever the test starts creates the schema
    MIGRATED = "migrated"  # the schema at head, as `open_database` leaves it
    STARTED = "started"  # what a first `build_app` leaves: the schema and the bundled label sets
    DEMO = "demo"  # what a first `build_app` with DEMO_DATA on leaves: that, and the Ronin-hack demo flows


def postgres_base_url() -> str | None:
    return os.environ.get("TEST_DATABASE_URL") or None


def worker_id() -> str:
    """The pytest-xdist worker this process is ("gw0", "gw1", ...), or "main" when the suite runs in one process."""
    return os.environ.get("PYTEST_XDIST_WORKER") or "main"


def database_name(kind: str) -> str:
    """A fresh PostgreSQL database name, naming the worker that owns it: `cs_<worker>_<kind>_<random>`."""
    return f"cs_{worker_id()}_{kind}_{secrets.token_hex(5)}"


def prepare(url: str, contents: Contents, data_dir: Path) -> None:
    """Bring an empty store at `url` to `contents` through the product's own start-up path."""
    if contents is Contents.MIGRATED:
        open_database(url).dispose()
    elif contents in (Contents.STARTED, Contents.DEMO):
        demo = contents is Contents.DEMO
        settings = Settings(_env_file=None, data_dir=data_dir, demo_data=demo)  # type: ignore[call-arg]
        build_app(settings, database_url=url).close()


def _admin_engine() -> Engine:
    base = postgres_base_url()
    if not base:
        pytest.skip(PG_SKIP)
    return create_engine(make_url(base).set(database="postgres"), isolation_level="AUTOCOMMIT")


def _create(admin: Engine, name: str, template: str | None = None) -> None:
    copy = f' TEMPLATE "{template}"' if template else ""
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    except Exception as exc:  # server went away between CI's check and now
        pytest.skip(f"PostgreSQL unavailable: {exc}")


def _drop(admin: Engine, name: str) -> None:
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _url(name: str) -> str:
    base = postgres_base_url()
    assert base is not None
    return make_url(base).set(database=name).render_as_string(hide_password=False)


@contextmanager
def fresh_postgres_database(template: str | None = None) -> Iterator[str]:
    """Create a throw-away database next to TEST_DATABASE_URL's (empty, or a copy of `template`), drop it after."""
    admin = _admin_engine()
    name = database_name("t")
    try:
        _create(admin, name, template)
    except BaseException:
        admin.dispose()
        raise
    try:
        yield _url(name)
    finally:
        _drop(admin, name)
        admin.dispose()


class StoreTemplates:
    """The session's templates, each built on first use, and the copies handed to tests.

    On PostgreSQL making a copy and dropping it take a few hundred milliseconds of server time each (both write
    and sync whole files; a drop waits for a checkpoint), so one copy of each template is kept made ahead by a
    worker thread, and used stores are dropped by a few others, while tests run: drops under way together share
    their checkpoint. Every copy is still used by one test only.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._sqlite: dict[Contents, Path] = {}
        self._postgres: dict[Contents, str | None] = {}  # None: the empty store, a copy of the server's template1
        self._spares: dict[Contents, Future[str]] = {}
        self._drops: list[Future[None]] = []
        self._admin: Engine | None = None
        self._maker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-store-maker")
        self._dropper = ThreadPoolExecutor(max_workers=4, thread_name_prefix="test-store-dropper")

    def sqlite_template(self, contents: Contents) -> Path:
        if contents not in self._sqlite:
            path = self.folder / f"{contents}.sqlite3"
            prepare(f"sqlite:///{path}", contents, self.folder / "data")
            # Every connection is closed, so SQLite has checkpointed the WAL into the main file and removed it;
            # checkpoint again anyway so that the one file is the whole store before anything copies it.
            conn = sqlite3.connect(path)
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.close()
            for suffix in ("-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            self._sqlite[contents] = path
        return self._sqlite[contents]

    def _admin_engine(self) -> Engine:
        if self._admin is None:
            self._admin = _admin_engine()
        return self._admin

    def postgres_template(self, contents: Contents) -> str | None:
        if contents not in self._postgres:
            admin = self._admin_engine()
            if contents is Contents.EMPTY:
                self._postgres[contents] = None
                return None
            name = database_name(f"tpl_{contents}")
            _create(admin, name)
            try:
                prepare(_url(name), contents, self.folder / "data")  # closes its connections: a template has none
            except BaseException:
                _drop(admin, name)
                raise
            self._postgres[contents] = name
        return self._postgres[contents]

    def _copy(self, template: str | None) -> str:
        name = database_name("t")
        copy = f' TEMPLATE "{template}"' if template else ""
        with self._admin_engine().connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
        return name

    def _postgres_copy(self, contents: Contents) -> str:
        template = self.postgres_template(contents)
        ready = self._spares.pop(contents, None) or self._maker.submit(self._copy, template)
        try:
            name = ready.result()
        except Exception as exc:  # server went away between CI's check and now
            pytest.skip(f"PostgreSQL unavailable: {exc}")
        self._spares[contents] = self._maker.submit(self._copy, template)
        return name

    @contextmanager
    def store(self, kind: str, contents: Contents, tmp_path: Path) -> Iterator[str]:
        """The URL of a fresh store of `kind` ("sqlite" or "postgres") holding `contents`, dropped afterwards."""
        if kind == "sqlite":
            path = tmp_path / "chainsleuth.sqlite3"
            if contents is not Contents.EMPTY:
                shutil.copyfile(self.sqlite_template(contents), path)
            yield f"sqlite:///{path}"
            return
        name = self._postgres_copy(contents)
        try:
            yield _url(name)
        finally:
            self._drops.append(self._dropper.submit(_drop, self._admin_engine(), name))

    def close(self) -> None:
        """Drop what is left (spare copies, templates, the used copies still queued) and wait for every drop; a
        failed drop fails the session."""
        spares = [future.result() for future in self._spares.values() if future.exception() is None]
        self._maker.shutdown(wait=True)
        admin = self._admin
        try:
            if admin is not None:  # alongside the dropper's queue, a few at a time: each waits mostly on the disk
                leftovers = [*spares, *(t for t in self._postgres.values() if t)]
                with ThreadPoolExecutor(max_workers=4, thread_name_prefix="test-store-close") as droppers:
                    list(droppers.map(lambda name: _drop(admin, name), leftovers))
            self._dropper.shutdown(wait=True)
            for future in self._drops:
                future.result()
        finally:
            if admin is not None:
                admin.dispose()
