"""Traces and risk reports through a block explorer instead of the local index (issue #12): what they cost in API
calls, and in seconds at the free tier's rate limit.

Each of a few MFTracer laundering cases (`--explorer-cases`, default XScam, HB, Atomic) in its unrelated traffic
(`tests/support/cases.py`, reduced size) is served by the local Etherscan-compatible server
(`tests/support/explorer_server.py`: `txlist`, `tokentx`, `txlistinternal`, paged as Etherscan pages). The store
holds the world's labels and daily prices but no transfer: every history comes from the explorer. From the case
source with the most laundering transfers out, a 3-hop `/trace` (forward, from the incident on) and the two traces
of a 3-hop `/risk` (out and in, all history) run through the investigator, each on a fresh explorer cache, once
with the graph walk (`follow_value=False`: the behaviour before issue #12, which fetches the history of every
address it follows) and once with the value-aware default; then the investigator's own `/risk` and `/trace …
--model compare` (value-aware), to count theirs.

Calls are counted by the server. Seconds at the free tier are calls / 5 (its limit, 5 calls per second per key;
the client's limiter lets no second see more), not slept; the runs themselves go through an unthrottled limiter,
and the value-aware `/trace` is also run at the real 5 calls/s and timed (when it needs at most
`REAL_RATE_MAX_CALLS`), to check the computed figure. Each value-aware run is checked to have fetched only the root
and addresses the traced money reached (the far end of a transfer carrying traced value).

The ground truth is research data without a licence (../shared/data): read, never copied; without it the
section says so.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from bench.common import log, machine_line
from storage import open_database
from tests.support.cases import (
    CASES,
    ETH_USD,
    TAGPACK,
    USD_TOKEN,
    Mix,
    World,
    ground_truth_folder,
    read_case,
    to_transfers,
)
from tests.support.explorer_server import FakeExplorer, explorer_rows
from tracing import (
    DEFAULT_CALLS_PER_SECOND,
    Direction,
    ExplorerClient,
    ExplorerRateLimit,
    Investigator,
    LabelBook,
    PriceBook,
    Trace,
    TraceParams,
    day_of,
    price_key,
)

MARKER = "<!-- bench: explorer figures below, written by python -m bench --only explorer -->"
FREE_TIER = 5.0
"""The free tier's rate limit issue #12 measures at: 5 calls per second per API key (the client's own default is
the stricter `DEFAULT_CALLS_PER_SECOND`, 3/s; the table gives both)."""
UNTHROTTLED = 10_000
REAL_RATE_MAX_CALLS = 120
"""The value-aware `/trace` is run again at the real rate when it needs at most this many calls (about 24 s)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--explorer-cases", default="XScam,HB,Atomic", help=f"comma-separated cases served by the explorer ({CASES})"
    )
    parser.add_argument("--explorer-noise", type=float, default=0.15, help="unrelated traffic (1.0: full size)")
    parser.add_argument("--explorer-hops", type=int, default=3)


@dataclass
class Run:
    """One command's traces through the explorer: calls the server saw, addresses fetched, what the traces reached."""

    command: str
    walk: str
    calls: int
    fetched: set[str]
    reached: int
    """Addresses the traces reached (roots left out)."""
    carried_to: set[str]
    """Addresses a transfer carrying traced value reached (value-aware), or every reached one (graph walk)."""
    seconds: float

    @property
    def free_tier_seconds(self) -> float:
        return self.calls / FREE_TIER


@dataclass
class Measurement:
    case: str
    mix: Mix
    transfers: int
    root: str
    hops: int
    runs: list[Run] = field(default_factory=list)
    risk_calls: int | None = None
    """Calls of the investigator's own `/risk` (value-aware), for comparison with its two traces run here."""
    compare_calls: int | None = None
    """Calls of `/trace … --model compare` (three value-aware traces sharing the explorer cache)."""
    real_rate: tuple[int, float] | None = None
    """(calls, wall seconds) of the value-aware `/trace` at the real 5 calls/s."""
    absent: bool = False


def reached_by_money(trace: Trace) -> set[str]:
    """Where the traced money went: the far end of each transfer the trace says carries traced value (the whole
    trace for a graph walk, which does not follow value)."""
    if not trace.value_aware:
        return {node.address for node in trace.nodes[1:]}
    found = set()
    for edge in trace.edges:
        if trace.carried(edge):
            found.add(trace.near_far(edge)[1])
    return found


