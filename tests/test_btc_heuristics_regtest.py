"""The bitcoin heuristics end to end on the regtest node (`tests.support.btc_scenario.build_heuristics_scenario`):
indexed with `chainsleuth index --chain btc`, then `/trace` follows the payment's change and the peel chain, stops
at the CoinJoin and says why, and clustering joins the consolidation's inputs and not the CoinJoin's."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import App
from bot.backends.testing import TestBackend
from storage.db import open_database
from storage.settings import Settings
from tests.support.bitcoind import BitcoinNode
from tests.support.btc_scenario import HeuristicsScenario, build_heuristics_scenario
from tests.support.cli import run_cli
from tests.support.fixtures import regtest_node
from tracing.chain.utxo_store import UtxoStore
from tracing.trace.utxo import Heuristics
from tracing.trace.utxo.trace import StoredTxs, find_heuristics


@pytest.fixture(scope="module")
def regtest() -> Iterator[tuple[BitcoinNode, HeuristicsScenario]]:
    with regtest_node() as node:
        yield node, build_heuristics_scenario(node)


@pytest.fixture
def settings(
    tmp_path: Path, regtest: tuple[BitcoinNode, HeuristicsScenario], monkeypatch: pytest.MonkeyPatch
) -> Settings:
    node, _ = regtest
    monkeypatch.setenv("BTC_RPC_URL", node.url)
    monkeypatch.setenv("BTC_NETWORK", "regtest")
    monkeypatch.setenv("BTC_CONFIRMATIONS", "0")
    return Settings(_env_file=None, data_dir=tmp_path / "data", demo_data=False, chains="btc")  # type: ignore[call-arg]


@pytest.fixture
def indexed(
    regtest: tuple[BitcoinNode, HeuristicsScenario], app: App, database_url: str, tmp_path: Path
) -> HeuristicsScenario:
    node, s = regtest
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAINS", "ETH_"))}
    env.update(
        {"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": database_url, "DEMO_DATA": "false", "CHAINS": "btc"}
    )
    args = ["index", "--chain", "btc", "--from-block", str(s.first_block), "--to-block", "latest", "--no-progress"]
    result = run_cli(args, env)
    assert result.returncode == 0, result.stderr
    return s


def _lines(text: str, prefix: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith(prefix)]


async def _trace(bot: TestBackend, command: str) -> tuple[str, set[str]]:
    """The reply's text and the addresses its CSV (one row per transfer followed) names."""
    said = await bot.say(command)
    assert said.reply is not None and not said.is_error, said.text
    [table] = [a for a in said.reply.attachments if a.filename.endswith(".csv")]
    rows = list(csv.DictReader(io.StringIO(table.content.decode())))
    return said.text, {row[key] for row in rows for key in ("from", "to")}


async def test_trace_follows_the_peel_chain_along_the_change_and_stops_at_the_coinjoin(
    indexed: HeuristicsScenario, bot: TestBackend
) -> None:
    a, t = indexed.addresses, indexed.txids
    reply, reached = await _trace(bot, f"/trace {a['S0']} --hops 8")
    assert reply.count("bitcoin heuristics: change, coinjoin, peel (off: cluster)") == 2  # header and coverage
    # the walk went along the change, hop by hop, and paid out the peels; not past the CoinJoin
    assert reached == {a[name] for name in ("S0", "M", "C1", "P1", "C2", "P2", "C3", "P3", "C4")}
    [stop] = _lines(reply, "heuristic coinjoin:")
    assert f"stopped at CoinJoin {t['mix']}: 16.3996 BTC from {a['C4']} went into it" in stop
    assert "3 inputs from 3 addresses → 3 of 4 outputs of 5 BTC each" in stop and "--through mixer" in stop
    [peel] = _lines(reply, "heuristic peel:")
    assert f"peel chain of 4 step(s) from {t['pay']}" in peel and f"its change went into CoinJoin {t['mix']}" in peel
    steps = _lines(reply, "heuristic peel step")
    assert [step.split(": ", 1)[1].split(" ")[0] for step in steps] == [t["pay"], t["peel1"], t["peel2"], t["peel3"]]
    assert f"change 18.4999 BTC to {a['C1']}" in steps[0] and f"paid 0.8 BTC to {a['P1']}" in steps[1]
    changes = _lines(reply, "heuristic change:")
    assert any(f"{t['pay']} → output 1 (18.4999 BTC to {a['C1']})" in c and "round-payment" in c for c in changes)
    assert not _lines(reply, "heuristic cluster:")  # clustering is off unless asked
    risk = (await bot.say(f"/risk {a['C4']}")).text
    assert "No bitcoin data source" not in risk and "LOW" in risk  # BTC_RPC_URL is set; nothing labelled near


