"""What an analysis covered, and what it did not: the coverage every trace and report carries, and how a trace's
cuts and gaps are worded in it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tracing.chain.transfer import format_amount
from tracing.trace.flows import Asset
from tracing.trace.params import Direction, TraceParams
from tracing.trace.taint import TaintModel
from tracing.trace.value import CRUMB_CAP, DILUTED, PASS_FEE, PASS_WINDOW, Dust


@dataclass(frozen=True, slots=True)
class Coverage:
    """What the analysis looked at, and what it did not."""

    chains: tuple[str, ...]
    sources: tuple[str, ...]
    traced: bool
    hop_budget: int = 0
    index_range: str = ""
    label_sets: tuple[str, ...] = ()
    cuts: tuple[str, ...] = ()
    gaps: tuple[str, ...] = ()
    taint_model: str = ""
    """How exposure amounts were computed (`haircut` or `poison`), when traced."""
    transfers: int = 0
    """Transfers the traces followed."""
    follow_rule: str = ""
    """How a value-aware trace chose the transfers it followed (empty: it followed the graph)."""
    findings: tuple[str, ...] = ()
    """Bitcoin: what the heuristics found (CoinJoin stops, change outputs, peel chains, clusters), one line each."""


def trace_coverage(
    chain: str,
    params: TraceParams,
    cuts: Sequence[str],
    gaps: Sequence[str],
    used: set[str],
    provenance: set[str],
    transfers: int,
) -> Coverage:
    """The coverage statement of one trace: `used` source names, `provenance` the edges' own sources."""
    # An edge read from a fallback source (the explorer, TronGrid) names that source already: only what the index
    # itself was filled from (rpc, an import, an explorer earlier) goes in brackets after it.
    fallbacks = {name.lower() for name in used if name != "local index"}
    named = sorted(p for p in provenance if p.lower() not in fallbacks)
    sources = [f"{name} ({', '.join(named)})" if name == "local index" and named else name for name in sorted(used)]
    return Coverage(
        chains=(chain,),
        sources=tuple(sources) or ("local index",),
        traced=True,
        hop_budget=params.hops,
        cuts=tuple(cuts),
        gaps=tuple(gaps),
        taint_model=params.model.value,
        transfers=transfers,
        follow_rule=follow_rule(params),
    )


def cut_lines(
    params: TraceParams,
    *,
    fanout: tuple[int, int],
    scan: tuple[int, int],
    busy: tuple[int, Sequence[str]],
    budget: int,
) -> list[str]:
    """`describe_cuts` from counts: (addresses, counterparties dropped) cut by fan-out, (addresses, transfers not
    examined) by the scan limit, (addresses, the first three) busy, addresses left by the node budget."""
    lines: list[str] = []
    if fanout[0]:
        lines.append(
            f"fan-out capped at {params.fanout} counterparties per address (largest flows kept): "
            f"{fanout[1]:,} counterparties of {fanout[0]} address(es) not followed"
        )
    if scan[0]:
        lines.append(
            f"only the first {params.scan_limit:,} transfers in the window examined at {scan[0]} address(es); "
            f"{scan[1]:,} transfers not examined"
        )
    if busy[0]:
        shown = ", ".join(busy[1][:3]) + (f" and {busy[0] - 3} more" if busy[0] > 3 else "")
        lines.append(f"busy addresses (over {params.hub_degree:,} transfers) not expanded as likely services: {shown}")
    if budget:
        lines.append(f"node budget of {params.max_nodes:,} addresses reached: {budget} address(es) not expanded")
    return lines


INCOMPLETE_HISTORY = "history incomplete at the source, transfers may be missing"
"""How a gap about a cut source history starts (after the direction prefix of a report)."""


SOURCE_ERROR = "source error at"
"""How a gap about a source that failed for an address starts (after the direction prefix of a report)."""


def gap_lines(
    silent: int, at_budget: int, params: TraceParams, errors: Sequence[str], incomplete: Sequence[str] = ()
) -> list[str]:
    """`silent`: reached addresses (not the root) with no data; `at_budget`: addresses at the hop budget;
    `incomplete`: addresses whose history the source cut, with why."""
    gaps: list[str] = []
    for line in incomplete[:5]:
        gaps.append(f"{INCOMPLETE_HISTORY}: {line}")
    if len(incomplete) > 5:
        gaps.append(f"{INCOMPLETE_HISTORY}: {len(incomplete) - 5} more address(es)")
    if silent:
        where = "onward" if params.direction is Direction.OUT else "earlier"
        gaps.append(f"{silent} reached address(es) have no {where} transfers in the sources used")
    if at_budget:
        gaps.append(f"{at_budget} address(es) at the hop budget ({params.hops}) were not followed further")
    for error in errors[:3]:
        gaps.append(f"{SOURCE_ERROR} {error}")
    if len(errors) > 3:
        gaps.append(f"{len(errors) - 3} more source errors")
    return gaps


