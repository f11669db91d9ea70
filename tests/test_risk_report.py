"""Risk reports from traces: exposure per category, direction and hops with amounts, share and evidence paths;
the level rules (sending to a sanctioned address is severe; indirect links are graded by value and hops); reasons;
coverage; unknown is never clean. The policy's rules one by one: tests/test_risk_policy.py."""

from __future__ import annotations

import csv
import io

from bot.app import App
from bot.backends.testing import TestBackend
from storage.db import Database
from tests.test_trace import ETH, USDT, addr, label, tx
from tracing.chain.index import TransferIndex
from tracing.chain.transfer import Direction
from tracing.investigator import Investigator
from tracing.labels import Category, LabelBook, LabelSet
from tracing.risk.outputs import risk_csv, risk_json
from tracing.risk.policy import DEFAULT_POLICY, rate
from tracing.risk.report import Amount, Exposure, Level, Rule


def investigator(db: Database) -> Investigator:
    return Investigator(db, check_interval=0)


async def test_an_indirect_sanctions_link_is_graded_by_value_and_hops(db: Database) -> None:
    # 1 sends 100 ETH to 2; 2 sends almost all of it on to 3; 3 sends a dust amount to a sanctioned address
    TransferIndex(db).add([tx(1, 2, 100, 100), tx(2, 3, 99, 200), tx(3, 4, 98, 300), tx(3, 66, 0.001, 310)])
    LabelBook(db).add(label(66, Category.SANCTIONS, "Garantex"))
    report = await investigator(db).risk(addr(1))
    # the old rule ("any link to a sanctioned entity, at any hop and of any amount, is severe") is gone: a trace
    # of funds 3 hops away worth a fraction of a dust floor is graded, visible, and not severe
    assert report.level is Level.LOW and report.score < 30
    assert not report.sanctioned  # linked to a sanctioned entity, not itself sanctioned
    (exposure,) = [e for e in report.exposures if e.category is Category.SANCTIONS]
    assert (exposure.direction, exposure.hops, exposure.counterparty) == (Direction.OUT, 3, addr(66))
    assert exposure.rule is Rule.GRADED
    assert exposure.path_addresses == (addr(1), addr(2), addr(3), addr(66))
    assert len(exposure.path) == 3 and all(h.startswith("0x") for h in exposure.path)
    assert exposure.share is not None and exposure.share < 0.0001
    assert any("sanctioned Garantex (test-tagpack)" in r and "in 3 hops" in r for r in report.reasons)


async def test_sending_to_a_sanctioned_address_is_severe_at_any_amount(db: Database) -> None:
    TransferIndex(db).add([tx(5, 1, 100, 100), tx(1, 66, 0.001, 200)])
    LabelBook(db).add(label(66, Category.SANCTIONS, "Garantex"))
    report = await investigator(db).risk(addr(1))
    assert report.level is Level.SEVERE and report.score >= 90
    (exposure,) = [e for e in report.exposures if e.category is Category.SANCTIONS]
    assert exposure.direct and exposure.rule is Rule.SENT_TO_SANCTIONED
    assert any("sending to a sanctioned address is severe at any amount" in r for r in report.reasons)


async def test_exposure_split_by_direction_and_hops_with_share(db: Database) -> None:
    TransferIndex(db).add(
        [
            tx(70, 1, 40, 50),  # a mixer paid the subject directly: incoming, 1 hop
            tx(71, 5, 10, 40),
            tx(5, 1, 10, 60),  # a hacker's funds via 5: incoming, 2 hops
            tx(1, 72, 20, 100),  # out to an exchange, direct
            tx(1, 6, 30, 110),
        ]
    )
    book = LabelBook(db)
    book.add(label(70, Category.MIXER, "Tornado.Cash: Router"))
    book.add(label(71, Category.HACK, "Atomic Wallet Hacker"))
    book.add(label(72, Category.EXCHANGE, "Kraken"))
    report = await investigator(db).risk(addr(1))
    found = {(e.category, e.direction, e.hops): e for e in report.exposures}
    mixer = found[(Category.MIXER, Direction.IN, 1)]
    assert mixer.amounts[0].value == 40 * ETH and mixer.share == 0.8  # 40 of the 50 ETH received
    hack = found[(Category.HACK, Direction.IN, 2)]
    assert hack.amounts[0].value == 10 * ETH and hack.path_addresses == (addr(1), addr(5), addr(71))
    kraken = found[(Category.EXCHANGE, Direction.OUT, 1)]
    assert kraken.share == 0.4 and kraken.labels[0].name == "Kraken"
    assert report.level is Level.HIGH  # a direct mixer deposit that is most of its inflow
    assert report.reasons[0].startswith("Received 40 ETH (no USD price) directly from mixer Tornado.Cash: Router")
    assert any("Kraken" in r for r in report.reasons)
    assert {a.value for a in report.volume} == {50 * ETH} and {a.value for a in report.volume_in} == {50 * ETH}


def test_scores_fall_with_hops_and_value() -> None:
    def score(hops: int, eth: float) -> int:
        amount = Amount(int(eth * ETH), None, None, 18)
        return rate(Exposure(Category.MIXER, Direction.OUT, hops, addr(1), (), (amount,), None, ())).score

    assert score(1, 500) > score(2, 500) > score(3, 500) > score(6, 500)
    assert score(1, 500) > score(1, 5) > score(1, 0.5) > score(1, 0.01)
    assert DEFAULT_POLICY.hop_weight(10) >= 0.25


