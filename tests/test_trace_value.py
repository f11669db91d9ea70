"""Value-aware traces (issue #12): the walk follows the traced amount in time order under haircut, poison and FIFO,
leaves dust out but says how much, follows money that moves on in small amounts, goes through swaps, stops at
services but not at sanctioned wallets, and gives the same trace over the in-memory graph as over SQL."""

from __future__ import annotations

import csv
import io
import random
from dataclasses import replace
from decimal import Decimal

import pytest

from bot.render.text import render_part
from storage.db import Database
from tests.test_trace import USDT, addr, both, hops_of, label, tx
from tracing.chain.index import TransferIndex
from tracing.errors import InvalidArgument
from tracing.labels import Category, LabelBook
from tracing.risk.outputs import trace_csv, trace_dot, trace_json
from tracing.trace.compare import MODELS, compare_models
from tracing.trace.params import Direction, TraceParams
from tracing.trace.sources import IndexSource
from tracing.trace.taint import TaintModel
from tracing.trace.value import PASS_WINDOW, Followed, FollowedBy, Ledger, PassThrough, shortfall
from tracing.trace.walk import trace_funds


def usd(frm: int, to: int, dollars: float, ts: int) -> object:
    return tx(frm, to, dollars, ts, token=USDT, decimals=6)  # USDT: priced at its peg


# --- the ledger --------------------------------------------------------------------------------------------------


def test_haircut_carries_the_traced_share_of_the_balance() -> None:
    ledger = Ledger(TaintModel.HAIRCUT, {None: 30})  # its own 30 before the traced funds arrived
    ledger.receive(None, 10, 10)
    assert ledger.send(None, 20) == 5  # a quarter of what it holds is traced
    assert ledger.send(None, 20) == 5
    assert ledger.send(None, 1) == 0  # nothing left


def test_fifo_spends_the_oldest_value_first() -> None:
    ledger = Ledger(TaintModel.FIFO, {None: 30})
    ledger.receive(None, 10, 10)
    assert ledger.send(None, 30) == 0  # its own funds leave first (Clayton's case)
    assert ledger.send(None, 5) == 5
    assert ledger.send(None, 5) == 5


def test_poison_taints_everything_after_the_arrival() -> None:
    ledger = Ledger(TaintModel.POISON, {None: 1000})
    assert ledger.send(None, 10) == 0  # nothing traced yet
    ledger.receive(None, 1, 1)
    assert ledger.send(None, 500) == 500


def test_traced_funds_are_conserved_beyond_the_known_balance() -> None:
    ledger = Ledger(TaintModel.HAIRCUT, {None: 50})
    ledger.receive(None, 50, 50)
    assert ledger.send(None, 100) == 50
    # history the source lacks (an index that starts late, a cut): what leaves beyond the known balance is not
    # traced, so 1 ETH of traced funds can never become 30,000 ETH "traced" downstream
    assert ledger.send(None, 10) == 0
    ledger.receive(None, 1, 0)
    assert ledger.send(None, 10) == 0
    fifo = Ledger(TaintModel.FIFO, {})
    fifo.receive(None, 10, 10)
    assert fifo.send(None, 25) == 10  # all it held of the traced funds, no more


def test_money_the_history_does_not_show_was_there_from_the_start() -> None:
    # in 1,000, out 600, out 600: it lacked 200 (a swap return the source omits, an index that starts late)
    assert shortfall({None: 0}, [(None, 1_000), (None, -600), (None, -600)]) == {None: 200}
    assert shortfall({None: 300}, [(None, 1_000), (None, -600), (None, -600)]) == {}
    assert shortfall({}, [("usdt", -5), (None, 2), ("usdt", 3), ("usdt", -10)]) == {"usdt": 12}


# --- traces ------------------------------------------------------------------------------------------------------


