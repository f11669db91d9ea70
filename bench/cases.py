"""The case evaluation at full size (issue #12 item 7): MFTracer's five laundering cases, each in adversarial
unrelated traffic (`tests/support/cases.py` documents the traffic, the walks and the definitions), traced forward
from their sources over several seeds and proportions; recall and precision per case × walk × mix, and the worst.

Walks, all in the same run: the graph walk without value-awareness (`follow_value=False`: the baseline), issue
#12's "$50 flat filter" reference walk, the product's value-aware trace with its default settings under each taint
model, the same (haircut) over a grid of (dust floor, follow share) for the choice of the default, and the
harness's own value-aware reference with a floor into labelled services (`tests.support.cases.value_walk`). Beside
them: the default trace on each case alone (`ALONE`: nothing around the case's own addresses, so its misses are the
case's shape), how far each case's ground truth runs short of what its addresses send (`ground_truth_gaps`), and the
follow-rule variants tried during development (`RULE_VARIANTS`, as measured: rules are code, not settings).
The ground truth is read from ../shared/data (research data, no licence: never copied); without it the section
says so.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from bench.common import log, machine_line
from tests.support.cases import (
    BENCH_MIXES,
    CASES,
    COINCIDE,
    HOPS,
    Case,
    Mix,
    Reached,
    Score,
    World,
    flat_walk,
    ground_truth_folder,
    product_walk,
    read_case,
    score,
    value_walk,
)
from tracing import MAX_HOPS, TaintModel, TraceParams

MARKER = "<!-- bench: case evaluation below, written by python -m bench --only cases -->"
RECALL_GOAL, PRECISION_GOAL = 0.95, 0.90
GRID = [(dust, share) for dust in (50.0, 100.0, 250.0, 1000.0) for share in (0.1, 0.25, 0.5, 1.0)]
"""(dust floor in USD, follow share) settings of the product's value-aware trace measured beside the default."""
CRUMBS = (0.0, 0.0005, 0.001, 0.002, 0.005)
"""`TraceParams.crumb_share` settings measured beside the default (0: only the 5 % traced-funds part of the crumb
rule applies)."""
QUICK_MIXES = (Mix(seed=1, noise=0.1), Mix(seed=2, noise=0.1, everyday=0.6, payments=0.6, dust=3.0, hitchhike=0.5))
ALONE = Mix(seed=1, noise=1.0, everyday=0.0, payments=0.0, dust=0.0, hitchhike=0.0)
"""The case alone: the background traffic (hubs, users, peel chains) but nothing around the case's own addresses: what
the default trace misses here it misses for the case's own shape, not for the traffic."""
RULE_VARIANTS: list[tuple[str, str]] = [
    (
        "before: traced funds used up by an address's first transfers; under 5 % traced not followed only under 3× "
        "the floor",
        "0.78 / 0.88 | 0.85 / 0.86 | 0.22 / 0.94 | 0.88 / 0.88 | 1.00 / 0.90 | 0.22 / 0.86",
    ),
    (
        "+ money an address lacks was there from the start, clean (`shortfall`)",
        "0.89 / 0.87 | 0.93 / 0.87 | 0.26 / 0.95 | 0.88 / 0.88 | 1.00 / 0.90 | 0.26 / 0.87",
    ),
    (
        "+ under 5 % traced not followed at any amount",
        "0.89 / 0.87 | 0.93 / 0.87 | 0.26 / 0.95 | 0.88 / 0.90 | 1.00 / 0.90 | 0.26 / 0.87",
    ),
    (
        "+ pass-through: a receipt of mostly traced funds sent on within a day, up to 5 % short, carries its traced "
        "value (`PassThrough`, haircut; **the default**)",
        "0.89 / 0.96 | 0.93 / 0.89 | 0.25 / 0.95 | 0.97 / 0.91 | 1.00 / 0.95 | 0.25 / 0.89",
    ),
    (
        "default, pass-through up to 1 % short (not 5 %)",
        "0.89 / 0.96 | 0.93 / 0.89 | 0.26 / 0.95 | 0.97 / 0.92 | 1.00 / 0.95 | 0.26 / 0.89",
    ),
    (
        "default, pass-through within an hour (not a day)",
        "0.89 / 0.92 | 0.93 / 0.89 | 0.25 / 0.96 | 0.97 / 0.90 | 1.00 / 0.95 | 0.25 / 0.89",
    ),
    (
        "default, crumb share 0.1 % (`crumb_share`)",
        "0.89 / 0.88 | 0.91 / 0.88 | 0.24 / 0.96 | 0.88 / 0.90 | 1.00 / 0.91 | 0.24 / 0.88",
    ),
    (
        "default, crumb share 0.2 %",
        "0.89 / 0.89 | 0.91 / 0.88 | 0.23 / 0.95 | 0.88 / 0.90 | 1.00 / 0.93 | 0.23 / 0.88",
    ),
    (
        "default, small transfers weighed together from 1/3 traced funds (not 1/2) at 25 % of what the address "
        "received (not 50 %)",
        "0.89 / 0.87 | 0.93 / 0.87 | 0.26 / 0.95 | 0.88 / 0.90 | 1.00 / 0.90 | 0.26 / 0.87",
    ),
    (
        "default, an address's own money before the arrival counted only as far as its later transfers need it",
        "0.89 / 0.87 | 0.93 / 0.84 | 0.33 / 0.92 | 0.97 / 0.84 | 1.00 / 0.90 | 0.33 / 0.84",
    ),
    (
        "what 54m's ninth terminal takes (recall 8/9 < 0.95 without it): it is sent $4.31, at most $3.67 of it "
        "traced, by an address that received $500,476 and passed $500,471 on to THORChain three hours before; under "
        "the pass-through the $4.31 carries nothing, so: no pass-through, no crumb rule, a $1 floor",
        "1.00 / 0.44 | 0.99 / 0.51 | 0.68 / 0.81 | 0.94 / 0.52 | 1.00 / 0.46 | 0.68 / 0.44",
    ),
]
"""Follow-rule variants tried for issue #12 (they are code, not settings, so the bench does not re-run them): (rule,
worst recall / precision per case over the bench mixes, as measured), filled in from the development runs."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of the five cases")
    parser.add_argument("--case-hops", type=int, default=HOPS)
    parser.add_argument("--case-noise", type=float, default=None, help="override every mix's noise multiplier")


@dataclass
class Evaluation:
    scores: list[Score] = field(default_factory=list)
    alone: dict[str, Score] = field(default_factory=dict)
    """Per case, the default trace on the case alone (`ALONE`)."""
    stress: dict[str, Score] = field(default_factory=dict)
    """Per case, the default trace under the same-amount stress (`tests.support.cases.COINCIDE`)."""
    gaps: dict[str, tuple[int, int, float, float]] = field(default_factory=dict)
    """Per case: addresses that send more than the case shows them receiving, case addresses, the USD they lack,
    the USD the case moves (`ground_truth_gaps`)."""
    grid: dict[tuple[float, float], list[Score]] = field(default_factory=dict)
    default_scores: list[Score] = field(default_factory=list)
    """The default trace on every mix (also among `scores`)."""
    slack_scores: list[Score] = field(default_factory=list)
    """The default trace given one hop more, scored against the terminals reachable within the budget."""
    crumbs: dict[float, list[Score]] = field(default_factory=dict)
    moves: list[int] = field(default_factory=list)
    mixes: tuple[Mix, ...] = ()
    seconds: float = 0.0
    walk_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    absent: bool = False


def run(cases: Sequence[str], mixes: Sequence[Mix], hops: int) -> Evaluation:
    began = time.perf_counter()
    result = Evaluation(mixes=tuple(mixes))
    if ground_truth_folder() is None:
        result.absent = True
        return result
    for name in cases:
        case = read_case(name)
        result.gaps[name] = ground_truth_gaps(case)
        alone = World.build(case, replace(ALONE, noise=mixes[0].noise))
        found = asyncio.run(product_walk(alone, TraceParams(hops=hops)))
        result.alone[name] = score(alone, "default, the case alone", found, hops)
        stressed = World.build(case, replace(COINCIDE, noise=mixes[0].noise))
        found = asyncio.run(product_walk(stressed, TraceParams(hops=hops)))
        result.stress[name] = score(stressed, "default, same-amount stress", found, hops)
        for mix in mixes:
            world = World.build(case, mix)
            result.moves.append(len(world.moves))
            log(f"cases: {name}, {mix.name}: {len(world.moves):,} transfers")
            _measure(world, hops, result)
    result.seconds = time.perf_counter() - began
    return result


def ground_truth_gaps(case: Case) -> tuple[int, int, float, float]:
    """(addresses that send more than the case shows them holding at that moment, case addresses, USD lacking in
    all, USD the case moves): the ground truth lists the laundered flows in USD at each transfer's day, not every
    swap return or sale, so a ledger over it alone runs short (the value walk takes what is lacking to have been
    there from the start, clean: `tracing.trace.value.shortfall`)."""
    held: dict[str, float] = defaultdict(float)
    lacking: dict[str, float] = defaultdict(float)
    sources = set(case.sources)
    for e in sorted(case.edges, key=lambda e: (e.ts, e.block)):
        usd = float(e.usd)
        if e.frm not in sources and held[e.frm] < usd:
            lacking[e.frm] += usd - held[e.frm]
            held[e.frm] = usd
        held[e.frm] -= usd
        held[e.to] += usd
    return len(lacking), len(case.addresses), sum(lacking.values()), float(sum(e.usd for e in case.edges))


def _measure(world: World, hops: int, result: Evaluation) -> None:
    """Every walk on one world: scores into `result.scores`, the default-rule grid into `result.grid`."""
    t = time.perf_counter()
    assert len(world.graph) >= len(world.moves)  # built here, outside the walks' times
    result.walk_seconds["building the graph"] += time.perf_counter() - t

    def timed(timer: str, find: Callable[[], Reached]) -> Reached:
        t = time.perf_counter()
        reached = find()
        result.walk_seconds[timer] += time.perf_counter() - t
        return reached

    def measure(walk: str, timer: str, find: Callable[[], Reached]) -> Score:
        return score(world, walk, timed(timer, find), hops)

    def product(params: TraceParams) -> Callable[[], Reached]:
        return lambda: asyncio.run(product_walk(world, params))

    default = TraceParams(hops=hops)
    rule = (float(default.dust_usd or 0), float(default.follow_share))
    graph_walk = replace(default, follow_value=False)
    result.scores.append(measure("graph walk (no value-awareness)", "graph walk", product(graph_walk)))
    result.scores.append(measure("$50 flat filter", "$50 flat filter", lambda: flat_walk(world, 50.0, hops)))
    for model in TaintModel:
        walk = f"default ({model.value}, {_rule(*rule)})"
        if model is TaintModel.HAIRCUT:
            found = score(world, walk, timed("value-aware trace", product(default)), hops)
            result.grid.setdefault(rule, []).append(found)
            result.crumbs.setdefault(float(default.crumb_share), []).append(found)
            result.default_scores.append(found)
            longer = replace(default, hops=min(hops + 1, MAX_HOPS))
            result.slack_scores.append(
                score(world, walk, asyncio.run(product_walk(world, longer)), hops, slack=longer.hops - hops)
            )
        else:
            found = measure(walk, "value-aware trace", product(replace(default, model=model)))
        result.scores.append(found)
    alone = lambda: asyncio.run(product_walk(world, default, together=False))  # noqa: E731
    result.scores.append(measure(f"default (haircut, {_rule(*rule)}), each source alone", "value-aware trace", alone))
    for dust, share in GRID:
        if (dust, share) != rule:
            params = replace(default, dust_usd=Decimal(str(dust)), follow_share=Decimal(str(share)))
            found = measure(f"haircut, {_rule(dust, share)}", "value-aware trace", product(params))
            result.grid.setdefault((dust, share), []).append(found)
    for crumb in CRUMBS:
        if crumb != float(default.crumb_share):
            params = replace(default, crumb_share=Decimal(str(crumb)))
            found = measure(
                f"haircut, {_rule(*rule)}, crumbs under {crumb * 100:g}%", "value-aware trace", product(params)
            )
            result.crumbs.setdefault(crumb, []).append(found)
    reference = "value reference (haircut, $250, into services ≥ $1)"
    find = lambda: value_walk(world, "haircut", 250.0, 2.0, hops, service_floor=1.0)  # noqa: E731
    result.scores.append(measure(reference, "value reference", find))


def _rule(dust: float, share: float) -> str:
    return f"${dust:g} or share {share:g}"


def _worst(scores: Sequence[Score]) -> tuple[float, float]:
    return min(s.recall for s in scores), min(s.precision for s in scores)


def _one_row_table(title: str, text: str, row: str, scores: Sequence[Score]) -> list[str]:
    """A subsection with one row of per-case cells (recall / precision)."""
    return _table(title, text, ["", *(s.case for s in scores)], [[row, *(_cell([s]) for s in scores)]])


def _table(title: str, text: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A subsection: a title, a paragraph and a table."""
    return [
        f"### {title}",
        "",
        text,
        "",
        "| " + " | ".join(columns) + " |",
        "| " + " | ".join("---" for _ in columns) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]


