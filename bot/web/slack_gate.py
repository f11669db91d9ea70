"""What a request to the Slack HTTP endpoint must pass before Bolt sees it.

Bolt parses the body before it checks the signature, and a non-numeric timestamp, invalid JSON, a broken `payload=`
or bytes that are not UTF-8 each made it raise (a 500 and a traceback). Here the signature is checked first, on the
raw bytes (401 when missing, malformed, wrong or stale), then the body is decoded and parsed the way Bolt will parse
it (400 when it cannot be). A slash command must carry its `response_url` (400 otherwise: nothing could answer it).

Replay: a signed slash command is run once per signed request. Its timestamp and signature are claimed in the store
(`bot.once`, kind `slack-request`) for `REPLAY_MEMORY`, so the same bytes sent again, here or at another bot process
on the same store, get a short answer and run nothing. (Slack itself never re-sends a slash command; events it
re-sends are recognised by their event id, see `bot.backends.slack`.)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from bot.once import Claims
from bot.web.refusals import Refusals
from storage import STORE_FAULTS, StoreUnavailable

log = logging.getLogger(__name__)

REPLAY_MEMORY = timedelta(minutes=10)
"""Slack's signatures are good for 5 minutes either side of our clock: a claim outlives every copy's validity."""
SIGNATURE_WINDOW_SECONDS = 5 * 60
REPLAYED = "This request was already received and run; it was not run again."
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


class SlackGate:
    def __init__(self, signing_secret: str, claims: Claims, refusals: Refusals) -> None:
        self.secret = signing_secret.encode()
        self.claims = claims
        self.refusals = refusals

    async def admit(self, request: web.Request) -> str | web.Response:
        """The body as text for Bolt, or the answer that refuses the request."""
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not (_TIMESTAMP.fullmatch(timestamp) and _SIGNATURE.fullmatch(signature)):
            return self._refuse(401, "unsigned", "Unsigned request.")
        raw = await request.read()
        if not self._signed(raw, timestamp, signature):
            return self._refuse(401, "bad or stale signature", "Invalid signature.")
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            return self._refuse(400, "signed body not UTF-8", "The body is not UTF-8.")
        fields = parse_like_bolt(body, request.headers.get("Content-Type"))
        if fields is None:
            return self._refuse(400, "signed body malformed", "The body cannot be parsed.")
        if "command" in fields:
            if not str(fields.get("response_url") or "").startswith(("https://", "http://")):
                return self._refuse(400, "slash command without response_url", "The command has no response_url.")
            if not await self._first(timestamp, signature):
                return self._refuse(200, "replayed slash command", REPLAYED)
        return body

    def _signed(self, raw: bytes, timestamp: str, signature: str) -> bool:
        """Slack's v0 signature over the raw bytes (slack_sdk's verifier would decode them first, and raise)."""
        if abs(time.time() - int(timestamp)) > SIGNATURE_WINDOW_SECONDS:
            return False
        expected = hmac.new(self.secret, b"v0:" + timestamp.encode() + b":" + raw, hashlib.sha256).hexdigest()
        return hmac.compare_digest("v0=" + expected, signature)

    async def _first(self, timestamp: str, signature: str) -> bool:
        try:
            return await asyncio.to_thread(
                self.claims.first, "slack-request", (timestamp, signature.removeprefix("v0=")), REPLAY_MEMORY
            )
        except StoreUnavailable as fault:  # disk full, read-only, locked: the cause is known, no traceback
            ref = secrets.token_hex(4)
            log.error("slack: cannot remember the request in the store (ref %s): %s; it is not run", ref, fault)
            STORE_FAULTS.note(fault, ref, "remembering a Slack request")
            cause = fault.cause[0].upper() + fault.cause[1:]
            raise web.HTTPServiceUnavailable(text=f"{cause}; try again later (reference {ref}).") from None
        except SQLAlchemyError:
            ref = secrets.token_hex(4)
            log.exception("slack: cannot remember the request in the store (ref %s); it is not run", ref)
            raise web.HTTPServiceUnavailable(text=f"The store is unavailable; try again (reference {ref}).") from None

    def _refuse(self, status: int, reason: str, text: str) -> web.Response:
        self.refusals.count(reason)
        return web.Response(status=status, text=text)


def parse_like_bolt(body: str, content_type: str | None) -> dict[str, Any] | None:
    """The body as Bolt's `parse_body` will read it, or None when that would raise or give no object."""
    try:
        if not body:
            return {}
        if (content_type or "").split(";")[0].strip() == "application/json" or body.startswith("{"):
            value = json.loads(body)
        else:
            fields = dict(parse_qsl(body, keep_blank_values=True))
            if "payload" not in body or "payload" not in fields:
                return fields
            value = json.loads(fields["payload"])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