async def test_traced_funds_are_shared_out_over_transfers_beyond_the_known_balance(db: Database) -> None:
    # 2 gets $1,000 of the traced funds and sends $800 (not the receipt passed on: 20 % short), then $400 it is not
    # known to have: the $200 it lacked was there from the start, so the $400 carries its share of the traced funds
    # (not the $200 left after the first)
    TransferIndex(db).add([usd(1, 2, 1_000, 100), usd(2, 3, 800, 110), usd(2, 4, 400, 120)])
    result, _ = await both(db, 1, TraceParams(hops=2))
    assert hops_of(result) == {addr(1): 0, addr(2): 1, addr(3): 2, addr(4): 2}
    carried = {e.to_addr: result.carried(e) for e in result.edges if e.from_addr == addr(2)}
    assert carried == {addr(3): 666_666_666, addr(4): 333_333_334}  # 1,000 / 1,200 of each
    assert sum(carried.values()) <= 1_000 * 10**6  # conserved
    fifo, _ = await both(db, 1, TraceParams(hops=2, model=TaintModel.FIFO))  # the traced lot leaves first
    carried = {e.to_addr: fifo.carried(e) for e in fifo.edges if e.from_addr == addr(2)}
    assert carried == {addr(3): 800 * 10**6, addr(4): 200 * 10**6}


async def test_a_receipt_passed_on_carries_its_traced_value_not_the_balance_share(db: Database) -> None:
    # 2 holds $19,000 of its own; $1,000 of the traced funds arrive and $990 leave an hour later (a pass-through,
    # gas off), then it pays $300 to 4 and $2,000 to 5 (an hour and two days after): under the balance's share
    # the $990 would carry 5 % traced ($49.50: diluted, not followed) and every later payment its share of the rest
    TransferIndex(db).add(
        [usd(9, 2, 19_000, 10), usd(1, 2, 1_000, 100), usd(2, 3, 990, 3_700), usd(2, 4, 300, 7_300)]
        + [usd(2, 5, 2_000, 180_000)]
    )
    result, _ = await both(db, 1, TraceParams(hops=2, since=100))
    carried = {e.to_addr: result.carried(e) for e in result.edges if e.from_addr == addr(2)}
    assert carried == {addr(3): 990 * 10**6}  # the receipt moving on; $10 left, shared thin: not followed
    assert set(hops_of(result)) == {addr(1), addr(2), addr(3)}
    # each followed transfer says why: the $990 names the receipt it passes on, in the CSV and the JSON too
    receipt, passed = (next(e for e in result.edges if e.from_addr == addr(n)) for n in (1, 2))
    assert result.followed_by(receipt) == Followed(FollowedBy.FLOOR, None)
    assert result.followed_by(passed) == Followed(FollowedBy.FLOOR, receipt.tx_hash)
    rows = {row["from"]: row for row in csv.DictReader(io.StringIO(trace_csv(result)))}
    assert (rows[addr(2)]["follow_rule"], rows[addr(2)]["passes_on_tx"]) == ("dust floor", receipt.tx_hash)
    assert (rows[addr(1)]["follow_rule"], rows[addr(1)]["passes_on_tx"]) == ("dust floor", "")
    edges = {e["from"]: e for e in trace_json(result)["edges"]}
    assert (edges[addr(2)]["follow_rule"], edges[addr(2)]["passes_on_tx"]) == ("dust floor", receipt.tx_hash)
    assert "Why followed: 2 carry at least the dust floor; 1 of them passes a receipt on" in render_part(result)
    picture = trace_dot(result)  # the edge says so, and the legend says what it means
    assert picture.count("passes on a receipt") == 2 and "legend_passes" in picture
    # the analyst can turn the amount matching off: the $990 then carries the balance's share, 5 % ($49.50, not
    # followed), and the $2,000 two days later its share of what is left ($101.60: followed)
    plain, _ = await both(db, 1, TraceParams(hops=2, since=100, pass_through=False))
    assert set(hops_of(plain)) == {addr(1), addr(2), addr(5)}
    assert all(plain.followed_by(e) == Followed(FollowedBy.FLOOR) for e in plain.edges)
    assert "no pass-through (no link by matching amounts)" in render_part(plain)
    assert "no pass-through: every transfer carries its balance's share" in render_part(plain)
    # not a pass-through: over a day later, more than the receipt, or 5 % short or more
    cases = ((100 + 86_401, 990), (3_700, 1_001), (3_700, 949))
    for i, (late, amount) in enumerate(cases):
        a, b = 100 + 10 * i, 101 + 10 * i
        TransferIndex(db).add([usd(9, b, 19_000, 10), usd(a, b, 1_000, 100), usd(b, 3, amount, late)])
        result, _ = await both(db, a, TraceParams(hops=2, since=100))
        assert addr(3) not in hops_of(result), (late, amount)  # 5 % traced: under the floor's share rule
    # FIFO is its own rule (Clayton's case): the pass-through is haircut's
    TransferIndex(db).add([usd(9, 201, 19_000, 10), usd(200, 201, 1_000, 100), usd(201, 3, 990, 3_700)])
    fifo, _ = await both(db, 200, TraceParams(hops=2, since=100, model=TaintModel.FIFO))
    assert addr(3) not in hops_of(fifo)  # its own $19,000 leaves first


