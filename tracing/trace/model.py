"""Multi-hop traces: from one address forward (where the funds went) or backward (where they came from), hop by
hop over a pluggable `TransferSource`, following the money in time order, stopping at labelled services and
capping fan-out, with a taint model over the result.

Time order: going forward, from an address first reached at time t only its transfers at or after t are followed
(the funds cannot leave before they arrive); going backward, only transfers into it at or before t.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from sqlalchemy import func
from sqlmodel import col, select

from storage import TransferRow
from tracing.chain.amounts import Valuation
from tracing.chain.index import TransferIndex, from_row
from tracing.chain.transfer import Transfer, TransferKind
from tracing.errors import InvalidArgument, SourceError
from tracing.labels import SERVICES, Category, Label
from tracing.trace.coverage import Coverage
from tracing.trace.graph import Asset, FlowQuery, FlowRequest, Flows, TransferGraph, select_flows
from tracing.trace.taint import Taint, TaintModel, TaintStep, compute_taint

DEFAULT_HOPS = 3
MAX_HOPS = 10


class TraceDirection(StrEnum):
    OUT = "out"
    IN = "in"

    @classmethod
    def parse(cls, text: str) -> TraceDirection:
        value = text.strip().lower()
        aliases = {"out": cls.OUT, "forward": cls.OUT, "in": cls.IN, "backward": cls.IN, "back": cls.IN}
        if value not in aliases:
            raise InvalidArgument(f"“{text[:20]}” is not a direction; use out or in.")
        return aliases[value]


# --- what a trace asks, and what it answers ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TraceParams:
    """How to trace. `fanout`: counterparties followed per address (largest flows first); `max_nodes`: addresses
    in the whole trace (about: a batch of addresses being expanded may overshoot a little); `hub_degree`: an
    address with more transfers than this in the direction is a busy service and is not expanded; `stop_at`: label
    categories where the trace stops (services: funds entering them lose their identity)."""

    direction: TraceDirection = TraceDirection.OUT
    hops: int = DEFAULT_HOPS
    model: TaintModel = TaintModel.HAIRCUT
    min_value: Decimal | None = None
    token: str | None = None
    since: int | None = None
    until: int | None = None
    follow_time: bool = True
    fanout: int = 100
    max_nodes: int = 2_000
    scan_limit: int = 50_000
    hub_degree: int = 1_000
    stop_at: frozenset[Category] = SERVICES

    def __post_init__(self) -> None:
        if not 1 <= self.hops <= MAX_HOPS:
            raise InvalidArgument(f"Hops must be between 1 and {MAX_HOPS}; got {self.hops}.")
        if self.fanout < 1 or self.max_nodes < 1 or self.scan_limit < 1:
            raise InvalidArgument("Fan-out, node budget and scan limit must be at least 1.")
        if self.since is not None and self.until is not None and self.since > self.until:
            raise InvalidArgument("--since is after --until.")

    def query(self) -> FlowQuery:
        return FlowQuery(
            direction=self.direction.value,
            token=self.token,
            min_value=self.min_value,
            fanout=self.fanout,
            scan_limit=self.scan_limit,
            hub_degree=self.hub_degree,
        )


class Stop(StrEnum):
    """Why a trace did not go on from an address."""

    EXPANDED = ""
    SERVICE = "service"
    BUSY = "busy"
    HOP_BUDGET = "hop budget"
    NODE_BUDGET = "node budget"
    NO_DATA = "no data"
    ERROR = "source error"


class TraceNode(NamedTuple):
    """One address the trace reached (a NamedTuple: a trace holds thousands, built in the hot loop)."""

    address: str
    hop: int
    labels: tuple[Label, ...] = ()
    terminal: bool = False
    """The trace stopped here because the address is a labelled service (exchange, mixer, bridge, sanctioned)."""
    stop: Stop = Stop.HOP_BUDGET
    reached_at: int | None = None
    """Going forward, when the funds first arrived; backward, the latest time they left."""
    degree: int = 0
    """Transfers of the address in the trace direction known to the source (0 for unexpanded addresses)."""
    source: str = ""

    @property
    def categories(self) -> tuple[Category, ...]:
        return tuple(dict.fromkeys(label.category for label in self.labels if label.active))


class TraceEdge(NamedTuple):
    """One transfer the trace followed, at the hop where it followed it."""

    from_addr: str
    to_addr: str
    tx_hash: str
    block: int
    timestamp: int
    token: str | None
    value: int
    decimals: int | None
    symbol: str | None
    kind: TransferKind
    position: str
    source: str
    hop: int

    @classmethod
    def of(cls, t: Transfer, hop: int) -> TraceEdge:
        return cls(
            t.from_addr,
            t.to_addr,
            t.tx_hash,
            t.block_number,
            t.timestamp,
            t.token,
            t.value,
            t.decimals,
            t.symbol,
            t.kind,
            t.position,
            t.source,
            hop,
        )

    @property
    def asset(self) -> Asset:
        return self.token

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.tx_hash, self.kind.value, self.position)


@dataclass(frozen=True, slots=True)
class Cut:
    """Something the trace deliberately left out at one address."""

    address: str
    hop: int
    reason: str
    """`fan-out`, `scan limit`, `busy` or `node budget`."""
    kept: int = 0
    dropped: int = 0


@dataclass(frozen=True)
class TaintComparison:
    address: str
    hop: int
    poison: Mapping[Asset, int]
    haircut: Mapping[Asset, int]


class TraceParts(Protocol):
    """A trace's result held compactly (ids and arrays), materialised on demand: what `Trace` reads when it was
    built by the compiled walk (`tracing.trace.compiled`). Every method answers exactly what the eager fields would."""

    def nodes(self) -> list[TraceNode]: ...
    def edges(self) -> list[TraceEdge]: ...
    def cuts(self) -> list[Cut]: ...
    def totals(self) -> dict[str, Mapping[Asset, int]]: ...
    def totals_of(self, address: str) -> Mapping[Asset, int]: ...
    def root_node(self) -> TraceNode: ...
    def node(self, address: str) -> TraceNode | None: ...
    def labelled(self) -> list[TraceNode]: ...
    def path_to(self, address: str) -> tuple[TraceEdge, ...]: ...
    def token_meta(self) -> dict[Asset, tuple[int | None, str | None]]: ...
    def received(self, model: TaintModel, only: Collection[str] | None = None) -> Mapping[str, Mapping[Asset, int]]: ...
    def coverage(self) -> Coverage: ...


class Trace:
    """A trace's result. `nodes`: the root first, then by hop and address; `edges`: by hop, time, tx; `totals`: per
    expanded address, what it moved in the trace direction within its window, per asset; `parents`: per reached
    address, the index in `edges` of the transfer that first brought the trace there.

    Built eagerly by the generic walk, or over `TraceParts` by the compiled graph walk: then nodes, edges, cuts,
    totals, parents and the coverage statement are built on first use, and `root_node`, `node`, `labelled`,
    `terminals`, `path_to`, `token_meta` and `received_under` answer without materialising the rest.
    """

    def __init__(
        self,
        root: str,
        chain: str,
        params: TraceParams,
        nodes: tuple[TraceNode, ...] | None,
        edges: tuple[TraceEdge, ...] | None,
        cuts: tuple[Cut, ...] | None,
        coverage: Coverage | None,
        totals: Mapping[str, Mapping[Asset, int]] | None = None,
        parents: Mapping[str, int] | None = None,
        seconds: float = 0.0,
        parts: TraceParts | None = None,
    ) -> None:
        if parts is None and (nodes is None or edges is None or cuts is None or coverage is None):
            raise ValueError("a trace needs its nodes, edges, cuts and coverage, or parts to build them from")
        self.root = root
        self.chain = chain
        self.params = params
        self._coverage = coverage
        self.seconds = seconds
        self._parts = parts
        self._nodes = nodes
        self._edges = edges
        self._cuts = cuts
        self._totals = totals if totals is not None or parts is not None else {}
        self._parents = parents if parents is not None or parts is not None else {}
        self._by_address: dict[str, TraceNode] | None = None
        self._taint: dict[TaintModel, Taint] = {}
        self.valuation: Valuation | None = None
        """Token metadata and USD prices for the trace's amounts (set by the investigator; None: no USD)."""

    def __repr__(self) -> str:
        return f"Trace(root={self.root!r}, chain={self.chain!r}, {self.direction.value}, hops={self.params.hops})"

    def replace(self, **changes: Any) -> Trace:
        """A copy with `coverage`, `seconds` or `valuation` replaced (the result itself is shared)."""
        unknown = set(changes) - {"coverage", "seconds", "valuation"}
        if unknown:
            raise TypeError(f"cannot replace {sorted(unknown)}")
        copy = Trace(
            self.root,
            self.chain,
            self.params,
            self._nodes,
            self._edges,
            self._cuts,
            changes["coverage"] if "coverage" in changes else self._coverage,
            self._totals,
            self._parents,
            changes.get("seconds", self.seconds),
            self._parts,
        )
        copy._taint = self._taint
        copy.valuation = changes.get("valuation", self.valuation)
        return copy

    @property
    def coverage(self) -> Coverage:
        """What the trace covered and left out (built on first read over compact parts)."""
        if self._coverage is None:
            assert self._parts is not None
            self._coverage = self._parts.coverage()
        return self._coverage

    @property
    def nodes(self) -> tuple[TraceNode, ...]:
        if self._nodes is None:
            assert self._parts is not None
            self._nodes = tuple(self._parts.nodes())
        return self._nodes

    @property
    def edges(self) -> tuple[TraceEdge, ...]:
        if self._edges is None:
            assert self._parts is not None
            self._edges = tuple(self._parts.edges())
        return self._edges

    @property
    def cuts(self) -> tuple[Cut, ...]:
        if self._cuts is None:
            assert self._parts is not None
            self._cuts = tuple(self._parts.cuts())
        return self._cuts

    @property
    def totals(self) -> Mapping[str, Mapping[Asset, int]]:
        if self._totals is None:
            assert self._parts is not None
            self._totals = self._parts.totals()
        return self._totals

    def totals_of(self, address: str) -> Mapping[Asset, int]:
        """`totals.get(address, {})`, without materialising every total of a compact trace."""
        if self._totals is None and self._parts is not None:
            return self._parts.totals_of(address)
        return self.totals.get(address, {})

    @property
    def parents(self) -> Mapping[str, int]:
        if self._parents is None:
            self._parents = parents_of(self.nodes, self.edges, self.direction)
        return self._parents

    @property
    def taint(self) -> Taint:
        """Taint under the trace's model (computed on first use)."""
        return self.taint_under(self.params.model)

    @property
    def direction(self) -> TraceDirection:
        return self.params.direction

    @property
    def root_node(self) -> TraceNode:
        if self._nodes is None and self._parts is not None:
            return self._parts.root_node()
        return self.nodes[0]

    def node(self, address: str) -> TraceNode | None:
        if self._nodes is None and self._parts is not None:
            return self._parts.node(address)
        if self._by_address is None:
            self._by_address = {node.address: node for node in self.nodes}
        return self._by_address.get(address)

    @property
    def terminals(self) -> tuple[TraceNode, ...]:
        if self._nodes is None and self._parts is not None:
            return tuple(node for node in self._parts.labelled() if node.terminal)
        return tuple(node for node in self.nodes if node.terminal)

    @property
    def labelled(self) -> tuple[TraceNode, ...]:
        """Reached addresses (not the root) with at least one active label."""
        if self._nodes is None and self._parts is not None:
            return tuple(self._parts.labelled())
        return tuple(node for node in self.nodes[1:] if node.categories)

    def path_to(self, address: str) -> tuple[TraceEdge, ...]:
        """The transfers from the root to `address` along which the trace first reached it, in hop order."""
        if self._edges is None and self._parts is not None:
            return self._parts.path_to(address)
        path: list[TraceEdge] = []
        seen: set[str] = set()
        while address != self.root and address in self.parents and address not in seen:
            seen.add(address)
            edge = self.edges[self.parents[address]]
            path.append(edge)
            address = edge.from_addr if self.direction is TraceDirection.OUT else edge.to_addr
        return tuple(reversed(path))

    def near_far(self, edge: TraceEdge) -> tuple[str, str]:
        """(the end closer to the root, the end further away)."""
        if self.direction is TraceDirection.OUT:
            return edge.from_addr, edge.to_addr
        return edge.to_addr, edge.from_addr

    def taint_under(self, model: TaintModel) -> Taint:
        found = self._taint.get(model)
        if found is None:
            found = self._taint[model] = _taint(model, self.root, self.nodes, self.edges, self.totals, self.direction)
        return found

    def received_under(
        self, model: TaintModel, only: Collection[str] | None = None
    ) -> Mapping[str, Mapping[Asset, int]]:
        """The tainted amount each address received under `model` (`taint_under(model).received`, without
        materialising the trace when it was built compactly). `only`: the addresses the caller reads; the result
        may then leave out the others (over a compact trace, taint is propagated only along the steps that lead
        to them), and is the same for those."""
        if model not in self._taint and self._edges is None and self._parts is not None:
            return self._parts.received(model, only)
        return self.taint_under(model).received

    def received_by_day(
        self, model: TaintModel, only: Collection[str]
    ) -> list[tuple[str, Asset, int | None, int, int]]:
        """(address, asset, decimals, timestamp, raw amount) of each transfer that carried taint under `model` to an
        address in `only`: what valuing received funds on each transfer's day reads (over a compact trace, without
        materialising it)."""
        if model not in self._taint and self._edges is None and hasattr(self._parts, "received_by_day"):
            return self._parts.received_by_day(model, only)  # type: ignore[union-attr]
        carried, wanted = self.taint_under(model).edges, set(only)
        found = []
        for index, edge in enumerate(self.edges):
            far = self.near_far(edge)[1]
            if carried[index] and far in wanted:
                found.append((far, edge.token, edge.decimals, edge.timestamp, carried[index]))
        return found

    def first_hop_by_day(self) -> list[tuple[Asset, int | None, int, int]]:
        """(asset, decimals, timestamp, raw value) of each transfer of the root the trace followed (its first hop)."""
        if self._edges is None and hasattr(self._parts, "first_hop_by_day"):
            return self._parts.first_hop_by_day()  # type: ignore[union-attr]
        return [(e.token, e.decimals, e.timestamp, e.value) for e in self.edges if e.hop == 1]

    def compare_models(self) -> tuple[TaintComparison, ...]:
        """Poison and haircut amounts side by side, for every terminal and labelled address."""
        poison, haircut = self.taint_under(TaintModel.POISON), self.taint_under(TaintModel.HAIRCUT)
        wanted = [node for node in self.nodes[1:] if node.terminal or node.categories]
        return tuple(
            TaintComparison(node.address, node.hop, poison.amounts(node.address), haircut.amounts(node.address))
            for node in wanted
        )

    def token_meta(self) -> dict[Asset, tuple[int | None, str | None]]:
        if self._edges is None and self._parts is not None:
            return self._parts.token_meta()
        meta: dict[Asset, tuple[int | None, str | None]] = {}
        for edge in self.edges:
            if edge.token is not None and meta.get(edge.token, (None, None))[0] is None:
                meta[edge.token] = (edge.decimals, edge.symbol)
        return meta


