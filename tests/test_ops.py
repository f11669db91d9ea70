"""Operations: secrets never reach the logs; /healthz and /metrics answer on loopback."""

from __future__ import annotations

import json
import logging

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bot.backends.base import PostMarker
from bot.backends.errors import RateLimited
from bot.backends.testing import TestBackend
from bot.delivery.notifier import Notifier
from bot.health import HealthServer, database_check
from bot.messages import Reply
from bot.metrics import COMMANDS
from bot.observability import RedactingFormatter, Redactor
from storage.db import Database
from tests.support.fake_chain import FakeChain, move
from tracing.monitor import ChainFeed, ManualClock, Step, WatchBook, Watcher

W = "0x" + "a1" * 20
X = "0x" + "b2" * 20


def test_redactor_hides_tokens_and_passwords() -> None:
    redact = Redactor(["s3cret-signing-value"])
    line = (
        "token xoxb-1234567890-abcdefghij and xapp-1-A0B1C2D3E4 and 123456789:AAHk2kQ-abcdefghijklmnopqrstuvwxyz0123 "
        "db postgresql+psycopg://chainsleuth:hunter22@db:5432/cs "
        "url https://api.etherscan.io/v2/api?apikey=ABCDEF123456 "
        "secret s3cret-signing-value"
    )
    out = redact(line)
    for secret in ("xoxb-1234567890", "xapp-1-A0B1", "AAHk2kQ", "hunter22", "ABCDEF123456", "s3cret-signing-value"):
        assert secret not in out, secret
    assert "postgresql+psycopg://***@db:5432/cs" in out


def test_json_log_lines_are_parseable_and_redacted() -> None:
    formatter = RedactingFormatter(Redactor(["topsecret-token"]), as_json=True)
    record = logging.LogRecord("chainsleuth", logging.ERROR, __file__, 1, "failed with %s", ("topsecret-token",), None)
    record.ref = "abcd1234"
    entry = json.loads(formatter.format(record))
    assert entry["level"] == "error" and entry["ref"] == "abcd1234"
    assert entry["message"] == "failed with ***"


async def test_healthz_and_metrics(db: Database) -> None:
    server = HealthServer([database_check(db)], port=0)
    port = await server.start()
    try:
        COMMANDS.labels(command="risk", outcome="ok").inc()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            health = await client.get("/healthz")
            assert health.status_code == 200
            assert health.json()["checks"] == ["database: ok"]
            metrics = await client.get("/metrics")
            assert 'chainsleuth_commands_total{command="risk",outcome="ok"}' in metrics.text
    finally:
        await server.stop()


async def test_healthz_fails_when_a_check_fails() -> None:
    async def broken() -> tuple[bool, str]:
        return False, "watcher: lag 500 blocks"

    server = HealthServer([broken], port=0)
    port = await server.start()
    try:
        async with httpx.AsyncClient() as client:
            health = await client.get(f"http://127.0.0.1:{port}/healthz")
        assert health.status_code == 503 and "lag 500" in health.text
    finally:
        await server.stop()


class RateLimitedOnce(TestBackend):
    """The test platform, answering its first send with a 429."""

    refused = False

    async def send(self, chat_id: str, reply: Reply, *, marker: PostMarker | None = None) -> str:
        if not self.refused:
            self.refused = True
            raise RateLimited(30)
        return await super().send(chat_id, reply, marker=marker)


async def test_metrics_from_the_store_move_with_the_watcher_and_the_notifier(db: Database) -> None:
    clock = ManualClock()
    WatchBook(db).watch(chain="eth", address=W, platform="telegram", chat="-100", channel=True, created_by="telegram:7")
    chain = FakeChain()
    watcher = Watcher(db, ChainFeed("eth", chain, start_block=1), clock=clock)
    chain.mine(move(W, X, 1, tx=1))
    chain.mine(move(X, W, 2, tx=2))
    await watcher.catch_up()
    platform = RateLimitedOnce(platform="telegram")
    notifier = Notifier(db, {"telegram": platform}, clock=clock)
    await notifier.drain_once()  # the 429: both alerts wait
    clock.advance(seconds=31)
    await notifier.drain_once()  # then both go out
    chain.mine(move(W, X, 3, tx=3))
    chain.mine_empty(2)
    assert await watcher.step() is Step.BLOCK  # not delivered yet, and the head is 2 blocks ahead

    server = HealthServer([database_check(db)], port=0, db=db)
    port = await server.start()
    try:
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    finally:
        await server.stop()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("chainsleuth_blocks_processed_total", (("chain", "eth"),))] == 3
    assert samples[("chainsleuth_watcher_lag_blocks", (("chain", "eth"),))] == 2
    assert samples[("chainsleuth_alerts_total", (("chain", "eth"), ("rule", "movement")))] == 3
    assert samples[("chainsleuth_outbox_depth", ())] == 2  # the third alert, and the edit confirming the first
    deliveries = "chainsleuth_deliveries_total"
    assert samples[(deliveries, (("outcome", "rate_limited"), ("platform", "telegram")))] == 1
    assert samples[(deliveries, (("outcome", "sent"), ("platform", "telegram")))] == 2
    assert samples[("chainsleuth_rate_limited_total", (("platform", "telegram"),))] == 1
    assert [(d.chat_id, d.edit) for d in platform.delivered] == [("-100", False), ("-100", False)]
