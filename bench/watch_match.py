"""Watch matching: which of a block's transfer endpoints are watched, with a million watched addresses.

`WatchMatcher.matches` (a set of 64-bit hashes per chain) against the baseline of a plain Python set of the address
strings, over the same blocks; memory is what `tracemalloc` sees the structure hold once built.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
import tracemalloc
from collections.abc import Sequence

from bench.common import Figure, log, median, ms, percentile, verdict
from tracing import Transfer, TransferKind, WatchMatcher

GOAL_P99_MS = 1.0
GOAL_MB = 150.0


def address(rng: random.Random) -> str:
    return "0x" + rng.getrandbits(160).to_bytes(20, "big").hex()


def blocks_of(rng: random.Random, watched: Sequence[str], n_blocks: int, endpoints: int) -> list[list[Transfer]]:
    """Blocks of `endpoints // 2` transfers; about one endpoint in a thousand is a watched address."""
    blocks = []
    for b in range(n_blocks):
        transfers = []
        for i in range(endpoints // 2):
            src = watched[rng.randrange(len(watched))] if rng.random() < 0.001 else address(rng)
            dst = watched[rng.randrange(len(watched))] if rng.random() < 0.001 else address(rng)
            transfers.append(
                Transfer("eth", b, "0x" + "00" * 32, 0, f"0x{b:032x}{i:032x}", TransferKind.NATIVE, "tx", src, dst, 1)
            )
        blocks.append(transfers)
    return blocks


def set_matches(watched: set[str], transfers: Sequence[Transfer]) -> int:
    """The baseline: the same walk over a set of the address strings."""
    found = 0
    for t in transfers:
        if t.from_addr in watched:
            found += 1
            if t.from_addr == t.to_addr:
                continue
        if t.to_addr in watched:
            found += 1
    return found


def run(watched_n: int, n_blocks: int, endpoints: int, runs: int, seed: int = 1) -> list[Figure]:
    rng = random.Random(seed)
    log(f"watch matching: {watched_n:,} watched addresses, {n_blocks} blocks of {endpoints:,} endpoints, {runs} runs")
    sample = [address(rng) for _ in range(min(watched_n, 10_000))]
    gc.collect()
    tracemalloc.start()
    began = time.perf_counter()
    matcher = WatchMatcher()
    gen = random.Random(seed + 1)
    for addr in sample:
        matcher.add("eth", addr)
    for _ in range(watched_n - len(sample)):
        matcher.add("eth", address(gen))
    build_s = time.perf_counter() - began
    gc.collect()
    matcher_mb = tracemalloc.get_traced_memory()[0] / 1e6
    tracemalloc.stop()
    gc.collect()
    tracemalloc.start()
    gen = random.Random(seed + 1)
    plain = set(sample)
    for _ in range(watched_n - len(sample)):
        plain.add(address(gen))
    gc.collect()
    plain_mb = tracemalloc.get_traced_memory()[0] / 1e6
    tracemalloc.stop()
    blocks = blocks_of(rng, sample, n_blocks, endpoints)
    ours_p99, ours_p50, base_p99, base_p50 = [], [], [], []
    for _ in range(runs):
        ours, base = [], []
        for block in blocks:
            t0 = time.perf_counter()
            found = len(matcher.matches("eth", block))
            t1 = time.perf_counter()
            expected = set_matches(plain, block)
            t2 = time.perf_counter()
            if found != expected:
                raise AssertionError(f"matcher found {found}, the plain set {expected}")
            ours.append((t1 - t0) * 1000)
            base.append((t2 - t1) * 1000)
        ours_p99.append(percentile(ours, 99))
        ours_p50.append(median(ours))
        base_p99.append(percentile(base, 99))
        base_p50.append(median(base))
    p99 = median(ours_p99)
    size = f"{watched_n:,} watched; {n_blocks} blocks × {endpoints:,} endpoints; {runs} runs"
    return [
        Figure(
            "watch matching per block (`WatchMatcher.matches`)",
            size,
            ms(median(ours_p50)),
            f"p99 {ms(p99)} (runs: {ms(min(ours_p99))}–{ms(max(ours_p99))})",
            f"plain `set[str]`: {ms(median(base_p50))} / p99 {ms(median(base_p99))}",
            f"p99 ≤ {GOAL_P99_MS:g} ms",
            verdict(p99, GOAL_P99_MS, lower_is_better=True),
        ),
        Figure(
            "watch matcher memory (tracemalloc, after build)",
            f"{watched_n:,} watched (built in {build_s:.1f} s)",
            f"{matcher_mb:,.0f} MB",
            "",
            f"plain `set[str]`: {plain_mb:,.0f} MB",
            f"≤ {GOAL_MB:g} MB",
            verdict(matcher_mb, GOAL_MB, lower_is_better=True),
        ),
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--watched", type=int, default=1_000_000)
    parser.add_argument("--watch-blocks", type=int, default=200)
    parser.add_argument("--endpoints", type=int, default=2_000)


def from_args(args: argparse.Namespace) -> list[Figure]:
    return run(args.watched, args.watch_blocks, args.endpoints, args.runs_small)
