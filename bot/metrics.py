"""Prometheus metrics, one registry per process, served with /healthz on a loopback port (see `bot.health`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

BLOCKS_PROCESSED = Counter(
    "chainsleuth_blocks_processed", "Blocks processed by the watcher", ["chain"], registry=REGISTRY
)
WATCHER_LAG = Gauge("chainsleuth_watcher_lag_blocks", "Head minus cursor, per chain", ["chain"], registry=REGISTRY)
ALERTS = Counter("chainsleuth_alerts", "Alerts created", ["chain", "rule"], registry=REGISTRY)
OUTBOX_DEPTH = Gauge("chainsleuth_outbox_depth", "Messages waiting in the outbox", registry=REGISTRY)
DELIVERIES = Counter("chainsleuth_deliveries", "Chat deliveries by outcome", ["platform", "outcome"], registry=REGISTRY)
RATE_LIMITED = Counter("chainsleuth_rate_limited", "429 answers from chat APIs", ["platform"], registry=REGISTRY)
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