# --- where transfers come from -------------------------------------------------------------------------------


class TransferSource(Protocol):
    """Anything that can say, for a batch of addresses, which of their transfers a trace follows."""

    name: str

    async def flows(self, chain: str, query: FlowQuery, requests: Sequence[FlowRequest]) -> list[Flows]: ...


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


class IndexSource:
    """The transfer index through SQL, one query per address: the reference path, and the fallback while the
    in-memory graph loads."""

    name = "local index"

    def __init__(self, index: TransferIndex) -> None:
        self.index = index

    async def flows(self, chain: str, query: FlowQuery, requests: Sequence[FlowRequest]) -> list[Flows]:
        return [self._flows(chain, query, request) for request in requests]

    def _flows(self, chain: str, query: FlowQuery, request: FlowRequest) -> Flows:
        column = col(TransferRow.from_addr) if query.direction == "out" else col(TransferRow.to_addr)
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


class ExplorerSource:
    """A block explorer's account history (`tracing.chain.explorer.ExplorerClient` or anything with an async or sync
    `transfers_of(address)` returning an object with `.transfers`, and optionally `.complete` and `.cuts` or
    `.notes`), for addresses the index does not cover. Histories are cached for `ttl` seconds; one the explorer
    cut (`complete` False) is traced as far as it goes, and the trace's coverage says which address and why."""

    name = "explorer"

    def __init__(self, client: Any, *, concurrency: int = 4, ttl: float = 600.0) -> None:
        self.client = client
        self.ttl = ttl
        self._semaphore = asyncio.Semaphore(concurrency)
        self._cache: dict[str, tuple[float, list[Transfer], str]] = {}

    async def history(self, address: str) -> list[Transfer]:
        return (await self.fetch(address))[0]

    async def fetch(self, address: str) -> tuple[list[Transfer], str]:
        """(the address's transfers, why its history is incomplete: empty when complete)."""
        cached = self._cache.get(address)
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1], cached[2]
        async with self._semaphore:
            result = self.client.transfers_of(address)
            if inspect.isawaitable(result):
                result = await result
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
                if t.chain == chain and (t.from_addr if query.direction == "out" else t.to_addr) == request.address
            ]
            mine.sort(key=lambda t: (t.timestamp, t.block_number, t.tx_hash, t.position))
            flows = select_flows(request.address, mine, request, query, len(mine), self.name)
            return replace(flows, incomplete=incomplete) if incomplete else flows

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


