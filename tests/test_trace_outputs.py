"""Trace and report file formats (JSON, CSV, flow-graph picture) and `/trace` in chat with its attachments."""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal

import pytest

from bot.app import App
from bot.backends.testing import TestBackend
from bot.render.text import render_part
from storage.db import Database
from tests.support.pictures import SvgPicture
from tests.test_trace import ETH, USDT, addr, label, tx
from tracing.chain.address import checksum
from tracing.chain.demo import RONIN_EXPLOITER, load_demo
from tracing.chain.index import TransferIndex
from tracing.chain.transfer import Direction
from tracing.investigator import Investigator
from tracing.labels import Category, LabelBook
from tracing.labels.bundled import ensure_bundled_labels
from tracing.risk.outputs import (
    DOT_MISSING,
    PictureUnavailable,
    dot_available,
    render_picture,
    risk_csv,
    risk_json,
    to_json_text,
    trace_csv,
    trace_dot,
    trace_json,
    trace_png,
    trace_svg,
    trace_words,
)
from tracing.trace.model import Trace
from tracing.trace.params import TraceParams


def seed(db: Database, start: int = 0) -> None:
    """Four transfers at `start` + 100…300 seconds."""
    TransferIndex(db).add(
        [
            tx(1, 2, 10, start + 100),
            tx(2, 3, 4, start + 200),
            tx(2, 50, 6, start + 210),
            tx(3, 51, 2500, start + 300, token=USDT, decimals=6),
        ]
    )
    book = LabelBook(db)
    book.add(label(50, Category.EXCHANGE, "Binance 14"))
    book.add(label(51, Category.MIXER, "Tornado.Cash: Router"))


async def traced(db: Database, **params: object) -> Trace:
    seed(db)
    return await Investigator(db, check_interval=0).trace(addr(1), params=TraceParams(hops=3, **params))  # type: ignore[arg-type]


async def test_trace_json_has_nodes_edges_and_coverage_with_exact_values(db: Database) -> None:
    data = json.loads(to_json_text(trace_json(await traced(db))))
    assert {"nodes", "edges", "coverage", "cuts", "root", "direction", "hops", "model"} <= set(data)
    nodes = {n["address"]: n for n in data["nodes"]}
    assert nodes[addr(50)]["terminal"] is True and nodes[addr(50)]["hop"] == 2
    assert (
        nodes[addr(50)]["labels"][0] | {"category": "exchange", "name": "Binance 14", "source": "test-tagpack"}
        == (nodes[addr(50)]["labels"][0])
    )
    assert nodes[addr(2)]["terminal"] is False
    edges = {(e["from"], e["to"]): e for e in data["edges"]}
    first = edges[(addr(1), addr(2))]
    assert first["value"] == str(10 * ETH) and first["token"] is None and isinstance(first["block"], int)
    assert edges[(addr(3), addr(51))]["value"] == "2500000000" and edges[(addr(3), addr(51))]["token"] == USDT
    assert first["tx_hash"].startswith("0x") and len(first["tx_hash"]) == 66
    assert data["coverage"]["hop_budget"] == 3 and data["coverage"]["traced"] is True


async def test_trace_csv_has_one_row_per_edge(db: Database) -> None:
    result = await traced(db)
    rows = list(csv.DictReader(io.StringIO(trace_csv(result))))
    assert len(rows) == len(result.edges) == 4
    usdt = next(r for r in rows if r["token"] == USDT)
    assert usdt["value"] == "2500000000" and usdt["amount"] == "2500" and usdt["symbol"] == "USDT"
    assert usdt["to_labels"] == "mixer:Tornado.Cash: Router"
    eth = next(r for r in rows if r["from"] == addr(1))
    assert eth["amount"] == "10" and eth["symbol"] == "ETH" and eth["taint"] == str(10 * ETH)


