"""Operations: watchlists and their rules (`watch`), the chain watcher (`watcher`), alerts, incidents with their
on-call roster and escalation loop, the outbox of chat messages, the ops monitor and the clock they all share.

Other wings import from here (`from tracing.monitor import WatchBook`), not from the modules."""

from tracing.monitor.actor import SYSTEM, Actor
from tracing.monitor.alerts import (
    Alert,
    AlertBook,
    AlertKind,
    AlertStatus,
    Direction,
    PoisonReason,
    looks_alike,
    poisoning,
    record_alert,
    retro_alert_hook,
    retro_alerts,
    set_status,
)
from tracing.monitor.clock import Clock, ManualClock, SystemClock, sleep_or_stop
from tracing.monitor.counters import DeliveryOutcome, OpsCount, ops_counts
from tracing.monitor.escalation import Escalation, Escalator
from tracing.monitor.incidents import (
    DEFAULT_WINDOW,
    Disposition,
    Incident,
    IncidentDesk,
    IncidentEvent,
    IncidentState,
    InvalidTransition,
)
from tracing.monitor.oncall import EscalationPolicy, OnCall, OnCallBook
from tracing.monitor.ops import OpsMonitor, OpsPolicy, parse_ops_chat
from tracing.monitor.outbox import (
    Outbox,
    OutboxItem,
    OutboxKind,
    OutboxStats,
    OutboxStatus,
    SentMessage,
    enqueue,
    outbox_stats,
)
from tracing.monitor.watch import Match, Watch, WatchBook, WatchMatcher, evaluate, parse_min_amount
from tracing.monitor.watcher import (
    ChainFeed,
    ChainStatus,
    InvestigatorRisk,
    LabelRisk,
    RiskReporter,
    Step,
    Watcher,
    watch_chains,
    watch_status,
)

__all__ = [
    "Actor",
    "Alert",
    "AlertBook",
    "AlertKind",
    "AlertStatus",
    "ChainFeed",
    "ChainStatus",
    "Clock",
    "DEFAULT_WINDOW",
    "DeliveryOutcome",
    "Direction",
    "Disposition",
    "Escalation",
    "EscalationPolicy",
    "Escalator",
    "Incident",
    "IncidentDesk",
    "IncidentEvent",
    "IncidentState",
    "InvalidTransition",
    "InvestigatorRisk",
    "LabelRisk",
    "ManualClock",
    "Match",
    "OnCall",
    "OnCallBook",
    "OpsCount",
    "OpsMonitor",
    "OpsPolicy",
    "Outbox",
    "OutboxItem",
    "OutboxKind",
    "OutboxStats",
    "OutboxStatus",
    "PoisonReason",
    "RiskReporter",
    "SYSTEM",
    "SentMessage",
    "Step",
    "SystemClock",
    "Watch",
    "WatchBook",
    "WatchMatcher",
    "Watcher",
    "enqueue",
    "evaluate",
    "looks_alike",
    "ops_counts",
    "outbox_stats",
    "parse_min_amount",
    "parse_ops_chat",
    "poisoning",
    "record_alert",
    "retro_alert_hook",
    "retro_alerts",
    "set_status",
    "sleep_or_stop",
    "watch_chains",
    "watch_status",
]
