"""The compiled trace walks over the in-memory graph (`tracing.trace._walk`, a C extension built by `pip install`), and
the compact results they leave: node and edge ids in arrays, materialised as `TraceNode`s and `TraceEdge`s only when
a caller reads them. The walk that follows the graph (`compiled_trace`, `GraphParts`) is described first; the
value-aware walk (`compiled_value_trace`, `ValueParts`; its reference is the Python value walk of
`tracing.trace.walk._trace_value` over `tracing.trace.value_graph`, checked by `tests/test_trace_value_compiled.py`)
below.

The walk is the one of `tracing.trace.walk.trace_graph_python` (the reference, used when the extension is not built,
when `CHAINSLEUTH_PURE_WALK` is set, for graphs with transfers appended since the last `compact`, and when the
extension declines: values of 2**127 or more, tokens with more than 19 decimals). Both give the same trace;
`tests/test_trace_walk.py` checks it on random graphs.
"""

from __future__ import annotations

import os
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from itertools import compress
from typing import Any, Generic, TypeVar
from weakref import WeakKeyDictionary

from tracing.chain.prices import DAY, native_decimals
from tracing.labels import Label
from tracing.trace.coverage import Coverage, cut_lines, gap_lines, trace_coverage, value_lines
from tracing.trace.flows import Asset, rank_counterparties
from tracing.trace.graph import TransferGraph
from tracing.trace.label_cache import LabelCache, NodeMarks
from tracing.trace.model import Cut, Stop, Trace, TraceEdge, TraceNode, edge_order, graph_edge, weight_of
from tracing.trace.params import Direction, TraceParams
from tracing.trace.sources import LabelLookup
from tracing.trace.taint import TaintModel, carried_amounts, received_amounts
from tracing.trace.value import (
    CRUMB_CAP,
    DILUTED,
    PASS_FEE,
    PASS_WINDOW,
    PURITY,
    Dust,
    Followed,
    FollowedBy,
    UsdPrices,
    asset_key,
)

try:
    from tracing.trace import _walk  # type: ignore[attr-defined]
except ImportError:  # not built (no compiler at install time): the Python walk runs instead
    _walk = None

STOPS = (Stop.EXPANDED, Stop.SERVICE, Stop.BUSY, Stop.HOP_BUDGET, Stop.NODE_BUDGET, Stop.NO_DATA)
REASONS = ("fan-out", "scan limit", "busy", "node budget")
NO_TIME = -(2**63)


def available() -> bool:
    """Whether the compiled walk is built and not switched off (`CHAINSLEUTH_PURE_WALK=1`). Where it must be built
    (`CHAINSLEUTH_REQUIRE_COMPILED_WALK=1`, as in CI), a missing extension is an error, not a silent fallback."""
    if _walk is None and os.environ.get("CHAINSLEUTH_REQUIRE_COMPILED_WALK"):
        raise RuntimeError("tracing.trace._walk is not built, and CHAINSLEUTH_REQUIRE_COMPILED_WALK is set")
    return _walk is not None and not os.environ.get("CHAINSLEUTH_PURE_WALK")


def compiled_trace(
    graph: TransferGraph,
    source_name: str,
    labels: LabelLookup,
    root: str,
    chain: str,
    params: TraceParams,
    started: float,
) -> Trace | None:
    """The trace by the compiled walk, or None when it cannot run here (the caller runs the Python walk)."""
    root_id = graph.ids.get(root)
    if _walk is None or root_id is None or graph.pending or root_id >= len(graph.out_off) - 1:
        return None
    outgoing = params.direction is Direction.OUT
    names = graph.addresses
    ids = graph.ids
    stop_at = params.stops
    node_labels: dict[int, tuple[Label, ...]] = {}
    marks: NodeMarks | None = None
    if isinstance(labels, LabelCache):
        # labels as a byte per node: the walk stops at services without calling back, and the labels of the
        # reached labelled nodes are read from the same snapshot when the result is read
        marks = labels.node_marks(graph, chain, stop_at)
    else:
        root_labels = tuple(labels.for_addresses([root], chain).get(root, ()))
        if root_labels:
            node_labels[root_id] = root_labels

    def on_fresh(fresh: list[int]) -> list[int]:
        found = labels.for_addresses([names[n] for n in fresh], chain)
        terminal: list[int] = []
        for address, mine in found.items():
            if not mine:
                continue
            node = ids[address]
            node_labels[node] = tuple(mine)
            if any(label.active and label.category in stop_at for label in mine):
                terminal.append(node)
        return terminal

    def select(node: int, since: int | None, until: int | None, is_root: bool) -> Any:
        return graph.select(node, outgoing, since, until, params.query(), is_root)

    token = params.token
    walk_params = (
        int(outgoing),
        params.hops,
        int(params.follow_time),
        params.since,
        params.until,
        params.fanout,
        params.max_nodes,
        params.scan_limit,
        params.hub_degree,
        int(token is not None),
        -1 if token in (None, "native") else graph.token_ids.get(token or "", -3),
        int(params.min_value is not None and params.min_value > 0),
    )
    columns = graph.walk_columns(outgoing, params.min_value)
    if marks is None:
        raw = _walk.walk(columns, names, root_id, walk_params, on_fresh, select)
    else:
        raw = _walk.walk(columns, names, root_id, walk_params, on_fresh, select, marks.marks)
    if raw is None:
        return None
    parts = GraphParts(graph, source_name, params, root_id, raw, node_labels, chain, marks)
    return Trace(root, chain, params, None, None, None, None, None, None, time.perf_counter() - started, parts=parts)


