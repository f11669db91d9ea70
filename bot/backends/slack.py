"""The Slack front end (slack-bolt `AsyncApp`): Socket Mode when `SLACK_APP_TOKEN` is set, otherwise HTTP with
signing-secret verification on our own aiohttp server (`SLACK_HTTP_HOST`:`SLACK_HTTP_PORT`, Bolt's
`/slack/events`; Bolt's built-in server would bind 0.0.0.0).

One slash command (`/sleuth risk 0x…`), app mentions (`@chainsleuth risk 0x…`), pasted addresses and button presses
all reach `Bot.handle`. Every listener acks at once and does its work lazily; in HTTP mode the work waits until the
ack is on the wire, so a slow command never delays it. Answers go out with `chat.postMessage` as Block Kit, files
with `files_upload_v2`; the Web API client retries after a 429 as long as `Retry-After` says.

Before it serves, the front end has the bot load its caches (`Bot.warm_up`, in a worker thread) and checks the token
once with `auth.test` (Bolt would otherwise call it for every request that arrives before the first answer). Slack
re-delivers an event it saw no ack for within 3 s (same `event_id`, `X-Slack-Retry-Num` set): an event id is acted
on once, remembered in the store (`Bot.first_delivery`), so a retry — here or at another bot process — runs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import socket
from contextvars import ContextVar
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_bolt.middleware.authorization.async_single_team_authorization import AsyncSingleTeamAuthorization
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from bot.backends import slack_history
from bot.backends.base import PostHistory, PostMarker, serve_until_signalled
from bot.backends.errors import DeliveryError, Outcome, RateLimited, raised_from
from bot.core import Bot
from bot.messages import Identity, IncomingMessage, Reply
from bot.render.slack_blocks import (
    ACTION_PREFIX,
    Block,
    asked_by,
    context,
    esc,
    mention,
    render_blocks,
    unescape,
)
from bot.web.refusals import Refusals
from bot.web.server import GuardedServer, HttpLimits
from bot.web.slack_gate import SlackGate
from storage import Settings

log = logging.getLogger(__name__)

SLASH_COMMAND = "/sleuth"
EVENTS_PATH = "/slack/events"
ACK_WAIT_SECONDS = 3.0
NOT_A_MEMBER = frozenset({"not_in_channel", "channel_not_found"})
REFUSED_TOKEN = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"})

POSTING_METHODS = frozenset(
    {"chat.postMessage", "chat.postEphemeral", "chat.scheduleMessage", "chat.meMessage", "files.completeUploadExternal"}
)
"""Web API methods that create a message: sent twice, they post twice (Slack takes no idempotency key)."""


class UnsentOnlyRetryHandler(AsyncConnectionErrorRetryHandler):
    """slack_sdk's connection-error retry, except that a posting method is retried only when the connection was
    never made (`ClientConnectorError`: refused, DNS, TLS; a connect time-out): after a reset or a server disconnect
    the post may have been made, and whether to post again is the notifier's call (it checks the channel's history
    first). Reads and edits, which are safe to repeat, are retried as slack_sdk does."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if not await super()._can_retry_async(state=state, request=request, response=response, error=error):
            return False
        if request.url.rstrip("/").rsplit("/", 1)[-1] not in POSTING_METHODS:
            return True
        return isinstance(error, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)


_LEADING_MENTIONS = re.compile(r"^\s*(?:<@[A-Z0-9]+(?:\|[^>]*)?>[\s:,]*)+")
_acked: ContextVar[asyncio.Event | None] = ContextVar("chainsleuth_slack_acked", default=None)


class SlackSetupError(ValueError):
    """The Slack configuration cannot work (the message says which variable to set)."""


def command_text(text: str) -> str:
    """What follows `/sleuth` or an @mention, as a command for the command layer: `risk 0x…` → `/risk 0x…`,
    nothing → `/help`. Slack's escaping of what the person typed (`&lt;`) is undone; renderers escape again."""
    words = unescape(_LEADING_MENTIONS.sub("", text)).strip()
    if not words:
        return "/help"
    return words if words.startswith("/") else "/" + words


