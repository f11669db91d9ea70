"""Taint models on one trace: poison (reachability) against haircut (value-proportional), exact in raw units."""

from __future__ import annotations

from storage.db import Database
from tests.test_trace import ETH, USDT, addr, both, label, tx
from tracing.chain.index import TransferIndex
from tracing.labels import Category, LabelBook
from tracing.trace.params import TraceParams
from tracing.trace.taint import TaintModel, TaintStep, compute_taint


async def test_poison_and_haircut_compared_on_one_trace(db: Database) -> None:
    root, a, b, c, mixer = 1, 2, 3, 4, 5
    TransferIndex(db).add(
        [
            tx(root, a, 10, 100),
            tx(9, a, 30, 50),  # clean funds already at A
            tx(a, b, 20, 200),
            tx(a, c, 20, 210),
            tx(b, mixer, 20, 300),
            tx(c, a, 5, 400),  # back into A: a cycle, must not count twice
        ]
    )
    LabelBook(db).add(label(mixer, Category.MIXER, "Tornado.Cash: Router"))
    haircut, _ = await both(db, root, TraceParams(hops=4, model=TaintModel.HAIRCUT))
    assert haircut.taint.amounts(addr(a)) == {None: 10 * ETH}
    assert haircut.taint.fraction[addr(a)] == 0.25  # 10 tainted of the 40 it moved on
    assert haircut.taint.amounts(addr(b)) == {None: 5 * ETH}
    assert haircut.taint.amounts(addr(mixer)) == {None: 5 * ETH}
    (comparison,) = haircut.compare_models()
    assert comparison.address == addr(mixer)
    assert comparison.poison == {None: 20 * ETH} and comparison.haircut == {None: 5 * ETH}
    poison = haircut.taint_under(TaintModel.POISON)
    assert poison.amounts(addr(b)) == {None: 20 * ETH}
    cycle = [i for i, e in enumerate(haircut.edges) if e.from_addr == addr(c) and e.to_addr == addr(a)]
    assert cycle and all(haircut.taint.edges[i] == 0 for i in cycle)


async def test_haircut_follows_a_swap_through_an_address(db: Database) -> None:
    TransferIndex(db).add([tx(1, 2, 10, 100), tx(2, 3, 30_000, 200, token=USDT, decimals=6)])
    result, _ = await both(db, 1, TraceParams(hops=2))
    # address 2 moved on no ETH, only USDT: the swapped USDT counts as fully tainted
    assert result.taint.amounts(addr(3)) == {USDT: 30_000 * 10**6}


def test_haircut_is_exact_in_raw_units() -> None:
    odd = 10**18 + 1
    steps = [
        TaintStep("r", "a", None, odd, 1),
        TaintStep("a", "b", None, 3 * odd, 2),
        TaintStep("a", "c", None, 3, 2),
    ]
    totals = {"r": {None: odd}, "a": {None: 3 * odd + 3}}
    taint = compute_taint(TaintModel.HAIRCUT, "r", {"r": 0, "a": 1, "b": 2, "c": 2}, totals, steps)
    assert taint.edges == (odd, (3 * odd * odd) // (3 * odd + 3), (3 * odd) // (3 * odd + 3))
    poison = compute_taint(TaintModel.POISON, "r", {"r": 0, "a": 1, "b": 2, "c": 2}, totals, steps)
    assert poison.edges == (odd, 3 * odd, 3)
    assert poison.fraction["b"] == 1.0 and taint.fraction["r"] == 1.0


def test_unreached_or_untainted_addresses_pass_nothing_on() -> None:
    steps = [TaintStep("r", "a", None, 0, 1), TaintStep("a", "b", None, 50, 2)]
    taint = compute_taint(TaintModel.POISON, "r", {"r": 0, "a": 1, "b": 2}, {"a": {None: 50}}, steps)
    assert taint.edges == (0, 0)
    assert taint.amounts("b") == {}


def test_taint_model_parse() -> None:
    assert TaintModel.parse(" Poison ") is TaintModel.POISON
    assert TaintModel.parse("FIFO") is TaintModel.FIFO  # issue #12 adds first in, first out
    try:
        TaintModel.parse("lifo")
    except Exception as exc:
        assert "haircut, poison or fifo" in str(exc)
    else:
        raise AssertionError("lifo is not a model we offer")
