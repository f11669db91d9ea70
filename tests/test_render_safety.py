"""Rendering at the edge: every RiskReport field reaches console text, Telegram HTML and Slack blocks; nothing a user
or a label supplies becomes markup, a mention or a link; long replies stay within each platform's limits."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from datetime import date
from html.parser import HTMLParser
from typing import Any

import pytest

from bot.messages import Action, ErrorText, Reply, Text
from bot.render.objects import HelpListing, LabelListing
from bot.render.slack_blocks import FALLBACK_LIMIT, MAX_BLOCKS, SECTION_LIMIT, render_blocks
from bot.render.telegram_html import CAPTION_LIMIT, caption_html, render_html, utf16_len
from bot.render.text import render_text
from tracing.chain.transfer import Direction
from tracing.labels import Category, Label
from tracing.risk.report import Amount, Exposure, Level, RiskReport
from tracing.trace.coverage import Coverage

SUBJECT = "0x098b716b8aaf21512996dc57eb0615e2383e2f96"
MIXER = "0xd90e2f925da726b50c4ed8d0fb90ad053324f31b"
TX1, TX2 = "0x" + "ab" * 32, "0x" + "cd" * 32
HOSTILE = ['<b>x</b><a href="x">', "<!channel> <https://evil.example|click>", "<!here> & <@U0BOSS>"]


def _label(name: str, category: Category = Category.SCAM, url: str = "", **kw: Any) -> Label:
    return Label(SUBJECT, category, name, source="team:test", source_url=url, confidence=0.8, **kw)


def full_report() -> RiskReport:
    labels = (
        Label(
            SUBJECT,
            Category.SANCTIONS,
            "Lazarus Group",
            source="ofac-sdn",
            source_url="https://sanctionssearch.ofac.treas.gov/Details.aspx?id=1&x=2",
            first_seen=date(2022, 4, 14),
            details={"programs": ["DPRK3"], "list_date": "2025-11-19"},
        ),
        _label(HOSTILE[0], url="javascript:alert(1)"),
        _label(HOSTILE[1], url='https://example.org/?q="><script>alert(1)</script>'),
    )
    mixer = Label(MIXER, Category.MIXER, "Tornado Cash <100 ETH>", source="tornado-cash")
    exposures = (
        Exposure(
            Category.MIXER,
            Direction.OUT,
            2,
            MIXER,
            (mixer,),
            (Amount(1234 * 10**18, None, None, 18), Amount(5_000 * 10**6, "0x" + "dd" * 20, "USDT", 6)),
            0.42,
            (TX1, TX2),
            passes_on=(None, TX1),  # the second transfer passes the first's receipt on
        ),
        Exposure(Category.HACK, Direction.IN, 1, MIXER, (), (), None, (), evidence_note="from <the> explorer"),
    )
    coverage = Coverage(
        chains=("eth",),
        sources=("rpc", "labels"),
        traced=True,
        hop_budget=3,
        index_range="blocks 100–200",
        label_sets=("ofac-sdn (2025-11-19)",),
        cuts=("stopped at <!everyone> exchange",),
        gaps=("internal transactions <not> indexed",),
        taint_model="haircut",
        transfers=321,
    )
    return RiskReport(
        address=SUBJECT,
        chain="eth",
        score=100,
        level=Level.SEVERE,
        sanctioned=True,
        labels=labels,
        exposures=exposures,
        reasons=("The address itself is sanctioned: Lazarus Group (ofac-sdn).", "Reason with <!channel>"),
        coverage=coverage,
        volume=(Amount(2 * 10**18, None, None, 18),),
        volume_in=(Amount(3 * 10**18, None, None, 18),),
    )


# Every field of the report, as each renderer must show it (after undoing its escaping).
EXPECTED = [
    "SEVERE",
    "100/100",
    "0x098B716B8Aaf21512996dC57EB0615e2383E2f96",
    "Lazarus Group",
    "ofac-sdn",
    "DPRK3",
    *HOSTILE[:2],
    "Mixer (2 hops, outgoing)",
    "1,234.00 ETH",
    "5,000.00 USDT",
    "42.0% of its outgoing volume covered",
    "Tornado Cash <100 ETH>",
    TX1,
    TX2,
    "hop 2 passes on the receipt in",
    "Hack/exploit (direct, incoming)",
    "from <the> explorer",
    "Reason with <!channel>",
    "stopped at <!everyone> exchange",
    "internal transactions <not> indexed",
    "ofac-sdn (2025-11-19)",
    "blocks 100–200",
]


class TagChecker(HTMLParser):
    """Collects the tags of Telegram HTML and checks that they nest and close."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack.append(tag)
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check_html(chunk: str) -> TagChecker:
    checker = TagChecker()
    checker.feed(chunk)
    checker.close()
    assert checker.stack == [], f"unclosed {checker.stack}"
    for tag, attrs in checker.tags:
        assert tag in {"b", "i", "code", "a"}, tag
        if tag == "a":
            assert set(attrs) == {"href"} and re.match(r"^https?://", attrs["href"] or ""), attrs
    return checker


