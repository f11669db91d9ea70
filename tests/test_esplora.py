"""Esplora as the on-demand bitcoin source: the client against a local Esplora serving the regtest node's chain in
Esplora's JSON shapes (tests/support/esplora_server.py): the mapper agrees with Core's, history pages of 25 after
the mempool ones, retries on 429/5xx, and a trace and a risk report on a bitcoin address the index does not hold."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import build_app
from bot.backends.testing import TestBackend
from storage.db import Database
from storage.settings import Settings
from tests.support.bitcoind import BitcoinNode
from tests.support.btc_scenario import BtcScenario, build_btc_scenario
from tests.support.esplora_server import EsploraServer
from tests.support.fixtures import regtest_node
from tests.support.hanging_server import HangingServer
from tracing.chain.btc_rpc import CoreRpcSource
from tracing.chain.config import chain_from_env
from tracing.chain.esplora import EsploraClient
from tracing.chain.esplora_mappers import map_esplora_tx
from tracing.chain.explorer import ExplorerError, ExplorerResponseError
from tracing.chain.mappers import MalformedPayload
from tracing.chain.prices import import_price_csv
from tracing.chain.transfer import Direction
from tracing.investigator import Investigator, configured_explorers
from tracing.risk.outputs import trace_csv
from tracing.trace.params import TraceParams

PAGED, MEMPOOL = 30, 2


@pytest.fixture(scope="module")
def esplora() -> Iterator[tuple[BitcoinNode, BtcScenario, EsploraServer]]:
    with regtest_node(102) as node:
        scenario = build_btc_scenario(node, paged=PAGED, mempool=MEMPOOL)
        with EsploraServer(node) as server:
            yield node, scenario, server


def client(server: EsploraServer, **kwargs: object) -> EsploraClient:
    return EsploraClient(server.url, chain="btc", calls_per_second=1000, backoff=0.01, **kwargs)  # type: ignore[arg-type]


def test_esplora_and_core_map_a_transaction_alike(esplora: tuple[BitcoinNode, BtcScenario, EsploraServer]) -> None:
    node, s, server = esplora
    config = chain_from_env("btc", {"BTC_RPC_URL": node.url, "BTC_NETWORK": "regtest"})

    async def run() -> None:
        async with client(server) as api, CoreRpcSource(config) as core:
            for name in ("fund", "hop1", "join"):
                from_esplora, from_core = await api.transaction(s.txids[name]), await core.transaction(s.txids[name])
                assert from_esplora.inputs == from_core.inputs and from_esplora.outputs == from_core.outputs
                assert from_esplora.fee == s.fees[name] and from_esplora.block_hash == from_core.block_hash
            assert await api.tip_height() == s.last_block
            [coinbase, *rest] = await api.block_txs(str(node.rpc("getblockhash", s.first_block)))
            assert coinbase.coinbase and [t.txid for t in rest] == [s.txids["fund"]] and rest[0].position == 1
            with pytest.raises(ExplorerResponseError, match="HTTP 404"):
                await api.transaction("ab" * 32)

    asyncio.run(run())


def test_history_pages_of_25_after_the_mempool_ones(esplora: tuple[BitcoinNode, BtcScenario, EsploraServer]) -> None:
    _, s, server = esplora

    async def run() -> None:
        async with client(server) as api:
            history = await api.transfers_of(s.addresses["PAGED"])
            assert len(history.txs) == PAGED and history.complete and history.mempool_skipped == MEMPOOL
            assert (history.pages, history.requests) == (2, 2)  # /txs (2 mempool + 25), then /txs/chain/:last_seen
            assert {t.to_addr for t in history.transfers if t.value == 1_000_000} == {s.addresses["PAGED"]}
            assert [tx.block_height for tx in history.txs] == sorted(tx.block_height or 0 for tx in history.txs)
            assert "2 unconfirmed (mempool) transaction(s) left out" in history.notes
            async with client(server, max_txs=20) as capped:
                cut = await capped.transfers_of(s.addresses["PAGED"])
                assert not cut.complete and len(cut.txs) == 20 and "cut at its newest 20" in cut.cuts[0]

    asyncio.run(run())


def test_rate_limits_and_server_errors_are_retried_then_reported(
    esplora: tuple[BitcoinNode, BtcScenario, EsploraServer],
) -> None:
    _, s, server = esplora

    async def run() -> None:
        async with client(server, max_retries=2) as api:
            server.fail_next = [429, 503]
            assert (await api.transaction(s.txids["hop3"])).txid == s.txids["hop3"]
            assert api.requests == 3
            server.fail_next = [503, 503, 503]
            with pytest.raises(ExplorerError, match="HTTP 503 after 3 attempts"):
                await api.tip_height()

    asyncio.run(run())


def test_trace_and_risk_through_esplora_for_an_address_the_index_lacks(
    esplora: tuple[BitcoinNode, BtcScenario, EsploraServer], db: Database, tmp_path: Path
) -> None:
    _, s, server = esplora
    a = s.addresses
    explorers = configured_explorers(
        {"CHAINS": "btc", "BTC_NETWORK": "regtest", "BTC_ESPLORA_URL": server.url, "BTC_RPC_URL": ""}
    )
    assert isinstance(explorers["btc"], EsploraClient)
    investigator = Investigator(db, "btc", explorers=explorers, use_graph=False)
    day = datetime.fromtimestamp(asyncio.run(client(server).transaction(s.txids["hop1"])).timestamp or 0, UTC).date()
    prices = tmp_path / "btc.csv"
    prices.write_text(f"date,asset,usd\n{day.isoformat()},BTC,50000\n")
    assert import_price_csv(db, prices).stored_total == 1
    server.answer("/blocks/tip/height")  # the local server reads the node's chain once: not the client's time
    server.calls.clear()
    started = time.perf_counter()
    trace = asyncio.run(investigator.trace(a["SRC"], "btc", TraceParams(Direction.OUT, 3)))
    seconds = time.perf_counter() - started
    calls = sum(server.calls.values())
    reached = {node.address: node.hop for node in trace.nodes}
    print(f"3-hop trace through esplora: {calls} API calls ({dict(server.calls)}), {seconds:.2f}s")
    assert (reached[a["H1"]], reached[a["H2"]], reached[a["H3"]]) == (1, 2, 3)
    assert trace.coverage.sources, trace.coverage
    assert "explorer" in trace.coverage.sources and "local index (esplora)" in trace.coverage.sources
    rows = {(r["from"], r["to"]): r for r in csv.DictReader(io.StringIO(trace_csv(trace)))}
    first_hop = rows[(a["SRC"], a["H1"])]
    assert (first_hop["symbol"], first_hop["decimals"], first_hop["amount"], first_hop["usd"]) == (
        "BTC", "8", "15", "750000.00"
    )  # fmt: skip
    assert any("proportional allocation" in gap for gap in trace.coverage.gaps)
    assert 0 < calls <= 12
    report = asyncio.run(investigator.risk(a["H2"], "btc"))
    assert report.level.value == "low" and "explorer" in report.coverage.sources  # low, not clean: it says why
    assert [amount.text("btc") for amount in report.volume_in] == ["10 BTC ($500,000)"]
    assert any("mempool" in gap for gap in report.coverage.gaps)
    assert any("proportional allocation" in gap for gap in report.coverage.gaps)


async def test_chat_risk_and_trace_on_a_bitcoin_address_with_btc_esplora_url(
    esplora: tuple[BitcoinNode, BtcScenario, EsploraServer],
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, s, server = esplora
    monkeypatch.setenv("BTC_ESPLORA_URL", server.url)
    monkeypatch.setenv("BTC_NETWORK", "regtest")
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", demo_data=False, chains="btc", default_chain="btc")  # type: ignore[call-arg]
    app = build_app(settings, database_url=database_url)
    try:
        bot = TestBackend(app.bot)
        traced = await bot.say(f"/trace {s.addresses['SRC']} --hops 3")
        assert "Reached 5 addresses" in traced.text and "sources: explorer, local index (esplora)" in traced.text
        assert "proportional allocation" in traced.text and "mempool" in traced.text
        assert traced.reply is not None
        files = {a.filename.rsplit(".", 1)[1]: a.content for a in traced.reply.attachments}
        assert sorted(files) == ["csv", "png", "svg"] and files["png"].startswith(b"\x89PNG")
        rows = list(csv.DictReader(io.StringIO(files["csv"].decode())))
        assert {(r["to"], r["symbol"], r["amount"]) for r in rows} >= {
            (s.addresses["H1"], "BTC", "15"), (s.addresses["H2"], "BTC", "10"), (s.addresses["H3"], "BTC", "9.9997")
        }  # fmt: skip
        risk = await bot.say(f"/risk {s.addresses['H2']}")
        assert "LOW risk" in risk.text and "Low is not clean" in risk.text and "mempool" in risk.text, risk.text
    finally:
        app.close()


def test_the_esplora_mapper_reads_segwit_taproot_and_coinbase_shapes() -> None:
    taproot = "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr"
    wpkh = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    status = {"confirmed": True, "block_height": 800000, "block_hash": "00" * 32, "block_time": 1690168629}
    tx = {
        "txid": "AB" * 32, "version": 2, "locktime": 0, "fee": 455, "status": status,
        "vin": [{"txid": "cd" * 32, "vout": 1, "is_coinbase": False, "sequence": 4294967293, "witness": ["00"],
                 "prevout": {"scriptpubkey_type": "v1_p2tr", "scriptpubkey_address": taproot, "value": 100_455}}],
        "vout": [{"scriptpubkey_type": "v0_p2wpkh", "scriptpubkey_address": wpkh.upper(), "value": 100_000},
                 {"scriptpubkey_type": "op_return", "value": 0}],
    }  # fmt: skip
    mapped = map_esplora_tx(tx, "btc")
    assert mapped.txid == "ab" * 32 and (mapped.block_height, mapped.timestamp) == (800000, 1690168629)
    assert [(i.address, i.value, i.script_type) for i in mapped.inputs] == [(taproot, 100_455, "witness_v1_taproot")]
    assert [(o.address, o.script_type) for o in mapped.outputs] == [(wpkh, "witness_v0_keyhash"), (None, "nulldata")]
    assert mapped.fee == 455
    coinbase = {
        "txid": "ef" * 32, "version": 1, "locktime": 0, "status": {"confirmed": False},
        "vin": [{"txid": "0" * 64, "vout": 4294967295, "is_coinbase": True, "prevout": None, "sequence": 0}],
        "vout": [{"scriptpubkey_type": "p2pkh", "scriptpubkey_address": "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH",
                  "value": 625_000_000}],
    }  # fmt: skip
    unconfirmed = map_esplora_tx(coinbase, "btc")
    assert unconfirmed.coinbase and unconfirmed.block_height is None and unconfirmed.fee is None
    with pytest.raises(MalformedPayload, match="whole satoshis"):
        map_esplora_tx({**tx, "vout": [{"scriptpubkey_type": "p2pkh", "value": 1.5}]}, "btc")


async def test_a_hanging_esplora_fails_a_trace_within_the_budget_and_is_named(db: Database) -> None:
    hanging = HangingServer()
    async with hanging.running() as url:
        explorers = configured_explorers({"CHAINS": "btc", "BTC_ESPLORA_URL": url})
        investigator = Investigator(db, "btc", explorers=explorers, use_graph=False, explorer_budget=0.5)
        report = await investigator.risk("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "btc")
    port = url.rsplit(":", 1)[1]
    assert report.level.value == "unknown" and hanging.connections >= 1
    assert f"explorer 127.0.0.1:{port} FAILED (no answer within 0.5 s)" in " ".join(report.coverage.sources)
