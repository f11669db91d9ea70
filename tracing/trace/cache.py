"""`GraphCache`: one `TransferGraph` per chain, loaded from the store's `transfer` table on first use and kept
fresh as new rows arrive (reloaded when a reorg replaced rows)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import text

from storage import Database
from tracing.chain.transfer import Transfer, TransferKind
from tracing.trace.graph import TransferGraph

log = logging.getLogger(__name__)

_COLUMNS = (
    "id, block_number, timestamp, tx_hash, kind, position, token, from_addr, to_addr, value, decimals, symbol, source"
)


class GraphCache:
    """One `TransferGraph` per chain, loaded from the store on first use and kept fresh.

    Freshness is checked at most every `check_interval` seconds, cheaply: new rows (id above the last loaded) are
    appended; if the last loaded row is gone or changed (a reorg deleted and replaced rows), the graph is reloaded.
    Stores larger than `sync_limit` rows load in a background thread; until then `get` returns None and callers use
    the SQL path.
    """

    def __init__(
        self, db: Database, *, check_interval: float = 1.0, sync_limit: int = 250_000, compact_ratio: float = 0.2
    ) -> None:
        self.db = db
        self.check_interval = check_interval
        self.sync_limit = sync_limit
        self.compact_ratio = compact_ratio
        self._graphs: dict[str, TransferGraph] = {}
        self._checked: dict[str, float] = {}
        self._loading: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def get(self, chain: str) -> TransferGraph | None:
        graph = self._graphs.get(chain)
        if graph is None:
            if chain in self._loading:
                return None
            if self._max_row_id() > self.sync_limit:
                self._load_in_background(chain)
                return None
            graph = self.load(chain)
        else:
            self.refresh(chain)
            graph = self._graphs.get(chain)
        return graph

    def load(self, chain: str) -> TransferGraph:
        """Load the chain's graph now (replacing any loaded one)."""
        started = time.monotonic()
        graph = TransferGraph(chain)
        for row in self._rows(chain, after=0):
            graph.push_row(row)
        graph.compact()
        with self._lock:
            self._graphs[chain] = graph
            self._checked[chain] = time.monotonic()
        log.info("loaded %s transfer graph: %d transfers in %.2fs", chain, len(graph), time.monotonic() - started)
        return graph

    def put(self, graph: TransferGraph, *, last_row_id: int = 0) -> None:
        """Use a graph built elsewhere (a benchmark's synthetic one) as the chain's loaded graph."""
        graph.last_row_id = max(graph.last_row_id, last_row_id)
        with self._lock:
            self._graphs[graph.chain] = graph
            self._checked[graph.chain] = time.monotonic()

    def invalidate(self, chain: str | None = None) -> None:
        """Forget loaded graphs (all, or one chain's); the next `get` reloads."""
        with self._lock:
            for name in [chain] if chain else list(self._graphs):
                self._graphs.pop(name, None)
                self._checked.pop(name, None)

    def refresh(self, chain: str, *, force: bool = False) -> int:
        """Bring the chain's loaded graph up to date; returns the number of transfers appended (-1: reloaded)."""
        graph = self._graphs.get(chain)
        if graph is None:
            return 0
        now = time.monotonic()
        if not force and now - self._checked.get(chain, 0.0) < self.check_interval:
            return 0
        self._checked[chain] = now
        if graph.last_row_id and self._row_key(graph.last_row_id) != (chain, *(graph.last_row_key or ("", ""))):
            self.load(chain)
            return -1
        before = len(graph)
        with self._lock:
            for row in self._rows(chain, after=graph.last_row_id):
                (
                    row_id,
                    block,
                    ts,
                    tx_hash,
                    kind,
                    position,
                    token,
                    from_addr,
                    to_addr,
                    value,
                    decimals,
                    symbol,
                    source,
                ) = row
                if (tx_hash, kind, position) not in graph.row_ids:
                    graph.append(
                        [
                            Transfer(
                                chain,
                                int(block),
                                "",
                                int(ts),
                                tx_hash,
                                TransferKind(kind),
                                position,
                                from_addr,
                                to_addr,
                                int(value),
                                token,
                                decimals,
                                symbol,
                                source,
                            )
                        ]
                    )
                graph.last_row_id = max(graph.last_row_id, int(row_id))
                if graph.last_row_id == int(row_id):
                    graph.last_row_key = (tx_hash, position)
            if graph.pending > max(1000, self.compact_ratio * graph.indexed_edges):
                graph.compact()
        return len(graph) - before

    def _load_in_background(self, chain: str) -> None:
        def run() -> None:
            try:
                self.load(chain)
            except Exception:
                log.exception("loading the %s transfer graph failed; tracing stays on the SQL path", chain)
            finally:
                self._loading.pop(chain, None)

        thread = threading.Thread(target=run, name=f"graph-load-{chain}", daemon=True)
        self._loading[chain] = thread
        thread.start()

    def wait(self, chain: str, timeout: float | None = None) -> TransferGraph | None:
        """Wait for a background load (tests, benchmarks) and return the graph."""
        thread = self._loading.get(chain)
        if thread is not None:
            thread.join(timeout)
        return self._graphs.get(chain)

    def _max_row_id(self) -> int:
        with self.db.engine.connect() as conn:
            return int(conn.execute(text("SELECT max(id) FROM transfer")).scalar() or 0)

    def _row_key(self, row_id: int) -> tuple[str, str, str] | None:
        with self.db.engine.connect() as conn:
            row = conn.execute(
                text("SELECT chain, tx_hash, position FROM transfer WHERE id = :id"), {"id": row_id}
            ).first()
        return (row[0], row[1], row[2]) if row else None

    def _rows(self, chain: str, after: int) -> Iterator[Sequence[Any]]:
        query = text(f"SELECT {_COLUMNS} FROM transfer WHERE chain = :chain AND id > :after ORDER BY id")  # noqa: S608
        with self.db.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=20_000).execute(
                query, {"chain": chain, "after": after}
            )
            yield from result