def world_store(world: World, folder: Path) -> Investigator:
    """A store with the world's labels and daily prices (the USD token at $1, ETH at the case's price), and no
    transfer; the investigator over it (no explorer yet)."""
    db = open_database(f"sqlite:///{folder / 'explorer-bench.sqlite3'}")
    LabelBook(db).replace_set(TAGPACK, world.labels.values())
    days = {day_of(m.ts) for m in world.moves}
    eth = Decimal(str(ETH_USD.get(world.case.name, 2000.0)))
    rows = [(price_key("eth", USD_TOKEN), d, Decimal(1)) for d in days]
    rows += [(price_key("eth", None), d, eth) for d in days]
    PriceBook(db).store(rows, "bench")
    return Investigator(db, check_interval=3600)


async def measure(case_name: str, mix: Mix, hops: int, *, real_rate: bool = True) -> Measurement:
    if ground_truth_folder() is None:
        return Measurement(case_name, mix, 0, "", hops, absent=True)
    case = read_case(case_name)
    world = World.build(case, mix)
    sends: dict[str, int] = {}
    for e in case.edges:
        sends[e.frm] = sends.get(e.frm, 0) + 1
    root = max(case.sources, key=lambda a: (sends.get(a, 0), a))
    found = Measurement(case_name, mix, len(world.moves), root, hops)
    with tempfile.TemporaryDirectory() as folder:
        base = world_store(world, Path(folder))
        async with FakeExplorer(rows=explorer_rows(to_transfers(world.moves))) as server:

            async def fresh(rate: float) -> tuple[Investigator, ExplorerClient]:
                server.seen.clear()
                limiter = ExplorerRateLimit.per_second(rate)
                client = ExplorerClient(server.url, api_key=server.key, chain="eth", limiter=limiter)
                return Investigator(base.db, explorers={"eth": client}, check_interval=3600), client

            for walk, follow in (("graph walk (before #12)", False), ("value-aware (after #12)", True)):
                for command, directions, since in (
                    ("/trace", (Direction.OUT,), case.incident),
                    ("/risk", (Direction.OUT, Direction.IN), None),
                ):
                    investigator, client = await fresh(UNTHROTTLED)
                    began = time.perf_counter()
                    traces = [
                        await investigator.trace(root, "eth", TraceParams(d, hops, since=since, follow_value=follow))
                        for d in directions
                    ]
                    seconds = time.perf_counter() - began
                    reached = set().union(*({n.address for n in t.nodes[1:]} for t in traces))
                    carried = set().union(*(reached_by_money(t) for t in traces))
                    found.runs.append(
                        Run(command, walk, len(server.seen), server.addresses_asked(), len(reached), carried, seconds)
                    )
                    await client.aclose()
                    log(f"explorer: {command}, {walk}: {len(server.seen)} calls")
            investigator, client = await fresh(UNTHROTTLED)
            await investigator.risk(root, "eth", hops=hops)
            found.risk_calls = len(server.seen)
            await client.aclose()
            investigator, client = await fresh(UNTHROTTLED)
            await investigator.compare(root, "eth", TraceParams(Direction.OUT, hops, since=case.incident))
            found.compare_calls = len(server.seen)
            await client.aclose()
            after = next(r for r in found.runs if r.command == "/trace" and r.walk.startswith("value"))
            if real_rate and after.calls <= REAL_RATE_MAX_CALLS:
                investigator, client = await fresh(FREE_TIER)
                began = time.perf_counter()
                await investigator.trace(root, "eth", TraceParams(Direction.OUT, hops, since=case.incident))
                found.real_rate = (len(server.seen), time.perf_counter() - began)
                await client.aclose()
        base.db.dispose()
    return found


