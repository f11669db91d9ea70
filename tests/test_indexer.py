"""`chainsleuth index` end to end: a real anvil chain with a known scenario is indexed into SQLite and PostgreSQL,
in process and through the CLI, and exactly the scenario's transfers land in the store; bad data and broken RPC
answers stop the run with the place, keeping what was done."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from storage.db import Database, open_database
from tests.conftest import shared_data
from tests.support.anvil import AnvilNode, Scenario, build_scenario
from tests.support.cli import run_cli
from tests.support.fixtures import require_anvil
from tests.support.replay import ReplayNode
from tracing.chain.config import ChainConfig
from tracing.chain.index import TransferIndex
from tracing.chain.indexer import Indexer, IndexingFailed, missing_ranges
from tracing.chain.mappers import TRANSFER_TOPIC, BlockTransfers, InternalSource, Traces, map_block
from tracing.chain.rpc import JsonRpcClient, RpcError, RpcSource, RpcUnavailable
from tracing.chain.transfer import Transfer, TransferKind

Row = tuple[int, str, str, str | None, str, str, int]


@pytest.fixture(scope="module")
def chain() -> Iterator[tuple[AnvilNode, Scenario]]:
    """An anvil node of this module's own, holding the scenario and nothing after it."""
    require_anvil()
    with AnvilNode() as node:
        yield node, build_scenario(node)


def expected(scenario: Scenario) -> set[Row]:
    return {(t.block_number, t.tx_hash, t.kind, t.token, t.from_addr, t.to_addr, t.value) for t in scenario.expected}


def rows(transfers: list[Transfer]) -> set[Row]:
    return {(t.block_number, t.tx_hash, t.kind.value, t.token, t.from_addr, t.to_addr, t.value) for t in transfers}


def anv(node: AnvilNode) -> ChainConfig:
    return ChainConfig("anv", None, "ETH", (node.url,))


async def test_indexing_the_scenario_stores_exactly_its_transfers(
    db: Database, chain: tuple[AnvilNode, Scenario]
) -> None:
    node, scenario = chain
    index = TransferIndex(db)
    async with RpcSource(anv(node), trace_methods=(InternalSource.CALL_TRACER,)) as source:
        chain_id = await source.connect()
        report = await Indexer(index, source, "anv", chain_id=chain_id, batch_size=2).run(
            scenario.first_block, scenario.last_block
        )
        again = await Indexer(index, source, "anv", chain_id=chain_id).run(scenario.first_block, scenario.last_block)
    stored = index.in_blocks("anv", scenario.first_block, scenario.last_block)
    assert rows(stored) == expected(scenario)
    assert len(stored) == len(scenario.expected) == report.transfers_added == report.transfers_seen
    assert not [t for t in stored if t.tx_hash in scenario.reverted or t.tx_hash in scenario.zero_value]
    assert {2**64 + 3, 2**70 + 7} <= {t.value for t in stored}  # above 2**63, exact on both stores
    for t in stored:
        if t.token:
            meta = scenario.tokens[t.token]
            assert (t.symbol, t.decimals) == (meta.symbol, meta.decimals)
        else:
            assert (t.symbol, t.decimals) == ("ETH", 18)
    assert (report.blocks_indexed, report.failed_txs, report.internal) == (5, 3, ("callTracer",))
    assert (again.blocks_indexed, again.blocks_skipped, again.transfers_added) == (0, 5, 0)
    assert index.add(stored) == 0  # idempotent even when asked to store the same rows again
    [done] = index.ranges("anv")
    assert (done.from_block, done.to_block, done.internal_coverage) == (
        scenario.first_block,
        scenario.last_block,
        "callTracer",
    )


async def test_trace_block_by_default_gives_the_same_transfers_and_a_run_resumes(
    db: Database, chain: tuple[AnvilNode, Scenario]
) -> None:
    node, scenario = chain
    index = TransferIndex(db)
    first, last = scenario.first_block, scenario.last_block
    seen: list[int] = []
    async with RpcSource(anv(node)) as source:
        part = await Indexer(index, source, "anv").run(first, first + 1)
        rest = await Indexer(index, source, "anv", concurrency=1).run(first, last, progress=seen.append)
    assert part.blocks_indexed == 2 and (rest.blocks_skipped, rest.blocks_indexed) == (2, 3)
    assert sum(seen) == last - first + 1
    assert rows(index.in_blocks("anv", first, last)) == expected(scenario)
    assert [(r.from_block, r.to_block, r.internal_coverage) for r in index.ranges("anv")] == [
        (first, last, "trace_block")
    ]