class GraphParts:
    """A graph trace held as the compiled walk left it (see `TraceParts`)."""

    def __init__(
        self,
        graph: TransferGraph,
        source_name: str,
        params: TraceParams,
        root_id: int,
        raw: tuple[Any, ...],
        labels: dict[int, tuple[Label, ...]],
        chain: str,
        marks: NodeMarks | None = None,
    ) -> None:
        node, hop, arrived, degree, stop, parent, followed, followed_hop, cuts, totals, sources, labelled = raw
        self.graph = graph
        self.source_name = source_name
        self.params = params
        self.outgoing = params.direction is Direction.OUT
        self.root_id = root_id
        self.node_ids: Sequence[int] = memoryview(node).cast("i")
        self.hops: Sequence[int] = memoryview(hop).cast("i")
        self.arrived: Sequence[int] = memoryview(arrived).cast("q")
        self.degrees: Sequence[int] = memoryview(degree).cast("q")
        self.stops: bytes = stop
        self.parents: Sequence[int] = memoryview(parent).cast("i")
        self.followed: Sequence[int] = memoryview(followed).cast("i")
        self.followed_hops: Sequence[int] = memoryview(followed_hop).cast("i")
        self.raw_cuts: list[tuple[int, int, int, int, int]] = cuts
        self.raw_totals: list[tuple[int, dict[int, int]]] = totals
        self.source_ids: list[int] = sources
        self.chain = chain
        self._labels: dict[int, tuple[Label, ...]] | None = labels if marks is None else None
        self._marks = marks
        self._labelled_ids = labelled
        self._position: dict[int, int] | None = None
        self._totals: dict[int, dict[int, int]] | None = None
        self._paths: dict[int, tuple[TraceEdge, ...]] = {}

    @property
    def labels(self) -> dict[int, tuple[Label, ...]]:
        """The labels of the reached labelled nodes, the root included (read from the walk's label snapshot when
        the walk ran over node marks)."""
        if self._labels is None:
            marks = self._marks
            assert marks is not None
            names = self.graph.addresses
            ids = list(memoryview(self._labelled_ids).cast("i"))
            if marks.marks[self.root_id]:
                ids.insert(0, self.root_id)
            self._labels = {node: tuple(marks.labels_of(names[node])) for node in ids}
        return self._labels

    # -- summaries, without materialising --

    def coverage(self) -> Coverage:
        chain = self.chain
        params, names = self.params, self.graph.addresses
        counts = [0, 0, 0, 0]
        dropped = [0, 0, 0, 0]
        busy: list[str] = []
        for node, _hop, reason, _kept, gone in self.raw_cuts:
            counts[reason] += 1
            dropped[reason] += gone
            if reason == 2 and len(busy) < 3:
                busy.append(names[node])
        lines = cut_lines(
            params,
            fanout=(counts[0], dropped[0]),
            scan=(counts[1], dropped[1]),
            busy=(counts[2], busy),
            budget=counts[3],
        )
        stops = self.stops
        silent = stops.count(5) - (stops[0] == 5)
        # nodes are in the order the walk reached them, hops ascending: those at the hop budget come last
        at_budget = stops.count(3, bisect_left(self.hops, params.hops))
        provenance = {self.graph.sources[s] for s in self.source_ids}
        return trace_coverage(
            chain,
            params,
            lines,
            gap_lines(silent, at_budget, params, []),
            {self.source_name},
            provenance,
            len(self.followed),
        )

    def position(self, node: int) -> int | None:
        if self._position is None:
            self._position = {n: i for i, n in enumerate(self.node_ids)}
        return self._position.get(node)

    # -- materialising --

    def _node(self, i: int) -> TraceNode:
        node = self.node_ids[i]
        stop = self.stops[i]
        arrived = self.arrived[i]
        degree = self.degrees[i]
        return TraceNode(
            self.graph.addresses[node],
            self.hops[i],
            self.labels.get(node, ()),
            stop == 1,
            STOPS[stop],
            None if arrived == NO_TIME else arrived,
            max(degree, 0),
            self.source_name if degree >= 0 else "",
        )

    def nodes(self) -> list[TraceNode]:
        nodes = [self._node(i) for i in range(len(self.node_ids))]
        nodes.sort(key=lambda n: (n.hop, n.address))
        return nodes

    def edges(self) -> list[TraceEdge]:
        graph = self.graph
        edges = [graph_edge(graph, edge, hop) for edge, hop in zip(self.followed, self.followed_hops, strict=True)]
        edges.sort(key=edge_order)
        return edges

    def cuts(self) -> list[Cut]:
        names = self.graph.addresses
        return [
            Cut(names[node], hop, REASONS[reason], kept, dropped) for node, hop, reason, kept, dropped in self.raw_cuts
        ]

    def totals(self) -> dict[str, Mapping[Asset, int]]:
        names, tokens = self.graph.addresses, self.graph.tokens
        return {
            names[node]: {(None if tid < 0 else tokens[tid]): value for tid, value in by_token.items()}
            for node, by_token in self.raw_totals
        }

    def root_node(self) -> TraceNode:
        return self._node(0)

    def node(self, address: str) -> TraceNode | None:
        node = self.graph.ids.get(address)
        i = None if node is None else self.position(node)
        return None if i is None else self._node(i)

    def labelled(self) -> list[TraceNode]:
        found = []
        for node in self.labels:
            i = self.position(node)
            if node == self.root_id or i is None:
                continue
            reached = self._node(i)
            if reached.categories:
                found.append(reached)
        found.sort(key=lambda n: (n.hop, n.address))
        return found

    def _parent_edge(self, i: int) -> int:
        """The graph edge of node `i`'s parent (-1: none)."""
        parent = self.parents[i]
        if parent != -2:
            return parent
        # a tie in weight and time: the first in edge order among the largest, as `parents_of` decides
        node, hop = self.node_ids[i], self.hops[i]
        far_of = self.graph.dst if self.outgoing else self.graph.src
        candidates = [
            (graph_edge(self.graph, edge, h), edge)
            for edge, h in zip(self.followed, self.followed_hops, strict=True)
            if h == hop and far_of[edge] == node
        ]
        candidates.sort(key=lambda pair: edge_order(pair[0]))
        best = max(weight_of(edge) for edge, _ in candidates)
        return next(edge_id for edge, edge_id in candidates if weight_of(edge) == best)

    def path_to(self, address: str) -> tuple[TraceEdge, ...]:
        graph = self.graph
        near_of = graph.src if self.outgoing else graph.dst
        paths = self._paths
        node = graph.ids.get(address)
        # up the parents to the root or to a node whose path is known (parents are one hop nearer: no cycles)
        climbed: list[tuple[int, TraceEdge]] = []
        seen: set[int] = set()
        prefix: tuple[TraceEdge, ...] = ()
        while node is not None and node != self.root_id and node not in seen:
            known = paths.get(node)
            if known is not None:
                prefix = known
                break
            i = self.position(node)
            if i is None:
                break
            edge = self._parent_edge(i)
            if edge < 0:
                break
            seen.add(node)
            climbed.append((node, graph_edge(graph, edge, self.hops[i])))
            node = near_of[edge]
        path = prefix
        for node, step in reversed(climbed):
            path = (*path, step)
            paths[node] = path
        return path

    def totals_of(self, address: str) -> Mapping[Asset, int]:
        node = self.graph.ids.get(address)
        tokens = self.graph.tokens
        for expanded, by_token in self.raw_totals:
            if expanded == node:
                return {(None if tid < 0 else tokens[tid]): value for tid, value in by_token.items()}
        return {}

    def token_meta(self) -> dict[Asset, tuple[int | None, str | None]]:
        graph = self.graph
        if not graph.tokens:
            return {}
        token_of = graph.token
        used = {token_of[edge] for edge in self.followed}
        return {graph.tokens[tid]: graph.token_meta[tid] for tid in sorted(used) if tid >= 0}

    def received(self, model: TaintModel, only: Collection[str] | None = None) -> Mapping[str, Mapping[Asset, int]]:
        graph = self.graph
        near_of, far_of = (graph.src, graph.dst) if self.outgoing else (graph.dst, graph.src)
        high, token_of = graph.value_hi, graph.token
        followed, followed_hops = self.followed, self.followed_hops
        if only is None or model is TaintModel.FIFO:
            # FIFO: what an address passes on depends on every transfer it made before, wanted or not
            picked: Sequence[int] = range(len(followed))
        else:
            ids = graph.ids
            targets = [node for node in (ids.get(address) for address in only) if node is not None]
            # only the steps that carry taint towards the wanted addresses (their ancestors in the trace)
            picked = memoryview(
                _walk.ancestors(followed, followed_hops, near_of, far_of, self.node_ids, self.hops, targets)
            ).cast("i")
        low = graph.value_lo
        steps = []
        hop_of: dict[int, int] = {}
        for k in picked:
            edge, hop = followed[k], followed_hops[k]
            steps.append(
                (near_of[edge], far_of[edge], token_of[edge], graph.value(edge) if high[edge] else low[edge], hop)
            )
        if model is TaintModel.FIFO:  # in the result's edge order, as the eager trace reads them
            order = sorted(
                range(len(steps)), key=lambda i: edge_order(graph_edge(graph, followed[i], followed_hops[i]))
            )
            steps = [steps[i] for i in order]
        if only is None or model is TaintModel.FIFO:
            hop_of = dict(zip(self.node_ids, self.hops, strict=True))
        else:
            for near, far, _token, _value, hop in steps:  # every picked step goes one hop further from the root
                hop_of[near] = hop - 1
                hop_of[far] = hop
        if self._totals is None:
            self._totals = dict(self.raw_totals)
        return _ByAddress(graph, received_amounts(model, self.root_id, hop_of, self._totals, steps))

    def received_by_day(
        self, model: TaintModel, only: Collection[str]
    ) -> list[tuple[str, Asset, int | None, int, int]]:
        """(address, asset, decimals, timestamp, raw amount) of each transfer that carried taint under `model` to
        an address in `only`, propagated along only the steps that lead to them (as `received`)."""
        graph = self.graph
        near_of, far_of = (graph.src, graph.dst) if self.outgoing else (graph.dst, graph.src)
        high, low, token_of = graph.value_hi, graph.value_lo, graph.token
        targets = [node for node in (graph.ids.get(address) for address in only) if node is not None]
        if not targets:
            return []
        followed, followed_hops = self.followed, self.followed_hops
        picked = memoryview(
            _walk.ancestors(followed, followed_hops, near_of, far_of, self.node_ids, self.hops, targets)
        ).cast("i")
        edges = [followed[k] for k in picked]
        steps = []
        hop_of: dict[int, int] = {}
        for k, edge in zip(picked, edges, strict=True):
            hop = followed_hops[k]
            near, far = near_of[edge], far_of[edge]
            steps.append((near, far, token_of[edge], graph.value(edge) if high[edge] else low[edge], hop))
            hop_of[near], hop_of[far] = hop - 1, hop
        if self._totals is None:
            self._totals = dict(self.raw_totals)
        carried = carried_amounts(model, self.root_id, hop_of, self._totals, steps)
        wanted = set(targets)
        names, tokens, meta, ts = graph.addresses, graph.tokens, graph.token_meta, graph.ts
        found = []
        for (_, far, tid, _, _), edge, amount in zip(steps, edges, carried, strict=True):
            if amount and far in wanted:
                token, decimals = (None, None) if tid < 0 else (tokens[tid], meta[tid][0])
                found.append((names[far], token, decimals, int(ts[edge]), amount))
        return found

    def first_hop_by_day(self) -> list[tuple[Asset, int | None, int, int]]:
        """(asset, decimals, timestamp, raw value) of each transfer of the root the trace followed."""
        graph = self.graph
        tokens, meta, ts, token_of = graph.tokens, graph.token_meta, graph.ts, graph.token
        found = []
        for k, edge in enumerate(self.followed):
            if self.followed_hops[k] == 1:
                tid = token_of[edge]
                token, decimals = (None, None) if tid < 0 else (tokens[tid], meta[tid][0])
                found.append((token, decimals, int(ts[edge]), graph.value(edge)))
        return found


