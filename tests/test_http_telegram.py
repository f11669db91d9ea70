"""The Telegram webhook under abuse (issue #13): it runs on our guarded server, so a wrong secret gets 403 and a body
that is not an update 400 (counted, no traceback), and a flood of idle connections over the cap is shed while a
real update still gets through. Real PTB Application, real server on loopback, a local Bot API."""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import pytest

from bot.app import App
from storage.audit import AuditLog
from tests.test_telegram import ALICE, GROUP, Telegram, _free_port, settings, telegram  # noqa: F401 (fixtures)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
CAP = 16


async def _closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    try:
        await asyncio.wait_for(reader.read(), within)
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


async def test_the_webhook_refuses_wrong_secrets_and_sheds_a_flood_of_connections(
    telegram: Telegram,  # noqa: F811
    app: App,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await telegram.stop()
    port = _free_port()
    backend = await telegram.start(
        telegram_webhook_url="https://bot.example.org/telegram/hook",
        telegram_webhook_secret="s3cret-token",
        telegram_webhook_listen="127.0.0.1",
        telegram_webhook_port=port,
        http_max_connections=CAP,
    )
    server = telegram.server
    url = f"http://127.0.0.1:{port}/telegram/hook"
    update = {"update_id": 1, **server.message("/help", chat=GROUP, user=ALICE)}
    audited = len(AuditLog(app.db).recent(100))
    assert backend._webhook is not None
    refusals = backend._webhook.server.refusals
    reasons = (
        "idle or slow headers, evicted",
        "silent over the connection cap, shed",
        "wrong secret token",
        "not an update",
    )
    before = {reason: refusals.total(reason) for reason in reasons}  # the counters are per process

    flood: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    for _ in range(10):  # 400 connections that never send a byte, 40 at a time
        flood += await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port) for _ in range(40)))
        await asyncio.sleep(0.05)
    closed = await asyncio.gather(*(_closed_by_server(reader, 3) for reader, _ in flood[:-CAP]))
    assert sum(closed) >= len(closed) - CAP  # all but the newest few were dropped to make room

    async with aiohttp.ClientSession() as session:
        for headers in ({SECRET_HEADER: "wrong"}, {SECRET_HEADER: "s3cret-token-but-longer"}, {}):
            async with session.post(url, json=update, headers=headers) as response:
                assert response.status == 403
        for body in (b"{not json", b"\xff\xfe", json.dumps([update]).encode(), b"null"):
            async with session.post(url, data=body, headers={SECRET_HEADER: "s3cret-token"}) as response:
                assert response.status == 400, body
        await asyncio.sleep(0.3)
        assert not server.sent("sendMessage")
        assert len(AuditLog(app.db).recent(100)) == audited
        async with session.post(url, json=update, headers={SECRET_HEADER: "s3cret-token"}) as ok:
            assert ok.status == 200
    [answer] = await server.wait_for("sendMessage")
    assert "Commands you may run" in answer.params["text"]
    for _, writer in flood:
        writer.close()

    counted = {reason: refusals.total(reason) - before[reason] for reason in reasons}
    assert counted[reasons[0]] + counted[reasons[1]] >= len(flood) - 2 * CAP
    assert counted["wrong secret token"] == 3
    assert counted["not an update"] == 4
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
