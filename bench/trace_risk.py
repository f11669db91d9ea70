"""Trace and risk-report benchmark on a synthetic transfer index with exchange-like hubs.

Measures, in one run: building the in-memory graph (time, memory), loading it from a chainsleuth store, bounded
3-hop forward traces over it against the same traces over networkx and as a recursive CTE in SQLite, and full risk
reports (two traces, labels, exposure, score) through `Investigator.risk`. Several runs; median and p95 of each.
Writes BENCHMARKS.md. Timings are never asserted; `tests/test_trace_bench.py` only checks that the methods agree.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from storage import open_database
from tracing import (
    Category,
    GraphCache,
    GraphSource,
    Investigator,
    Label,
    LabelBook,
    LabelCache,
    LabelSet,
    TraceParams,
    TransferGraph,
    compiled_walk_available,
    trace_funds,
)

CHAIN = "eth"
T0 = 1_700_000_000
YEAR = 365 * 24 * 3600
GOALS = {"trace_p95_ms": 5.0, "risk_p95_ms": 100.0, "reports_per_s": 200.0, "vs_cte": 50.0, "vs_networkx": 5.0}


# --- the synthetic index ------------------------------------------------------------------------------------------


@dataclass
class Synthetic:
    addresses: list[str]
    src: np.ndarray
    dst: np.ndarray
    ts: np.ndarray
    blocks: np.ndarray
    values: np.ndarray
    tx: bytes
    hubs: np.ndarray
    risky: dict[int, Category]
    seconds: float

    @property
    def edges(self) -> int:
        return len(self.src)


def generate(n_edges: int, n_addresses: int, n_hubs: int, seed: int = 1) -> Synthetic:
    """Users with skewed activity, `n_hubs` exchange hot wallets taking 30% of the transfers (deposits and
    withdrawals), a year of timestamps, log-normal ETH values, random tx hashes."""
    began = time.perf_counter()
    rng = np.random.default_rng(seed)
    users = n_addresses - n_hubs
    weight = 1.0 / np.arange(1, users + 1) ** 0.8  # a few very active users, a long tail of occasional ones
    weight /= weight.sum()
    perm = rng.permutation(users) + n_hubs

    def pick_users(k: int) -> np.ndarray:
        return perm[np.searchsorted(np.cumsum(weight), rng.random(k), side="right").clip(0, users - 1)]

    hub_weight = 1.0 / np.arange(1, n_hubs + 1) ** 0.5
    hub_weight /= hub_weight.sum()
    n_dep = n_wd = int(n_edges * 0.15)
    n_p2p = n_edges - n_dep - n_wd
    src = np.concatenate([pick_users(n_dep), rng.choice(n_hubs, n_wd, p=hub_weight), pick_users(n_p2p)])
    dst = np.concatenate([rng.choice(n_hubs, n_dep, p=hub_weight), pick_users(n_wd), pick_users(n_p2p)])
    same = src == dst
    dst[same] = (dst[same] + 1 - n_hubs) % users + n_hubs
    ts = np.sort(rng.integers(T0, T0 + YEAR, n_edges))
    order = rng.permutation(n_edges)  # transfers interleaved in time, not grouped by kind
    src, dst = src[order].astype(np.int32), dst[order].astype(np.int32)
    blocks = (ts - T0) // 12 + 18_500_000
    values = np.exp(rng.normal(np.log(0.5e18), 2.0, n_edges)).clip(1e12, 9e18).astype(np.uint64)
    raw = rng.bytes(20 * n_addresses)
    addresses = ["0x" + raw[20 * i : 20 * i + 20].hex() for i in range(n_addresses)]
    risky_ids = rng.choice(np.arange(n_hubs, n_addresses), 300, replace=False)
    kinds = [Category.MIXER, Category.SANCTIONS, Category.SCAM, Category.HACK]
    risky = {int(a): kinds[i % len(kinds)] for i, a in enumerate(risky_ids)}
    return Synthetic(
        addresses,
        src,
        dst,
        ts.astype(np.int64),
        blocks.astype(np.int64),
        values,
        rng.bytes(32 * n_edges),
        np.arange(n_hubs),
        risky,
        time.perf_counter() - began,
    )


def labels_of(data: Synthetic) -> list[Label]:
    found = [
        Label(data.addresses[int(h)], Category.EXCHANGE, f"Exchange hot wallet {int(h)}", "bench") for h in data.hubs
    ]
    found += [Label(data.addresses[a], c, f"{c.display} {a}", "bench") for a, c in data.risky.items()]
    return found


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# --- the baselines --------------------------------------------------------------------------------------------


def stop_set(graph: TransferGraph, labelled: Iterable[str], hub_degree: int) -> set[str]:
    """Where every method stops: labelled services and busy addresses (as `TraceParams.hub_degree` does)."""
    busy = {
        graph.addresses[i] for i in range(len(graph.addresses)) if graph.out_off[i + 1] - graph.out_off[i] > hub_degree
    }
    return busy | set(labelled)


def neighbourhood_edges(graph: TransferGraph, roots: Sequence[str], stops: set[str], hops: int) -> list[int]:
    """Every out-edge of every address a `hops`-hop trace from `roots` may expand: all the data those traces read."""
    edges: list[int] = []
    seen = set(roots)
    frontier = list(roots)
    for hop in range(hops):
        fresh: list[str] = []
        for address in frontier:
            if hop and address in stops:
                continue
            for edge in graph.edges_of(address, "out"):
                edges.append(edge)
                far = graph.addresses[graph.dst[edge]]
                if far not in seen:
                    seen.add(far)
                    fresh.append(far)
        frontier = fresh
    return sorted(set(edges))


def build_networkx(graph: TransferGraph, edges: Sequence[int]) -> Any:
    import networkx as nx

    g = nx.MultiDiGraph()
    names = graph.addresses
    g.add_edges_from(
        (names[graph.src[e]], names[graph.dst[e]], {"ts": graph.ts[e], "value": graph.value(e)}) for e in edges
    )
    return g


def networkx_trace(g: Any, root: str, hops: int, fanout: int, stops: set[str]) -> set[str]:
    """The same forward trace (time order, stop set, largest counterparties first) over networkx's adjacency."""
    arrived: dict[str, int] = {root: -1}
    hop_of = {root: 0}
    frontier = [root]
    for hop in range(1, hops + 1):
        fresh: list[str] = []
        for node in frontier:
            if hop > 1 and node in stops:
                continue
            if node not in g:
                continue
            per: dict[str, int] = defaultdict(int)
            first: dict[str, int] = {}
            since = arrived[node]
            for _, far, data in g.out_edges(node, data=True):
                if data["ts"] >= since and far != node and data["value"] > 0:
                    per[far] += data["value"]
                    first[far] = min(first.get(far, data["ts"]), data["ts"])
            for far in sorted(per, key=lambda f: (-per[f], f))[:fanout]:
                if far not in hop_of:
                    hop_of[far], arrived[far] = hop, first[far]
                    fresh.append(far)
                elif hop_of[far] == hop:
                    arrived[far] = min(arrived[far], first[far])
        frontier = fresh
    return set(hop_of)