def markdown(found: Sequence[Measurement], quick: bool = False) -> str:
    lines = [
        MARKER,
        "",
        "## Through an explorer instead of the local index (`python -m bench --only explorer`)",
        "",
        f"- Machine: {machine_line()}",
    ]
    if not found or any(m.absent for m in found):
        lines += ["", "The MFTracer ground truth (../shared/data/mftracer-ground-truth) is absent: not measured.", ""]
        return "\n".join(lines)
    checks = [
        f"{m.case}: {m.real_rate[0]} calls in {m.real_rate[1]:.1f} s (computed {m.real_rate[0] / FREE_TIER:.1f} s)"
        for m in found
        if m.real_rate
    ]
    lines += [
        "- Each world: one MFTracer case in unrelated traffic, served by the local Etherscan-compatible server"
        " (`tests/support/explorer_server.py`); the store holds the world's labels and prices, no transfer. Root:"
        " the case source with the most laundering transfers out; `/trace` forward from the incident on, `/risk` out"
        " and in over all history (its two traces, through the investigator as the command runs them). Before: the"
        " graph walk (`follow_value=False`, every address it follows is fetched); after: the value-aware default.",
        "- Calls are counted by the server; **seconds at the free tier are computed** as calls / 5 (5 calls/s per"
        " key, the rate issue #12 measures at, which the client's limiter never exceeds), and as calls / 3 at the"
        " client's default (`DEFAULT_CALLS_PER_SECOND`, Etherscan's free tier as the client states it), not slept;"
        " the runs themselves"
        ' go unthrottled ("local run").'
        + (" Check, the value-aware `/trace` run at the real 5 calls/s: " + "; ".join(checks) + "." if checks else ""),
        "- Each read of an address is 3 calls at least (`txlist`, `tokentx`, `txlistinternal`), more where a history"
        " runs past one page of 1,000 rows. Addresses at the hop budget and labelled services where the trace stops"
        " are reached but not read.",
    ]
    if quick:
        lines.append("- **Quick run (`--quick`): tiny sizes, the figures below prove only that the benchmark runs.**")
    lines += [
        "",
        "| case (transfers) | command | walk | API calls | addresses fetched | addresses reached | at 5 calls/s |"
        f" at {DEFAULT_CALLS_PER_SECOND:g} calls/s | local run |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m in found:
        for r in m.runs:
            lines.append(
                f"| {m.case} ({m.transfers:,}, {m.hops} hops) | {r.command} | {r.walk} | {r.calls:,} |"
                f" {len(r.fetched):,} | {r.reached:,} | {r.free_tier_seconds:.1f} s |"
                f" {r.calls / DEFAULT_CALLS_PER_SECOND:.1f} s | {r.seconds:.2f} s |"
            )
    lines.append("")
    for m in found:
        for command in ("/trace", "/risk"):
            before = next(r for r in m.runs if r.command == command and not r.walk.startswith("value"))
            after = next(r for r in m.runs if r.command == command and r.walk.startswith("value"))
            extra = after.fetched - after.carried_to - {m.root}
            lazy = "yes" if not extra else f"NO ({len(extra)} others)"
            ratio = f"{before.calls / after.calls:.1f}× fewer calls" if after.calls else "no call"
            lines.append(
                f"- {m.case} {command}: {before.calls:,} calls ({before.free_tier_seconds:.1f} s) before,"
                f" {after.calls:,} ({after.free_tier_seconds:.1f} s) after: {ratio}. Value-aware, only the root and"
                f" addresses the traced money reached were fetched: {lazy}"
                f" ({len(after.fetched)} fetched; {len(after.carried_to)} reached by traced value)."
            )
        if m.risk_calls is not None and m.compare_calls is not None:
            lines.append(
                f"- {m.case}: the investigator's own value-aware `/risk` made {m.risk_calls:,} calls;"
                f" `/trace --model compare` (three models, one explorer cache) {m.compare_calls:,}"
                f" ({m.compare_calls / FREE_TIER:.1f} s at 5 calls/s)."
            )
    lines += [
        f"- Unrelated traffic: {found[0].mix.name}.",
        "",
    ]
    return "\n".join(lines)


def section(args: argparse.Namespace) -> str:
    mix = Mix(seed=1, noise=0.05 if args.quick else args.explorer_noise)
    hops = 2 if args.quick else args.explorer_hops
    names = [c.strip() for c in args.explorer_cases.split(",") if c.strip()]
    unknown = [c for c in names if c not in CASES]
    if unknown:
        raise SystemExit(f"unknown case(s): {', '.join(unknown)}; choose from {', '.join(CASES)}")
    if args.quick:  # one case, no run at the real rate
        return markdown([asyncio.run(measure(names[0], mix, hops, real_rate=False))], quick=True)
    return markdown([asyncio.run(measure(name, mix, hops)) for name in names])


def main(argv: Sequence[str]) -> str:  # pragma: no cover - for a quick look: python -m bench.explorer
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    add_arguments(parser)
    text = section(parser.parse_args(argv))
    print(text)
    return text


if __name__ == "__main__":  # pragma: no cover
    import sys

    main(sys.argv[1:])
