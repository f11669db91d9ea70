"""Leadership locks: exactly one process at a time holds a named role (e.g. "follow chain eth").

PostgreSQL: a session-level advisory lock on a dedicated connection; when the holder dies (even by SIGKILL) its
connection closes and the server releases the lock at once. SQLite (one machine): an exclusive `flock` on a file
beside the database, which the kernel releases when the process dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from storage.db import Database


def _key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class LeaderLock:
    """`try_acquire()` is non-blocking; `held` tells whether this process is the leader; `release()` gives it up."""

    def __init__(self, db: Database, name: str) -> None:
        self.db = db
        self.name = name
        self._conn: Connection | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None or self._fd is not None

    def try_acquire(self) -> bool:
        if self.held:
            return self.still_held()
        if self.db.dialect == "postgresql":
            conn = self.db.engine.connect()
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _key(self.name)}).scalar())
            conn.commit()
            if got:
                self._conn = conn
            else:
                conn.close()
            return got
        path = self._lock_path()
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def still_held(self) -> bool:
        """For PostgreSQL, checks the lock's connection is alive (a dropped connection means the lock is gone)."""
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                self._conn.commit()
            except Exception:
                self._drop_conn()
                return False
            return True
        return self._fd is not None

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _key(self.name)})
                self._conn.commit()
            finally:
                self._drop_conn()
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def _drop_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                conn.invalidate()

    def _lock_path(self) -> Path:
        database = self.db.engine.url.database or ""
        base = Path(database).parent if database and database != ":memory:" else Path(os.getenv("TMPDIR", "/tmp"))
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.name)
        return base / f".lock-{safe}"

    def __enter__(self) -> LeaderLock:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.release()
