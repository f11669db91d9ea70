"""Honest health: a node that accepts connections and never answers is reported by /status, /healthz and the ops
monitor within NODE_STALE_AFTER, with the time since its last good answer — before any RPC time-out fires."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from bot.app import App
from bot.backends.testing import TestBackend
from bot.health import HealthServer, node_check
from storage.db import Database
from storage.settings import Settings
from tests.support.fake_chain import FakeChain
from tests.support.hanging_server import HangingServer
from tracing.chain.config import ChainConfig
from tracing.chain.rpc import RpcSource
from tracing.labels.book import LabelBook
from tracing.monitor.clock import ManualClock
from tracing.monitor.ops import OpsMonitor, OpsPolicy
from tracing.monitor.silence import silent_chains
from tracing.monitor.watcher import ANSWER_EVERY, ChainFeed, LabelRisk, Watcher, watch_status

STALE_AFTER = 1.0


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=tmp_path / "data", demo_data=False, node_stale_after=STALE_AFTER
    )


async def test_a_hanging_node_is_reported_within_the_threshold(bot: TestBackend, app: App) -> None:
    chain = FakeChain()
    chain.mine_empty(5)
    await Watcher(app.db, ChainFeed("eth", chain, confirmations=0, start_block=1)).catch_up()
    health = HealthServer([node_check(app.db, STALE_AFTER, ["eth"])], port=0)
    port = await health.start()
    hanging = HangingServer()
    try:
        async with hanging.running() as url, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            before = await bot.say("/status")
            assert "Chain eth: head 5, cursor 5, lag 0 blocks" in before.text and "NOT ANSWERING" not in before.text
            assert (await client.get("/healthz")).status_code == 200

            # The same watcher's chain, now read from a node that accepts and never answers (RPC time-out 30 s).
            source = RpcSource(ChainConfig("eth", 1, "ETH", (url,)), timeout=30.0)
            feed = ChainFeed("eth", source, confirmations=0, poll_interval=0.05)
            stop = asyncio.Event()
            hang_started = time.monotonic()
            task = asyncio.create_task(Watcher(app.db, feed).run(stop))
            try:
                while True:
                    status = await bot.say("/status")
                    healthz = await client.get("/healthz")
                    if "NOT ANSWERING" in status.text and healthz.status_code == 503:
                        break
                    assert time.monotonic() - hang_started < STALE_AFTER + 3, status.text
                    await asyncio.sleep(0.1)
                assert hanging.connections >= 1  # the watcher did ask; it is waiting for the answer
                assert "no good answer from the eth node for 1 s" in status.text or "for 2 s" in status.text
                assert "last at " in status.text and "threshold 1 s" in status.text
                assert "last error" not in status.text  # no RPC time-out has fired: age alone tells
                body = healthz.json()
                assert body["status"] == "failing"
                assert any(c.startswith("nodes: no good answer from the eth node") for c in body["checks"])

                notices = OpsMonitor(app.db, OpsPolicy("telegram", "-100ops", stale_after=STALE_AFTER)).check()
                assert len(notices) == 1 and notices[0].startswith("⚠️ Watcher eth has had no good answer")
            finally:
                stop.set()
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await source.client.aclose()
    finally:
        await health.stop()


async def test_an_idle_watcher_records_that_its_node_still_answers(db: Database) -> None:
    clock = ManualClock()
    chain = FakeChain()
    chain.mine_empty(3)
    watcher = Watcher(
        db, ChainFeed("eth", chain, confirmations=0, start_block=1), risk=LabelRisk(LabelBook(db)), clock=clock
    )
    await watcher.catch_up()
    seen = watch_status(db)[0].last_answer_at
    clock.advance(ANSWER_EVERY.total_seconds() + 1)
    await watcher.step()  # no new block: the head read is still a good answer
    (status,) = watch_status(db)
    assert status.last_answer_at == seen + ANSWER_EVERY + timedelta(seconds=1)
    assert silent_chains(db, clock.now(), 60) == []
    assert [s.chain for s in silent_chains(db, clock.now() + timedelta(seconds=61), 60)] == ["eth"]


async def test_the_ops_channel_hears_of_a_silent_node_once_and_of_its_recovery(db: Database) -> None:
    clock = ManualClock()
    chain = FakeChain()
    chain.mine_empty(3)
    watcher = Watcher(db, ChainFeed("eth", chain, confirmations=0, start_block=1), clock=clock)
    await watcher.catch_up()
    monitor = OpsMonitor(db, OpsPolicy("telegram", "-100ops", stale_after=60), clock)
    assert monitor.check() == []
    clock.advance(61)
    (first,) = monitor.check()
    assert "no good answer from its node for over 60 s" in first
    clock.advance(30)
    assert monitor.check() == []  # still silent: not announced again
    await watcher.step()
    (second,) = monitor.check()
    assert second.startswith("✅ Recovered: Watcher eth has had no good answer")
