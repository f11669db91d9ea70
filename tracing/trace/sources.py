"""Where a trace's transfers come from: the in-memory graph (`GraphSource`), the index through SQL
(`IndexSource`), a block explorer (`ExplorerSource`), one over the other (`LayeredSource`); and where its labels
come from (`LabelLookup`)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import func
from sqlmodel import col, select

from storage import TransferRow
from tracing.chain.guard import stops_early
from tracing.chain.index import TransferIndex, from_row
from tracing.chain.transfer import Direction, Transfer
from tracing.errors import SourceError
from tracing.labels import Label
from tracing.trace.flows import FlowQuery, FlowRequest, Flows, History, HistoryRequest, history_of, select_flows
from tracing.trace.graph import TransferGraph


class TransferSource(Protocol):
    """Anything that can say, for a batch of addresses, which of their transfers a trace follows."""

    name: str

    async def flows(self, chain: str, query: FlowQuery, requests: Sequence[FlowRequest]) -> list[Flows]: ...


@runtime_checkable
class HistorySource(Protocol):
    """A source that can also give an address's history both ways (`History`): what the value-aware walk reads.
    Every source here can; one that cannot is walked by the graph (the trace says so)."""

    name: str

    async def histories(self, chain: str, query: FlowQuery, requests: Sequence[HistoryRequest]) -> list[History]: ...


class LabelLookup(Protocol):
    """`LabelBook` (SQL) and `graph.LabelCache` (in memory) both fit."""

    def for_addresses(self, addresses: Sequence[str], chain: str | None = None) -> Mapping[str, Sequence[Label]]: ...


class GraphSource:
    """The in-memory transfer graph (the fast path)."""

    name = "local index"

    def __init__(self, graph: TransferGraph) -> None:
        self.graph = graph

    async def flows(self, chain: str, query: FlowQuery, requests: Sequence[FlowRequest]) -> list[Flows]:
        if chain != self.graph.chain:
            return [Flows(r.address, source=self.name) for r in requests]
        return [self.graph.flows(r, query, self.name) for r in requests]

    async def histories(self, chain: str, query: FlowQuery, requests: Sequence[HistoryRequest]) -> list[History]:
        if chain != self.graph.chain:
            return [History(r.address, source=self.name) for r in requests]
        return [self.graph.history(r, query, self.name) for r in requests]


class IndexSource:
    """The transfer index through SQL, one query per address: the reference path, and the fallback while the
    in-memory graph loads."""

    name = "local index"

    def __init__(self, index: TransferIndex) -> None:
        self.index = index

    async def flows(self, chain: str, query: FlowQuery, requests: Sequence[FlowRequest]) -> list[Flows]:
        return [self._flows(chain, query, request) for request in requests]

    def _flows(self, chain: str, query: FlowQuery, request: FlowRequest) -> Flows:
        column = col(TransferRow.from_addr) if query.direction is Direction.OUT else col(TransferRow.to_addr)
        with self.index.db.session() as session:
            degree = session.exec(
                select(func.count())
                .select_from(TransferRow)
                .where(col(TransferRow.chain) == chain, column == request.address)
            ).one()
            if not degree or (degree > query.hub_degree and not request.root):
                return select_flows(request.address, [], request, query, int(degree), self.name)
            rows = select(TransferRow).where(col(TransferRow.chain) == chain, column == request.address)
            if request.since is not None:
                rows = rows.where(col(TransferRow.timestamp) >= request.since)
            if request.until is not None:
                rows = rows.where(col(TransferRow.timestamp) <= request.until)
            candidates = sorted(
                (from_row(row) for row in session.scalars(rows)),
                key=lambda t: (t.timestamp, t.block_number, t.tx_hash, t.position),
            )
        return select_flows(request.address, candidates, request, query, int(degree), self.name)

    async def histories(self, chain: str, query: FlowQuery, requests: Sequence[HistoryRequest]) -> list[History]:
        found = []
        for request in requests:
            column = col(TransferRow.from_addr) if query.direction is Direction.OUT else col(TransferRow.to_addr)
            with self.index.db.session() as session:
                degree = session.exec(
                    select(func.count())
                    .select_from(TransferRow)
                    .where(col(TransferRow.chain) == chain, column == request.address)
                ).one()
            if degree > query.hub_degree and not request.root:
                found.append(History(request.address, degree=int(degree), hub=True, source=self.name))
                continue
            transfers = self.index.for_address(request.address, chain) if degree else []
            found.append(history_of(request.address, transfers, request, query, self.name))
        return found


class ExplorerSource:
    """A block explorer's account history (`tracing.chain.explorer.ExplorerClient` or anything with an async or sync
    `transfers_of(address)` returning an object with `.transfers`, and optionally `.complete` and `.cuts` or
    `.notes`), for addresses the index does not cover. Histories are cached for `ttl` seconds; one the explorer
    cut (`complete` False) is traced as far as it goes, and the trace's coverage says which address and why.

    A client whose `transfers_of` takes `busy` (`tracing.chain.explorer.ExplorerClient`) is asked to stop reading
    an address that is not a root as soon as it has more transfers in the trace's direction than the trace expands
    (`FlowQuery.hub_degree`): such an address is not expanded, so a hot wallet's or router's whole history (many
    pages per action at the free tier's few calls a second) is not read to find that out."""

    name = "explorer"

    def __init__(self, client: Any, *, concurrency: int = 4, ttl: float = 600.0, name: str = "explorer") -> None:
        self.name = name
        """How coverage names the source: `explorer`, or `trongrid` for TRON's account API."""
        self.client = client
        self.ttl = ttl
        self._semaphore = asyncio.Semaphore(concurrency)
        self._cache: dict[str, tuple[float, list[Transfer], str]] = {}
        self._busy: dict[tuple[str, bool, int], tuple[float, int]] = {}
        self._stops_early = stops_early(client)

    async def busy_degree(self, address: str, outgoing: bool, limit: int) -> int | None:
        """When `address` has more than `limit` transfers in the direction: how many the explorer showed before it
        stopped (a busy address, read no further); None when it has no more (its whole history is then cached
        for `fetch`), or when the client cannot stop early."""
        if not self._stops_early:
            return None
        now = time.monotonic()
        cached = self._cache.get(address)
        if cached is not None and now - cached[0] < self.ttl:
            return None
        known = self._busy.get((address, outgoing, limit))
        if known is not None and now - known[0] < self.ttl:
            return known[1]
        result = await self._transfers_of(address, busy=(outgoing, limit))
        if getattr(result, "busy", 0):
            self._busy[(address, outgoing, limit)] = (now, int(result.busy))
            return int(result.busy)
        self._store(address, result)
        return None

    async def fetch(self, address: str) -> tuple[list[Transfer], str]:
        """(the address's transfers, why its history is incomplete: empty when complete)."""
        cached = self._cache.get(address)
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1], cached[2]
        return self._store(address, await self._transfers_of(address))

    async def _transfers_of(self, address: str, **options: Any) -> Any:
        """The client's `transfers_of`, sync or async, within the concurrency limit."""
        async with self._semaphore:
            result = self.client.transfers_of(address, **options)
            if inspect.isawaitable(result):
                result = await result
        return result

    def _store(self, address: str, result: Any) -> tuple[list[Transfer], str]:
        transfers = list(getattr(result, "transfers", result))
        incomplete = ""
        if getattr(result, "complete", True) is False:
            why = tuple(getattr(result, "cuts", ()) or getattr(result, "notes", ()) or ())
            incomplete = "; ".join(why) or "the explorer returned an incomplete history"
        self._cache[address] = (time.monotonic(), transfers, incomplete)
        return transfers, incomplete

    async def flows(self, chain: str, query: FlowQuery, requests: Sequence[FlowRequest]) -> list[Flows]:
        async def one(request: FlowRequest) -> Flows:
            try:
                history, incomplete = await self.fetch(request.address)
            except SourceError as exc:
                return Flows(request.address, source=self.name, error=str(exc))
            mine = [
                t
                for t in history
                if t.chain == chain
                and (t.from_addr if query.direction is Direction.OUT else t.to_addr) == request.address
            ]
            mine.sort(key=lambda t: (t.timestamp, t.block_number, t.tx_hash, t.position))
            flows = select_flows(request.address, mine, request, query, len(mine), self.name)
            return replace(flows, incomplete=incomplete) if incomplete else flows

        return list(await asyncio.gather(*(one(request) for request in requests)))

    async def histories(self, chain: str, query: FlowQuery, requests: Sequence[HistoryRequest]) -> list[History]:
        outgoing = query.direction is Direction.OUT

        async def one(request: HistoryRequest) -> History:
            try:
                if not request.root:
                    degree = await self.busy_degree(request.address, outgoing, query.hub_degree)
                    if degree is not None:
                        return History(request.address, degree=degree, hub=True, source=self.name)
                history, incomplete = await self.fetch(request.address)
            except SourceError as exc:
                return History(request.address, source=self.name, error=str(exc))
            mine = [t for t in history if t.chain == chain]
            found = history_of(request.address, mine, request, query, self.name)
            return replace(found, incomplete=incomplete) if incomplete else found

        return list(await asyncio.gather(*(one(request) for request in requests)))


