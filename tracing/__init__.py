"""Chain data, labels, traces, risk and monitoring: the public surface `bot` (and `bench`) use.

Wings, each importing only those listed before it:

- `chain/`: addresses, chain configuration, transfers and where they come from (JSON-RPC, explorers, the index,
  ethereum-etl exports, demo data);
- `labels/`: labels with their provenance, the bundled sets and the importers;
- `trace/`: the transfer graph and the walk that follows funds over it, taint models, coverage;
- `risk/`: risk reports, exposure and the outputs (JSON, CSV, pictures) of traces and reports;
- `monitor/`: watchlists, the chain watcher, alerts, incidents, the outbox and the ops monitor;
- `investigator`: the facade that answers risk and trace questions for the bot and the CLI.

`errors` holds every error a user can cause. Nothing here imports `bot`; `storage` is the only package below.
"""

from tracing.chain.address import Family, checksum, family_of, parse_address, short
from tracing.chain.amounts import NO_USD, TransferPrices, UsdLookup, Valuation, amount_text, usd_text
from tracing.chain.btc_rpc import CoreRpcSource
from tracing.chain.chainref import chain_arg
from tracing.chain.config import (
    WELL_KNOWN,
    ChainConfig,
    ChainConfigError,
    adhoc_chain,
    chain_for_address,
    configured_chains,
    get_chain,
    load_chains,
    use_chain_variables,
)
from tracing.chain.demo import RONIN_EXPLOITER, ensure_demo_data, load_demo, remove_demo
from tracing.chain.etl_import import EtlFileKind, EtlFileResult, EtlImportResult, import_etl_files
from tracing.chain.index import TransferIndex
from tracing.chain.indexer import BLOCKS_PER_REQUEST, CONCURRENCY, Indexer, IndexReport, fetch_range
from tracing.chain.prices import PriceApi, PriceBook, PriceImport, PriceTable, import_price_csv, price_api_from_settings
from tracing.chain.rpc import RpcSource
from tracing.chain.threshold import Threshold, foreign_digits, parse_threshold
from tracing.chain.tokens import TokenBook, TokenInfo
from tracing.chain.transfer import Direction, Transfer, TransferKind, format_amount
from tracing.chain.utxo_store import UtxoStore
from tracing.errors import InvalidArgument, NotAllowed, NotFound, SourceError, UserError
from tracing.investigator import Asker, Investigator, configured_explorers, configured_token_readers
from tracing.labels import (
    BUNDLED_PREFIX,
    Category,
    Label,
    LabelBook,
    LabelImport,
    LabelSet,
    Reader,
    ensure_bundled_labels,
    is_bundled,
    load_formats,
    programs_of,
)
from tracing.monitor import (
    Actor,
    Alert,
    AlertBook,
    AlertKind,
    AlertStatus,
    ChainFeed,
    Clock,
    Disposition,
    EscalationNotice,
    EscalationPolicy,
    Escalator,
    Incident,
    IncidentDesk,
    IncidentScope,
    IncidentState,
    InvestigatorRisk,
    Notice,
    NoticeError,
    OnCall,
    OnCallBook,
    OpsCount,
    OpsMonitor,
    OpsNotice,
    OpsPolicy,
    Outbox,
    OutboxItem,
    OutboxKind,
    OutboxStatus,
    SentMessage,
    SystemClock,
    Watch,
    WatchBook,
    WatchMatcher,
    ops_counts,
    outbox_stats,
    parse_min_amount,
    parse_ops_chat,
    record_alert,
    retro_alert_hook,
    sleep_or_stop,
    watch_chains,
    watch_status,
)
from tracing.monitor.silence import Silence, silence_of, silent_chains
from tracing.risk.compared import end_amounts
from tracing.risk.exposure import amounts_of, trace_amounts
from tracing.risk.outputs import (
    PictureUnavailable,
    risk_csv,
    risk_json,
    to_json_text,
    trace_csv,
    trace_json,
    trace_png,
    trace_svg,
    trace_words,
)
from tracing.risk.policy import DEFAULT_POLICY, RiskPolicy, day_words, lead_words
from tracing.risk.report import Amount, Exposure, Level, RiskReport, Rule, Timing, Total, amounts_words
from tracing.trace.cache import GraphCache
from tracing.trace.compare import Disagreement, ModelComparison, compare_models
from tracing.trace.compiled import available as compiled_walk_available
from tracing.trace.coverage import Coverage
from tracing.trace.graph import TransferGraph
from tracing.trace.label_cache import LabelCache
from tracing.trace.model import Stop, Trace, TraceNode
from tracing.trace.params import DEFAULT_DUST_USD, DEFAULT_HOPS, MAX_HOPS, STOPS, TraceParams
from tracing.trace.sources import GraphSource
from tracing.trace.taint import TaintModel
from tracing.trace.utxo import DEFAULT_HEURISTICS, Heuristics
from tracing.trace.value import PegPrices, UsdPrices
from tracing.trace.walk import trace_funds