# --- the trace ------------------------------------------------------------------------------------------------


@dataclass
class _Reached:
    address: str
    hop: int
    reached_at: int | None = None
    weight: float = 0.0
    labels: tuple[Label, ...] = ()
    terminal: bool = False
    stop: Stop = Stop.HOP_BUDGET
    degree: int = 0
    source: str = ""


_BATCH = 16
"""Addresses asked about at once (an explorer answers them concurrently)."""


def _batch_size(params: TraceParams, reached: int) -> int:
    """Smaller batches as the node budget nears, so that one batch overshoots it by about one fan-out at most."""
    return max(1, min(_BATCH, (params.max_nodes - reached) // params.fanout + 1))


def weight_of(t: Transfer | TraceEdge) -> float:
    """A transfer's size in human units of its asset (raw units when decimals are unknown), for ordering only."""
    return t.value / 10 ** (18 if t.token is None else (t.decimals or 0))


async def trace_funds(
    source: TransferSource, labels: LabelLookup, root: str, chain: str, params: TraceParams | None = None
) -> Trace:
    """Trace from `root` over `source`; see `TraceParams` for the knobs.

    Over the in-memory graph the walk runs on integer ids and builds only the result (`_trace_graph`); any other
    source goes through `TransferSource.flows`. Both give the same trace.
    """
    params = params or TraceParams()
    if isinstance(source, GraphSource) and source.graph.chain == chain:
        return _trace_graph(source, labels, root, chain, params)
    started = time.perf_counter()
    outgoing = params.direction is TraceDirection.OUT
    query = params.query()
    root_labels = tuple(labels.for_addresses([root], chain).get(root, ()))
    reached: dict[str, _Reached] = {root: _Reached(root, 0, labels=root_labels)}
    edges: dict[tuple[str, TransferKind, str], TraceEdge] = {}
    totals: dict[str, Mapping[Asset, int]] = {}
    cuts: list[Cut] = []
    errors: list[str] = []
    incomplete: list[str] = []
    used: set[str] = set()
    frontier = [root]
    for hop in range(1, params.hops + 1):
        frontier.sort(key=lambda a: (-reached[a].weight, a))
        fresh: list[str] = []
        start = 0
        while start < len(frontier):
            if len(reached) >= params.max_nodes:
                for address in frontier[start:]:
                    reached[address].stop = Stop.NODE_BUDGET
                    cuts.append(Cut(address, hop - 1, "node budget"))
                break
            batch = frontier[start : start + _batch_size(params, len(reached))]
            start += len(batch)
            requests = [_request(reached[a], params, a == root) for a in batch]
            for flows in await source.flows(chain, query, requests):
                node = reached[flows.address]
                node.degree, node.source = flows.degree, flows.source
                if flows.source:
                    used.add(flows.source)
                if flows.incomplete:
                    incomplete.append(f"{flows.address} ({flows.source or 'source'}: {flows.incomplete})")
                if flows.error:
                    node.stop = Stop.ERROR
                    errors.append(f"{flows.address}: {flows.error}")
                    continue
                if flows.hub:
                    node.stop = Stop.BUSY
                    cuts.append(Cut(flows.address, hop - 1, "busy", 0, flows.degree))
                    continue
                if not flows.degree:
                    node.stop = Stop.NO_DATA
                    continue
                node.stop = Stop.EXPANDED
                totals[flows.address] = flows.totals
                if flows.dropped:
                    cuts.append(Cut(flows.address, hop - 1, "fan-out", flows.kept, flows.dropped))
                if flows.unscanned:
                    cuts.append(Cut(flows.address, hop - 1, "scan limit", flows.scanned, flows.unscanned))
                for t in flows.transfers:
                    key = (t.tx_hash, t.kind, t.position)
                    if key in edges:
                        continue
                    edges[key] = TraceEdge.of(t, hop)
                    far = t.to_addr if outgoing else t.from_addr
                    seen = reached.get(far)
                    if seen is None:
                        seen = reached[far] = _Reached(far, hop, reached_at=t.timestamp)
                        fresh.append(far)
                    elif seen.hop == hop and seen.reached_at is not None:
                        if outgoing:
                            seen.reached_at = min(seen.reached_at, t.timestamp)
                        else:
                            seen.reached_at = max(seen.reached_at, t.timestamp)
                    if seen.hop == hop:
                        weight = weight_of(t)
                        if weight > seen.weight:
                            seen.weight = weight
        found = labels.for_addresses(fresh, chain) if fresh else {}
        for address in fresh:
            node = reached[address]
            node.labels = tuple(found.get(address, ()))
            if any(label.active and label.category in params.stop_at for label in node.labels):
                node.terminal, node.stop = True, Stop.SERVICE
        frontier = [a for a in fresh if not reached[a].terminal]
        if not frontier:
            break
    nodes = [
        TraceNode(n.address, n.hop, n.labels, n.terminal, n.stop, n.reached_at, n.degree, n.source)
        for n in reached.values()
    ]
    return _assemble(
        root,
        chain,
        params,
        nodes,
        list(edges.values()),
        totals,
        cuts,
        errors,
        used,
        time.perf_counter() - started,
        incomplete,
    )


def _request(node: _Reached, params: TraceParams, root: bool) -> FlowRequest:
    since, until = _window(params, node.reached_at)
    return FlowRequest(node.address, since, until, root=root)


def _window(params: TraceParams, reached_at: int | None) -> tuple[int | None, int | None]:
    since, until = params.since, params.until
    if params.follow_time and reached_at is not None:
        if params.direction is TraceDirection.OUT:
            since = reached_at if since is None else max(since, reached_at)
        else:
            until = reached_at if until is None else min(until, reached_at)
    return since, until


def _trace_graph(source: GraphSource, labels: LabelLookup, root: str, chain: str, params: TraceParams) -> Trace:
    """The walk over the in-memory graph: compiled when it can run (`tracing.trace.compiled`), else in Python."""
    started = time.perf_counter()
    from tracing.trace import compiled as graph_walk

    if graph_walk.available():
        found = graph_walk.compiled_trace(source.graph, source.name, labels, root, chain, params, started)
        if found is not None:
            return found
    return _trace_graph_python(source, labels, root, chain, params, started)


def _trace_graph_python(
    source: GraphSource, labels: LabelLookup, root: str, chain: str, params: TraceParams, started: float
) -> Trace:
    """The same walk as `trace`, on the graph's arrays: node and edge ids until the result is built (the reference
    for the compiled walk)."""
    graph = source.graph
    outgoing = params.direction is TraceDirection.OUT
    query = params.query()
    names, ts_of = graph.addresses, graph.ts
    far_of = graph.dst if outgoing else graph.src
    root_labels = tuple(labels.for_addresses([root], chain).get(root, ()))
    root_id = graph.ids.get(root)
    if root_id is None:
        nodes = [TraceNode(root, 0, root_labels, stop=Stop.NO_DATA, source=source.name)]
        return _assemble(root, chain, params, nodes, [], {}, [], [], {source.name}, time.perf_counter() - started)
    hop_of: dict[int, int] = {root_id: 0}
    arrived: dict[int, int] = {}
    weight: dict[int, float] = {}
    stop: dict[int, Stop] = {}
    degree: dict[int, int] = {}
    node_labels: dict[int, tuple[Label, ...]] = {root_id: root_labels}
    terminal: set[int] = set()
    followed: list[tuple[int, int]] = []
    seen_edges: set[int] = set()
    totals: dict[str, Mapping[Asset, int]] = {}
    cuts: list[Cut] = []
    tokens = graph.tokens
    frontier = [root_id]
    for hop in range(1, params.hops + 1):
        frontier.sort(key=lambda n: (-weight.get(n, 0.0), names[n]))
        fresh: list[int] = []
        start = 0
        while start < len(frontier):
            if len(hop_of) >= params.max_nodes:
                for node in frontier[start:]:
                    stop[node] = Stop.NODE_BUDGET
                    cuts.append(Cut(names[node], hop - 1, "node budget"))
                break
            batch = frontier[start : start + _batch_size(params, len(hop_of))]
            start += len(batch)
            for node in batch:
                since, until = _window(params, arrived.get(node))
                picked = graph.select(node, outgoing, since, until, query, node == root_id)
                degree[node] = picked.degree
                if picked.hub:
                    stop[node] = Stop.BUSY
                    cuts.append(Cut(names[node], hop - 1, "busy", 0, picked.degree))
                    continue
                if not picked.degree:
                    stop[node] = Stop.NO_DATA
                    continue
                stop[node] = Stop.EXPANDED
                totals[names[node]] = {(None if tid < 0 else tokens[tid]): v for tid, v in picked.totals.items()}
                if picked.counterparties > picked.kept:
                    cuts.append(Cut(names[node], hop - 1, "fan-out", picked.kept, picked.counterparties - picked.kept))
                if picked.in_window > picked.scanned:
                    cuts.append(
                        Cut(names[node], hop - 1, "scan limit", picked.scanned, picked.in_window - picked.scanned)
                    )
                for edge in picked.chosen:
                    if edge in seen_edges:
                        continue
                    seen_edges.add(edge)
                    followed.append((edge, hop))
                    far = far_of[edge]
                    when = ts_of[edge]
                    known = hop_of.get(far)
                    if known is None:
                        hop_of[far] = known = hop
                        arrived[far] = when
                        fresh.append(far)
                    elif known == hop:
                        arrived[far] = min(arrived[far], when) if outgoing else max(arrived[far], when)
                    if known == hop:
                        size = _edge_weight(graph, edge)
                        if size > weight.get(far, 0.0):
                            weight[far] = size
        found = labels.for_addresses([names[n] for n in fresh], chain) if fresh else {}
        for node in fresh:
            mine = tuple(found.get(names[node], ()))
            if mine:
                node_labels[node] = mine
                if any(label.active and label.category in params.stop_at for label in mine):
                    terminal.add(node)
                    stop[node] = Stop.SERVICE
        frontier = [n for n in fresh if n not in terminal]
        if not frontier:
            break
    nodes = [
        TraceNode(
            names[node],
            hop,
            node_labels.get(node, ()),
            node in terminal,
            stop.get(node, Stop.HOP_BUDGET),
            arrived.get(node),
            degree.get(node, 0),
            source.name if node in degree else "",
        )
        for node, hop in hop_of.items()
    ]
    edges = [graph_edge(graph, edge, hop) for edge, hop in followed]
    return _assemble(root, chain, params, nodes, edges, totals, cuts, [], {source.name}, time.perf_counter() - started)


def _edge_weight(graph: TransferGraph, edge: int) -> float:
    tid = graph.token[edge]
    decimals = 18 if tid < 0 else (graph.token_meta[tid][0] or 0)
    return graph.value(edge) / 10**decimals


def graph_edge(graph: TransferGraph, edge: int, hop: int) -> TraceEdge:
    """Graph edge `edge` as a trace edge at `hop`."""
    tid = graph.token[edge]
    if tid < 0:
        token, decimals, symbol = None, None, None
    else:
        token, (decimals, symbol) = graph.tokens[tid], graph.token_meta[tid]
    kind, position = graph.kinds[graph.kind[edge]]
    names = graph.addresses
    return TraceEdge(
        names[graph.src[edge]],
        names[graph.dst[edge]],
        graph.tx_hash(edge),
        graph.block[edge],
        graph.ts[edge],
        token,
        graph.value(edge),
        decimals,
        symbol,
        kind,
        position,
        graph.sources[graph.source[edge]],
        hop,
    )


def _assemble(
    root: str,
    chain: str,
    params: TraceParams,
    nodes: list[TraceNode],
    edges: list[TraceEdge],
    totals: dict[str, Mapping[Asset, int]],
    cuts: list[Cut],
    errors: list[str],
    used: set[str],
    seconds: float,
    incomplete: Sequence[str] = (),
) -> Trace:
    edges.sort(key=edge_order)
    nodes.sort(key=lambda n: (n.hop, n.address))
    silent = sum(1 for n in nodes[1:] if n.stop is Stop.NO_DATA)
    at_budget = sum(1 for n in nodes if n.stop is Stop.HOP_BUDGET and n.hop == params.hops)
    coverage = trace_coverage(
        chain,
        params,
        describe_cuts(cuts, params),
        _gap_lines(silent, at_budget, params, errors, incomplete),
        used,
        {edge.source for edge in edges},
        len(edges),
    )
    return Trace(
        root=root,
        chain=chain,
        params=params,
        nodes=tuple(nodes),
        edges=tuple(edges),
        cuts=tuple(cuts),
        coverage=coverage,
        totals=totals,
        parents=parents_of(nodes, edges, params.direction),
        seconds=seconds,
    )


def edge_order(edge: TraceEdge) -> tuple[int, int, str, str, str]:
    """The order of a trace's edges: by hop, time, tx hash, kind, position."""
    return (edge.hop, edge.timestamp, edge.tx_hash, edge.kind.value, edge.position)


def parents_of(nodes: Sequence[TraceNode], edges: Sequence[TraceEdge], direction: TraceDirection) -> dict[str, int]:
    """Per reached address, the index in `edges` (in `edge_order`) of its parent: of the edges that reach it from
    the hop before, the largest (`weight_of`), the first in edge order among equals."""
    outgoing = direction is TraceDirection.OUT
    parents: dict[str, int] = {}
    best: dict[str, float] = {}
    hop_of = {n.address: n.hop for n in nodes}
    for index, edge in enumerate(edges):
        near, far = (edge.from_addr, edge.to_addr) if outgoing else (edge.to_addr, edge.from_addr)
        if hop_of.get(far) != edge.hop or hop_of.get(near) != edge.hop - 1:
            continue
        size = weight_of(edge)
        if far not in best or size > best[far]:
            best[far] = size
            parents[far] = index
    return parents


def trace_coverage(
    chain: str,
    params: TraceParams,
    cuts: Sequence[str],
    gaps: Sequence[str],
    used: set[str],
    provenance: set[str],
    transfers: int,
) -> Coverage:
    """The coverage statement of one trace: `used` source names, `provenance` the edges' own sources."""
    named = sorted(provenance)
    sources = [f"{name} ({', '.join(named)})" if name == "local index" and named else name for name in sorted(used)]
    return Coverage(
        chains=(chain,),
        sources=tuple(sources) or ("local index",),
        traced=True,
        hop_budget=params.hops,
        cuts=tuple(cuts),
        gaps=tuple(gaps),
        taint_model=params.model.value,
        transfers=transfers,
    )


def _taint(
    model: TaintModel,
    root: str,
    nodes: Sequence[TraceNode],
    edges: Sequence[TraceEdge],
    totals: Mapping[str, Mapping[Asset, int]],
    direction: TraceDirection,
) -> Taint:
    outgoing = direction is TraceDirection.OUT
    steps = [
        TaintStep(
            e.from_addr if outgoing else e.to_addr, e.to_addr if outgoing else e.from_addr, e.token, e.value, e.hop
        )
        for e in edges
    ]
    return compute_taint(model, root, {n.address: n.hop for n in nodes}, totals, steps)


def describe_cuts(cuts: Sequence[Cut], params: TraceParams) -> list[str]:
    """What the trace left out, one plain sentence per kind of cut."""
    by_reason: dict[str, list[Cut]] = defaultdict(list)
    for cut in cuts:
        by_reason[cut.reason].append(cut)
    fanout, scan, busy = by_reason.get("fan-out", []), by_reason.get("scan limit", []), by_reason.get("busy", [])
    return cut_lines(
        params,
        fanout=(len(fanout), sum(c.dropped for c in fanout)),
        scan=(len(scan), sum(c.dropped for c in scan)),
        busy=(len(busy), [c.address for c in busy[:3]]),
        budget=len(by_reason.get("node budget", [])),
    )


def cut_lines(
    params: TraceParams,
    *,
    fanout: tuple[int, int],
    scan: tuple[int, int],
    busy: tuple[int, Sequence[str]],
    budget: int,
) -> list[str]:
    """`describe_cuts` from counts: (addresses, counterparties dropped) cut by fan-out, (addresses, transfers not
    examined) by the scan limit, (addresses, the first three) busy, addresses left by the node budget."""
    lines: list[str] = []
    if fanout[0]:
        lines.append(
            f"fan-out capped at {params.fanout} counterparties per address (largest flows kept): "
            f"{fanout[1]:,} counterparties of {fanout[0]} address(es) not followed"
        )
    if scan[0]:
        lines.append(
            f"only the first {params.scan_limit:,} transfers in the window examined at {scan[0]} address(es); "
            f"{scan[1]:,} transfers not examined"
        )
    if busy[0]:
        shown = ", ".join(busy[1][:3]) + (f" and {busy[0] - 3} more" if busy[0] > 3 else "")
        lines.append(f"busy addresses (over {params.hub_degree:,} transfers) not expanded as likely services: {shown}")
    if budget:
        lines.append(f"node budget of {params.max_nodes:,} addresses reached: {budget} address(es) not expanded")
    return lines


INCOMPLETE_HISTORY = "history incomplete at the source, transfers may be missing"
"""How a gap about a cut source history starts (after the direction prefix of a report)."""


def _gap_lines(
    silent: int, at_budget: int, params: TraceParams, errors: Sequence[str], incomplete: Sequence[str] = ()
) -> list[str]:
    """`silent`: reached addresses (not the root) with no data; `at_budget`: addresses at the hop budget;
    `incomplete`: addresses whose history the source cut, with why."""
    gaps: list[str] = []
    for line in incomplete[:5]:
        gaps.append(f"{INCOMPLETE_HISTORY}: {line}")
    if len(incomplete) > 5:
        gaps.append(f"{INCOMPLETE_HISTORY}: {len(incomplete) - 5} more address(es)")
    if silent:
        where = "onward" if params.direction is TraceDirection.OUT else "earlier"
        gaps.append(f"{silent} reached address(es) have no {where} transfers in the sources used")
    if at_budget:
        gaps.append(f"{at_budget} address(es) at the hop budget ({params.hops}) were not followed further")
    for error in errors[:3]:
        gaps.append(f"source error at {error}")
    if len(errors) > 3:
        gaps.append(f"{len(errors) - 3} more source errors")
    return gaps


def categories_reached(trace: Trace) -> Counter[Category]:
    """How many reached addresses carry each label category."""
    return Counter(category for node in trace.nodes[1:] for category in node.categories)


def with_coverage(trace: Trace, **changes: Any) -> Trace:
    """The same trace with coverage fields replaced (index range, label sets, extra gaps)."""
    return trace.replace(coverage=replace(trace.coverage, **changes))
