"""The JSON-RPC source over real HTTP: a local replay server answers with recorded mainnet responses, and fails in
the ways nodes fail (dead, HTTP 500, silent, truncated JSON, no batches, wrong chain, a reorg mid-read)."""

from __future__ import annotations

import csv
import time
from collections.abc import AsyncIterator

import pytest

from tests.conftest import shared_data
from tests.support.anvil import free_port
from tests.support.replay import ReplayNode
from tracing.chain.config import ChainConfig
from tracing.chain.mappers import InternalSource
from tracing.chain.rpc import BlockNotFound, ChainIdMismatch, RpcError, RpcSource, RpcUnavailable, redact
from tracing.chain.transfer import TransferKind
from tracing.errors import SourceError

FIXTURES = "ethereum-etl-rpc-fixtures"
BLOCK = 483920
TOKEN = "0xf4eced2f682ce333f96f2d8966c613ded8fc95dd"
EOS = "0x86fa049857e0209aa7d9e616f7eb3b3b78ecfdb0"
ETH_TOKEN = "0xf763be8b3263c268e9789abfb3934564a7b80054"
EMPTY_TOKEN = "0xdbdacfc9eb9d42559ac1efbdb40460c728139e6a"


def load_block_483920(node: ReplayNode) -> None:
    node.load_dir(shared_data(FIXTURES, "test_export_blocks_job", "block_with_logs"))
    node.load_dir(shared_data(FIXTURES, "test_export_receipts_job", "receipts_with_logs"))
    node.add("eth_chainId", [], "0x1")
    node.add("eth_blockNumber", [], hex(BLOCK + 100))


def chain(*urls: str, chain_id: int | None = 1) -> ChainConfig:
    return ChainConfig("eth", chain_id, "ETH", tuple(urls), confirmations=0)


def source(*urls: str, timeout: float = 5.0, attempts: int = 2, chain_id: int | None = 1) -> RpcSource:
    return RpcSource(chain(*urls, chain_id=chain_id), timeout=timeout, attempts=attempts, backoff=0.01)


@pytest.fixture
async def node() -> AsyncIterator[ReplayNode]:
    async with ReplayNode() as replay:
        load_block_483920(replay)
        yield replay


@pytest.fixture
async def spare() -> AsyncIterator[ReplayNode]:
    async with ReplayNode() as replay:
        load_block_483920(replay)
        yield replay


def expected_483920() -> set[tuple[str, str, str, int]]:
    path = shared_data(
        FIXTURES, "test_export_token_transfers_job", "block_with_transfers", "expected_token_transfers.csv"
    )
    with path.open(newline="") as f:
        return {(r["transaction_hash"], r["from_address"], r["to_address"], int(r["value"])) for r in csv.DictReader(f)}


async def test_a_pre_byzantium_block_over_http(node: ReplayNode) -> None:
    async with source(node.url) as src:
        assert await src.connect() == 1
        assert await src.head() == BLOCK + 100
        block = await src.fetch_block(BLOCK)
        again = await src.fetch_block(BLOCK)
    erc20 = {(t.tx_hash, t.from_addr, t.to_addr, t.value) for t in block.transfers if t.kind is TransferKind.ERC20}
    assert erc20 == expected_483920()
    assert len([t for t in block.transfers if t.kind is TransferKind.NATIVE]) == 2
    assert block.hash == "0x246edb4b351d93c27926f4649bcf6c24366e2a7c7c718dc9158eea20c03bc6ae"
    assert block.parent_hash == "0x2610dc6eb941f4bcbddfd2362b999087ccd956e978f0ece4f8da96851283a2ba"
    assert block.tx_count == 4 and again.transfers == block.transfers
    # The replay has no eth_getBlockReceipts and no trace methods, as an old node: fall back, and say so.
    assert block.coverage.receipts == "eth_getTransactionReceipt"
    assert block.coverage.internal is InternalSource.UNAVAILABLE
    assert "debug_traceBlockByNumber not offered" in block.coverage.notes[0]
    assert "trace_block not offered" in block.coverage.notes[0]
    assert node.calls["eth_getBlockReceipts"] == 1  # remembered after the first "method not found"
    assert node.calls["debug_traceBlockByNumber"] == 1 and node.calls["trace_block"] == 1
    assert node.calls["eth_getTransactionReceipt"] == 8
    # The token's eth_calls are not recorded: metadata stays unknown, the transfers are kept.
    assert all(t.decimals is None and t.symbol is None for t in block.transfers if t.token)


