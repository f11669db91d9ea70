"""The compiled trace walk over the in-memory graph (`tracing.trace._walk`, a C extension built by `pip install`), and
the compact result it leaves: node and edge ids in arrays, materialised as `TraceNode`s and `TraceEdge`s only when
a caller reads them.

The walk is the one of `tracing.trace.walk.trace_graph_python` (the reference, used when the extension is not built,
when `CHAINSLEUTH_PURE_WALK` is set, for graphs with transfers appended since the last `compact`, and when the
extension declines: values of 2**127 or more, tokens with more than 19 decimals). Both give the same trace;
`tests/test_trace_walk.py` checks it on random graphs.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

from tracing.labels import Label
from tracing.trace.coverage import Coverage, cut_lines, gap_lines, trace_coverage
from tracing.trace.flows import Asset
from tracing.trace.graph import TransferGraph
from tracing.trace.label_cache import LabelCache, NodeMarks
from tracing.trace.model import Cut, Stop, Trace, TraceEdge, TraceNode, edge_order, graph_edge, weight_of
from tracing.trace.params import Direction, TraceParams
from tracing.trace.sources import LabelLookup
from tracing.trace.taint import TaintModel, carried_amounts, received_amounts

try:
    from tracing.trace import _walk  # type: ignore[attr-defined]
except ImportError:  # not built (no compiler at install time): the Python walk runs instead
    _walk = None

STOPS = (Stop.EXPANDED, Stop.SERVICE, Stop.BUSY, Stop.HOP_BUDGET, Stop.NODE_BUDGET, Stop.NO_DATA)
REASONS = ("fan-out", "scan limit", "busy", "node budget")
NO_TIME = -(2**63)


def available() -> bool:
    """Whether the compiled walk is built and not switched off (`CHAINSLEUTH_PURE_WALK=1`)."""
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