async def test_a_block_past_the_head_stops_the_run_with_its_place_and_keeps_the_rest(
    db: Database, chain: tuple[AnvilNode, Scenario]
) -> None:
    node, scenario = chain
    index = TransferIndex(db)
    async with RpcSource(anv(node)) as source:
        with pytest.raises(IndexingFailed) as caught:
            await Indexer(index, source, "anv", batch_size=100).run(scenario.first_block, scenario.last_block + 2)
    assert f"block {scenario.last_block + 1} does not exist on anv" in str(caught.value)
    assert "5 block(s) stored, run again to resume" in str(caught.value)
    assert rows(index.in_blocks("anv", 0, 10**6)) == expected(scenario)
    assert [(r.from_block, r.to_block) for r in index.ranges("anv")] == [(scenario.first_block, scenario.last_block)]


# --- several blocks in one JSON-RPC batch, read without their transaction objects ----------------------------


class Recording(JsonRpcClient):
    """A JSON-RPC client that notes every call it sends, alone or in a batch, as (how, method, first parameter),
    and answers chosen calls — (method, block tag) — with an error: in batches only, or always."""

    def __init__(self, url: str) -> None:
        super().__init__([url], attempts=1, backoff=0.01)
        self.sent: list[tuple[str, str, Any]] = []
        self.fail_in_batch: set[tuple[str, str]] = set()
        self.fail_always: set[tuple[str, str]] = set()
        self.batches_unavailable = False
        self.stale: set[tuple[str, str]] = set()

    def _failing(self, method: str, params: Sequence[Any], in_batch: bool) -> bool:
        key = (method, str(params[0]) if params else "")
        return key in self.fail_always or (in_batch and key in self.fail_in_batch)

    async def call(self, method: str, params: Sequence[Any], *, where: str = "") -> Any:
        self.sent.append(("call", method, params[0] if params else None))
        if self._failing(method, params, in_batch=False):
            raise RpcError(method, where, -32000, "injected")
        return await super().call(method, params, where=where)

    async def batch(self, calls: Sequence[tuple[str, Sequence[Any]]], *, where: str = "") -> list[Any]:
        self.sent.extend(("batch", method, params[0] if params else None) for method, params in calls)
        if self.batches_unavailable:
            raise RpcUnavailable(f"{where}: injected")
        answers = await super().batch(calls, where=where)
        out = []
        for (method, params), answer in zip(calls, answers, strict=True):
            if self._failing(method, params, in_batch=True):
                answer = RpcError(method, where, -32000, "injected")
            elif (method, str(params[0]) if params else "") in self.stale and isinstance(answer, list):
                answer = [{**item, "blockHash": "0x" + "ee" * 32} for item in answer]  # as from a reorged block
            out.append(answer)
        return out

    def full_blocks(self) -> list[Any]:
        return [tag for how, method, tag in self.sent if method == "eth_getBlockByNumber" and how == "call"]


TRACE_CALLS = {InternalSource.TRACE_BLOCK: ("trace_block",), InternalSource.CALL_TRACER: ("debug_traceBlockByNumber",)}


def read_in_full(node: AnvilNode, number: int, method: InternalSource) -> BlockTransfers:
    """The block as mapped from its full transaction objects, read with the test's own client."""
    tag = hex(number)
    block = node.rpc.call("eth_getBlockByNumber", tag, True)
    receipts = node.rpc.call("eth_getBlockReceipts", tag)
    if method is InternalSource.TRACE_BLOCK:
        traces = node.rpc.call("trace_block", tag)
    else:
        traces = node.rpc.call("debug_traceBlockByNumber", tag, {"tracer": "callTracer"})
    return map_block("anv", block, receipts, Traces(method, traces), native_symbol="ETH")