__all__ = [
    "DEFAULT_HEURISTICS",
    "Heuristics",
    "Family",
    "family_of",
    "chain_for_address",
    "configured_chains",
    "use_chain_variables",
    "Threshold",
    "foreign_digits",
    "parse_threshold",
    "Actor",
    "Alert",
    "AlertBook",
    "AlertKind",
    "AlertStatus",
    "Amount",
    "DEFAULT_POLICY",
    "Asker",
    "BLOCKS_PER_REQUEST",
    "BUNDLED_PREFIX",
    "CONCURRENCY",
    "Category",
    "ChainConfig",
    "ChainConfigError",
    "ChainFeed",
    "Clock",
    "Coverage",
    "DEFAULT_DUST_USD",
    "DEFAULT_HOPS",
    "Direction",
    "Disagreement",
    "Disposition",
    "EscalationNotice",
    "EscalationPolicy",
    "Escalator",
    "EtlFileKind",
    "EtlFileResult",
    "EtlImportResult",
    "Exposure",
    "GraphCache",
    "GraphSource",
    "Incident",
    "IncidentDesk",
    "IncidentScope",
    "IncidentState",
    "IndexReport",
    "Indexer",
    "InvalidArgument",
    "Investigator",
    "InvestigatorRisk",
    "Label",
    "LabelBook",
    "LabelCache",
    "LabelImport",
    "LabelSet",
    "Level",
    "RiskPolicy",
    "Rule",
    "Timing",
    "Total",
    "MAX_HOPS",
    "ModelComparison",
    "NO_USD",
    "NotAllowed",
    "NotFound",
    "Notice",
    "NoticeError",
    "OnCall",
    "OnCallBook",
    "OpsCount",
    "OpsMonitor",
    "OpsNotice",
    "OpsPolicy",
    "Outbox",
    "OutboxItem",
    "OutboxKind",
    "OutboxStatus",
    "PegPrices",
    "PictureUnavailable",
    "PriceApi",
    "PriceBook",
    "PriceImport",
    "PriceTable",
    "RONIN_EXPLOITER",
    "Reader",
    "RiskReport",
    "RpcSource",
    "CoreRpcSource",
    "UtxoStore",
    "STOPS",
    "SentMessage",
    "SourceError",
    "Stop",
    "SystemClock",
    "TaintModel",
    "TokenBook",
    "TokenInfo",
    "Trace",
    "TraceNode",
    "TraceParams",
    "Transfer",
    "TransferGraph",
    "TransferIndex",
    "TransferKind",
    "TransferPrices",
    "UsdLookup",
    "UsdPrices",
    "UserError",
    "Valuation",
    "WELL_KNOWN",
    "Watch",
    "WatchBook",
    "WatchMatcher",
    "adhoc_chain",
    "amount_text",
    "amounts_of",
    "amounts_words",
    "day_words",
    "lead_words",
    "chain_arg",
    "checksum",
    "compare_models",
    "compiled_walk_available",
    "configured_explorers",
    "configured_token_readers",
    "ensure_bundled_labels",
    "ensure_demo_data",
    "fetch_range",
    "format_amount",
    "get_chain",
    "import_etl_files",
    "import_price_csv",
    "is_bundled",
    "load_chains",
    "load_demo",
    "load_formats",
    "ops_counts",
    "outbox_stats",
    "parse_address",
    "parse_min_amount",
    "parse_ops_chat",
    "price_api_from_settings",
    "programs_of",
    "record_alert",
    "remove_demo",
    "retro_alert_hook",
    "risk_csv",
    "risk_json",
    "short",
    "sleep_or_stop",
    "to_json_text",
    "end_amounts",
    "trace_amounts",
    "trace_csv",
    "trace_funds",
    "trace_json",
    "trace_png",
    "trace_svg",
    "trace_words",
    "usd_text",
    "watch_chains",
    "watch_status",
    "Silence",
    "silence_of",
    "silent_chains",
]
