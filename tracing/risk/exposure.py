"""Exposure: the labelled entities an address's funds reached (outgoing) or came from (incoming), how much, how
many hops away, what share of its volume, and the transfers that show it; and the risk report built from the
traces in both directions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from tracing.chain.amounts import UsdSum
from tracing.labels import Label
from tracing.risk.report import Amount, Direction, Exposure, RiskReport, traced_report
from tracing.trace.coverage import Coverage
from tracing.trace.flows import Asset
from tracing.trace.model import Trace
from tracing.trace.params import TraceDirection
from tracing.trace.taint import TaintModel
from tracing.trace.usd import received_with_usd, token_meta, usd_moved

DEMO_SOURCE = "demo"
DEMO_NOTE = (
    "The demo data (a Dune export) has no transaction hashes: the ids shown (dune:…) are synthetic row ids, "
    "not on-chain hashes; check the transfers on-chain before relying on them."
)


def amounts_of(
    values: Mapping[Asset, int],
    meta: Mapping[Asset, tuple[int | None, str | None]],
    usd: Mapping[Asset, UsdSum] | None = None,
) -> tuple[Amount, ...]:
    """Amounts per asset, the native coin first, then tokens by address; with their USD where `usd` has it."""
    ordered = sorted(values.items(), key=lambda item: (item[0] is not None, item[0] or ""))
    result = []
    for asset, value in ordered:
        decimals, symbol = (18, None) if asset is None else meta.get(asset, (None, None))
        priced = (usd or {}).get(asset)
        result.append(
            Amount(
                value=value,
                token=asset,
                symbol=symbol,
                decimals=decimals,
                usd=priced.usd if priced is not None else None,
                usd_partial=priced.partial if priced is not None else False,
            )
        )
    return tuple(result)


def trace_amounts(trace: Trace, address: str, model: TaintModel | None = None) -> tuple[Amount, ...]:
    """What `address` received of the traced funds under `model` (default: the trace's), in units and USD."""
    received, usd = received_with_usd(trace, model, only=[address])
    return amounts_of(received.get(address, {}), token_meta(trace), usd.get(address))


def share_of(amounts: Mapping[Asset, int], volume: Mapping[Asset, int]) -> float | None:
    """The exposure's share of the address's volume: per asset, and the largest when several assets are involved
    (raw amounts of different assets are never added). None when the volume of those assets is unknown."""
    ratios = [value / volume[asset] for asset, value in amounts.items() if volume.get(asset)]
    return min(1.0, max(ratios)) if ratios else None


def volume_of(trace: Trace) -> tuple[Amount, ...]:
    """What the traced address moved in the trace direction within the trace window."""
    return amounts_of(trace.totals_of(trace.root), token_meta(trace), usd_moved(trace))


def exposures_from(trace: Trace, model: TaintModel | None = None) -> list[Exposure]:
    """One exposure per labelled address reached and label category, with amounts under `model` (default: the
    trace's own model)."""
    labelled = trace.labelled
    if not labelled:
        return []
    taint, usd = received_with_usd(trace, model, only=[node.address for node in labelled])
    meta = token_meta(trace)
    volume = trace.totals_of(trace.root)
    direction = Direction.OUTGOING if trace.direction is TraceDirection.OUT else Direction.INCOMING
    found: list[Exposure] = []
    for node in labelled:
        path = trace.path_to(node.address)
        addresses = (trace.root, *(trace.near_far(edge)[1] for edge in path))
        hashes = tuple(edge.tx_hash for edge in path)
        received = taint.get(node.address, {})
        amounts, share = amounts_of(received, meta, usd.get(node.address)), share_of(received, volume)
        note = DEMO_NOTE if any(edge.source == DEMO_SOURCE for edge in path) else ""
        for category in node.categories:
            labels = tuple(label for label in node.labels if label.category is category and label.active)
            found.append(
                Exposure(
                    category=category,
                    direction=direction,
                    hops=node.hop,
                    counterparty=node.address,
                    labels=labels,
                    amounts=amounts,
                    share=share,
                    path=hashes,
                    path_addresses=addresses,
                    evidence_note=note,
                )
            )
    return found


def merged_coverage(outgoing: Trace, incoming: Trace, **extra: object) -> Coverage:
    """One coverage statement for a report built from an outgoing and an incoming trace."""
    base = outgoing.coverage
    sources = tuple(dict.fromkeys(outgoing.coverage.sources + incoming.coverage.sources))
    if any(s.startswith("local index (") for s in sources):  # the bare name adds nothing to the detailed one
        sources = tuple(s for s in sources if s != "local index")
    cuts = tuple(f"outgoing: {c}" for c in outgoing.coverage.cuts) + tuple(
        f"incoming: {c}" for c in incoming.coverage.cuts
    )
    gaps = tuple(f"outgoing: {g}" for g in outgoing.coverage.gaps) + tuple(
        f"incoming: {g}" for g in incoming.coverage.gaps
    )
    merged = replace(
        base,
        sources=sources,
        cuts=cuts,
        gaps=gaps,
        transfers=outgoing.coverage.transfers + incoming.coverage.transfers,
    )
    return replace(merged, **extra)  # type: ignore[arg-type]


def report_from_traces(
    address: str, chain: str, labels: list[Label], outgoing: Trace, incoming: Trace, coverage: Coverage
) -> RiskReport:
    """The risk report of `address` from its outgoing and incoming traces."""
    exposures = exposures_from(outgoing) + exposures_from(incoming)
    return traced_report(address, chain, labels, exposures, coverage, volume_of(outgoing), volume_of(incoming))