def follow_rule(params: TraceParams) -> str:
    """The rule a trace followed transfers by, in one sentence."""
    if not params.value_aware:
        return ""
    floor = f"${params.dust_usd:,}" if params.dust_usd is not None else "no USD floor"
    units = ", ".join(f"{units} {'native' if key == 'native' else key}" for key, units in params.dust_units)
    share = f"{float(params.follow_share) * 100:g}%"
    crumb = f"{float(params.crumb_share) * 100:g}%"
    minimum = ""
    if params.min_usd is not None or params.min_value is not None:
        limits = [] if params.min_usd is None else [f"${params.min_usd:,} (USD on its day)"]
        limits += [] if params.min_value is None else [f"{params.min_value} units"]
        minimum = f"; transfers worth under {' or '.join(limits)} are not followed"
    return (
        f"value-aware ({params.model.value}): a transfer is followed when the traced funds it carries are at least "
        f"{floor}" + (f" (without a USD price: {units})" if units else "") + f", or, when mostly traced funds, {share} "
        f"of what its address received (alone or with its other small transfers); a transfer less than "
        f"{float(DILUTED) * 100:g}% traced funds is not followed at any amount"
        + (
            f", nor, under {CRUMB_CAP} times the floor, one carrying less than {crumb} of what its address received"
            if params.crumb_share
            else ""
        )
        + minimum
        + (
            f"; a receipt of traced funds sent on within {PASS_WINDOW // 3600} hours, less at most "
            f"{float(PASS_FEE) * 100:g}%, carries its traced value (a pass-through)"
            if params.model is TaintModel.HAIRCUT and params.pass_through
            else "; no pass-through: every transfer carries its balance's share (matching amounts off)"
            if params.model is TaintModel.HAIRCUT
            else ""
        )
    )


def value_lines(
    params: TraceParams,
    dust: Dust,
    unfloored: set[Asset],
    through: Sequence[str],
    *,
    unpriced_minimum: set[Asset] | None = None,
) -> tuple[list[str], list[str]]:
    """(cut lines, gap lines) of a value-aware trace: the transfers it did not follow, summed; the assets it
    followed with no floor; the services it went on past as asked."""
    cuts: list[str] = []
    gaps: list[str] = []
    if dust.count:
        floor = f"under ${params.dust_usd:,}" if params.dust_usd is not None else "under the floor"
        parts = []
        if dust.priced:
            parts.append(f"${dust.usd:,.2f}")
        for asset, raw in sorted(dust.unpriced.items(), key=lambda item: item[0] or ""):
            decimals, symbol = dust.meta.get(asset, (None, None))
            parts.append(format_amount(raw, decimals, symbol or asset))
        cuts.append(
            f"{dust.count:,} transfer{'s' if dust.count != 1 else ''} carrying traced funds {floor} (and under "
            f"{params.follow_share * 100:g}% of what their address received, or under {CRUMB_CAP}× the floor and a "
            f"crumb of it), or less than {float(DILUTED) * 100:g}% traced funds, not followed: "
            f"{' and '.join(parts)} in all"
        )
    if unfloored:
        names = ", ".join(sorted("native coin" if a is None else a for a in unfloored))
        gaps.append(
            f"no USD price and no floor in units for {names}: followed at any traced amount (but not other money "
            "with a trace of them)"
        )
    if unpriced_minimum:
        names = ", ".join(sorted("native coin" if a is None else a for a in unpriced_minimum))
        gaps.append(
            f"no USD price on the day of some transfers of {names}: the ${params.min_usd:,} minimum could not be "
            "applied to them, and they were followed"
        )
    if through:
        shown = ", ".join(through[:3]) + (f" and {len(through) - 3} more" if len(through) > 3 else "")
        kinds = ", ".join(sorted(c.value for c in params.through))
        gaps.append(f"went on through a service ({kinds}) as asked: identity lost at {shown}")
    return cuts, gaps
