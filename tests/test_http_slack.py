"""The Slack HTTP endpoint under abuse (issue #13): unsigned garbage and malformed signed bodies get 400/401 with no
traceback in the log; a half-sent request is dropped within its time-out; the same signed slash command sent again,
here or at another process, runs nothing; and a flood of thousands of idle and half-sent connections against
`chainsleuth run` with a file limit of 256 neither starves signed requests (each acked within 1 s) nor fills the log.
Real servers on loopback, the flood in a subprocess."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import resource
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import select

from bot.app import App
from bot.web.slack_gate import REPLAYED
from storage.audit import AuditLog
from storage.ops_models import WatchRow
from tests.support.chat_harness import running
from tests.support.slack_server import FakeSlack, form, sign, slash_command
from tests.test_slack import (  # noqa: F401 (the fixtures)
    BOB,
    CAROL,
    CHANNEL,
    LAZARUS,
    SECRET,
    Slack,
    _free_port,
    _post_until_listening,
    _second_process,
    settings,
)

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
async def endpoint(app: App) -> AsyncIterator[Slack]:
    """The bot's Slack endpoint in HTTP mode with a recording Slack (as `tests.test_slack`)."""
    async with running(FakeSlack(), lambda server: Slack(server, app)) as harness:
        yield harness


def _signed(raw: bytes, timestamp: str | None = None) -> dict[str, str]:
    stamp = timestamp or str(int(time.time()))
    digest = hmac.new(SECRET.encode(), b"v0:" + stamp.encode() + b":" + raw, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


async def _post_raw(url: str, raw: bytes, headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as session, session.post(url, data=raw, headers=headers) as response:
        await response.read()
        return response.status


def _tracebacks(records: list[logging.LogRecord]) -> list[str]:
    return [
        r.getMessage() for r in records if r.exc_info or r.levelno >= logging.ERROR or "Traceback" in r.getMessage()
    ]


async def test_unsigned_garbage_gets_401_and_malformed_signed_bodies_400_with_no_traceback(
    endpoint: Slack, app: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    now = str(int(time.time()))
    unsigned = {
        "invalid JSON": (b'{"type": "event_callback", ', {"Content-Type": "application/json"}),
        "broken payload": (b"payload=%7Bnot-json", {"Content-Type": FORM}),
        "not UTF-8": (b"\xff\xfe\x80text=risk", {"Content-Type": FORM}),
        "non-numeric timestamp": (
            b"text=help",
            {"Content-Type": FORM, "X-Slack-Request-Timestamp": "12e3", "X-Slack-Signature": "v0=" + "0" * 64},
        ),
        "fullwidth timestamp": (
            b"text=help",
            {"Content-Type": FORM, "X-Slack-Request-Timestamp": "１２３", "X-Slack-Signature": "v0=" + "0" * 64},
        ),
        "forged": (b"text=help", {"Content-Type": FORM, **_signed(b"text=other", now)}),
    }
    for name, (raw, headers) in unsigned.items():
        assert await _post_raw(endpoint.url, raw, headers) == 401, name
    command = slash_command("help", user=CAROL, channel=CHANNEL, response_url="")
    signed = {
        "invalid JSON": (b'{"type": "event_callback", ', "application/json"),
        "JSON not an object": (b'["event_callback"]', "application/json"),
        "broken payload": (b"payload=%7Bnot-json", FORM),
        "not UTF-8": (b"\xff\xfe\x80text=risk", FORM),
        "slash command without response_url": (form(command).encode(), FORM),
    }
    for name, (raw, content_type) in signed.items():
        assert await _post_raw(endpoint.url, raw, {"Content-Type": content_type, **_signed(raw)}) == 400, name
    # Not HTTP at all: aiohttp answers 400 and would log a traceback; here it is a counted refusal.
    for garbage in (
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03tls?\r\n\r\n",
        b"GET /\x00\x01 HTTP/9\r\n\x7f\r\n\r\n",
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", endpoint.backend.port if endpoint.backend else 0)
        writer.write(garbage)
        assert b" 400 " in (await asyncio.wait_for(reader.read(), 5)).split(b"\r\n")[0]
        writer.close()
    await asyncio.sleep(0.3)
    assert not _tracebacks(caplog.records)
    assert not AuditLog(app.db).recent(10)
    assert not [c for c in endpoint.server.calls if c.method != "auth.test"]
    assert len([r for r in caplog.records if r.name.startswith("bot.web")]) <= 2  # one line, and aiohttp's at most


async def _dropped_after(port: int, sent: bytes, within: float) -> tuple[float, bytes]:
    """Send `sent` and wait for the server to end the connection: seconds it took and what it answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(sent)
    try:
        answer = await asyncio.wait_for(reader.read(), within)
    except ConnectionResetError:
        answer = b""
    writer.close()
    return time.monotonic() - started, answer


async def test_an_incomplete_request_is_dropped_within_its_time_out(endpoint: Slack) -> None:
    await endpoint.stop()
    backend = await endpoint.start(http_header_timeout=1.0, http_body_timeout=1.0, http_max_body_bytes=64 * 1024)
    port = backend.port
    head = b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    half_body = head + b"Content-Length: 1000\r\n\r\n" + b'{"type": "ev'
    took, _ = await _dropped_after(port, half_body, within=5)
    assert 0.9 < took < 2.0
    took, answer = await _dropped_after(port, head, within=5)  # the headers never end
    assert 0.9 < took < 2.0 and answer.startswith(b"HTTP/1.1 408")
    took, _ = await _dropped_after(port, b"", within=5)  # idle
    assert 0.9 < took < 2.0
    took, answer = await _dropped_after(port, head + b"Content-Length: 10000000\r\n\r\n", within=5)
    assert took < 0.5 and answer.startswith(b"HTTP/1.1 413")
    status, _ = await endpoint.command("help")  # still serving
    assert status == 200


async def test_the_same_signed_watch_sent_twice_runs_once_even_at_another_process(endpoint: Slack, app: App) -> None:
    body = form(
        slash_command(f"watch {LAZARUS}", user=BOB, channel=CHANNEL, response_url=endpoint.server.response_url("w"))
    )
    headers = sign(SECRET, body)
    status, text, _ = await endpoint.post(body, FORM, headers=headers)
    assert status == 200 and REPLAYED not in text
    [answer] = await endpoint.server.wait_for("chat.postMessage")
    assert "watching" in answer.text.lower()
    status, text, _ = await endpoint.post(body, FORM, headers=headers)  # the same bytes again
    assert (status, text) == (200, REPLAYED)
    other, other_app = await _second_process(app, endpoint.server)
    try:
        status, text, _ = await other.post(body, FORM, headers=headers)
        assert (status, text) == (200, REPLAYED)
    finally:
        await other.stop()
        other_app.close()
    await asyncio.sleep(0.5)
    assert [row.command for row in AuditLog(app.db).recent(10)] == ["watch"]
    with app.db.session() as session:
        assert len(session.exec(select(WatchRow)).all()) == 1
    assert len(endpoint.server.sent("chat.postMessage")) == 1
    fresh = form(
        slash_command(f"watch {LAZARUS}", user=BOB, channel=CHANNEL, response_url=endpoint.server.response_url("x"))
    )
    status, text, _ = await endpoint.post(fresh, FORM)  # a new request (another timestamp or body) is run
    assert status == 200 and REPLAYED not in text


# --- the flood --------------------------------------------------------------------------------------------------

FILE_LIMIT = 256
FLOOD_CONNECTIONS = 3000
FLOOD_SECONDS = 10.0
"""300 new connections a second: the guard keeps signed requests in while the cap (64 with 256 files) turns over
more slowly than every `MIN_AGE_TO_EVICT` (0.1 s), i.e. below 640 connections a second here."""


def _low_file_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT))


async def _signed_requests(url: str, server: FakeSlack, stop: asyncio.Event, acks: list[float]) -> None:
    """A signed `/sleuth help` every 0.3 s, each on a new connection; the seconds to each ack (inf: no 200)."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        n = 0
        while not stop.is_set():
            n += 1
            body = form(slash_command("help", user=CAROL, channel=CHANNEL, response_url=server.response_url(f"f{n}")))
            headers = {"Content-Type": FORM, **sign(SECRET, body)}
            started = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(5)) as reply:
                    await reply.read()
                    acks.append(time.perf_counter() - started if reply.status == 200 else 1000.0 + reply.status)
            except (aiohttp.ClientError, TimeoutError):
                acks.append(float("inf"))
            await asyncio.sleep(0.3)


@pytest.mark.timeout(90)
async def test_a_connection_flood_does_not_starve_signed_requests_nor_fill_the_log(
    tmp_path: Path, sqlite_url: str
) -> None:
    server = FakeSlack()
    await server.start()
    port, metrics_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "SLACK_", "PLATFORM", "HTTP_"))}
    env.update(
        {
            "DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": sqlite_url,
            "DEMO_DATA": "false",
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_BASE_URL": server.api_url,
            "SLACK_HTTP_PORT": str(port),
            "METRICS_PORT": str(metrics_port),
            "ALLOWED_CHATS": f"slack:{CHANNEL}",
        }
    )
    log_path = tmp_path / "bot.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "chainsleuth"),
            "run",
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            preexec_fn=_low_file_limit,
        )
    url = f"http://127.0.0.1:{port}/slack/events"
    try:
        first = form(slash_command("help", user=CAROL, channel=CHANNEL, response_url=server.response_url("first")))
        assert await _post_until_listening(url, first) == 200
        before = log_path.stat().st_size
        stop, acks = asyncio.Event(), []
        flood = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.support.flood",
            str(port),
            str(FLOOD_CONNECTIONS),
            str(FLOOD_SECONDS),
            stdout=subprocess.PIPE,
        )
        probes = asyncio.create_task(_signed_requests(url, server, stop, acks))
        out, _ = await asyncio.wait_for(flood.communicate(), FLOOD_SECONDS + 10)
        stop.set()
        await probes
        opened = int(out)
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{metrics_port}/metrics") as m:
            metrics = await m.text()
        await server.wait_for("chat.postMessage", count=1 + len(acks), within=30)  # each one answered, too
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
        await server.stop()
    grown = log_path.stat().st_size - before
    log = log_path.read_text(errors="replace")
    refused = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("chainsleuth_http_refused_total{") and 'server="slack"' in line
    )
    print(
        f"flood: {opened} connections, {len(acks)} signed requests, slowest ack {max(acks):.3f} s, "
        f"{refused:.0f} refusals counted, log grew {grown} bytes"
    )
    assert opened >= 2000
    assert len(acks) >= 10 and max(acks) < 1.0, acks
    assert refused >= opened - 200
    assert grown < 16 * 1024, log[-2000:]
    assert "Traceback" not in log and "Too many open files" not in log
    assert process.returncode == 0, log[-2000:]
