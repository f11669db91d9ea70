"""The Telegram webhook on our guarded server (python-telegram-bot's own serves it with tornado, without time-outs
or a connection cap). As in PTB's custom-webhook examples, updates go into `Application.update_queue`, which the
running `Application` handles; the webhook is registered with `set_webhook` as `Updater.start_webhook` would.

A request without the secret token gets 403; a body that is not an update in JSON gets 400; neither is logged
but counted (`bot.web.refusals`).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Sequence
from urllib.parse import urlparse

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from bot.web.server import GuardedServer, HttpLimits

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class TelegramWebhook:
    def __init__(
        self,
        application: Application,  # type: ignore[type-arg]
        *,
        url: str,
        secret: str,
        listen: str,
        port: int,
        allowed_updates: Sequence[str],
        limits: HttpLimits,
    ) -> None:
        self.application = application
        self.url = url
        self.secret = secret.encode()
        self.allowed_updates = list(allowed_updates)
        self.server = GuardedServer("telegram", listen, port, limits)
        self.server.app.router.add_post("/" + urlparse(url).path.strip("/"), self._receive)

    @property
    def port(self) -> int:
        return self.server.port

    async def start(self) -> None:
        await self.server.start()
        try:
            await self.application.bot.set_webhook(
                url=self.url,
                allowed_updates=self.allowed_updates,
                secret_token=self.secret.decode(),
                max_connections=40,
            )
        except BaseException:
            await self.server.stop()
            raise

    async def stop(self) -> None:
        await self.server.stop()

    async def _receive(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, self.secret):
            self.server.refusals.count("wrong secret token")
            return web.Response(status=403, text="Wrong secret token.")
        try:
            data = json.loads(await request.read())
            update = Update.de_json(data, self.application.bot) if isinstance(data, dict) else None
        except (ValueError, TypeError, KeyError, AttributeError):
            update = None
        if update is None:
            self.server.refusals.count("not an update")
            return web.Response(status=400, text="Not an update.")
        await self.application.update_queue.put(update)
        return web.Response()