async def test_backward_a_receipt_passed_on_points_at_the_transfer_in_that_funded_it(db: Database) -> None:
    # traced backward from 3: 2 sent 3 $990, an hour after $1,000 came in from 1; 2 also holds $19,000 from 9,
    # which came earlier. The $1,000 from 1 is where the $990 came from (a pass-through, fee off); 9's money is not
    TransferIndex(db).add([usd(9, 2, 19_000, 10), usd(1, 2, 1_000, 100), usd(2, 3, 990, 3_700)])
    result, _ = await both(db, 3, TraceParams(hops=2, direction=Direction.IN))
    carried = {e.from_addr: result.carried(e) for e in result.edges if e.to_addr == addr(2)}
    assert carried == {addr(1): 990 * 10**6}
    # the other way round (more came in than went out: not a pass-through backward), the share rule decides
    TransferIndex(db).add([usd(19, 12, 19_000, 10), usd(11, 12, 900, 100), usd(12, 13, 990, 3_700)])
    result, _ = await both(db, 13, TraceParams(hops=2, direction=Direction.IN))
    carried = {e.from_addr: result.carried(e) for e in result.edges if e.to_addr == addr(12)}
    assert addr(11) not in carried


def test_pass_through_takes_the_latest_open_receipt_once_and_names_it() -> None:
    passing = PassThrough()
    passing.receive("usdt", 1_000, 100, 1_000, "0xa")
    passing.receive("usdt", 1_000, 200, 900, "0xb")
    passing.receive("usdt", 1_000, 300, 400, "0xc")  # less than half traced: not open
    passing.receive(None, 1_000, 300, 1_000, "0xd")
    assert passing.match("usdt", 990, 400) == (900, "0xb")  # the latest open one
    assert passing.match("usdt", 1_000, 400) == (1_000, "0xa")
    assert passing.match("usdt", 1_000, 400) is None  # each once
    assert passing.match(None, 960, 300 + PASS_WINDOW) == (1_000, "0xd")
    passing.receive("dai", 1_000, 0, 1_000, "0xe")
    assert passing.match("dai", 1_000, PASS_WINDOW + 1) is None
    backward = PassThrough(outgoing=False)  # the receipt is a transfer out; the transfer in may be up to 5 % more
    backward.receive("usdt", 990, 100, 990, "0xf")
    assert backward.match("usdt", 1_000, 50) == (990, "0xf")
    backward.receive("usdt", 1_000, 100, 1_000, "0x10")
    assert backward.match("usdt", 990, 50) is None


async def test_a_cut_history_does_not_make_a_little_traced_money_a_fortune(db: Database) -> None:
    # 2 (a busy wallet whose history the source cut) gets $1,000 traced and sends $1,000,000 in ten transfers
    TransferIndex(db).add([usd(1, 2, 1_000, 100)] + [usd(2, 10 + i, 100_000, 110 + i) for i in range(10)])
    result, _ = await both(db, 1, TraceParams(hops=2))
    assert set(hops_of(result)) == {addr(1), addr(2)}  # $100 of $100,000 each: diluted, summed as not followed


