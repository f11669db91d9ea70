"""Why the value-aware trace misses a terminal or names an outsider on the MFTracer cases (issue #12): per missed
terminal, the ground-truth path to it and where the walk dropped it and why; per outsider, the transfer that
reached it and what the sender held. A diagnostic, not a figure: `python -m tests.support.case_misses [--cases
54m,XScam] [--noise 1] [--mix quiet|ci|bench|N] [--set crumb_share=0.002]`.

The walk is the product's (`trace_funds`, default `TraceParams` unless `--set name=value`), run once with its
per-address selection recorded: each expanded address's steps (the traced value each transfer out carries) and the
traced funds it received, as the follow rule saw them (it spies on `tracing.trace.value_graph`'s private `_follow`:
test support, never the product; so it runs the Python walk, `CHAINSLEUTH_PURE_WALK`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import tracing.trace.value_graph as value_graph
import tracing.trace.walk as walk
from tests.support.cases import (
    BENCH_MIXES,
    CASES,
    CI_MIXES,
    HOPS,
    Case,
    Edge,
    Mix,
    World,
    product_walk,
    reachable,
    read_case,
)
from tracing import TraceParams


@dataclass
class Seen:
    """One expansion of an address as the follow rule saw it."""

    steps: list[tuple[int, int, bool, int]]
    """(edge id, traced raw value carried, into a swap, the receipt edge it passes on or -1)."""
    received: dict[int, int]
    followed: set[int]


@contextmanager
def recording() -> Iterator[dict[str, Seen]]:
    """Record, per address, the last expansion's steps and traced receipts (`value_graph._follow`)."""
    seen: dict[str, Seen] = {}
    current: list[str] = [""]
    select, follow = value_graph.select_value_graph, value_graph._follow

    def select_spy(graph: Any, found: Any, *args: Any, **kwargs: Any) -> Any:
        current[0] = found.address
        return select(graph, found, *args, **kwargs)

    def follow_spy(graph: Any, steps: Any, received: Any, *args: Any, **kwargs: Any) -> Any:
        picked = follow(graph, steps, received, *args, **kwargs)
        seen[current[0]] = Seen(list(steps), dict(received), {s.edge for s in picked.chosen})
        return picked

    walk.select_value_graph = select_spy  # type: ignore[assignment]
    value_graph._follow = follow_spy  # type: ignore[assignment]
    try:
        yield seen
    finally:
        walk.select_value_graph = select  # type: ignore[assignment]
        value_graph._follow = follow  # type: ignore[assignment]


def gt_path(case: Case, stops: set[str], target: str, hops: int) -> list[Edge]:
    """One shortest time-respecting ground-truth path from a source to `target` (as `reachable` walks)."""
    out: dict[str, list[Edge]] = defaultdict(list)
    for e in case.edges:
        out[e.frm].append(e)
    for source in case.sources:
        via: dict[str, Edge | None] = {source: None}
        arrived, frontier = {source: case.incident}, [source]
        for _ in range(hops):
            fresh = []
            for node in frontier:
                if node != source and node in stops:
                    continue
                for e in out[node]:
                    if e.ts < arrived[node] or e.usd <= 0 or e.to in via:
                        continue
                    via[e.to], arrived[e.to] = e, e.ts
                    fresh.append(e.to)
            frontier = fresh
        if target in via:
            path, here = [], target
            while via[here] is not None:
                edge = via[here]
                assert edge is not None
                path.append(edge)
                here = edge.frm
            return path[::-1]
    return []


def usd(raw: int, token: bool, eth: float) -> float:
    return raw / 1e6 if token else raw / 1e18 * eth


