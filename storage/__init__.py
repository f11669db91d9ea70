"""The store: settings, tables, sessions, locks, the audit log and migrations. Imports neither `tracing` nor `bot`."""

from storage.audit import AuditLog, audit_row
from storage.db import Database, StoreError, open_database, redact_url
from storage.locks import LeaderLock
from storage.models import (
    ANY_EVM,
    ButtonRow,
    IndexedRangeRow,
    KeyValueRow,
    LabelRow,
    LabelSetRow,
    PriceRow,
    RiskCheckRow,
    TokenRow,
    TransferRow,
    utcnow,
)
from storage.ops_models import (
    AlertRow,
    ChainCursor,
    EscalationPolicyRow,
    IncidentEventRow,
    IncidentRow,
    OnCallRow,
    OpsCounter,
    OutboxMessage,
    RecentBlock,
    WatchRow,
    begin_write,
)
from storage.settings import Settings, get_settings

__all__ = [
    "ANY_EVM",
    "AlertRow",
    "AuditLog",
    "ButtonRow",
    "ChainCursor",
    "Database",
    "EscalationPolicyRow",
    "IncidentEventRow",
    "IncidentRow",
    "IndexedRangeRow",
    "KeyValueRow",
    "LabelRow",
    "LabelSetRow",
    "LeaderLock",
    "OnCallRow",
    "OpsCounter",
    "OutboxMessage",
    "PriceRow",
    "RecentBlock",
    "RiskCheckRow",
    "Settings",
    "StoreError",
    "TokenRow",
    "TransferRow",
    "WatchRow",
    "audit_row",
    "begin_write",
    "get_settings",
    "open_database",
    "redact_url",
    "utcnow",
]