NEVER_LEFT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, ConnectionRefusedError, socket.gaierror)
"""Failures (anywhere in the `raise … from` chain) that say the request never left: no connection was made (refused,
DNS, TLS handshake, connect time-out). The message is certainly not in the channel."""
NETWORK = (aiohttp.ClientError, OSError, TimeoutError)


def delivery_error(exc: BaseException) -> RateLimited | DeliveryError:
    """Sort a failure of slack_sdk: a 429 → `RateLimited` (after `Retry-After`); a 5xx → in doubt (Slack failed
    somewhere in handling it, maybe after posting); any other refusal (a 4xx, or a 200 with `ok: false`) → refused;
    a network failure before the request left → not sent; any other network failure (a read time-out, the
    connection lost after sending) → in doubt; anything else → refused."""
    if isinstance(exc, SlackApiError) and isinstance(exc.response.status_code, int):
        status = exc.response.status_code
        if status == 429:
            headers = exc.response.headers or {}
            return RateLimited(float(headers.get("Retry-After", headers.get("retry-after", 1))), str(exc))
        if status >= 500:
            return DeliveryError(str(exc), Outcome.IN_DOUBT)
        return DeliveryError(str(exc), Outcome.REFUSED)
    text = f"{type(exc).__name__}: {exc}"
    if raised_from(exc, NEVER_LEFT):
        return DeliveryError(text, Outcome.NOT_SENT)
    if isinstance(exc, NETWORK):
        return DeliveryError(text, Outcome.IN_DOUBT)
    return DeliveryError(text, Outcome.REFUSED)


