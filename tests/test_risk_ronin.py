"""The Ronin bridge hack (March 2022, Lazarus Group) on the shipped demo data: the exploiter is severe with the
sanctions path shown, the documented laundering roles are where the trace says, and the demo loads on first run.

The address roles come from ../shared/data/lazarus-hacks-ground-truth (public research notes without a licence):
read here as test ground truth only, never shipped.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from bot.app import App, build_app
from bot.backends.console import GREETING
from bot.backends.testing import TestBackend
from storage.db import Database
from storage.settings import Settings
from tests.conftest import shared_data
from tracing.chain.demo import (
    DEMO_CSV,
    RONIN_EXPLOITER,
    SOURCE,
    demo_loaded,
    load_demo,
    read_demo_transfers,
    remove_demo,
)
from tracing.chain.index import TransferIndex
from tracing.investigator import Investigator
from tracing.labels import Category
from tracing.labels.bundled import ensure_bundled_labels
from tracing.risk.exposure import DEMO_NOTE
from tracing.risk.report import Level
from tracing.trace.params import TraceParams


def ronin_roles() -> dict[str, set[str]]:
    path = shared_data("lazarus-hacks-ground-truth", "lazarus_case_addresses.csv")
    roles: dict[str, set[str]] = defaultdict(set)
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["case"].startswith("ronin"):
                roles[row["role"]].add(row["address"])
    return roles


def test_demo_rows_become_wei_transfers_with_stable_synthetic_ids() -> None:
    first, again = read_demo_transfers(), read_demo_transfers()
    assert len(first) == 436 and first == again
    assert all(t.tx_hash.startswith("dune:") and len(t.tx_hash) == 45 for t in first)
    assert len({t.tx_hash for t in first}) == 436
    assert all(t.source == SOURCE and t.block_number == 0 and t.token is None for t in first)
    # 2022-03-29T21:41:18 … 0.0003 ETH → exact wei, no float rounding
    assert any(t.value == 3 * 10**14 for t in first)
    out = sum(t.value for t in first if t.from_addr == RONIN_EXPLOITER)
    assert 182_000 * 10**18 < out < 182_300 * 10**18  # "about 182,164 ETH" per the export's notes
    assert DEMO_CSV.parent.joinpath("SOURCE.md").read_text().count("MIT") >= 1


async def test_ronin_exploiter_is_severe_with_the_sanctions_path(bot: TestBackend, app: App) -> None:
    load_demo(app.db)
    reply = await bot.say(f"/risk {RONIN_EXPLOITER}")
    assert "SEVERE" in reply.text and "SANCTIONED" in reply.text
    assert "Sanctions (direct, outgoing)" in reply.text and "path: dune:" in reply.text
    assert DEMO_NOTE in reply.text
    report = await app.investigator.risk(RONIN_EXPLOITER)
    assert report.level is Level.SEVERE and report.score == 100
    links = [e for e in report.exposures if e.category is Category.SANCTIONS]
    intermediaries = ronin_roles()["Intermediary to TC"]
    # the exploiter's direct counterparties that OFAC lists: all 7 "Intermediary to TC" wallets
    assert {e.counterparty for e in links} == intermediaries
    assert all(e.direct and e.path[0].startswith("dune:") and e.evidence_note == DEMO_NOTE for e in links)
    assert any("directly to sanctioned Lazarus Group (ofac-sdn) (7 addresses)" in r for r in report.reasons)


async def test_trace_from_the_exploiter_finds_the_documented_roles(db: Database) -> None:
    load_demo(db)
    roles = ronin_roles()
    investigator = Investigator(db, check_interval=0)
    ensure_bundled_labels(investigator.labels)
    # not stopping at sanctioned wallets, to see through the intermediaries to the Tornado depositors
    through = TraceParams(hops=2, stop_at=frozenset({Category.EXCHANGE, Category.MIXER, Category.BRIDGE}))
    result = await investigator.trace(RONIN_EXPLOITER, params=through)
    hop = {n.address: n.hop for n in result.nodes}
    assert all(hop.get(a) == 1 for a in roles["Intermediary to TC"])
    assert all(hop.get(a) == 1 for a in roles["March 23 - Used for swapping"])
    assert sum(1 for a in roles["Intermediary to CEX"] if hop.get(a) == 1) == 5
    assert sum(1 for a in roles["TC Depositor"] if a in hop) == 47
    documented = set().union(*roles.values())
    undocumented = [a for a in hop if a not in documented]
    assert len(undocumented) / len(hop) < 0.15  # the rest: the bridge contract, USDC and a few unnamed recipients
    # issue #12: a sanctioned wallet is not a service; by default the trace goes on past the sanctioned
    # intermediaries (it used to stop there at hop 1) and reaches the Tornado depositors
    default = await investigator.trace(RONIN_EXPLOITER, params=TraceParams(hops=2))
    assert not roles["Intermediary to TC"] & {n.address for n in default.terminals}
    assert {n.address: n.hop for n in default.nodes} == hop


def test_demo_loads_on_first_run_only(tmp_path: Path, database_url: str) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", demo_data=True)  # type: ignore[call-arg]
    first = build_app(settings, database_url=database_url)
    try:
        assert demo_loaded(first.db) and TransferIndex(first.db).count() == 436
        assert remove_demo(first.db) == 436
    finally:
        first.close()
    second = build_app(settings, database_url=database_url)
    try:
        assert TransferIndex(second.db).count() == 0  # removed by the operator: not reloaded on restart
        assert load_demo(second.db, reset=True).added == 436
    finally:
        second.close()


def test_console_greeting_suggests_risk_and_trace() -> None:
    assert f"/risk {RONIN_EXPLOITER}".lower() in GREETING.lower()
    assert "/trace 0x" in GREETING


BINANCE_20 = "0x4976a4a02f38326660d17bf34b431dc6e2eb2327"
RONIN_EXPLOITER_CHECKSUM = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"


async def test_an_exchange_hot_wallet_is_rated_as_an_exchange_with_its_withdrawal_as_a_lead(
    bot: TestBackend, app: App
) -> None:
    load_demo(app.db)
    reply = await bot.say(f"/risk {BINANCE_20}")
    assert "LOW risk" in reply.text and "SEVERE" not in reply.text
    assert "Leads (what Binance 20's transfers touched" in reply.text
    # the one withdrawal to the Ronin exploiter: amount, date, the counterparty's address, and that it came first
    assert f"Sent 1.0569 ETH (no USD price) to {RONIN_EXPLOITER_CHECKSUM}" in reply.text
    assert "on 2022-03-23 — 22 days before: OFAC listed this address on 2022-04-14" in reply.text
    report = await app.investigator.risk(BINANCE_20)
    assert report.level is Level.LOW and report.service == "Binance 20" and report.exposures == ()
    (lead,) = report.leads
    assert lead.counterparty == RONIN_EXPLOITER and {lb.category for lb in lead.labels} >= {Category.SANCTIONS}


async def test_the_exploiter_counts_each_amount_once_and_names_each_counterparty(app: App) -> None:
    load_demo(app.db)
    report = await app.investigator.risk(RONIN_EXPLOITER)
    lines = [(e.counterparty, e.category, e.direction) for e in report.exposures]
    assert len(lines) == len(set(lines))  # one line per counterparty and category
    totals = {(t.direction.adjective, t.category): t for t in report.totals}
    sanctions = totals[("outgoing", Category.SANCTIONS)]
    assert sanctions.counterparties == 7 and 144_835 * 10**18 < sanctions.amounts[0].value < 144_837 * 10**18
    counted = sum(
        a.value for e in report.exposures if e.counted and e.direction.adjective == "outgoing" for a in e.amounts
    )
    assert counted == sum(a.value for t in report.totals if t.direction.adjective == "outgoing" for a in t.amounts)