class _ByAddress(Mapping[str, Mapping[Asset, int]]):
    """Amounts per node id and token id, read by address and asset (converted on access)."""

    def __init__(self, graph: TransferGraph, by_node: dict[int, dict[int, int]]) -> None:
        self.graph = graph
        self.by_node = by_node

    def _assets(self, amounts: Mapping[int, int]) -> dict[Asset, int]:
        tokens = self.graph.tokens
        return {(None if tid < 0 else tokens[tid]): value for tid, value in amounts.items()}

    def __getitem__(self, address: str) -> Mapping[Asset, int]:
        node = self.graph.ids.get(address)
        amounts = None if node is None else self.by_node.get(node)
        if amounts is None:
            raise KeyError(address)
        return self._assets(amounts)

    def __iter__(self) -> Iterator[str]:
        names = self.graph.addresses
        return (names[node] for node in self.by_node)

    def __len__(self) -> int:
        return len(self.by_node)


# --- the value-aware walk -------------------------------------------------------------------------------------

VALUE_REASONS = (*REASONS, "dust")
_U64 = (1 << 64) - 1
_U128 = (1 << 128) - 1
_MODELS = {TaintModel.HAIRCUT: 0, TaintModel.POISON: 1, TaintModel.FIFO: 2}
_VALUE_COLUMNS: WeakKeyDictionary[TransferGraph, dict[tuple[Any, ...], tuple[Any, ...]]] = WeakKeyDictionary()


