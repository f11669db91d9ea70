"""Traces: following funds from one address over the transfers the index (or an explorer) holds.

Modules, each importing only those above it:

- `flows`: which of an address's transfers a trace reads (`FlowQuery`, `select_flows`, `History`), and `Asset`;
- `taint`: the taint models (haircut, poison) over a trace's transfers;
- `params`: what a trace asks (`TraceParams`, `Direction`, the default stops and dust floor);
- `coverage`: what an analysis covered (`Coverage`), and the wording of a trace's cuts and gaps;
- `graph`: the in-memory transfer graph (`TransferGraph`);
- `model`: what a trace answers (`Trace`, `TraceNode`, `TraceEdge`, `Cut`, `Stop`);
- `sources`: where transfers and labels come from (graph, SQL index, explorer, layered);
- `label_cache`, `cache`: labels and graphs kept in memory and fresh;
- `value`: the value-aware walk's ledger per address and its follow rule (dust floor, share of the traced funds);
- `compiled`: the compiled walk (`_walk.c`) and its compact result;
- `walk`: `trace_funds`, the walk's entry: the value-aware walk, the Python reference graph walk;
- `compare`: one trace under every taint model (`compare_models`);
- `utxo/`: the bitcoin heuristics over `UtxoTx` (change, CoinJoin, peel chains, clustering) and `Heuristics`, the
  settings saying which are on.
"""

from tracing.trace.cache import GraphCache
from tracing.trace.compare import Disagreement, ModelComparison, compare_models
from tracing.trace.coverage import INCOMPLETE_HISTORY, Coverage
from tracing.trace.flows import Asset, FlowQuery, FlowRequest, Flows, History, HistoryRequest, select_flows
from tracing.trace.graph import TransferGraph
from tracing.trace.label_cache import LabelCache, NodeMarks
from tracing.trace.model import Cut, Stop, TaintComparison, Trace, TraceEdge, TraceNode, with_coverage
from tracing.trace.params import (
    DEFAULT_DUST_USD,
    DEFAULT_FOLLOW_SHARE,
    DEFAULT_HOPS,
    MAX_HOPS,
    STOPS,
    Direction,
    TraceParams,
)
from tracing.trace.sources import (
    ExplorerSource,
    GraphSource,
    HistorySource,
    IndexSource,
    LabelLookup,
    LayeredSource,
    TransferSource,
)
from tracing.trace.taint import Taint, TaintModel, compute_taint
from tracing.trace.utxo import (
    DEFAULT_HEURISTICS,
    ChangeGuess,
    Cluster,
    Clustering,
    CoinJoin,
    Heuristic,
    Heuristics,
    PeelChain,
    cluster_addresses,
    detect_coinjoin,
    find_change,
    follow_peel,
)
from tracing.trace.value import Followed, FollowedBy, PegPrices, UsdPrices
from tracing.trace.walk import trace_funds

__all__ = [
    "Asset",
    "ChangeGuess",
    "Cluster",
    "Clustering",
    "CoinJoin",
    "DEFAULT_HEURISTICS",
    "Heuristic",
    "Heuristics",
    "PeelChain",
    "cluster_addresses",
    "detect_coinjoin",
    "find_change",
    "follow_peel",
    "compare_models",
    "compute_taint",
    "Coverage",
    "Cut",
    "Followed",
    "FollowedBy",
    "DEFAULT_DUST_USD",
    "DEFAULT_FOLLOW_SHARE",
    "DEFAULT_HOPS",
    "Disagreement",
    "ExplorerSource",
    "FlowQuery",
    "FlowRequest",
    "Flows",
    "GraphCache",
    "GraphSource",
    "History",
    "HistoryRequest",
    "HistorySource",
    "INCOMPLETE_HISTORY",
    "IndexSource",
    "LabelCache",
    "LabelLookup",
    "LayeredSource",
    "MAX_HOPS",
    "ModelComparison",
    "NodeMarks",
    "PegPrices",
    "select_flows",
    "Stop",
    "STOPS",
    "Taint",
    "TaintComparison",
    "TaintModel",
    "Trace",
    "trace_funds",
    "Direction",
    "TraceEdge",
    "TraceNode",
    "TraceParams",
    "TransferGraph",
    "TransferSource",
    "UsdPrices",
    "with_coverage",
]
