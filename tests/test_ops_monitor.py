"""Self-monitoring: the watcher stores its head and last error; the ops channel hears of lag, failures and
recovery once per transition — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from sqlmodel import select

from bot.app import App
from bot.backends.testing import TestBackend
from storage.db import Database
from storage.ops_models import ChainCursor, OutboxMessage
from tests.support.fake_chain import FakeChain
from tracing.errors import SourceError
from tracing.labels import LabelBook
from tracing.monitor.clock import ManualClock
from tracing.monitor.ops import OpsMonitor, OpsPolicy, parse_ops_chat
from tracing.monitor.watcher import ChainFeed, LabelRisk, Watcher, watch_status


class FlakyChain(FakeChain):
    """A chain whose node fails while `broken` is set."""

    broken = False

    async def head(self) -> int:
        if self.broken:
            raise SourceError("eth_blockNumber: connection refused by 127.0.0.1:8545")
        return await super().head()


def notices(db: Database) -> list[str]:
    with db.session() as session:
        rows = session.exec(select(OutboxMessage).where(OutboxMessage.kind == "notice")).all()
        return [str(r.payload.get("text")) for r in sorted(rows, key=lambda r: r.id or 0)]


async def test_watcher_records_head_lag_and_errors_and_ops_hears_once(db: Database) -> None:
    clock = ManualClock()
    chain = FlakyChain()
    chain.mine_empty(5)
    feed = ChainFeed("eth", chain, poll_interval=1, confirmations=2, start_block=1)
    watcher = Watcher(db, feed, risk=LabelRisk(LabelBook(db)), clock=clock)
    await watcher.catch_up()
    status = watch_status(db)[0]
    assert status.head == chain.head_number and status.lag == 0 and status.last_error == ""

    # Silence (no good answer for stale_after) has its own test (test_node_silence); here lag and errors alone.
    monitor = OpsMonitor(db, OpsPolicy("telegram", "-100ops", lag_blocks=3, stale_after=3600), clock)
    assert monitor.check() == []

    chain.broken = True
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    for _ in range(50):
        await asyncio.sleep(0)
        if watch_status(db)[0].last_error:
            break
    stop.set()
    clock.advance(60)
    await asyncio.wait_for(task, 5)
    assert "connection refused" in watch_status(db)[0].last_error

    first = monitor.check()
    assert len(first) == 1 and "keeps failing" in first[0] and "connection refused" in first[0]
    assert monitor.check() == []  # announced once, not on every check

    chain.broken = False
    chain.mine_empty(10)
    with db.session() as session:  # the head moved on while the node was down
        cursor = session.get(ChainCursor, "eth")
        assert cursor is not None
        cursor.head = chain.head_number
        cursor.last_error = ""
    second = monitor.check()
    assert any(text.startswith("⚠️ Watcher eth is 10 blocks behind") for text in second)
    assert any(text.startswith("✅ Recovered: Watcher eth keeps failing") for text in second)

    await watcher.catch_up()
    third = monitor.check()
    assert third == ["✅ Recovered: Watcher eth is 10 blocks behind the head (threshold 3); alerts are delayed."]
    assert notices(db) == first + second + third


def test_parse_ops_chat() -> None:
    assert parse_ops_chat("telegram:-1001234") == ("telegram", "-1001234")
    assert parse_ops_chat("") is None


async def test_status_shows_chains_and_outbox(bot: TestBackend, app: App) -> None:
    with app.db.session() as session:
        session.add(ChainCursor(chain="eth", number=100, hash="0x" + "1" * 64, head=130, last_error="rpc timeout"))
    reply = await bot.say("/status")
    assert "Chain eth: head 130, cursor 100, lag 30 blocks" in reply.text
    assert "last error rpc timeout" in reply.text
    assert "Outbox: 0 pending, 0 sending, 0 sent, 0 failed" in reply.text