def slack_texts(value: Any) -> list[str]:
    """Every string Slack will render from the blocks."""
    if isinstance(value, dict):
        return [
            s
            for key, v in value.items()
            if key not in ("type", "action_id", "block_id", "value")
            for s in slack_texts(v)
        ]
    if isinstance(value, list):
        return [s for v in value for s in slack_texts(v)]
    return [value] if isinstance(value, str) else []


SLACK_CONTROL = re.compile(r"<([^>]*)>")


def check_slack_escaping(text: str) -> None:
    """The only `<…>` sequences are ours: http(s) links without `|` in the URL and user mentions."""
    for inner in SLACK_CONTROL.findall(text):
        assert re.fullmatch(r"https?://[^\s<>|\"']+\|[^<>]*", inner) or re.fullmatch(r"@[UW][A-Z0-9]+", inner), inner


def slack_unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


# --- every field, on every platform ---------------------------------------------------------------------------


def test_console_text_shows_every_field() -> None:
    text = render_text(Reply((full_report(),)))
    for expected in EXPECTED:
        assert expected in text, expected


def test_telegram_html_shows_every_field_as_text_and_only_safe_markup() -> None:
    chunks = render_html(Reply((full_report(),)))
    assert len(chunks) == 1
    checker = check_html(chunks[0])
    shown = "".join(checker.text)
    for expected in EXPECTED:
        assert expected in shown, expected
    assert "Not covered:" in shown and "haircut taint" in shown and "321 transfers" in shown
    assert "Volume: sent 2 ETH (no USD price); received 3 ETH (no USD price)" in shown
    assert "Note: from <the> explorer" in shown
    hrefs = [attrs["href"] for tag, attrs in checker.tags if tag == "a"]
    assert hrefs == [
        "https://sanctionssearch.ofac.treas.gov/Details.aspx?id=1&x=2",
    ]  # javascript: and the URL with quotes are shown as text, not links
    assert "javascript:alert(1)" in shown
    assert "&lt;b&gt;x&lt;/b&gt;&lt;a href=&quot;x&quot;&gt;" in chunks[0] and "<b>x" not in chunks[0]


def test_slack_blocks_show_every_field_with_only_our_links_and_mentions() -> None:
    message = render_blocks(Reply((full_report(),), actions=(Action("Trace <!channel>", "/trace x"),)), ["id1"])
    texts = slack_texts(message.blocks)
    for text in texts + [message.text]:
        check_slack_escaping(text)
    shown = slack_unescape("\n".join(texts))
    for expected in EXPECTED:
        assert expected in shown, expected
    assert "*Not covered:* internal transactions <not> indexed" in shown and "haircut taint" in shown
    assert "_Note: from <the> explorer_" in shown
    assert "*Volume:* sent 2 ETH (no USD price); received 3 ETH (no USD price)" in shown
    raw = json.dumps(message.blocks)
    assert "&lt;!channel&gt; &lt;https://evil.example|click&gt;" in raw and "<!channel>" not in raw
    assert "<https://sanctionssearch.ofac.treas.gov/Details.aspx?id=1&amp;x=2|source>" in raw
    assert "javascript:alert(1)" in shown and "<javascript:" not in raw
    for block in message.blocks:
        for text in [block.get("text")] + block.get("fields", []) + block.get("elements", []):
            if isinstance(text, dict) and text.get("type") == "mrkdwn":
                assert text["verbatim"] is True  # Slack will not turn a bare @channel or URL into a mention/link
    header = message.blocks[0]
    assert header["type"] == "header" and len(header["text"]["text"]) <= 150
    assert message.blocks[-1]["elements"][0]["text"]["text"] == "Trace &lt;!channel&gt;"


