"""`chainsleuth index --chain btc`: Bitcoin Core JSON-RPC (the regtest node) → bitcoin transactions with their
inputs and outputs, and the transfers derived from them, in the store (SQLite and PostgreSQL), with the indexed
range as coverage; resumable and idempotent like the EVM index."""

from __future__ import annotations

import asyncio
import json
import os
from decimal import Decimal
from pathlib import Path

import pytest

from bot.app import App
from bot.cli.watch import run_watch
from storage.db import open_database
from tests.support.bitcoind import BitcoinNode
from tests.support.btc_scenario import BtcScenario
from tests.support.cli import run_cli
from tests.support.fixtures import btc_scenario  # noqa: F401
from tests.support.replay import ReplayNode
from tests.test_utxo_mappers import SEGWIT_TAPROOT_BLOCK
from tracing.chain.btc_rpc import CoreRpcSource
from tracing.chain.config import chain_from_env
from tracing.chain.index import TransferIndex
from tracing.chain.rpc import ChainIdMismatch, JsonRpcClient
from tracing.chain.transfer import TransferKind
from tracing.chain.utxo import Outpoint
from tracing.chain.utxo_store import UtxoStore


@pytest.fixture
def regtest(btc_scenario: tuple[BitcoinNode, BtcScenario]) -> tuple[BitcoinNode, BtcScenario]:  # noqa: F811
    return btc_scenario


def btc_env(tmp_path: Path, database_url: str, node: BitcoinNode) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAINS", "ETH_", "BTC_"))}
    env.update(
        {
            "DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": database_url,
            "DEMO_DATA": "false",
            "CHAINS": "btc",
            "BTC_RPC_URL": node.url,
            "BTC_NETWORK": "regtest",
            "BTC_CONFIRMATIONS": "0",
        }
    )
    return env


def test_index_btc_stores_transactions_spends_and_transfers(
    regtest: tuple[BitcoinNode, BtcScenario], tmp_path: Path, prepared_database_url: str
) -> None:
    node, s = regtest
    env = btc_env(tmp_path, prepared_database_url, node)
    args = ["index", "--chain", "btc", "--from-block", str(s.first_block), "--to-block", "latest", "--no-progress"]
    first = run_cli(args, env)
    assert first.returncode == 0, first.stderr
    assert f"btc: blocks {s.first_block}-{s.last_block}: 4 indexed" in first.stdout
    assert "proportional allocation" in first.stdout and "note:" not in first.stderr
    again = run_cli(args, env)
    assert again.returncode == 0 and "already indexed; nothing to do" in again.stdout

    db = open_database(prepared_database_url)
    try:
        store, index, a = UtxoStore(db), TransferIndex(db), s.addresses
        for name, txid in s.txids.items():
            tx = store.get("btc", txid)
            assert tx is not None and tx.fee == s.fees[name], name  # inputs resolved from the previous transactions
        assert store.spender("btc", Outpoint(s.txids["hop1"], 0)) == (s.txids["hop2"], 0)
        assert store.spender("btc", Outpoint(s.txids["hop1"], 1)) == (s.txids["join"], 1)
        assert store.spender("btc", Outpoint(s.txids["hop3"], 0)) is None  # unspent
        out_of_src = {(t.to_addr, t.value) for t in index.for_address(a["SRC"], "btc", direction="out")}
        assert out_of_src == {(a["H1"], 1_500_000_000), (a["JOIN"], 499_955_000)}  # SRC's half of the join
        join_in = {t.from_addr: t.value for t in index.for_address(a["JOIN"], "btc", direction="in")}
        assert join_in == {a["SRC"]: 499_955_000, a["H1B"]: 499_945_000}  # proportional, 0.0007 fee left out
        assert all(t.kind is TransferKind.UTXO and t.decimals == 8 for t in index.for_address(a["H2"], "btc"))
        [covered] = [r for r in index.ranges("btc")]
        assert (covered.from_block, covered.to_block, covered.internal_coverage) == (
            s.first_block,
            s.last_block,
            "utxo",
        )
    finally:
        db.dispose()

    traced = run_cli(["trace", a["SRC"], "--hops", "3", "--json"], env)  # from the index, over the graph
    assert traced.returncode == 0, traced.stderr
    body = json.loads(traced.stdout)
    edges = {(e["from"], e["to"]): e for e in body["edges"]}
    assert edges[(a["H2"], a["H3"])]["value"] == "999970000" and edges[(a["H2"], a["H3"])]["decimals"] == 8
    assert any("proportional allocation" in gap for gap in body["coverage"]["gaps"])


