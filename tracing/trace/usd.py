"""USD of what a trace carried: each transfer valued on its own UTC day, then summed per address and asset.

A sum over transfers some of which had no price for their day is marked partial (a lower bound), never filled
in from another day. Without a `Trace.valuation` nothing is priced.
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal

from tracing.chain.amounts import UsdSum
from tracing.chain.prices import DAY, STABLE_KEYS, day_of, price_key
from tracing.trace.graph import Asset
from tracing.trace.model import Trace, TraceDirection, TraceEdge
from tracing.trace.taint import TaintModel


def priceable(trace: Trace) -> bool:
    """Whether any amount of the trace can have a USD value: prices are stored, or it moved a stablecoin. When not,
    every amount says "no USD price" without walking the transfers (the risk report's hot path)."""
    valuation = trace.valuation
    if valuation is None:
        return False
    if valuation.prices.prices:
        return True
    return any(price_key(trace.chain, token) in STABLE_KEYS for token in trace.token_meta() if token is not None)


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
    if not priceable(trace):
        return {}
    carried_by = trace.taint_under(model or trace.params.model).edges
    wanted = set(only) if only is not None else None
    outward = trace.direction is TraceDirection.OUT
    raw: dict[tuple[str, Asset, int | None, int], int] = {}  # summed per day first: one Decimal product per day
    for index, edge in enumerate(trace.edges):
        carried = carried_by[index]
        if not carried:
            continue
        far = edge.to_addr if outward else edge.from_addr
        if wanted is not None and far not in wanted:
            continue
        key = (far, edge.token, edge.decimals, day_of(edge.timestamp))
        raw[key] = raw.get(key, 0) + carried
    found: dict[str, dict[Asset, UsdSum]] = {}
    for (far, token, decimals, day), value in raw.items():
        found.setdefault(far, {}).setdefault(token, UsdSum()).add(_usd(trace, token, decimals, day, value))
    return found


def usd_moved(trace: Trace, address: str) -> dict[Asset, UsdSum]:
    """USD of what `address` moved in the trace direction (its transfers the trace followed, each on its day).
    Partial where the trace followed less than the address's total of that asset (filters, fan-out caps)."""
    if not priceable(trace):
        return {}
    outward = trace.direction is TraceDirection.OUT
    raw: dict[tuple[Asset, int | None, int], int] = {}
    followed: dict[Asset, int] = {}
    for edge in trace.edges:
        if (edge.from_addr if outward else edge.to_addr) != address:
            continue
        key = (edge.token, edge.decimals, day_of(edge.timestamp))
        raw[key] = raw.get(key, 0) + edge.value
        followed[edge.token] = followed.get(edge.token, 0) + edge.value
    found: dict[Asset, UsdSum] = {}
    for (token, decimals, day), value in raw.items():
        found.setdefault(token, UsdSum()).add(_usd(trace, token, decimals, day, value))
    for asset, total in trace.totals_of(address).items():
        if followed.get(asset, 0) < total:
            found.setdefault(asset, UsdSum()).unpriced = True
    return found


def _usd(trace: Trace, token: Asset, decimals: int | None, day: int, value: int) -> Decimal | None:
    assert trace.valuation is not None
    return trace.valuation.usd(token, value, day * DAY, decimals)


def token_meta(trace: Trace) -> dict[Asset, tuple[int | None, str | None]]:
    """The trace's tokens with (decimals, symbol), completed from the valuation's token metadata."""
    meta = trace.token_meta()
    if trace.valuation is None:
        return meta
    return {token: trace.valuation.meta(token, *meta.get(token, (None, None))) for token in meta}
