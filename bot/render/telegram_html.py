"""Telegram HTML (Bot API `parse_mode=HTML`): every string that comes from a user, a label or the chain is escaped,
and a long reply is split into messages of at most 4096 characters on line boundaries, never inside a tag.

Each renderer returns lines, and every line is balanced HTML on its own; that is what makes the split safe.
"""

from __future__ import annotations

import html
import re
from functools import singledispatch

from bot.messages import ErrorText, Reply, Text
from bot.render.common import exposure_detail, exposure_line, headline, label_line, lead_line, totals_line
from bot.render.invisible import reveal
from bot.render.objects import HelpListing, HelpTopic, LabelListing
from bot.render.text import MAX_EXPOSURES, comparison_lines, render_part
from tracing import Coverage, Exposure, Label, ModelComparison, RiskReport, amounts_words, checksum

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024

_SAFE_URL = re.compile(r"^https?://[^\s<>\"']+$", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_UNIT = re.compile(r"&#?[A-Za-z0-9]+;|.", re.DOTALL)


def esc(text: object) -> str:
    return html.escape(reveal(str(text)), quote=True)


def link(url: str, text: str) -> str:
    """A link for http(s) URLs only; anything else (javascript:, data:, …) is shown as escaped text."""
    if _SAFE_URL.match(url):
        return f'<a href="{esc(url)}">{esc(text)}</a>'
    return esc(url)


def utf16_len(text: str) -> int:
    """Telegram counts message length in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


@singledispatch
def html_lines(part: object) -> list[str]:
    """Any object without an HTML renderer of its own (a trace, say) is shown as its console text, escaped."""
    return [esc(line) for line in render_part(part).splitlines()]


@html_lines.register
def _(part: Text) -> list[str]:
    return [esc(line) for line in part.text.splitlines()]


@html_lines.register
def _(part: ErrorText) -> list[str]:
    ref = f" (reference <code>{esc(part.ref)}</code>)" if part.ref else ""
    return [f"⚠️ {esc(part.text)}{ref}"]


@html_lines.register
def _(part: HelpListing) -> list[str]:
    lines = [f"<b>Commands you may run</b> (role: {esc(part.role)})"]
    for usage, summary in part.commands:
        lines += [f"<code>{esc(usage)}</code>", f"    {esc(summary)}"]
    lines.append("Type <code>/help COMMAND</code> for details.")
    return lines


@html_lines.register
def _(part: HelpTopic) -> list[str]:
    lines = [f"<b>Usage:</b> <code>{esc(part.usage)}</code>", esc(part.summary), f"Needs role: {esc(part.role)}"]
    for param in part.params:
        lines.append(f"  <code>{esc(getattr(param, 'name', '').upper())}</code>: {esc(getattr(param, 'help', ''))}")
    for flag in part.flags:
        lines.append(f"  <code>--{esc(getattr(flag, 'name', ''))}</code>: {esc(getattr(flag, 'help', ''))}")
    if part.examples:
        lines.append("<b>Examples:</b>")
        lines += [f"<code>{esc(example)}</code>" for example in part.examples]
    return lines


def _label(label: Label) -> str:
    source = f" — {link(label.source_url, 'source')}" if label.source_url else ""
    return f"• {esc(label_line(label))}{source}"


@html_lines.register
def _(part: LabelListing) -> list[str]:
    where = f" on {esc(part.chain)}" if part.chain else ""
    address = f"<code>{esc(checksum(part.address))}</code>"
    if not part.labels:
        return [f"No labels for {address}{where}. (No label is not the same as clean.)"]
    return [f"<b>Labels for</b> {address}{where}:"] + [_label(label) for label in part.labels]


def _path(exposure: Exposure) -> str:
    if exposure.path:
        hops = " → ".join(f"<code>{esc(tx)}</code>" for tx in exposure.shown_path)
        passed = "".join(
            f"; hop {hop} passes on the receipt in <code>{esc(tx)}</code>" for hop, tx in exposure.pass_throughs
        )
        return f"    path: {hops}{passed}"
    return f"    path: {esc(exposure.evidence_note or 'no transaction hashes in the source data')}"


@html_lines.register
def _(report: RiskReport) -> list[str]:
    lines = [f"<b>{esc(headline(report))}</b>", ""]
    if report.labels:
        lines.append("<b>Labels</b>")
        lines += [_label(label) for label in report.labels]
    else:
        lines.append("<b>Labels:</b> none")
    if report.exposures:
        lines += ["", "<b>Exposure</b>"]
        for exposure in report.exposures[:MAX_EXPOSURES]:
            line, detail = exposure_line(exposure, report.chain), exposure_detail(exposure)
            lines += [f"• {esc(line)}", f"    {esc(detail)}", _path(exposure)]
        if len(report.exposures) > MAX_EXPOSURES:
            lines.append(f"… and {len(report.exposures) - MAX_EXPOSURES} more")
    if report.totals:
        lines.append(f"<b>Totals</b> (each amount counted once): {esc(totals_line(report))}")
    if report.leads:
        lines += ["", f"<b>Leads</b> (what {esc(report.service)}'s transfers touched; to follow up, not its own risk)"]
        for lead in report.leads[:MAX_EXPOSURES]:
            lines += [f"• {esc(lead_line(lead, report.chain))}", _path(lead)]
        if len(report.leads) > MAX_EXPOSURES:
            lines.append(f"… and {len(report.leads) - MAX_EXPOSURES} more")
    notes = sorted({e.evidence_note for e in report.exposures + report.leads if e.evidence_note})
    lines += [f"<i>Note: {esc(note)}</i>" for note in notes]
    if report.volume or report.volume_in:
        sent, received = amounts_words(report.volume, report.chain), amounts_words(report.volume_in, report.chain)
        lines.append(f"Volume: sent {esc(sent)}; received {esc(received)}")
    if report.reasons:
        lines += ["", "<b>Why</b>"]
        lines += [f"– {esc(reason)}" for reason in report.reasons]
    return lines + ["", *_coverage(report.coverage, report.history)]


def _coverage(cov: Coverage, history: tuple[str, ...] = ()) -> list[str]:
    lines = ["<b>Coverage</b>", f"chains: {esc(', '.join(cov.chains))}; sources: {esc(', '.join(cov.sources))}"]
    if history:
        lines.append(f"shares of volume are over the covered history: {esc('; '.join(history))}")
    if cov.traced:
        model = f"; amounts: {esc(cov.taint_model)} taint" if cov.taint_model else ""
        followed = f"; {cov.transfers:,} transfers followed" if cov.transfers else ""
        lines.append(f"hops: {cov.hop_budget}; index: {esc(cov.index_range or 'n/a')}{model}{followed}")
    if cov.label_sets:
        lines.append(f"label sets: {esc('; '.join(cov.label_sets))}")
    lines += [f"cut: {esc(cut)}" for cut in cov.cuts]
    lines += [f"<b>Not covered:</b> {esc(gap)}" for gap in cov.gaps]
    return lines


@html_lines.register
def _(comparison: ModelComparison) -> list[str]:
    """The models side by side: the console text, escaped, its title and section heads in bold."""
    heads = ("Per model:", "Where they disagree", "Coverage:")
    lines = comparison_lines(comparison)
    return [f"<b>{esc(lines[0])}</b>"] + [
        f"<b>{esc(line)}</b>" if line.startswith(heads) else esc(line) for line in lines[1:]
    ]


def render_html(reply: Reply, limit: int = MESSAGE_LIMIT) -> list[str]:
    """The reply's text as one or more HTML messages (attachments and buttons are sent by the backend)."""
    lines: list[str] = []
    for part in reply.parts:
        if lines:
            lines.append("")
        lines += html_lines(part)
    return split_html(lines, limit)


def split_html(lines: list[str], limit: int = MESSAGE_LIMIT) -> list[str]:
    """Pack balanced lines into messages of at most `limit` UTF-16 units; an over-long line loses its markup and is
    cut between characters (never inside an `&…;` entity)."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        for piece in _fit(line, limit):
            extra = utf16_len(piece) + (1 if current else 0)
            if current and size + extra > limit:
                chunks.append("\n".join(current))
                current, size, extra = [], 0, utf16_len(piece)
            current.append(piece)
            size += extra
    if current:
        chunks.append("\n".join(current))
    return [chunk.strip("\n") for chunk in chunks if chunk.strip()]


def _fit(line: str, limit: int) -> list[str]:
    if utf16_len(line) <= limit:
        return [line]
    pieces: list[str] = []
    current, size = "", 0
    for unit in _UNIT.findall(_TAG.sub("", line)):
        width = utf16_len(unit)
        if size + width > limit:
            pieces.append(current)
            current, size = "", 0
        current += unit
        size += width
    if current:
        pieces.append(current)
    return pieces


def caption_html(text: str) -> str:
    """An attachment caption: escaped, cut to Telegram's 1024-unit caption limit."""
    escaped = esc(text)
    if utf16_len(escaped) <= CAPTION_LIMIT:
        return escaped
    return _fit(escaped, CAPTION_LIMIT - 1)[0] + "…"
