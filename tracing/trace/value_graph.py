"""The value walk's per-address work on the in-memory graph's arrays: an address's history as edge ids
(`graph_history`) and its ledger run over them (`select_value_graph`), the same selection as `tracing.trace.value`'s
`history_of` + `select_value` (the reference, which every other source runs), without building a `Transfer` per
transfer or a `Fraction` per share: exact integer arithmetic, ties in time broken by the same keys, and only the
followed transfers materialised (as `TraceEdge`s). The compiled value walk
(`tracing.trace.compiled.compiled_value_trace`) runs this selection in C; this module is its reference and fallback.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from itertools import accumulate
from typing import Any, cast
from weakref import WeakKeyDictionary

from tracing.chain.prices import native_decimals
from tracing.trace.flows import Asset, FlowQuery, HistoryRequest, rank_counterparties, scan_slice
from tracing.trace.graph import TransferGraph
from tracing.trace.model import TraceEdge, graph_edge
from tracing.trace.params import TraceParams
from tracing.trace.taint import TaintModel
from tracing.trace.value import (
    CRUMB_CAP,
    Dust,
    FollowedBy,
    PassThrough,
    Step,
    UsdPrices,
    ValueSelection,
    Verdict,
    asset_key,
    followed_by,
    judge,
    shortfall,
    spread_followed,
)


@dataclass
class GraphHistory:
    """`History` by edge ids: `sends` (the trace direction, within the window, after the scan limit and token filter)
    and `receives` (the other way over the same span) in no particular order (the ledger orders its events), the
    opening balance per token id (-1: native)."""

    address: str
    node: int = -1
    sends: list[int] = field(default_factory=list)
    receives: list[int] = field(default_factory=list)
    opening: dict[int, int] = field(default_factory=dict)
    degree: int = 0
    in_window: int = 0
    scanned: int = 0
    totals: dict[Asset, int] = field(default_factory=dict)
    hub: bool = False
    source: str = ""
    error: str = ""
    incomplete: str = ""

    @property
    def unscanned(self) -> int:
        return self.in_window - self.scanned


def graph_history(graph: TransferGraph, request: HistoryRequest, query: FlowQuery, source: str) -> GraphHistory:
    """`TransferGraph.history` by edge ids (see there): the same transfers, degree, window, scan and opening."""
    node = graph.ids.get(request.address)
    if node is None:
        return GraphHistory(request.address, source=source)
    outgoing = query.direction == "out"
    off, extra = (graph.out_off, graph.extra_out) if outgoing else (graph.in_off, graph.extra_in)
    degree = (off[node + 1] - off[node] if node + 1 < len(off) else 0) + len(extra.get(node, ()))
    if degree > query.hub_degree and not request.root:
        return GraphHistory(request.address, node, degree=degree, hub=True, source=source)
    since, until = request.since, request.until
    window = graph._window(node, outgoing, since, until)
    scanned = scan_slice(window, outgoing, query.scan_limit)
    far, other = (graph.dst, graph.src) if outgoing else (graph.src, graph.dst)
    lo_of, hi_of, token_of, ts_of = graph.value_lo, graph.value_hi, graph.token, graph.ts
    token_filter = query.token
    if token_filter is None:
        sends = [e for e in scanned if far[e] != node and (lo_of[e] or hi_of[e])]
    else:
        wanted = -1 if token_filter == "native" else graph.token_ids.get(token_filter, -3)
        sends = [e for e in scanned if far[e] != node and (lo_of[e] or hi_of[e]) and token_of[e] == wanted]
    by_tid: dict[int, int] = {}
    tids = set(map(token_of.__getitem__, sends))
    if len(tids) == 1 and not any(map(hi_of.__getitem__, sends)):  # one asset, 64-bit values: summed in C
        by_tid[tids.pop()] = sum(map(lo_of.__getitem__, sends))
    else:
        for e in sends:
            tid = token_of[e]
            by_tid[tid] = by_tid.get(tid, 0) + (graph.value(e) if hi_of[e] else lo_of[e])
    receives: list[int] = []
    opening: dict[int, int] = {}
    if sends and not request.root:  # the root holds nothing but traced funds: no ledger
        first, last = ts_of[sends[0]], ts_of[sends[-1]]  # the window is in time order
        start = since if outgoing else until
        lo = since if outgoing else first
        hi = last if outgoing else until
        receives = [e for e in graph._window(node, not outgoing, lo, hi) if other[e] != node and (lo_of[e] or hi_of[e])]
        if start is not None:
            for way, sign in ((not outgoing, 1), (outgoing, -1)):
                for tid, value in _sum_before(graph, node, way, outgoing, start).items():
                    opening[tid] = opening.get(tid, 0) + sign * value
    tokens = graph.tokens
    return GraphHistory(
        request.address,
        node,
        sends,
        receives,
        {tid: value for tid, value in opening.items() if value > 0},
        degree=degree,
        in_window=len(window),
        scanned=len(scanned),
        totals={(None if tid < 0 else tokens[tid]): value for tid, value in by_tid.items()},
        source=source,
    )


_PREFIXES: WeakKeyDictionary[TransferGraph, _Prefixes] = WeakKeyDictionary()
_PREFIX_ENTRIES = 2_000_000
"""Running sums kept per graph, in entries (about 45 bytes each): past that, the cache starts over."""


@dataclass
class _Prefixes:
    stamp: tuple[int, int]
    sums: dict[tuple[int, bool], tuple[int, list[int]] | None] = field(default_factory=dict)
    entries: int = 0


def _sum_before(graph: TransferGraph, node: int, way: bool, forward: bool, start: int) -> dict[int, int]:
    """Per token id, the value of `node`'s transfers in direction `way` (True: out) before `start` in the trace's
    time (forward: earlier than it; backward: later), self-transfers aside: an address's own history before the
    traced funds reached it. Read from running sums of its adjacency list (one token, no self-transfer: the common
    case), computed on first use and kept with the graph; else summed edge by edge."""
    off, edges, stamps, extra = (
        (graph.out_off, graph.out_edge, graph.out_ts, graph.extra_out)
        if way
        else (graph.in_off, graph.in_edge, graph.in_ts, graph.extra_in)
    )
    far = graph.dst if way else graph.src
    token_of, lo_of, hi_of, ts_of = graph.token, graph.value_lo, graph.value_hi, graph.ts
    found: dict[int, int] = {}
    if node + 1 < len(off):
        lo, hi = off[node], off[node + 1]
        if forward:
            a, b = lo, bisect_right(stamps, start - 1, lo, hi)
        else:
            a, b = bisect_left(stamps, start + 1, lo, hi), hi
        if a < b:
            prefix = _prefix(graph, node, way, lo, hi)
            if prefix is not None:
                tid, running = prefix
                found[tid] = running[b - lo] - running[a - lo]
            else:
                for e in edges[a:b]:
                    if far[e] != node:
                        tid = token_of[e]
                        found[tid] = found.get(tid, 0) + (graph.value(e) if hi_of[e] else lo_of[e])
    for e in extra.get(node, ()):
        if far[e] != node and (ts_of[e] < start if forward else ts_of[e] > start):
            tid = token_of[e]
            found[tid] = found.get(tid, 0) + (graph.value(e) if hi_of[e] else lo_of[e])
    return found


def _prefix(graph: TransferGraph, node: int, way: bool, lo: int, hi: int) -> tuple[int, list[int]] | None:
    stamp = (len(graph.src), graph.indexed_edges)
    cached = _PREFIXES.get(graph)
    if cached is None or cached.stamp != stamp or cached.entries > _PREFIX_ENTRIES:
        cached = _PREFIXES[graph] = _Prefixes(stamp)
    key = (node, way)
    if key in cached.sums:
        return cached.sums[key]
    edges = (graph.out_edge if way else graph.in_edge)[lo:hi]
    far, token_of, lo_of, hi_of = (graph.dst if way else graph.src), graph.token, graph.value_lo, graph.value_hi
    tids = set(map(token_of.__getitem__, edges))
    found: tuple[int, list[int]] | None = None
    if len(tids) == 1 and node not in set(map(far.__getitem__, edges)):
        if any(map(hi_of.__getitem__, edges)):
            values = [graph.value(e) for e in edges]
        else:
            values = list(map(lo_of.__getitem__, edges))
        found = (tids.pop(), [0, *accumulate(values)])
        cached.entries += len(values) + 1
    cached.sums[key] = found
    return found


def _value(graph: TransferGraph, e: int) -> int:
    hi = graph.value_hi[e]
    return graph.value(e) if hi else graph.value_lo[e]


def _full_key(graph: TransferGraph) -> Callable[[int], tuple[str, str, str]]:
    kinds, kind_of = graph.kinds, graph.kind

    def key(e: int) -> tuple[str, str, str]:
        kind, position = kinds[kind_of[e]]
        return (graph.tx_hash(e), kind.value, position)

    return key


def select_value_graph(
    graph: TransferGraph,
    found: GraphHistory,
    arrivals: Mapping[int, int],
    root: bool,
    params: TraceParams,
    prices: UsdPrices,
    hop: int,
) -> ValueSelection:
    """`select_value` over edge ids (`arrivals`: the traced value each followed transfer into the address carries,
    by edge id); the chosen steps carry `TraceEdge`s at `hop`."""
    outgoing = params.direction.value == "out"
    model = params.model
    poison, fifo = model is TaintModel.POISON, model is TaintModel.FIFO
    ts_of, token_of = graph.ts, graph.token
    sends, receives = found.sends, found.receives
    # swaps: a transaction where it sends one asset and receives another (none when one asset moves both ways)
    swaps: dict[str, set[int]] = {}
    moved = set(map(token_of.__getitem__, sends))
    moved.update(map(token_of.__getitem__, receives))
    if len(moved) > 1:
        sent: dict[str, set[int]] = {}
        for e in sends:
            sent.setdefault(graph.tx_hash(e), set()).add(token_of[e])
        for e in receives:
            tx = graph.tx_hash(e)
            assets = sent.get(tx)
            if assets and token_of[e] not in assets:
                swaps[tx] = assets
    swap_edges = (
        {e for e in receives if graph.tx_hash(e) in swaps} | {e for e in sends if graph.tx_hash(e) in swaps}
        if swaps
        else set()
    )
    # events in time order (backward: reversed), arrivals before departures at the same time but a swap's
    # proceeds; ties by (tx hash, kind, position), as `select_value` orders them
    sign = 1 if outgoing else -1
    if swap_edges:
        events = [(sign * ts_of[e], 2 if e in swap_edges else 0, e) for e in receives]
    else:
        events = [(sign * ts_of[e], 0, e) for e in receives]
    events += [(sign * ts_of[e], 1, e) for e in sends]
    events.sort()  # ties in (time, phase) are put in order by their key next
    _break_ties(events, _full_key(graph))

    traced: dict[int, int] = {}
    clean: dict[int, int] = {tid: max(0, v) for tid, v in found.opening.items()}
    lo_of, hi_of = graph.value_lo, graph.value_hi
    # money its transfers need that its history does not show: there from the start, clean (haircut; FIFO keeps the
    # order it knows and takes such money when it is needed, poison does not count it)
    if not root and model is TaintModel.HAIRCUT:
        signed = (-1 if phase == 1 else 1 for _, phase, _ in events)
        values = (graph.value(e) if hi_of[e] else lo_of[e] for _, _, e in events)
        moves = ((token_of[e], sign * value) for (_, _, e), sign, value in zip(events, signed, values, strict=True))
        for tid, lacking in shortfall(clean, moves).items():
            clean[tid] = clean.get(tid, 0) + lacking
    lots: dict[int, list[list[int]]] = {}
    heads: dict[int, int] = {}
    if fifo:
        for tid, v in clean.items():
            if v:
                lots[tid] = [[v, 0]]
                heads[tid] = 0
    last: dict[int, tuple[int, int]] = {}
    received: dict[int, int] = {}
    if root:
        for e in sends:
            tid = token_of[e]
            received[tid] = received.get(tid, 0) + _value(graph, e)
    traced_assets = {token_of[e] for e in receives if e in arrivals}
    converted = not root and bool(traced_assets) and not traced_assets & {token_of[e] for e in sends}
    swap_share: dict[str, tuple[int, int]] = {}
    steps: list[tuple[int, int, bool, int]] = []  # (edge, traced value carried, into a swap, receipt passed on or -1)
    passing = PassThrough(outgoing) if not root and model is TaintModel.HAIRCUT and params.pass_through else None
    for _, phase, e in events:
        tid = token_of[e]
        value = graph.value(e) if hi_of[e] else lo_of[e]
        if phase != 1:
            arrived = arrivals.get(e, 0)
            if phase == 2:
                num, den = swap_share.get(graph.tx_hash(e), (0, 1))
                arrived = max(arrived, value * num // den)
            got = min(arrived, value)
            if passing is not None and phase == 0:
                passing.receive(tid, value, ts_of[e], got, e)
            traced[tid] = traced.get(tid, 0) + got
            clean[tid] = clean.get(tid, 0) + value - got
            if fifo:
                lots.setdefault(tid, []).append([value, got])
                heads.setdefault(tid, 0)
            if arrived:
                received[tid] = received.get(tid, 0) + arrived
            continue
        passed = None
        if passing is not None and e not in swap_edges:
            passed = passing.match(tid, value, ts_of[e])
        if root:
            carried = value
        elif passed is not None:  # a receipt passed on (`PassThrough`): it carries the receipt's traced value
            t_held = traced.get(tid, 0)
            carried = min(value, passed.traced, t_held)
            traced[tid] = t_held - carried
            clean[tid] = max(0, clean.get(tid, 0) - (value - carried))
        else:
            t_held, c_held = traced.get(tid, 0), clean.get(tid, 0)
            if poison:
                carried = value if t_held else 0
                clean[tid] = max(0, c_held - value)
            else:
                held = t_held + c_held
                if held and (held >= value or tid not in last):
                    last[tid] = (t_held, held)
                if fifo:
                    carried, left = 0, value
                    queue = lots.get(tid)
                    if queue is not None:
                        head = heads[tid]
                        while left and head < len(queue):
                            lot = queue[head]
                            if lot[0] <= left:
                                carried += lot[1]
                                left -= lot[0]
                                head += 1
                            else:
                                part = lot[1] * left // lot[0]
                                carried += part
                                lot[0] -= left
                                lot[1] -= part
                                left = 0
                        heads[tid] = head
                    if left:
                        num, den = last.get(tid, (0, 1))
                        carried += left * num // den
                    carried = min(value, t_held, carried)
                elif value <= held:
                    carried = value * t_held // held
                else:
                    carried = t_held  # traced funds are conserved: an overdraft carries no more than it holds
                traced[tid] = max(0, t_held - carried)
                clean[tid] = max(0, c_held - (value - carried))
        if converted and not carried and tid not in traced_assets:
            carried = int(value * _share(traced, clean, traced_assets, poison))
        if e in swap_edges and tid in swaps[graph.tx_hash(e)]:
            tx = graph.tx_hash(e)
            num, den = swap_share.get(tx, (0, 1))
            if carried * den > num * value:
                swap_share[tx] = (carried, value)
            steps.append((e, carried, True, -1))
            continue
        steps.append((e, carried, False, -1 if passed is None else cast(int, passed.receipt)))
    return _follow(graph, steps, received, params, prices, outgoing, hop, root)


def _share(traced: Mapping[int, int], clean: Mapping[int, int], assets: set[int], poison: bool) -> Fraction:
    best = Fraction(0)
    for tid in assets:
        t, c = traced.get(tid, 0), clean.get(tid, 0)
        if t:
            best = max(best, Fraction(1) if poison else Fraction(t, t + c))
    return best


def _break_ties(events: list[tuple[int, int, int]], key: Callable[[int], tuple[str, str, str]]) -> None:
    """Order runs of events equal in (time, phase) by the transfer's key, in place."""
    n = len(events)
    if len({(ev[0], ev[1]) for ev in events}) == n:  # the common case: no ties
        return
    i = 0
    while i < n - 1:
        if events[i][0] != events[i + 1][0] or events[i][1] != events[i + 1][1]:
            i += 1
            continue
        j = i + 1
        while j < n and events[j][0] == events[i][0] and events[j][1] == events[i][1]:
            j += 1
        events[i:j] = sorted(events[i:j], key=lambda ev: key(ev[2]))
        i = j


