"""Slack Block Kit: header, fields, sections, context with sources, and buttons.

Every string from a user, a label or the chain has `&`, `<` and `>` escaped, and every mrkdwn text object is
`verbatim` (Slack then turns no bare `@channel`, `#channel` or URL into a mention or link on its own), so nobody
can make the bot post `<!channel>` or a fake link. The only `<…>` sequences in a message are the ones built here:
http(s) source links and the mention of the person who asked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import singledispatch
from typing import Any

from bot.messages import Action, ErrorText, Reply, Text
from bot.render.common import exposure_detail, exposure_line, headline, label_line, lead_line, path_text, totals_line
from bot.render.invisible import reveal
from bot.render.objects import HelpListing, HelpTopic, LabelListing
from bot.render.text import MAX_EXPOSURES, comparison_lines, render_part, render_text
from tracing import Label, ModelComparison, RiskReport, amounts_words, checksum

Block = dict[str, Any]

SECTION_LIMIT = 3000
HEADER_LIMIT = 150
FIELD_LIMIT = 2000
MAX_BLOCKS = 50
MAX_CONTEXT_ELEMENTS = 10
BUTTON_TEXT_LIMIT = 75
FALLBACK_LIMIT = 3000
ACTION_PREFIX = "chainsleuth:"
"""`action_id` of every button the bot posts is this plus its position; its `value` is the stored button id."""

_SAFE_URL = re.compile(r"^https?://[^\s<>|\"']+$", re.IGNORECASE)
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")
_UNIT = re.compile(r"&(?:amp|lt|gt);|.", re.DOTALL)


def esc(text: object) -> str:
    """Slack's own escaping (only `&`, `<` and `>`), with invisible characters revealed."""
    return reveal(str(text)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """What Slack sends us (`&lt;` for a typed `<`) back to what the person typed."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def link(url: str, text: str) -> str:
    """`<url|text>` for http(s) URLs without `|`, `<`, `>`; anything else is shown as escaped text."""
    if _SAFE_URL.match(url):
        return f"<{url.replace('&', '&amp;')}|{esc(text)}>"
    return esc(url)


def mention(user_id: str) -> str:
    return f"<@{user_id}>" if _USER_ID.match(user_id) else esc(user_id)


def mrkdwn(text: str) -> Block:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def plain(text: str, limit: int) -> Block:
    escaped = esc(text)
    return {"type": "plain_text", "text": _cut(escaped, limit), "emoji": True}


def sections(lines: Sequence[str]) -> list[Block]:
    """Section blocks holding `lines` (already mrkdwn), split on line boundaries at Slack's 3000 characters."""
    blocks: list[Block] = []
    current = ""
    for line in lines:
        line = _cut(line, SECTION_LIMIT)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > SECTION_LIMIT:
            blocks.append({"type": "section", "text": mrkdwn(current)})
            candidate = line
        current = candidate
    if current.strip():
        blocks.append({"type": "section", "text": mrkdwn(current)})
    return blocks


def context(texts: Sequence[str]) -> list[Block]:
    elements = [mrkdwn(_cut(t, FIELD_LIMIT)) for t in texts if t][:MAX_CONTEXT_ELEMENTS]
    return [{"type": "context", "elements": elements}] if elements else []


def _cut(text: str, limit: int) -> str:
    """At most `limit` characters, never ending inside an `&amp;`-style entity."""
    if len(text) <= limit:
        return text
    out, size = [], 0
    for unit in _UNIT.findall(text):
        if size + len(unit) > limit - 1:
            break
        out.append(unit)
        size += len(unit)
    return "".join(out) + "…"


@singledispatch
def slack_blocks(part: object) -> list[Block]:
    """Any object without blocks of its own (a trace, say) is shown as its console text, escaped."""
    return sections([esc(line) for line in render_part(part).splitlines()])


@slack_blocks.register
def _(part: Text) -> list[Block]:
    return sections([esc(part.text)])


@slack_blocks.register
def _(part: ErrorText) -> list[Block]:
    ref = f" (reference `{esc(part.ref)}`)" if part.ref else ""
    return sections([f":warning: {esc(part.text)}{ref}"])


@slack_blocks.register
def _(part: HelpListing) -> list[Block]:
    lines = [f"*Commands you may run* (role: {esc(part.role)})"]
    lines += [f"`{esc(usage)}`\n      {esc(summary)}" for usage, summary in part.commands]
    blocks = sections(lines)
    return blocks + context(["Type `/sleuth help COMMAND` or `/help COMMAND` for details."])


@slack_blocks.register
def _(part: HelpTopic) -> list[Block]:
    lines = [f"*Usage:* `{esc(part.usage)}`", esc(part.summary), f"Needs role: {esc(part.role)}"]
    for param in part.params:
        lines.append(f"• `{esc(getattr(param, 'name', '').upper())}`: {esc(getattr(param, 'help', ''))}")
    for flag in part.flags:
        lines.append(f"• `--{esc(getattr(flag, 'name', ''))}`: {esc(getattr(flag, 'help', ''))}")
    if part.examples:
        lines.append("*Examples:* " + "  ".join(f"`{esc(example)}`" for example in part.examples))
    return sections(lines)


def _label(label: Label) -> str:
    source = f" ({link(label.source_url, 'source')})" if label.source_url else ""
    return f"• {esc(label_line(label))}{source}"


@slack_blocks.register
def _(part: LabelListing) -> list[Block]:
    where = f" on {esc(part.chain)}" if part.chain else ""
    address = f"`{esc(checksum(part.address))}`"
    if not part.labels:
        return sections([f"No labels for {address}{where}. (No label is not the same as clean.)"])
    return sections([f"*Labels for* {address}{where}:"] + [_label(label) for label in part.labels])


@slack_blocks.register
def _(report: RiskReport) -> list[Block]:
    blocks: list[Block] = [{"type": "header", "text": plain(headline(report), HEADER_LIMIT)}]
    fields = [
        f"*Level*\n{esc(report.level.value.upper())}",
        f"*Score*\n{report.score}/100" if report.level.value != "unknown" else "*Score*\nn/a (unknown)",
        f"*Sanctioned*\n{'yes' if report.sanctioned else 'no'}",
        f"*Chain*\n{esc(report.chain)}",
        f"*Address*\n`{esc(checksum(report.address))}`",
    ]
    blocks.append({"type": "section", "fields": [mrkdwn(f) for f in fields]})
    if report.labels:
        blocks += sections(["*Labels*"] + [_label(label) for label in report.labels])
    else:
        blocks += sections(["*Labels:* none"])
    if report.exposures:
        lines = ["*Exposure*"]
        for exposure in report.exposures[:MAX_EXPOSURES]:
            lines.append(
                f"• {esc(exposure_line(exposure, report.chain))}\n      {esc(exposure_detail(exposure))}\n"
                f"      path: `{esc(path_text(exposure))}`"
            )
        if len(report.exposures) > MAX_EXPOSURES:
            lines.append(f"… and {len(report.exposures) - MAX_EXPOSURES} more")
        if report.totals:
            lines.append(f"*Totals* (each amount counted once): {esc(totals_line(report))}")
        blocks += sections(lines)
    if report.leads:
        lines = [f"*Leads* (what {esc(report.service)}'s transfers touched; to follow up, not its own risk)"]
        for lead in report.leads[:MAX_EXPOSURES]:
            lines.append(f"• {esc(lead_line(lead, report.chain))}\n      path: `{esc(path_text(lead))}`")
        if len(report.leads) > MAX_EXPOSURES:
            lines.append(f"… and {len(report.leads) - MAX_EXPOSURES} more")
        blocks += sections(lines)
    notes = sorted({e.evidence_note for e in report.exposures + report.leads if e.evidence_note})
    if notes:
        blocks += sections([f"_Note: {esc(note)}_" for note in notes])
    if report.volume or report.volume_in:
        sent, received = amounts_words(report.volume, report.chain), amounts_words(report.volume_in, report.chain)
        blocks += sections([f"*Volume:* sent {esc(sent)}; received {esc(received)}"])
    if report.reasons:
        blocks += sections(["*Why*"] + [f"– {esc(reason)}" for reason in report.reasons])
    cov = report.coverage
    if cov.gaps:
        blocks += sections([f":warning: *Not covered:* {esc(gap)}" for gap in cov.gaps])
    notes = [f"Chains: {esc(', '.join(cov.chains))} · sources: {esc(', '.join(cov.sources))}"]
    if cov.traced:
        model = f" · amounts: {esc(cov.taint_model)} taint" if cov.taint_model else ""
        followed = f" · {cov.transfers:,} transfers followed" if cov.transfers else ""
        notes.append(f"Hops: {cov.hop_budget} · index: {esc(cov.index_range or 'n/a')}{model}{followed}")
    if report.history:
        notes.append(f"Shares of volume are over the covered history: {esc('; '.join(report.history))}")
    if cov.label_sets:
        notes.append(f"Label sets: {esc('; '.join(cov.label_sets))}")
    notes += [f"Cut: {esc(cut)}" for cut in cov.cuts]
    return blocks + context(notes)


@slack_blocks.register
def _(comparison: ModelComparison) -> list[Block]:
    """The models side by side: the header names the comparison, the rest is the console text, escaped."""
    title, *rest = comparison_lines(comparison)
    return [{"type": "header", "text": plain(title, HEADER_LIMIT)}] + sections([esc(line) for line in rest])


def actions_block(actions: Sequence[Action], button_ids: Sequence[str]) -> Block:
    elements: list[Block] = []
    for index, (action, button_id) in enumerate(zip(actions, button_ids, strict=True)):
        button: Block = {
            "type": "button",
            "text": plain(action.label, BUTTON_TEXT_LIMIT),
            "action_id": f"{ACTION_PREFIX}{index}",
            "value": button_id,
        }
        if action.style in ("primary", "danger"):
            button["style"] = action.style
        elements.append(button)
    return {"type": "actions", "block_id": "chainsleuth_actions", "elements": elements[:25]}


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """What `chat.postMessage` gets: `text` is the notification fallback, escaped like the blocks."""

    text: str
    blocks: list[Block] = field(default_factory=list)


def render_blocks(reply: Reply, button_ids: Sequence[str] = (), *, preface: Sequence[Block] = ()) -> SlackMessage:
    """The reply as Block Kit; `button_ids` (from `Bot.store_actions`) become the buttons, in order."""
    blocks: list[Block] = list(preface)
    for index, part in enumerate(reply.parts):
        if index:
            blocks.append({"type": "divider"})
        blocks += slack_blocks(part)
    if reply.actions and button_ids:
        room = MAX_BLOCKS - 1
        blocks = blocks[:room] + [actions_block(reply.actions, button_ids)]
    elif len(blocks) > MAX_BLOCKS:
        blocks = blocks[: MAX_BLOCKS - 1] + context(["Reply shortened to fit in one Slack message."])
    text_only = Reply(reply.parts)  # the fallback names neither buttons nor files: those are in the message
    return SlackMessage(text=_cut(esc(render_text(text_only)), FALLBACK_LIMIT), blocks=blocks)


def asked_by(user_id: str, command: str) -> Block:
    """A context line saying who asked what (Slack does not show the slash command itself to the channel)."""
    return {"type": "context", "elements": [mrkdwn(_cut(f"{mention(user_id)} asked: `{esc(command)}`", 300))]}
