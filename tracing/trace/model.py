"""What a trace answers: the addresses it reached (`TraceNode`, with why it stopped there: `Stop`), the transfers
it followed (`TraceEdge`), what it left out (`Cut`), and the `Trace` that holds them, built eagerly by the Python
walk or over the compact parts the compiled walk leaves (`TraceParts`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from tracing.chain.amounts import Valuation
from tracing.chain.transfer import Transfer, TransferKind
from tracing.labels import Category, Label
from tracing.trace.coverage import Coverage
from tracing.trace.flows import Asset
from tracing.trace.graph import TransferGraph
from tracing.trace.params import Direction, TraceParams
from tracing.trace.taint import Taint, TaintModel, TaintStep, compute_taint
from tracing.trace.value import Followed


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
        self._carried: Mapping[tuple[str, str, str], int] | None = None
        self._followed: Mapping[tuple[str, str, str], Followed] | None = None
        self._passing: Mapping[tuple[str, str, str], str] | None = None
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
        copy._carried = self._carried
        copy._followed = self._followed
        copy._passing = self._passing
        copy.valuation = changes.get("valuation", self.valuation)
        return copy

    def with_carried(
        self,
        carried: Mapping[tuple[str, str, str], int],
        followed: Mapping[tuple[str, str, str], Followed] | None = None,
        passing: Mapping[tuple[str, str, str], str] | None = None,
    ) -> Trace:
        """This trace, knowing the traced value each followed transfer carries (by `TraceEdge.key`) under its model,
        as the value-aware walk found it: its taint under that model is read from there; `followed`: why the walk
        followed each (`followed_by`); `passing`: the receipt's transaction of those that pass one on, when it is
        cheaper to read apart (`passes_on`)."""
        self._carried = carried
        self._followed = followed
        self._passing = passing
        self._taint.pop(self.params.model, None)
        return self

    def followed_by(self, edge: TraceEdge) -> Followed | None:
        """Why the value-aware walk followed `edge` (None: the walk followed the graph, or the edge is not its)."""
        return None if self._followed is None else self._followed.get(edge.key)

    def passes_on(self, edge: TraceEdge) -> str | None:
        """The transaction of the receipt `edge` passes on (`Followed.passes_on`), None if it passes none."""
        if self._passing is not None:
            return self._passing.get(edge.key)
        why = self.followed_by(edge)
        return None if why is None else why.passes_on

    @property
    def value_aware(self) -> bool:
        """Whether the walk followed the traced value (`carried` known), not the graph."""
        return self._carried is not None

    def carried(self, edge: TraceEdge) -> int | None:
        """The traced value `edge` carries under the trace's model, as the value-aware walk found it."""
        return None if self._carried is None else self._carried.get(edge.key, 0)

    @property
    def through(self) -> tuple[TraceNode, ...]:
        """Reached services the trace went on past, as asked (`TraceParams.through`): identity lost there."""
        wanted = self.params.stop_at & self.params.through
        return tuple(
            node
            for node in self.nodes[1:]
            if wanted and any(label.active and label.category in wanted for label in node.labels)
        )

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
    def direction(self) -> Direction:
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
            address = edge.from_addr if self.direction is Direction.OUT else edge.to_addr
        return tuple(reversed(path))

    def near_far(self, edge: TraceEdge) -> tuple[str, str]:
        """(the end closer to the root, the end further away)."""
        if self.direction is Direction.OUT:
            return edge.from_addr, edge.to_addr
        return edge.to_addr, edge.from_addr

    def taint_under(self, model: TaintModel) -> Taint:
        found = self._taint.get(model)
        if found is None and self._carried is not None and model is self.params.model:
            found = self._taint[model] = walked_taint(self, self._carried)
        if found is None:
            found = self._taint[model] = taint_of(model, self.root, self.nodes, self.edges, self.totals, self.direction)
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
        compact = self._edges is None and hasattr(self._parts, "received_by_day")
        if model not in self._taint and compact and model is not TaintModel.FIFO:
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


def weight_of(t: Transfer | TraceEdge) -> float:
    """A transfer's size in human units of its asset (raw units when decimals are unknown), for ordering only."""
    return t.value / 10 ** ((18 if t.decimals is None else t.decimals) if t.token is None else (t.decimals or 0))


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


def edge_order(edge: TraceEdge) -> tuple[int, int, str, str, str]:
    """The order of a trace's edges: by hop, time, tx hash, kind, position."""
    return (edge.hop, edge.timestamp, edge.tx_hash, edge.kind.value, edge.position)


def parents_of(nodes: Sequence[TraceNode], edges: Sequence[TraceEdge], direction: Direction) -> dict[str, int]:
    """Per reached address, the index in `edges` (in `edge_order`) of its parent: of the edges that reach it from
    the hop before, the largest (`weight_of`), the first in edge order among equals."""
    outgoing = direction is Direction.OUT
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


def taint_of(
    model: TaintModel,
    root: str,
    nodes: Sequence[TraceNode],
    edges: Sequence[TraceEdge],
    totals: Mapping[str, Mapping[Asset, int]],
    direction: Direction,
) -> Taint:
    outgoing = direction is Direction.OUT
    steps = [
        TaintStep(
            e.from_addr if outgoing else e.to_addr, e.to_addr if outgoing else e.from_addr, e.token, e.value, e.hop
        )
        for e in edges
    ]
    return compute_taint(model, root, {n.address: n.hop for n in nodes}, totals, steps)


def with_coverage(trace: Trace, **changes: Any) -> Trace:
    """The same trace with coverage fields replaced (index range, label sets, extra gaps)."""
    return trace.replace(coverage=replace(trace.coverage, **changes))


def walked_taint(trace: Trace, carried: Mapping[tuple[str, str, str], int]) -> Taint:
    """The taint the value-aware walk found: what each followed transfer carries (only transfers one hop further
    from the root carry traced value: a cycle never counts the same funds twice); what each address received over
    them; the share of what it moved on that was traced."""
    hop_of = {n.address: n.hop for n in trace.nodes}
    edges, totals = trace.edges, trace.totals
    amounts: list[int] = []
    received: dict[str, dict[Asset, int]] = {}
    sent: dict[str, dict[Asset, int]] = {}
    for edge in edges:
        near, far = trace.near_far(edge)
        amount = carried.get(edge.key, 0)
        if hop_of.get(near) != edge.hop - 1 or hop_of.get(far) != edge.hop:
            amount = 0
        amounts.append(amount)
        if not amount:
            continue
        mine = received.setdefault(far, {})
        mine[edge.token] = mine.get(edge.token, 0) + amount
        out = sent.setdefault(near, {})
        out[edge.token] = out.get(edge.token, 0) + amount
    fraction = {trace.root: 1.0}
    for address, by_asset in sent.items():
        moved = totals.get(address, {})
        shares = [value / moved[asset] for asset, value in by_asset.items() if moved.get(asset)]
        fraction[address] = min(1.0, max(shares, default=1.0))
    return Taint(model=trace.params.model, edges=tuple(amounts), received=received, fraction=fraction)
