"""File formats for traces and risk reports: JSON, CSV (one row per trace edge / per exposure) and a flow-graph
picture (Graphviz DOT, PNG through the `dot` program). Used by the CLI and, as attachments, by the chat front ends.

Raw amounts are decimal strings of integers (wei, token base units), never floats. A picture (PNG or SVG) has a
title with the trace's settings and a legend; it keeps about `max_nodes` addresses (the root, labelled addresses and
the paths to them, then the largest flows above the dust floor) and folds the rest into one node per address they
hang from, with their count and total.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tracing.chain.address import checksum, show_tx
from tracing.chain.amounts import NO_USD, UsdSum
from tracing.chain.prices import native_decimals
from tracing.labels import Category, Label
from tracing.risk.exposure import amounts_of
from tracing.risk.policy import DEFAULT_POLICY, RiskPolicy
from tracing.risk.report import Amount, Exposure, RiskReport, amounts_words, native_symbol
from tracing.trace.compare import AMOUNT_GAP, ModelComparison
from tracing.trace.coverage import Coverage
from tracing.trace.flows import Asset
from tracing.trace.model import Trace, TraceEdge, TraceNode, edge_order, parents_of
from tracing.trace.taint import TaintModel
from tracing.trace.usd import edge_usd, received_with_usd, token_meta, usd_received
from tracing.trace.value import PASS_FEE, PASS_WINDOW, FollowedBy

PICTURE_NODES = 60
"""About how many address boxes a picture holds and stays readable; the rest is folded."""


class PictureUnavailable(Exception):
    """The flow-graph picture cannot be drawn (Graphviz missing or failing); everything else still works."""


DOT_MISSING = "graph picture unavailable: Graphviz 'dot' is not installed"

# --- JSON ------------------------------------------------------------------------------------------------------


def label_json(label: Label) -> dict[str, Any]:
    found: dict[str, Any] = {
        "category": label.category.value,
        "name": label.name,
        "source": label.source,
        "source_url": label.source_url,
        "confidence": label.confidence,
        "active": label.active,
    }
    if label.category is Category.FROZEN and label.details.get("events"):
        # the evidence of a freeze: its block, time and transaction, a lift's, and every blacklist event
        keys = ("frozen_block", "frozen_at", "frozen_tx", "removed_block", "removed_at", "removed_tx", "contract")
        found["chain"] = label.chain
        found["delisted_on"] = label.delisted_on.isoformat() if label.delisted_on else None
        found["freeze"] = {key: label.details[key] for key in keys if key in label.details}
        found["freeze"]["events"] = label.details["events"]
    return found


def amount_json(amount: Amount) -> dict[str, Any]:
    """Raw value as a decimal string; `usd` a decimal string or None (no price), `usd_partial` true when some of
    its transfers had no price on their day (then `usd` is a lower bound)."""
    return {
        "token": amount.token,
        "symbol": amount.symbol,
        "decimals": amount.decimals,
        "value": str(amount.value),
        "usd": _usd_cell(amount.usd),
        "usd_partial": amount.usd_partial,
    }


def coverage_json(coverage: Coverage) -> dict[str, Any]:
    return {
        "chains": list(coverage.chains),
        "sources": list(coverage.sources),
        "traced": coverage.traced,
        "hop_budget": coverage.hop_budget,
        "index_range": coverage.index_range,
        "label_sets": list(coverage.label_sets),
        "taint_model": coverage.taint_model,
        "transfers": coverage.transfers,
        "cuts": list(coverage.cuts),
        "gaps": list(coverage.gaps),
    }


def trace_json(trace: Trace) -> dict[str, Any]:
    """The trace as a JSON-ready dict: parameters, nodes, edges (with taint), cuts and coverage."""
    p = trace.params
    taint = trace.taint
    received_usd = usd_received(trace)
    return {
        "root": trace.root,
        "chain": trace.chain,
        "direction": p.direction.value,
        "hops": p.hops,
        "model": p.model.value,
        "params": {
            "min_value": str(p.min_value) if p.min_value is not None else None,
            "token": p.token,
            "since": p.since,
            "until": p.until,
            "follow_time": p.follow_time,
            "fanout": p.fanout,
            "max_nodes": p.max_nodes,
            "hub_degree": p.hub_degree,
            "stop_at": sorted(c.value for c in p.stop_at),
        },
        "nodes": [
            {
                "address": node.address,
                "hop": node.hop,
                "labels": [label_json(label) for label in node.labels],
                "terminal": node.terminal,
                "stop": node.stop.value,
                "reached_at": node.reached_at,
                "taint": {_asset_key(a): str(v) for a, v in taint.amounts(node.address).items()},
                "taint_fraction": taint.fraction.get(node.address),
                "taint_usd": {
                    _asset_key(a): {"usd": _usd_cell(u.usd), "usd_partial": u.partial}
                    for a, u in received_usd.get(node.address, {}).items()
                },
            }
            for node in trace.nodes
        ],
        "edges": [
            {
                "from": edge.from_addr,
                "to": edge.to_addr,
                "tx_hash": show_tx(edge.tx_hash, edge.from_addr),
                "block": edge.block,
                "timestamp": edge.timestamp,
                "token": edge.token,
                "symbol": edge_meta(trace, edge)[1],
                "decimals": edge_meta(trace, edge)[0],
                "value": str(edge.value),
                "usd": _usd_cell(edge_usd(trace, edge)),
                "hop": edge.hop,
                "kind": edge.kind.value,
                "position": edge.position,
                "source": edge.source,
                "taint": str(taint.edges[index]),
                "taint_usd": _usd_cell(edge_usd(trace, edge, taint.edges[index])),
                **_followed_json(trace, edge),
            }
            for index, edge in enumerate(trace.edges)
        ],
        "cuts": [
            {"address": c.address, "hop": c.hop, "reason": c.reason, "kept": c.kept, "dropped": c.dropped}
            for c in trace.cuts
        ],
        "coverage": coverage_json(trace.coverage),
    }


def _followed_json(trace: Trace, edge: TraceEdge) -> dict[str, Any]:
    why = trace.followed_by(edge)
    return {"follow_rule": None if why is None else why.by.value, "passes_on_tx": _receipt_tx(trace, edge)}


def _receipt_tx(trace: Trace, edge: TraceEdge) -> str | None:
    """The transaction of the receipt `edge` passes on (`PassThrough`), as its chain shows it, if it passes one."""
    receipt = trace.passes_on(edge)
    return None if receipt is None else show_tx(receipt, edge.from_addr)


def followed_words(trace: Trace) -> str | None:
    """How many transfers a value-aware trace followed by each part of the follow rule, and how many of them pass
    a receipt on; None for a graph walk."""
    if not trace.value_aware:
        return None
    counts: dict[FollowedBy, int] = dict.fromkeys(FollowedBy, 0)
    passing = 0
    for edge in trace.edges:
        why = trace.followed_by(edge)
        if why is not None:
            counts[why.by] += 1
            passing += why.passes_on is not None
    parts = {  # (one, several)
        FollowedBy.FLOOR: ("carries at least the dust floor", "carry at least the dust floor"),
        FollowedBy.SHARE: ("carries the follow share alone", "carry the follow share alone"),
        FollowedBy.TOGETHER: (
            "is a small transfer carrying it with others",
            "are small transfers carrying it together",
        ),
        FollowedBy.NO_FLOOR: (
            "has no floor for its asset (no USD price, no floor in units)",
            "have no floor for their asset (no USD price, no floor in units)",
        ),
    }
    shown = [f"{counts[by]:,} {words[counts[by] != 1]}" for by, words in parts.items() if counts[by]]
    if not shown:
        return None
    line = "Why followed: " + ", ".join(shown)
    if passing:
        line += (
            f"; {passing:,} of them pass{'es' if passing == 1 else ''} a receipt on (its amount or up to"
            f" {float(PASS_FEE):.0%} less within {PASS_WINDOW // 3600} h: the CSV names the receipt's transaction)"
        )
    return line + "."


def risk_json(report: RiskReport) -> dict[str, Any]:
    return {
        "address": report.address,
        "chain": report.chain,
        "score": report.score,
        "level": report.level.value,
        "sanctioned": report.sanctioned,
        "labels": [label_json(label) for label in report.labels],
        "service": report.service or None,
        "exposures": [exposure_json(e) for e in report.exposures],
        "leads": [exposure_json(e) for e in report.leads],
        "totals": [
            {
                "direction": t.direction.adjective,
                "category": t.category.value,
                "amount": [amount_json(a) for a in t.amounts],
                "counterparties": t.counterparties,
            }
            for t in report.totals
        ],
        "reasons": list(report.reasons),
        "history": list(report.history),
        "volume": {
            "outgoing": [amount_json(a) for a in report.volume],
            "incoming": [amount_json(a) for a in report.volume_in],
        },
        "coverage": coverage_json(report.coverage),
    }


def exposure_json(exposure: Exposure) -> dict[str, Any]:
    return {
        "category": exposure.category.value,
        "direction": exposure.direction.adjective,
        "hops": exposure.hops,
        "counterparty": exposure.counterparty,
        "labels": [label_json(label) for label in exposure.labels],
        "amount": [amount_json(a) for a in exposure.amounts],
        "share": exposure.share,
        "path": list(exposure.shown_path),
        "path_addresses": list(exposure.path_addresses),
        "path_passes_on": [{"hop": hop, "receipt_tx": tx} for hop, tx in exposure.pass_throughs],
        "evidence_note": exposure.evidence_note,
        "first_at": exposure.first_at,
        "last_at": exposure.last_at,
        "timing": exposure.timing.value,
        "listed_on": exposure.listed_on.isoformat() if exposure.listed_on else None,
        "timing_note": exposure.timing_note,
        "rule": exposure.rule.value,
        "score": exposure.score,
        "counted": exposure.counted,
        "counted_note": exposure.counted_note,
    }


def to_json_text(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _asset_key(asset: str | None) -> str:
    return asset or "native"


# --- CSV -------------------------------------------------------------------------------------------------------

TRACE_CSV_COLUMNS = (
    "hop",
    "from",
    "to",
    "tx_hash",
    "block",
    "timestamp",
    "time_utc",
    "token",
    "symbol",
    "decimals",
    "value",
    "amount",
    "usd",
    "taint_model",
    "taint",
    "taint_usd",
    "follow_rule",
    "passes_on_tx",
    "kind",
    "position",
    "source",
    "from_labels",
    "to_labels",
)


def edge_meta(trace: Trace, edge: TraceEdge) -> tuple[int | None, str | None]:
    """(decimals, symbol) of an edge's asset: the valuation's, else the edge's own, the native coin's by its chain."""
    if trace.valuation is not None:
        return trace.valuation.meta(edge.token, edge.decimals, edge.symbol)
    return (
        native_decimals(trace.chain) if edge.token is None else edge.decimals,
        edge.symbol or ("" if edge.token else native_symbol(trace.chain)),
    )


def trace_csv(trace: Trace) -> str:
    """One row per edge of the trace."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TRACE_CSV_COLUMNS)
    for index, edge in enumerate(trace.edges):
        before, after = _edge_cells(trace, edge)
        taint = trace.taint.edges[index]
        model = [trace.taint.model.value, str(taint), _usd_cell(edge_usd(trace, edge, taint)) or NO_USD]
        why = trace.followed_by(edge)
        rule = ["" if why is None else why.by.value, _receipt_tx(trace, edge) or ""]
        writer.writerow([*before, *model, *rule, *after])
    return out.getvalue()


