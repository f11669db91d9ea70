"""`chainsleuth run` as an operator starts it with a chain configured: the console front end, the watcher and the
notifier in one process, and /healthz — against a real anvil node. And `chainsleuth watch` alone delivering to
Slack (its Web API client only: no server, no Socket Mode, no signing secret)."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx

from storage.db import open_database
from tests.support.anvil import AnvilNode, free_port
from tests.support.fixtures import anvil  # noqa: F401
from tests.support.slack_server import FakeSlack
from tracing.monitor.alerts import AlertBook
from tracing.monitor.outbox import outbox_stats
from tracing.monitor.watch import WatchBook

BIN = Path(sys.executable).parent / "chainsleuth"


def _reader(stream: object, lines: queue.Queue[str]) -> None:
    for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
        lines.put(line)


def _wait_for(lines: queue.Queue[str], seen: list[str], needle: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(needle in line for line in seen):
            return True
        try:
            seen.append(lines.get(timeout=0.2))
        except queue.Empty:
            continue
    return any(needle in line for line in seen)


def test_run_follows_the_chain_and_prints_alerts_on_the_console(anvil: AnvilNode, tmp_path: Path) -> None:  # noqa: F811
    sender, receiver = anvil.accounts()[3], anvil.accounts()[4]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "SLACK_", "CHAINS", "ETH_"))}
    env.update(
        {
            "DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'cs.sqlite3'}",
            "DEMO_DATA": "false",
            "CHAINS": "anv",
            "ANV_RPC_URL": anvil.url,
            "ANV_CONFIRMATIONS": "0",
            "METRICS_PORT": str(port),
        }
    )
    process = subprocess.Popen(
        [str(BIN), "run", "--platform", "console"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []
    threading.Thread(target=_reader, args=(process.stdout, lines), daemon=True).start()
    try:
        assert process.stdin is not None
        assert _wait_for(lines, seen, "Type /help", 60), "".join(seen)
        assert _wait_for(lines, seen, "watching anv", 30), "".join(seen)
        process.stdin.write(f"/watch {sender} --chain anv --note suspect\n")
        process.stdin.flush()
        assert _wait_for(lines, seen, "atching", 30), "".join(seen)
        time.sleep(2)  # let the watcher take its starting block before the transfer
        tx = anvil.rpc.send_transaction({"from": sender, "to": receiver, "value": 10**18})
        anvil.rpc.wait_receipt(tx)
        assert _wait_for(lines, seen, tx, 60), "".join(seen)
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
        assert health.status_code == 200 and "database: ok" in health.text
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert 'chainsleuth_commands_total{command="watch",outcome="ok"} 1.0' in metrics
        process.stdin.write("/quit\n")
        process.stdin.flush()
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _start_watch(env: dict[str, str], start: int, log: IO[str]) -> subprocess.Popen[str]:
    argv = [str(BIN), "watch", "--from-block", str(start), "--poll", "0.2"]
    return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)


async def test_watch_alone_delivers_alerts_to_slack(anvil: AnvilNode, tmp_path: Path) -> None:  # noqa: F811
    sender, receiver = anvil.accounts()[3], anvil.accounts()[4]
    channel = "C0ALERTS"
    slack = FakeSlack()
    await slack.start()
    url = f"sqlite:///{tmp_path / 'cs.sqlite3'}"
    db = open_database(url)
    WatchBook(db).watch(
        chain="anv", address=sender, platform="slack", chat=channel, channel=True, created_by="slack:U0ALICE"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "SLACK_", "CHAINS", "ETH_"))}
    env.update(
        {
            "DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": url,
            "DEMO_DATA": "false",
            "CHAINS": "anv",
            "ANV_RPC_URL": anvil.url,
            "ANV_CONFIRMATIONS": "0",
            "PLATFORM": "slack",
            "SLACK_BOT_TOKEN": "xoxb-test",  # and nothing else: sending needs no signing secret or app token
            "SLACK_API_BASE_URL": slack.api_url,
        }
    )
    start = anvil.rpc.mine()
    log = (tmp_path / "watch.log").open("w")
    process = _start_watch(env, start, log)
    try:
        tx = await asyncio.to_thread(anvil.rpc.send_transaction, {"from": sender, "to": receiver, "value": 10**18})
        [post] = await slack.wait_for("chat.postMessage", lambda c: tx in c.text, within=60)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        log.close()
        await slack.stop()
    output = (tmp_path / "watch.log").read_text()
    assert "queued in the store" not in output, output
    assert post.params["channel"] == channel and "Sent 1 ETH (no USD price) to" in post.text
    [alert] = AlertBook(db).all()
    assert slack.dedup_keys(channel) == {alert.dedup_key: 1}
    stats = outbox_stats(db)
    assert (stats.pending, stats.sending, stats.failed) == (0, 0, 0)
    assert len(slack.sent("chat.postMessage")) == 1 and not slack.sent("apps.connections.open")
    db.dispose()