async def test_a_block_of_2016_with_its_token_transfer(node: ReplayNode) -> None:
    node.load_dir(shared_data(FIXTURES, "test_stream", "blocks_1755634_1755635"))
    async with source(node.url) as src:
        empty = await src.fetch_block(1755634)
        block = await src.fetch_block(1755635)
    assert empty.transfers == () and empty.tx_count == 0
    rows = {(t.kind, t.tx_hash, t.token, t.from_addr, t.to_addr, t.value) for t in block.transfers}
    assert rows == {
        (
            TransferKind.ERC20,
            "0x2e3dcd051a91d3a694f6b8de2ac4b5fe7acdba55f58bcf8471ff00d4a430074d",
            "0xbb9bc244d798123fde783fcc1c72d3bb8c189413",
            "0x6498077292a0921c8804924fdf47b5e91e2a215f",
            "0x8b3b3b624c3c0397d3da8fd861512393d51dcbac",
            5000000000000000000,
        ),
        (
            TransferKind.NATIVE,
            "0x9a5437ec71b74ecf5930b406908ac6999966d38a86d1534b7190ece7599095eb",
            None,
            "0x3763e6e1228bfeab94191c856412d1bb0a8e6996",
            "0xec1ebac9da3430213281c80fa6d46378341a96ae",
            405738107000000000,
        ),
    }


async def test_token_metadata_string_bytes32_empty_unknown_and_cached(node: ReplayNode) -> None:
    for folder in ("token_with_alternative_return_type", "token_with_invalid_data"):
        node.load_dir(shared_data(FIXTURES, "test_export_tokens_job", folder))
    node.load_dir(shared_data(FIXTURES, "test_stream", "blocks_2112234_2112234"))
    unknown = "0x" + "12" * 20
    async with source(node.url) as src:
        metas = await src.token_meta([EOS, ETH_TOKEN, EMPTY_TOKEN, unknown])
        calls = node.calls["eth_call"]
        again = await src.token_meta([EOS, ETH_TOKEN])
    assert (metas[EOS].symbol, metas[EOS].decimals) == ("EOS", 18)
    assert (metas[ETH_TOKEN].symbol, metas[ETH_TOKEN].decimals) == ("ETH", 18)
    assert (metas[EMPTY_TOKEN].symbol, metas[EMPTY_TOKEN].decimals) == (None, 0)
    assert (metas[unknown].symbol, metas[unknown].decimals) == (None, None)
    assert calls == 8 and node.calls["eth_call"] == 8  # once per token
    assert again[EOS] == metas[EOS]


async def test_tokens_that_revert_have_no_metadata(node: ReplayNode) -> None:
    node.failing["eth_call"] = {"code": 3, "message": "execution reverted"}
    async with source(node.url) as src:
        metas = await src.token_meta([EOS])
        block = await src.fetch_block(BLOCK)
    assert (metas[EOS].symbol, metas[EOS].decimals) == (None, None)
    assert len([t for t in block.transfers if t.token == TOKEN]) == 2


# --- fail-over, time-outs, broken answers ------------------------------------------------------------------


async def test_a_dead_first_url_fails_over_to_the_second(node: ReplayNode) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with source(dead, node.url) as src:
        block = await src.fetch_block(BLOCK)
    assert len(block.transfers) == 4


async def test_http_500_fails_over_and_the_working_url_is_kept(node: ReplayNode, spare: ReplayNode) -> None:
    node.mode = "http500"
    async with source(node.url, spare.url) as src:
        await src.connect()
        first_tries = node.requests
        block = await src.fetch_block(BLOCK)
    assert len(block.transfers) == 4
    assert first_tries == 1 and node.requests == 1  # later calls go straight to the URL that answered


async def test_a_silent_url_times_out_and_fails_over(node: ReplayNode, spare: ReplayNode) -> None:
    node.mode = "hang"
    started = time.monotonic()
    async with source(node.url, spare.url, timeout=0.3) as src:
        block = await src.fetch_block(BLOCK)
    assert len(block.transfers) == 4
    assert time.monotonic() - started < 5