async def test_dust_from_an_address_that_received_millions_is_summed_not_followed(db: Database) -> None:
    TransferIndex(db).add(
        [
            usd(9, 2, 500, 50),  # A's own money, before
            usd(2, 8, 400, 60),  # A's own history: never followed
            usd(1, 2, 1_000_000, 100),
            usd(2, 3, 5, 110),  # a few dollars on
            usd(2, 4, 7, 120),
            usd(2, 5, 900_000, 130),
        ]
    )
    result, _ = await both(db, 1, TraceParams(hops=2))
    assert set(hops_of(result)) == {addr(1), addr(2), addr(5)}
    assert result.value_aware
    (line,) = [c for c in result.coverage.cuts if "not followed" in c]
    assert line.startswith("2 transfers carrying traced funds under $100") and "$12.00 in all" in line
    assert "$100" in result.coverage.follow_rule and "haircut" in result.coverage.follow_rule
    graph_walk, _ = await both(db, 1, TraceParams(hops=2, follow_value=False))
    assert {addr(3), addr(4), addr(8)} - set(hops_of(graph_walk)) == {addr(8)}  # the graph walk took the dust


async def test_money_that_moves_on_in_small_amounts_is_followed(db: Database) -> None:
    # 30 × $30 out of $900, and 7 takes $80 of $100 (under the floor, but most of what 7 received, on its own)
    TransferIndex(db).add(
        [usd(1, 2, 900, 100)]
        + [usd(2, 100 + i, 30, 200 + i) for i in range(30)]
        + [usd(1, 7, 100, 100), usd(7, 8, 80, 300)]
    )
    result, _ = await both(db, 1, TraceParams(hops=2))
    assert {addr(100 + i) for i in range(30)} | {addr(8)} <= set(hops_of(result))
    why = {e.to_addr: result.followed_by(e) for e in result.edges}
    assert {why[addr(100 + i)] for i in range(30)} == {Followed(FollowedBy.TOGETHER)}
    assert why[addr(8)] == Followed(FollowedBy.SHARE)
    assert (why[addr(2)], why[addr(7)]) == (Followed(FollowedBy.FLOOR), Followed(FollowedBy.FLOOR))  # the root's
    assert "Why followed: 2 carry at least the dust floor, 1 carries the follow share alone, 30 are small" in (
        render_part(result)
    )
    assert "passes on a receipt" not in trace_dot(result) and "legend_passes" not in trace_dot(result)


async def test_a_transfer_of_an_asset_without_any_floor_says_so_not_that_it_met_the_floor(db: Database) -> None:
    # ETH with no price and no floor in units: followed at any traced amount, and the reason is that, not the floor
    TransferIndex(db).add([tx(1, 2, 10, 100), tx(2, 3, 0.01, 200), usd(2, 4, 500, 300)])
    result, _ = await both(db, 1, TraceParams(hops=2))
    why = {e.to_addr: result.followed_by(e) for e in result.edges}
    assert why[addr(2)] == why[addr(3)] == Followed(FollowedBy.NO_FLOOR)
    assert addr(4) not in why  # USDT it never received: its own money, priced, under the rule as usual
    assert "Why followed: 2 have no floor for their asset (no USD price, no floor in units)." in render_part(result)
    priced, _ = await both(db, 1, TraceParams(hops=2, dust_units=(("native", Decimal("1")),)))
    assert [priced.followed_by(e) for e in priced.edges] == [Followed(FollowedBy.FLOOR)]  # 10 ETH ≥ 1; 0.01 is not


async def test_an_address_own_spending_with_a_trace_of_the_funds_is_not_followed(db: Database) -> None:
    TransferIndex(db).add([usd(9, 2, 10_000, 50), usd(1, 2, 40, 100), usd(2, 3, 60, 110), usd(2, 4, 50, 120)])
    result, _ = await both(db, 1, TraceParams(hops=2))
    assert set(hops_of(result)) == {addr(1), addr(2)}  # under 1% of each payment was traced


