"""Plain text: the console front end and `chainsleuth say`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import singledispatch
from pathlib import Path

from bot.messages import Attachment, ErrorText, Reply, Text
from bot.render.common import (
    exposure_detail,
    exposure_line,
    headline,
    label_line,
    lead_line,
    path_text,
    totals_line,
)
from bot.render.invisible import reveal
from bot.render.objects import HelpListing, HelpTopic, LabelListing
from tracing import (
    Coverage,
    Direction,
    ModelComparison,
    RiskReport,
    Stop,
    TaintModel,
    Trace,
    TraceNode,
    amounts_words,
    checksum,
    end_amounts,
    followed_words,
    short,
    trace_amounts,
    trace_words,
)

MAX_EXPOSURES = 15
MAX_TRACE_LINES = 15
MAX_DISAGREEMENTS = 15


@singledispatch
def render_part(part: object) -> str:
    return str(part)


@render_part.register
def _(part: Text) -> str:
    return part.text


@render_part.register
def _(part: ErrorText) -> str:
    return f"Error: {part.text}" + (f" (reference {part.ref})" if part.ref else "")


@render_part.register
def _(part: HelpListing) -> str:
    lines = [f"Commands you may run (role: {part.role}):"]
    lines += [f"  {usage}\n      {summary}" for usage, summary in part.commands]
    lines.append("Type /help COMMAND for details.")
    return "\n".join(lines)


@render_part.register
def _(part: HelpTopic) -> str:
    lines = [f"Usage: {part.usage}", part.summary, f"Needs role: {part.role}"]
    for param in part.params:
        lines.append(f"  {getattr(param, 'name', '').upper()}: {getattr(param, 'help', '')}")
    for flag in part.flags:
        lines.append(f"  --{getattr(flag, 'name', '')}: {getattr(flag, 'help', '')}")
    if part.examples:
        lines.append("Examples: " + "  ".join(part.examples))
    return "\n".join(lines)


@render_part.register
def _(part: LabelListing) -> str:
    where = f" on {part.chain}" if part.chain else ""
    if not part.labels:
        return f"No labels for {checksum(part.address)}{where}. (No label is not the same as clean.)"
    lines = [f"Labels for {checksum(part.address)}{where}:"]
    for label in part.labels:
        lines.append(f"  • {label_line(label)}")
        if label.source_url:
            lines.append(f"    {label.source_url}")
    return "\n".join(lines)


@render_part.register
def _(report: RiskReport) -> str:
    lines = [headline(report)]
    if report.labels:
        lines.append("Labels:")
        lines += [f"  • {label_line(label)}" for label in report.labels]
    else:
        lines.append("Labels: none")
    if report.exposures:
        lines.append("Exposure (one line per counterparty and category):")
        for exposure in report.exposures[:MAX_EXPOSURES]:
            lines.append(f"  • {exposure_line(exposure, report.chain)}")
            lines.append(f"    {exposure_detail(exposure)}")
            lines.append(f"    path: {path_text(exposure)}")
        if len(report.exposures) > MAX_EXPOSURES:
            lines.append(f"  … and {len(report.exposures) - MAX_EXPOSURES} more (see --json)")
    if report.totals:
        lines.append(f"Totals (each amount counted once): {totals_line(report)}")
    if report.leads:
        lines.append(f"Leads (what {report.service}'s transfers touched; to follow up, not its own risk):")
        for lead in report.leads[:MAX_EXPOSURES]:
            lines.append(f"  • {lead_line(lead, report.chain)}")
            lines.append(f"    path: {path_text(lead)}")
        if len(report.leads) > MAX_EXPOSURES:
            lines.append(f"  … and {len(report.leads) - MAX_EXPOSURES} more (see --json)")
    notes = sorted({e.evidence_note for e in report.exposures + report.leads if e.evidence_note})
    lines += [f"  note: {note}" for note in notes]
    if report.reasons:
        lines.append("Why:")
        lines += [f"  - {reason}" for reason in report.reasons]
    lines += coverage_lines(report.coverage, report.history)
    return "\n".join(lines)


def coverage_lines(
    cov: Coverage, history: tuple[str, ...] = (), settings: str = "", *, follow_rule: bool = False
) -> list[str]:
    """`follow_rule`: state the rule a value-aware trace followed transfers by (a trace's reply, not a report's)."""
    lines = ["Coverage:", f"  chains: {', '.join(cov.chains)}; sources: {', '.join(cov.sources)}"]
    if settings:
        lines.append(f"  {settings}")
    if cov.traced:
        model = f"; amounts: {cov.taint_model} taint" if cov.taint_model else ""
        lines.append(f"  hops: {cov.hop_budget}; index: {cov.index_range or 'n/a'}{model}")
    if follow_rule and cov.follow_rule:
        lines.append(f"  follow rule: {cov.follow_rule}")
    if history:
        lines.append(f"  shares of volume are over the covered history: {'; '.join(history)}")
    if cov.label_sets:
        lines.append(f"  label sets: {'; '.join(cov.label_sets)}")
    for cut in cov.cuts:
        lines.append(f"  cut: {cut}")
    for finding in cov.findings:
        lines.append(f"  heuristic {finding}")
    for gap in cov.gaps:
        lines.append(f"  not covered: {gap}")
    return lines


@render_part.register
def _(trace: Trace) -> str:
    return "\n".join(trace_lines(trace))


def trace_lines(trace: Trace) -> list[str]:
    """A trace in words: where it went, the terminals with category, hops and amounts, and what was cut."""
    p = trace.params
    way = (
        "Outgoing trace (where the funds went)"
        if p.direction is Direction.OUT
        else "Incoming trace (where the funds came from)"
    )
    lines = [
        f"🔎 {way} from {checksum(trace.root)} on {trace.chain}: up to {p.hops} hops, {p.model.value} taint",
        f"   {trace_words(trace)}",
        f"Reached {len(trace.nodes) - 1} addresses through {len(trace.edges)} transfers.",
    ]
    if not trace.edges:
        lines.append("No transfers to follow in the sources used (see coverage).")
    followed = followed_words(trace)
    if followed:
        lines.append(followed)
    comparison = {c.address: c for c in trace.compare_models()}

    def amount_of(node: TraceNode) -> str:
        mine = amounts_words(trace_amounts(trace, node.address), trace.chain)
        other = comparison.get(node.address)
        if other is not None and other.poison != other.haircut:
            alt = TaintModel.POISON if p.model is TaintModel.HAIRCUT else TaintModel.HAIRCUT
            mine += f" ({alt.value}: {amounts_words(trace_amounts(trace, node.address, alt), trace.chain)})"
        return mine

    def node_line(node: TraceNode) -> str:
        label = next((lb for lb in node.labels if lb.active), None)
        what = f"{label.category.display}: {label.name} ({label.source})" if label else "unlabelled"
        return f"  • {what} — {short(node.address)}, hop {node.hop}: {amount_of(node)}"

    terminals = trace.terminals
    if terminals:
        lines.append(f"Terminals ({len(terminals)}, services where the trace stopped):")
        lines += [node_line(node) for node in terminals[:MAX_TRACE_LINES]]
        if len(terminals) > MAX_TRACE_LINES:
            lines.append(f"  … and {len(terminals) - MAX_TRACE_LINES} more (see the CSV)")
    else:
        lines.append("Terminals: none reached (no labelled exchange, mixer, bridge or sanctioned address).")
    others = [node for node in trace.labelled if not node.terminal]
    if others:
        lines.append("Labelled addresses on the way:")
        lines += [node_line(node) for node in others[:MAX_TRACE_LINES]]
        if len(others) > MAX_TRACE_LINES:
            lines.append(f"  … and {len(others) - MAX_TRACE_LINES} more (see the CSV)")
    busy = [node for node in trace.nodes if node.stop is Stop.BUSY]
    if busy:
        lines.append("Not expanded (busy, likely services):")
        lines += [f"  • {short(n.address)}, hop {n.hop}: {n.degree:,} transfers" for n in busy[:5]]
    lines += coverage_lines(trace.coverage, settings=trace_words(trace), follow_rule=True)
    return lines


@render_part.register
def _(comparison: ModelComparison) -> str:
    return "\n".join(comparison_lines(comparison))


def comparison_lines(comparison: ModelComparison) -> list[str]:
    """The taint models side by side: what each reached and traced to the terminals, and where they disagree."""
    p = comparison.params
    way = "Outgoing" if p.direction is Direction.OUT else "Incoming"
    lines = [
        f"⚖️ {way} trace from {checksum(comparison.root)} on {comparison.chain}, models compared: "
        f"{', '.join(m.value for m in comparison.traces)}; up to {p.hops} hops",
    ]
    first = next(iter(comparison.traces.values()), None)
    if first is not None:
        settings = trace_words(first).split("; ", 1)[-1]  # the model is each line's own below
        lines.append(f"   {settings}")
    lines.append("Per model:")
    for model, trace in comparison.traces.items():
        reached = len(comparison.reached.get(model, ()))
        traced = end_amounts(trace)
        ended = amounts_words(traced, trace.chain) if traced else "nothing"
        lines.append(
            f"  • {model.value}: {reached} addresses reached, {len(trace.terminals)} terminals; "
            f"traced to where the trace ended: {ended}"
        )
    lines.append(f"Reached by every model: {len(comparison.agreed)} addresses.")
    found = comparison.disagreements
    if found:
        lines.append(f"Where they disagree ({len(found)} address{'es' if len(found) != 1 else ''}):")
        for d in found[:MAX_DISAGREEMENTS]:
            by = ", ".join(m.value for m in d.reached_by)
            hop = min(d.hops.values(), default=0)
            amounts = "; ".join(
                f"{m.value} {amounts_words(trace_amounts(comparison.traces[m], d.address), comparison.chain)}"
                for m in d.reached_by
            )
            how = "reached by every model, amounts far apart" if d.on_amount else f"reached by {by} only"
            lines.append(f"  • {short(d.address)}, hop {hop}: {how} — {amounts}")
        if len(found) > MAX_DISAGREEMENTS:
            lines.append(f"  … and {len(found) - MAX_DISAGREEMENTS} more")
    else:
        lines.append(
            f"The models reach the same addresses, with traced amounts within {comparison.amount_gap}× of each other."
        )
    if first is not None:
        compared = replace(first.coverage, taint_model="compared: " + ", ".join(comparison.traces))
        lines += coverage_lines(compared, follow_rule=True)
    return lines


def render_text(reply: Reply, saved: Sequence[Path] = ()) -> str:
    """`saved`: where the console wrote the reply's attachments (in their order); without it each is only named."""
    chunks = [render_part(part) for part in reply.parts]
    for number, attachment in enumerate(reply.attachments):
        chunks.append(_attachment_line(attachment, saved[number] if number < len(saved) else None))
    if reply.actions:
        chunks.append("Next: " + "   ".join(action.command for action in reply.actions))
    return reveal("\n\n".join(chunk for chunk in chunks if chunk))


def _attachment_line(attachment: Attachment, path: Path | None = None) -> str:
    size = f"{len(attachment.content):,} bytes"
    if path is not None:
        return f"[{attachment.caption or attachment.filename}, {size}: {path}]"
    return f"[attachment {attachment.filename}, {size}] {attachment.caption}".rstrip()
