"""Traces you can trust, on real laundering cases: MFTracer's five manually verified cases, each drowned in
adversarial unrelated traffic (`tests/support/cases.py` documents it), traced forward from their sources with the
default settings. Goal (issue #12): recall ≥ 0.95 and precision ≥ 0.90 on every case, the worst over three seeds
with different proportions (the third, `OWN_MONEY`, the most hostile), on reduced traffic (hubs stay busy; the
background is 15 % of the bench's).

A figure the walk does not reach yet is marked `xfail(strict=True)` with the figure measured (value-aware walk of
issue #12, haircut, $100 or share 0.5; crumbs under $300 not followed: under 0.05 % of their address's traced funds;
nothing under 5 % traced funds followed; a receipt passed on within a day, less at most 5 %, carries its traced
value; money an address lacks was there from the start, clean; the sources traced together), so the test turns red
(XPASS) the day it is met and the mark must go. `python -m tests.support.case_misses` says, per missed terminal,
where the walk dropped the ground truth's path and why, and per outsider, the transfer that reached it. Before the
value-aware walk, the graph walk reached every terminal at precision 0.24-0.49. The ground truth is test data only
(../shared/data/mftracer-ground-truth, no licence); without it these tests skip.
"""

from __future__ import annotations

import asyncio
import sys
from functools import cache
from pathlib import Path

import pytest

from storage.db import Database
from tests.support import case_misses
from tests.support.cases import (
    CASES,
    CI_MIXES,
    HOPS,
    TAGPACK,
    Mix,
    Score,
    World,
    category_of,
    flat_walk,
    ground_truth_folder,
    product_walk,
    read_case,
    score,
    worst,
    write_etl_files,
)
from tracing import Category, Investigator, LabelBook, TraceParams, import_etl_files

RECALL_GOAL, PRECISION_GOAL = 0.95, 0.90
SHORT_OF_GOAL: dict[tuple[str, str], str] = {
    ("54m", "recall"): "worst recall 0.889 here and at full size: a terminal reached by $4.31 only, after $500,471",
    ("Atomic", "recall"): "worst recall 0.926 here and at full size: $161 and $200 crumbs of $590k-3.2M not followed",
    ("XScam", "recall"): "worst recall 0.254 here: gift cards bought $10-50 at a time by addresses with money of "
    "their own, spending far more than the case shows them receiving",
}
"""Goals the default walk does not meet yet, with the figure measured; remove an entry when its test XPASSes."""


def _goal_params(metric: str) -> list[object]:
    return [
        pytest.param(
            name,
            marks=[pytest.mark.xfail(strict=True, reason=SHORT_OF_GOAL[(name, metric)])]
            if (name, metric) in SHORT_OF_GOAL
            else [],
            id=name,
        )
        for name in CASES
    ]


@cache
def _world(name: str, mix: Mix) -> World:
    if ground_truth_folder() is None:
        pytest.skip("shared data not present: ../shared/data/mftracer-ground-truth")
    return World.build(read_case(name), mix)


@cache
def _default_scores(name: str) -> tuple[Score, ...]:
    """The default trace (only the hop budget set) on every CI mix of one case."""
    found = []
    for mix in CI_MIXES:
        world = _world(name, mix)
        found.append(score(world, "default", asyncio.run(product_walk(world, TraceParams(hops=HOPS)))))
    return tuple(found)


@pytest.mark.parametrize("name", _goal_params("recall"))
def test_default_trace_reaches_the_terminals(name: str) -> None:
    scores = _default_scores(name)
    print(*(s.line() for s in scores), sep="\n")
    assert worst(scores)[0] >= RECALL_GOAL, [s.line() for s in scores]


@pytest.mark.parametrize("name", _goal_params("precision"))
def test_default_trace_names_few_outsiders(name: str) -> None:
    scores = _default_scores(name)
    print(*(s.line() for s in scores), sep="\n")
    assert worst(scores)[1] >= PRECISION_GOAL, [s.line() for s in scores]


@pytest.mark.parametrize("name", CASES)
def test_each_case_is_whole_and_drowned_in_its_traffic(name: str) -> None:
    """The harness itself: with no filter at all a walk reaches every reachable terminal (the case is intact in
    its world), the unrelated traffic outnumbers the case many times, and it does fool an unfiltered walk."""
    world = _world(name, CI_MIXES[0])
    everything = score(world, "no filter", flat_walk(world, floor_usd=0))
    assert everything.reachable > 0
    assert everything.recall == 1.0, everything.line()
    assert everything.precision < 0.8, everything.line()  # the traffic is adversarial, not decoration
    moves, edges = len(world.moves), len(world.case.edges)
    assert moves > 5 * edges, (moves, edges)


