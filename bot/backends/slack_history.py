"""Finding an alert post again in a Slack channel, after a process died between "Slack accepted the post" and "the
store marked it sent" (chat.postMessage takes no idempotency key).

Every outbox post carries message metadata (`chat.postMessage(metadata=…)`) naming its outbox rows, the lead first,
each with its alert's dedup key. `find_posted` pages through `conversations.history` with `include_all_metadata`
from a time on and returns the posts naming any of the rows asked about. It needs the `channels:history` scope
(public channels) or `groups:history` (private ones) and the bot in the channel; any error (`missing_scope`,
`not_in_channel`, `channel_not_found` for a direct message addressed by user id, the network, too much history)
propagates — Slack's refusals as `HistoryUnavailable` naming the error code — and the notifier falls back to
re-sending flagged as a possible repeat. `SlackHistory` is the Slack backend's `history`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.backends.base import FoundPost, PostMarker
from bot.backends.errors import HistoryUnavailable

OUTBOX_EVENT = "chainsleuth_outbox"
PAGE_SIZE = 200
MAX_PAGES = 10


class HistoryTooLong(HistoryUnavailable):
    """More history to read than `find_posted` is willing to page through: it cannot tell."""


class SlackHistory:
    """A channel's history, read with the bot's Web API client (the backend's `history`)."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def find_posted(self, chat_id: str, marker: PostMarker, since: datetime) -> list[FoundPost]:
        """Posts sent with a marker naming any of `marker`'s outbox rows, since `since` (see `find_posted`)."""
        try:
            return await find_posted(self.client, chat_id, marker, since)
        except SlackApiError as exc:
            raise HistoryUnavailable(refusal(exc)) from exc


def refusal(exc: SlackApiError) -> str:
    """Slack's error code for a refused call, and the scope it needs when that is what is missing."""
    error = exc.response.get("error")
    if not error:
        return f"{type(exc).__name__}: {exc}"
    needed = exc.response.get("needed")
    return f"{error}" + (f", needs {needed}" if needed else "")


def outbox_metadata(marker: PostMarker) -> dict[str, Any]:
    """The message metadata of a post (payload values: numbers, strings and a list of objects, as Slack allows)."""
    rows = [{"outbox_id": outbox_id, "dedup_key": key} for outbox_id, key in marker.entries]
    return {"event_type": OUTBOX_EVENT, "event_payload": {"lead_id": marker.lead_id, "rows": rows}}


def marker_of(message: Mapping[str, Any]) -> PostMarker | None:
    """The marker a message from `conversations.history` carries, if it is one of our outbox posts."""
    metadata = message.get("metadata")
    if not isinstance(metadata, Mapping) or metadata.get("event_type") != OUTBOX_EVENT:
        return None
    payload = metadata.get("event_payload")
    rows = payload.get("rows") if isinstance(payload, Mapping) else None
    if not isinstance(rows, list):
        return None
    try:
        entries = tuple((int(row["outbox_id"]), str(row.get("dedup_key", ""))) for row in rows)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return PostMarker(entries) if entries else None


async def find_posted(
    client: AsyncWebClient, channel: str, marker: PostMarker, since: datetime, *, max_pages: int = MAX_PAGES
) -> list[FoundPost]:
    """Our posts in `channel` since `since` naming any of `marker`'s rows (outbox id and dedup key both equal), oldest
    first. Raises on any error, or `HistoryTooLong` after `max_pages` pages without reaching `since`."""
    wanted = set(marker.entries)
    when = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
    oldest = f"{max(0.0, when.timestamp()):.6f}"
    found: dict[str, FoundPost] = {}
    cursor: str | None = None
    for _ in range(max_pages):
        page = await client.conversations_history(
            channel=channel, oldest=oldest, include_all_metadata=True, limit=PAGE_SIZE, cursor=cursor
        )
        for message in page.get("messages") or []:
            posted = marker_of(message)
            ts = str(message.get("ts") or "")
            if posted is not None and ts and wanted & set(posted.entries):
                found[ts] = FoundPost(ts, posted)
        cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "") or None
        named = {entry for post in found.values() for entry in post.marker.entries}
        if not page.get("has_more") or cursor is None or wanted <= named:
            return [found[ts] for ts in sorted(found, key=float)]
    raise HistoryTooLong(f"more than {max_pages * PAGE_SIZE} messages since {oldest}")
