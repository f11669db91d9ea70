"""`/healthz` and `/metrics` on a loopback port, for load balancers, systemd watchdogs and Prometheus."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from bot.metrics import REGISTRY, store_registry
from bot.web.server import GuardedServer, HttpLimits
from storage import STORE_FAULTS, Database, StoreFaults, utcnow
from tracing import silent_chains

Check = Callable[[], Awaitable[tuple[bool, str]]]


def database_check(db: Database) -> Check:
    async def check() -> tuple[bool, str]:
        def ping() -> None:
            with db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        try:
            await asyncio.wait_for(asyncio.to_thread(ping), timeout=5)
        except Exception as exc:
            return False, f"database: {type(exc).__name__}"
        return True, "database: ok"

    return check


STORE_FAULT_WINDOW = timedelta(minutes=5)
"""How long /healthz fails after the store refused a write (`store_check`)."""


def store_check(
    faults: StoreFaults = STORE_FAULTS,
    within: timedelta = STORE_FAULT_WINDOW,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Check:
    """Fails while the store refused a write (disk full, read-only, locked past the timeout) within `within`: a
    `SELECT 1` still answers then, so the database check alone would say all is well while alerts and audit rows
    cannot be written."""

    async def check() -> tuple[bool, str]:
        fault = faults.recent(within, now())
        if fault is None:
            return True, "store writes: ok"
        ago = max(0, int((now() - fault.at).total_seconds()))
        return False, (
            f"store writes: refused {ago} s ago in {fault.what}: {fault.cause} (reference {fault.ref}); "
            f"{faults.total} since start"
        )

    return check


def node_check(db: Database, stale_after: float, chains: Iterable[str] | None = None) -> Check:
    """Fails while a watched chain's node has given no good answer for more than `stale_after` seconds."""

    async def check() -> tuple[bool, str]:
        try:
            silent = await asyncio.wait_for(
                asyncio.to_thread(silent_chains, db, utcnow(), stale_after, chains=chains), timeout=5
            )
        except Exception as exc:
            return False, f"nodes: not readable ({type(exc).__name__})"
        if silent:
            return False, "nodes: " + "; ".join(s.sentence() for s in silent)
        return True, "nodes: ok"

    return check


class HealthServer:
    """Serves `GET /healthz` (200 when every check passes, 503 otherwise) and `GET /metrics`: this process's
    series and, given the store, the watcher's and notifier's series read from it."""

    def __init__(
        self,
        checks: list[Check],
        host: str = "127.0.0.1",
        port: int = 9108,
        limits: HttpLimits | None = None,
        *,
        db: Database | None = None,
    ) -> None:
        self.checks = checks
        self.store = store_registry(db) if db is not None else None
        self.host = host
        self.port = port
        self.started = time.monotonic()
        self._server = GuardedServer("metrics", host, port, limits)  # time-outs, a connection cap: `bot.web.server`
        self._server.app.router.add_get("/healthz", self._healthz)
        self._server.app.router.add_get("/metrics", self._metrics)

    def application(self) -> web.Application:
        return self._server.app

    async def _healthz(self, _request: web.Request) -> web.Response:
        results = [await check() for check in self.checks]
        ok = all(passed for passed, _ in results)
        body = {
            "status": "ok" if ok else "failing",
            "uptime_s": round(time.monotonic() - self.started, 1),
            "checks": [detail for _, detail in results],
        }
        return web.json_response(body, status=200 if ok else 503)

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = await asyncio.to_thread(self._exposition)  # the store's series are read with blocking queries
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    def _exposition(self) -> bytes:
        own = generate_latest(REGISTRY)
        return own + generate_latest(self.store) if self.store is not None else own

    async def start(self) -> int:
        self.port = await self._server.start()  # the bound port when 0 was asked for
        return self.port

    async def stop(self) -> None:
        await self._server.stop()