async def test_risk_json_and_csv(db: Database) -> None:
    seed(db)
    report = await Investigator(db, check_interval=0).risk(addr(1))
    data = risk_json(report)
    assert {"address", "chain", "score", "level", "sanctioned", "labels", "exposures", "coverage"} <= set(data)
    mixer = next(e for e in data["exposures"] if e["category"] == "mixer")
    assert mixer["direction"] == "outgoing" and mixer["hops"] == 3
    assert mixer["amount"][0]["value"].isdigit() and len(mixer["path"]) == 3
    assert mixer["rule"] == "graded by value and hops" and mixer["counted"] is True and mixer["first_at"] == 300
    assert mixer["timing"] == "listing date unknown" and mixer["timing_note"] == "the label has no date"
    assert [(t["direction"], t["category"], t["counterparties"]) for t in data["totals"]] == [("outgoing", "mixer", 1)]
    assert data["leads"] == [] and data["service"] is None and data["history"]
    rows = list(csv.DictReader(io.StringIO(risk_csv(report))))
    assert len(rows) == len(report.exposures)
    assert {r["kind"] for r in rows} == {"exposure"} and rows[0]["first_utc"].startswith("1970-01-01")


_TEXT = r'"((?:[^"\\]|\\.)*)"'


class Picture:
    """A DOT picture parsed back: its title, address boxes (folded ones apart), edges and legend entries."""

    def __init__(self, dot: str) -> None:
        def text(raw: str) -> str:
            return raw.replace("\\n", "\n").replace('\\"', '"')

        self.title = text(re.search(r"graph \[.*label=" + _TEXT, dot).group(1))  # type: ignore[union-attr]
        self.nodes = {m.group(1): text(m.group(2)) for m in re.finditer(r"^  (n\d+) \[label=" + _TEXT, dot, re.M)}
        self.edges = [
            (m.group(1), m.group(2), text(m.group(3)))
            for m in re.finditer(r"^  (n\d+) -> (n\d+) \[label=" + _TEXT, dot, re.M)
        ]
        self.legend = [text(m.group(2)) for m in re.finditer(r"^    (legend_\w+) \[label=" + _TEXT, dot, re.M)]
        self.folded = {key: label for key, label in self.nodes.items() if "(folded)" in label}

    def boxes(self) -> int:
        return len(self.nodes)


async def test_big_traces_show_the_largest_flows_and_fold_the_rest(db: Database) -> None:
    TransferIndex(db).add([tx(1, 1000 + i, 1 + i / 1000, 100 + i) for i in range(150)])
    result = await Investigator(db, check_interval=0).trace(addr(1), params=TraceParams(hops=1, fanout=200))
    picture = Picture(trace_dot(result))
    assert picture.boxes() == 61  # the root, the 59 largest flows and one folded node: readable
    ((_, folded),) = picture.folded.items()
    assert folded.startswith("+91 more addresses (folded)") and "91 transfers, 95.095 ETH" in folded
    assert (
        "60 of 151 addresses shown; 91 folded into 1 node (0 under the dust floor, 91 smaller flows)" in picture.title
    )
    shown = "\n".join(picture.nodes.values())
    assert "1.149 ETH" in shown and "1.001 ETH" not in shown  # the largest flows are the ones kept
    assert all(re.search(r"\d{4}-\d{2}-\d{2}", label) for _, _, label in picture.edges)  # dates on every edge


async def test_the_picture_has_a_title_with_the_settings_and_a_legend(db: Database) -> None:
    result = await traced(db, min_value=Decimal(1))
    picture = Picture(trace_dot(result))
    assert picture.title.startswith(f"Outgoing trace (where the funds went) of {checksum(addr(1))} on eth, up to 3")
    settings = ("model: haircut taint", "filters: min value 1", "dust floor: $100 on the transfer's day", "time window")
    for words in settings:
        assert words in picture.title, words
    assert {"traced address (root)", "Exchange", "Mixer", "unlabelled"} <= set(picture.legend)
    assert any(label.startswith("edge: amount moved") for label in picture.legend)
    assert not picture.folded and "+N more: folded dust and small flows" not in picture.legend
    (binance,) = [label for label in picture.nodes.values() if "Binance 14" in label]
    assert "hop 2 · stop: service" in binance and "traced: 6 ETH" in binance
    text = await Investigator(db, check_interval=0).trace(addr(1), params=TraceParams(hops=3, min_value=Decimal(1)))
    assert trace_words(text) in render_part(text)  # the same settings in the text header and coverage