def _follow(
    graph: TransferGraph,
    steps: list[tuple[int, int, bool, int]],
    received: Mapping[int, int],
    params: TraceParams,
    prices: UsdPrices,
    outgoing: bool,
    hop: int,
    root: bool,
) -> ValueSelection:
    share = Fraction(params.follow_share)
    crumb = Fraction(params.crumb_share)
    floors = dict(params.dust_units)
    dust = Dust()
    unfloored: set[Asset] = set()
    no_price: set[Asset] = set()
    passing: list[int] = []
    small: list[tuple[int, Decimal | None]] = []
    token_of, ts_of, lo_of, hi_of = graph.token, graph.ts, graph.value_lo, graph.value_hi
    tokens, meta = graph.tokens, graph.token_meta
    min_raw: dict[int, int] = {}
    floor_raw: dict[int, int | None] = {}
    by: dict[int, FollowedBy] = {}
    for i, (e, carried, swap, _) in enumerate(steps):
        if swap or carried <= 0:
            continue
        tid = token_of[e]
        value = graph.value(e) if hi_of[e] else lo_of[e]
        asset, decimals, symbol = (None, native_decimals(graph.chain), None) if tid < 0 else (tokens[tid], *meta[tid])
        if params.min_value is not None:
            limit = min_raw.get(tid)
            if limit is None:
                limit = min_raw[tid] = int(params.min_value.scaleb(decimals or 0))
            if value < limit:
                continue
        if params.min_usd is not None:
            whole = prices.usd(asset, decimals, symbol, ts_of[e], value)
            if whole is None:
                no_price.add(asset)
            elif whole < params.min_usd:
                continue
        usd = None
        if params.dust_usd is not None:
            usd = prices.usd(asset, decimals, symbol, ts_of[e], carried)
        total = received.get(tid, 0)
        floored = True
        if usd is not None and params.dust_usd is not None:
            over_floor, over_cap = usd >= params.dust_usd, usd >= params.dust_usd * CRUMB_CAP
        else:
            if tid not in floor_raw:
                floor = floors.get(asset_key(asset))
                floor_raw[tid] = None if floor is None else int(floor.scaleb(decimals or 0))
            raw_floor = floor_raw[tid]
            if raw_floor is None:
                over_floor = over_cap = True
                floored = False
                unfloored.add(asset)
            else:
                over_floor, over_cap = carried >= raw_floor, carried >= raw_floor * CRUMB_CAP
        verdict = judge(carried, value, total, over_floor, over_cap, root, share, crumb)
        if verdict is Verdict.FOLLOW or verdict is Verdict.SHARE:
            by[i] = followed_by(verdict, floored)
            passing.append(i)
        elif verdict is Verdict.SMALL:
            small.append((i, usd))
        else:
            _dust(dust, graph, e, carried, usd)
    spread: dict[int, int] = {}
    for i, _ in small:
        tid = token_of[steps[i][0]]
        spread[tid] = spread.get(tid, 0) + steps[i][1]
    for i, usd in small:
        e, carried, _, _ = steps[i]
        if spread_followed(spread[token_of[e]], received.get(token_of[e], 0), share):
            by[i] = FollowedBy.TOGETHER
            passing.append(i)
        else:
            _dust(dust, graph, e, carried, usd)
    passing.sort()
    far = graph.dst if outgoing else graph.src
    amounts: dict[int, dict[int, int]] = {}
    for i in passing:
        e, carried, _, _ = steps[i]
        mine = amounts.setdefault(far[e], {})
        mine[token_of[e]] = mine.get(token_of[e], 0) + carried
    if len(amounts) > params.fanout:
        names = graph.addresses
        ranked = rank_counterparties({names[p]: by_tid for p, by_tid in amounts.items()})
        ids = graph.ids
        keep = {ids[name] for name in ranked[: params.fanout]}
    else:
        keep = set(amounts)
    chosen = [
        Step(
            _as_transfer(graph_edge(graph, e, hop)),
            carried,
            True,
            edge=e,
            by=by[i],
            passes_on=None if receipt < 0 else graph.tx_hash(receipt),
        )
        for i in passing
        for e, carried, _, receipt in (steps[i],)
        if far[e] in keep
    ]
    return ValueSelection(chosen, dust, len(amounts), len(keep), unfloored, no_price)


def _as_transfer(edge: TraceEdge) -> Any:
    """A `TraceEdge` stands in for the `Transfer` of a step: it has every field the walk reads."""
    return edge


def _dust(dust: Dust, graph: TransferGraph, e: int, carried: int, usd: Decimal | None) -> None:
    dust.count += 1
    if usd is None:
        tid = graph.token[e]
        asset = None if tid < 0 else graph.tokens[tid]
        dust.unpriced[asset] = dust.unpriced.get(asset, 0) + carried
        if asset not in dust.meta:
            decimals, symbol = (native_decimals(graph.chain), "native") if tid < 0 else graph.token_meta[tid]
            dust.meta[asset] = (decimals, symbol)
    else:
        dust.usd += usd
        dust.priced += 1