async def test_other_money_with_a_trace_of_the_funds_is_not_followed_at_any_amount(db: Database) -> None:
    # a peel chain (2) holding $280,000 of its own takes a $400 payment of the traced funds and moves on: $399 of
    # traced value ride along, over the floor and over 3x it, but 0.14 % of the transfer: someone else's money
    TransferIndex(db).add([usd(9, 2, 280_000, 50), usd(1, 2, 400, 100), usd(2, 3, 280_000, 110)])
    result, _ = await both(db, 1, TraceParams(hops=2))
    assert set(hops_of(result)) == {addr(1), addr(2)}
    (line,) = [c for c in result.coverage.cuts if "not followed" in c]
    assert line.startswith("1 transfer carrying traced funds") and "$399" in line


async def test_a_sanctioned_wallet_is_not_a_stop_a_service_is_and_through_goes_past(db: Database) -> None:
    TransferIndex(db).add([usd(1, 2, 5_000, 100), usd(2, 3, 5_000, 110), usd(3, 4, 5_000, 120), usd(4, 5, 5_000, 130)])
    book = LabelBook(db)
    book.add(label(2, Category.SANCTIONS, "Lazarus Group"))
    book.add(label(3, Category.MIXER, "Tornado.Cash: Router"))
    result, _ = await both(db, 1, TraceParams(hops=4))
    assert hops_of(result) == {addr(1): 0, addr(2): 1, addr(3): 2}  # past the sanctioned wallet, stopped at the mixer
    assert [n.address for n in result.terminals] == [addr(3)]
    through, _ = await both(db, 1, TraceParams(hops=4, through=frozenset({Category.MIXER})))
    assert hops_of(through)[addr(5)] == 4
    assert [n.address for n in through.through] == [addr(3)]
    assert any("identity lost" in gap and addr(3) in gap for gap in through.coverage.gaps)


async def test_a_swap_in_one_transaction_is_one_movement_of_the_same_funds(db: Database) -> None:
    sent = usd(2, 7, 2_000, 200)  # into the router
    back = replace(tx(7, 2, 1, 200), tx_hash=sent.tx_hash)  # 1 ETH back in the same transaction
    TransferIndex(db).add([usd(1, 2, 2_000, 100), sent, back, tx(2, 3, 1, 300)])
    floors = (("native", Decimal("0.1")),)  # no ETH price here: a floor in units
    result, _ = await both(db, 1, TraceParams(hops=3, dust_units=floors))
    assert hops_of(result) == {addr(1): 0, addr(2): 1, addr(3): 2}  # not into the router: on in ETH
    (onward,) = [e for e in result.edges if e.from_addr == addr(2)]
    assert result.carried(onward) == 10**18


async def test_models_compared_on_one_trace(db: Database) -> None:
    # over a day after the traced funds came (not passed on as one receipt: `PassThrough`)
    sends = [usd(2, 3, 1_000, 100_000), usd(2, 4, 1_000, 100_100)]
    TransferIndex(db).add([usd(9, 2, 1_000, 50), usd(1, 2, 1_000, 100), *sends])
    comparison = await compare_models(IndexSource(TransferIndex(db)), LabelBook(db), addr(1), "eth", TraceParams())
    assert (
        comparison.reached[TaintModel.HAIRCUT] == comparison.reached[TaintModel.POISON] == {addr(2), addr(3), addr(4)}
    )
    assert comparison.reached[TaintModel.FIFO] == {addr(2), addr(4)}  # its own 1,000 left first, to 3
    (differ,) = comparison.disagreements
    assert differ.address == addr(3) and differ.reached_by == (TaintModel.HAIRCUT, TaintModel.POISON)
    assert differ.received[TaintModel.HAIRCUT] == {USDT: 500 * 10**6}
    assert differ.received[TaintModel.POISON] == {USDT: 1_000 * 10**6}
    assert comparison.agreed == {addr(2), addr(4)}