def value_columns(graph: TransferGraph, params: TraceParams) -> tuple[Any, ...]:
    """The arrays `_walk.value_walk` reads (cached per graph, direction, minimum and floors in units): the adjacency
    both ways (the trace direction first), the far and near end of every edge, time, value, token, source, tx hash
    (32 bytes), kind and the rank of each kind in (kind, position) order (ties in time are broken by tx hash, kind,
    position, as the Python ledger orders its events); then per token (index 0: native) the decimals of its weight
    (-1: not handled), the raw `min_value` and the raw dust floor in units (and whether there is one)."""
    outgoing = params.direction is Direction.OUT
    key = (
        outgoing,
        params.min_value,
        params.dust_units,
        len(graph.src),
        len(graph.tokens),
        graph.meta_changes,
        graph.indexed_edges,
        len(graph.kinds),
    )
    per_graph = _VALUE_COLUMNS.setdefault(graph, {})
    cached = per_graph.get(key)
    if cached is not None:
        return cached
    n_tokens = len(graph.tokens)
    decimals = [native_decimals(graph.chain)] + [graph.token_meta[tid][0] or 0 for tid in range(n_tokens)]
    floors = dict(params.dust_units)
    minimum = array("Q", bytes(8 * (n_tokens + 1)))
    minimum_hi = array("Q", bytes(8 * (n_tokens + 1)))
    floor_lo = array("Q", bytes(8 * (n_tokens + 1)))
    floor_hi = array("Q", bytes(8 * (n_tokens + 1)))
    floor_has = bytearray(n_tokens + 1)
    for i in range(n_tokens + 1):
        scale = decimals[i]
        if params.min_value is not None:
            raw = min(max(0, int(params.min_value.scaleb(scale))), _U128)
            minimum[i], minimum_hi[i] = raw & _U64, raw >> 64
        floor = floors.get(asset_key(None if i == 0 else graph.tokens[i - 1]))
        if floor is not None:
            raw = min(max(0, int(floor.scaleb(scale))), _U128)
            floor_lo[i], floor_hi[i], floor_has[i] = raw & _U64, raw >> 64, 1
    ranks = sorted(range(len(graph.kinds)), key=lambda k: (graph.kinds[k][0].value, graph.kinds[k][1]))
    kind_rank = array("i", bytes(4 * len(ranks)))
    for rank, k in enumerate(ranks):
        kind_rank[k] = rank
    out_side = (graph.out_off, graph.out_edge, graph.out_ts)
    in_side = (graph.in_off, graph.in_edge, graph.in_ts)
    columns = (
        *(out_side + in_side if outgoing else in_side + out_side),
        graph.dst if outgoing else graph.src,
        graph.src if outgoing else graph.dst,
        graph.ts,
        graph.value_lo,
        graph.value_hi,
        graph.token,
        graph.source,
        graph.tx,
        graph.kind,
        kind_rank,
        array("i", [d if d <= 19 else -1 for d in decimals]),
        minimum,
        minimum_hi,
        floor_lo,
        floor_hi,
        floor_has,
    )
    if any(k[3:] != key[3:] for k in per_graph) or len(per_graph) >= 8:  # the graph changed, or too many kept
        per_graph.clear()
    per_graph[key] = columns
    return columns


