"""Silent nodes: a watched chain whose node has given no good answer for longer than a threshold.

A node that accepts connections and never answers raises no error until every RPC time-out and retry has run out
(a minute or more), and until then the cursor still shows the lag of its last good answer. So health is also judged
by age: the watcher stores when the node last answered well (`head_seen_at`, refreshed while idle; `updated_at`,
refreshed per block finished), and `/status`, `/healthz` and the ops monitor call a chain silent once that answer
is older than `stale_after` (the `NODE_STALE_AFTER` setting, 60 s by default). A stopped watcher looks the same,
and the sentence says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from storage import Database
from tracing.monitor.watcher import ChainStatus, watch_status

DEFAULT_STALE_AFTER = 60.0
"""Seconds without a good answer from a chain's node before it is reported silent."""


@dataclass(frozen=True, slots=True)
class Silence:
    """A chain whose node has not answered well for `seconds` (more than the threshold)."""

    chain: str
    seconds: float
    last_answer_at: datetime
    threshold: float

    def sentence(self) -> str:
        return (
            f"no good answer from the {self.chain} node for {_duration(self.seconds)} "
            f"(last at {self.last_answer_at:%Y-%m-%d %H:%M:%S} UTC, threshold {_duration(self.threshold)}): "
            "the node hangs or is down, or no watcher is running; alerts are not being raised"
        )


def silence_of(status: ChainStatus, now: datetime, stale_after: float) -> Silence | None:
    """The chain's silence when its last good answer is older than `stale_after` seconds, else None."""
    seconds = (now - status.last_answer_at).total_seconds()
    if seconds <= stale_after:
        return None
    return Silence(status.chain, seconds, status.last_answer_at, stale_after)


def silent_chains(
    db: Database, now: datetime, stale_after: float, *, chains: Iterable[str] | None = None
) -> list[Silence]:
    """The watched chains (or those of `chains`) whose node is silent, by chain name."""
    wanted = None if chains is None else set(chains)
    found = []
    for status in watch_status(db):
        if wanted is not None and status.chain not in wanted:
            continue
        silence = silence_of(status, now, stale_after)
        if silence is not None:
            found.append(silence)
    return found


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
