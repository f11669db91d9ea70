"""File formats for traces and risk reports: JSON, CSV (one row per trace edge / per exposure) and a flow-graph
picture (Graphviz DOT, PNG through the `dot` program). Used by the CLI and, as attachments, by the chat front ends.

Raw amounts are decimal strings of integers (wei, token base units), never floats. A picture keeps the most
relevant `max_nodes` addresses (the root, labelled addresses and the paths to them, then the largest flows) and
folds the rest into one "+N more" node.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tracing.chain.address import checksum
from tracing.chain.amounts import NO_USD, UsdSum
from tracing.labels import Category, Label
from tracing.risk.report import Amount, Exposure, RiskReport, native_symbol
from tracing.trace.coverage import Coverage
from tracing.trace.model import Trace, TraceEdge, TraceNode
from tracing.trace.usd import edge_usd, usd_received

PICTURE_NODES = 100


class PictureUnavailable(Exception):
    """The flow-graph picture cannot be drawn (Graphviz missing or failing); everything else still works."""


DOT_MISSING = "graph picture unavailable: Graphviz 'dot' is not installed"

# --- JSON ------------------------------------------------------------------------------------------------------


def label_json(label: Label) -> dict[str, Any]:
    return {
        "category": label.category.value,
        "name": label.name,
        "source": label.source,
        "source_url": label.source_url,
        "confidence": label.confidence,
        "active": label.active,
    }


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
                "tx_hash": edge.tx_hash,
                "block": edge.block,
                "timestamp": edge.timestamp,
                "token": edge.token,
                "symbol": edge.symbol,
                "decimals": edge.decimals,
                "value": str(edge.value),
                "usd": _usd_cell(edge_usd(trace, edge)),
                "hop": edge.hop,
                "kind": edge.kind.value,
                "position": edge.position,
                "source": edge.source,
                "taint": str(taint.edges[index]),
                "taint_usd": _usd_cell(edge_usd(trace, edge, taint.edges[index])),
            }
            for index, edge in enumerate(trace.edges)
        ],
        "cuts": [
            {"address": c.address, "hop": c.hop, "reason": c.reason, "kept": c.kept, "dropped": c.dropped}
            for c in trace.cuts
        ],
        "coverage": coverage_json(trace.coverage),
    }


def risk_json(report: RiskReport) -> dict[str, Any]:
    return {
        "address": report.address,
        "chain": report.chain,
        "score": report.score,
        "level": report.level.value,
        "sanctioned": report.sanctioned,
        "labels": [label_json(label) for label in report.labels],
        "exposures": [exposure_json(e) for e in report.exposures],
        "reasons": list(report.reasons),
        "volume": {
            "outgoing": [amount_json(a) for a in report.volume],
            "incoming": [amount_json(a) for a in report.volume_in],
        },
        "coverage": coverage_json(report.coverage),
    }


def exposure_json(exposure: Exposure) -> dict[str, Any]:
    return {
        "category": exposure.category.value,
        "direction": exposure.direction.value,
        "hops": exposure.hops,
        "counterparty": exposure.counterparty,
        "labels": [label_json(label) for label in exposure.labels],
        "amount": [amount_json(a) for a in exposure.amounts],
        "share": exposure.share,
        "path": list(exposure.path),
        "path_addresses": list(exposure.path_addresses),
        "evidence_note": exposure.evidence_note,
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
    "kind",
    "position",
    "source",
    "from_labels",
    "to_labels",
)


def trace_csv(trace: Trace) -> str:
    """One row per edge of the trace."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TRACE_CSV_COLUMNS)
    valuation = trace.valuation
    for index, edge in enumerate(trace.edges):
        decimals, symbol = (
            valuation.meta(edge.token, edge.decimals, edge.symbol)
            if valuation is not None
            else (
                18 if edge.token is None else edge.decimals,
                edge.symbol or ("" if edge.token else native_symbol(trace.chain)),
            )
        )
        writer.writerow(
            [
                edge.hop,
                edge.from_addr,
                edge.to_addr,
                edge.tx_hash,
                edge.block,
                edge.timestamp,
                datetime.fromtimestamp(edge.timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S"),
                edge.token or "",
                symbol or "",
                "" if decimals is None else decimals,
                str(edge.value),
                _human(edge.value, decimals),
                _usd_cell(edge_usd(trace, edge)) or NO_USD,
                trace.taint.model.value,
                str(trace.taint.edges[index]),
                _usd_cell(edge_usd(trace, edge, trace.taint.edges[index])) or NO_USD,
                edge.kind.value,
                edge.position,
                edge.source,
                _labels_cell(trace.node(edge.from_addr)),
                _labels_cell(trace.node(edge.to_addr)),
            ]
        )
    return out.getvalue()


RISK_CSV_COLUMNS = (
    "address",
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
    "evidence_note",
)


def risk_csv(report: RiskReport) -> str:
    """One row per exposure."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(RISK_CSV_COLUMNS)
    for e in report.exposures:
        writer.writerow(
            [
                report.address,
                e.category.value,
                e.direction.value,
                e.hops,
                e.counterparty,
                "; ".join(label.name for label in e.labels),
                "; ".join(sorted({label.source for label in e.labels})),
                "; ".join(f"{a.value} {a.token or 'native'}" for a in e.amounts),
                "; ".join(_usd_amount_cell(a) for a in e.amounts),
                "" if e.share is None else f"{e.share:.6f}",
                " ".join(e.path),
                " ".join(e.path_addresses),
                e.evidence_note,
            ]
        )
    return out.getvalue()


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
    Category.GAMBLING: "#bcbd22",
    Category.EXCHANGE: "#1f77b4",
    Category.BRIDGE: "#17becf",
    Category.DEFI: "#2ca02c",
    Category.OTHER: "#c7c7c7",
    None: "#ffffff",
}


@dataclass(frozen=True, slots=True)
class _PicNode:
    key: str
    title: str
    lines: tuple[str, ...]
    category: Category | None
    root: bool = False
    dashed: bool = False


@dataclass(frozen=True, slots=True)
class _PicEdge:
    near: str
    far: str
    text: str


def trace_dot(trace: Trace, max_nodes: int = PICTURE_NODES) -> str:
    """The trace as a Graphviz DOT flow graph (left to right, in the direction the money moved)."""
    keep = _relevant_nodes(trace, max_nodes)
    more = len(trace.nodes) - len(keep)
    nodes = []
    for node in trace.nodes:
        if node.address not in keep:
            continue
        label = node.labels[0] if node.labels else None
        lines = [label.name[:40]] if label else []
        lines.append("root" if node.hop == 0 else f"hop {node.hop}" + (" · terminal" if node.terminal else ""))
        if node.stop.value in ("busy", "node budget", "source error"):
            lines.append(f"not expanded: {node.stop.value}")
        nodes.append(
            _PicNode(
                node.address,
                _short(node.address),
                tuple(lines),
                node.categories[0] if node.categories else None,
                root=node.hop == 0,
                dashed=node.stop.value == "busy",
            )
        )
    groups: dict[tuple[str, str], dict[str | None, list[TraceEdge]]] = defaultdict(lambda: defaultdict(list))
    for edge in trace.edges:
        a = edge.from_addr if edge.from_addr in keep else "more"
        b = edge.to_addr if edge.to_addr in keep else "more"
        if a == b:
            continue
        groups[(a, b)][edge.token].append(edge)
    if more:
        nodes.append(_PicNode("more", f"+{more} more addresses", ("folded: smaller flows",), None, dashed=True))
    edges = [_PicEdge(a, b, _edge_text(by_token, trace)) for (a, b), by_token in groups.items()]
    title = f"{trace.params.direction.value}-trace of {checksum(trace.root)} on {trace.chain}, {trace.params.hops} hops"
    return _dot(title, nodes, edges)


def report_dot(report: RiskReport, max_nodes: int = PICTURE_NODES) -> str:
    """The evidence paths of a risk report as a flow graph: the subject, the paths, the risky entities."""
    nodes: dict[str, _PicNode] = {
        report.address: _PicNode(
            report.address,
            _short(report.address),
            (f"{report.level.value.upper()} {report.score}/100",),
            report.labels[0].category if report.labels else None,
            root=True,
        )
    }
    edges: dict[tuple[str, str], str] = {}
    for exposure in report.exposures:
        chain_of = list(exposure.path_addresses) or [report.address, exposure.counterparty]
        if len(nodes) + len(chain_of) > max_nodes:
            break
        for index, address in enumerate(chain_of):
            if address not in nodes:
                entity = address == exposure.counterparty
                nodes[address] = _PicNode(
                    address,
                    _short(address),
                    (exposure.labels[0].name[:40], exposure.category.display) if entity and exposure.labels else (),
                    exposure.category if entity else None,
                )
            if index:
                prev = chain_of[index - 1]
                a, b = (prev, address) if exposure.direction.value == "outgoing" else (address, prev)
                text = ""
                if address == exposure.counterparty:
                    text = " + ".join(_amount_text(amount, report.chain) for amount in exposure.amounts)
                edges.setdefault((a, b), text)
    title = f"Exposure of {checksum(report.address)} on {report.chain}"
    return _dot(title, list(nodes.values()), [_PicEdge(a, b, t) for (a, b), t in edges.items()])


def _relevant_nodes(trace: Trace, limit: int) -> set[str]:
    """The root, labelled and terminal addresses with the paths to them, then the largest taint received."""
    keep: list[str] = [trace.root]
    seen = {trace.root}

    def add(address: str) -> None:
        if address not in seen:
            seen.add(address)
            keep.append(address)

    for node in trace.nodes[1:]:
        if node.terminal or node.categories:
            for edge in trace.path_to(node.address):
                add(trace.near_far(edge)[1])
    meta = trace.token_meta()
    weights = []
    for node in trace.nodes[1:]:
        received = trace.taint.amounts(node.address)
        weight = max(
            (Decimal(v).scaleb(-(18 if a is None else (meta.get(a, (0, None))[0] or 0))) for a, v in received.items()),
            default=Decimal(0),
        )
        weights.append((-weight, node.hop, node.address))
    for _, _, address in sorted(weights):
        add(address)
    return set(keep[:limit])


def _edge_text(by_token: Mapping[str | None, Sequence[TraceEdge]], trace: Trace) -> str:
    """Each asset's total over the grouped transfers, in units and USD (each transfer on its day)."""
    parts = []
    for token, group in by_token.items():
        total = sum(e.value for e in group)
        first = group[0]
        usd = UsdSum()
        for edge in group:
            usd.add(edge_usd(trace, edge))
        decimals, symbol = (18 if token is None else first.decimals), first.symbol
        if trace.valuation is not None:
            decimals, symbol = trace.valuation.meta(token, first.decimals, first.symbol)
        text = Amount(total, token, symbol, decimals, usd.usd, usd.partial).text(trace.chain)
        parts.append(text + (f" ({len(group)} tx)" if len(group) > 1 else ""))
    return "\n".join(parts)


def _amount_text(amount: Amount, chain: str) -> str:
    return amount.text(chain)


def _short(address: str) -> str:
    full = checksum(address)
    return f"{full[:8]}…{full[-4:]}"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _dot(title: str, nodes: Iterable[_PicNode], edges: Iterable[_PicEdge]) -> str:
    lines = [
        "digraph trace {",
        "  graph [rankdir=LR, fontname=Helvetica, fontsize=11, labelloc=t, label=" + _quote(title) + "];",
        '  node [shape=box, style="rounded,filled", fontname=Helvetica, fontsize=10];',
        '  edge [fontname=Helvetica, fontsize=9, color="#555555"];',
    ]
    ids: dict[str, str] = {}
    for index, node in enumerate(nodes):
        ids[node.key] = f"n{index}"
        colour = CATEGORY_COLOURS.get(node.category, "#ffffff")
        style = "rounded,filled" + (",dashed" if node.dashed else "") + (",bold" if node.root else "")
        font = (
            "#ffffff"
            if node.category in (Category.SANCTIONS, Category.MIXER, Category.DARKNET, Category.RANSOMWARE)
            else "#000000"
        )
        text = "\n".join((node.title, *node.lines))
        lines.append(
            f"  n{index} [label={_quote(text)}, fillcolor={_quote(colour)}, fontcolor={_quote(font)}, "
            f"style={_quote(style)}{', penwidth=3' if node.root else ''}];"
        )
    for edge in edges:
        if edge.near in ids and edge.far in ids:
            lines.append(f"  {ids[edge.near]} -> {ids[edge.far]} [label={_quote(edge.text)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_available(binary: str = "dot") -> bool:
    return shutil.which(binary) is not None


def render_png(dot_source: str, *, binary: str = "dot", timeout: float = 60.0) -> bytes:
    """Run Graphviz on DOT text. Raises `PictureUnavailable` when `dot` is missing or fails."""
    path = shutil.which(binary)
    if path is None:
        raise PictureUnavailable(DOT_MISSING)
    try:
        done = subprocess.run(  # noqa: S603 - fixed program, DOT text on stdin
            [path, "-Tpng"], input=dot_source.encode(), capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise PictureUnavailable(f"graph picture unavailable: Graphviz took longer than {timeout:.0f}s") from exc
    if done.returncode != 0 or not done.stdout.startswith(b"\x89PNG"):
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise PictureUnavailable("graph picture unavailable: Graphviz failed" + (f": {message[0]}" if message else ""))
    return done.stdout


def trace_png(trace: Trace, *, max_nodes: int = PICTURE_NODES, binary: str = "dot") -> bytes:
    return render_png(trace_dot(trace, max_nodes), binary=binary)


def report_png(report: RiskReport, *, max_nodes: int = PICTURE_NODES, binary: str = "dot") -> bytes:
    return render_png(report_dot(report, max_nodes), binary=binary)