def _ratio(value: Decimal | Fraction) -> tuple[int, int]:
    f = Fraction(value)
    return f.numerator, f.denominator


def _raw_at_least(usd: Decimal | None, per_raw: Fraction) -> int:
    """The smallest raw amount worth at least `usd` at `per_raw` USD per raw unit (0 without a minimum)."""
    if usd is None or usd <= 0:
        return 0
    if per_raw <= 0:
        return _U128
    need = Fraction(usd) / per_raw
    return min(_U128, -(-need.numerator // need.denominator))


def compiled_value_trace(
    graph: TransferGraph,
    source_name: str,
    labels: LabelLookup,
    roots: Sequence[str],
    chain: str,
    params: TraceParams,
    prices: UsdPrices,
    started: float,
    revisits: int,
) -> Trace | None:
    """The value-aware trace by the compiled walk (`_walk.value_walk`), or None when it cannot run here (the caller
    runs the Python walk): the extension is not built, transfers were appended since the last `compact`, some
    transaction ids are not 32-byte hashes (ties and swaps compare them), a root is not in the graph, or the walk
    declined (values of 2**127 or more, tokens with more than 19 decimals, more than 32 assets at one address, a
    sum beyond 128 bits, shares with denominators of 2**64 or more).

    USD reaches the walk as raw thresholds per (token, day): the smallest raw amount worth the dust floor, three
    times it and the USD minimum at that day's price of one raw unit (`prices.usd(…, raw=1)`; prices are linear in
    the amount), so the comparisons stay exact integers. Prices that can tell an asset has no price on any day
    (`never_priced(asset)`, as `PegPrices` and `TransferPrices` do) are asked once per asset, not once per day."""
    names = graph.addresses
    root_ids = [graph.ids.get(root) for root in roots]
    if _walk is None or graph.pending or graph.tx_other or any(r is None or r >= len(names) for r in root_ids):
        return None
    rule = (
        *_ratio(params.follow_share),
        *_ratio(params.crumb_share),
        *_ratio(PURITY),
        *_ratio(DILUTED),
        CRUMB_CAP,
        PASS_WINDOW,
        *_ratio(PASS_FEE),
        int(params.pass_through),
    )
    if any(part > _U64 for part in rule):
        return None
    outgoing = params.direction is Direction.OUT
    ids = graph.ids
    stops = params.stops
    node_labels: dict[int, tuple[Label, ...]] = {}
    marks: NodeMarks | None = None
    if isinstance(labels, LabelCache):
        marks = labels.node_marks(graph, chain, stops)
    else:
        for address, mine in labels.for_addresses(list(roots), chain).items():
            if mine:
                node_labels[ids[address]] = tuple(mine)

    def on_fresh(fresh: list[int]) -> list[int]:
        found = labels.for_addresses([names[n] for n in fresh], chain)
        terminal: list[int] = []
        for address, mine in found.items():
            if not mine:
                continue
            node = ids[address]
            node_labels[node] = tuple(mine)
            if any(label.active and label.category in stops for label in mine):
                terminal.append(node)
        return terminal

    tokens, meta, native = graph.tokens, graph.token_meta, native_decimals(graph.chain)
    dust_usd, min_usd = params.dust_usd, params.min_usd

    never = getattr(prices, "never_priced", None)  # optional: an asset with no price on any day

    def on_price(tid: int, day: int) -> tuple[int, ...] | bool | None:
        asset, decimals, symbol = (None, native, None) if tid < 0 else (tokens[tid], *meta[tid])
        if never is not None and never(asset):
            return False  # the walk stops asking about this asset
        usd = prices.usd(asset, decimals, symbol, day * DAY, 1)
        if usd is None:
            return None
        per_raw = Fraction(usd)
        floor = _raw_at_least(dust_usd, per_raw)
        cap = _raw_at_least(None if dust_usd is None else dust_usd * CRUMB_CAP, per_raw)
        least = _raw_at_least(min_usd, per_raw)
        return (floor & _U64, floor >> 64, cap & _U64, cap >> 64, least & _U64, least >> 64)

    def on_rank(amounts: dict[int, dict[int, int]], fanout: int) -> list[int]:
        ranked = rank_counterparties({names[party]: by_tid for party, by_tid in amounts.items()})
        return [ids[name] for name in ranked[:fanout]]

    token = params.token
    walk_params = (
        int(outgoing),
        params.hops,
        params.since,
        params.until,
        params.fanout,
        params.max_nodes,
        params.scan_limit,
        params.hub_degree,
        int(token is not None),
        -1 if token in (None, "native") else graph.token_ids.get(token or "", -3),
        _MODELS[params.model],
        int(params.min_value is not None),
        int(dust_usd is not None),
        int(min_usd is not None),
        revisits,
        rule,
    )
    columns = value_columns(graph, params)
    root_array = array("i", [r for r in root_ids if r is not None])
    if marks is None:
        raw = _walk.value_walk(columns, names, root_array, walk_params, on_fresh, on_price, on_rank)
    else:
        raw = _walk.value_walk(columns, names, root_array, walk_params, on_fresh, on_price, on_rank, marks.marks)
    if raw is None:
        return None
    root_id = root_array[0]
    parts = ValueParts(graph, source_name, params, root_id, raw, node_labels, chain, prices, marks)
    trace = Trace(
        roots[0], chain, params, None, None, None, None, None, None, time.perf_counter() - started, parts=parts
    )
    return trace.with_carried(_ByKey(parts.carried_by_key), _ByKey(parts.followed_by_key), _ByKey(parts.passing_by_key))


class ValueParts(GraphParts):
    """A value-aware trace held as the compiled walk left it: `GraphParts` and the traced value each followed edge
    carries, the dust summed per (token, day), the assets followed with no floor or no price for the minimum."""

    def __init__(
        self,
        graph: TransferGraph,
        source_name: str,
        params: TraceParams,
        root_id: int,
        raw: tuple[Any, ...],
        labels: dict[int, tuple[Label, ...]],
        chain: str,
        prices: UsdPrices,
        marks: NodeMarks | None = None,
    ) -> None:
        super().__init__(graph, source_name, params, root_id, raw[:12], labels, chain, marks)
        carried_lo, carried_hi, dust, dust_count, dust_priced, unfloored, no_price, carrying, why, passes = raw[12:]
        lows, highs = memoryview(carried_lo).cast("Q"), memoryview(carried_hi).cast("Q")
        self.carried: list[int] = [lo | (hi << 64) if hi else lo for lo, hi in zip(lows, highs, strict=True)]
        """Per followed edge (as `followed`), the traced value it carries."""
        self.prices = prices
        self.raw_dust: list[tuple[int, int, int]] = dust
        self.dust_count: int = dust_count
        self.dust_priced: int = dust_priced
        self.unfloored_ids: list[int] = unfloored
        self.no_price_ids: list[int] = no_price
        self.carrying: bytes = carrying
        """Per followed edge, 1 when it carries traced value one hop further from the root (near end at hop h-1,
        far end at hop h: what `walked_taint` counts; a cycle never counts the same funds twice)."""
        self.why: bytes = why
        """Per followed edge, the part of the follow rule it was followed by (`WHY`)."""
        self.passes: Sequence[int] = memoryview(passes).cast("i")
        """Per followed edge, the edge of the receipt it passes on (`PassThrough`), or -1."""
        self._into: dict[int, list[int]] | None = None
        self._keys: list[tuple[str, str, str]] | None = None

    def _asset(self, tid: int) -> Asset:
        return None if tid < 0 else self.graph.tokens[tid]

    def dust(self) -> Dust:
        """What was not followed, summed: each address's last expansion, USD at each (token, day)'s price."""
        graph = self.graph
        found = Dust(count=self.dust_count, priced=self.dust_priced)
        for tid, day, raw in self.raw_dust:
            asset = self._asset(tid)
            decimals, symbol = (native_decimals(graph.chain), None) if tid < 0 else graph.token_meta[tid]
            if day < 0:
                found.unpriced[asset] = found.unpriced.get(asset, 0) + raw
                if asset not in found.meta:
                    found.meta[asset] = (native_decimals(graph.chain), "native") if tid < 0 else graph.token_meta[tid]
                continue
            usd = self.prices.usd(asset, decimals, symbol, day * DAY, raw)
            found.usd += usd or 0
        return found

    def coverage(self) -> Coverage:
        params, names = self.params, self.graph.addresses
        counts = [0, 0, 0, 0, 0]
        dropped = [0, 0, 0, 0, 0]
        busy: list[str] = []
        for node, _hop, reason, _kept, gone in self.raw_cuts:
            counts[reason] += 1
            dropped[reason] += gone
            if reason == 2 and len(busy) < 3:
                busy.append(names[node])
        lines = cut_lines(
            params,
            fanout=(counts[0], dropped[0]),
            scan=(counts[1], dropped[1]),
            busy=(counts[2], busy),
            budget=counts[3],
        )
        stops, hops = self.stops, self.hops
        silent = sum(1 for i, stop in enumerate(stops) if stop == 5 and self.node_ids[i] != self.root_id)
        at_budget = sum(1 for i, stop in enumerate(stops) if stop == 3 and hops[i] == params.hops)
        wanted = params.stop_at & params.through
        through = []
        if wanted:
            # in the order reached, as the Python walk lists them
            found = sorted(i for node in self.labels if (i := self.position(node)) is not None and i > 0)
            passed = [self._node(i) for i in found]
            through = [n.address for n in passed if any(lb.active and lb.category in wanted for lb in n.labels)]
        value_cuts, value_gaps = value_lines(
            params,
            self.dust(),
            {self._asset(tid) for tid in self.unfloored_ids},
            through,
            unpriced_minimum={self._asset(tid) for tid in self.no_price_ids},
        )
        provenance = {self.graph.sources[s] for s in self.source_ids}
        return trace_coverage(
            self.chain,
            params,
            lines + value_cuts,
            gap_lines(silent, at_budget, params, []) + value_gaps,
            {self.source_name},
            provenance,
            len(self.followed),
        )

    def nodes(self) -> list[TraceNode]:
        nodes = [self._node(i) for i in range(len(self.node_ids))]
        root = self.graph.addresses[self.root_id]
        nodes.sort(key=lambda n: (n.hop, n.address != root, n.address))  # the root first, then other roots
        return nodes

    def cuts(self) -> list[Cut]:
        names = self.graph.addresses
        return [
            Cut(names[node], hop, VALUE_REASONS[reason], kept, dropped)
            for node, hop, reason, kept, dropped in self.raw_cuts
        ]

    def into(self) -> dict[int, list[int]]:
        """Per node id, the positions in `followed` of the edges that carry traced value into it (`carrying`)."""
        if self._into is None:
            far_of = self.graph.dst if self.outgoing else self.graph.src
            followed = self.followed
            into: dict[int, list[int]] = {}
            for k in compress(range(len(followed)), self.carrying):
                into.setdefault(far_of[followed[k]], []).append(k)
            self._into = into
        return self._into

    def _carrying(self, only: Collection[str] | None) -> Iterator[tuple[int, int]]:
        """(edge, amount) of the edges that carry traced value into the nodes of `only` (default all)."""
        into, followed, carried = self.into(), self.followed, self.carried
        if only is None:
            nodes: Iterable[int] = into
        else:
            ids = self.graph.ids
            nodes = dict.fromkeys(node for node in (ids.get(address) for address in only) if node in into)
        for node in nodes:
            for k in into[node]:
                yield followed[k], carried[k]

    def received(self, model: TaintModel, only: Collection[str] | None = None) -> Mapping[str, Mapping[Asset, int]]:
        if model is not self.params.model:
            return super().received(model, only)
        graph = self.graph
        far_of, token_of = (graph.dst if self.outgoing else graph.src), graph.token
        by_node: dict[int, dict[int, int]] = {}
        for edge, amount in self._carrying(only):
            mine = by_node.setdefault(far_of[edge], {})
            tid = token_of[edge]
            mine[tid] = mine.get(tid, 0) + amount
        return _ByAddress(graph, by_node)

    def received_by_day(
        self, model: TaintModel, only: Collection[str]
    ) -> list[tuple[str, Asset, int | None, int, int]]:
        if model is not self.params.model:
            return super().received_by_day(model, only)
        graph = self.graph
        far_of, token_of = (graph.dst if self.outgoing else graph.src), graph.token
        names, tokens, meta, ts = graph.addresses, graph.tokens, graph.token_meta, graph.ts
        found = []
        for edge, amount in self._carrying(only):
            tid = token_of[edge]
            token, decimals = (None, None) if tid < 0 else (tokens[tid], meta[tid][0])
            found.append((names[far_of[edge]], token, decimals, int(ts[edge]), amount))
        return found

    def edge_keys(self) -> list[tuple[str, str, str]]:
        """`TraceEdge.key` of each followed edge (as `followed`), computed once for the mappings below."""
        if self._keys is None:
            graph = self.graph
            kinds, kind_of, tx_hash = graph.kinds, graph.kind, graph.tx_hash
            self._keys = []
            for edge in self.followed:
                kind, position = kinds[kind_of[edge]]
                self._keys.append((tx_hash(edge), kind.value, position))
        return self._keys

    def carried_by_key(self) -> dict[tuple[str, str, str], int]:
        return dict(zip(self.edge_keys(), self.carried, strict=True))

    def passing_by_key(self) -> dict[tuple[str, str, str], str]:
        """The receipt's transaction of each followed edge that passes one on (few: keys computed for those only,
        what a risk report's paths read)."""
        graph = self.graph
        kinds, kind_of, tx_hash = graph.kinds, graph.kind, graph.tx_hash
        found = {}
        for edge, receipt in zip(self.followed, self.passes, strict=True):
            if receipt >= 0:
                kind, position = kinds[kind_of[edge]]
                found[(tx_hash(edge), kind.value, position)] = tx_hash(receipt)
        return found

    def followed_by_key(self) -> dict[tuple[str, str, str], Followed]:
        tx_hash = self.graph.tx_hash
        return {
            key: Followed(WHY[why], tx_hash(receipt)) if receipt >= 0 else PLAIN[why]
            for key, why, receipt in zip(self.edge_keys(), self.why, self.passes, strict=True)
        }


WHY = (FollowedBy.FLOOR, FollowedBy.SHARE, FollowedBy.TOGETHER, FollowedBy.NO_FLOOR)
"""`FollowedBy` by the compiled walk's code (`WHY_*` in `_walk.c`)."""
PLAIN = tuple(Followed(by) for by in WHY)
"""The same, for a transfer that passes no receipt on (one object each, shared)."""

V = TypeVar("V")


class _ByKey(Mapping[tuple[str, str, str], V], Generic[V]):
    """A value per followed edge by `TraceEdge.key` (the traced value it carries, why it was followed), built on
    first read."""

    def __init__(self, build: Callable[[], dict[tuple[str, str, str], V]]) -> None:
        self.build = build
        self._found: dict[tuple[str, str, str], V] | None = None

    @property
    def found(self) -> dict[tuple[str, str, str], V]:
        if self._found is None:
            self._found = self.build()
        return self._found

    def __getitem__(self, key: tuple[str, str, str]) -> V:
        return self.found[key]

    def __iter__(self) -> Iterator[tuple[str, str, str]]:
        return iter(self.found)

    def __len__(self) -> int:
        return len(self.found)
