"""A local Slack for end-to-end tests: the Web API (recording every call with its raw body), the upload URL that
`files_upload_v2` posts file bytes to, `response_url`s, and a Socket Mode websocket. Plus what Slack itself sends:
signed slash commands, Events API callbacks and `block_actions` payloads.

Channels keep their messages as Slack does: `chat.postMessage` stores the message with its `metadata`,
`chat.update` edits it in place, and `conversations.history` pages through them newest first (`oldest`, `latest`,
`inclusive`, `limit`, `cursor`, `has_more`), with metadata only under `include_all_metadata`, answering
`missing_scope` without `channels:history` (`groups:history` for the channels in `private`) and `not_in_channel`
for the channels in `not_in`. `post_delay` answers each post that long after storing it: the message is in the
channel while the bot does not know it yet. `lose_next` makes a call take effect and then lose its answer (the
connection dropped, a 500, or no answer before the client gives up).

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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import WSMsgType, web

BOT_USER_ID = "U0CSBOT"
BOT_ID = "B0CSBOT"
APP_ID = "A0CS"
TEAM_ID = "T0TEAM"
DEFAULT_SCOPES = frozenset(
    {"commands", "chat:write", "files:write", "app_mentions:read", "channels:history", "groups:history"}
)


@dataclass
class ApiCall:
    """One request the bot made: a Web API method, an upload (`upload`) or a `response_url` post (`respond`)."""

    method: str
    params: dict[str, Any]
    raw: bytes
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)
    result: Any = None
    """What the server answered (None for a scripted failure)."""

    def json(self, name: str) -> Any:
        value = self.params.get(name)
        return json.loads(value) if isinstance(value, str) else value

    @property
    def text(self) -> str:
        """Everything the message shows: the fallback text and every block, as sent."""
        return self.raw.decode("utf-8", "replace")


def _json(value: Any) -> Any:
    """A parameter that is JSON in a form post and already decoded in a JSON body."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def sign(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """Slack's request signature headers: v0=HMAC-SHA256(secret, `v0:{timestamp}:{body}`)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


