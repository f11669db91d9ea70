"""`--model compare` as files: one picture of every taint model's flows (which models followed each edge, the
addresses where they disagree outlined, folded and titled as a single trace's picture) read back from its SVG, and
one CSV row per transfer with each model's traced amount; and `/trace … --model compare` attaching them."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from bot.app import App
from bot.backends.testing import TestBackend
from storage.db import Database
from tests.support.pictures import SvgPicture
from tests.test_trace import addr, tx
from tests.test_trace_commands import ETH, WHEN, disagreeing
from tests.test_trace_commands import tx as ttx
from tracing.chain.address import checksum
from tracing.chain.index import TransferIndex
from tracing.investigator import Investigator
from tracing.risk.outputs import comparison_csv, comparison_csv_columns, comparison_svg, dot_available
from tracing.trace.compare import MODELS, ModelComparison
from tracing.trace.params import TraceParams

needs_dot = pytest.mark.skipif(not dot_available(), reason="Graphviz dot not installed")


def box_name(n: int) -> str:
    """How a picture names an address in its box: `0x000000…0003`."""
    full = checksum(addr(n))
    return f"{full[:8]}…{full[-4:]}"


async def compared(db: Database, **params: object) -> ModelComparison:
    disagreeing(db)
    return await Investigator(db, check_interval=0).compare(addr(1), "eth", TraceParams(**params))  # type: ignore[arg-type]


@needs_dot
async def test_the_compare_picture_shows_each_models_flows_and_outlines_where_they_disagree(db: Database) -> None:
    comparison = await compared(db, min_value=Decimal(1), since=WHEN - 50)
    picture = SvgPicture(comparison_svg(comparison))
    assert len(picture.addresses) == 4 and not picture.folded
    root, two = picture.box_with(box_name(1)), picture.box_with(box_name(2))
    three, four = picture.box_with(box_name(3)), picture.box_with(box_name(4))
    assert root.lines == (box_name(1), "root")
    assert two.lines[1:] == ("hop 1", "haircut: 10 ETH ($30,000)", "poison: 10 ETH ($30,000)", "fifo: 10 ETH ($30,000)")
    # first in, first out: 3 got 2's own money; haircut and poison say it carries traced funds
    assert three.lines[1:] == (
        "hop 2",
        "haircut: 5 ETH ($15,000)",
        "poison: 10 ETH ($30,000)",
        "fifo: not reached",
        "models disagree",
    )
    assert (three.stroke, three.stroke_width) == ("#d62728", 4)
    assert "models disagree" not in four.text and four.stroke == "black"
    to_three, to_four = picture.arrow(two, three), picture.arrow(two, four)
    assert to_three.lines == ("10 ETH ($30,000)", "2022-01-04", "followed by: haircut, poison")
    assert to_three.dashed and to_three.stroke == "#e6550d"
    assert to_four.lines == ("10 ETH ($30,000)", "2022-01-04") and not to_four.dashed
    assert picture.arrow(root, two).lines == ("10 ETH ($30,000)", "2022-01-03")
    assert len(picture.arrows) == 3
    assert picture.legend == (
        "traced address (root)",
        "unlabelled",
        "edge: amount moved; transfers, dates (UTC)",
        "box: what each model (haircut, poison, fifo) says reached the address",
        "solid edge: followed by every model",
        "dashed orange edge: followed by some models only (named on it)",
        "red border: the models disagree on this address",
    )
    head, settings, floor, shown = picture.title
    assert head == (
        f"Outgoing trace (where the funds went) of {checksum(addr(1))} on eth, up to 3 hops: taint models compared"
        " (haircut, poison, fifo); the models disagree on 1 address (outlined in red)"
    )
    assert settings.startswith("model: compared (haircut, poison, fifo); filters: min value 1, stops at ")
    assert "dust floor: $100 on the transfer's day" in settings and "time window: 2022-01-03 – …" in settings
    assert floor.startswith("folded below the dust floor: $100")
    assert shown == "transfers shown from 2022-01-03 to 2022-01-04; 4 of 4 addresses shown"


@needs_dot
async def test_the_compare_picture_folds_what_it_cannot_show(db: Database) -> None:
    TransferIndex(db).add([tx(1, 1000 + i, 1 + i / 1000, 100 + i) for i in range(150)])
    params = TraceParams(hops=1, fanout=200)
    comparison = await Investigator(db, check_interval=0).compare(addr(1), "eth", params)
    assert not comparison.disagreements and all(len(r) == 150 for r in comparison.reached.values())
    picture = SvgPicture(comparison_svg(comparison))
    assert len(picture.addresses) == 61  # the root, the 59 largest flows and one folded box
    ((_, folded),) = picture.folded.items()
    assert folded.lines[:2] == ("+91 more addresses (folded)", "91 transfers, 95.095 ETH (no USD price)")
    kept = picture.box_with(box_name(1149))
    assert kept.lines[2:] == tuple(f"{m.value}: 1.149 ETH (no USD price)" for m in MODELS)
    assert not any(a.dashed for a in picture.arrows)  # every model followed every transfer
    assert "+N more: folded dust and small flows" in picture.legend
    assert "red border: the models disagree on this address" not in picture.legend
    assert picture.title[0].endswith(
        "taint models compared (haircut, poison, fifo); the models reach the same addresses, amounts within 2×"
    )
    assert (
        "60 of 151 addresses shown; 91 folded into 1 node (0 under the dust floor, 91 smaller flows)"
        in (picture.title[-1])
    )


async def test_the_compare_csv_has_a_row_per_transfer_and_each_models_traced_amount(db: Database) -> None:
    comparison = await compared(db)
    rows = list(csv.DictReader(io.StringIO(comparison_csv(comparison))))
    header = comparison_csv_columns(MODELS)
    assert list(rows[0]) == list(header)
    assert header[13:23] == (
        "followed_by",
        "haircut_taint",
        "haircut_taint_amount",
        "haircut_taint_usd",
        "poison_taint",
        "poison_taint_amount",
        "poison_taint_usd",
        "fifo_taint",
        "fifo_taint_amount",
        "fifo_taint_usd",
    )
    assert [(r["from"], r["to"]) for r in rows] == [(addr(1), addr(2)), (addr(2), addr(3)), (addr(2), addr(4))]
    first, to_three, to_four = rows
    assert first["followed_by"] == "haircut;poison;fifo" and first["usd"] == "30000.00"
    assert to_three["followed_by"] == "haircut;poison"
    assert (to_three["haircut_taint"], to_three["haircut_taint_amount"], to_three["haircut_taint_usd"]) == (
        str(5 * 10**18),
        "5",
        "15000.00",
    )
    assert (to_three["poison_taint_amount"], to_three["poison_taint_usd"]) == ("10", "30000.00")
    assert (to_three["fifo_taint"], to_three["fifo_taint_amount"], to_three["fifo_taint_usd"]) == ("", "", "")
    assert (to_four["haircut_taint_amount"], to_four["fifo_taint_amount"]) == ("5", "10")
    assert to_four["amount"] == "10" and to_four["symbol"] == "ETH" and to_four["kind"] == "native"


async def test_trace_compare_replies_with_the_models_a_picture_and_a_csv(bot: TestBackend, app: App) -> None:
    disagreeing(app.db)
    reply = await bot.say(f"/trace {addr(1)} --model compare")
    assert reply.reply is not None and not reply.is_error, reply.text
    assert "Where they disagree (1 address):" in reply.text
    names = [a.filename for a in reply.reply.attachments]
    stem = f"compare-{addr(1)[:10]}-out-3h"
    expected = [f"{stem}.png", f"{stem}.svg", f"{stem}.csv"] if dot_available() else [f"{stem}.csv"]
    assert names == expected
    table = reply.reply.attachments[-1].content.decode()
    assert table.splitlines()[0].startswith("hop,from,to,") and len(table.splitlines()) == 4


async def test_trace_compare_without_graphviz_says_so_and_still_attaches_the_csv(
    bot: TestBackend, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    disagreeing(app.db)
    monkeypatch.setattr("tracing.risk.outputs.shutil.which", lambda name: None)
    reply = await bot.say(f"/trace {addr(1)} --model compare")
    assert reply.reply is not None and not reply.is_error
    assert "picture unavailable: Graphviz 'dot' is not installed" in reply.text
    assert [a.mime for a in reply.reply.attachments] == ["text/csv"]


@needs_dot
async def test_where_the_models_disagree_is_kept_before_larger_flows(db: Database) -> None:
    """With room for three boxes, the address the models disagree on (and its path) is drawn and the larger flows
    of the root to 6 and 7 are folded: the disagreement is what the picture is about."""
    disagreeing(db)
    TransferIndex(db).add([ttx(1, 6, 50 * ETH, WHEN + 10), ttx(1, 7, 40 * ETH, WHEN + 20)])
    comparison = await Investigator(db, check_interval=0).compare(addr(1), "eth")
    assert [d.address for d in comparison.disagreements] == [addr(3)]
    picture = SvgPicture(comparison_svg(comparison, max_nodes=3))
    kept = {box.lines[0] for box in picture.addresses.values() if not box.lines[0].endswith("(folded)")}
    assert kept == {box_name(1), box_name(2), box_name(3)}
    assert picture.box_with(box_name(3)).stroke == "#d62728"
    folds = sorted(box.lines[:2] for box in picture.folded.values())
    assert folds == [  # one folded box beside each kept address the folded ones hang from
        ("+1 more address (folded)", "1 transfer, 10 ETH ($30,000)"),
        ("+2 more addresses (folded)", "2 transfers, 90 ETH ($270,000)"),
    ]