async def test_an_incoming_trace_of_the_ronin_exploiter_folds_its_dust_senders(db: Database) -> None:
    load_demo(db)
    investigator = Investigator(db, check_interval=0)
    ensure_bundled_labels(investigator.labels)
    # the graph walk, which reaches every dust sender (a value-aware walk, where there is one, would not follow them)
    graph_walk = {"follow_value": False} if "follow_value" in TraceParams.__dataclass_fields__ else {}
    params = TraceParams(direction=Direction.IN, hops=3, **graph_walk)  # type: ignore[arg-type]
    result = await investigator.trace(RONIN_EXPLOITER, params=params)
    assert len(result.nodes) > 90  # a column of ~98 addresses before folding
    picture = Picture(trace_dot(result))
    assert picture.boxes() <= 10
    ((key, folded),) = picture.folded.items()
    folding = r"\+9\d more addresses \(folded\)\n1\d\d transfers, 0\.16\d* ETH \(no USD price\)\n9\d under the dust"
    assert re.match(folding, folded)
    assert any(a == key for a, _, _ in picture.edges)  # the folded senders still point at the exploiter
    assert "Incoming trace (where the funds came from)" in picture.title
    assert "dust floor: none (graph walk" in picture.title
    assert "folded below the dust floor: $250 (0.2 ETH" in picture.title
    assert "Binance 20" in "\n".join(picture.nodes.values())
    assert "+N more: folded dust and small flows" in picture.legend


async def test_picture_is_a_png_and_an_svg_when_graphviz_is_installed(db: Database) -> None:
    if not dot_available():
        pytest.skip("Graphviz dot not installed")
    result = await traced(db)
    png = trace_png(result)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    svg = trace_svg(result).decode()
    assert "<svg" in svg and "Legend" in svg and checksum(addr(1)) in svg
    assert render_picture(trace_dot(result), fmt="svg").decode().count('<g id="node') == len(
        Picture(trace_dot(result)).nodes
    ) + len(Picture(trace_dot(result)).legend)


async def test_missing_graphviz_is_a_specific_error(db: Database) -> None:
    result = await traced(db)
    with pytest.raises(PictureUnavailable) as caught:
        trace_png(result, binary="no-such-dot-binary")
    assert str(caught.value) == "graph picture unavailable: Graphviz 'dot' is not installed" == DOT_MISSING


async def test_trace_command_replies_with_summary_picture_and_csv(bot: TestBackend, app: App) -> None:
    seed(app.db)
    reply = await bot.say(f"/trace {addr(1)} --hops 3")
    assert reply.reply is not None and not reply.is_error, reply.text
    assert "Terminals (2" in reply.text
    assert "Exchange: Binance 14 (test-tagpack)" in reply.text and "hop 2" in reply.text
    assert "Mixer: Tornado.Cash: Router" in reply.text and "2,500.00 USDT" in reply.text
    mimes = {a.mime: a for a in reply.reply.attachments}
    assert set(mimes) == ({"image/png", "image/svg+xml", "text/csv"} if dot_available() else {"text/csv"})
    assert mimes["text/csv"].content.decode().count("\n") == 5
    if dot_available():
        assert mimes["image/png"].content.startswith(b"\x89PNG")


