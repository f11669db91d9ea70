"""Plain text: the console front end and `chainsleuth say`."""

from __future__ import annotations

from functools import singledispatch

from bot.messages import Attachment, ErrorText, Reply, Text
from bot.render.common import exposure_line, headline, label_line, path_text
from bot.render.objects import HelpListing, HelpTopic, LabelListing
from tracing.address import checksum
from tracing.risk import RiskReport

MAX_EXPOSURES = 15


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
        lines.append("Exposure:")
        for exposure in report.exposures[:MAX_EXPOSURES]:
            lines.append(f"  • {exposure_line(exposure)}")
            lines.append(f"    path: {path_text(exposure)}")
        if len(report.exposures) > MAX_EXPOSURES:
            lines.append(f"  … and {len(report.exposures) - MAX_EXPOSURES} more (see --json)")
    if report.reasons:
        lines.append("Why:")
        lines += [f"  - {reason}" for reason in report.reasons]
    cov = report.coverage
    lines.append("Coverage:")
    lines.append(f"  chains: {', '.join(cov.chains)}; sources: {', '.join(cov.sources)}")
    if cov.traced:
        lines.append(f"  hops: {cov.hop_budget}; index: {cov.index_range or 'n/a'}")
    if cov.label_sets:
        lines.append(f"  label sets: {'; '.join(cov.label_sets)}")
    for cut in cov.cuts:
        lines.append(f"  cut: {cut}")
    for gap in cov.gaps:
        lines.append(f"  not covered: {gap}")
    return "\n".join(lines)


def render_text(reply: Reply) -> str:
    chunks = [render_part(part) for part in reply.parts]
    for attachment in reply.attachments:
        chunks.append(_attachment_line(attachment))
    if reply.actions:
        chunks.append("Next: " + "   ".join(action.command for action in reply.actions))
    return "\n\n".join(chunk for chunk in chunks if chunk)


def _attachment_line(attachment: Attachment) -> str:
    return f"[attachment {attachment.filename}, {len(attachment.content)} bytes] {attachment.caption}".rstrip()
