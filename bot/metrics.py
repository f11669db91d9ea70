"""Prometheus metrics, served with /healthz on a loopback port (see `bot.health`).

Two kinds of series. This process's own work (commands) is counted in `REGISTRY` as it happens. The work of the
watcher and the notifier, which may run in other processes, is counted in the store by the code that does it
(`tracing.OpsCount`: blocks, alerts, delivery outcomes, 429s) and read with the watcher cursors and the outbox at
scrape time by `StoreMetrics`, so every process's /metrics shows the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from storage import Database
from tracing import OpsCount, ops_counts, outbox_stats, watch_status

REGISTRY = CollectorRegistry(auto_describe=True)

COMMANDS = Counter("chainsleuth_commands", "Commands handled by outcome", ["command", "outcome"], registry=REGISTRY)
COMMAND_SECONDS = Histogram(
    "chainsleuth_command_seconds",
    "Time from a command's arrival to its reply",
    ["command"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
STORE_FAULT_COUNT = Counter(
    "chainsleuth_store_faults",
    "Writes the store refused (disk full, read-only, locked past the timeout)",
    ["kind"],
    registry=REGISTRY,
)
UNAUDITED_COMMANDS = Counter(
    "chainsleuth_unaudited_commands", "Commands whose audit row could not be written", registry=REGISTRY
)


class StoreMetrics(Collector):
    """The watcher's and the notifier's series, read from the store at each scrape."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        blocks, lag, alerts, depth, deliveries, rate_limited = self._families()
        for (chain,), value in ops_counts(self.db, OpsCount.BLOCKS).items():
            blocks.add_metric([chain], value)
        for status in watch_status(self.db):
            if status.lag is not None:
                lag.add_metric([status.chain], status.lag)
        for (chain, rule), value in ops_counts(self.db, OpsCount.ALERTS).items():
            alerts.add_metric([chain, rule], value)
        stats = outbox_stats(self.db, failures=0)
        depth.add_metric([], stats.pending + stats.sending)
        for (platform, outcome), value in ops_counts(self.db, OpsCount.DELIVERIES).items():
            deliveries.add_metric([platform, outcome], value)
        for (platform,), value in ops_counts(self.db, OpsCount.RATE_LIMITED).items():
            rate_limited.add_metric([platform], value)
        yield from (blocks, lag, alerts, depth, deliveries, rate_limited)

    @staticmethod
    def _families() -> tuple[
        CounterMetricFamily,
        GaugeMetricFamily,
        CounterMetricFamily,
        GaugeMetricFamily,
        CounterMetricFamily,
        CounterMetricFamily,
    ]:
        return (
            CounterMetricFamily("chainsleuth_blocks_processed", "Blocks processed by the watcher", labels=["chain"]),
            GaugeMetricFamily("chainsleuth_watcher_lag_blocks", "Head minus cursor, per chain", labels=["chain"]),
            CounterMetricFamily("chainsleuth_alerts", "Alerts created", labels=["chain", "rule"]),
            GaugeMetricFamily("chainsleuth_outbox_depth", "Messages waiting in the outbox"),
            CounterMetricFamily("chainsleuth_deliveries", "Chat deliveries by outcome", labels=["platform", "outcome"]),
            CounterMetricFamily("chainsleuth_rate_limited", "429 answers from chat APIs", labels=["platform"]),
        )


def store_registry(db: Database) -> CollectorRegistry:
    """A registry of the store's series for one database (the health server exports it next to `REGISTRY`)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(StoreMetrics(db))
    return registry