async def test_clustering_joins_the_consolidation_and_never_the_coinjoin(
    indexed: HeuristicsScenario, bot: TestBackend
) -> None:
    a, t = indexed.addresses, indexed.txids
    reply = (await bot.say(f"/trace {a['S0']} --hops 8 --heuristics default,cluster")).text
    assert "bitcoin heuristics: change, coinjoin, peel, cluster" in reply
    [cluster, left_out] = _lines(reply, "heuristic cluster:")
    joined = sorted((a["K1"], a["K2"], a["K3"]))
    assert f"cluster of 3 addresses (common inputs): {t['consol']} joined" in cluster
    assert all(address in cluster for address in joined)
    assert left_out.startswith(f"heuristic cluster: {t['mix']} not joined: CoinJoin-like transaction")
    for name in ("C4", "X1", "X2"):
        assert a[name] not in cluster


async def test_through_mixer_goes_on_past_the_coinjoin_and_none_turns_the_heuristics_off(
    indexed: HeuristicsScenario, bot: TestBackend
) -> None:
    a, t = indexed.addresses, indexed.txids
    through, reached = await _trace(bot, f"/trace {a['S0']} --hops 8 --through mixer")
    assert {a["J1"], a["J2"], a["J3"], a["D1"]} <= reached
    assert f"went through {t['mix']} (--through mixer)" in through
    off, crossed = await _trace(bot, f"/trace {a['S0']} --hops 8 --heuristics none")
    assert "bitcoin heuristics: none (off: change, coinjoin, peel, cluster)" in off
    assert a["J1"] in crossed and not _lines(off, "heuristic")  # nothing applied: the walk crosses the mix
    back, came = await _trace(bot, f"/trace {a['J1']} --direction in --hops 4")
    assert came == set() and f"stopped at CoinJoin {t['mix']}: 5 BTC came out of it to {a['J1']}" in back
    refused = (await bot.say("/trace 0x098B716B8Aaf21512996dC57EB0615e2383E2f96 --heuristics cluster")).text
    assert refused == "Error: --heuristics applies to bitcoin addresses only."


def test_findings_over_the_store(indexed: HeuristicsScenario, database_url: str) -> None:
    a, t = indexed.addresses, indexed.txids
    db = open_database(database_url)
    try:
        txs = StoredTxs(UtxoStore(db), "btc")
        edges = [t[name] for name in ("pay", "peel1", "peel2", "peel3")]
        found = find_heuristics(
            txs, a["S0"], __import__("tracing").Direction.OUT, edges, [a["S0"]], Heuristics.parse("all")
        )
        assert [g.change.address for g in found.changes if g.change] == [a["C1"], a["C2"], a["C3"], a["C4"]]
        assert all("round-payment" in g.names for g in found.changes)
        [chain] = found.peels
        assert [step.change.address for step in chain.steps] == [a["C1"], a["C2"], a["C3"], a["C4"]]
        assert found.clustering is not None and [c.size for c in found.clustering.clusters] == [3]
    finally:
        db.dispose()