def test_the_source_checks_the_network_and_reads_blocks_with_their_previous_outputs(
    regtest: tuple[BitcoinNode, BtcScenario],
) -> None:
    node, s = regtest
    mainnet = chain_from_env("btc", {"BTC_RPC_URL": node.url})

    async def run() -> None:
        async with CoreRpcSource(mainnet) as wrong:
            with pytest.raises(ChainIdMismatch, match="serves regtest, not main"):
                await wrong.connect()
        config = chain_from_env("btc", {"BTC_RPC_URL": node.url, "BTC_NETWORK": "regtest"})
        async with CoreRpcSource(config) as source:
            await source.connect()
            assert await source.head() == s.last_block
            [block] = await source.utxo_blocks([s.last_block])
            assert not isinstance(block, Exception) and block.inputs_known
            assert source.verbosity in (2, 3)  # this node's verbosity 3 has no prevout: looked up either way
            join = await source.transaction(s.txids["join"])
            assert join.fee == s.fees["join"] and join.input_addresses() == (s.addresses["H1B"], s.addresses["SRC"])

    asyncio.run(run())


def test_unknown_previous_transactions_are_said_not_guessed(regtest: tuple[BitcoinNode, BtcScenario]) -> None:
    node, s = regtest
    config = chain_from_env("btc", {"BTC_RPC_URL": node.url, "BTC_NETWORK": "regtest"})

    class NoPrevious(CoreRpcSource):
        async def previous_outputs(self, outpoints: object) -> dict[Outpoint, object]:  # type: ignore[override]
            return {}  # as a node without -txindex and without prevout

    async def run() -> None:
        async with NoPrevious(config, client=JsonRpcClient([node.url], parse_float=Decimal)) as source:
            block = await source.fetch_block(s.first_block + 1)
            assert block.transfers == () and block.utxo_txs[1].fee is None
            assert any("their transfers are missing" in note for note in block.coverage.notes)

    asyncio.run(run())


async def test_the_watcher_leaves_bitcoin_alone_and_says_so(app: App, caplog: pytest.LogCaptureFixture) -> None:
    stop = asyncio.Event()
    stop.set()
    btc = chain_from_env("btc", {"BTC_RPC_URL": "http://user:pass@127.0.0.1:1", "BTC_NETWORK": "regtest"})
    await run_watch(app, [btc], stop)  # would otherwise ask a bitcoin node for eth_chainId and stop the bot
    assert "not following btc: watching bitcoin blocks is not supported yet" in caplog.text


async def test_verbosity_3_prevouts_need_no_previous_transactions() -> None:
    block = json.loads(json.dumps(SEGWIT_TAPROOT_BLOCK, default=float))  # as Core sends it: numbers
    async with ReplayNode() as replay:
        replay.add("getblockhash", [800000], block["hash"])
        replay.add("getblock", [block["hash"], 3], block)
        replay.add("getrawtransaction", ["cc" * 32, 1], None)
        config = chain_from_env("btc", {"BTC_RPC_URL": replay.url})
        async with CoreRpcSource(config) as source:
            mapped = await source.fetch_block(800000)
    assert source.verbosity == 3 and replay.calls["getrawtransaction"] == 0
    assert mapped.utxo_txs[1].fee == 455 and mapped.coverage.notes == ()
    got = {(t.from_addr[:6], t.to_addr[:6]): t.value for t in mapped.transfers}
    assert got == {  # 0.012 and 0.00299 split 1,000,000 : 500,001; the bare multisig's 546 sat has no address
        ("bc1qw5", "bc1qrp"): 799_999, ("bc1p5c", "bc1qrp"): 400_001,
        ("bc1qw5", "3J98t1"): 199_333, ("bc1p5c", "3J98t1"): 99_667,
    }  # fmt: skip


def test_fifo_allocation_by_configuration_is_the_rule_a_trace_states(
    regtest: tuple[BitcoinNode, BtcScenario], tmp_path: Path
) -> None:
    node, s = regtest
    env = {**btc_env(tmp_path, f"sqlite:///{tmp_path / 'fifo.sqlite3'}", node), "BTC_ALLOCATION": "fifo"}
    indexed = run_cli(["index", "--chain", "btc", "--from-block", str(s.first_block), "--no-progress"], env)
    assert indexed.returncode == 0, indexed.stderr
    traced = run_cli(["trace", s.addresses["SRC"], "--hops", "3", "--json"], env)
    assert traced.returncode == 0, traced.stderr
    body = json.loads(traced.stdout)
    edges = {(e["from"], e["to"]): e for e in body["edges"]}
    # the join's inputs in order: H1B 4.9998 pays first, SRC's 4.9999 the rest of 9.9990 (and the fee)
    assert edges[(s.addresses["SRC"], s.addresses["JOIN"])]["value"] == "499920000"
    assert edges[(s.addresses["SRC"], s.addresses["JOIN"])]["position"] == "f:1:0"
    gaps = " ".join(body["coverage"]["gaps"])
    assert "fifo allocation" in gaps and "proportional" not in gaps
    bad = run_cli(["index", "--chain", "btc", "--from-block", "1"], {**env, "BTC_ALLOCATION": "lifo"})
    assert bad.returncode == 1 and "BTC_ALLOCATION must be proportional or fifo, not “lifo”." in bad.stderr