class LayeredSource:
    """Ask `primary` first; ask `fallback` about the addresses `primary` knows nothing of (in that direction)."""

    def __init__(self, primary: TransferSource, fallback: TransferSource) -> None:
        self.primary = primary
        self.fallback = fallback
        self.name = f"{primary.name} + {fallback.name}"

    async def flows(self, chain: str, query: FlowQuery, requests: Sequence[FlowRequest]) -> list[Flows]:
        results = await self.primary.flows(chain, query, requests)
        missing = [i for i, flows in enumerate(results) if flows.degree == 0]
        if missing:
            more = await self.fallback.flows(chain, query, [requests[i] for i in missing])
            for i, flows in zip(missing, more, strict=True):
                if flows.degree or flows.error or flows.incomplete:
                    results[i] = flows
        return results

    async def histories(self, chain: str, query: FlowQuery, requests: Sequence[HistoryRequest]) -> list[History]:
        if not isinstance(self.primary, HistorySource) or not isinstance(self.fallback, HistorySource):
            raise TypeError("both layers must give histories (see `gives_histories`)")
        results = await self.primary.histories(chain, query, requests)
        missing = [i for i, found in enumerate(results) if found.degree == 0]
        if missing:
            more = await self.fallback.histories(chain, query, [requests[i] for i in missing])
            for i, found in zip(missing, more, strict=True):
                if found.degree or found.error or found.incomplete:
                    results[i] = found
        return results


def gives_histories(source: TransferSource) -> bool:
    """Whether `source` can answer the value-aware walk (every layer of a layered source must)."""
    if isinstance(source, LayeredSource):
        return gives_histories(source.primary) and gives_histories(source.fallback)
    return isinstance(source, HistorySource)
