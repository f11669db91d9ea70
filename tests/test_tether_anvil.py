"""Tether's freezes on a real EVM: a TRC-20-like token with Tether's blacklist (tests/contracts/TetherLikeToken.sol)
on anvil, with transfers, freezes, a burn and a lifted freeze, read through the TRON code path (`eth_getLogs` as
TRON's /jsonrpc answers it, 20-byte addresses shown as T…): the log decoding, the freeze labels, the cursor, the
command line, and `/risk` on the frozen address."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.backends.testing import TestBackend
from storage.settings import Settings
from tests.support.anvil import AnvilNode
from tests.support.cli import run_cli
from tests.support.contracts import Contract, deploy
from tests.support.fixtures import anvil  # noqa: F401
from tests.support.tron_server import TronServer
from tracing.chain import tron_from_hex, tron_to_hex
from tracing.labels import USDT_TRC20, Category, collect_freezes, freeze_cursor


def mined(node: AnvilNode, tx_hash: str) -> dict:
    receipt = node.rpc.wait_receipt(tx_hash)
    assert int(receipt["status"], 16) == 1, receipt
    return receipt


def block_day(node: AnvilNode, number: int) -> str:
    block = node.rpc.get_block(number)
    assert block is not None
    return datetime.fromtimestamp(int(block["timestamp"], 16), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class Story:
    """Owner issues USDT to alice and bob; alice pays bob; Tether freezes alice and burns her balance; bob is frozen
    and then cleared."""

    def __init__(self, node: AnvilNode) -> None:
        owner, alice, bob = node.accounts()[:3]
        self.node = node
        self.token: Contract = deploy(node.rpc, "TetherLikeToken", "Tether USD", "USDT", 6, sender=owner)
        self.first = node.rpc.block_number()
        for who, amount in ((alice, 1_000_000_000), (bob, 50_000_000)):
            mined(node, self.token.transact("issue", who, amount, sender=owner))
        mined(node, self.token.transact("transfer", bob, 250_000_000, sender=alice))
        self.frozen_alice = mined(node, self.token.transact("addBlackList", alice, sender=owner))
        refused = node.rpc.wait_receipt(self.token.transact("transfer", bob, 1, sender=alice))
        assert int(refused["status"], 16) == 0  # a frozen address cannot send
        self.burnt = mined(node, self.token.transact("destroyBlackFunds", alice, sender=owner))
        self.frozen_bob = mined(node, self.token.transact("addBlackList", bob, sender=owner))
        self.cleared_bob = mined(node, self.token.transact("removeBlackList", bob, sender=owner))
        self.last = node.rpc.block_number()
        self.contract = tron_from_hex(self.token.address)
        self.alice, self.bob = tron_from_hex(alice), tron_from_hex(bob)


def block_of(receipt: dict) -> int:
    return int(receipt["blockNumber"], 16)


async def test_freezes_read_from_the_chain_become_labels_and_risk_says_frozen(
    anvil: AnvilNode,  # noqa: F811
    tmp_path: Path,
    database_url: str,
) -> None:
    story = Story(anvil)
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", demo_data=False, chains="eth,tron")  # type: ignore[call-arg]
    app: App = build_app(settings, database_url=database_url)
    try:
        book = app.investigator.labels
        scan = await collect_freezes(
            book, (anvil.url,), story.first, None, chain="tron", contract=story.contract, step=3
        )  # several eth_getLogs calls of 3 blocks each
        assert (scan.events, scan.addresses, scan.frozen, scan.lifted, scan.skipped) == (4, 2, 1, 1, 0)
        assert freeze_cursor(book, "tron", story.contract) == story.last

        (alice,) = book.for_address(story.alice, "tron")
        assert alice.category is Category.FROZEN and alice.active and alice.chain == "tron"
        assert alice.details["frozen_block"] == block_of(story.frozen_alice)
        assert alice.details["frozen_tx"] == story.frozen_alice["transactionHash"][2:]
        assert alice.details["frozen_at"] == block_day(anvil, block_of(story.frozen_alice))
        assert alice.details["contract"] == story.contract
        assert (
            alice.details["destroyed"]
            == [  # her 750 USDT left after paying bob, burnt
                f"DestroyedBlackFunds of 750 USDT at block {block_of(story.burnt):,} on "
                f"{block_day(anvil, block_of(story.burnt))}, tx {story.burnt['transactionHash'][2:]}"
            ]
        )
        (bob,) = book.for_address(story.bob, "tron")
        assert not bob.active and bob.details["removed_tx"] == story.cleared_bob["transactionHash"][2:]
        assert len(bob.details["events"]) == 2  # type: ignore[arg-type]

        again = await collect_freezes(book, (anvil.url,), story.first, story.last, contract=story.contract)
        assert again.events == 4 and len(book.for_address(story.alice, "tron")) == 1  # read twice: the same labels

        bot = TestBackend(app.bot)
        reply = await bot.say(f"/risk {story.alice}")
        text = reply.text
        assert "HIGH risk" in text and "FROZEN" in text and story.alice in text
        assert f"frozen at block {block_of(story.frozen_alice):,}" in text
        assert story.frozen_alice["transactionHash"][2:] in text and "tether-blacklist" in text
        cleared = (await bot.say(f"/risk {story.bob}")).text
        assert "history, not a current freeze" in cleared and "FROZEN" not in cleared.split("\n")[0]
    finally:
        app.close()


def test_the_command_line_reads_freezes_and_resumes(
    anvil: AnvilNode,  # noqa: F811
    tmp_path: Path,
    prepared_database_url: str,
) -> None:
    story = Story(anvil)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "SLACK_", "CHAINS", "ETH_", "TRON_"))}
    env |= {"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": prepared_database_url, "DEMO_DATA": "false"}
    env |= {"CHAINS": "eth,tron", "TRON_RPC_URL": anvil.url}
    base = ["labels", "tether-freezes", "--contract", story.contract]
    testnet = run_cli([*base, "--from-block", str(story.first)], env)  # anvil is not TRON mainnet (0x2b6653dc)
    assert testnet.returncode == 1 and "answers chain id 31337, not 728126428 (tron)" in testnet.stderr
    env["TRON_CHAIN_ID"] = str(anvil.chain_id)
    refused = run_cli(base, env)
    assert refused.returncode == 1 and "--from-block is needed" in refused.stderr
    middle = block_of(story.burnt)
    first = run_cli([*base, "--from-block", str(story.first), "--to-block", str(middle)], env)
    assert first.returncode == 0, first.stderr
    assert f"tron: blocks {story.first}-{middle} of {story.contract}: 2 blacklist events" in first.stdout
    rest = run_cli(base, env)  # goes on after the last block read
    assert rest.returncode == 0, rest.stderr
    assert (
        f"blocks {middle + 1}-{story.last}" in rest.stdout
        and "2 blacklist events, 1 address (0 frozen, 1 lifted)" in rest.stdout
    )
    listed = run_cli(["labels", "list", story.alice], env)
    assert (
        "Frozen by Tether (USDT-TRC20) — tether-blacklist" in listed.stdout and "DestroyedBlackFunds" in listed.stdout
    )
    eth = run_cli([*base, "--chain", "eth", "--rpc-url", anvil.url, "--from-block", "0"], env)
    assert eth.returncode == 2 and "not a TRON chain" in eth.stderr


@pytest.fixture(autouse=True)
def _no_real_chains(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("TRON_", "CHAINS")):
            monkeypatch.delenv(key)


async def test_indexing_a_tron_chain_records_the_freezes_of_the_logs_it_read_once(
    anvil: AnvilNode,  # noqa: F811
    tmp_path: Path,
    prepared_database_url: str,
) -> None:
    """`chainsleuth index --chain tron` records the freezes among the USDT contract's logs the indexer read for the
    blocks it indexed: one `eth_getLogs` a batch, through TRON's /jsonrpc rules (no block time in a log: the block's
    is used). The freeze cursor follows an unbroken run of blocks read: a range indexed after a gap leaves it, so
    `labels tether-freezes` without --from-block still reads the gap. Anvil plays TRON: the test token's code is put
    at USDT-TRC20's own 20 bytes, so the default contract is read."""
    owner, alice, bob = anvil.accounts()[:3]
    model = deploy(anvil.rpc, "TetherLikeToken", "Tether USD", "USDT", 6, sender=owner)
    usdt = tron_to_hex(USDT_TRC20)
    anvil.rpc.call("anvil_setCode", usdt, anvil.rpc.get_code(model.address))
    anvil.rpc.call("anvil_setStorageAt", usdt, "0x4", "0x" + owner[2:].rjust(64, "0"))  # slot 4: owner
    token = Contract(anvil.rpc, usdt, model.artifact)
    first = anvil.rpc.block_number() + 1
    frozen = mined(anvil, token.transact("addBlackList", alice, sender=owner))
    last = anvil.rpc.block_number()
    anvil.rpc.mine(5)
    gap = anvil.rpc.block_number()  # blocks last+1 .. gap are not indexed
    frozen_bob = mined(anvil, token.transact("addBlackList", bob, sender=owner))
    later = anvil.rpc.block_number()
    async with TronServer(upstream=anvil.url) as tron:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "SLACK_", "CHAINS", "ETH_", "TRON_"))
        }
        env |= {"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": prepared_database_url, "DEMO_DATA": "false"}
        env |= {"CHAINS": "eth,tron", "TRON_RPC_URL": tron.jsonrpc_url, "TRON_CHAIN_ID": str(anvil.chain_id)}
        index = ["index", "--chain", "tron", "--no-progress", "--from-block"]
        indexed = await asyncio.to_thread(run_cli, [*index, str(first), "--to-block", str(last)], env)
        assert indexed.returncode == 0, indexed.stderr
        assert (
            f"tron: blocks {first}-{last} of {USDT_TRC20}: 1 blacklist event, 1 address (1 frozen, 0 lifted)"
            in indexed.stdout
        )
        assert tron.rpc_calls.count("eth_getLogs") == 1  # the indexer's read, not a second one for the freezes
        listed = await asyncio.to_thread(run_cli, ["labels", "list", tron_from_hex(alice)], env)
        assert f"frozen at block {block_of(frozen):,} on {block_day(anvil, block_of(frozen))}" in listed.stdout

        after_gap = await asyncio.to_thread(run_cli, [*index, str(gap + 1), "--to-block", str(later)], env)
        assert after_gap.returncode == 0, after_gap.stderr
        assert "1 blacklist event, 1 address (1 frozen, 0 lifted)" in after_gap.stdout
        bob_listed = await asyncio.to_thread(run_cli, ["labels", "list", tron_from_hex(bob)], env)
        assert f"frozen at block {block_of(frozen_bob):,}" in bob_listed.stdout
        rest = await asyncio.to_thread(
            run_cli, ["labels", "tether-freezes", "--to-block", str(later)], env
        )  # goes on after the last block of the unbroken run: the gap is read, not skipped
        assert rest.returncode == 0, rest.stderr
        assert f"tron: blocks {last + 1}-{later} of {USDT_TRC20}: 1 blacklist event" in rest.stdout

        anvil.rpc.mine(3)
        end = anvil.rpc.block_number()
        holes = await asyncio.to_thread(run_cli, [*index, str(first), "--to-block", str(end)], env)
        assert holes.returncode == 0, holes.stderr  # only the two holes are indexed, and said so
        assert f"tron: blocks {last + 1}-{end} of {USDT_TRC20}: 0 blacklist events" in holes.stdout
        said = f"({later - gap} of them indexed before: `labels tether-freezes --from-block` reads those)"
        assert said in holes.stdout