def sqlite_store(data: Synthetic, path: Path, stops: set[str]) -> tuple[sqlite3.Connection, float]:
    """The transfers in a SQLite table with the index a CTE needs (integer address ids: kinder to SQL than text)."""
    began = time.perf_counter()
    if path.exists():
        path.unlink()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("CREATE TABLE transfer (from_id INTEGER, to_id INTEGER, ts INTEGER, value INTEGER)")
    step = 1_000_000
    for start in range(0, data.edges, step):
        conn.executemany(
            "INSERT INTO transfer VALUES (?, ?, ?, ?)",
            zip(
                data.src[start : start + step].tolist(),
                data.dst[start : start + step].tolist(),
                data.ts[start : start + step].tolist(),
                (data.values[start : start + step] // 10**9).astype(np.int64).tolist(),
                strict=True,
            ),
        )
    conn.execute("CREATE INDEX ix_transfer_from ON transfer (from_id, ts)")
    conn.execute("CREATE TABLE stop (id INTEGER PRIMARY KEY)")
    ids = {a: i for i, a in enumerate(data.addresses)}
    conn.executemany("INSERT INTO stop VALUES (?)", ((ids[a],) for a in stops))
    conn.commit()
    return conn, time.perf_counter() - began


CTE = """
WITH RECURSIVE walk(id, hop, t) AS (
    SELECT ?, 0, -1
    UNION
    SELECT tr.to_id, w.hop + 1, tr.ts
    FROM walk AS w JOIN transfer AS tr ON tr.from_id = w.id AND tr.ts >= w.t
    WHERE w.hop < ? AND (w.hop = 0 OR w.id NOT IN (SELECT id FROM stop)) AND tr.to_id != w.id
)
SELECT DISTINCT id FROM walk
"""


def cte_trace(conn: sqlite3.Connection, root: int, hops: int) -> set[int]:
    """Every address reachable by a time-respecting walk of at most `hops` transfers, not through a stop."""
    return {row[0] for row in conn.execute(CTE, (root, hops))}


# --- measuring ------------------------------------------------------------------------------------------------


@dataclass
class Timing:
    runs: list[list[float]] = field(default_factory=list)

    def add_run(self, samples: list[float]) -> None:
        self.runs.append(samples)

    @property
    def p50(self) -> float:
        return statistics.median(statistics.median(r) for r in self.runs)

    @property
    def p95(self) -> float:
        return statistics.median(percentile(r, 95) for r in self.runs)

    @property
    def p95_spread(self) -> tuple[float, float]:
        values = [percentile(r, 95) for r in self.runs]
        return min(values), max(values)

    @property
    def mean(self) -> float:
        return statistics.fmean(x for r in self.runs for x in r)

    @property
    def samples(self) -> int:
        return sum(len(r) for r in self.runs)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {
        "cpu": cpu,
        "nproc": str(os.cpu_count()),
        "ram": ram,
        "python": platform.python_version(),
        "os": platform.platform(),
        "numpy": np.__version__,
        "sqlite": sqlite3.sqlite_version,
    }


@dataclass
class Results:
    params: dict[str, Any]
    machine: dict[str, str]
    sizes: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    memory: dict[str, float] = field(default_factory=dict)
    timings: dict[str, Timing] = field(default_factory=dict)
    agreement: dict[str, str] = field(default_factory=dict)


class ReferenceSource:
    """The in-memory graph as any other history source: the value-aware walk runs its reference ledger over it
    (`Transfer` objects and exact fractions per transfer), as it did before the ledger ran on the graph's edge ids."""

    def __init__(self, graph: TransferGraph) -> None:
        self.inner = GraphSource(graph)
        self.name = self.inner.name

    async def flows(self, chain: str, query: Any, requests: Sequence[Any]) -> list[Any]:
        return await self.inner.flows(chain, query, requests)

    async def histories(self, chain: str, query: Any, requests: Sequence[Any]) -> list[Any]:
        return await self.inner.histories(chain, query, requests)


async def graph_traces(
    graph: TransferGraph,
    labels: LabelCache,
    roots: Sequence[str],
    params: TraceParams,
    *,
    materialise: bool = False,
    reference: bool = False,
) -> tuple[list[float], list[set[str]]]:
    """Time each trace; `materialise`: include reading every node and edge of the result (what `/trace`'s CSV and
    picture read; the risk report reads only the labelled nodes and their paths); `reference`: the value-aware walk
    runs its reference ledger (`ReferenceSource`)."""
    source: Any = ReferenceSource(graph) if reference else GraphSource(graph)
    samples, reached = [], []
    for root in roots:
        began = time.perf_counter()
        result = await trace_funds(source, labels, root, CHAIN, params)
        if materialise:
            _ = result.nodes, result.edges, result.cuts, result.totals
        samples.append((time.perf_counter() - began) * 1000)
        reached.append({n.address for n in result.nodes})
    return samples, reached


async def risk_reports(investigator: Investigator, roots: Sequence[str], hops: int) -> list[float]:
    samples = []
    for root in roots:
        began = time.perf_counter()
        await investigator.risk(root, CHAIN, hops=hops)
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def run(args: argparse.Namespace) -> Results:
    results = Results(params=vars(args).copy(), machine=machine())
    results.machine["load_start"] = load_average()
    results.params["compiled"] = compiled_walk_available()
    log(f"generating {args.edges:,} transfers over {args.addresses:,} addresses ({args.hubs} hubs)")
    data = generate(args.edges, args.addresses, args.hubs, args.seed)
    results.seconds["generate"] = data.seconds
    results.sizes.update(
        edges=data.edges, addresses=args.addresses, hubs=args.hubs, labelled=args.hubs + len(data.risky)
    )
    log(f"  {data.seconds:.1f}s")

    gc.collect()
    before = rss_mb()
    began = time.perf_counter()
    graph = TransferGraph.from_columns(
        CHAIN, data.addresses, data.src, data.dst, data.ts, data.blocks, data.values, data.tx
    )
    results.seconds["graph_build"] = time.perf_counter() - began
    gc.collect()
    results.memory["graph_rss_mb"] = rss_mb() - before
    results.memory["graph_estimate_mb"] = graph.approx_bytes() / 2**20
    log(f"graph built in {results.seconds['graph_build']:.1f}s, +{results.memory['graph_rss_mb']:.0f} MB RSS")

    workdir = Path(tempfile.mkdtemp(prefix="chainsleuth-bench-"))
    db = open_database(f"sqlite:///{workdir / 'store.sqlite3'}")
    book = LabelBook(db)
    all_labels = labels_of(data)
    book.replace_set(LabelSet("bench", "synthetic", "", "generated"), all_labels)
    store_rows = min(args.store_sample, data.edges)
    results.seconds["store_load"], results.sizes["store_rows"] = store_load(db, data, store_rows), store_rows
    log(f"store load of {store_rows:,} rows: {results.seconds['store_load']:.1f}s")

    label_cache = LabelCache(db, check_interval=3600)
    # following the graph (the compiled walk): the algorithm networkx and the CTE run too
    params = TraceParams(hops=3, fanout=args.fanout, hub_degree=args.hub_degree, follow_value=False)
    rng = np.random.default_rng(args.seed + 1)
    labelled = {label.address for label in all_labels}
    candidates = [
        a
        for a in (data.addresses[int(i)] for i in rng.choice(np.arange(args.hubs, args.addresses), args.roots * 20))
        if a not in labelled and graph.degree(a, "out") > 0
    ]
    roots = candidates[: args.roots]
    results.sizes["roots"] = len(roots)

    # the graph walk and the value-aware walk (the default) in turns, so that each run of one has a run of the other
    # under the same load beside it: the cost of value-awareness is read per pair of runs
    value = replace(params, follow_value=True)
    timing, value_timing = Timing(), Timing()
    reached: list[set[str]] = []
    value_reached: list[set[str]] = []
    for run_index in range(args.runs):
        samples, reached = asyncio.run(graph_traces(graph, label_cache, roots, params))
        timing.add_run(samples)
        log(f"trace run {run_index + 1}: p50 {statistics.median(samples):.2f} ms, p95 {percentile(samples, 95):.2f} ms")
        samples, value_reached = asyncio.run(graph_traces(graph, label_cache, roots, value))
        value_timing.add_run(samples)
        log(f"value run {run_index + 1}: p50 {statistics.median(samples):.2f} ms, p95 {percentile(samples, 95):.2f} ms")
    results.timings["trace"] = timing
    results.timings["trace_value"] = value_timing
    full_timing = Timing()
    for _ in range(max(1, args.runs // 2)):
        samples, _reached = asyncio.run(graph_traces(graph, label_cache, roots, params, materialise=True))
        full_timing.add_run(samples)
    results.timings["trace_full"] = full_timing
    log(f"trace, every node and edge read: p50 {full_timing.p50:.2f} ms, p95 {full_timing.p95:.2f} ms")
    results.sizes["trace_nodes_mean"] = statistics.fmean(len(r) for r in reached)
    results.sizes["trace_nodes_p50"] = percentile([len(r) for r in reached], 50)
    results.sizes["trace_nodes_p95"] = percentile([len(r) for r in reached], 95)
    results.sizes["trace_big_share"] = sum(1 for r in reached if len(r) >= 1000) / len(reached)
    tight = TraceParams(
        hops=3, fanout=args.tight_fanout, max_nodes=args.tight_nodes, hub_degree=args.hub_degree, follow_value=False
    )
    tight_timing = Timing()
    for _ in range(args.runs):
        samples, _reached = asyncio.run(graph_traces(graph, label_cache, roots, tight))
        tight_timing.add_run(samples)
    results.timings["trace_tight"] = tight_timing
    log(f"tight trace: p50 {tight_timing.p50:.2f} ms, p95 {tight_timing.p95:.2f} ms")
    full_value = Timing()  # and reading the whole result, as /trace does
    for _ in range(max(1, args.runs // 2)):
        samples, _reached = asyncio.run(graph_traces(graph, label_cache, roots, value, materialise=True))
        full_value.add_run(samples)
    results.timings["trace_value_full"] = full_value
    python_timing = Timing()  # the same walk in Python (`tracing/trace/value_graph.py`): what compiling it saved
    with pure_walk():
        for _ in range(max(1, args.runs // 2)):
            samples, python_reached = asyncio.run(graph_traces(graph, label_cache, roots, value))
            python_timing.add_run(samples)
    results.timings["trace_value_python"] = python_timing
    same = sum(1 for a, b in zip(value_reached, python_reached, strict=True) if a == b)
    results.agreement["value_python"] = f"{same}/{len(roots)} traces reach the same addresses"
    log(f"value-aware trace, Python walk: p50 {python_timing.p50:.2f} ms, p95 {python_timing.p95:.2f} ms; "
        f"{results.agreement['value_python']}")  # fmt: skip
    reference_timing = Timing()  # the same traces with the reference ledger: what this walk cost before
    samples, reference_reached = asyncio.run(graph_traces(graph, label_cache, roots, value, reference=True))
    reference_timing.add_run(samples)
    results.timings["trace_value_reference"] = reference_timing
    same = sum(1 for a, b in zip(value_reached, reference_reached, strict=True) if a == b)
    results.agreement["value_reference"] = f"{same}/{len(roots)} traces reach the same addresses"
    log(f"value-aware trace, reference ledger: p50 {reference_timing.p50:.2f} ms, p95 {reference_timing.p95:.2f} ms")
    results.sizes["value_nodes_p50"] = percentile([len(r) for r in value_reached], 50)
    results.sizes["value_nodes_p95"] = percentile([len(r) for r in value_reached], 95)
    log(f"value-aware trace: p50 {value_timing.p50:.2f} ms, p95 {value_timing.p95:.2f} ms")

    services = {label.address for label in all_labels if label.category in params.stop_at}
    stops = stop_set(graph, services, args.hub_degree)
    sample = roots[: args.baseline_roots]
    began = time.perf_counter()
    edges = neighbourhood_edges(graph, sample, stops, hops=3)
    g = build_networkx(graph, edges)
    results.seconds["networkx_build"] = time.perf_counter() - began
    results.sizes["networkx_edges"] = len(edges)
    nx_timing = Timing()
    for _ in range(args.runs):
        samples = []
        nx_reached = []
        for root in sample:
            t = time.perf_counter()
            nx_reached.append(networkx_trace(g, root, 3, args.fanout, stops))
            samples.append((time.perf_counter() - t) * 1000)
        nx_timing.add_run(samples)
    results.timings["networkx"] = nx_timing
    results.timings["trace_nx_sample"] = Timing([run[: len(sample)] for run in timing.runs])
    same = sum(1 for a, b in zip(reached[: len(sample)], nx_reached, strict=True) if a == b)
    results.agreement["networkx"] = f"{same}/{len(sample)} traces reach the same addresses"
    log(f"networkx: p50 {nx_timing.p50:.2f} ms on {len(edges):,} edges; {results.agreement['networkx']}")
    del g

    if args.cte_edges:
        cte_data = data if args.cte_edges >= data.edges else _prefix(data, args.cte_edges)
        conn, seconds = sqlite_store(cte_data, workdir / "cte.sqlite3", stops)
        results.seconds["cte_load"] = seconds
        results.sizes["cte_edges"] = cte_data.edges
        ids = {a: i for i, a in enumerate(data.addresses)}
        cte_roots = sample[: args.cte_roots]
        cte_timing = Timing()
        cte_reached: list[set[int]] = []
        for _ in range(max(1, args.runs // 2)):
            samples, cte_reached = [], []
            for root in cte_roots:
                t = time.perf_counter()
                cte_reached.append(cte_trace(conn, ids[root], 3))
                samples.append((time.perf_counter() - t) * 1000)
            cte_timing.add_run(samples)
        results.timings["cte"] = cte_timing
        results.timings["trace_cte_sample"] = Timing([run[: len(cte_roots)] for run in timing.runs])
        if cte_data is data:
            ours = [{ids[a] for a in r} for r in reached[: len(cte_roots)]]
            exact = sum(1 for a, b in zip(ours, cte_reached, strict=True) if a == b)
            subset = sum(1 for a, b in zip(ours, cte_reached, strict=True) if a <= b)
            results.agreement["cte"] = (
                f"{exact}/{len(cte_roots)} identical, {subset}/{len(cte_roots)} contained in the CTE's set "
                "(the CTE follows every time-respecting walk; the trace keeps the earliest arrival per address)"
            )
        log(f"CTE: p50 {cte_timing.p50:.2f} ms on {cte_data.edges:,} edges")
        conn.close()

    investigator = Investigator(db, check_interval=3600)
    investigator.graphs.put(graph)
    investigator.label_cache = label_cache
    risk_timing = Timing()
    risk_roots = roots[: args.risk_roots]
    asyncio.run(risk_reports(investigator, risk_roots[:5], 3))  # warm the label snapshot and index summary
    for run_index in range(args.runs):
        samples = asyncio.run(risk_reports(investigator, risk_roots, 3))
        risk_timing.add_run(samples)
        log(f"risk run {run_index + 1}: p50 {statistics.median(samples):.2f} ms, p95 {percentile(samples, 95):.2f} ms")
    results.timings["risk"] = risk_timing
    with pure_walk():
        samples = asyncio.run(risk_reports(investigator, risk_roots, 3))
    results.timings["risk_python"] = Timing([samples])
    log(f"risk, Python value walk: p50 {statistics.median(samples):.2f} ms, p95 {percentile(samples, 95):.2f} ms")
    reference_source = ReferenceSource(graph)
    investigator.source = lambda chain: reference_source  # type: ignore[method-assign,assignment,return-value]
    samples = asyncio.run(risk_reports(investigator, risk_roots, 3))
    results.timings["risk_reference"] = Timing([samples])
    log(f"risk, reference ledger: p50 {statistics.median(samples):.2f} ms, p95 {percentile(samples, 95):.2f} ms")
    db.dispose()
    results.machine["load_end"] = load_average()
    return results


def load_average() -> str:
    """The machine's 1, 5 and 15 minute load averages (other work on the shared machine slows every figure)."""
    try:
        return ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


@contextmanager
def pure_walk() -> Iterator[None]:
    """The walks run in Python (`CHAINSLEUTH_PURE_WALK=1`) inside the block."""
    before = os.environ.get("CHAINSLEUTH_PURE_WALK")
    os.environ["CHAINSLEUTH_PURE_WALK"] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ["CHAINSLEUTH_PURE_WALK"]
        else:
            os.environ["CHAINSLEUTH_PURE_WALK"] = before


def _prefix(data: Synthetic, n: int) -> Synthetic:
    return Synthetic(
        data.addresses,
        data.src[:n],
        data.dst[:n],
        data.ts[:n],
        data.blocks[:n],
        data.values[:n],
        data.tx[: 32 * n],
        data.hubs,
        data.risky,
        0.0,
    )


def store_load(db: Any, data: Synthetic, rows: int) -> float:
    """Write `rows` transfers into the store's `transfer` table and time `GraphCache.load` reading them back."""
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        step = 200_000
        for start in range(0, rows, step):
            stop = min(rows, start + step)
            cursor.executemany(
                "INSERT INTO transfer (chain, block_number, block_hash, timestamp, tx_hash, kind, position, token, "
                "from_addr, to_addr, value, decimals, symbol, source) VALUES (?, ?, '', ?, ?, 'native', 'tx', NULL, "
                "?, ?, ?, NULL, NULL, 'bench')",
                (
                    (
                        CHAIN,
                        int(data.blocks[i]),
                        int(data.ts[i]),
                        "0x" + data.tx[32 * i : 32 * i + 32].hex(),
                        data.addresses[data.src[i]],
                        data.addresses[data.dst[i]],
                        str(int(data.values[i])),
                    )
                    for i in range(start, stop)
                ),
            )
        raw.commit()
    finally:
        raw.close()
    began = time.perf_counter()
    GraphCache(db).load(CHAIN)
    return time.perf_counter() - began


# --- the report -----------------------------------------------------------------------------------------------


def pair_ratio(a: Timing, b: Timing, q: float) -> float:
    """The median over runs of run i of `a`'s percentile `q` over run i of `b`'s (runs taken in turns)."""
    return statistics.median(percentile(x, q) / percentile(y, q) for x, y in zip(a.runs, b.runs, strict=False))


def verdict(value: float, goal: float, *, lower_is_better: bool) -> str:
    met = value <= goal if lower_is_better else value >= goal
    factor = (goal / value if lower_is_better else value / goal) if value else float("inf")
    return f"met ({factor:.1f}× better than the goal)" if met else f"missed (by {1 / factor:.1f}×)"


def markdown(r: Results) -> str:
    t = r.timings
    trace, nx, risk, tight, full = t["trace"], t["networkx"], t["risk"], t["trace_tight"], t["trace_full"]
    value, value_ref, risk_ref = t["trace_value"], t["trace_value_reference"], t["risk_reference"]
    value_py, value_full, risk_py = t["trace_value_python"], t["trace_value_full"], t["risk_python"]
    ours_nx = t["trace_nx_sample"]
    cte, ours_cte = t.get("cte"), t.get("trace_cte_sample")
    lo, hi = trace.p95_spread
    reports_per_s = 1000 / risk.mean
    lines = [
        "# Benchmarks",
        "",
        "Produced by `python -m bench` (`make bench`); the numbers below are from the run described here. Timings "
        "are never asserted in the test-suite; `tests/test_trace_bench.py` runs a tiny version and checks the "
        "methods agree. The machine is a shared VM and noisy: with the same code, two runs an hour apart gave a trace "
        "p95 of 82 ms and 38 ms, so compare figures within one run.",
        "",
        "## Machine",
        "",
        f"- CPU: {r.machine['cpu']}, {r.machine['nproc']} logical CPUs (`nproc`), RAM {r.machine['ram']}",
        f"- Python {r.machine['python']}, numpy {r.machine['numpy']}, SQLite {r.machine['sqlite']}; {r.machine['os']}",
        "- One process, one thread; the traces run one after another. Load average (1, 5, 15 min) at the start "
        f"{r.machine.get('load_start', 'unknown')}, at the end {r.machine.get('load_end', 'unknown')} (on 2 CPUs: "
        "above 2, other work on the machine slowed every figure; compare figures within the run).",
        "",
        "## Data",
        "",
        f"- Synthetic index: **{r.sizes['edges']:,} native transfers** over {r.sizes['addresses']:,} addresses in "
        f"one year; {r.sizes['hubs']} exchange hot wallets (labelled) take 30% of the transfers (deposits and "
        "withdrawals, up to ~100k each); user activity is skewed (a few very busy addresses, a long tail); 300 "
        "more addresses labelled mixer / sanctions / scam / hack. "
        f"Generated with numpy in {r.seconds['generate']:.0f}s (seed {r.params['seed']}).",
        f"- Trace: forward, 3 hops, time-ordered, fan-out {r.params['fanout']} counterparties, addresses with more "
        f"than {r.params['hub_degree']:,} outgoing transfers treated as busy services, stops at labelled services. "
        f"{r.sizes['roots']} random unlabelled start addresses with at least one outgoing transfer; addresses "
        f"reached per trace: median {r.sizes['trace_nodes_p50']}, mean {r.sizes['trace_nodes_mean']:.0f}, p95 "
        f"{r.sizes['trace_nodes_p95']}: most traces stay small, {r.sizes['trace_big_share']:.0%} run into the "
        "busy core of the graph and reach 1,000 addresses or more (the budget is 2,000).",
        f"- {len(trace.runs)} runs over the same start addresses; each figure is the median over runs of that run's "
        "p50 or p95.",
        "",
        "## Results",
        "",
        "| what | p50 | p95 | goal | verdict |",
        "| --- | --- | --- | --- | --- |",
        f"| 3-hop value-aware trace, the default (compiled walk, `tracing/trace/_walk.c` `value_walk`; addresses "
        f"reached: median {r.sizes['value_nodes_p50']}, p95 {r.sizes['value_nodes_p95']}) | {value.p50:.2f} ms | "
        f"{value.p95:.2f} ms (runs: {value.p95_spread[0]:.2f}–{value.p95_spread[1]:.2f}) | "
        f"p95 ≤ {GOALS['trace_p95_ms']:.0f} ms | {verdict(value.p95, GOALS['trace_p95_ms'], lower_is_better=True)}; "
        f"value-awareness costs {pair_ratio(value, trace, 50):.1f}× the graph walk (row 5) at p50, "
        f"{pair_ratio(value, trace, 95):.1f}× at p95 (median over runs of each run's ratio to the graph walk's run "
        f"just before it; it does more per address but reaches fewer: median {r.sizes['value_nodes_p50']} against "
        f"{r.sizes['trace_nodes_p50']}) |",
        f"| same, reading every node, edge, cut and total of the result (what `/trace` reads) | {value_full.p50:.2f} "
        f"ms | {value_full.p95:.2f} ms | (figure only) | — |",
        f"| same walk in Python (`tracing/trace/value_graph.py`, the compiled walk's reference and fallback; "
        f"{max(1, len(value_py.runs))} run(s); {r.agreement.get('value_python', 'n/a')}) | {value_py.p50:.2f} ms | "
        f"{value_py.p95:.2f} ms | (figure only) | compiled: {value_py.p50 / value.p50:.0f}× faster at p50, "
        f"{value_py.p95 / value.p95:.0f}× at p95 |",
        f"| same, reference ledger (`Transfer` objects and fractions per transfer: the walk before it ran on edge "
        f"ids; one run; {r.agreement.get('value_reference', 'n/a')}) | {value_ref.p50:.2f} ms | {value_ref.p95:.2f} ms "
        "| (figure only) | — |",
        f"| 3-hop trace following the graph, in-memory graph ({r.sizes['edges']:,} transfers) | {trace.p50:.2f} ms | "
        f"{trace.p95:.2f} ms "
        f"(runs: {lo:.2f}–{hi:.2f}) | p95 ≤ {GOALS['trace_p95_ms']:.0f} ms | "
        f"{verdict(trace.p95, GOALS['trace_p95_ms'], lower_is_better=True)} |",
        f"| same, reading every node, edge, cut and total of the result (what `/trace` reads) | {full.p50:.2f} ms | "
        f"{full.p95:.2f} ms | (figure only) | — |",
        f"| same, tighter bounds (fan-out {r.params['tight_fanout']}, at most {r.params['tight_nodes']} addresses) | "
        f"{tight.p50:.2f} ms | {tight.p95:.2f} ms | p95 ≤ {GOALS['trace_p95_ms']:.0f} ms | "
        f"{verdict(tight.p95, GOALS['trace_p95_ms'], lower_is_better=True)} |",
        f"| networkx (MultiDiGraph), same algorithm, first {len(nx.runs[0])} start addresses | {nx.p50:.2f} ms | "
        f"{nx.p95:.2f} ms (ours on them: {ours_nx.p50:.2f} / {ours_nx.p95:.2f} ms) | ours ≥ "
        f"{GOALS['vs_networkx']:.0f}× faster | ours {nx.p50 / ours_nx.p50:.2f}× as fast at p50, "
        f"{nx.p95 / ours_nx.p95:.2f}× at p95: "
        f"{verdict(nx.p50 / ours_nx.p50, GOALS['vs_networkx'], lower_is_better=False)} |",
    ]
    if cte is not None and ours_cte is not None:
        lines.append(
            f"| recursive CTE in SQLite ({r.sizes['cte_edges']:,} transfers), first {len(cte.runs[0])} start "
            f"addresses | {cte.p50:.2f} ms | {cte.p95:.2f} ms (ours on them: {ours_cte.p50:.2f} / "
            f"{ours_cte.p95:.2f} ms) | ours ≥ {GOALS['vs_cte']:.0f}× faster | ours {cte.p50 / ours_cte.p50:.2f}× "
            f"as fast at p50, {cte.p95 / ours_cte.p95:.2f}× at p95: "
            f"{verdict(cte.p50 / ours_cte.p50, GOALS['vs_cte'], lower_is_better=False)} |"
        )
    lines += [
        f"| risk report (`Investigator.risk`: traces out and in, 3 hops, labels, exposure, score) | {risk.p50:.2f} ms "
        f"| {risk.p95:.2f} ms | p95 ≤ {GOALS['risk_p95_ms']:.0f} ms | "
        f"{verdict(risk.p95, GOALS['risk_p95_ms'], lower_is_better=True)} |",
        f"| risk reports per second (one thread, 1000 / mean ms) | {reports_per_s:.0f}/s | | ≥ "
        f"{GOALS['reports_per_s']:.0f}/s | {verdict(reports_per_s, GOALS['reports_per_s'], lower_is_better=False)} |",
        f"| same, Python value walk (one run) | {risk_py.p50:.2f} ms | {risk_py.p95:.2f} ms; "
        f"{1000 / risk_py.mean:.0f}/s | (figure only) | — |",
        f"| same, reference ledger (one run) | {risk_ref.p50:.2f} ms | {risk_ref.p95:.2f} ms; "
        f"{1000 / risk_ref.mean:.0f}/s | (figure only) | — |",
        "",
        "| index | value |",
        "| --- | --- |",
        f"| build the in-memory graph from columns ({r.sizes['edges']:,} transfers) | "
        f"{r.seconds['graph_build']:.1f} s |",
        f"| its memory (RSS growth; estimate from array sizes) | {r.memory['graph_rss_mb']:,.0f} MB; "
        f"{r.memory['graph_estimate_mb']:,.0f} MB |",
        f"| load from a chainsleuth SQLite store ({r.sizes['store_rows']:,} rows, `GraphCache.load`) | "
        f"{r.seconds['store_load']:.1f} s ({r.sizes['store_rows'] / r.seconds['store_load']:,.0f} rows/s; "
        f"~{r.sizes['edges'] / (r.sizes['store_rows'] / r.seconds['store_load']):.0f} s extrapolated to "
        f"{r.sizes['edges']:,}) |",
    ]
    if cte is not None:
        lines.append(
            f"| load the CTE's SQLite table and index ({r.sizes['cte_edges']:,} rows) | {r.seconds['cte_load']:.1f} s |"
        )
    lines += [
        f"| build the networkx graph ({r.sizes['networkx_edges']:,} transfers) | {r.seconds['networkx_build']:.1f} s |",
        "",
        "## How the baselines were run",
        "",
        f"- **networkx** runs the same algorithm (time order, stop set, largest counterparties first) over a "
        f"`MultiDiGraph` holding every outgoing transfer of every address the {len(nx.runs[0])} sampled traces may "
        f"expand ({r.sizes['networkx_edges']:,} transfers: all the data those traces read). Loading all "
        f"{r.sizes['edges']:,} transfers into networkx would take minutes and several GB (measured: 17 s and "
        "0.7 GB per million). The networkx walk only finds the addresses; ours also looks up labels and builds the "
        "cuts and coverage statement (node and edge objects are built when read: the second row). Agreement: "
        + r.agreement.get("networkx", "n/a")
        + ".",
    ]
    if cte is not None:
        lines.append(
            f"- **Recursive CTE** (SQLite, table `(from_id, to_id, ts, value)` with an index on `(from_id, ts)`, "
            f"integer address ids, which favours SQL over our text addresses) on {r.sizes['cte_edges']:,} transfers, "
            f"{len(cte.runs[0])} start addresses: `UNION` of (address, hop, arrival time) rows, the same stop set "
            "(labelled services and busy addresses), no fan-out cap (the cap never binds at these degrees). "
            "Agreement: " + r.agreement.get("cte", "n/a") + "."
        )
    lines += [
        "- Where the time goes: the walk is compiled (`tracing/trace/_walk.c`, built by `pip install -e .`; the "
        f"compiled walk {'ran' if r.params.get('compiled') else 'was NOT built, the pure-Python walk ran'} in this "
        "run): the selection per address, the frontier order, the node budget and the parent of every address run "
        "over the graph's arrays, asking for each batch's offsets, adjacency and edge columns ahead (prefetch) so "
        "that the cache misses of a big graph overlap; the label snapshot is read as a byte per node "
        "(`LabelCache.node_marks`, built once per graph and snapshot), so the walk stops at services without calling "
        "back into Python, and the labels themselves are read only for the labelled addresses a caller reads; an "
        "address whose counterparties in several assets must be ranked goes through `TransferGraph.select`. The "
        "result keeps node and edge ids and builds `TraceNode`/`TraceEdge` objects and the coverage statement only "
        "when read: the first trace row times the walk, the row after it adds reading the whole result (the cost "
        "the walk used to pay every time). The risk report reads only the labelled addresses, their paths and the "
        "taint they received, propagated over ids along only the transfers that lead to them (their ancestors in the "
        "trace, found by `tracing.trace._walk.ancestors`). The pure-Python walk (`CHAINSLEUTH_PURE_WALK=1`, or no "
        "compiler) is the reference; `tests/test_trace_walk.py` checks both give the same trace on random graphs.",
        "- The value-aware walk is compiled as well (`value_walk` in `tracing/trace/_walk.c`, run by "
        "`tracing.trace.compiled.compiled_value_trace`): per expanded address its window and opening balance are read "
        "from the adjacency arrays, its ledger (haircut, poison or FIFO, exact 128-bit integers with 256-bit products "
        "where they could overflow) runs over its transfers in time order (ties by tx hash, kind, position; swaps in "
        "one transaction followed through; traced funds conserved; under haircut what its transfers lack opens it, "
        "clean), one C function states the follow rule (under 5 % traced funds never; dust floor, crumb, share), and "
        "addresses are expanded again when more traced funds reach them later, as the Python walk does. USD reaches "
        "it as raw thresholds per (token, day) from one Python call per token and day "
        "(none of the bench's native transfers has a price: the floor in units applies, here none). The result stays "
        "compact (`ValueParts`: ids, the traced amount per followed edge, the dust summed per token and day) until "
        "read. `tests/test_trace_value_compiled.py` checks it gives the Python walk's trace on random graphs (peel "
        "chains, swaps, dust, cycles, overdrafts, shortfalls, diluted transfers, all three models, both directions): "
        "same transfers, amounts, cuts, dust summary and coverage.",
        "- The risk report runs the production path: `Investigator.risk` over the in-memory graph and the label "
        "snapshot, with the store (SQLite) answering the address's own labels, the label sets and the index summary.",
        "",
        "## Not measured",
        "",
        "- Explorer-backed traces here (their API calls and seconds at the free tier are in the explorer section),"
        " PostgreSQL, concurrent requests, traces of 4+ hops.",
        "- Loading the full 10M-transfer store into the graph was not timed (only the sample above; loading is "
        "linear in rows).",
    ]
    return "\n".join(lines) + "\n"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--edges", type=int, default=10_000_000)
    parser.add_argument("--addresses", type=int, default=2_000_000)
    parser.add_argument("--hubs", type=int, default=100)
    parser.add_argument("--roots", type=int, default=500, help="trace start addresses per run")
    parser.add_argument("--baseline-roots", type=int, default=200, help="start addresses for networkx")
    parser.add_argument("--cte-roots", type=int, default=100)
    parser.add_argument("--cte-edges", type=int, default=10_000_000, help="transfers loaded for the CTE (0: skip)")
    parser.add_argument("--risk-roots", type=int, default=300)
    parser.add_argument("--store-sample", type=int, default=1_000_000, help="rows written to time the store load")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--fanout", type=int, default=100)
    parser.add_argument("--hub-degree", type=int, default=1000)
    parser.add_argument("--tight-fanout", type=int, default=10, help="fan-out of the tightly bounded trace row")
    parser.add_argument("--tight-nodes", type=int, default=200, help="node budget of the tightly bounded trace row")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="200k transfers, a smoke run")
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args(argv)
    if args.quick:
        args.edges, args.addresses, args.cte_edges, args.store_sample = 200_000, 40_000, 200_000, 50_000
        args.roots, args.baseline_roots, args.cte_roots, args.risk_roots, args.runs = 100, 50, 30, 50, 2
    return args


def main(argv: Sequence[str]) -> int:
    args = parse(argv)
    results = run(args)
    text = markdown(results)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0
