"""A local Bot API server for end-to-end tests: python-telegram-bot points its `base_url` here, polls updates the
test feeds in, and everything the bot sends is recorded (form fields and uploaded files) for the test to inspect.

    server = FakeTelegram(); await server.start()
    server.push(server.message("/risk 0x…", chat=GROUP, user=ALICE))
    sent = await server.wait_for("sendMessage")

`lose_next` makes a call take effect and then lose its answer (the connection dropped, or a 500); `start(port=)`
binds a given port, so a test can stop the server (connections refused) and start one again where the bot expects it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "123456:TEST-token"
BOT_USER = {
    "id": 123456,
    "is_bot": True,
    "first_name": "chainsleuth",
    "username": "chainsleuth_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": True,
    "supports_inline_queries": False,
}


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    content: bytes


@dataclass
class Call:
    """One Bot API request the bot made."""

    method: str
    params: dict[str, Any]
    files: dict[str, Upload] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)
    result: Any = None
    """What the server answered (for sendMessage: the Message a later button press refers to)."""

    def json(self, name: str) -> Any:
        value = self.params.get(name)
        return json.loads(value) if isinstance(value, str) else value

    @property
    def callback_data(self) -> list[str]:
        markup = self.json("reply_markup") or {}
        return [button["callback_data"] for row in markup.get("inline_keyboard", []) for button in row]


def chat(chat_id: int, kind: str = "supergroup", title: str = "AML desk") -> dict[str, Any]:
    return {"id": chat_id, "type": kind, "title": title} if kind != "private" else {"id": chat_id, "type": kind}


def user(user_id: int, name: str) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": name, "username": name.lower()}


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class FakeTelegram:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.webhook: dict[str, Any] = {}
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1000)
        self._message_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._stopping = False
        self._failures: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self._losses: dict[str, list[str]] = {}
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self, port: int = 0) -> str:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_post("/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}/bot"
        return self.base_url

    async def stop(self) -> None:
        # A long poll the bot has given up on would hold the server's shutdown for its whole timeout: end it now.
        self._stopping = True
        await self._notify()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- what the test feeds in ------------------------------------------------------------------------------

    def message(self, text: str, *, chat: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
        """A `message` update as Telegram sends it, with the bot_command entity a leading command has."""
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": user,
            "text": text,
        }
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": _utf16(command)}]
        return {"message": message}

    def press(self, data: str, *, message: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
        """A `callback_query` update: `user` pressed the button with `data` under `message` (a sent message)."""
        return {
            "callback_query": {
                "id": f"cbq{next(self._message_ids)}",
                "from": user,
                "message": message,
                "chat_instance": "42",
                "data": data,
            }
        }

    def push(self, update: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), **update}
        self._updates.append(update)
        asyncio.get_running_loop().create_task(self._notify())
        return update

    def fail_next(self, method: str, status: int, body: dict[str, Any]) -> None:
        """Answer the next call of `method` with this error (e.g. 429 with `parameters.retry_after`)."""
        self._failures.setdefault(method, []).append((status, body))

    def lose_next(self, method: str, how: str) -> None:
        """The next call of `method` takes effect (a message is sent, with its result recorded) but its answer is
        lost: `how` is "disconnect" (the connection is closed without an answer) or "500" (Internal Server Error)."""
        assert how in ("disconnect", "500"), how
        self._losses.setdefault(method, []).append(how)

    # --- what the bot sent -----------------------------------------------------------------------------------

    def sent(self, *methods: str) -> list[Call]:
        return [c for c in self.calls if c.method in methods]

    async def wait_for(
        self, method: str, predicate: Callable[[Call], bool] = lambda c: True, *, count: int = 1, within: float = 10
    ) -> list[Call]:
        """The first `count` calls of `method` that satisfy `predicate`, waiting for them to arrive."""

        def found() -> list[Call]:
            return [c for c in self.calls if c.method == method and predicate(c)]

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(found()) >= count), within)
        return found()[:count]

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- the Bot API -----------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        params: dict[str, Any] = {}
        files: dict[str, Upload] = {}
        if request.content_type == "application/json":
            params = await request.json()
        elif request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = Upload(value.filename, value.content_type, value.file.read())
                else:
                    params[key] = value
        call = Call(method, params, files)
        failures = self._failures.get(method)
        failure = failures.pop(0) if failures else None
        if failure is None and method != "getUpdates":
            call.result = self._result(method, call)
        self.calls.append(call)
        await self._notify()
        losses = self._losses.get(method) if failure is None else None
        if losses:
            if losses.pop(0) == "disconnect":
                assert request.transport is not None
                request.transport.close()  # sent, and no answer: the client sees the server disconnect
                return web.Response()
            error = {"ok": False, "error_code": 500, "description": "Internal Server Error"}
            return web.json_response(error, status=500)
        if failure is not None:
            return web.json_response(failure[1], status=failure[0])
        if method == "getUpdates":
            return self._ok(await self._get_updates(params))
        return self._ok(call.result)

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if not self._updates:
            wait = min(float(params.get("timeout") or 0), 1.0)
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait_for(lambda: bool(self._updates) or self._stopping), wait)
        return list(self._updates)

    def _result(self, method: str, call: Call) -> Any:
        if method == "getMe":
            return BOT_USER
        if method in ("setWebhook", "deleteWebhook"):
            self.webhook = dict(call.params) if method == "setWebhook" else {}
            return True
        if method in ("answerCallbackQuery", "setMyCommands"):
            return True
        if method in ("sendMessage", "sendPhoto", "sendDocument", "editMessageText"):
            chat_id = int(call.params.get("chat_id", 0))
            kind = "private" if chat_id > 0 else "supergroup"
            message: dict[str, Any] = {
                "message_id": int(call.params.get("message_id") or next(self._message_ids)),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": kind},
                "from": BOT_USER,
            }
            if "text" in call.params:
                message["text"] = call.params["text"]
            if "reply_markup" in call.params:
                message["reply_markup"] = call.json("reply_markup")
            if method == "sendPhoto":
                message["photo"] = [{"file_id": "p1", "file_unique_id": "p1", "width": 1, "height": 1}]
            if method == "sendDocument":
                upload = call.files.get("document")
                message["document"] = {"file_id": "d1", "file_unique_id": "d1", "file_name": upload and upload.filename}
            return message
        return True

    @staticmethod
    def _ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})
