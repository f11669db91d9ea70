"""Exposure: the labelled entities an address's funds reached (outgoing) or came from (incoming), how much, how
many hops away, what share of its volume, and the transfers that show it; and the risk report built from the
traces in both directions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime

from tracing.chain.amounts import UsdSum
from tracing.chain.transfer import Direction
from tracing.labels import Category, Label
from tracing.risk.policy import DEFAULT_POLICY, RiskPolicy, assess
from tracing.risk.report import Amount, Exposure, RiskReport, Rule
from tracing.trace.coverage import Coverage
from tracing.trace.flows import Asset
from tracing.trace.model import Trace, TraceEdge
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
        decimals, symbol = meta.get(None, (18, None)) if asset is None else meta.get(asset, (None, None))
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


def exposures_from(
    trace: Trace, model: TaintModel | None = None, policy: RiskPolicy = DEFAULT_POLICY
) -> list[Exposure]:
    """One exposure per labelled address reached and label category, with amounts under `model` (default: the
    trace's own model). Counterparties of a category the policy does not weigh are service counterparties."""
    labelled = trace.labelled
    if not labelled:
        return []
    taint, usd = received_with_usd(trace, model, only=[node.address for node in labelled])
    meta = token_meta(trace)
    volume = trace.totals_of(trace.root)
    direction = trace.direction
    paths = {node.address: trace.path_to(node.address) for node in labelled}
    # the first arrival is the path's last transfer; the last arrival is read from every transfer only where it can
    # change the verdict: a dated label (listing, first seen) later than the first arrival (reading every transfer
    # would materialise a compact trace)
    later = {node.address for node in labelled if _dated_after(node.labels, paths[node.address])}
    dates = arrival_dates(trace, later) if later else {}
    found: list[Exposure] = []
    for node in labelled:
        path = paths[node.address]
        addresses = (trace.root, *(trace.near_far(edge)[1] for edge in path))
        hashes = tuple(edge.tx_hash for edge in path)
        passes_on = tuple(trace.passes_on(edge) for edge in path)
        received = taint.get(node.address, {})
        amounts, share = amounts_of(received, meta, usd.get(node.address)), share_of(received, volume)
        note = DEMO_NOTE if any(edge.source == DEMO_SOURCE for edge in path) else ""
        arrived = path[-1].timestamp if path else None
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
                    passes_on=passes_on if any(passes_on) else (),
                    evidence_note=note,
                    first_at=dates[node.address][0] if node.address in dates else arrived,
                    last_at=dates[node.address][1] if node.address in dates else arrived,
                    rule=Rule.GRADED if category in policy.weights else Rule.SERVICE_COUNTERPARTY,
                )
            )
    return found


def _dated_after(labels: tuple[Label, ...], path: tuple[TraceEdge, ...]) -> bool:
    """Whether a label of the address carries a date (listing, first seen) after the path's transfer to it."""
    if not path:
        return False
    day = datetime.fromtimestamp(path[-1].timestamp, UTC).date().isoformat()
    for label in labels:
        dates = [label.details.get("address_listed"), label.first_seen.isoformat() if label.first_seen else None]
        if any(isinstance(d, str) and d > day for d in dates):
            return True
    return False


def arrival_dates(trace: Trace, addresses: set[str]) -> dict[str, tuple[int, int]]:
    """For each of `addresses`, the first and last time a transfer the trace followed reached it."""
    found: dict[str, tuple[int, int]] = {}
    for edge in trace.edges:
        far = trace.near_far(edge)[1]
        if far in addresses:
            old = found.get(far)
            stamp = edge.timestamp
            found[far] = (stamp, stamp) if old is None else (min(old[0], stamp), max(old[1], stamp))
    return found


def history_words(trace: Trace) -> str:
    """The covered history of the traced address in one direction: `412 transfers in the sources used`."""
    degree = trace.root_node.degree
    return f"{degree:,} transfer{'s' if degree != 1 else ''} in the sources used"


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
    address: str,
    chain: str,
    labels: list[Label],
    outgoing: Trace,
    incoming: Trace,
    coverage: Coverage,
    policy: RiskPolicy = DEFAULT_POLICY,
) -> RiskReport:
    """The risk report of `address` from its outgoing and incoming traces, rated by `policy`."""
    exposures = exposures_from(outgoing, policy=policy) + [
        replace(e, answered=_sent_to(outgoing, e.counterparty)) if e.direct and e.category is Category.SANCTIONS else e
        for e in exposures_from(incoming, policy=policy)
    ]
    history = {Direction.OUT: history_words(outgoing), Direction.IN: history_words(incoming)}
    return assess(
        address,
        chain,
        labels,
        exposures,
        coverage,
        volume=volume_of(outgoing),
        volume_in=volume_of(incoming),
        history=history,
        policy=policy,
    )


def _sent_to(outgoing: Trace, counterparty: str) -> bool:
    """Whether the address sent anything directly to `counterparty` (an answer to what it received)."""
    node = outgoing.node(counterparty)
    return node is not None and node.hop == 1
