"""What each taint model traced in a comparison (`--model compare`): the traced funds its trace brought to where it
ended, in units and USD on each transfer's day."""

from __future__ import annotations

from tracing.chain.amounts import UsdSum
from tracing.risk.exposure import amounts_of
from tracing.risk.report import Amount
from tracing.trace.flows import Asset
from tracing.trace.model import Trace
from tracing.trace.usd import received_with_usd, token_meta


def end_amounts(trace: Trace) -> tuple[Amount, ...]:
    """The traced funds received, under the trace's own model, by the addresses where it ended (terminals, and
    addresses it followed nothing further from), summed per asset: what each model says reached the end of the
    trace. A USD sum is partial (a lower bound) where some transfer had no price for its day."""
    senders = {trace.near_far(edge)[0] for edge in trace.edges}
    terminals = [node.address for node in trace.nodes[1:] if node.address not in senders]
    if not terminals:
        return ()
    received, usd = received_with_usd(trace, only=terminals)
    values: dict[Asset, int] = {}
    sums: dict[Asset, UsdSum] = {}
    for address in terminals:
        for asset, value in received.get(address, {}).items():
            values[asset] = values.get(asset, 0) + value
            total = sums.setdefault(asset, UsdSum())
            priced = usd.get(address, {}).get(asset)
            if priced is None:
                total.unpriced = True
                continue
            if priced.usd is not None:
                total.add(priced.usd)
            total.unpriced = total.unpriced or priced.unpriced
    return amounts_of(values, token_meta(trace), sums if usd else None)
