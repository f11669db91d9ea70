"""Trace and report file formats (JSON, CSV, flow-graph picture) and `/trace` in chat with its attachments."""

from __future__ import annotations

import csv
import io
import json

import pytest

from bot.app import App
from bot.backends.testing import TestBackend
from storage.db import Database
from tests.test_trace import ETH, USDT, addr, label, tx
from tracing.chain.index import TransferIndex
from tracing.investigator import Investigator
from tracing.labels import Category, LabelBook
from tracing.risk.outputs import (
    DOT_MISSING,
    PictureUnavailable,
    dot_available,
    render_png,
    report_dot,
    risk_csv,
    risk_json,
    to_json_text,
    trace_csv,
    trace_dot,
    trace_json,
    trace_png,
)
from tracing.trace.model import Trace
from tracing.trace.params import TraceParams


def seed(db: Database) -> None:
    TransferIndex(db).add(
        [
            tx(1, 2, 10, 100),
            tx(2, 3, 4, 200),
            tx(2, 50, 6, 210),
            tx(3, 51, 2500, 300, token=USDT, decimals=6),
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
    rows = list(csv.DictReader(io.StringIO(risk_csv(report))))
    assert len(rows) == len(report.exposures)


async def test_big_traces_are_summarised_in_the_picture(db: Database) -> None:
    TransferIndex(db).add([tx(1, 1000 + i, 1 + i / 1000, 100) for i in range(150)])
    result = await Investigator(db, check_interval=0).trace(addr(1), params=TraceParams(hops=1, fanout=200))
    dot = trace_dot(result, max_nodes=100)
    assert dot.count("[label=") - dot.count("->") == 101  # 100 addresses + the "+N more" node
    assert "+51 more addresses" in dot
    assert "1.149 ETH" in dot  # the largest flows are the ones kept
    assert "1.001 ETH" not in dot


async def test_picture_is_a_png_when_graphviz_is_installed(db: Database) -> None:
    if not dot_available():
        pytest.skip("Graphviz dot not installed")
    result = await traced(db)
    png = trace_png(result)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    report = await Investigator(db, check_interval=0).risk(addr(1))
    assert render_png(report_dot(report)).startswith(b"\x89PNG")


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
    assert set(mimes) == ({"image/png", "text/csv"} if dot_available() else {"text/csv"})
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
    seed(app.db)
    backward = await bot.say(f"/trace {addr(51)} --direction in --hops 2 --model poison")
    assert "Incoming trace" in backward.text and "poison taint" in backward.text
    filtered = await bot.say(f"/trace {addr(1)} --min-value 5 --hops 3")
    assert "Binance" in filtered.text and "Tornado" not in filtered.text  # the 4 ETH leg is below 5
    late = await bot.say(f"/trace {addr(1)} --since 1970-01-01 --until 150")
    assert "Reached 1 addresses" in late.text
    for bad, says in [
        (f"/trace {addr(1)} --hops 11", "out of range"),
        (f"/trace {addr(1)} --direction sideways", "not one of"),
        (f"/trace {addr(1)} --model fifo", "not one of"),
        (f"/trace {addr(1)} --since yesterday", "not a date"),
        ("/trace 0x1234", "40 hex digits"),
    ]:
        reply = await bot.say(bad)
        assert reply.is_error and says in reply.text, (bad, reply.text)
    listing = await bot.say("/help")
    assert "/trace ADDRESS" in listing.text
