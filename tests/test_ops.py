"""Operations: secrets never reach the logs; /healthz and /metrics answer on loopback."""

from __future__ import annotations

import json
import logging

import httpx

from bot.health import HealthServer, database_check
from bot.metrics import COMMANDS
from bot.observability import RedactingFormatter, Redactor
from storage.db import Database


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