async def test_exchange_hot_wallet_names_the_exchange(db: Database) -> None:
    hot = 500
    TransferIndex(db).add(
        [tx(hot, 1000 + i, 1 + i, 100 + i) for i in range(30)] + [tx(2000 + i, hot, 2, 90) for i in range(10)]
    )
    LabelBook(db).add(label(hot, Category.EXCHANGE, "Binance 14"))
    report = await investigator(db).risk(addr(hot))
    assert report.level is Level.LOW
    assert any("known exchange: Binance 14" in r for r in report.reasons)


async def test_fresh_and_quiet_addresses(db: Database) -> None:
    TransferIndex(db).add([tx(1, 2, 1, 100)])
    fresh = await investigator(db).risk(addr(99))
    assert fresh.level is Level.UNKNOWN and not fresh.coverage.traced
    assert any("holds no transfer of this address" in g for g in fresh.coverage.gaps)
    quiet = await investigator(db).risk(addr(1))
    assert quiet.level is Level.LOW and quiet.coverage.traced and quiet.exposures == ()
    assert any("Low is not clean" in r for r in quiet.reasons)


async def test_coverage_states_sources_range_hops_and_cuts(db: Database) -> None:
    TransferIndex(db).add([tx(1, 100 + i, 1, 100 + i) for i in range(120)])
    TransferIndex(db).mark_indexed("eth", "rpc", 8, 30, internal="unavailable")
    LabelBook(db).replace_set(LabelSet("test-tagpack", "v1", "", "CC0-1.0"), [label(999, Category.SCAM, "Fake")])
    report = await investigator(db).risk(addr(1), hops=2)
    cov = report.coverage
    assert cov.traced and cov.hop_budget == 2 and cov.chains == ("eth",)
    assert cov.sources == ("local index (rpc)",)
    assert "blocks 8–30 (rpc)" in cov.index_range
    assert any("internal (contract) transfers unavailable" in g for g in cov.gaps)
    assert any(c.startswith("outgoing: fan-out capped at 100") for c in cov.cuts)
    assert cov.taint_model == "haircut" and cov.transfers == 100
    assert cov.label_sets == ("test-tagpack (v1)",)


async def test_a_path_link_matched_by_amount_and_time_is_marked_as_such(bot: TestBackend, app: App) -> None:
    # 2 holds $19,000 of its own; $1,000 arrives from 1 and $990 leaves for a mixer an hour later: the pass-through
    # links them (the balance's share alone would make it 5 % traced, not followed), and the report says that this
    # hop rests on matching the amounts, naming the receipt, so the analyst can check it
    usd = {"token": USDT, "decimals": 6}
    TransferIndex(app.db).add([tx(9, 2, 19_000, 10, **usd), tx(1, 2, 1_000, 100, **usd), tx(2, 51, 990, 3_700, **usd)])
    LabelBook(app.db).add(label(51, Category.MIXER, "Tornado.Cash: Router"))
    report = await investigator(app.db).risk(addr(1))
    (exposure,) = [e for e in report.exposures if e.category is Category.MIXER]
    assert exposure.hops == 2 and exposure.passes_on == (None, exposure.path[0])
    assert exposure.pass_throughs == ((2, exposure.path[0]),)
    reply = await bot.say(f"/risk {addr(1)}")
    assert f"{exposure.path[1]}; hop 2 passes on the receipt in {exposure.path[0]}" in reply.text
    rows = list(csv.DictReader(io.StringIO(risk_csv(report))))
    assert [row["path_passes_on"] for row in rows if row["counterparty"] == addr(51)] == [f"2:{exposure.path[0]}"]
    (shown,) = [e for e in risk_json(report)["exposures"] if e["counterparty"] == addr(51)]
    assert shown["path_passes_on"] == [{"hop": 2, "receipt_tx": exposure.path[0]}]
    # a hop followed by the balance's share says nothing of the kind
    TransferIndex(app.db).add([tx(3, 4, 100, 100), tx(4, 52, 50, 200)])
    LabelBook(app.db).add(label(52, Category.MIXER, "Tornado.Cash: Router"))
    (plain,) = [e for e in (await investigator(app.db).risk(addr(3))).exposures if e.counterparty == addr(52)]
    assert plain.hops == 2 and plain.passes_on == () and plain.pass_throughs == ()
    assert "passes on" not in (await bot.say(f"/risk {addr(3)}")).text


async def test_risk_command_shows_exposure_paths_and_offers_traces(bot: TestBackend, app: App) -> None:
    TransferIndex(app.db).add(
        [tx(1, 2, 5, 100), tx(2, 51, 5, 200, token=None), tx(1, 3, 1, 100, token=USDT, decimals=6)]
    )
    LabelBook(app.db).add(label(51, Category.MIXER, "Tornado.Cash: Router"))
    reply = await bot.say(f"/risk {addr(1)} --hops 2")
    assert "Mixer (2 hops, outgoing): 5 ETH (no USD price) to Tornado.Cash: Router" in reply.text
    assert "path: 0x" in reply.text and " → 0x" in reply.text
    assert reply.reply is not None
    assert [a.command for a in reply.reply.actions] == [
        f"/trace {addr(1)} --hops 2",
        f"/trace {addr(1)} --direction in --hops 2",
    ]
