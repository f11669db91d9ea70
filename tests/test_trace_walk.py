"""The compiled graph walk (`tracing.trace._walk`, lazy `GraphParts` results) gives exactly the trace of the pure-Python
walk, on random graphs: time windows, value and token filters, fan-out cuts, busy addresses, node budgets, ties in
value and time, both directions."""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from storage.models import ANY_EVM
from tracing.chain.transfer import Transfer, TransferKind
from tracing.labels import Category, Label
from tracing.risk.exposure import exposures_from, merged_coverage, report_from_traces, volume_of
from tracing.trace import compiled as graph_walk
from tracing.trace.flows import FlowQuery, FlowRequest, Flows, History, HistoryRequest
from tracing.trace.graph import TransferGraph
from tracing.trace.label_cache import LabelCache
from tracing.trace.model import Trace
from tracing.trace.params import Direction, TraceParams
from tracing.trace.sources import GraphSource
from tracing.trace.taint import TaintModel
from tracing.trace.walk import trace_funds, trace_graph_python

if not graph_walk.available() and os.environ.get("CHAINSLEUTH_REQUIRE_COMPILED_WALK"):
    raise RuntimeError("tracing.trace._walk is not built, and CHAINSLEUTH_REQUIRE_COMPILED_WALK is set (CI)")
pytestmark = pytest.mark.skipif(
    not graph_walk.available(),
    reason="tracing.trace._walk is not built (no C compiler at install): pure-Python walk only",
)

TOKENS = [("0x" + "aa" * 20, 6, "USDA"), ("0x" + "bb" * 20, 18, "TKB"), ("0x" + "cc" * 20, None, None)]


def addr(n: int) -> str:
    return "0x" + f"{n:040x}"


class Labels:
    def __init__(self, labels: Mapping[str, Sequence[Label]]) -> None:
        self.labels = labels

    def for_addresses(self, addresses: Sequence[str], chain: str | None = None) -> dict[str, list[Label]]:
        return {a: list(self.labels[a]) for a in addresses if a in self.labels}