class SlackBackend:
    platform = "slack"

    def __init__(self, bot: Bot, settings: Settings, *, send_only: bool = False) -> None:
        """`send_only`: for posting and editing alerts (`chainsleuth watch`), never started, so it needs only the bot
        token."""
        if not settings.slack_bot_token:
            raise SlackSetupError("SLACK_BOT_TOKEN is not set.")
        if not send_only and not settings.slack_app_token and not settings.slack_signing_secret:
            raise SlackSetupError("HTTP mode needs SLACK_SIGNING_SECRET (or set SLACK_APP_TOKEN for Socket Mode).")
        self.bot = bot
        self.settings = settings
        # Our client (every post, update and upload) and Bolt's: both carry the configured base URL, so Bolt's
        # auth.test reaches it rather than slack.com. Ours shares one connection pool while serving (see `start`);
        # Bolt's cannot, as Bolt deep-copies its client into each lazy listener's request.
        self.client = self._web_client()
        self._history = slack_history.SlackHistory(self.client)
        self.app = AsyncApp(
            client=self._web_client(),
            signing_secret=settings.slack_signing_secret,
            process_before_response=False,
            name="chainsleuth",
        )
        self.app.command(SLASH_COMMAND)(ack=self._ack, lazy=[self._run_slash_command])
        self.app.event("app_mention")(ack=self._ack, lazy=[self._run_mention])
        self.app.event("message")(ack=self._ack, lazy=[self._run_message])
        self.app.action(re.compile(f"^{re.escape(ACTION_PREFIX)}"))(ack=self._ack, lazy=[self._run_button])
        self.port = settings.slack_http_port
        self._http: GuardedServer | None = None
        self._gate = SlackGate(settings.slack_signing_secret, bot.claims, Refusals("slack"))
        self._socket: AsyncSocketModeHandler | None = None
        self._session: aiohttp.ClientSession | None = None
        self._stopping = asyncio.Event()

    def _web_client(self) -> AsyncWebClient:
        return AsyncWebClient(
            token=self.settings.slack_bot_token,
            base_url=self.settings.slack_api_base_url,
            # A 429 is retried after its Retry-After (nothing was posted); a lost connection only where repeating is
            # harmless (`UnsentOnlyRetryHandler`).
            retry_handlers=[UnsentOnlyRetryHandler(), AsyncRateLimitErrorRetryHandler(max_retry_count=3)],
        )

    @property
    def history(self) -> PostHistory:
        """Finds alert posts again by their message metadata (`slack_history`)."""
        return self._history

    # --- lifecycle -------------------------------------------------------------------------------------------

    @property
    def socket_mode(self) -> bool:
        return bool(self.settings.slack_app_token)

    async def start(self) -> None:
        await self.bot.warm_up()
        if self.client.session is None or self.client.session.closed:
            # One connection pool for the Web API while serving (slack_sdk would open a session, and a TLS
            # connection, per call).
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.client.timeout))
            self.client.session = self._session
        await self._check_token()
        if self.socket_mode:
            self._socket = AsyncSocketModeHandler(self.app, self.settings.slack_app_token)
            await self._socket.connect_async()  # slack_sdk retries until connected, logging each failure
            log.info("slack: Socket Mode connected")
            return
        host, port = self.settings.slack_http_host, self.settings.slack_http_port
        limits = HttpLimits.from_settings(self.settings)
        self._http = GuardedServer("slack", host, port, limits, refusals=self._gate.refusals)
        self._http.app.router.add_post(EVENTS_PATH, self._events)
        try:
            self.port = await self._http.start()
        except OSError as exc:
            self._http = None
            raise SlackSetupError(f"cannot listen on {host}:{port}: {exc}") from exc
        log.info("slack: HTTP mode on http://%s:%s%s", self.settings.slack_http_host, self.port, EVENTS_PATH)

    async def _check_token(self) -> None:
        """`auth.test` once, before serving: a refused token stops the start with the reason, and Bolt's
        single-workspace authorization gets the answer it would otherwise ask for on every request until its first
        call returns (a first wave of fifty commands made fifty `auth.test` calls, each in the way of its ack)."""
        try:
            result = await self.app.client.auth_test()
        except SlackApiError as exc:
            error = str(exc.response.get("error", ""))
            if error in REFUSED_TOKEN:
                raise SlackSetupError(f"Slack refused SLACK_BOT_TOKEN ({error}).") from exc
            log.warning("slack: auth.test failed (%s); Bolt asks again on the first request", error)
            return
        except Exception as exc:  # Slack unreachable for now: Bolt asks again on the first request
            log.warning("slack: auth.test failed (%s); Bolt asks again on the first request", exc)
            return
        log.info("slack: signed in as %s in %s", result.get("user_id"), result.get("team_id"))
        # Bolt keeps the answer in its middleware; there is no public setter.
        for middleware in getattr(self.app, "_async_middleware_list", ()):
            if isinstance(middleware, AsyncSingleTeamAuthorization) and middleware.auth_test_result is None:
                middleware.auth_test_result = result

    async def stop(self) -> None:
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        if self._http is not None:
            await self._http.stop()
            self._http = None
        if self._session is not None:
            await self._session.close()  # later calls (alerts after a stop) open their own sessions again
            self._session = None

    async def serve(self) -> None:
        await serve_until_signalled(self.start, self.stop, self._stopping)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        """The gate (signature, shape, replay: `bot.web.slack_gate`), then Bolt's dispatch (ack); the ack is written
        out before the lazy work may start."""
        body = await self._gate.admit(request)
        if isinstance(body, web.Response):
            return body
        acked = asyncio.Event()
        token = _acked.set(acked)
        try:
            bolt_request = AsyncBoltRequest(body=body, query=request.query_string, headers=dict(request.headers))
            bolt_response = await self.app.async_dispatch(bolt_request)
        finally:
            _acked.reset(token)
        response = await to_aiohttp_response(bolt_response)
        await response.prepare(request)
        await response.write_eof()
        acked.set()
        return response

    # --- listeners -------------------------------------------------------------------------------------------

    @staticmethod
    async def _ack(ack: AsyncAck) -> None:
        await ack()

    @staticmethod
    async def _after_ack() -> None:
        acked = _acked.get()
        if acked is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(acked.wait(), ACK_WAIT_SECONDS)

    async def _run_slash_command(self, body: dict[str, Any], respond: AsyncRespond) -> None:
        await self._after_ack()
        channel = str(body.get("channel_id", ""))
        user_id = str(body.get("user_id", ""))
        incoming = IncomingMessage(
            platform=self.platform,
            chat_id=channel,
            user=Identity(self.platform, user_id, str(body.get("user_name", ""))),
            text=command_text(str(body.get("text", ""))),
            is_direct=channel.startswith("D"),
            workspace=str(body.get("team_id", "")),
        )
        try:
            reply = await self.bot.handle(incoming) or Reply.error(f"Try {SLASH_COMMAND} help.")
            if reply.is_error:  # only the asker sees a mistake or a refusal
                message = render_blocks(reply)
                await respond(text=message.text, blocks=message.blocks, response_type="ephemeral")
                return
            asked = f"{SLASH_COMMAND} {unescape(str(body.get('text', '')))}".strip()
            await self._post(incoming, reply, preface=[asked_by(user_id, asked)], respond=respond)
        except Exception:
            await self._failed(respond)

    async def _first_delivery(self, body: dict[str, Any]) -> bool:
        event_id = str(body.get("event_id") or "")
        if await asyncio.to_thread(self.bot.first_delivery, self.platform, event_id):
            return True
        log.info("slack: event %s delivered again; already taken", event_id)
        return False

    async def _run_mention(self, event: dict[str, Any], body: dict[str, Any], respond: AsyncRespond) -> None:
        await self._after_ack()
        incoming = self._from_event(event, body, command_text(str(event.get("text", ""))))
        thread = str(event.get("thread_ts") or event.get("ts") or "") or None
        try:
            if not await self._first_delivery(body):
                return
            reply = await self.bot.handle(incoming) or Reply.error("Say a command after the mention, e.g. help.")
            await self._post(incoming, reply, thread_ts=thread)
        except Exception:
            log.exception("slack: mention failed")

    async def _run_message(self, event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext) -> None:
        """A message in a channel the bot is in: a pasted address gets a "Check risk" button."""
        await self._after_ack()
        text = str(event.get("text") or "")
        if event.get("subtype") or event.get("bot_id") or not text:
            return
        if context.bot_user_id and f"<@{context.bot_user_id}" in text:
            return  # the app_mention listener answers this one
        incoming = self._from_event(event, body, unescape(text))
        try:
            if not await self._first_delivery(body):
                return
            offer = await asyncio.to_thread(self.bot.offer_risk_checks, incoming)
            if offer is not None:
                await self._post(incoming, offer, thread_ts=str(event.get("thread_ts") or event.get("ts") or ""))
        except Exception:
            log.exception("slack: address offer failed")

    async def _run_button(self, body: dict[str, Any], respond: AsyncRespond) -> None:
        await self._after_ack()
        actions = body.get("actions") or [{}]
        channel = str((body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id", ""))
        user = body.get("user") or {}
        user_id = str(user.get("id", ""))
        presser = IncomingMessage(
            platform=self.platform,
            chat_id=channel,
            user=Identity(self.platform, user_id, str(user.get("username") or user.get("name") or "")),
            text="",
            is_direct=channel.startswith("D"),
            workspace=str((body.get("team") or {}).get("id", "")),
        )
        try:
            pressed = await self.bot.press(presser, str(actions[0].get("value", "")))
            if pressed.reply.is_error:
                message = render_blocks(pressed.reply)
                await respond(
                    text=message.text, blocks=message.blocks, response_type="ephemeral", replace_original=False
                )
                return
            original = body.get("message") or {}
            if pressed.used_up and original.get("ts"):
                kept: list[Block] = [b for b in original.get("blocks", []) if b.get("type") != "actions"]
                await self.client.chat_update(
                    channel=channel,
                    ts=str(original["ts"]),
                    text=str(original.get("text", "")),
                    blocks=kept + context([f"Checked by {mention(user_id)}"]),
                )
            thread = str(original.get("thread_ts") or "") or None
            await self._post(presser, pressed.reply, thread_ts=thread, preface=[asked_by(user_id, pressed.command)])
        except Exception:
            await self._failed(respond)

    def _from_event(self, event: dict[str, Any], body: dict[str, Any], text: str) -> IncomingMessage:
        channel = str(event.get("channel", ""))
        return IncomingMessage(
            platform=self.platform,
            chat_id=channel,
            user=Identity(self.platform, str(event.get("user", ""))),
            text=text,
            is_direct=event.get("channel_type") == "im" or channel.startswith("D"),
            workspace=str(body.get("team_id") or event.get("team") or ""),
        )

    async def _failed(self, respond: AsyncRespond) -> None:
        ref = secrets.token_hex(4)
        log.exception("slack: delivery failed (ref %s)", ref)
        with contextlib.suppress(Exception):
            message = render_blocks(Reply.error("Something went wrong on our side; the operators can look it up.", ref))
            await respond(text=message.text, blocks=message.blocks, response_type="ephemeral")

    # --- sending ---------------------------------------------------------------------------------------------

    async def send(self, chat_id: str, reply: Reply, *, marker: PostMarker | None = None) -> str:
        """Post unprompted (alerts); `marker` goes along as message metadata, for `history` to find."""
        try:
            ids = await self._store_actions(chat_id, reply)
            metadata = slack_history.outbox_metadata(marker) if marker is not None else None
            return await self._post_message(chat_id, reply, ids, metadata=metadata)
        except Exception as exc:
            raise delivery_error(exc) from exc

    async def edit(self, chat_id: str, message_id: str, reply: Reply) -> None:
        """Replace a message posted earlier (`message_id` is its `ts`), buttons included."""
        try:
            ids = await self._store_actions(chat_id, reply)
            message = render_blocks(reply, ids)
            await self.client.chat_update(channel=chat_id, ts=message_id, text=message.text, blocks=message.blocks)
        except Exception as exc:
            raise delivery_error(exc) from exc

    async def _store_actions(
        self, chat_id: str, reply: Reply, *, pressable_by: str = "", created_by: str = ""
    ) -> list[str]:
        if not reply.actions:
            return []
        return self.bot.store_actions(
            self.platform, chat_id, reply.actions, pressable_by=pressable_by, created_by=created_by
        )

    async def _post(
        self,
        incoming: IncomingMessage,
        reply: Reply,
        *,
        thread_ts: str | None = None,
        preface: list[Block] | None = None,
        respond: AsyncRespond | None = None,
    ) -> str:
        # In a direct message only its owner can press; in a channel anyone can (the role is still checked).
        ids = await self._store_actions(
            incoming.chat_id,
            reply,
            pressable_by=incoming.user.key if incoming.is_direct else "",
            created_by=incoming.user.key,
        )
        try:
            return await self._post_message(incoming.chat_id, reply, ids, thread_ts=thread_ts, preface=preface)
        except SlackApiError as exc:
            if respond is None or exc.response.get("error") not in NOT_A_MEMBER:
                raise
        # The bot is not a member of the channel: answer through the slash command's response_url instead.
        message = render_blocks(reply, ids, preface=preface or ())
        await respond(text=message.text, blocks=message.blocks, response_type="in_channel")
        if reply.attachments:
            note = Reply.error(f"Invite me to this channel ({SLASH_COMMAND} cannot attach files here otherwise).")
            await respond(text=render_blocks(note).text, response_type="ephemeral")
        return ""

    async def _post_message(
        self,
        channel: str,
        reply: Reply,
        button_ids: list[str],
        *,
        thread_ts: str | None = None,
        preface: list[Block] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        message = render_blocks(reply, button_ids, preface=preface or ())
        result = await self.client.chat_postMessage(
            channel=channel,
            text=message.text,
            blocks=message.blocks,
            thread_ts=thread_ts,
            unfurl_links=False,
            unfurl_media=False,
            metadata=metadata,
        )
        for attachment in reply.attachments:
            await self.client.files_upload_v2(
                channel=channel,
                file=attachment.content,
                filename=attachment.filename,
                title=attachment.filename,
                initial_comment=esc(attachment.caption) if attachment.caption else None,
                thread_ts=thread_ts,
            )
        return str(result.get("ts", ""))