@pytest.mark.parametrize("method", [InternalSource.TRACE_BLOCK, InternalSource.CALL_TRACER])
async def test_blocks_read_together_without_their_transactions_are_the_blocks_read_in_full(
    chain: tuple[AnvilNode, Scenario], method: InternalSource
) -> None:
    node, scenario = chain
    blocks = list(scenario.blocks)
    client = Recording(node.url)
    async with RpcSource(anv(node), client=client, trace_methods=(method,)) as source:
        cold = await asyncio.gather(
            source.fetch_blocks(blocks[:3], token_meta=False), source.fetch_blocks(blocks[3:], token_meta=False)
        )
        assert client.full_blocks() == [hex(blocks[0])]  # read alone, it found the trace method for both calls
        client.sent.clear()
        together = await source.fetch_blocks(blocks, token_meta=False)
    assert [*cold[0], *cold[1]] == together == [read_in_full(node, n, method) for n in blocks]
    assert {
        (t.tx_hash, t.kind.value, t.token, t.from_addr, t.to_addr, t.value) for b in together for t in b.transfers
    } == {(t.tx_hash, t.kind, t.token, t.from_addr, t.to_addr, t.value) for t in scenario.expected}
    assert any(t.kind is TransferKind.INTERNAL for b in together for t in b.transfers)
    assert sum(b.coverage.failed_txs for b in together) == len(scenario.reverted)
    # One batch: per block its header without transactions, its receipts and its traces; nothing else.
    assert client.sent == [
        ("batch", name, hex(n))
        for n in blocks
        for name in ("eth_getBlockByNumber", "eth_getBlockReceipts", *TRACE_CALLS[method])
    ]


async def test_a_failing_member_of_a_batch_is_read_again_alone_and_a_lasting_failure_is_its_blocks_error(
    db: Database, chain: tuple[AnvilNode, Scenario]
) -> None:
    node, scenario = chain
    blocks = list(scenario.blocks)
    reference = [read_in_full(node, n, InternalSource.TRACE_BLOCK) for n in blocks]
    client = Recording(node.url)
    async with RpcSource(anv(node), client=client) as source:
        await source.fetch_block(blocks[0], token_meta=False)
        # A member that fails in the batch only: its block alone is read again, on its own.
        client.fail_in_batch.add(("eth_getBlockReceipts", hex(blocks[2])))
        client.sent.clear()
        assert await source.fetch_blocks(blocks, token_meta=False) == reference
        alone = [(method, tag) for how, method, tag in client.sent if how == "call"]
        assert alone and {tag for _, tag in alone} == {hex(blocks[2])}
        # Receipts or traces of another block than the header (a reorg between the calls): read again alone.
        client.fail_in_batch.clear()
        client.stale |= {("eth_getBlockReceipts", hex(blocks[1])), ("trace_block", hex(blocks[4]))}
        client.sent.clear()
        assert await source.fetch_blocks(blocks, token_meta=False) == reference
        assert {tag for how, _, tag in client.sent if how == "call"} == {hex(blocks[1]), hex(blocks[4])}
        client.stale.clear()
        # A batch that gets no usable answer at all: every block is read on its own.
        client.batches_unavailable = True
        client.sent.clear()
        assert await source.fetch_blocks(blocks, token_meta=False) == reference
        assert {tag for how, _, tag in client.sent if how == "call"} == {hex(n) for n in blocks}
        # A member that keeps failing: that block's error, in its place; the other blocks are read.
        client.batches_unavailable = False
        client.fail_always.add(("eth_getBlockReceipts", hex(blocks[3])))
        got = await source.fetch_blocks(blocks, token_meta=False)
        assert [b for b in got if isinstance(b, BlockTransfers)] == reference[:3] + reference[4:]
        assert isinstance(got[3], RpcError) and f"eth_getBlockReceipts (block {blocks[3]})" in str(got[3])
        # The indexer stops there, with the blocks before it stored and marked.
        index = TransferIndex(db)
        with pytest.raises(IndexingFailed, match=f"block {blocks[3]}.*3 block\\(s\\) stored"):
            await Indexer(index, source, "anv", blocks_per_request=2).run(blocks[0], blocks[-1])
    stored = rows(index.in_blocks("anv", blocks[0], blocks[-1]))
    assert stored == rows([t for b in reference[:3] for t in b.transfers]) and stored
    assert [(r.from_block, r.to_block) for r in index.ranges("anv")] == [(blocks[0], blocks[2])]


def transfer(position: str, value: int) -> Transfer:
    return Transfer(
        "anv", 1, "0xbb", 7, "0x" + "aa" * 32, TransferKind.NATIVE, position, "0x" + "01" * 20, "0x" + "02" * 20, value
    )