def diagnose(world: World, params: TraceParams) -> list[str]:
    from tests.support.cases import ETH_USD

    case, graph = world.case, world.graph
    eth = ETH_USD.get(case.name, 2000.0)
    with recording() as seen:
        reached = asyncio.run(product_walk(world, params))
    stops = world.stops(params.stop_at)
    can = reachable(case, stops, HOPS)
    due = {t for t in case.terminals if t in can}
    named = {a for a, h in reached.items() if h <= HOPS} - set(case.sources)
    lines = [f"== {case.name} / {world.mix.name}: {len(due & named)}/{len(due)} terminals, "
             f"{len(named & case.addresses)}/{len(named)} in case"]  # fmt: skip
    busy = world.stops(frozenset(), params.hub_degree)
    token_id = {tid for tid, t in enumerate(graph.tokens)}

    def edge_line(e: int, carried: int, info: Seen | None) -> str:
        tok = graph.token[e] in token_id and graph.token[e] >= 0
        value = graph.value(e)
        total = info.received.get(graph.token[e], 0) if info else 0
        share = carried / total if total else 0
        return (
            f"${usd(value, tok, eth):,.2f} {'USD' if tok else 'ETH'} carrying ${usd(carried, tok, eth):,.2f} "
            f"({carried / value:.0%} of it; {share:.3%} of the ${usd(total, tok, eth):,.0f} traced received)"
        )

    for terminal in sorted(due - named):
        path = gt_path(case, stops, terminal, HOPS)
        lines.append(f"MISSED {terminal} (hop {can[terminal]}): path " + " → ".join(
            f"{e.frm[:8]}-${e.usd:,.2f}@{e.ts}" for e in path) + f" → {terminal[:8]}")  # fmt: skip
        for e in path:
            if e.frm not in reached:
                lines.append(f"   {e.frm[:10]} never reached")
                break
            if e.frm in busy and e.frm not in case.sources:
                lines.append(f"   {e.frm[:10]} busy: not expanded")
                break
            info = seen.get(e.frm)
            if info is None:
                lines.append(f"   {e.frm[:10]} reached at hop {reached[e.frm]}, not expanded (stop / hop budget)")
                break
            hits = [(edge, c, sw) for edge, c, sw, _ in info.steps
                    if graph.addresses[graph.dst[edge]] == e.to and graph.tx_hash(edge) == e.tx]  # fmt: skip
            if any(edge in info.followed for edge, _, _ in hits):
                continue
            if not hits:
                lines.append(f"   {e.frm[:10]} (hop {reached[e.frm]}): GT edge not among its steps "
                             f"(before the traced funds arrived? window)")  # fmt: skip
            for edge, c, sw in hits:
                lines.append(
                    f"   dropped at {e.frm[:10]} (hop {reached[e.frm]}): {edge_line(edge, c, info)}"
                    f"{' swap' if sw else ''}; {len(info.steps)} steps, {len(info.followed)} followed"
                )
            break
    outsiders = sorted(named - case.addresses, key=lambda a: reached[a])
    edges_to: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for address, info in seen.items():
        for edge, c, _, _ in info.steps:
            if edge in info.followed:
                edges_to[graph.addresses[graph.dst[edge]]].append((address, edge, c))
    for outsider in outsiders:
        label = world.labels.get(outsider)
        kind = label.name if label else "unlabelled"
        for frm, edge, c in edges_to.get(outsider, [])[:1]:
            info = seen[frm]
            tag = "case" if frm in case.addresses else "outsider"
            lines.append(f"OUTSIDER {outsider[:10]} (hop {reached[outsider]}, {kind}) from {tag} {frm[:10]}: "
                         f"{edge_line(edge, c, info)}")  # fmt: skip
    return lines


def main() -> None:
    os.environ["CHAINSLEUTH_PURE_WALK"] = "1"  # the spy sees the Python walk only (the compiled one gives the same)
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--noise", type=float, default=None)
    parser.add_argument(
        "--mix",
        default="ci",
        help="ci, bench, quiet (no unrelated traffic around the case's own "
        "addresses), or an index into the CI mixes then bench mixes",
    )
    parser.add_argument("--set", action="append", default=[], help="TraceParams field=value (Decimal fields)")
    args = parser.parse_args()
    quiet = Mix(seed=1, noise=0.15, everyday=0, payments=0, dust=0, hitchhike=0)
    named = {"ci": CI_MIXES, "bench": BENCH_MIXES, "quiet": (quiet,)}
    mixes = named[args.mix] if args.mix in named else ((CI_MIXES + BENCH_MIXES)[int(args.mix)],)
    if args.noise is not None:
        mixes = tuple(replace(m, noise=args.noise) for m in mixes)
    params = TraceParams(hops=HOPS)
    for item in args.set:
        name, value = item.split("=")
        params = replace(params, **{name: Decimal(value)})  # type: ignore[arg-type]
    for name in args.cases.split(","):
        case = read_case(name)
        for mix in mixes:
            print(*diagnose(World.build(case, mix), params), sep="\n", flush=True)


if __name__ == "__main__":
    main()