async def test_store_import_traces_as_the_harness_does(db: Database, tmp_path: Path) -> None:
    """The harness traces over a graph built from its transfers; the same world imported as ethereum-etl files
    into a store and traced by the `Investigator` reaches the same addresses at the same hops."""
    world = _world("LIFI", CI_MIXES[0])
    LabelBook(db).replace_set(TAGPACK, list(world.labels.values()))
    result = import_etl_files(db, write_etl_files(world.moves, tmp_path / "LIFI"), chain="eth")
    assert result.error_count == 0, result.errors[:3]
    assert result.transfers_added == len(world.moves)
    investigator = Investigator(db, check_interval=0)
    through_store: dict[str, int] = {}
    for root in world.case.sources:
        trace = await investigator.trace(root, params=TraceParams(hops=HOPS, since=world.case.incident))
        for node in trace.nodes:
            through_store[node.address] = min(through_store.get(node.address, node.hop), node.hop)
    prices = investigator.transfer_prices("eth")  # the store's: stored prices and the stablecoin peg
    harness = await product_walk(world, TraceParams(hops=HOPS), prices, together=False)
    assert through_store == harness


def test_atomic_s_four_thorchain_vaults_are_reached_one_hop_later_along_the_money() -> None:
    """What the misses weigh (BENCHMARKS.md): four of Atomic's six missed terminals, THORChain vaults that the case
    sends $1.6M, are within 5 hops only through a $161 crumb of $600,000; the money reaches their sender from four
    other case addresses one hop further, where the default trace given one hop more names them."""
    world = _world("Atomic", CI_MIXES[0])
    default = score(world, "default", asyncio.run(product_walk(world, TraceParams(hops=HOPS))))
    vaults = {t for t in default.missed if (label := world.labels.get(t)) and label.name.startswith("THORChain_vault")}
    assert len(vaults) == 4 and len(default.missed) == 6
    assert 1_600_000 < default.usd_missed < 1_620_000 and default.usd_recall < 0.85
    longer = asyncio.run(product_walk(world, TraceParams(hops=HOPS + 1)))
    assert all(longer[v] == HOPS + 1 for v in vaults)
    assert set(score(world, "one hop more", longer, slack=1).missed) == set(default.missed) - vaults


def test_the_misses_diagnostic_says_where_and_why_the_walk_dropped_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m tests.support.case_misses` is how the figures above are read: keep it working (it spies on the
    Python walk's private selection, so a change there would otherwise silently blind it)."""
    if ground_truth_folder() is None:
        pytest.skip("shared data not present: ../shared/data/mftracer-ground-truth")
    monkeypatch.setenv("CHAINSLEUTH_PURE_WALK", "1")  # it sets this itself; restored after the test
    monkeypatch.setattr(sys, "argv", ["case_misses", "--cases", "54m", "--mix", "quiet"])
    case_misses.main()
    out = capsys.readouterr().out
    assert "8/9 terminals" in out
    assert "MISSED 0x077d360f11d220e4d5d831430c81c26c9be7c4a4 (hop 5)" in out
    assert "dropped at 0xd95554dc (hop 4): $4.31 USD carrying $0.00" in out  # after the $500,471 passed through


def test_label_rules_follow_the_public_naming() -> None:
    assert category_of("Binance_Deposit_0x32ab") is Category.EXCHANGE
    assert category_of("Tornado.Cash: Router") is Category.MIXER
    assert category_of("THORChain: THORChain Router v4.1.1") is Category.BRIDGE
    assert category_of("Coinbase: Commerce Fee 5") is Category.OTHER
    assert category_of("Stake.com 2") is Category.GAMBLING
    assert category_of("Rollbit: Hot Wallet THT") is Category.GAMBLING
    assert category_of("Harmony Bridge Hacker 46") is Category.HACK  # a hacker, not a bridge: the trace goes on
    assert category_of("LI.FI Exploiter 2") is Category.HACK
    assert category_of("TH Terminus (Tiny)") is None and category_of("transit_8cc5") is None
    assert category_of("Atomic Wallet Hack 01 SRC") is None