def random_graph(rng: random.Random) -> tuple[TransferGraph, Labels, int]:
    n_nodes = rng.choice([15, 40, 120])
    hubs = rng.sample(range(n_nodes), 2)
    transfers = []
    values = [rng.choice([1, 10**18, 5 * 10**17]) for _ in range(5)]  # repeated values: ties in weight
    for i in range(rng.choice([60, 300, 900])):
        a = rng.choice(hubs) if rng.random() < 0.2 else rng.randrange(n_nodes)
        b = rng.choice(hubs) if rng.random() < 0.2 else rng.randrange(n_nodes)
        token = rng.choice(TOKENS) if rng.random() < 0.3 else None
        value = rng.choice(values) if rng.random() < 0.5 else rng.randrange(0, 3 * 10**18)
        if rng.random() < 0.02:
            value = rng.randrange(2**64, 2**100)  # beyond 64 bits
        transfers.append(
            Transfer(
                chain="eth",
                block_number=i,
                block_hash="",
                timestamp=rng.randrange(1, 60) if rng.random() < 0.7 else 30,  # few distinct times: ties in time
                tx_hash=f"0x{rng.getrandbits(256):064x}" if rng.random() < 0.95 else f"dune:{i}",
                kind=TransferKind.ERC20 if token else TransferKind.NATIVE,
                position=f"log:{i % 5}" if token else rng.choice(["tx", "internal:0"]),
                from_addr=addr(a),
                to_addr=addr(b),
                value=value,
                token=token[0] if token else None,
                decimals=token[1] if token else None,
                symbol=token[2] if token else None,
                source=rng.choice(["rpc", "etl"]),
            )
        )
    for j in range(20):  # fan-in of equal amounts: parents decided by time, then by tx hash
        far, value = rng.randrange(n_nodes), rng.choice(values)
        for k, near in enumerate(rng.sample(range(n_nodes), 3)):
            for way in ((near, far), (far, near)):
                transfers.append(
                    Transfer("eth", 10_000 + 10 * j + k, "", rng.choice([30, 31, 40]), f"0x{rng.getrandbits(256):064x}",
                             TransferKind.NATIVE, "tx", addr(way[0]), addr(way[1]), value)
                )  # fmt: skip
    labels: dict[str, list[Label]] = {}
    for n in rng.sample(range(n_nodes), max(1, n_nodes // 8)):
        category = rng.choice([Category.EXCHANGE, Category.MIXER, Category.SCAM, Category.HACK, Category.SANCTIONS])
        labels[addr(n)] = [Label(addr(n), category, f"{category.value} {n}", "test")]
    for hub in hubs:
        labels.pop(addr(hub), None)  # busy but unlabelled: cut as busy, not stopped as a service
    return TransferGraph.from_transfers("eth", transfers), Labels(labels), n_nodes


def random_params(rng: random.Random) -> TraceParams:
    since = rng.choice([None, None, rng.randrange(1, 30)])
    until = rng.choice([None, None, rng.randrange(30, 60)])
    return TraceParams(
        direction=rng.choice(Direction.ways()),
        hops=rng.choice([1, 2, 3, 4]),
        model=rng.choice(list(TaintModel)),
        min_value=rng.choice([None, None, Decimal("0.5"), Decimal("0.000001")]),
        token=rng.choice([None, None, None, "native", TOKENS[0][0], TOKENS[2][0], "0xnotatoken"]),
        since=since,
        until=until,
        follow_time=rng.random() < 0.8,
        fanout=rng.choice([1, 2, 3, 5, 100]),
        max_nodes=rng.choice([3, 10, 25, 2000, 2000]),
        scan_limit=rng.choice([2, 8, 50_000]),
        hub_degree=rng.choice([5, 20, 1000]),
        follow_value=False,  # the compiled walk follows the graph; the value-aware walk is Python only
    )


def everything(t: Trace) -> tuple[object, ...]:
    """Every field and accessor of a trace, read in the order a caller would (lazy accessors first)."""
    lazy = (
        t.root_node,
        t.labelled,
        t.terminals,
        [t.path_to(n.address) for n in t.labelled],
        t.token_meta(),
        {model: t.received_under(model) for model in TaintModel},
        t.coverage,
    )
    nodes = t.nodes
    return (
        lazy,
        nodes,
        t.edges,
        t.cuts,
        dict(t.totals),
        dict(t.parents),
        [t.path_to(n.address) for n in nodes] + [t.path_to(addr(10**6))],
        [t.node(n.address) for n in nodes] + [t.node(addr(10**6))],
        {model: (t.taint_under(model).edges, t.taint_under(model).received) for model in TaintModel},
        t.compare_models(),
    )


@pytest.mark.parametrize("seed", range(60))
async def test_compiled_walk_matches_the_python_walk(seed: int) -> None:
    rng = random.Random(seed)
    graph, labels, n_nodes = random_graph(rng)
    source = GraphSource(graph)
    for _ in range(12):
        params = random_params(rng)
        root = rng.choice(graph.addresses) if rng.random() < 0.9 else addr(n_nodes + 1)
        fast = await trace_funds(source, labels, root, "eth", params)
        reference = trace_graph_python(source, labels, root, "eth", params, 0.0)
        assert (fast._parts is not None) == (root in graph.ids)  # compiled whenever the root is in the graph
        assert everything(fast) == everything(reference), (seed, params, root)


def test_weights_are_rounded_as_python_divides() -> None:
    from tracing.trace import _walk  # type: ignore[attr-defined]

    rng = random.Random(5)
    for _ in range(20_000):
        bits = rng.choice([8, 53, 54, 60, 64, 65, 90, 126])
        value = rng.getrandbits(bits)
        decimals = rng.randrange(0, 20)
        assert _walk.weight(value >> 64, value & (2**64 - 1), decimals) == value / 10**decimals, (value, decimals)
    for value in (2**53 + 1, 2**54 + 2, 2**54 + 6, 10**19 + 5 * 10**2, 2**127 - 1):
        for decimals in (0, 1, 3, 18, 19):
            assert _walk.weight(value >> 64, value & (2**64 - 1), decimals) == value / 10**decimals


async def test_huge_values_and_pending_transfers_fall_back_to_the_python_walk() -> None:
    base = dict(chain="eth", block_hash="", kind=TransferKind.NATIVE, position="tx", token=None, decimals=None)
    transfers = [
        Transfer(block_number=1, timestamp=1, tx_hash="0x" + "01" * 32, from_addr=addr(1), to_addr=addr(2),
                 value=2**130, **base),  # type: ignore[arg-type]
        Transfer(block_number=2, timestamp=2, tx_hash="0x" + "02" * 32, from_addr=addr(2), to_addr=addr(3),
                 value=5, **base),  # type: ignore[arg-type]
    ]  # fmt: skip
    graph = TransferGraph.from_transfers("eth", transfers)
    graph_walk = TraceParams(follow_value=False)
    result = await trace_funds(GraphSource(graph), Labels({}), addr(1), "eth", replace(graph_walk, hops=2))
    assert result._parts is None and [n.address for n in result.nodes] == [addr(1), addr(2), addr(3)]
    small = TransferGraph.from_transfers("eth", transfers[1:])
    assert (await trace_funds(GraphSource(small), Labels({}), addr(2), "eth", graph_walk))._parts is not None
    small.append([transfers[0]])
    assert (await trace_funds(GraphSource(small), Labels({}), addr(2), "eth", graph_walk))._parts is None


def report_parts(t: Trace, rng: random.Random) -> tuple[object, ...]:
    """What a risk report reads of one trace (exposures under both models, volume), the taint of a random subset of
    the reached addresses asked for alone, and the moved totals of a few addresses."""
    addresses = [n.address for n in t.nodes] + [addr(10**6)]
    subset = rng.sample(addresses, rng.randrange(0, len(addresses) + 1))
    return (
        {model: exposures_from(t, model) for model in TaintModel},
        volume_of(t),
        {model: {a: dict(t.received_under(model, only=subset).get(a, {})) for a in subset} for model in TaintModel},
        [dict(t.totals_of(a)) for a in addresses[:5] + addresses[-2:]],
    )


@pytest.mark.parametrize("seed", range(60))
async def test_risk_reports_over_the_compiled_walk_match_the_python_walk(seed: int) -> None:
    """Exposure amounts propagate taint only towards the labelled addresses over a compact trace; over the
    Python walk's trace the whole taint is computed. The reports must be the same."""
    rng = random.Random(1000 + seed)
    graph, labels, n_nodes = random_graph(rng)
    source = GraphSource(graph)
    for _ in range(8):
        params = random_params(rng)
        root = rng.choice(graph.addresses)
        both = []
        for walk in (trace_funds, None):
            traces = []
            for direction in Direction.ways():
                mine = replace(params, direction=direction)
                if walk is None:
                    traces.append(trace_graph_python(source, labels, root, "eth", mine, 0.0))
                else:
                    traces.append(await walk(source, labels, root, "eth", mine))
            out, back = traces
            picked = random.Random(seed)
            coverage = merged_coverage(out, back)
            report = report_from_traces(
                root, "eth", list(labels.for_addresses([root]).get(root, [])), out, back, coverage
            )
            both.append((report, report_parts(out, picked), report_parts(back, picked)))
        assert both[0][0] == both[1][0], (seed, params, root)
        assert both[0][1:] == both[1][1:], (seed, params, root)


class SnapshotCache(LabelCache):
    """The in-memory label cache over a fixed snapshot (no store): what the bot traces with."""

    def __init__(self, labels: Mapping[str, Sequence[Label]]) -> None:
        super().__init__(None, check_interval=3600)  # type: ignore[arg-type]
        self._labels = {address: list(mine) for address, mine in labels.items()}

    def _fresh(self) -> None:
        pass


@pytest.mark.parametrize("seed", range(20))
async def test_label_cache_gives_the_trace_of_the_label_lookups(seed: int) -> None:
    rng = random.Random(2000 + seed)
    graph, labels, _ = random_graph(rng)
    extra = {addr(10**6 + i): [Label(addr(10**6 + i), Category.MIXER, "not in the graph", "test")] for i in range(3)}
    cache = SnapshotCache({**labels.labels, **extra})
    source = GraphSource(graph)
    for _ in range(6):
        params = random_params(rng)
        root = rng.choice(graph.addresses)
        fast = await trace_funds(source, cache, root, "eth", params)
        assert fast._parts is not None
        assert everything(fast) == everything(trace_graph_python(source, labels, root, "eth", params, 0.0))
    cache._labels = {}  # a new snapshot: the trace sees it, not the labels read before
    params = random_params(rng)
    root = rng.choice(graph.addresses)
    unlabelled = await trace_funds(source, cache, root, "eth", params)
    assert not [n for n in unlabelled.nodes if n.labels]
    reference = trace_graph_python(source, SnapshotCache({}), root, "eth", params, 0.0)
    assert everything(unlabelled) == everything(reference)


def varied_labels(rng: random.Random, graph: TransferGraph) -> dict[str, list[Label]]:
    """Labels of every kind the node marks must tell apart: other chains, any chain, delisted services, several
    labels on one address (a service among them or not)."""
    labels: dict[str, list[Label]] = {}
    categories = [Category.EXCHANGE, Category.MIXER, Category.SCAM, Category.HACK, Category.SANCTIONS]
    for address in rng.sample(graph.addresses, max(1, len(graph.addresses) // 4)):
        mine = []
        for _ in range(rng.choice([1, 1, 2])):
            category = rng.choice(categories)
            mine.append(
                Label(
                    address,
                    category,
                    f"{category.value} {address[-4:]}",
                    "test",
                    chain=rng.choice(["eth", "eth", ANY_EVM, "bsc"]),
                    delisted_on=date(2024, 1, 1) if rng.random() < 0.3 else None,
                )
            )
        labels[address] = mine
    return labels


@pytest.mark.parametrize("seed", range(30))
async def test_node_marks_give_the_trace_and_report_of_the_label_lookups(seed: int) -> None:
    """Over a `LabelCache` the compiled walk reads labels as node marks (no callback): the same traces and risk
    reports as the Python walk's look-ups, for labels on other chains, delisted ones, and across snapshots."""
    rng = random.Random(3000 + seed)
    graph, _, _ = random_graph(rng)
    cache = SnapshotCache(varied_labels(rng, graph))
    source = GraphSource(graph)
    for round_ in range(8):
        if round_ == 4:
            cache._labels = {a: list(mine) for a, mine in varied_labels(rng, graph).items()}  # a new snapshot
        params = random_params(rng)
        if rng.random() < 0.3:
            params = replace(params, stop_at=frozenset(rng.sample(sorted(Category), 2)))
        root = rng.choice(graph.addresses)
        both = []
        for compiled in (True, False):
            traces = []
            for direction in Direction.ways():
                mine = replace(params, direction=direction)
                if compiled:
                    fast = await trace_funds(source, cache, root, "eth", mine)
                    assert fast._parts is not None
                    traces.append(fast)
                else:
                    traces.append(trace_graph_python(source, cache, root, "eth", mine, 0.0))
            out, back = traces
            report = report_from_traces(
                root, "eth", cache.for_address(root, "eth"), out, back, merged_coverage(out, back)
            )
            both.append((report, everything(out), everything(back)))
        assert both[0] == both[1], (seed, params, root)


# --- the value-aware walk over the graph's arrays ------------------------------------------------------------------


class HistoriesOf:
    """The graph as any other history source: the walk runs the reference ledger (`select_value` over `Transfer`s)."""

    def __init__(self, graph: TransferGraph) -> None:
        self.name = GraphSource.name
        self.graph_source = GraphSource(graph)

    async def histories(self, chain: str, query: FlowQuery, requests: Sequence[HistoryRequest]) -> list[History]:
        return await self.graph_source.histories(chain, query, requests)

    async def flows(self, chain: str, query: FlowQuery, requests: Sequence[FlowRequest]) -> list[Flows]:
        return await self.graph_source.flows(chain, query, requests)


class UsdaAtPeg:
    """USDA at $1, TKB at $2 on even UTC days only (prices are per day: the random graphs' times fall on day 0),
    nothing else priced: the dust floor in USD and in units both apply."""

    def usd(
        self, asset: str | None, decimals: int | None, symbol: str | None, timestamp: int, raw: int
    ) -> Decimal | None:
        if asset == TOKENS[0][0]:
            return Decimal(raw).scaleb(-6)
        if asset == TOKENS[1][0] and timestamp // 86_400 % 2 == 0:
            return 2 * Decimal(raw).scaleb(-18)
        return None


def with_swaps(graph: TransferGraph, rng: random.Random, n_nodes: int) -> None:
    """Swaps (an address sends one asset and gets another back in the same transaction), some of them appended after
    the build (the graph's overflow lists)."""
    swaps = []
    for i in range(rng.choice([0, 30, 100])):
        who, pool = rng.randrange(n_nodes), rng.randrange(n_nodes)
        tx_hash, when = f"0x{rng.getrandbits(256):064x}", rng.randrange(1, 60)
        sent, got = rng.sample([None, *TOKENS], 2)
        for j, (frm, to, token) in enumerate(((who, pool, sent), (pool, who, got))):
            swaps.append(
                Transfer("eth", 20_000 + i, "", when, tx_hash,
                         TransferKind.ERC20 if token else TransferKind.NATIVE, f"log:{j}" if token else "tx",
                         addr(frm), addr(to), rng.randrange(1, 3 * 10**18),
                         token[0] if token else None, token[1] if token else None, token[2] if token else None)
            )  # fmt: skip
    graph.append(swaps)


@pytest.mark.parametrize("seed", range(40))
async def test_value_walk_on_the_graph_arrays_matches_the_reference_ledger(seed: int) -> None:
    rng = random.Random(1000 + seed)
    graph, labels, n_nodes = random_graph(rng)
    if seed % 2:  # one asset only: openings read from running sums of the adjacency lists
        graph = TransferGraph.from_transfers(
            "eth", [graph.transfer(e) for e in range(len(graph)) if graph.token[e] < 0]
        )
    with_swaps(graph, rng, n_nodes)
    fast_source, reference_source = GraphSource(graph), HistoriesOf(graph)
    for model in TaintModel:
        if model is TaintModel.FIFO:  # the graph grows between traces: running sums read before are stale
            graph.append(
                Transfer("eth", 30_000 + i, "", rng.randrange(1, 60), f"0x{rng.getrandbits(256):064x}",
                         TransferKind.NATIVE, "tx", addr(rng.randrange(n_nodes)), addr(rng.randrange(n_nodes)),
                         rng.randrange(1, 3 * 10**18))
                for i in range(rng.choice([1, 20]))
            )  # fmt: skip
            if rng.random() < 0.5:
                graph.compact()
        for _ in range(4):
            params = replace(
                random_params(rng),
                model=model,
                follow_value=True,
                follow_time=True,
                dust_usd=rng.choice([None, Decimal(0), Decimal(100), Decimal("0.5")]),
                dust_units=rng.choice([(), (("native", Decimal("0.5")),), ((TOKENS[2][0], Decimal(10**17)),)]),
                follow_share=rng.choice([Decimal("0.5"), Decimal(0), Decimal("0.1"), Decimal(1)]),
                crumb_share=rng.choice([Decimal("0.002"), Decimal(0), Decimal("0.05"), Decimal("0.3")]),
            )
            root = rng.choice(graph.addresses)
            others = rng.sample(graph.addresses, rng.choice([0, 0, 2]))
            fast = await trace_funds(fast_source, labels, root, "eth", params, UsdaAtPeg(), with_roots=others)
            reference = await trace_funds(reference_source, labels, root, "eth", params, UsdaAtPeg(), with_roots=others)
            assert fast.value_aware and reference.value_aware
            assert {e.key: fast.carried(e) for e in fast.edges} == {
                e.key: reference.carried(e) for e in reference.edges
            }
            assert everything(fast) == everything(reference), (seed, params, root)