class FakeSlack:
    def __init__(self, *, post_delay: float = 0.0) -> None:
        self.calls: list[ApiCall] = []
        self.channels: dict[str, list[dict[str, Any]]] = {}
        """Each channel's messages as stored, oldest first."""
        self.scopes: set[str] = set(DEFAULT_SCOPES)
        self.private: set[str] = set()
        self.not_in: set[str] = set()
        self.post_delay = post_delay
        self.uploads: dict[str, bytes] = {}
        self.acks: dict[str, dict[str, Any]] = {}
        self.base_url = ""
        self._ts = itertools.count(1)
        self._changed = asyncio.Condition()
        self._failures: dict[str, list[tuple[int, dict[str, str], dict[str, Any]]]] = {}
        self._losses: dict[str, list[tuple[str, float]]] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._runner: web.AppRunner | None = None

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    async def start(self) -> None:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
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

    def lose_next(self, method: str, how: str, *, stall: float = 0.0) -> None:
        """The next call of `method` takes effect (a post is stored in its channel) but its answer is lost: `how` is
        "disconnect" (the connection is closed without an answer), "500" (an internal_error answer) or "stall" (the
        answer comes `stall` seconds later, after the client gave up)."""
        assert how in ("disconnect", "500", "stall"), how
        self._losses.setdefault(method, []).append((how, stall))

    # --- inspecting ------------------------------------------------------------------------------------------

    def sent(self, *methods: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method in methods]

    def messages(self, channel: str) -> list[dict[str, Any]]:
        return list(self.channels.get(channel, []))

    def dedup_keys(self, channel: str | None = None) -> Counter[str]:
        """How many messages (in `channel`, or anywhere) name each alert dedup key in their metadata."""
        counts: Counter[str] = Counter()
        for name, messages in self.channels.items():
            if channel is not None and name != channel:
                continue
            for message in messages:
                payload = (message.get("metadata") or {}).get("event_payload") or {}
                counts.update({str(row.get("dedup_key")) for row in payload.get("rows") or [] if row.get("dedup_key")})
        return counts

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
        call = ApiCall(method, params, raw, dict(request.headers))
        if failure is not None:
            await self._record(call)
            status, headers, body = failure
            return web.json_response(body, status=status, headers=headers)
        losses = self._losses.get(method)
        loss = losses.pop(0) if losses else None
        call.result = self._result(method, params)
        await self._record(call)
        if loss is not None:
            how, stall = loss
            if how == "disconnect":
                assert request.transport is not None
                request.transport.close()  # done, and no answer: the client sees the server disconnect
                return web.Response()
            if how == "500":
                return web.json_response({"ok": False, "error": "internal_error"}, status=500)
            await asyncio.sleep(stall)
        if method == "chat.postMessage" and self.post_delay:
            await asyncio.sleep(self.post_delay)  # stored and visible in the channel; the answer comes later
        return web.json_response(call.result)

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
            message = {
                "type": "message",
                "ts": ts,
                "user": BOT_USER_ID,
                "bot_id": BOT_ID,
                "app_id": APP_ID,
                "team": TEAM_ID,
                "text": params.get("text", ""),
                "blocks": _json(params.get("blocks")) or [],
            }
            metadata = _json(params.get("metadata"))
            if metadata:
                message["metadata"] = metadata
            self.channels.setdefault(str(params.get("channel")), []).append(message)
            return {"ok": True, "channel": params.get("channel"), "ts": ts, "message": dict(message)}
        if method == "chat.update":
            for message in self.channels.get(str(params.get("channel")), []):
                if message["ts"] == params.get("ts"):
                    message.update(text=params.get("text", ""), blocks=_json(params.get("blocks")) or [])
                    message["edited"] = {"user": BOT_USER_ID, "ts": f"{time.time():.6f}"}
                    if params.get("metadata"):
                        message["metadata"] = _json(params.get("metadata"))
                    break
            # (a message the test made up, e.g. a button's: answered ok, as it always was here)
            return {"ok": True, "channel": params.get("channel"), "ts": params.get("ts")}
        if method == "conversations.history":
            return self._history(params)
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._ts):08d}"
            return {"ok": True, "upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = json.loads(params.get("files", "[]"))
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}
        if method == "apps.connections.open":
            return {"ok": True, "url": f"{self.base_url.replace('http', 'ws', 1)}/socket"}
        return {"ok": True}

    def _history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel", ""))
        if not channel or channel[0] not in "CGD":
            return {"ok": False, "error": "channel_not_found"}
        needed = {"C": "channels:history", "G": "groups:history", "D": "im:history"}[channel[0]]
        if channel in self.private:
            needed = "groups:history"
        if needed not in self.scopes:
            return {"ok": False, "error": "missing_scope", "needed": needed, "provided": ",".join(sorted(self.scopes))}
        if channel in self.not_in:
            return {"ok": False, "error": "not_in_channel"}
        inclusive = str(params.get("inclusive", "")).lower() in ("1", "true")
        oldest = float(params.get("oldest") or 0)
        latest = float(params.get("latest") or time.time() + 1e6)
        messages = [
            m
            for m in reversed(self.channels.get(channel, []))  # newest first
            if (oldest <= float(m["ts"]) if inclusive else oldest < float(m["ts"]))
            and (float(m["ts"]) <= latest if inclusive else float(m["ts"]) < latest)
        ]
        start = int(str(params.get("cursor") or "next:0").removeprefix("next:") or 0)
        limit = min(999, max(1, int(params.get("limit") or 100)))
        page = messages[start : start + limit]
        with_metadata = str(params.get("include_all_metadata", "")).lower() in ("1", "true")
        shown = [m if with_metadata else {k: v for k, v in m.items() if k != "metadata"} for m in page]
        more = start + limit < len(messages)
        return {
            "ok": True,
            "messages": shown,
            "has_more": more,
            "pin_count": 0,
            "response_metadata": {"next_cursor": f"next:{start + limit}" if more else ""},
        }

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