def test_storing_counts_only_new_rows_keeps_uint256_exact_and_refuses_what_is_not_one(db: Database) -> None:
    index = TransferIndex(db)
    top = transfer("tx", 2**256 - 1)
    assert index.add([top, top, transfer("trace:0", 2**64 + 3)]) == 2  # a duplicate within one write too
    assert index.add([top, transfer("trace:1", 0)]) == 1
    with pytest.raises(ValueError, match="out of uint256 range"):
        index.add([transfer("trace:2", 5), transfer("trace:3", 2**256)])
    with pytest.raises(ValueError, match="out of uint256 range"):
        index.add([transfer("trace:4", -1)])
    assert sorted((t.position, t.value) for t in index.in_blocks("anv", 0, 10)) == [
        ("trace:0", 2**64 + 3),
        ("trace:1", 0),
        ("tx", 2**256 - 1),
    ]
    assert index.add([replace(top, value=1)]) == 0 and index.count("anv") == 3


# --- through the command line -----------------------------------------------------------------------------


def env_for(tmp_path: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAINS", "ETH_", "ANV_"))}
    env.update({"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": database_url, "DEMO_DATA": "false"})
    return env


@pytest.fixture
def cli_env(tmp_path: Path, prepared_database_url: str) -> dict[str, str]:
    return env_for(tmp_path, prepared_database_url)


def test_the_index_command_stores_the_scenario_once(cli_env: dict[str, str], chain: tuple[AnvilNode, Scenario]) -> None:
    node, scenario = chain
    args = [
        "index",
        "--chain",
        "anv",
        "--rpc-url",
        node.url,
        "--from-block",
        str(scenario.first_block),
        "--to-block",
        "latest",
    ]
    first = run_cli(args, cli_env)
    assert first.returncode == 0, first.stderr
    assert f"anv: blocks {scenario.first_block}-{scenario.last_block}: 5 indexed" in first.stdout
    assert f"{len(scenario.expected)} transfers, {len(scenario.expected)} new" in first.stdout
    assert "3 failed transaction(s) moved nothing" in first.stdout
    assert "5/5" in first.stderr  # the progress bar
    second = run_cli(args, cli_env)
    assert second.returncode == 0 and "already indexed; nothing to do" in second.stdout

    db = open_database(cli_env["DATABASE_URL"])
    try:
        index = TransferIndex(db)
        assert rows(index.in_blocks("anv", 0, 10**6)) == expected(scenario)
        assert index.count("anv") == len(scenario.expected)
        [done] = index.ranges("anv")
    finally:
        db.dispose()
    assert (done.from_block, done.to_block) == (scenario.first_block, scenario.last_block)

    bob = scenario.accounts["bob"]
    listed = run_cli(["transfers", bob.upper().replace("0X", "0x"), "--chain", "anv", "--json"], cli_env)
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)
    assert {(i["block"], i["tx_hash"], i["kind"], i["token"], i["from"], i["to"], int(i["value"])) for i in items} == {
        (t.block_number, t.tx_hash, t.kind, t.token, t.from_addr, t.to_addr, t.value) for t in scenario.involving(bob)
    }
    assert all(isinstance(i["value"], str) and i["chain"] == "anv" and i["timestamp"] > 0 for i in items)
    assert str(2**70 + 7) in {i["value"] for i in items}
    text = run_cli(["transfers", bob], cli_env)
    assert f"{len(items)} transfer(s) of" in text.stdout and "1.5 ETH" in text.stdout and "TST" in text.stdout


def test_the_cli_refuses_bad_input_with_one_line(
    tmp_path: Path, sqlite_url: str, chain: tuple[AnvilNode, Scenario]
) -> None:
    node, _ = chain
    cli_env = env_for(tmp_path, sqlite_url)  # no store-specific path here: SQLite alone
    bad_address = run_cli(["transfers", "0x1234"], cli_env)
    assert bad_address.returncode == 1
    assert bad_address.stderr.strip() == "error: An EVM address has 40 hex digits after 0x; this one has 4."
    unconfigured = run_cli(["index", "--chain", "nochain", "--from-block", "0"], cli_env)
    assert unconfigured.returncode == 1 and "error: Chain “nochain” is not configured" in unconfigured.stderr
    past_head = run_cli(
        ["index", "--chain", "anv", "--rpc-url", node.url, "--from-block", "0", "--to-block", "999"], cli_env
    )
    assert past_head.returncode == 1 and "error: Block 999 is beyond the head of anv" in past_head.stderr
    wrong_chain = run_cli(["index", "--chain", "eth", "--rpc-url", node.url, "--from-block", "0"], cli_env)
    assert wrong_chain.returncode == 1 and "serves chain id 31337, not 1" in wrong_chain.stderr
    empty = run_cli(["transfers", "0x" + "ab" * 20], cli_env)
    assert empty.returncode == 0 and "Nothing is indexed yet" in empty.stdout


