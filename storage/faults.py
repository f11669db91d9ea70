"""Store faults: a store that cannot be written (disk full, read-only, locked past the timeout), told apart from the
driver's exceptions here so that nothing above `storage` inspects sqlite3 or psycopg errors.

`Database.session` raises a `StoreUnavailable` subclass (the driver's exception as its cause) when a write fails for
one of these reasons, after rolling the transaction back: nothing of it is half-written. `STORE_FAULTS` remembers,
per process, how many faults and unaudited commands there were and the latest one, for `/status`, `/metrics` and the
ops channel.
"""

from __future__ import annotations

import errno
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import DBAPIError


class StoreError(Exception):
    """The store could not be opened, migrated or written."""


class StoreUnavailable(StoreError):
    """The store cannot be written just now; `cause` says why in words an investigator understands."""

    cause = "the store cannot be written"
    kind = "unavailable"

    def __init__(self, detail: str = "") -> None:
        super().__init__(self.cause + (f" ({detail})" if detail else ""))
        self.detail = detail


class StoreFull(StoreUnavailable):
    cause = "the store's disk is full"
    kind = "full"


class StoreReadOnly(StoreUnavailable):
    cause = "the store is read-only"
    kind = "read-only"


class StoreLocked(StoreUnavailable):
    cause = "the store stayed locked by another writer past the timeout"
    kind = "locked"


_SQLITE_MESSAGES: tuple[tuple[str, type[StoreUnavailable]], ...] = (
    ("database or disk is full", StoreFull),
    ("attempt to write a readonly database", StoreReadOnly),
    ("readonly database", StoreReadOnly),
    ("database is locked", StoreLocked),
    ("database table is locked", StoreLocked),
)
_POSTGRES_STATES: dict[str, type[StoreUnavailable]] = {
    "53100": StoreFull,  # disk_full
    "53200": StoreFull,  # out_of_memory: the server has no room either
    "25006": StoreReadOnly,  # read_only_sql_transaction (a standby, or default_transaction_read_only)
    "55P03": StoreLocked,  # lock_not_available (lock_timeout)
}
_OS_ERRORS: dict[int, type[StoreUnavailable]] = {
    errno.ENOSPC: StoreFull,
    errno.EDQUOT: StoreFull,
    errno.EROFS: StoreReadOnly,
}


def store_fault(exc: BaseException) -> StoreUnavailable | None:
    """The store fault `exc` is (or wraps), or None when it is some other error."""
    if isinstance(exc, StoreUnavailable):
        return exc
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # the driver's error may be wrapped (SQLAlchemy, OSError)
        seen.add(id(current))
        fault = _one(current)
        if fault is not None:
            return fault
        current = current.orig if isinstance(current, DBAPIError) else (current.__cause__ or current.__context__)
    return None


def _one(exc: BaseException) -> StoreUnavailable | None:
    if isinstance(exc, sqlite3.Error):
        text = str(exc).lower()
        for needle, kind in _SQLITE_MESSAGES:
            if needle in text:
                return kind(str(exc)[:200])
        return None
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if isinstance(state, str) and state in _POSTGRES_STATES:
        return _POSTGRES_STATES[state](f"SQLSTATE {state}")
    if isinstance(exc, OSError) and exc.errno in _OS_ERRORS:
        return _OS_ERRORS[exc.errno](exc.strerror or "")
    return None


@dataclass(frozen=True, slots=True)
class Fault:
    at: datetime
    kind: str
    cause: str
    ref: str
    what: str
    """The command or job that met it."""


class StoreFaults:
    """This process's store faults: counts by kind, unaudited commands, and the latest fault."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.unaudited = 0
        self.last: Fault | None = None

    def note(self, fault: StoreUnavailable, ref: str, what: str) -> None:
        with self._lock:
            self.counts[fault.kind] = self.counts.get(fault.kind, 0) + 1
            self.last = Fault(datetime.now(UTC), fault.kind, fault.cause, ref, what)

    def note_unaudited(self) -> None:
        with self._lock:
            self.unaudited += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def recent(self, within: timedelta, now: datetime | None = None) -> Fault | None:
        """The latest fault when it happened within `within` of `now`."""
        last = self.last
        if last is None or not timedelta(0) <= (now or datetime.now(UTC)) - last.at <= within:
            return None
        return last

    def summary(self) -> str:
        """One line for /status."""
        if self.last is None and not self.unaudited:
            return "Store faults: none since start"
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.counts.items())) or "none"
        line = f"Store faults since start: {kinds}; commands not audited: {self.unaudited}"
        if self.last is not None:
            last = self.last
            line += f"; last {last.at:%Y-%m-%d %H:%M:%S} UTC in {last.what}: {last.cause} (reference {last.ref})"
        return line

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
            self.unaudited = 0
            self.last = None


STORE_FAULTS = StoreFaults()
"""The process's record (the bot and a watcher in one `chainsleuth run` share it)."""