async def test_an_rpc_that_times_out_gives_a_clear_message(node: ReplayNode) -> None:
    node.hang.add("eth_getBlockByNumber")
    async with source(node.url, timeout=0.3, attempts=2) as src:
        with pytest.raises(RpcUnavailable) as caught:
            await src.fetch_block(BLOCK)
    message = str(caught.value)
    assert message.startswith(f"eth_getBlockByNumber (block {BLOCK}): no usable answer from 1 URL after 2 attempts")
    assert f"{redact(node.url)} gave no answer within 0.3s" in message


async def test_truncated_json_names_the_method_and_block(node: ReplayNode) -> None:
    node.truncate.add("eth_getBlockByNumber")
    async with source(node.url, attempts=1) as src:
        with pytest.raises(SourceError) as caught:
            await src.fetch_block(BLOCK)
    message = str(caught.value)
    assert f"eth_getBlockByNumber (block {BLOCK})" in message and "broken JSON (truncated response?)" in message


async def test_an_html_error_page_is_not_taken_for_an_answer(node: ReplayNode, spare: ReplayNode) -> None:
    node.mode = "garbage"
    async with source(node.url, attempts=1) as src:
        with pytest.raises(RpcUnavailable, match="broken JSON"):
            await src.head()
    async with source(node.url, spare.url) as src:
        assert await src.head() == BLOCK + 100


async def test_a_node_without_batches_gets_single_calls(node: ReplayNode) -> None:
    node.batches = False
    async with source(node.url) as src:
        block = await src.fetch_block(BLOCK)
    assert len(block.transfers) == 4 and node.calls["eth_getTransactionReceipt"] == 4


async def test_the_wrong_chain_is_refused(node: ReplayNode) -> None:
    async with source(node.url, chain_id=8453) as src:
        with pytest.raises(ChainIdMismatch, match="serves chain id 1, not 8453; check ETH_RPC_URL"):
            await src.connect()
    async with source(node.url, chain_id=None) as src:
        assert await src.connect() == 1 and src.chain_id == 1


async def test_an_error_answer_is_raised_at_once_with_its_place(node: ReplayNode, spare: ReplayNode) -> None:
    node.failing["eth_getBlockByNumber"] = {"code": -32000, "message": "header not found"}
    async with source(node.url, spare.url) as src:
        with pytest.raises(RpcError) as caught:
            await src.fetch_block(BLOCK)
    assert (
        str(caught.value) == f"eth_getBlockByNumber (block {BLOCK}): the node answered error -32000: header not found"
    )
    assert spare.calls["eth_getBlockByNumber"] == 0


async def test_a_trace_method_that_fails_for_a_block_is_said_and_tried_again(node: ReplayNode) -> None:
    node.failing["debug_traceBlockByNumber"] = {"code": -32000, "message": "required historical state unavailable"}
    async with source(node.url) as src:
        first = await src.fetch_block(BLOCK)
        await src.fetch_block(BLOCK)
    assert first.coverage.internal is InternalSource.UNAVAILABLE
    assert "debug_traceBlockByNumber failed: required historical state unavailable" in first.coverage.notes[0]
    assert node.calls["debug_traceBlockByNumber"] == 2  # not a missing method: asked again for the next block


async def test_a_missing_block_and_a_block_that_changes_while_read(node: ReplayNode) -> None:
    node.failing["eth_getBlockReceipts"] = {"code": -32000, "message": "header not found"}
    async with source(node.url) as src:
        with pytest.raises(BlockNotFound, match="block 999 does not exist on eth"):
            await src.fetch_block(999)  # the block's own answer is the news, not the receipts' error
    del node.failing["eth_getBlockReceipts"]
    for key, recorded in node.responses.items():
        if key[0] == "eth_getTransactionReceipt":
            recorded["result"] = {**recorded["result"], "blockHash": "0x" + "ee" * 32}
    async with source(node.url) as src:
        with pytest.raises(SourceError, match=f"block {BLOCK} of eth kept changing while it was read"):
            await src.fetch_block(BLOCK)


def test_urls_in_messages_hide_paths_that_may_hold_keys() -> None:
    assert redact("https://mainnet.infura.io/v3/0123456789abcdef") == "https://mainnet.infura.io/…"
    assert redact("http://127.0.0.1:8545") == "http://127.0.0.1:8545"