async def test_models_that_reach_the_same_address_with_amounts_far_apart_disagree_on_it(db: Database) -> None:
    # 2 gets $1,000 traced, then $9,000 of its own, and two days later sends $1,000 to 3: FIFO and poison say it is
    # all traced funds, haircut 10 % of it ($100): every model reaches 3, ten times apart
    TransferIndex(db).add([usd(1, 2, 1_000, 100), usd(9, 2, 9_000, 200), usd(2, 3, 1_000, 200_000)])
    comparison = await compare_models(IndexSource(TransferIndex(db)), LabelBook(db), addr(1), "eth", TraceParams())
    assert comparison.agreed == {addr(2), addr(3)}
    (differ,) = comparison.disagreements
    assert differ.address == addr(3) and differ.on_amount and differ.reached_by == MODELS
    assert differ.received[TaintModel.HAIRCUT] == {USDT: 100 * 10**6}
    assert differ.received[TaintModel.FIFO] == differ.received[TaintModel.POISON] == {USDT: 1_000 * 10**6}
    text = render_part(comparison)
    assert "reached by every model, amounts far apart — haircut 100 USDT" in text, text


@pytest.mark.parametrize("model", list(TaintModel))
async def test_graph_and_sql_value_walks_agree_on_random_traffic(db: Database, model: TaintModel) -> None:
    rng = random.Random(11)
    rows = []
    for _ in range(1200):
        a, b = rng.randrange(80), rng.randrange(80)
        if rng.random() < 0.6:
            rows.append(usd(a, b, round(rng.lognormvariate(4, 2), 2), rng.randrange(1, 5000)))
        else:
            rows.append(tx(a, b, round(rng.uniform(0.001, 5), 4), rng.randrange(1, 5000)))
    TransferIndex(db).add(rows)
    LabelBook(db).add(label(17, Category.EXCHANGE, "Exchange 17"))
    for root in (1, 2, 5):
        for direction in Direction.ways():
            params = TraceParams(direction, hops=3, model=model, hub_degree=60, dust_units=(("native", Decimal(1)),))
            fast, slow = await both(db, root, params)
            assert fast.value_aware and slow.value_aware
            assert fast.taint.received == slow.taint.received
            assert fast.coverage.cuts == slow.coverage.cuts


async def test_a_source_without_histories_is_walked_by_the_graph_and_says_so(db: Database) -> None:
    TransferIndex(db).add([usd(1, 2, 5, 100)])
    index = IndexSource(TransferIndex(db))

    class FlowsOnly:  # a source that can only answer `flows`
        name = "flows only"
        flows = index.flows

    result = await trace_funds(FlowsOnly(), LabelBook(db), addr(1), "eth", TraceParams(hops=1))
    assert not result.value_aware and set(hops_of(result)) == {addr(1), addr(2)}
    assert any("followed the graph, not the traced value" in gap for gap in result.coverage.gaps)


def test_value_parameters_are_validated() -> None:
    with pytest.raises(InvalidArgument, match="negative"):
        TraceParams(dust_usd=Decimal(-1))
    with pytest.raises(InvalidArgument, match="between 0 and 1"):
        TraceParams(follow_share=Decimal("1.5"))
    assert TraceParams(follow_time=False).value_aware is False  # value needs time order
    assert Category.SANCTIONS not in TraceParams().stops


async def test_a_case_with_several_sources_is_traced_as_one(db: Database) -> None:
    # 2 collects from both sources; what it sends on is theirs whichever source's trace it is
    TransferIndex(db).add([usd(1, 3, 90, 100), usd(2, 3, 910, 110), usd(3, 4, 150, 200)])
    alone, _ = await both(db, 1, TraceParams(hops=2))
    assert addr(4) not in hops_of(alone)  # 9% of $150 is $13.50: dust for source 1 alone
    index = IndexSource(TransferIndex(db))
    together = await trace_funds(index, LabelBook(db), addr(1), "eth", TraceParams(hops=2), with_roots=[addr(2)])
    assert hops_of(together) == {addr(1): 0, addr(2): 0, addr(3): 1, addr(4): 2}
    assert together.root_node.address == addr(1)
    with pytest.raises(ValueError, match="several roots"):
        await trace_funds(index, LabelBook(db), addr(1), "eth", TraceParams(follow_value=False), with_roots=[addr(2)])
