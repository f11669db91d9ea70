"""`chainsleuth index` end to end: a real anvil chain with a known scenario is indexed into SQLite and PostgreSQL,
in process and through the CLI, and exactly the scenario's transfers land in the store; bad data and broken RPC
answers stop the run with the place, keeping what was done."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from storage.db import Database, open_database
from tests.conftest import shared_data
from tests.support.anvil import AnvilNode, Scenario, build_scenario
from tests.support.fixtures import require_anvil
from tests.support.replay import ReplayNode
from tracing.chains import ChainConfig
from tracing.index import TransferIndex
from tracing.indexer import Indexer, IndexingFailed, missing_ranges
from tracing.mappers import TRANSFER_TOPIC, InternalSource
from tracing.rpc import RpcSource
from tracing.transfer import Transfer

BIN = Path(sys.executable).parent / "chainsleuth"
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


# --- through the command line -----------------------------------------------------------------------------


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def env_for(tmp_path: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAINS", "ETH_", "ANV_"))}
    env.update({"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": database_url, "DEMO_DATA": "false"})
    return env


@pytest.fixture
def cli_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return env_for(tmp_path, database_url)


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
    from tracing.index import IndexedRange

    done = [IndexedRange("eth", "rpc", 10, 19, "callTracer"), IndexedRange("eth", "rpc", 30, 35, "callTracer")]
    assert missing_ranges(0, 50, done) == [(0, 9), (20, 29), (36, 50)]
    assert missing_ranges(12, 18, done) == []
    assert missing_ranges(15, 32, done) == [(20, 29)]
    assert missing_ranges(40, 45, []) == [(40, 45)]
