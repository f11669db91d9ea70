"""TRON blocks through `/jsonrpc` (issue 14): a TRC-20 token compiled with solc and deployed on a real anvil
running with TRON's chain id, read through `TronRpcSource` behind the local TRON server (`tests/support/tron_server.py`:
TRON's methods, tags and `eth_getLogs` limits); every address comes out as `T…`. Then the indexer with the watched
contracts' raw logs, and `chainsleuth index --chain tron`."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from storage import Database, open_database
from tests.support.anvil import AnvilNode
from tests.support.cli import run_cli
from tests.support.contracts import Contract, deploy
from tests.support.fixtures import require_anvil
from tests.support.tron_server import TRON_CHAIN_ID, TronServer
from tracing.chain.address import tron_from_hex
from tracing.chain.config import WELL_KNOWN, ChainConfig, load_chains
from tracing.chain.index import TransferIndex
from tracing.chain.indexer import Indexer
from tracing.chain.mappers import ContractLogs, InternalSource
from tracing.chain.rpc import RpcError
from tracing.chain.transfer import Direction, TransferKind
from tracing.chain.tron import TRON_GAPS, TronRpcSource, rpc_source
from tracing.errors import SourceError
from tracing.investigator import Investigator
from tracing.trace.params import TraceParams

pytestmark = pytest.mark.anvil

SUN = 10**6
APPROVAL = "0x8c5be1e5ebec7d5bd14f71427e919c34e84e1d6b0f2f3b6c4d9d3b5d6c1a9c1f"


@dataclass
class TronChain:
    node: AnvilNode
    token: Contract
    alice: str
    bob: str
    first: int
    last: int
    token_block: int
    trx_block: int
    token_tx: str
    trx_tx: str


@pytest.fixture(scope="module")
def tron_chain() -> Iterator[TronChain]:
    """anvil as a TRON chain: a 6-decimal "USDT" minted to alice, 25 USDT and then 7 TRX from alice to bob, and an
    approval (a log of the token that is no transfer)."""
    require_anvil()
    with AnvilNode(chain_id=TRON_CHAIN_ID) as node:
        rpc = node.rpc
        alice, bob = rpc.accounts()[:2]
        first = rpc.block_number() + 1
        token = deploy(rpc, "TestToken", "Tether USD", "USDT", 6, sender=alice)
        rpc.wait_receipt(token.transact("mint", alice, 1_000 * SUN, sender=alice))
        token_tx = token.transact("transfer", bob, 25 * SUN, sender=alice)
        token_block = int(rpc.wait_receipt(token_tx)["blockNumber"], 16)
        trx_tx = rpc.send_transaction({"from": alice, "to": bob, "value": 7 * SUN, "gas": 21_000})
        trx_block = int(rpc.wait_receipt(trx_tx)["blockNumber"], 16)
        rpc.wait_receipt(token.transact("approve", bob, 5 * SUN, sender=alice))
        yield TronChain(node, token, alice, bob, first, rpc.block_number(), token_block, trx_block, token_tx, trx_tx)


@pytest.fixture
async def tron(tron_chain: TronChain) -> AsyncIterator[TronServer]:
    async with TronServer(upstream=tron_chain.node.url) as server:
        yield server


def tron_config(url: str, confirmations: int = 0) -> ChainConfig:
    known = WELL_KNOWN["tron"]
    return ChainConfig(
        "tron", known.chain_id, "TRX", (url,), confirmations=confirmations, decimals=6, family=known.family
    )


def t(address: str) -> str:
    return tron_from_hex(address)


async def test_a_trc20_token_and_trx_read_through_tron_jsonrpc_show_t_addresses(
    tron_chain: TronChain, tron: TronServer
) -> None:
    async with TronRpcSource(tron_config(tron.jsonrpc_url)) as source:
        assert await source.connect() == 0x2B6653DC
        token_block = await source.fetch_block(tron_chain.token_block)
        trx_block = await source.fetch_block(tron_chain.trx_block)

    [usdt] = token_block.transfers
    assert usdt.kind is TransferKind.ERC20 and usdt.tx_hash == tron_chain.token_tx
    assert (usdt.from_addr, usdt.to_addr) == (t(tron_chain.alice), t(tron_chain.bob))
    assert usdt.from_addr.startswith("T") and len(usdt.from_addr) == 34
    assert usdt.token == t(tron_chain.token.address) and usdt.token.startswith("T")
    assert (usdt.value, usdt.decimals, usdt.symbol) == (25 * SUN, 6, "USDT")  # symbol()/decimals() over /jsonrpc
    [trx] = trx_block.transfers
    assert (trx.kind, trx.token, trx.value, trx.symbol, trx.decimals) == (TransferKind.NATIVE, None, 7 * SUN, "TRX", 6)
    assert (trx.from_addr, trx.to_addr) == (t(tron_chain.alice), t(tron_chain.bob))
    # No trace method was asked (TRON has none), and the block says its internal transfers are not covered.
    assert not [m for m in tron.rpc_calls if m.startswith(("trace_", "debug_"))]
    assert token_block.coverage.internal is InternalSource.UNAVAILABLE
    assert source.untyped_blocks == 1 and tron.wallet_calls == 0  # no wallet API given: the TRX block is unchecked


async def test_a_value_that_is_not_trx_is_not_counted_as_trx(tron_chain: TronChain, tron: TronServer) -> None:
    """TRON's /jsonrpc shows a TRC-10 transfer like a TRX transfer; the full node's HTTP API names its type, and
    only TransferContract and TriggerSmartContract values count as TRX."""
    async with TronRpcSource(tron_config(tron.jsonrpc_url), wallet_url=tron.url) as source:
        kept = await source.fetch_block(tron_chain.trx_block)
        tron.contract_types[tron_chain.trx_tx[2:]] = "TransferAssetContract"
        dropped = await source.fetch_block(tron_chain.trx_block + 0)  # the same block, now typed as TRC-10
        token = await source.fetch_block(tron_chain.token_block)
    assert [t.value for t in kept.transfers] == [7 * SUN]
    assert dropped.transfers == ()
    assert any("TransferAssetContract 1" in note and "not counted" in note for note in dropped.coverage.notes)
    assert len(token.transfers) == 1 and tron.wallet_calls == 2  # a block without TRX values is not asked about
    assert source.untyped_blocks == 0


async def test_the_tron_server_answers_as_tron_does(tron: TronServer) -> None:
    async with TronRpcSource(tron_config(tron.jsonrpc_url)) as source:
        client = source.client
        with pytest.raises(RpcError) as trace:
            await client.call("trace_block", ["0x1"])
        assert trace.value.code == -32601 and trace.value.missing_method
        with pytest.raises(RpcError) as pending:
            await client.call("eth_getBlockByNumber", ["pending", False])
        assert "TAG pending not supported" in str(pending.value)
        with pytest.raises(RpcError) as past:
            await client.call("eth_getBalance", ["0x" + "11" * 20, "0x1"])
        assert "just support TAG as latest" in str(past.value)
        with pytest.raises(RpcError) as wide:
            await client.call("eth_getLogs", [{"fromBlock": "0x0", "toBlock": hex(5_001)}])
        assert "exceed max block range: 5000" in str(wide.value)


async def test_logs_of_watched_contracts_come_whole_through_tron_limits(tron_chain: TronChain) -> None:
    """A server that allows 2 blocks and 1 result a call: the range is split until each part is answered, and
    nothing is lost or doubled; a single block over the result limit is a clear failure."""
    token = t(tron_chain.token.address)
    direct = tron_chain.node.rpc.get_logs(
        {"fromBlock": hex(tron_chain.first), "toBlock": hex(tron_chain.last), "address": tron_chain.token.address}
    )
    async with TronServer(upstream=tron_chain.node.url, max_block_range=2, max_results=1) as tron:
        async with TronRpcSource(tron_config(tron.jsonrpc_url)) as source:
            logs = await source.logs([token], tron_chain.first, tron_chain.last)
            assert tron.rpc_calls.count("eth_getLogs") > 2
    assert [(log.block_number, log.log_index) for log in logs] == [
        (int(d["blockNumber"], 16), int(d["logIndex"], 16)) for d in direct
    ]
    assert {log.address for log in logs} == {token}
    assert len(logs) == 3 and logs[-1].topics[0] != logs[0].topics[0]  # mint, transfer, approval
    async with TronServer(upstream=tron_chain.node.url, max_results=0) as tron:
        async with TronRpcSource(tron_config(tron.jsonrpc_url)) as source:
            with pytest.raises(SourceError, match="more than 0 results"):
                await source.logs([token], tron_chain.token_block, tron_chain.token_block)


async def test_the_indexer_stores_t_addresses_and_hands_over_the_contract_logs(
    tron_chain: TronChain, tron: TronServer, db: Database
) -> None:
    seen: list[ContractLogs] = []
    token = t(tron_chain.token.address)
    async with rpc_source(tron_config(tron.jsonrpc_url)) as source:
        assert isinstance(source, TronRpcSource)
        indexer = Indexer(
            TransferIndex(db), source, "tron", batch_size=2, watched_contracts=[token], on_logs=seen.append
        )
        report = await indexer.run(tron_chain.first, tron_chain.last)
    assert report.blocks_indexed == tron_chain.last - tron_chain.first + 1 and report.internal == ("unavailable",)
    stored = TransferIndex(db).for_address(t(tron_chain.bob), "tron")
    assert {(s.kind, s.value) for s in stored} == {(TransferKind.ERC20, 25 * SUN), (TransferKind.NATIVE, 7 * SUN)}
    # Every indexed batch handed over its logs, in order and covering the range exactly once.
    assert [(c.first, c.last) for c in seen] == [
        (a, min(a + 1, tron_chain.last)) for a in range(tron_chain.first, tron_chain.last + 1, 2)
    ]
    assert sum(len(c.logs) for c in seen) == 3 and all(c.contracts == (token,) for c in seen)
    with pytest.raises(ValueError):
        Indexer(TransferIndex(db), source, "tron", watched_contracts=[token])

    # The indexed TRON transfers are traced from the store (graph and SQL alike), T… addresses throughout.
    for use_graph in (True, False):
        investigator = Investigator(db, default_chain="eth", use_graph=use_graph)
        traced = await investigator.trace(t(tron_chain.alice), "tron", TraceParams(Direction.OUT, 2))
        reached = {node.address for node in traced.nodes}
        assert t(tron_chain.bob) in reached and all(a.startswith("T") for a in reached), reached
        assert TRON_GAPS[0] in traced.coverage.gaps


async def test_the_index_command_indexes_tron(
    tron_chain: TronChain, tron: TronServer, tmp_path: Path, prepared_database_url: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAINS", "TRON_"))}
    env.update(
        {
            "DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": prepared_database_url,
            "DEMO_DATA": "false",
            "CHAINS": "eth,tron",
            "TRON_RPC_URL": tron.jsonrpc_url,
        }
    )
    assert load_chains(env)["tron"].confirmations == 19
    args = ["index", "--chain", "tron", "--from-block", str(tron_chain.first), "--to-block", str(tron_chain.last)]
    done = await asyncio.to_thread(run_cli, args, env)
    assert done.returncode == 0, done.stderr
    assert f"tron: blocks {tron_chain.first}-{tron_chain.last}" in done.stdout
    assert "internal TRX transfers (TRX paid out by contracts) are NOT in the index" in done.stderr
    assert "1 block(s) hold TRX amounts that were not checked against their transactions' types" in done.stderr
    listed = await asyncio.to_thread(run_cli, ["transfers", t(tron_chain.bob), "--chain", "tron"], env)
    assert listed.returncode == 0, listed.stderr
    assert t(tron_chain.alice) in listed.stdout and "25 USDT" in listed.stdout and "7 TRX" in listed.stdout
    assert "0x" + tron_chain.alice[2:].lower() not in listed.stdout.lower()
    # TRON transaction ids as Tronscan shows them (64 hex, no 0x), in text and JSON; the store keeps 0x + 64 hex
    assert f"tx {tron_chain.token_tx[2:]}" in listed.stdout and tron_chain.token_tx not in listed.stdout
    as_json = await asyncio.to_thread(run_cli, ["transfers", t(tron_chain.bob), "--chain", "tron", "--json"], env)
    assert {row["tx_hash"] for row in json.loads(as_json.stdout)} == {tron_chain.token_tx[2:], tron_chain.trx_tx[2:]}
    store = open_database(prepared_database_url)
    try:
        stored = TransferIndex(store).for_address(t(tron_chain.bob), "tron")
    finally:
        store.dispose()
    assert {s.tx_hash for s in stored} == {tron_chain.token_tx, tron_chain.trx_tx}


def test_a_tron_look_alike_is_told_by_what_tron_wallets_show() -> None:
    """USDT-TRC20 address poisoning plants addresses sharing the characters right after the `T` and the last ones."""
    from tracing.monitor.alerts import looks_alike

    real = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
    assert looks_alike("TR7NHXXXXXXXXXXXXXXXXXXXXXXXXjLj6t", real)
    assert not looks_alike("TX7NHXXXXXXXXXXXXXXXXXXXXXXXXjLj6t", real)  # the second character differs
    assert not looks_alike("TLCuBEirVzB6V4menLZKw1jfBTFMZbuKq7", real)
