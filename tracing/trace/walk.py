"""The walk: from one address forward (where the funds went) or backward (where they came from), hop by hop over a
`TransferSource`, following the money in time order, stopping at labelled services and capping fan-out.

`trace_funds` is the entry. Over the in-memory graph it runs the compiled walk (`tracing.trace.compiled`) when it
can, else the Python graph walk here (the reference the tests compare the compiled one with); over any other
source, the generic walk through `TransferSource.flows`. All give the same trace.

Time order: going forward, from an address first reached at time t only its transfers at or after t are followed
(the funds cannot leave before they arrive); going backward, only transfers into it at or before t.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from tracing.chain.prices import native_decimals
from tracing.chain.transfer import TransferKind
from tracing.labels import Label
from tracing.trace import compiled
from tracing.trace.coverage import cut_lines, gap_lines, trace_coverage, value_lines
from tracing.trace.flows import Asset, FlowRequest, History, HistoryRequest
from tracing.trace.graph import TransferGraph
from tracing.trace.model import (
    Cut,
    Stop,
    Trace,
    TraceEdge,
    TraceNode,
    edge_order,
    graph_edge,
    parents_of,
    weight_of,
    with_coverage,
)
from tracing.trace.params import Direction, TraceParams
from tracing.trace.sources import GraphSource, HistorySource, LabelLookup, TransferSource, gives_histories
from tracing.trace.value import Dust, Followed, PegPrices, UsdPrices, select_value
from tracing.trace.value_graph import GraphHistory, graph_history, select_value_graph


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


async def trace_funds(
    source: TransferSource,
    labels: LabelLookup,
    root: str,
    chain: str,
    params: TraceParams | None = None,
    prices: UsdPrices | None = None,
    *,
    with_roots: Sequence[str] = (),
) -> Trace:
    """Trace from `root` over `source`; see `TraceParams` for the knobs, `prices` for the dust floor in USD (by
    default stablecoins at their peg by contract address, nothing else). `with_roots`: more addresses whose funds
    are traced with the root's, as one (a case's several sources: each one's funds are not clean money at the
    others'); value-aware traces only, at hop 0 beside the root.

    Value-aware (the default), the walk follows the traced amount (`_trace_value`, over `HistorySource.histories`;
    over the in-memory graph, each address's ledger runs on the graph's edge ids: `tracing.trace.value_graph`).
    Following the graph, over the in-memory graph the walk runs on integer ids and builds only the result
    (`_trace_graph`); any other source goes through `TransferSource.flows`. Both give the same trace.
    """
    params = params or TraceParams()
    if params.value_aware and gives_histories(source) and isinstance(source, HistorySource):
        return await _trace_value(source, labels, root, chain, params, prices or PegPrices(chain), with_roots)
    if with_roots:
        raise ValueError("several roots need a value-aware trace over a source that gives histories")
    if params.value_aware:
        graph_walk = await trace_funds(source, labels, root, chain, replace(params, follow_value=False))
        gap = f"{source.name} gives no account histories: this trace followed the graph, not the traced value"
        return with_coverage(graph_walk, gaps=(*graph_walk.coverage.gaps, gap))
    if isinstance(source, GraphSource) and source.graph.chain == chain:
        return _trace_graph(source, labels, root, chain, params)
    started = time.perf_counter()
    outgoing = params.direction is Direction.OUT
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
            if any(label.active and label.category in params.stops for label in node.labels):
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
        if params.direction is Direction.OUT:
            since = reached_at if since is None else max(since, reached_at)
        else:
            until = reached_at if until is None else min(until, reached_at)
    return since, until


def _trace_graph(source: GraphSource, labels: LabelLookup, root: str, chain: str, params: TraceParams) -> Trace:
    """The walk over the in-memory graph: compiled when it can run (`tracing.trace.compiled`), else in Python."""
    started = time.perf_counter()
    if compiled.available():
        found = compiled.compiled_trace(source.graph, source.name, labels, root, chain, params, started)
        if found is not None:
            return found
    return trace_graph_python(source, labels, root, chain, params, started)


def trace_graph_python(
    source: GraphSource, labels: LabelLookup, root: str, chain: str, params: TraceParams, started: float
) -> Trace:
    """The same walk as `trace`, on the graph's arrays: node and edge ids until the result is built (the reference
    for the compiled walk)."""
    graph = source.graph
    outgoing = params.direction is Direction.OUT
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
                if any(label.active and label.category in params.stops for label in mine):
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
    decimals = native_decimals(graph.chain) if tid < 0 else (graph.token_meta[tid][0] or 0)
    return graph.value(edge) / 10**decimals


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
    value: tuple[list[str], list[str]] = ([], []),
) -> Trace:
    edges.sort(key=edge_order)
    nodes.sort(key=lambda n: (n.hop, n.address != root, n.address))  # the root first
    silent = sum(1 for n in nodes[1:] if n.stop is Stop.NO_DATA)
    at_budget = sum(1 for n in nodes if n.stop is Stop.HOP_BUDGET and n.hop == params.hops)
    coverage = trace_coverage(
        chain,
        params,
        describe_cuts(cuts, params) + value[0],
        gap_lines(silent, at_budget, params, errors, incomplete) + value[1],
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


# --- the value-aware walk ------------------------------------------------------------------------------------


REVISITS = 64
"""How many times the value walk expands an address again when more traced funds reach it later (see `_trace_value`)."""


async def _trace_value(
    source: HistorySource,
    labels: LabelLookup,
    root: str,
    chain: str,
    params: TraceParams,
    prices: UsdPrices,
    with_roots: Sequence[str] = (),
) -> Trace:
    """Hop by hop as the graph walk, but each expanded address's ledger decides which of its transfers carry
    enough of the traced funds to follow (`tracing.trace.value`), and an address is reached at the arrival of the
    traced funds. Traced funds that reach an address after it was expanded (by a longer path, or a sibling at the
    same hop) are not lost: the address is expanded again with them (up to `REVISITS` times), keeping its hop; what
    it then sends on is followed from there. Addresses are expanded nearest first."""
    started = time.perf_counter()
    roots = list(dict.fromkeys([root, *with_roots]))
    # over the in-memory graph, each address's ledger runs on edge ids (`tracing.trace.value_graph`), compiled when
    # it can (`tracing.trace.compiled.compiled_value_trace`: the same walk in C; this one is its reference)
    graph = source.graph if isinstance(source, GraphSource) and source.graph.chain == chain else None
    if graph is not None and compiled.available():
        fast = compiled.compiled_value_trace(
            graph, source.name, labels, roots, chain, params, prices, started, REVISITS
        )
        if fast is not None:
            return fast
    outgoing = params.direction is Direction.OUT
    query = params.query()
    stops = params.stops
    found_roots = labels.for_addresses(roots, chain)
    reached: dict[str, _Reached] = {a: _Reached(a, 0, labels=tuple(found_roots.get(a, ()))) for a in roots}
    arrivals: dict[str, dict[tuple[str, str, str], int]] = defaultdict(dict)
    name = source.name
    edge_arrivals: dict[str, dict[int, int]] = defaultdict(dict)
    edges: dict[tuple[str, str, str], TraceEdge] = {}
    carried: dict[tuple[str, str, str], int] = {}
    followed: dict[tuple[str, str, str], Followed] = {}
    totals: dict[str, Mapping[Asset, int]] = {}
    cuts: dict[tuple[str, str], Cut] = {}
    dust: dict[str, Dust] = {}
    unfloored: set[Asset] = set()
    no_price: set[Asset] = set()
    errors: list[str] = []
    incomplete: list[str] = []
    used: set[str] = set()
    expanded: dict[str, int] = {}
    pending: dict[int, list[str]] = {0: list(roots)}
    while pending:
        hop = min(pending)
        frontier = list(dict.fromkeys(pending.pop(hop)))
        frontier.sort(key=lambda a: (-reached[a].weight, a))
        fresh: list[str] = []
        start = 0
        while start < len(frontier):
            if len(reached) >= params.max_nodes:
                for address in frontier[start:]:
                    if address not in expanded:
                        reached[address].stop = Stop.NODE_BUDGET
                        cuts[(address, "node budget")] = Cut(address, hop, "node budget")
                break
            batch = frontier[start : start + _batch_size(params, len(reached))]
            start += len(batch)
            requests = [_history_request(reached[a], params, reached[a].hop == 0) for a in batch]
            if graph is not None:
                founds: Sequence[History | GraphHistory] = [graph_history(graph, r, query, name) for r in requests]
            else:
                founds = await source.histories(chain, query, requests)
            for found in founds:
                address = found.address
                node = reached[address]
                first = address not in expanded
                expanded[address] = expanded.get(address, 0) + 1
                node.degree, node.source = found.degree, found.source
                if found.source:
                    used.add(found.source)
                if found.incomplete and first:
                    incomplete.append(f"{address} ({found.source or 'source'}: {found.incomplete})")
                if found.error:
                    node.stop = Stop.ERROR
                    if first:
                        errors.append(f"{address}: {found.error}")
                    continue
                if found.hub:
                    node.stop = Stop.BUSY
                    cuts[(address, "busy")] = Cut(address, hop, "busy", 0, found.degree)
                    continue
                if not found.degree:
                    node.stop = Stop.NO_DATA
                    continue
                node.stop = Stop.EXPANDED
                totals[address] = found.totals
                if isinstance(found, GraphHistory):
                    assert graph is not None
                    picked = select_value_graph(
                        graph, found, edge_arrivals[address], node.hop == 0, params, prices, hop + 1
                    )
                else:
                    picked = select_value(
                        found.sends, found.receives, found.opening, arrivals[address], node.hop == 0, params, prices
                    )
                dust[address] = picked.dust  # the last expansion's account replaces the earlier ones
                unfloored |= picked.unpriced_unfloored
                no_price |= picked.unpriced_minimum
                for reason, kept, dropped in (
                    ("dust", len(picked.chosen), picked.dust.count),
                    ("fan-out", picked.kept, picked.counterparties - picked.kept),
                    ("scan limit", found.scanned, found.unscanned),
                ):
                    if dropped:
                        cuts[(address, reason)] = Cut(address, hop, reason, kept, dropped)
                    else:
                        cuts.pop((address, reason), None)
                for step in picked.chosen:
                    t = step.transfer
                    key = (t.tx_hash, t.kind.value, t.position)
                    far = t.to_addr if outgoing else t.from_addr
                    if key not in edges:
                        edges[key] = t if isinstance(t, TraceEdge) else TraceEdge.of(t, hop + 1)
                    elif step.carried <= carried[key]:
                        continue
                    carried[key] = step.carried
                    followed[key] = step.followed_as()
                    seen = reached.get(far)
                    if seen is None:
                        seen = reached[far] = _Reached(far, hop + 1, reached_at=t.timestamp)
                        fresh.append(far)
                    elif seen.reached_at is not None and seen.hop:
                        seen.reached_at = (
                            min(seen.reached_at, t.timestamp) if outgoing else max(seen.reached_at, t.timestamp)
                        )
                    if not seen.hop:  # a root: traced through and through
                        continue
                    if graph is not None:
                        edge_arrivals[far][step.edge] = step.carried
                    else:
                        arrivals[far][key] = step.carried
                    native = 18 if t.decimals is None else t.decimals
                    weight = step.carried / 10 ** (native if t.token is None else (t.decimals or 0))  # `weight_of`
                    if seen.hop == hop + 1 and weight > seen.weight:
                        seen.weight = weight
                    if far in expanded and expanded[far] <= REVISITS and not seen.terminal:
                        pending.setdefault(seen.hop, []).append(far)  # more traced funds: expand it again
        found_labels = labels.for_addresses(fresh, chain) if fresh else {}
        for address in fresh:
            node = reached[address]
            node.labels = tuple(found_labels.get(address, ()))
            if any(label.active and label.category in stops for label in node.labels):
                node.terminal, node.stop = True, Stop.SERVICE
            elif node.hop < params.hops:
                pending.setdefault(node.hop, []).append(address)
    nodes = [
        TraceNode(n.address, n.hop, n.labels, n.terminal, n.stop, n.reached_at, n.degree, n.source)
        for n in reached.values()
    ]
    total = Dust()
    for found_dust in dust.values():
        total.merge(found_dust)
    trace = _assemble(
        root,
        chain,
        params,
        nodes,
        list(edges.values()),
        totals,
        list(cuts.values()),
        errors,
        used,
        time.perf_counter() - started,
        incomplete,
        value_lines(
            params, total, unfloored, [n.address for n in _passed_through(nodes, params)], unpriced_minimum=no_price
        ),
    )
    return trace.with_carried(carried, followed)


def _history_request(node: _Reached, params: TraceParams, root: bool) -> HistoryRequest:
    since, until = _window(params, node.reached_at)
    return HistoryRequest(node.address, since, until, root=root)


def _passed_through(nodes: Sequence[TraceNode], params: TraceParams) -> list[TraceNode]:
    """Reached addresses labelled as a kind of stop the trace went on past (`TraceParams.through`)."""
    wanted = params.stop_at & params.through
    if not wanted:
        return []
    return [n for n in nodes[1:] if any(label.active and label.category in wanted for label in n.labels)]