def _weight_table(result: Evaluation, cases: Sequence[str]) -> list[str]:
    """The default trace's misses weighed in USD, and its recall given one hop more (worst over the mixes)."""
    by_usd, longer = [], []
    for name in cases:
        mine = [s for s in result.default_scores if s.case == name]
        low = min(mine, key=lambda s: s.usd_recall)
        by_usd.append(f"{low.usd_recall:.2f} (${low.usd_missed:,.0f} of ${low.usd_due:,.0f})")
        longer.append(_cell([s for s in result.slack_scores if s.case == name]))
    return _table(
        "What the misses weigh, and money that takes a longer path than the ground truth's shortest",
        "Recall counts terminals. Weighted by what the ground truth sends into each reachable terminal (all its "
        "edges into it, in USD), the default trace's worst mix misses the share below. And a terminal counts as "
        "reachable within the hop budget by the ground truth's shortest path, even where that path runs through a "
        "crumb the money did not take (Atomic's THORChain vaults: 5 hops through a $161 crumb of $600,000, 6 "
        "along the $1.5M that reached their sender from four other case addresses). The second row gives the "
        "default trace one hop more and scores it on the same terminals (precision over every address it names, "
        "that hop included). Neither is the goal's measure; they say what the misses are.",
        ["", *cases],
        [
            ["default: recall weighted by USD into the terminals (USD missed, worst mix)", *by_usd],
            ["default with one hop more: recall / precision on the same terminals", *longer],
        ],
    )


