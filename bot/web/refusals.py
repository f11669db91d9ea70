"""Refused and dropped connections and requests: counted in `/metrics` (`chainsleuth_http_refused_total`, by server
and reason), logged at most one line per interval per server with the counts since the last line, so a flood costs
a counter, not a log line each."""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally

from prometheus_client import Counter

from bot.metrics import REGISTRY

log = logging.getLogger(__name__)

REFUSED = Counter(
    "chainsleuth_http_refused",
    "Connections and requests our HTTP servers refused or dropped, by server and reason",
    ["server", "reason"],
    registry=REGISTRY,
)
LOG_EVERY_SECONDS = 60.0


class Refusals:
    """The refusals of one server. The first refusal is logged at once; later ones at most every `every` seconds,
    as one line with the counts by reason since the line before."""

    def __init__(self, server: str, every: float = LOG_EVERY_SECONDS) -> None:
        self.server = server
        self.every = every
        self._unlogged: Tally[str] = Tally()
        self._next_line = 0.0

    def count(self, reason: str) -> None:
        REFUSED.labels(server=self.server, reason=reason).inc()
        self._unlogged[reason] += 1
        now = time.monotonic()
        if now < self._next_line:
            return
        self._next_line = now + self.every
        summary = ", ".join(f"{n} {reason}" for reason, n in sorted(self._unlogged.items()))
        self._unlogged.clear()
        log.warning("http %s: refused %s (a line at most every %.0f s)", self.server, summary, self.every)

    def total(self, reason: str) -> float:
        """How many refusals of this reason this process counted (for tests and /status)."""
        sample = REGISTRY.get_sample_value("chainsleuth_http_refused_total", {"server": self.server, "reason": reason})
        return sample or 0.0
