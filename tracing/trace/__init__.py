"""Traces: following funds from one address over the transfers the index (or an explorer) holds.

Modules, each importing only those above it:

- `flows`: which of an address's transfers a trace follows (`FlowQuery`, `select_flows`), and `Asset`;
- `taint`: the taint models (haircut, poison) over a trace's transfers;
- `params`: what a trace asks (`TraceParams`, `TraceDirection`);
- `coverage`: what an analysis covered (`Coverage`), and the wording of a trace's cuts and gaps;
- `graph`: the in-memory transfer graph (`TransferGraph`);
- `model`: what a trace answers (`Trace`, `TraceNode`, `TraceEdge`, `Cut`, `Stop`);
- `sources`: where transfers and labels come from (graph, SQL index, explorer, layered);
- `label_cache`, `cache`: labels and graphs kept in memory and fresh;
- `compiled`: the compiled walk (`_walk.c`) and its compact result;
- `walk`: `trace_funds`, the walk's entry, and the Python reference walk.
"""

from tracing.trace.cache import GraphCache
from tracing.trace.coverage import INCOMPLETE_HISTORY, Coverage
from tracing.trace.flows import Asset, FlowQuery, FlowRequest, Flows, select_flows
from tracing.trace.graph import TransferGraph
from tracing.trace.label_cache import LabelCache, NodeMarks
from tracing.trace.model import Cut, Stop, TaintComparison, Trace, TraceEdge, TraceNode, with_coverage
from tracing.trace.params import DEFAULT_HOPS, MAX_HOPS, TraceDirection, TraceParams
from tracing.trace.sources import (
    ExplorerSource,
    GraphSource,
    IndexSource,
    LabelLookup,
    LayeredSource,
    TransferSource,
)
from tracing.trace.taint import Taint, TaintModel, compute_taint
from tracing.trace.walk import trace_funds

__all__ = [
    "Asset",
    "Coverage",
    "Cut",
    "DEFAULT_HOPS",
    "ExplorerSource",
    "FlowQuery",
    "FlowRequest",
    "Flows",
    "GraphCache",
    "GraphSource",
    "INCOMPLETE_HISTORY",
    "IndexSource",
    "LabelCache",
    "LabelLookup",
    "LayeredSource",
    "MAX_HOPS",
    "NodeMarks",
    "Stop",
    "Taint",
    "TaintComparison",
    "TaintModel",
    "Trace",
    "TraceDirection",
    "TraceEdge",
    "TraceNode",
    "TraceParams",
    "TransferGraph",
    "TransferSource",
    "compute_taint",
    "select_flows",
    "trace_funds",
    "with_coverage",
]
