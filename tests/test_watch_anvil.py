"""The watcher on a real chain (anvil) through the JSON-RPC source: a watched address's ETH, ERC-20 and
contract-internal movements alert once each, and a reorg (evm_snapshot / evm_revert, then a different block)
reorgs out the orphaned alert while the replacing block alerts normally."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.app import App
from bot.backends.testing import TestBackend
from bot.cli.watch import run_watch
from storage.db import Database
from tests.support.anvil import AnvilNode, Scenario, build_scenario
from tests.support.cli import run_cli
from tests.support.contracts import Contract, load_artifact
from tests.support.fixtures import anvil  # noqa: F401
from tracing.chain.config import ChainConfig
from tracing.chain.rpc import RpcSource
from tracing.chain.transfer import Direction
from tracing.labels import LabelBook
from tracing.monitor.alerts import AlertBook, AlertStatus
from tracing.monitor.clock import ManualClock
from tracing.monitor.watch import WatchBook
from tracing.monitor.watcher import ChainFeed, LabelRisk, Step, Watcher

pytestmark = pytest.mark.anvil

ETHER = 10**18
BIN = Path(sys.executable).parent / "chainsleuth"


@pytest.fixture
async def source(anvil: AnvilNode) -> AsyncIterator[RpcSource]:  # noqa: F811
    rpc_source = RpcSource(ChainConfig("anvil", 31337, "ETH", (anvil.url,), confirmations=2), backoff=0.01)
    await rpc_source.connect()
    yield rpc_source
    await rpc_source.aclose()


def follower(db: Database, source: RpcSource, start: int) -> Watcher:
    feed = ChainFeed("anvil", source, confirmations=2, poll_interval=0.1, start_block=start)
    return Watcher(db, feed, risk=LabelRisk(LabelBook(db)), clock=ManualClock())


def watch(db: Database, address: str) -> None:
    WatchBook(db).watch(
        chain="anvil", address=address, platform="telegram", chat="-100", channel=True, created_by="telegram:1"
    )


async def test_eth_token_and_internal_movements_alert_once_each(
    db: Database,
    anvil: AnvilNode,  # noqa: F811
    source: RpcSource,
) -> None:
    scenario: Scenario = build_scenario(anvil)
    rpc = anvil.rpc
    heidi, bob, carol = (scenario.accounts[r] for r in ("heidi", "bob", "carol"))
    tst = Contract(rpc, scenario.tst, load_artifact("TestToken"))
    forwarder = Contract(rpc, scenario.forwarder, load_artifact("Forwarder"))
    rpc.wait_receipt(tst.transact("mint", heidi, 100 * ETHER, sender=heidi))
    start = rpc.mine()  # an empty block to start on: the mint is history
    watch(db, heidi)

    sent_eth = rpc.send_transaction({"from": heidi, "to": bob, "value": ETHER, "gas": 21_000})
    sent_token = tst.transact("transfer", carol, 5 * ETHER, sender=heidi)
    forwarded = forwarder.transact("forward", heidi, sender=bob, value=2 * ETHER)
    for tx in (sent_eth, sent_token, forwarded):
        rpc.wait_receipt(tx)

    watcher = follower(db, source, start)
    assert await watcher.catch_up() == rpc.block_number() - start + 1
    alerts = AlertBook(db).all()
    seen = sorted((a.tx_hash, a.transfer_kind, a.direction, a.counterparty, a.value) for a in alerts)
    assert seen == sorted(
        [
            (sent_eth, "native", Direction.OUT, bob, ETHER),
            (sent_token, "erc20", Direction.OUT, carol, 5 * ETHER),
            (forwarded, "internal", Direction.IN, scenario.forwarder, 2 * ETHER),
        ]
    )
    token_alert = next(a for a in alerts if a.transfer_kind == "erc20")
    assert (token_alert.token, token_alert.symbol, token_alert.decimals) == (scenario.tst, "TST", 18)

    # a restarted watcher, and the same one polling again, add nothing
    assert await follower(db, source, start).catch_up() == 0
    assert await watcher.step() is Step.IDLE
    assert len(AlertBook(db).all()) == 3


async def test_reorg_on_anvil(db: Database, anvil: AnvilNode, source: RpcSource) -> None:  # noqa: F811
    rpc = anvil.rpc
    bob, carol, watched = anvil.accounts()[2:5]
    rpc.set_automine(False)
    start = rpc.mine()
    watch(db, watched)
    snapshot = rpc.snapshot()
    orphan_tx = rpc.send_transaction({"from": watched, "to": bob, "value": 1, "gas": 21_000})
    rpc.mine()
    watcher = follower(db, source, start)
    await watcher.catch_up()
    (orphan,) = AlertBook(db).all()
    assert orphan.tx_hash == orphan_tx and orphan.status is AlertStatus.PROVISIONAL

    assert rpc.revert(snapshot)
    replacing_tx = rpc.send_transaction({"from": carol, "to": watched, "value": 2, "gas": 21_000})
    rpc.mine()
    rpc.mine()  # the next block shows the watcher that its last block was replaced
    assert await watcher.step() is Step.REORG
    await watcher.catch_up()

    by_tx = {a.tx_hash: a for a in AlertBook(db).all()}
    assert set(by_tx) == {orphan_tx, replacing_tx}
    assert by_tx[orphan_tx].status is AlertStatus.REORGED_OUT
    replacing = by_tx[replacing_tx]
    assert replacing.direction is Direction.IN and replacing.counterparty == carol
    assert replacing.block_number == start + 1
    block = rpc.get_block(start + 1)
    assert block is not None and replacing.block_hash == block["hash"]
    assert replacing.block_hash != orphan.block_hash
    assert watcher.stats.reorgs == 1
    rpc.mine()  # two blocks on top: the replacing alert is confirmed
    await watcher.catch_up()
    assert AlertBook(db).get(replacing.id).status is AlertStatus.CONFIRMED  # type: ignore[union-attr]


async def eventually(check: Callable[[], bool], polls: int = 600) -> None:
    """Wait (up to `polls` × 50 ms of real time) until `check()` holds: the watcher and notifier run for real."""
    for _ in range(polls):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def test_run_watch_from_block_to_chat_message(app: App, anvil: AnvilNode) -> None:  # noqa: F811
    rpc = anvil.rpc
    watched, bob = anvil.accounts()[5:7]
    watch(app.db, watched)
    chat = TestBackend(platform="telegram")
    stop = asyncio.Event()
    chain = ChainConfig("anvil", 31337, "ETH", (anvil.url,), confirmations=1)
    task = asyncio.create_task(
        run_watch(app, [chain], stop, backends={"telegram": chat}, poll_interval=0.05, start_block=rpc.mine())
    )
    try:
        tx = await asyncio.to_thread(rpc.send_transaction, {"from": watched, "to": bob, "value": ETHER, "gas": 21_000})
        await eventually(lambda: any(tx in d.text for d in chat.delivered if not d.edit))
        post = chat.pop()
        assert not post.edit and post.chat_id == "-100"
        assert "Sent 1 ETH (no USD price) to" in post.text and "provisional" in post.text and "/ack 1" in post.text
        await asyncio.to_thread(rpc.mine)
        await eventually(lambda: any("confirmed" in d.text for d in chat.delivered if d.edit))
        edits = [d for d in chat.delivered if d.edit]
        assert edits[-1].message_id == post.message_id  # the alert's own message, edited in place
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert all(d.edit for d in chat.delivered)  # the one post, then only edits of it


def test_chainsleuth_watch_command_prints_alerts_and_stops_on_sigterm(
    tmp_path: Path,
    prepared_database_url: str,
    anvil: AnvilNode,  # noqa: F811
) -> None:
    rpc = anvil.rpc
    watched, bob = anvil.accounts()[5:7]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "SLACK_", "CHAINS", "ETH_"))}
    env.update(
        {
            "DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": prepared_database_url,
            "DEMO_DATA": "false",
            "PLATFORM": "console",
            "CHAINS": "eth,anvil",
            "ANVIL_RPC_URL": anvil.url,
            "ANVIL_CHAIN_ID": "31337",
            "ANVIL_CONFIRMATIONS": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    said = run_cli(["say", f"/watch {watched} --chain anvil --channel"], env)
    assert "Now watching" in said.stdout, said.stderr
    start = rpc.mine()
    proc = subprocess.Popen(
        [str(BIN), "watch", "--from-block", str(start), "--poll", "0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("watching"):
                break
        tx = rpc.send_transaction({"from": watched, "to": bob, "value": 3, "gas": 21_000})
        for line in proc.stdout:
            lines.append(line)
            if tx in line:
                break
        assert any(tx in line for line in lines), "".join(lines)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, "".join(lines) + proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
