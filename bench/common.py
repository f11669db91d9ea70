"""Shared helpers of the benchmark modules: percentiles, verdicts, the machine line, a `Figure` row."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def verdict(value: float, goal: float, *, lower_is_better: bool) -> str:
    """'met (1.3× better than the goal)' or 'missed (by 2.0×)'."""
    met = value <= goal if lower_is_better else value >= goal
    if value == 0:
        return "met" if lower_is_better else "missed (nothing measured)"
    factor = goal / value if lower_is_better else value / goal
    return f"met ({factor:.1f}× better than the goal)" if met else f"missed (by {1 / factor:.1f}×)"


def rss_mb() -> float:
    """Current resident set size in MB (Linux /proc; falls back to the peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine_line() -> str:
    cpu = "unknown"
    ram = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"nproc {os.cpu_count()}, RAM {ram}, CPU {cpu}, Python {platform.python_version()}, "
        f"{platform.platform()}, run {now}"
    )


@dataclass
class Figure:
    """One row of the results table."""

    what: str
    size: str
    median: str
    p95: str
    baseline: str
    goal: str
    verdict: str
    notes: list[str] = field(default_factory=list)

    def row(self) -> str:
        cells = (self.what, self.size, self.median, self.p95, self.baseline, self.goal, self.verdict)
        return "| " + " | ".join(cells) + " |"


TABLE_HEAD = (
    "| what | dataset | median | p95 (or p99 where the goal says so) | baseline (same run) | goal | verdict |\n"
    "| --- | --- | --- | --- | --- | --- | --- |"
)


def ms(value: float) -> str:
    return f"{value:.3f} ms" if value < 10 else f"{value:.1f} ms"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