# --- bad data over a replayed mainnet node ----------------------------------------------------------------

STREAM = ("ethereum-etl-rpc-fixtures", "test_stream", "blocks_1755634_1755635")
GOOD_TX = "0x2e3dcd051a91d3a694f6b8de2ac4b5fe7acdba55f58bcf8471ff00d4a430074d"


@pytest.fixture
async def mainnet() -> AsyncIterator[ReplayNode]:
    async with ReplayNode() as node:
        node.load_dir(shared_data(*STREAM))
        node.add("eth_chainId", [], "0x1")
        yield node


def eth(node: ReplayNode) -> ChainConfig:
    return ChainConfig("eth", 1, "ETH", (node.url,))


async def test_bad_logs_are_counted_and_the_good_transfer_kept(db: Database, mainnet: ReplayNode) -> None:
    receipt = mainnet.responses[("eth_getTransactionReceipt", (GOOD_TX,))]["result"]
    good = receipt["logs"][0]
    receipt["logs"] = [
        {**good, "logIndex": "0x0", "topics": good["topics"][:2]},  # too few topics
        {**good, "logIndex": "0x1"},
        {**good, "logIndex": "0x2", "data": good["data"] + "00" * 32},  # 64 bytes of data
        {
            **good,
            "logIndex": "0x3",
            "topics": [TRANSFER_TOPIC, good["topics"][1], good["topics"][2], good["data"]],
            "data": "0x",
        },
    ]
    async with RpcSource(eth(mainnet), attempts=1) as source:
        report = await Indexer(TransferIndex(db), source, "eth").run(1755634, 1755635)
    stored = TransferIndex(db).in_blocks("eth", 0, 10**8)
    assert [(t.tx_hash, t.position, t.value) for t in stored if t.token] == [(GOOD_TX, "log:1", 5 * 10**18)]
    assert report.skipped_logs == 3 and report.transfers_added == 2
    notes = "\n".join(report.notes)
    assert f"block 1755635: log 0x0 of tx {GOOD_TX} skipped: 2 topics instead of 3" in notes
    assert "log 0x2" in notes and "64 bytes of data" in notes and "ERC-721" in notes


@pytest.mark.parametrize("fault", ["truncate", "hang"])
async def test_a_broken_answer_stops_at_its_block_and_keeps_the_blocks_before(
    db: Database, mainnet: ReplayNode, fault: str
) -> None:
    mainnet.hang_seconds = 5
    getattr(mainnet, fault).add("eth_getTransactionReceipt")  # block 1755634 has no transactions: unaffected
    index = TransferIndex(db)
    async with RpcSource(eth(mainnet), attempts=1, timeout=0.3) as source:
        with pytest.raises(IndexingFailed) as caught:
            await Indexer(index, source, "eth").run(1755634, 1755635)
    message = str(caught.value)
    assert "eth_getTransactionReceipt (block 1755635)" in message
    assert ("broken JSON" if fault == "truncate" else "gave no answer within 0.3s") in message
    assert "1 block(s) stored, run again to resume" in message
    assert [(r.from_block, r.to_block, r.internal_coverage) for r in index.ranges("eth")] == [
        (1755634, 1755634, "unavailable")
    ]
    mainnet.truncate.clear()
    mainnet.hang.clear()
    async with RpcSource(eth(mainnet)) as source:
        resumed = await Indexer(index, source, "eth").run(1755634, 1755635)
    assert (resumed.blocks_skipped, resumed.blocks_indexed, resumed.transfers_added) == (1, 1, 2)


def test_missing_ranges() -> None:
    from tracing.chain.index import IndexedRange

    done = [IndexedRange("eth", "rpc", 10, 19, "callTracer"), IndexedRange("eth", "rpc", 30, 35, "callTracer")]
    assert missing_ranges(0, 50, done) == [(0, 9), (20, 29), (36, 50)]
    assert missing_ranges(12, 18, done) == []
    assert missing_ranges(15, 32, done) == [(20, 29)]
    assert missing_ranges(40, 45, []) == [(40, 45)]
