"""USD of what a trace carried: each transfer valued on its own UTC day, then summed per address and asset.

A sum over transfers some of which had no price for their day is marked partial (a lower bound), never filled
in from another day. Without a `Trace.valuation` nothing is priced.
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal

from tracing.chain.amounts import UsdSum
from tracing.trace.graph import Asset
from tracing.trace.model import Trace, TraceEdge
from tracing.trace.taint import TaintModel


def edge_usd(trace: Trace, edge: TraceEdge, value: int | None = None) -> Decimal | None:
    """USD of a transfer of the trace (or of `value` raw units of it, e.g. the tainted part) on its day."""
    if trace.valuation is None:
        return None
    return trace.valuation.usd(edge.token, edge.value if value is None else value, edge.timestamp, edge.decimals)


def usd_received(
    trace: Trace, model: TaintModel | None = None, only: Collection[str] | None = None
) -> dict[str, dict[Asset, UsdSum]]:
    """Per address (those in `only`, default all) and asset: USD of the traced funds it received under `model`,
    each carrying transfer valued on its day."""
    if trace.valuation is None:
        return {}
    taint = trace.taint_under(model or trace.params.model)
    wanted = set(only) if only is not None else None
    found: dict[str, dict[Asset, UsdSum]] = {}
    for index, edge in enumerate(trace.edges):
        carried = taint.edges[index]
        if not carried:
            continue
        far = trace.near_far(edge)[1]
        if wanted is not None and far not in wanted:
            continue
        found.setdefault(far, {}).setdefault(edge.token, UsdSum()).add(edge_usd(trace, edge, carried))
    return found


def usd_moved(trace: Trace, address: str) -> dict[Asset, UsdSum]:
    """USD of what `address` moved in the trace direction (its transfers the trace followed, each on its day).
    Partial where the trace followed less than the address's total of that asset (filters, fan-out caps)."""
    if trace.valuation is None:
        return {}
    found: dict[Asset, UsdSum] = {}
    followed: dict[Asset, int] = {}
    for edge in trace.edges:
        if trace.near_far(edge)[0] != address:
            continue
        found.setdefault(edge.token, UsdSum()).add(edge_usd(trace, edge))
        followed[edge.token] = followed.get(edge.token, 0) + edge.value
    for asset, total in trace.totals_of(address).items():
        if followed.get(asset, 0) < total:
            found.setdefault(asset, UsdSum()).unpriced = True
    return found


def token_meta(trace: Trace) -> dict[Asset, tuple[int | None, str | None]]:
    """The trace's tokens with (decimals, symbol), completed from the valuation's token metadata."""
    meta = trace.token_meta()
    if trace.valuation is None:
        return meta
    return {token: trace.valuation.meta(token, *meta.get(token, (None, None))) for token in meta}