async def test_trace_command_without_graphviz_says_so_and_still_attaches_the_csv(
    bot: TestBackend, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(app.db)
    monkeypatch.setattr("tracing.risk.outputs.shutil.which", lambda name: None)
    reply = await bot.say(f"/trace {addr(1)}")
    assert reply.reply is not None and not reply.is_error
    assert "picture unavailable: Graphviz 'dot' is not installed" in reply.text
    assert [a.mime for a in reply.reply.attachments] == ["text/csv"]


async def test_trace_command_options_and_errors(bot: TestBackend, app: App) -> None:
    new_year = 1640995200  # 2022-01-01: the grammar takes times between 2009 and 2100
    seed(app.db, start=new_year)
    backward = await bot.say(f"/trace {addr(51)} --direction in --hops 2 --model poison")
    assert "Incoming trace" in backward.text and "poison taint" in backward.text
    filtered = await bot.say(f"/trace {addr(1)} --min-value 5 --hops 3")
    assert "Binance" in filtered.text and "Tornado" not in filtered.text  # the 4 ETH leg is below 5
    late = await bot.say(f"/trace {addr(1)} --since 2022-01-01 --until {new_year + 150}")
    assert "Reached 1 addresses" in late.text
    for bad, says in [
        (f"/trace {addr(1)} --hops 11", "out of range"),
        (f"/trace {addr(1)} --direction sideways", "not one of"),
        (f"/trace {addr(1)} --model lifo", "not one of"),
        (f"/trace {addr(1)} --since yesterday", "not a date"),
        (f"/trace {addr(1)} --since 1970-01-01", "between 2009 and 2100"),
        ("/trace 0x1234", "40 hex digits"),
    ]:
        reply = await bot.say(bad)
        assert reply.is_error and says in reply.text, (bad, reply.text)
    listing = await bot.say("/help")
    assert "/trace ADDRESS" in listing.text


@pytest.mark.skipif(not dot_available(), reason="Graphviz dot not installed")
async def test_the_svg_picture_shows_boxes_folding_edges_legend_and_a_title(db: Database) -> None:
    """The picture as drawn (the SVG read back): about 60 boxes, the rest folded into one box with its count and
    total, an edge with amount and date to every box, the legend's entries and a title with the settings."""
    TransferIndex(db).add([tx(1, 1000 + i, 1 + i / 1000, 100 + i) for i in range(150)])
    LabelBook(db).add(label(1000, Category.EXCHANGE, "Binance 14"))
    params = TraceParams(hops=1, fanout=200, min_value=Decimal("0.5"), since=50, until=4_000_000_000)
    result = await Investigator(db, check_interval=0).trace(addr(1), params=params)
    picture = SvgPicture(trace_svg(result))
    assert len(picture.addresses) == 61  # the root, 59 flows and one folded box
    ((name, folded),) = picture.folded.items()
    assert folded.lines[:2] == ("+91 more addresses (folded)", "91 transfers, 95.186 ETH (no USD price)")
    assert folded.dashed
    root = picture.box_with(f"{checksum(addr(1))[:8]}…{checksum(addr(1))[-4:]}")
    assert root.lines[-1] == "root" and root.stroke_width == 3
    assert picture.box_with("Binance 14").lines[1:3] == ("Exchange: Binance 14", "hop 1 · stop: service")
    assert len(picture.arrows) == 60 and all(a.tail == root.name for a in picture.arrows)
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", a.lines[-1]) for a in picture.arrows if a.head != name)
    assert picture.arrow(root, folded).lines == ("95.186 ETH (no USD price)", "91 tx, 1970-01-01")
    assert picture.legend == (
        "traced address (root)",
        "Exchange",
        "unlabelled",
        "+N more: folded dust and small flows",
        "edge: amount moved; transfers, dates (UTC)",
    )
    assert picture.clusters["cluster_legend"] == ("Legend",)
    title = "\n".join(picture.title)
    assert picture.title[0] == f"Outgoing trace (where the funds went) of {checksum(addr(1))} on eth, up to 1 hops"
    for words in (
        "model: haircut taint",
        "filters: min value 0.5",
        "dust floor: $100 on the transfer's day",
        "time window: 1970-01-01 – 2096-10-02",
        "folded below the dust floor: $100",
        "60 of 151 addresses shown; 91 folded into 1 node",
    ):
        assert words in title, words
