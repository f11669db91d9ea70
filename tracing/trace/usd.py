"""USD of what a trace carried: each transfer valued on its own UTC day, then summed per address and asset.

A sum over transfers some of which had no price for their day is marked partial (a lower bound), never filled
in from another day. Without a `Trace.valuation` nothing is priced.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from decimal import Decimal

from tracing.chain.amounts import UsdSum
from tracing.chain.prices import STABLE_KEYS, day_of, price_key
from tracing.trace.flows import Asset
from tracing.trace.model import Trace, TraceEdge
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
    return received_with_usd(trace, model, only)[1]


def received_with_usd(
    trace: Trace, model: TaintModel | None = None, only: Collection[str] | None = None
) -> tuple[Mapping[str, Mapping[Asset, int]], dict[str, dict[Asset, UsdSum]]]:
    """(what each address in `only` received of the traced funds under `model`, per asset; its USD, each carrying
    transfer valued on its day), from one propagation of the taint."""
    model = model or trace.params.model
    if not priceable(trace):
        return trace.received_under(model, only=only), {}
    wanted = [node.address for node in trace.nodes[1:]] if only is None else list(only)
    received: dict[str, dict[Asset, int]] = {}
    raw: dict[tuple[str, Asset, int | None, int], int] = {}  # summed per day first: one Decimal product per day
    for far, token, decimals, timestamp, carried in trace.received_by_day(model, wanted):
        mine = received.setdefault(far, {})
        mine[token] = mine.get(token, 0) + carried
        key = (far, token, decimals, day_of(timestamp))
        raw[key] = raw.get(key, 0) + carried
    found: dict[str, dict[Asset, UsdSum]] = {}
    for (far, token, decimals, day), value in raw.items():
        found.setdefault(far, {}).setdefault(token, UsdSum()).add(_usd(trace, token, decimals, day, value))
    return received, found


def usd_moved(trace: Trace) -> dict[Asset, UsdSum]:
    """USD of what the root moved in the trace direction (its transfers the trace followed, each on its day).
    Partial where the trace followed less than the root's total of that asset (filters, fan-out caps)."""
    if not priceable(trace):
        return {}
    raw: dict[tuple[Asset, int | None, int], int] = {}
    followed: dict[Asset, int] = {}
    for token, decimals, timestamp, value in trace.first_hop_by_day():
        key = (token, decimals, day_of(timestamp))
        raw[key] = raw.get(key, 0) + value
        followed[token] = followed.get(token, 0) + value
    found: dict[Asset, UsdSum] = {}
    for (token, decimals, day), value in raw.items():
        found.setdefault(token, UsdSum()).add(_usd(trace, token, decimals, day, value))
    for asset, total in trace.totals_of(trace.root).items():
        if followed.get(asset, 0) < total:
            found.setdefault(asset, UsdSum()).unpriced = True
    return found


def _usd(trace: Trace, token: Asset, decimals: int | None, day: int, value: int) -> Decimal | None:
    assert trace.valuation is not None
    per_raw = trace.valuation.per_raw(token, decimals, day)
    return None if per_raw is None else per_raw * value


def days_wanted(trace: Trace, *, every_transfer: bool) -> dict[str, set[int]]:
    """Per price key, the UTC days an answer about the trace values: every transfer's (a trace reply and its CSV),
    or only those of the root's transfers and of the funds reaching labelled addresses (a risk report: read from
    a compact trace without materialising it)."""
    chain = trace.chain
    needs: dict[str, set[int]] = {}
    if every_transfer:
        for edge in trace.edges:
            needs.setdefault(price_key(chain, edge.token), set()).add(day_of(edge.timestamp))
        return needs
    for token, _, timestamp, _ in trace.first_hop_by_day():
        needs.setdefault(price_key(chain, token), set()).add(day_of(timestamp))
    labelled = [node.address for node in trace.labelled]
    if labelled:
        for _, token, _, timestamp, _ in trace.received_by_day(trace.params.model, labelled):
            needs.setdefault(price_key(chain, token), set()).add(day_of(timestamp))
    return needs


def token_meta(trace: Trace) -> dict[Asset, tuple[int | None, str | None]]:
    """The trace's tokens with (decimals, symbol), completed from the valuation's token metadata."""
    meta = trace.token_meta()
    if trace.valuation is None:
        return meta
    found = {token: trace.valuation.meta(token, *meta.get(token, (None, None))) for token in meta}
    found[None] = trace.valuation.meta(None)  # the native coin's decimals and symbol, for its amounts
    return found