def _cell(scores: Sequence[Score]) -> str:
    recall, precision = _worst(scores)
    mark = " ✓" if recall >= RECALL_GOAL and precision >= PRECISION_GOAL else ""
    return f"{recall:.2f} / {precision:.2f}{mark}"


def markdown(result: Evaluation, cases: Sequence[str], hops: int, quick: bool) -> str:
    lines = [
        MARKER,
        "",
        "## Case evaluation: traces you can trust on real laundering cases (issue #12 item 7)",
        "",
    ]
    if result.absent:
        return "\n".join([*lines, "- Not run: ../shared/data/mftracer-ground-truth is absent on this machine.", ""])
    by_walk: dict[str, dict[str, list[Score]]] = defaultdict(lambda: defaultdict(list))
    for s in result.scores:
        by_walk[s.walk][s.case].append(s)
    mixes = result.mixes
    lines += [
        f"- Machine: {machine_line()}",
        f"- Data: MFTracer's manually verified cases ({', '.join(cases)}) in generated unrelated traffic "
        f"(`tests/support/cases.py` says what it holds): {len(mixes)} mixes per case, "
        f"{min(result.moves):,}–{max(result.moves):,} transfers per case and mix. The accuracy figures are "
        "deterministic per seed; the spread that matters is over seeds and proportions, so each cell is the "
        f"**worst** over the mixes (recall / precision; ✓: goal met). Whole run {result.seconds:.0f} s; time in "
        "each walk over all cases and mixes: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(result.walk_seconds.items()))
        + ".",
        f"- Trace: forward from every listed source, {hops} hops, from the case's first transfer on; reached "
        "addresses are the union. Recall: listed terminals reached / listed terminals reachable within the hop "
        "budget over the ground-truth edges alone (forward in time, not through a labelled service where the "
        "walk stops). Precision: reached addresses on a ground-truth edge / reached addresses, sources left out of "
        "both; a labelled service outside the case reached as a stop counts as a wrong lead.",
        "- Goal (default settings): recall ≥ 0.95 and precision ≥ 0.90 on every case. For scale: MFTracer, the "
        "system these cases were verified for, reports covering 94.09 % of the illicit money flow on the real "
        "incidents it was applied to (the paper's abstract: Huo et al., *Shedding Light on Shadows: Automatically "
        "Tracing Illicit Money Flows on EVM-Compatible Blockchains*, 2025), on the chain as it is, without "
        "adversarial traffic added.",
        "- Traced funds are conserved, and money an address's transfers need beyond what its history shows was there "
        "from the start, clean (`tracing.trace.value.shortfall`): the ground truth lists the laundered flows in USD at "
        "each transfer's day, not every swap return or sale, so many case addresses send more than it shows them "
        "receiving ("
        + "; ".join(
            f"{name}: {n} of {total} addresses, ${lack / 1e6:,.2f}M lacking of ${moved / 1e6:,.1f}M moved"
            for name, (n, total, lack, moved) in result.gaps.items()
        )
        + "). Before (2026-12-04 18:20) the traced funds were used up by an address's first transfers and its later "
        "ones carried none (the 54m terminals behind a $500,476 transfer that carried $0.00); on real chain data the "
        "older carry-over of the last traced share turned 1.06 ETH from Binance 20 into thousands of ETH, which "
        "conservation still rules out.",
    ]
    if quick:
        lines.append("- **Quick run (`--quick`): reduced traffic and two mixes; it proves only that the bench runs.**")
    lines += ["- Mixes: " + "; ".join(f"({i + 1}) {m.name}" for i, m in enumerate(mixes)) + ".", ""]
    lines += _one_row_table(
        "The case alone: what the default trace misses for the case's own shape",
        "The default trace (haircut) with the background traffic but nothing around the case's own addresses "
        "(no everyday activity, payments out, dust or peel-chain hitchhikers): its misses are the follow rule "
        "meeting the case itself (a terminal reached by a few dollars only, gift cards bought $10-50 at a time by "
        "addresses that spend far more than the case shows them receiving), not the traffic.",
        "default, the case alone",
        [result.alone[c] for c in cases],
    )
    lines += _one_row_table(
        "A stress the goal's mixes leave out: same-amount coincidences",
        f"The default trace under {COINCIDE.name}: within the hour of one of its laundering receipts, half the case "
        "addresses with money of their own pay an unrelated user that amount (up to 5 % less) out of that money. "
        "The pass-through rule takes that payment for the receipt moving on, but haircut alone follows it too (it "
        "carries most of the receipt's traced funds); an analyst reading the chain would follow it as well, so "
        "calling its recipient unrelated is the generator's word. Reported beside the goal, not in it "
        "(`tests.support.cases.COINCIDE`).",
        "default, same-amount stress",
        [result.stress[c] for c in cases],
    )
    if result.default_scores:
        lines += _weight_table(result, cases)
    if RULE_VARIANTS:
        lines += _table(
            "Follow-rule variants tried (issue #12): worst recall / precision per case over the bench mixes",
            "Rules are code, not settings, so these rows are the development runs (2026-12-04, the last row "
            "2026-12-05; the bench mixes of this section), not re-run by the bench; the default is the fourth row. The "
            "rows after the two pass-through variants were measured on the third row's rule, before the pass-through "
            "was added (the crumb rule on the default is re-run below); the last row is the default without the "
            "pass-through and the crumb rule, at a $1 floor.",
            ["rule", *CASES, "worst"],
            [[rule, cells] for rule, cells in RULE_VARIANTS],
        )
    lines += ["### Worst over the mixes, per case", ""]
    lines += [
        "| walk | " + " | ".join(cases) + " | worst |",
        "| --- | " + " | ".join("---" for _ in cases) + " | --- |",
    ]
    for walk, per_case in by_walk.items():
        every = [s for scores in per_case.values() for s in scores]
        lines.append(f"| {walk} | " + " | ".join(_cell(per_case[c]) for c in cases) + f" | {_cell(every)} |")
    shares = sorted({share for _, share in GRID})
    lines += [
        "",
        "### Choosing the default rule: (dust floor, share) → worst recall / precision over all cases and mixes",
        "",
        "The product's value-aware trace (haircut), `TraceParams.dust_usd` × `follow_share`: a transfer is followed "
        "when the traced value it carries is at least the dust floor (and is no crumb, below), or when it is mostly "
        "traced funds and it, or "
        "its address's small transfers together, carry at least the share of the traced funds the address received.",
        "",
        "| dust floor | " + " | ".join(f"share {share:g}" for share in shares) + " |",
        "| --- | " + " | ".join("---" for _ in shares) + " |",
    ]
    for dust in sorted({dust for dust, _ in GRID}):
        lines.append(f"| ${dust:g} | " + " | ".join(_cell(result.grid[(dust, share)]) for share in shares) + " |")
    lines += [
        "",
        "The same settings per case (worst over the mixes), since one case can hide the others:",
        "",
        "| dust floor | share | " + " | ".join(cases) + " |",
        "| --- | --- | " + " | ".join("---" for _ in cases) + " |",
    ]
    for dust, share in sorted(result.grid):
        per_case: dict[str, list[Score]] = defaultdict(list)
        for s in result.grid[(dust, share)]:
            per_case[s.case].append(s)
        lines.append(f"| ${dust:g} | {share:g} | " + " | ".join(_cell(per_case[c]) for c in cases) + " |")
    lines += [
        "",
        "### The crumb rule: `crumb_share` → worst recall / precision per case (default floor and share)",
        "",
        "Under 3× the dust floor, a transfer is not followed when it carries less than `crumb_share` of the traced "
        "funds its address received (at any amount, nor when under 5 % of its value is traced funds: "
        "`tracing.trace.value.judge`); with 0 only that second part applies.",
        "",
        "| crumb share | " + " | ".join(cases) + " | worst |",
        "| --- | " + " | ".join("---" for _ in cases) + " | --- |",
    ]
    for crumb in sorted(result.crumbs):
        per_crumb: dict[str, list[Score]] = defaultdict(list)
        for s in result.crumbs[crumb]:
            per_crumb[s.case].append(s)
        lines.append(
            f"| {crumb * 100:g}% | "
            + " | ".join(_cell(per_crumb[c]) for c in cases)
            + f" | {_cell(result.crumbs[crumb])} |"
        )
    lines.append("")
    lines += ["### Every case × walk × mix (recall / precision)", ""]
    lines += [
        "| case | walk | " + " | ".join(f"mix {i + 1}" for i in range(len(mixes))) + " |",
        "| --- | --- | " + " | ".join("---" for _ in mixes) + " |",
    ]
    for walk, per_case in by_walk.items():
        for case in cases:
            cells = [f"{s.recall:.2f} / {s.precision:.2f}" for s in per_case[case]]
            lines.append(f"| {case} | {walk} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def section(args: argparse.Namespace) -> str:
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    mixes: Sequence[Mix] = QUICK_MIXES if args.quick else BENCH_MIXES
    if args.case_noise is not None:
        mixes = [Mix(m.seed, args.case_noise, m.everyday, m.payments, m.dust, m.hitchhike) for m in mixes]
    return markdown(run(cases, mixes, args.case_hops), cases, args.case_hops, args.quick)
