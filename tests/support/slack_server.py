"""A local Slack for end-to-end tests: the Web API (recording every call with its raw body), the upload URL that
`files_upload_v2` posts file bytes to, `response_url`s, and a Socket Mode websocket. Plus what Slack itself sends:
signed slash commands, Events API callbacks and `block_actions` payloads.

    slack = FakeSlack(); await slack.start()
    client = AsyncWebClient("xoxb-…", base_url=slack.api_url)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import WSMsgType, web

BOT_USER_ID = "U0CSBOT"
TEAM_ID = "T0TEAM"


@dataclass
class ApiCall:
    """One request the bot made: a Web API method, an upload (`upload`) or a `response_url` post (`respond`)."""

    method: str
    params: dict[str, Any]
    raw: bytes
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)

    def json(self, name: str) -> Any:
        value = self.params.get(name)
        return json.loads(value) if isinstance(value, str) else value

    @property
    def text(self) -> str:
        """Everything the message shows: the fallback text and every block, as sent."""
        return self.raw.decode("utf-8", "replace")


def sign(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """Slack's request signature headers: v0=HMAC-SHA256(secret, `v0:{timestamp}:{body}`)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


class FakeSlack:
    def __init__(self) -> None:
        self.calls: list[ApiCall] = []
        self.uploads: dict[str, bytes] = {}
        self.acks: dict[str, dict[str, Any]] = {}
        self.base_url = ""
        self._ts = itertools.count(1)
        self._changed = asyncio.Condition()
        self._failures: dict[str, list[tuple[int, dict[str, str], dict[str, Any]]]] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._runner: web.AppRunner | None = None

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    async def start(self) -> None:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_post("/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/respond/{name}", self._respond)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        for ws in self._sockets:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def response_url(self, name: str) -> str:
        return f"{self.base_url}/respond/{name}"

    def fail_next(self, method: str, status: int, headers: dict[str, str], body: dict[str, Any]) -> None:
        """Answer the next call of `method` with this (e.g. 429 with `Retry-After`)."""
        self._failures.setdefault(method, []).append((status, headers, body))

    # --- inspecting ------------------------------------------------------------------------------------------

    def sent(self, *methods: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method in methods]

    async def wait_for(
        self, method: str, predicate: Callable[[ApiCall], bool] = lambda c: True, *, count: int = 1, within: float = 10
    ) -> list[ApiCall]:
        def found() -> list[ApiCall]:
            return [c for c in self.calls if c.method == method and predicate(c)]

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(found()) >= count), within)
        return found()[:count]

    async def _record(self, call: ApiCall) -> None:
        self.calls.append(call)
        async with self._changed:
            self._changed.notify_all()

    # --- the Web API -----------------------------------------------------------------------------------------

    async def _read(self, request: web.Request) -> tuple[dict[str, Any], bytes]:
        """The call's parameters, wherever the client put them (query string, form or JSON body)."""
        raw = await request.read()
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(json.loads(raw) if raw else {})
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        return params, raw

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params, raw = await self._read(request)
        failures = self._failures.get(method)
        failure = failures.pop(0) if failures else None
        await self._record(ApiCall(method, params, raw, dict(request.headers)))
        if failure is not None:
            status, headers, body = failure
            return web.json_response(body, status=status, headers=headers)
        return web.json_response(self._result(method, params))

    def _result(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://test.slack.com/",
                "team": "Test",
                "user": "chainsleuth",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": "B0CSBOT",
            }
        if method == "chat.postMessage":
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            return {"ok": True, "channel": params.get("channel"), "ts": ts, "message": {"ts": ts}}
        if method == "chat.update":
            return {"ok": True, "channel": params.get("channel"), "ts": params.get("ts")}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._ts):08d}"
            return {"ok": True, "upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = json.loads(params.get("files", "[]"))
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}
        if method == "apps.connections.open":
            return {"ok": True, "url": f"{self.base_url.replace('http', 'ws', 1)}/socket"}
        return {"ok": True}

    async def _upload(self, request: web.Request) -> web.Response:
        raw = await request.read()
        file_id = request.match_info["file_id"]
        self.uploads[file_id] = raw
        await self._record(ApiCall("upload", {"file_id": file_id}, raw, dict(request.headers)))
        return web.Response(text="OK - 1")

    async def _respond(self, request: web.Request) -> web.Response:
        params, raw = await self._read(request)
        await self._record(
            ApiCall("respond", {"name": request.match_info["name"], **params}, raw, dict(request.headers))
        )
        return web.Response(text="ok")

    # --- Socket Mode -----------------------------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0CS"}})
        async with self._changed:
            self._changed.notify_all()
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                data = json.loads(message.data)
                self.acks[str(data.get("envelope_id"))] = data
                async with self._changed:
                    self._changed.notify_all()
        return ws

    async def socket_send(self, envelope: dict[str, Any], *, within: float = 10) -> dict[str, Any]:
        """Push an envelope down the Socket Mode connection and return the app's ack for it."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: bool(self._sockets)), within)
        await self._sockets[-1].send_json(envelope)
        envelope_id = str(envelope["envelope_id"])
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: envelope_id in self.acks), within)
        return self.acks[envelope_id]


# --- what Slack sends the app ----------------------------------------------------------------------------------


def slash_command(text: str, *, user: str, channel: str, response_url: str, team: str = TEAM_ID) -> dict[str, str]:
    return {
        "token": "legacy-verification-token",
        "team_id": team,
        "team_domain": "test",
        "channel_id": channel,
        "channel_name": "aml" if channel.startswith("C") else "directmessage",
        "user_id": user,
        "user_name": user.lower(),
        "command": "/sleuth",
        "text": text,
        "api_app_id": "A0CS",
        "response_url": response_url,
        "trigger_id": "1.2.3",
    }


def form(fields: dict[str, str]) -> str:
    return urlencode(fields)


def event_callback(event: dict[str, Any], *, team: str = TEAM_ID) -> str:
    return json.dumps(
        {
            "token": "legacy-verification-token",
            "team_id": team,
            "api_app_id": "A0CS",
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{time.monotonic_ns()}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": team, "user_id": BOT_USER_ID, "is_bot": True}],
        }
    )


def message_event(text: str, *, user: str, channel: str, kind: str = "message") -> dict[str, Any]:
    ts = f"{time.time():.6f}"
    event = {"type": kind, "user": user, "text": text, "ts": ts, "channel": channel, "event_ts": ts}
    if kind == "message":
        event["channel_type"] = "channel"
    return event


def block_actions(value: str, *, user: str, channel: str, message: dict[str, Any], response_url: str) -> str:
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
        "api_app_id": "A0CS",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": message.get("ts"), "channel_id": channel},
        "trigger_id": "1.2.3",
        "team": {"id": TEAM_ID, "domain": "test"},
        "channel": {"id": channel, "name": "aml"},
        "message": message,
        "response_url": response_url,
        "actions": [
            {
                "action_id": "chainsleuth:0",
                "block_id": "chainsleuth_actions",
                "value": value,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)})