def test_the_notification_fallback_is_escaped_and_short() -> None:
    listing = LabelListing(SUBJECT, None, tuple(_label(f"{HOSTILE[1]} {i}") for i in range(200)))
    message = render_blocks(Reply((listing,)))
    assert len(message.text) <= FALLBACK_LIMIT and message.text.endswith("…")
    check_slack_escaping(message.text)
    assert not re.search(r"&(?!amp;|lt;|gt;)", message.text)  # no entity cut in half


# --- limits --------------------------------------------------------------------------------------------------


def test_long_telegram_replies_split_on_lines_and_keep_every_line() -> None:
    listing = LabelListing(SUBJECT, "eth", tuple(_label(f"<i>{i}</i> " + "n" * 120) for i in range(300)))
    whole = render_html(Reply((listing,)), limit=10**9)[0]
    chunks = render_html(Reply((listing,)))
    assert len(chunks) > 10
    for chunk in chunks:
        assert utf16_len(chunk) <= 4096
        check_html(chunk)
    assert "\n".join(chunks).split("\n") == whole.split("\n")


def test_a_line_longer_than_a_message_is_cut_between_characters_never_inside_an_entity() -> None:
    chunks = render_html(Reply((Text("&<>\"'" * 3000 + "🔴" * 100),)))
    assert len(chunks) >= 4
    for chunk in chunks:
        assert utf16_len(chunk) <= 4096
        assert (
            html.unescape(chunk)
            .replace("&", "")
            .replace("<", "")
            .replace(">", "")
            .replace('"', "")
            .replace("'", "")
            .replace("🔴", "")
            == ""
        ), "an entity was cut"
    assert html.unescape("".join(chunks)) == "&<>\"'" * 3000 + "🔴" * 100


def test_captions_are_escaped_and_cut_to_the_caption_limit() -> None:
    caption = caption_html("<b>" * 1000)
    assert utf16_len(caption) <= CAPTION_LIMIT and caption.endswith("…") and "<b>" not in caption
    assert caption_html("a & b") == "a &amp; b"


def test_long_slack_replies_stay_within_block_limits() -> None:
    listing = LabelListing(SUBJECT, None, tuple(_label("n" * 250 + f" {i}") for i in range(400)))
    message = render_blocks(Reply((listing, Text("after")), actions=(Action("Again", "/help"),)), ["b1"])
    assert len(message.blocks) <= MAX_BLOCKS
    assert message.blocks[-1]["type"] == "actions"  # the buttons survive shortening
    sections = [b["text"]["text"] for b in message.blocks if b["type"] == "section"]
    assert all(len(s) <= SECTION_LIMIT for s in sections) and len(sections) > 10


# --- errors and unknown objects -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unrendered:
    """A reply part no renderer knows (as a new domain type is until it gets its own renderers)."""

    note: str

    def __str__(self) -> str:
        return f"unrendered: {self.note}"


@pytest.mark.parametrize("note", HOSTILE)
def test_unknown_objects_render_as_their_escaped_text(note: str) -> None:
    reply = Reply((Unrendered(note),))
    assert render_text(reply) == f"unrendered: {note}"
    [chunk] = render_html(reply)
    assert "".join(check_html(chunk).text) == f"unrendered: {note}"
    message = render_blocks(reply)
    for text in slack_texts(message.blocks) + [message.text]:
        check_slack_escaping(text)
    assert slack_unescape(message.blocks[0]["text"]["text"]) == f"unrendered: {note}"


def test_errors_are_one_sentence_with_the_reference_when_there_is_one() -> None:
    reply = Reply((ErrorText("Something went wrong on our side <x>.", "a1b2c3d4"),))
    assert render_text(reply) == "Error: Something went wrong on our side <x>. (reference a1b2c3d4)"
    assert render_html(reply) == ["⚠️ Something went wrong on our side &lt;x&gt;. (reference <code>a1b2c3d4</code>)"]
    block = render_blocks(reply).blocks[0]["text"]["text"]
    assert block == ":warning: Something went wrong on our side &lt;x&gt;. (reference `a1b2c3d4`)"


def test_help_listings_escape_summaries() -> None:
    listing = HelpListing((("/x <ARG>", "does <b>things</b> & more"),), "viewer")
    [chunk] = render_html(Reply((listing,)))
    assert "<code>/x &lt;ARG&gt;</code>" in chunk and "does &lt;b&gt;things&lt;/b&gt; &amp; more" in chunk
    check_html(chunk)
    message = render_blocks(Reply((listing,)))
    assert "`/x &lt;ARG&gt;`" in json.dumps(message.blocks)