def _edge_cells(trace: Trace, edge: TraceEdge) -> tuple[list[object], list[object]]:
    """The cells of an edge's CSV row before the taint columns (hop … usd) and after them (kind … to_labels)."""
    decimals, symbol = edge_meta(trace, edge)
    before: list[object] = [
        edge.hop,
        edge.from_addr,
        edge.to_addr,
        show_tx(edge.tx_hash, edge.from_addr),
        edge.block,
        edge.timestamp,
        datetime.fromtimestamp(edge.timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S"),
        edge.token or "",
        symbol or "",
        "" if decimals is None else decimals,
        str(edge.value),
        _human(edge.value, decimals),
        _usd_cell(edge_usd(trace, edge)) or NO_USD,
    ]
    after: list[object] = [
        edge.kind.value,
        edge.position,
        edge.source,
        _labels_cell(trace.node(edge.from_addr)),
        _labels_cell(trace.node(edge.to_addr)),
    ]
    return before, after


def comparison_csv_columns(models: Sequence[TaintModel]) -> tuple[str, ...]:
    """A comparison's CSV columns: the trace CSV's, with `followed_by` and, per model, the traced amount it found on
    the transfer (raw, in units, in USD on the transfer's day) in place of the one model's taint columns."""
    per_model = tuple(f"{m.value}_{what}" for m in models for what in ("taint", "taint_amount", "taint_usd"))
    head, tail = TRACE_CSV_COLUMNS[:13], TRACE_CSV_COLUMNS[TRACE_CSV_COLUMNS.index("kind") :]
    return (*head, "followed_by", *per_model, *tail)


def comparison_csv(comparison: ModelComparison) -> str:
    """One row per transfer any model followed, with the models that followed it and each one's traced amount in
    raw units, in units and in USD on the transfer's day (empty where that model did not follow it)."""
    union, carried = _union(comparison)
    models = tuple(comparison.traces)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(comparison_csv_columns(models))
    for edge in union.edges:
        before, after = _edge_cells(union, edge)
        found = carried.get(edge.key, {})
        decimals = edge_meta(union, edge)[0]
        cells: list[object] = [";".join(m.value for m in models if m in found)]
        for model in models:
            if model not in found:
                cells += ["", "", ""]
                continue
            taint = found[model]
            cells += [str(taint), _human(taint, decimals), _usd_cell(edge_usd(union, edge, taint)) or NO_USD]
        writer.writerow([*before, *cells, *after])
    return out.getvalue()


RISK_CSV_COLUMNS = (
    "address",
    "kind",
    "category",
    "direction",
    "hops",
    "counterparty",
    "names",
    "sources",
    "amounts",
    "usd",
    "share",
    "path",
    "path_addresses",
    "path_passes_on",
    "evidence_note",
    "first_utc",
    "last_utc",
    "timing",
    "listed_on",
    "rule",
    "score",
    "counted",
)


def risk_csv(report: RiskReport) -> str:
    """One row per exposure, then one per lead."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(RISK_CSV_COLUMNS)
    rows = [("exposure", e) for e in report.exposures] + [("lead", e) for e in report.leads]
    for kind, e in rows:
        writer.writerow(
            [
                report.address,
                kind,
                e.category.value,
                e.direction.adjective,
                e.hops,
                e.counterparty,
                "; ".join(label.name for label in e.labels),
                "; ".join(sorted({label.source for label in e.labels})),
                "; ".join(f"{a.value} {a.token or 'native'}" for a in e.amounts),
                "; ".join(_usd_amount_cell(a) for a in e.amounts),
                "" if e.share is None else f"{e.share:.6f}",
                " ".join(e.shown_path),
                " ".join(e.path_addresses),
                " ".join(f"{hop}:{tx}" for hop, tx in e.pass_throughs),
                e.evidence_note,
                _utc(e.first_at),
                _utc(e.last_at),
                e.timing.value,
                e.listed_on.isoformat() if e.listed_on else "",
                e.rule.value,
                e.score,
                "yes" if e.counted else f"no: {e.counted_note}",
            ]
        )
    return out.getvalue()


def _utc(timestamp: int | None) -> str:
    return "" if timestamp is None else datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _labels_cell(node: TraceNode | None) -> str:
    if node is None:
        return ""
    return "; ".join(f"{label.category.value}:{label.name}" for label in node.labels if label.active)


def _usd_cell(usd: Decimal | None) -> str | None:
    """USD as a plain decimal string with cents (None: no price)."""
    return None if usd is None else format(usd.quantize(Decimal("0.01")), "f")


def _usd_amount_cell(amount: Amount) -> str:
    usd = _usd_cell(amount.usd)
    if usd is None:
        return NO_USD
    return f">={usd}" if amount.usd_partial else usd


def _human(value: int, decimals: int | None) -> str:
    if decimals is None:
        return ""
    return format(Decimal(value).scaleb(-decimals).normalize(), "f")


# --- pictures --------------------------------------------------------------------------------------------------

CATEGORY_COLOURS: dict[Category | None, str] = {
    Category.SANCTIONS: "#d62728",
    Category.MIXER: "#9467bd",
    Category.HACK: "#ff7f0e",
    Category.SCAM: "#e377c2",
    Category.RANSOMWARE: "#8c564b",
    Category.DARKNET: "#7f3f00",
    Category.FROZEN: "#1b9e77",
    Category.GAMBLING: "#bcbd22",
    Category.EXCHANGE: "#1f77b4",
    Category.BRIDGE: "#17becf",
    Category.DEFI: "#2ca02c",
    Category.OTHER: "#c7c7c7",
    None: "#ffffff",
}
_DARK = frozenset({Category.SANCTIONS, Category.MIXER, Category.DARKNET, Category.RANSOMWARE, Category.EXCHANGE})
FOLDED_COLOUR = "#eeeeee"
DISAGREE_COLOUR = "#d62728"
SOME_MODELS_COLOUR = "#e6550d"


@dataclass(frozen=True, slots=True)
class _PicNode:
    key: str
    title: str
    lines: tuple[str, ...]
    category: Category | None
    root: bool = False
    dashed: bool = False
    folded: bool = False
    outlined: bool = False
    """Drawn with a thick red border (a comparison: the models disagree on this address)."""


@dataclass(frozen=True, slots=True)
class _PicEdge:
    near: str
    far: str
    text: str
    some: bool = False
    """Followed by only some of the models compared (drawn dashed, in `SOME_MODELS_COLOUR`)."""


@dataclass
class _Fold:
    """Addresses folded into one node next to the kept address they hang from."""

    addresses: set[str]
    dust: int = 0


def _day(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def picture_policy(trace: Trace, policy: RiskPolicy = DEFAULT_POLICY) -> RiskPolicy:
    """The dust floor a picture folds by: the value-aware walk's own (`dust_usd`, and its floors in units), with the
    risk policy's floors in units where the walk has none (so that unpriced dust still folds)."""
    p = trace.params
    if not p.value_aware or p.dust_usd is None:
        return policy
    units = dict(policy.dust_units)
    for key, floor in p.dust_units:
        units[native_symbol(trace.chain) if key == "native" else key] = floor
    return replace(policy, dust_usd=p.dust_usd, dust_units=units)


def trace_words(trace: Trace) -> str:
    """The model, filters, dust floor and time window of a trace in one line: the same words in the text reply's
    header, its coverage section and the picture's title."""
    p = trace.params
    filters = []
    if p.min_value is not None:
        filters.append(f"min value {p.min_value}")
    if p.min_usd is not None:
        filters.append(f"min value ${p.min_usd:,} on the transfer's day")
    if p.token is not None:
        filters.append("native coin only" if p.token == "native" else f"token {checksum(p.token)}")
    if p.stops:
        filters.append("stops at " + ", ".join(sorted(c.value for c in p.stops)))
    if p.through:
        filters.append("through " + ", ".join(sorted(c.value for c in p.through)))
    if p.value_aware and p.model is TaintModel.HAIRCUT and not p.pass_through:
        filters.append("no pass-through (no link by matching amounts)")
    if p.since is not None or p.until is not None:
        since = _day(p.since) if p.since is not None else "…"
        until = _day(p.until) if p.until is not None else "…"
        window = f"{since} – {until}"
    else:
        window = "all indexed history"
    if p.value_aware and p.dust_usd is not None:
        units = ", ".join(f"{v} {'native' if k == 'native' else checksum(k)}" for k, v in p.dust_units)
        dust = f"${p.dust_usd:,} on the transfer's day ({units or 'none in units'} where no USD price)"
        dust += f", or a {p.follow_share:.0%} share of the traced funds"
    elif p.value_aware and p.dust_units:
        units = ", ".join(f"{v} {'native' if k == 'native' else checksum(k)}" for k, v in p.dust_units)
        dust = f"{units} (in units), or a {p.follow_share:.0%} share of the traced funds"
    elif p.value_aware:
        dust = f"none (value walk; follows a {p.follow_share:.0%} share)"
    else:
        dust = "none (graph walk: every transfer after the funds arrived)"
    shown = ", ".join(filters) or "none"
    heuristics = f"; bitcoin heuristics: {p.heuristics.words()}" if p.heuristics is not None else ""
    return f"model: {p.model.value} taint{heuristics}; filters: {shown}; dust floor: {dust}; time window: {window}"


def _received(trace: Trace) -> dict[str, tuple[Amount, ...]]:
    """What each reached address received of the traced funds, in units and USD (one propagation for all)."""
    received, usd = received_with_usd(trace)
    meta = token_meta(trace)
    return {
        node.address: amounts_of(received.get(node.address, {}), meta, usd.get(node.address))
        for node in trace.nodes[1:]
    }


def _parent(trace: Trace, address: str) -> str | None:
    index = trace.parents.get(address)
    return None if index is None else trace.near_far(trace.edges[index])[0]


def trace_dot(trace: Trace, max_nodes: int = PICTURE_NODES, policy: RiskPolicy = DEFAULT_POLICY) -> str:
    """The trace as a Graphviz DOT flow graph an investigator can put in a report: a title with the address,
    direction, model, filters, dust floor and time window; a legend; amounts and dates on the edges. At most about
    `max_nodes` boxes: the root, labelled addresses and the paths to them, then the largest flows above the dust
    floor; the rest (dust, long tails) is folded into one node per address it hangs from, with count and total."""
    policy = picture_policy(trace, policy)
    received = _received(trace)
    weights = {address: policy.floors(amounts, trace.chain) for address, amounts in received.items()}
    keep = _kept(trace, weights, max_nodes)
    layout = _Layout.of(trace, keep, weights)
    nodes = [_trace_node(trace, trace.node(address), received) for address in _ordered(trace, keep)]
    nodes += layout.fold_nodes
    edges = [
        _PicEdge(a, b, _edge_text(group, trace))
        for (a, b), group in sorted(layout.groups.items(), key=lambda item: -len(item[1]))
    ]
    title = [
        f"{_way(trace)} of {checksum(trace.root)} on {trace.chain}, up to {trace.params.hops} hops",
        trace_words(trace),
        f"folded below the dust floor: {policy.dust_words(trace.chain)}",
        _window_words(trace) + "; " + layout.shown(len(keep), len(trace.nodes)),
    ]
    categories = sorted({n.category for n in nodes if n.category is not None}, key=list(Category).index)
    passing = any(_passes(group, trace) for group in layout.groups.values())
    return _dot("\n".join(title), nodes, edges, _legend(categories, bool(layout.folds), passes=passing))


def _way(trace: Trace) -> str:
    if trace.direction.value == "out":
        return "Outgoing trace (where the funds went)"
    return "Incoming trace (where the funds came from)"


@dataclass
class _Layout:
    """What a picture folds: per kept address, the addresses folded next to it (`folds`), each folded address's
    fold node (`home`), the transfers between boxes grouped per pair of boxes (`groups`), and the fold nodes."""

    folds: dict[str, _Fold]
    groups: dict[tuple[str, str], list[TraceEdge]]
    fold_nodes: list[_PicNode]

    @classmethod
    def of(cls, trace: Trace, keep: set[str], weights: Mapping[str, float | None]) -> _Layout:
        folds: dict[str, _Fold] = {}
        home: dict[str, str] = {}
        for node in trace.nodes[1:]:
            if node.address in keep:
                continue
            anchor = _parent(trace, node.address)
            while anchor is not None and anchor not in keep:
                anchor = _parent(trace, anchor)
            anchor = anchor or trace.root
            fold = folds.setdefault(anchor, _Fold(set()))
            fold.addresses.add(node.address)
            weight = weights.get(node.address)
            fold.dust += weight is not None and weight < 1
            home[node.address] = f"fold:{anchor}"
        groups: dict[tuple[str, str], list[TraceEdge]] = defaultdict(list)
        for edge in trace.edges:
            near, far = trace.near_far(edge)
            a, b = home.get(near, near), home.get(far, far)
            if a != b:
                groups[(a, b) if edge.from_addr == near else (b, a)].append(edge)
        fold_nodes = []
        for anchor, fold in folds.items():
            moved = [e for (a, b), group in groups.items() if f"fold:{anchor}" in (a, b) for e in group]
            total = _edges_total(moved, trace)
            what = f"{len(fold.addresses):,} more address{'es' if len(fold.addresses) != 1 else ''}"
            count = f"{len(moved):,} transfer{'s' if len(moved) != 1 else ''}"
            lines = [f"{count}, {total}" if moved else "no transfer shown"]
            if fold.dust:
                lines.append(f"{fold.dust:,} under the dust floor")
            fold_nodes.append(
                _PicNode(f"fold:{anchor}", f"+{what} (folded)", tuple(lines), None, dashed=True, folded=True)
            )
        return cls(folds, groups, fold_nodes)

    def shown(self, kept: int, reached: int) -> str:
        """`60 of 151 addresses shown; 91 folded into 1 node (…)`: the title's account of the folding."""
        shown = f"{kept:,} of {reached:,} addresses shown"
        folded = sum(len(f.addresses) for f in self.folds.values())
        if folded:
            dust = sum(f.dust for f in self.folds.values())
            nodes_word = f"{len(self.folds)} node{'s' if len(self.folds) != 1 else ''}"
            shown += (
                f"; {folded:,} folded into {nodes_word} ({dust:,} under the dust floor, {folded - dust:,} smaller"
                " flows)"
            )
        return shown


def _window_words(trace: Trace) -> str:
    stamps = [edge.timestamp for edge in trace.edges]
    if not stamps:
        return "no transfers"
    first, last = _day(min(stamps)), _day(max(stamps))
    return f"transfers shown from {first}" + (f" to {last}" if last != first else "")


def _kept(trace: Trace, weights: Mapping[str, float | None], limit: int, marked_too: Collection[str] = ()) -> set[str]:
    """The root, the labelled and terminal addresses (and `marked_too`) with their paths, then the largest flows
    above the dust floor (at most `limit` addresses; folded nodes come on top of them)."""
    keep: list[str] = [trace.root]
    seen = {trace.root}

    def add(address: str) -> None:
        if address not in seen and len(keep) < limit:
            seen.add(address)
            keep.append(address)

    def weight(address: str) -> float:
        found = weights.get(address)
        return -1.0 if found is None else found

    marked = sorted(
        (node for node in trace.nodes[1:] if node.terminal or node.categories or node.address in marked_too),
        key=lambda node: (-weight(node.address), node.hop, node.address),
    )
    for node in marked:
        path = [trace.near_far(edge)[1] for edge in trace.path_to(node.address)]
        if len(keep) + sum(1 for a in path if a not in seen) <= limit:
            for address in path:
                add(address)
    for node in sorted(trace.nodes[1:], key=lambda n: (-weight(n.address), n.hop, n.address)):
        found = weights.get(node.address)
        if found is not None and found < 1:
            continue  # dust is folded, whatever room is left
        parent = _parent(trace, node.address)
        if parent is None or parent in seen:
            add(node.address)
    return set(keep)


def _ordered(trace: Trace, keep: set[str]) -> list[str]:
    return [node.address for node in trace.nodes if node.address in keep]


def _trace_node(trace: Trace, node: TraceNode | None, received: Mapping[str, tuple[Amount, ...]]) -> _PicNode:
    assert node is not None  # a kept address is a node of the trace
    label = next((lb for lb in node.labels if lb.active), None)
    lines = [f"{label.category.display}: {label.name[:40]}"] if label else []
    lines.append("root" if node.hop == 0 else f"hop {node.hop}" + (" · stop: service" if node.terminal else ""))
    amounts = received.get(node.address, ())
    if node.hop and amounts:
        lines.append(f"traced: {amounts_words(amounts, trace.chain)}")
    if node.stop.value in ("busy", "node budget", "source error"):
        lines.append(f"not expanded: {node.stop.value}")
    return _PicNode(
        node.address,
        _short(node.address),
        tuple(lines),
        node.categories[0] if node.categories else None,
        root=node.hop == 0,
        dashed=node.stop.value == "busy",
    )


def _edges_total(edges: Sequence[TraceEdge], trace: Trace) -> str:
    """Each asset's total over the transfers, in units and USD (each transfer on its day)."""
    by_token: dict[str | None, list[TraceEdge]] = defaultdict(list)
    for edge in edges:
        by_token[edge.token].append(edge)
    parts = []
    for token, group in by_token.items():
        first, usd = group[0], UsdSum()
        for edge in group:
            usd.add(edge_usd(trace, edge))
        decimals, symbol = (native_decimals(trace.chain) if token is None else first.decimals), first.symbol
        if trace.valuation is not None:
            decimals, symbol = trace.valuation.meta(token, first.decimals, first.symbol)
        total = Amount(sum(e.value for e in group), token, symbol, decimals, usd.usd, usd.partial)
        parts.append(total.text(trace.chain))
    return " + ".join(parts)


def _edge_text(group: Sequence[TraceEdge], trace: Trace) -> str:
    """`1,250 ETH ($3,812,500)` and `3 tx, 2022-03-23 – 2022-04-01` (the amounts moved, per asset, and when)."""
    stamps = [e.timestamp for e in group]
    first, last = _day(min(stamps)), _day(max(stamps))
    when = first if first == last else f"{first} – {last}"
    count = f"{len(group)} tx, " if len(group) > 1 else ""
    passing = _passes(group, trace)
    if not passing:
        return f"{_edges_total(group, trace)}\n{count}{when}"
    passed = "passes on a receipt" if len(group) == 1 else f"{passing} pass{'es' if passing == 1 else ''} on a receipt"
    return f"{_edges_total(group, trace)}\n{count}{when}\n{passed}"


def _passes(group: Sequence[TraceEdge], trace: Trace) -> int:
    """How many transfers of `group` pass a receipt on (the value walk's pass-through)."""
    return sum(1 for edge in group if trace.passes_on(edge) is not None)


def _short(address: str) -> str:
    full = checksum(address)
    return f"{full[:8]}…{full[-4:]}"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _dot(title: str, nodes: Sequence[_PicNode], edges: Iterable[_PicEdge], legend: Sequence[str]) -> str:
    lines = [
        "digraph trace {",
        "  graph [rankdir=LR, fontname=Helvetica, fontsize=12, labelloc=t, labeljust=l, nodesep=0.15, "
        "ranksep=0.6, label=" + _quote(title + "\n") + "];",
        '  node [shape=box, style="rounded,filled", fontname=Helvetica, fontsize=10];',
        '  edge [fontname=Helvetica, fontsize=9, color="#555555"];',
    ]
    ids: dict[str, str] = {}
    for index, node in enumerate(nodes):
        ids[node.key] = f"n{index}"
        colour = FOLDED_COLOUR if node.folded else CATEGORY_COLOURS.get(node.category, "#ffffff")
        style = "rounded,filled" + (",dashed" if node.dashed else "") + (",bold" if node.root else "")
        font = "#ffffff" if node.category in _DARK else "#000000"
        text = "\n".join((node.title, *node.lines))
        border = f", color={_quote(DISAGREE_COLOUR)}, penwidth=4" if node.outlined else ""
        border = border or (", penwidth=3" if node.root else "")
        lines.append(
            f"  n{index} [label={_quote(text)}, fillcolor={_quote(colour)}, fontcolor={_quote(font)}, "
            f"style={_quote(style)}{border}];"
        )
    for edge in edges:
        if edge.near in ids and edge.far in ids:
            some = f", style=dashed, color={_quote(SOME_MODELS_COLOUR)}" if edge.some else ""
            lines.append(f"  {ids[edge.near]} -> {ids[edge.far]} [label={_quote(edge.text)}{some}];")
    lines += legend
    lines.append("}")
    return "\n".join(lines) + "\n"


def _legend(
    categories: Sequence[Category],
    folded: bool,
    extra: Sequence[tuple[str, str, str, str, str]] = (),
    passes: bool = False,
) -> list[str]:
    """A boxed legend: the colours used, the root, folded nodes, how to read an edge (`passes`: what "passes on a
    receipt" means), and `extra` entries (key, text, fill colour, style, border colour), each drawn as a box in its
    own style."""
    lines = [
        "  subgraph cluster_legend {",
        '    label="Legend"; fontsize=11; style=rounded; color="#999999";',
    ]
    items = [("legend_root", "traced address (root)", "#ffffff", "rounded,filled,bold", "#000000")]
    for category in categories:
        font = "#ffffff" if category in _DARK else "#000000"
        items.append((f"legend_{category.value}", category.display, CATEGORY_COLOURS[category], "rounded,filled", font))
    items.append(("legend_unlabelled", "unlabelled", "#ffffff", "rounded,filled", "#000000"))
    if folded:
        items.append(
            ("legend_folded", "+N more: folded dust and small flows", FOLDED_COLOUR, "rounded,filled,dashed", "#000000")
        )
    items.append(("legend_edge", "edge: amount moved; transfers, dates (UTC)", "#ffffff", "filled", "#000000"))
    if passes:
        items.append(
            (
                "legend_passes",
                "passes on a receipt: linked by matching the amount\nreceived within a day (check in the CSV)",
                "#ffffff",
                "filled",
                "#000000",
            )
        )
    for key, text, colour, style, font in items:
        lines.append(
            f"    {key} [label={_quote(text)}, fillcolor={_quote(colour)}, style={_quote(style)}, "
            f"fontcolor={_quote(font)}, fontsize=9];"
        )
    for key, text, colour, style, border in extra:
        lines.append(
            f"    {key} [label={_quote(text)}, fillcolor={_quote(colour)}, style={_quote(style)}, "
            f"color={_quote(border)}, penwidth=3, fontsize=9];"
        )
    items += [(key, text, colour, style, "#000000") for key, text, colour, style, _ in extra]
    keys = [key for key, *_ in items]
    lines.append(f"    {{rank=same; {'; '.join(keys)}}}")  # one column beside the flows (the graph runs left to right)
    lines.append(f"    {' -> '.join(reversed(keys))} [style=invis];")  # read top to bottom in this order
    lines.append("  }")
    return lines


def dot_available(binary: str = "dot") -> bool:
    return shutil.which(binary) is not None


def render_picture(dot_source: str, *, fmt: str = "png", binary: str = "dot", timeout: float = 60.0) -> bytes:
    """Run Graphviz on DOT text (`fmt`: png or svg). Raises `PictureUnavailable` when `dot` is missing or fails."""
    path = shutil.which(binary)
    if path is None:
        raise PictureUnavailable(DOT_MISSING)
    try:
        done = subprocess.run(  # noqa: S603 - fixed program, DOT text on stdin
            [path, f"-T{fmt}"], input=dot_source.encode(), capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise PictureUnavailable(f"graph picture unavailable: Graphviz took longer than {timeout:.0f}s") from exc
    magic = b"\x89PNG" if fmt == "png" else b"<?xml"
    if done.returncode != 0 or not done.stdout.startswith(magic):
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise PictureUnavailable("graph picture unavailable: Graphviz failed" + (f": {message[0]}" if message else ""))
    return done.stdout


def render_png(dot_source: str, *, binary: str = "dot", timeout: float = 60.0) -> bytes:
    return render_picture(dot_source, fmt="png", binary=binary, timeout=timeout)


def trace_png(trace: Trace, *, max_nodes: int = PICTURE_NODES, binary: str = "dot") -> bytes:
    return render_png(trace_dot(trace, max_nodes), binary=binary)


def trace_svg(trace: Trace, *, max_nodes: int = PICTURE_NODES, binary: str = "dot") -> bytes:
    """The same picture as `trace_png`, as SVG (scales in a report; its text can be searched and copied)."""
    return render_picture(trace_dot(trace, max_nodes), fmt="svg", binary=binary)


# --- taint models compared -------------------------------------------------------------------------------------------


def _union(comparison: ModelComparison) -> tuple[Trace, dict[tuple[str, str, str], dict[TaintModel, int]]]:
    """The models' traces as one (each address at the fewest hops a model reached it in, each transfer once, the
    first model's valuation and coverage), and per transfer the traced amount each model that followed it found."""
    traces = comparison.traces
    first = next(iter(traces.values()))
    nodes: dict[str, TraceNode] = {}
    edges: dict[tuple[str, str, str], TraceEdge] = {}
    carried: dict[tuple[str, str, str], dict[TaintModel, int]] = {}
    totals: dict[str, Mapping[Asset, int]] = {}
    for model, trace in traces.items():
        taint = trace.taint.edges
        for node in trace.nodes:
            known = nodes.get(node.address)
            if known is None or node.hop < known.hop:
                nodes[node.address] = node
        for index, edge in enumerate(trace.edges):
            seen = edges.get(edge.key)
            if seen is None or edge.hop < seen.hop:
                edges[edge.key] = edge
            carried.setdefault(edge.key, {})[model] = taint[index]
        for address, moved in trace.totals.items():
            totals.setdefault(address, moved)
    root = comparison.root
    ordered = tuple(sorted(nodes.values(), key=lambda n: (n.hop, n.address != root, n.address)))
    flows = tuple(sorted(edges.values(), key=edge_order))
    union = Trace(
        root,
        comparison.chain,
        first.params,
        ordered,
        flows,
        (),
        first.coverage,
        totals,
        parents_of(ordered, flows, first.direction),
    )
    union.valuation = first.valuation
    return union, carried


def comparison_words(comparison: ModelComparison) -> str:
    """`model: compared (haircut, poison, fifo); filters: …; dust floor: …; time window: …`."""
    first = next(iter(comparison.traces.values()))
    models = ", ".join(m.value for m in comparison.traces)
    return f"model: compared ({models}); " + trace_words(first).split("; ", 1)[1]


def comparison_dot(
    comparison: ModelComparison, max_nodes: int = PICTURE_NODES, policy: RiskPolicy = DEFAULT_POLICY
) -> str:
    """The models' traces in one flow graph: every address any model reached, with the traced funds each model
    says reached it; an edge drawn solid when every model followed it, dashed and named when only some did; the
    addresses where the models disagree outlined in red (kept, with their paths, however small, as labelled
    addresses are: before the largest flows, while there is room). Folded, titled and with a legend as
    `trace_dot`."""
    union, carried = _union(comparison)
    policy = picture_policy(union, policy)
    models = tuple(comparison.traces)
    received = {model: _received(trace) for model, trace in comparison.traces.items()}
    weights: dict[str, float | None] = {}
    for by_address in received.values():
        for address, amounts in by_address.items():
            weight, known = policy.floors(amounts, union.chain), weights.get(address)
            weights[address] = weight if known is None else known if weight is None else max(weight, known)
    disagree = {d.address for d in comparison.disagreements}
    keep = _kept(union, weights, max_nodes, marked_too=disagree)
    layout = _Layout.of(union, keep, weights)
    nodes = [_compared_node(union, address, received, models, address in disagree) for address in _ordered(union, keep)]
    nodes += layout.fold_nodes
    edges = []
    for (a, b), group in sorted(layout.groups.items(), key=lambda item: -len(item[1])):
        followed = {m: sum(1 for e in group if m in carried.get(e.key, {})) for m in models}
        some = any(count < len(group) for count in followed.values())
        text = _edge_text(group, union)
        if some:
            who = [
                m.value if n == len(group) else f"{m.value} ({n} of {len(group)} tx)" for m, n in followed.items() if n
            ]
            text += "\nfollowed by: " + ", ".join(who)
        edges.append(_PicEdge(a, b, text, some=some))
    names = ", ".join(m.value for m in models)
    if disagree:
        count = f"{len(disagree)} address{'es' if len(disagree) != 1 else ''}"
        verdict = f"the models disagree on {count} (outlined in red)"
    else:
        verdict = f"the models reach the same addresses, amounts within {AMOUNT_GAP}×"
    title = [
        f"{_way(union)} of {checksum(union.root)} on {union.chain}, up to {union.params.hops} hops: taint models"
        f" compared ({names}); {verdict}",
        comparison_words(comparison),
        f"folded below the dust floor: {policy.dust_words(union.chain)}",
        _window_words(union) + "; " + layout.shown(len(keep), len(union.nodes)),
    ]
    extra = [
        ("legend_models", f"box: what each model ({names}) says reached the address", "#ffffff", "filled", "#999999"),
        ("legend_all_models", "solid edge: followed by every model", "#ffffff", "filled", "#555555"),
    ]
    if any(edge.some for edge in edges):
        extra.append(
            (
                "legend_some_models",
                "dashed orange edge: followed by some models only (named on it)",
                "#ffffff",
                "filled,dashed",
                SOME_MODELS_COLOUR,
            )
        )
    if disagree:
        extra.append(
            ("legend_disagree", "red border: the models disagree on this address", "#ffffff", "filled", DISAGREE_COLOUR)
        )
    categories = sorted({n.category for n in nodes if n.category is not None}, key=list(Category).index)
    return _dot("\n".join(title), nodes, edges, _legend(categories, bool(layout.folds), extra))


def _compared_node(
    union: Trace,
    address: str,
    received: Mapping[TaintModel, Mapping[str, tuple[Amount, ...]]],
    models: Sequence[TaintModel],
    disagree: bool,
) -> _PicNode:
    node = union.node(address)
    assert node is not None  # a kept address is a node of the union
    label = next((lb for lb in node.labels if lb.active), None)
    lines = [f"{label.category.display}: {label.name[:40]}"] if label else []
    lines.append("root" if node.hop == 0 else f"hop {node.hop}" + (" · stop: service" if node.terminal else ""))
    if node.hop:
        for model in models:
            amounts = received[model].get(address)
            if amounts is None:
                lines.append(f"{model.value}: not reached")
            else:
                lines.append(f"{model.value}: {amounts_words(amounts, union.chain) if amounts else 'nothing traced'}")
    if disagree:
        lines.append("models disagree")
    if node.stop.value in ("busy", "node budget", "source error"):
        lines.append(f"not expanded: {node.stop.value}")
    return _PicNode(
        address,
        _short(address),
        tuple(lines),
        node.categories[0] if node.categories else None,
        root=node.hop == 0,
        dashed=node.stop.value == "busy",
        outlined=disagree,
    )


def comparison_png(comparison: ModelComparison, *, max_nodes: int = PICTURE_NODES, binary: str = "dot") -> bytes:
    return render_png(comparison_dot(comparison, max_nodes), binary=binary)


def comparison_svg(comparison: ModelComparison, *, max_nodes: int = PICTURE_NODES, binary: str = "dot") -> bytes:
    return render_picture(comparison_dot(comparison, max_nodes), fmt="svg", binary=binary)
