"""The notifier: drains the outbox into chats through a `Deliverer` per platform.

Per chat it keeps the platform's limits (Telegram: one message a second per chat, 20 a minute per group, about
30 a second overall; Slack: about one a second per channel), honours `RateLimited(retry_after)`, backs off
exponentially on transient errors (5xx, network), sends a burst of alerts for one chat as one digest, and edits
an alert's message in place when the alert or its incident changes. Messages of one chat go out in order. A
message that keeps failing is marked failed and stays in the store (and in /status), never silently dropped.

Alert messages are rendered from the store at the moment they are sent, so a post that waited shows the
current state and a later edit with nothing new is skipped (the rendered text's hash is kept).

A process killed after the platform accepted a post but before the store marked it sent leaves the post's outbox
rows `interrupted` for the next claimer. Neither Telegram's sendMessage nor Slack's chat.postMessage takes an
idempotency key, so where the platform lets a bot read the chat back (Slack: every post carries message metadata
naming its outbox rows, found again with conversations.history) the notifier looks before re-posting: found, the
rows are recorded as sent with that message (no second post); not there, they are posted normally. Where it
cannot look (Telegram has no way for a bot to read a chat's history) or the look-up fails (a missing scope, the
bot not in the channel, the network), the alert is re-sent flagged `POSSIBLE_REPEAT` rather than risk losing it.

A send that failed without saying whether it got through — a read time-out, the connection lost after the request
went out, a 5xx — is in the same doubt, and is retried the same way (`classify` tells it from a failure that
certainly posted nothing: no connection made, a 429, a 4xx refusal, which are retried or given up plainly). The
platform clients do not re-send on their own (see the backends), so these are the only re-sends there are.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import secrets
import sys
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol, TextIO

from bot.messages import Action, Reply, Text
from bot.render.text import render_text
from storage import Database
from tracing import (
    WELL_KNOWN,
    Alert,
    AlertBook,
    AlertKind,
    AlertStatus,
    Clock,
    Direction,
    Incident,
    IncidentDesk,
    IncidentState,
    Outbox,
    OutboxItem,
    OutboxKind,
    OutboxStatus,
    SentMessage,
    SystemClock,
    checksum,
    format_amount,
    short,
    sleep_or_stop,
)

log = logging.getLogger(__name__)
POSSIBLE_REPEAT = (
    "↻ Possible repeat: sending this alert was interrupted (a restart or a lost connection), "
    "so it may already be above."
)
RECOVERY_MARGIN = timedelta(minutes=5)
"""How far before a row became ready a look-up for its interrupted post starts (clock skew with the platform)."""
RECOVERABLE_KINDS = frozenset({OutboxKind.ALERT, OutboxKind.NOTICE})


# -- the platform contract -----------------------------------------------------------------------------------


class RateLimited(Exception):
    """The platform said "too many requests": try again after `retry_after` seconds."""

    def __init__(self, retry_after: float, message: str = "") -> None:
        super().__init__(message or f"rate limited; retry after {retry_after:g}s")
        self.retry_after = max(0.0, float(retry_after))


class DeliveryError(Exception):
    """Delivery failed. `transient` (5xx, network, time-out): worth retrying; otherwise (chat gone, bot removed,
    bad request) it is not. `maybe_sent`: the request may have reached the platform and been acted on (a time-out
    or a dropped connection after it was sent, a 5xx), so the message may be in the chat although the call failed;
    False when it certainly was not (no connection made, a 4xx refusal)."""

    def __init__(self, message: str, *, transient: bool, maybe_sent: bool = False) -> None:
        super().__init__(message)
        self.transient = transient
        self.maybe_sent = maybe_sent


class Deliverer(Protocol):
    """What the notifier needs from a chat platform. Raise `RateLimited` or `DeliveryError`.

    Optionally (see `RecoveringDeliverer`) a deliverer also has `post_marked` and `find_posted`: the notifier uses
    them when present, to find a post again after a crash instead of re-sending it."""

    async def post(self, chat_id: str, reply: Reply) -> str:
        """Post a message; returns the platform's message id."""
        ...

    async def edit(self, chat_id: str, message_id: str, reply: Reply) -> None:
        """Replace the content (and buttons) of a message posted earlier."""
        ...


@dataclass(frozen=True, slots=True)
class PostMarker:
    """What a post says about itself where the platform can carry it (Slack: message metadata): the outbox rows it
    delivers, the lead (a digest's first row) first, each with its alert's dedup key ("" for a notice)."""

    entries: tuple[tuple[int, str], ...]

    @property
    def outbox_ids(self) -> tuple[int, ...]:
        return tuple(outbox_id for outbox_id, _key in self.entries)

    @property
    def lead_id(self) -> int:
        return self.entries[0][0]


@dataclass(frozen=True, slots=True)
class FoundPost:
    """A post found on the platform by its marker."""

    message_id: str
    marker: PostMarker


class PostLookupUnavailable(Exception):
    """The platform gives a bot no way to find a post again (Telegram cannot read a chat's history)."""


class RecoveringDeliverer(Deliverer, Protocol):
    """A deliverer that can mark a post and find it again by the mark (Slack). The notifier finds these methods with
    `getattr`, so a plain `Deliverer` still works: its interrupted posts are re-sent flagged."""

    async def post_marked(self, chat_id: str, reply: Reply, marker: PostMarker) -> str:
        """`post`, with `marker` attached to the message where the platform can carry it."""
        ...

    async def find_posted(self, chat_id: str, marker: PostMarker, since: datetime) -> list[FoundPost]:
        """Posts in `chat_id` since `since` whose marker names any of `marker`'s entries (outbox id and dedup key
        both equal), oldest first. Raises when it cannot tell (`PostLookupUnavailable`, or the platform's error):
        an empty list means "not posted"."""
        ...


@dataclass(frozen=True)
class RateLimits:
    """A platform's sending limits. `per_chat`: seconds between two messages to one chat; `group_per_minute`:
    messages a minute to a group chat (`is_group` tells which chats are groups); `per_second`: messages a second
    over all chats."""

    per_chat: float = 0.0
    group_per_minute: int | None = None
    per_second: float | None = None
    is_group: Callable[[str], bool] = field(default=lambda chat: False)


TELEGRAM_LIMITS = RateLimits(
    per_chat=1.0, group_per_minute=20, per_second=30, is_group=lambda chat: chat.startswith("-")
)
SLACK_LIMITS = RateLimits(per_chat=1.0)
PLATFORM_LIMITS: dict[str, RateLimits] = {"telegram": TELEGRAM_LIMITS, "slack": SLACK_LIMITS}


class RateLimiter:
    """When the next message to a chat may go, by the platform's limits and any `retry_after` it imposed."""

    def __init__(self, limits: Mapping[str, RateLimits], clock: Clock) -> None:
        self.limits = limits
        self.clock = clock
        self._last: dict[tuple[str, str], float] = {}
        self._minute: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._second: dict[str, deque[float]] = defaultdict(deque)
        self._held: dict[tuple[str, str], float] = {}

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def wait_time(self, platform: str, chat: str) -> float:
        limits = self.limits.get(platform, RateLimits())
        now = self._now()
        key = (platform, chat)
        ready = self._held.get(key, now)
        if key in self._last:
            ready = max(ready, self._last[key] + limits.per_chat)
        if limits.group_per_minute and limits.is_group(chat):
            window = self._minute[key]
            if len(window) >= limits.group_per_minute:
                ready = max(ready, window[-limits.group_per_minute] + 60.0)
        if limits.per_second:
            window = self._second[platform]
            allowed = int(limits.per_second)
            if len(window) >= allowed:
                ready = max(ready, window[-allowed] + 1.0)
        return max(0.0, ready - now)

    def record(self, platform: str, chat: str) -> None:
        now = self._now()
        key = (platform, chat)
        self._last[key] = now
        minute = self._minute[key]
        minute.append(now)
        while minute and minute[0] <= now - 60.0:
            minute.popleft()
        second = self._second[platform]
        second.append(now)
        while second and second[0] <= now - 1.0:
            second.popleft()

    def hold(self, platform: str, chat: str, seconds: float) -> None:
        """Nothing more to this chat for `seconds` (the platform's retry_after)."""
        self._held[(platform, chat)] = max(self._held.get((platform, chat), 0.0), self._now() + seconds)

    async def acquire(self, platform: str, chat: str) -> None:
        while (wait := self.wait_time(platform, chat)) > 0:
            await self.clock.sleep(wait)
        self.record(platform, chat)


# -- what an alert message shows -----------------------------------------------------------------------------

_STATUS_TEXT = {
    AlertStatus.PROVISIONAL: "⏳ provisional (at the chain head, not yet confirmed)",
    AlertStatus.CONFIRMED: "✅ confirmed",
    AlertStatus.REORGED_OUT: "↩️ reorged out: its block was replaced, this movement is not on the chain",
}
_KIND_MARK = {
    AlertKind.MOVEMENT: "🔔",
    AlertKind.THRESHOLD: "💰",
    AlertKind.COUNTERPARTY_RISK: "🚨",
    AlertKind.LABEL_CHANGE: "🏷️",
}


def native_symbol(chain: str) -> str:
    known = WELL_KNOWN.get(chain)
    return known.symbol if known else "ETH"


def amount_text(alert: Alert) -> str:
    if alert.value is None:
        return "amount unknown"
    if alert.token is None:  # the chain source fills in the native coin's symbol and decimals
        return format_amount(alert.value, alert.decimals or 18, alert.symbol or native_symbol(alert.chain))
    text = format_amount(alert.value, alert.decimals, alert.symbol)
    return text if alert.symbol else f"{text} of token {checksum(alert.token)}"


def incident_line(incident: Incident | None) -> str:
    if incident is None:
        return ""
    if incident.state is IncidentState.OPEN:
        state = "open, not acknowledged"
        if incident.owner_name:
            state += f", assigned to {incident.owner_name}"
    elif incident.state is IncidentState.ACKNOWLEDGED:
        state = f"acknowledged by {incident.acked_by}" + (
            f", owner {incident.owner_name}" if incident.owner_name and incident.owner_name != incident.acked_by else ""
        )
    else:
        disposition = incident.disposition.display if incident.disposition else "resolved"
        state = f"resolved as {disposition} by {incident.resolved_by}"
    return f"Incident #{incident.id}: {state}"


def movement_line(alert: Alert) -> str:
    kind = {"native": "transfer", "erc20": "token transfer", "internal": "internal transfer"}.get(
        alert.transfer_kind or "", "transfer"
    )
    counterparty = checksum(alert.counterparty) if alert.counterparty else "?"
    if alert.direction is Direction.OUT:
        return f"Sent {amount_text(alert)} to {counterparty} ({kind})"
    if alert.direction is Direction.IN:
        return f"Received {amount_text(alert)} from {counterparty} ({kind})"
    return f"Moved {amount_text(alert)} to itself ({kind})"


@dataclass(frozen=True, slots=True)
class AlertCard:
    """One alert with its incident, as a reply part (plain text by default; platform renderers may do better)."""

    alert: Alert
    incident: Incident | None

    def __str__(self) -> str:
        a = self.alert
        head = f"{_KIND_MARK[a.kind]} {a.kind.display} — {checksum(a.address)} on {a.chain}"
        lines = [head]
        if a.kind is AlertKind.LABEL_CHANGE:
            lines += list(a.reasons)
            why = a.details.get("why")
            lines.append(
                "You watch this address."
                if why == "watched"
                else "This chat checked this address with /risk in the last 90 days."
            )
        else:
            lines.append(movement_line(a))
            lines.append(f"tx {a.tx_hash} in block {a.block_number}")
            lines.append(_STATUS_TEXT[a.status])
            if a.reasons:
                lines.append("Why: " + "; ".join(a.reasons))
            note = a.details.get("note")
            if note:
                lines.append(f"Note: {note}")
        if self.incident is not None:
            lines.append(incident_line(self.incident))
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class AlertDigest:
    """Several alerts for one chat in one message (a burst)."""

    cards: tuple[AlertCard, ...]

    def __str__(self) -> str:
        lines = [f"🔔 {len(self.cards)} alerts on watched addresses:"]
        for card in self.cards:
            a = card.alert
            if a.kind is AlertKind.LABEL_CHANGE:
                what = "; ".join(a.reasons)
            else:
                what = f"{short(a.address)}: {movement_line(a)}, block {a.block_number}, {a.status.value}"
            incident = f" — incident #{card.incident.id} {card.incident.state.value}" if card.incident else ""
            lines.append(f"• {a.kind.display}: {what}{incident}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class EscalationNotice:
    """An incident nobody acknowledged in time, calling the on-call officer of `level`."""

    incident: Incident
    level: int
    oncall_key: str
    oncall_name: str
    open_minutes: int

    def __str__(self) -> str:
        who = f"@{self.oncall_name}" if self.oncall_name else "nobody is on call here (set someone with /oncall)"
        return (
            f"⏰ Incident #{self.incident.id} has not been acknowledged for {self.open_minutes} min — "
            f"escalated to level {self.level}: {who}\n{self.incident.title}\n{incident_line(self.incident)}"
        )


def incident_actions(incident: Incident | None, address: str, chain: str) -> tuple[Action, ...]:
    trace = Action("Trace", f"/trace {address} --chain {chain}")
    if incident is None or incident.state is IncidentState.RESOLVED:
        return (trace,)
    resolve = Action("Resolve…", f"/resolve {incident.id}")
    if incident.state is IncidentState.OPEN:
        return (Action("Ack", f"/ack {incident.id}", style="primary"), resolve, trace)
    return (resolve, trace)


def alert_reply(card: AlertCard) -> Reply:
    return Reply((card,), actions=incident_actions(card.incident, card.alert.address, card.alert.chain))


def digest_reply(cards: Sequence[AlertCard]) -> Reply:
    actions: list[Action] = []
    for incident in {c.incident.id: c.incident for c in cards if c.incident is not None}.values():
        if incident.state is IncidentState.OPEN and len(actions) < 3:
            actions.append(Action(f"Ack #{incident.id}", f"/ack {incident.id}", style="primary"))
    actions.append(Action("Open incidents", "/incidents open"))
    return Reply((AlertDigest(tuple(cards)),), actions=tuple(actions))


def content_hash(reply: Reply) -> str:
    text = render_text(reply) + "\x1e" + "\x1f".join(f"{a.label}\x1d{a.command}" for a in reply.actions)
    return hashlib.sha256(text.encode()).hexdigest()


# -- the notifier --------------------------------------------------------------------------------------------


@dataclass
class _Unit:
    """What goes out in one go: one outbox row, or several alert rows as a digest."""

    items: list[OutboxItem]

    @property
    def ids(self) -> list[int]:
        return [item.id for item in self.items]

    @property
    def first(self) -> OutboxItem:
        return self.items[0]


@dataclass
class NotifierStats:
    posts: int = 0
    edits: int = 0
    digests: int = 0
    skipped_edits: int = 0
    rate_limited: int = 0
    retries: int = 0
    failed: int = 0
    recovered: int = 0
    """Interrupted outbox rows found already posted (recorded as sent, not posted again)."""
    flagged: int = 0
    """Interrupted alert posts re-sent with `POSSIBLE_REPEAT` (the platform could not be asked)."""
    in_doubt: int = 0
    """Posts whose outcome was unknown (time-out, connection lost after sending, 5xx): retried like interrupted
    ones, found again or flagged rather than silently posted twice."""


class Notifier:
    """Drains the outbox (see the module docstring). One `Notifier` per process; several may share a store."""

    def __init__(
        self,
        db: Database,
        deliverers: Mapping[str, Deliverer],
        *,
        clock: Clock | None = None,
        limits: Mapping[str, RateLimits] | None = None,
        worker: str | None = None,
        max_attempts: int = 8,
        backoff: float = 2.0,
        max_backoff: float = 600.0,
        jitter: Callable[[], float] | None = None,
        digest_threshold: int = 3,
        digest_max: int = 20,
        batch: int = 100,
        per_chat: int = 20,
        concurrency: int = 8,
        lease: timedelta = timedelta(minutes=5),
        lookup_timeout: float = 30.0,
    ) -> None:
        self.db = db
        self.deliverers = dict(deliverers)
        self.clock = clock or SystemClock()
        self.limiter = RateLimiter(PLATFORM_LIMITS if limits is None else limits, self.clock)
        self.outbox = Outbox(db, self.clock)
        self.alerts = AlertBook(db)
        self.incidents = IncidentDesk(db, self.clock)
        self.worker = worker or f"notifier-{secrets.token_hex(4)}"
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.jitter = jitter if jitter is not None else random.random
        self.digest_threshold = digest_threshold
        self.digest_max = digest_max
        self.batch = batch
        self.per_chat = per_chat
        self.concurrency = concurrency
        self.lease = lease
        self.lookup_timeout = lookup_timeout
        self.stats = NotifierStats()

    async def run(self, stop: asyncio.Event, *, idle: float = 1.0) -> None:
        """Drain until `stop` is set, pausing `idle` seconds whenever there was nothing to send."""
        while not stop.is_set():
            try:
                sent = await self.drain_once()
            except Exception:  # a store hiccup must not end delivery; the next round retries
                log.exception("notifier round failed")
                sent = 0
            if not sent and await sleep_or_stop(self.clock, idle, stop):
                return

    async def drain_once(self) -> int:
        """Claim what is ready and deliver it; returns the outbox rows settled (sent, skipped or failed)."""
        items = self.outbox.claim(
            self.worker, platforms=list(self.deliverers), limit=self.batch, per_chat=self.per_chat, lease=self.lease
        )
        if not items:
            return 0
        by_chat: dict[tuple[str, str], list[OutboxItem]] = defaultdict(list)
        for item in items:
            by_chat[(item.platform, item.chat)].append(item)
        gate = asyncio.Semaphore(self.concurrency)

        async def one_chat(key: tuple[str, str], queue: list[OutboxItem]) -> int:
            async with gate:
                queue, recovered = await self._recover(key[0], key[1], queue)
                return recovered + await self._deliver_chat(key[0], key[1], self._units(queue))

        settled = await asyncio.gather(*(one_chat(key, queue) for key, queue in by_chat.items()))
        return sum(settled)

    async def _recover(self, platform: str, chat: str, queue: list[OutboxItem]) -> tuple[list[OutboxItem], int]:
        """Before re-posting interrupted rows, ask the platform whether their post got through (where it can tell):
        rows found are recorded as sent with the message found; rows it did not find are posted normally; when it
        cannot tell, they stay `interrupted` and are re-sent flagged. Returns the rows left to send and the number
        settled here."""
        doubtful = [item for item in queue if item.interrupted and item.kind in RECOVERABLE_KINDS]
        find = getattr(self.deliverers[platform], "find_posted", None)
        if not doubtful or find is None:
            return queue, 0
        marker = self._marker(doubtful)
        since = min(item.ready_at or item.created_at for item in doubtful) - RECOVERY_MARGIN
        ids = [item.id for item in doubtful]
        try:
            found: list[FoundPost] = await asyncio.wait_for(find(chat, marker, since), self.lookup_timeout)
        except PostLookupUnavailable as exc:
            log.info("%s chat %s: outbox %s interrupted mid-send; %s, so re-sending flagged", platform, chat, ids, exc)
            return queue, 0
        except Exception as exc:
            log.warning(
                "%s chat %s: outbox %s interrupted mid-send and the chat's history could not be checked (%s); "
                "re-sending flagged as possible repeats",
                platform,
                chat,
                ids,
                lookup_error(exc),
            )
            return queue, 0
        mine = {item.id for item in doubtful}
        settled: set[int] = set()
        for post in found:  # oldest first: if a post was somehow doubled, the first one is the one kept
            rows = [i for i in post.marker.outbox_ids if i in mine and i not in settled]
            if not rows:
                continue
            group = post.marker.lead_id if len(post.marker.entries) > 1 else None
            self.outbox.mark_sent(rows, post.message_id, group_id=group)
            settled.update(rows)
            log.info(
                "%s chat %s: outbox %s was already posted as %s; not posting again",
                platform,
                chat,
                rows,
                post.message_id,
            )
        self.stats.recovered += len(settled)
        # Not in the history since they became ready: never posted, so posted now without the repeat warning.
        rest = [
            replace(item, interrupted=False) if item.id in mine else item for item in queue if item.id not in settled
        ]
        return rest, len(settled)

    def _marker(self, items: Sequence[OutboxItem], keys: Mapping[int, str] | None = None) -> PostMarker:
        """The items' outbox ids with their alerts' dedup keys (`keys`: alert id → dedup key; looked up if None)."""
        if keys is None:
            alert_ids = [item.alert_id for item in items if item.alert_id is not None]
            keys = {alert.id: alert.dedup_key for alert in self.alerts.many(alert_ids)} if alert_ids else {}
        return PostMarker(tuple((item.id, keys.get(item.alert_id, "") if item.alert_id else "") for item in items))

    def _units(self, queue: Sequence[OutboxItem]) -> list[_Unit]:
        """Consecutive alert posts of a burst (at least `digest_threshold`) become digests; the rest go singly."""
        units: list[_Unit] = []
        run: list[OutboxItem] = []

        def flush() -> None:
            if len(run) >= self.digest_threshold:
                units.extend(_Unit(run[i : i + self.digest_max]) for i in range(0, len(run), self.digest_max))
            else:
                units.extend(_Unit([item]) for item in run)
            run.clear()

        for item in queue:
            if item.kind is OutboxKind.ALERT:
                run.append(item)
                continue
            flush()
            units.append(_Unit([item]))
        flush()
        return units

    async def _deliver_chat(self, platform: str, chat: str, units: list[_Unit]) -> int:
        deliverer = self.deliverers[platform]
        settled = 0
        for index, unit in enumerate(units):
            # Still in doubt from an earlier attempt (interrupted, and the platform could not be asked): a failure
            # now that certainly did not post leaves that doubt as it was, so the row must stay `interrupted`.
            doubtful = unit.first.kind in RECOVERABLE_KINDS and any(item.interrupted for item in unit.items)
            try:
                await self._send(deliverer, platform, chat, unit)
                settled += len(unit.items)
            except RateLimited as exc:
                self.stats.rate_limited += 1
                self.limiter.hold(platform, chat, exc.retry_after)
                if doubtful:
                    self.outbox.retry_in_doubt(unit.ids, exc.retry_after, str(exc), count_attempt=False)
                else:
                    self.outbox.retry_later(unit.ids, exc.retry_after, str(exc), count_attempt=False)
                self._release_rest(units[index + 1 :])
                log.info("%s chat %s rate limited for %.1fs", platform, chat, exc.retry_after)
                return settled
            except Exception as exc:
                if isinstance(exc, DeliveryError):
                    transient, maybe_sent = exc.transient, exc.maybe_sent
                else:  # a deliverer's or the store's surprise: nobody can say whether the post went out
                    transient, maybe_sent = True, True
                    log.exception("delivery to %s chat %s failed unexpectedly", platform, chat)
                error = f"{type(exc).__name__}: {exc}"
                attempts = max(item.attempts for item in unit.items) + 1
                if transient and attempts < self.max_attempts:
                    self.stats.retries += 1
                    delay = min(self.max_backoff, self.backoff * 2 ** (attempts - 1)) * (1 + self.jitter() / 2)
                    if unit.first.kind in RECOVERABLE_KINDS and (maybe_sent or doubtful):
                        # The post may be in the chat: the next attempt goes through `_recover`, as after a crash.
                        self.stats.in_doubt += len(unit.items) if maybe_sent else 0
                        self.outbox.retry_in_doubt(unit.ids, delay, error)
                    else:
                        self.outbox.retry_later(unit.ids, delay, error, count_attempt=True)
                    self._release_rest(units[index + 1 :])
                    log.warning(
                        "%s chat %s: %s%s; retry %d in %.0fs",
                        platform,
                        chat,
                        error,
                        " (may have been posted: checked before re-posting)" if maybe_sent else "",
                        attempts,
                        delay,
                    )
                    return settled
                self.stats.failed += len(unit.items)
                self.outbox.mark_failed(unit.ids, error)
                settled += len(unit.items)
                log.error(
                    "%s chat %s: giving up on outbox %s after %d attempts: %s",
                    platform,
                    chat,
                    unit.ids,
                    attempts,
                    error,
                )
        return settled

    def _release_rest(self, rest: Sequence[_Unit]) -> None:
        self.outbox.release([i for unit in rest for i in unit.ids])

    async def _call_post(
        self,
        deliverer: Deliverer,
        platform: str,
        chat: str,
        reply: Reply,
        items: Sequence[OutboxItem],
        keys: Mapping[int, str] | None = None,
    ) -> str:
        """Post, marked with its outbox rows where the deliverer can mark posts (so a crash can be recovered from)."""
        await self.limiter.acquire(platform, chat)
        post_marked = getattr(deliverer, "post_marked", None)
        if post_marked is not None:
            return str(await post_marked(chat, reply, self._marker(items, keys)))
        return str(await deliverer.post(chat, reply))

    async def _call_edit(self, deliverer: Deliverer, platform: str, chat: str, message_id: str, reply: Reply) -> None:
        await self.limiter.acquire(platform, chat)
        await deliverer.edit(chat, message_id, reply)

    async def _send(self, deliverer: Deliverer, platform: str, chat: str, unit: _Unit) -> None:
        item = unit.first
        if item.kind is OutboxKind.ALERT:
            await self._post_alerts(deliverer, platform, chat, unit)
        elif item.kind is OutboxKind.ALERT_EDIT:
            await self._edit_alert(deliverer, platform, chat, item)
        elif item.kind is OutboxKind.INCIDENT_EDIT:
            await self._edit_incident(deliverer, platform, chat, item)
        elif item.kind is OutboxKind.NOTICE:
            await self._notice(deliverer, platform, chat, item)

    def _cards(self, alert_ids: Sequence[int]) -> list[AlertCard]:
        alerts = self.alerts.many(alert_ids)
        incidents = self.incidents.many([a.incident_id for a in alerts if a.incident_id is not None])
        return [AlertCard(a, incidents.get(a.incident_id) if a.incident_id else None) for a in alerts]

    def _render(self, alert_ids: Sequence[int], *, digest: bool) -> Reply | None:
        cards = self._cards(alert_ids)
        if not cards:
            return None
        return digest_reply(cards) if digest or len(cards) > 1 else alert_reply(cards[0])

    async def _post_alerts(self, deliverer: Deliverer, platform: str, chat: str, unit: _Unit) -> None:
        alert_ids = [item.alert_id for item in unit.items if item.alert_id is not None]
        cards = self._cards(alert_ids)
        if not cards:
            self.outbox.mark_failed(unit.ids, "the alert is not in the store", count_attempt=False)
            return
        reply = digest_reply(cards) if len(unit.items) > 1 or len(cards) > 1 else alert_reply(cards[0])
        if any(item.interrupted for item in unit.items):
            # Still interrupted after `_recover`: the platform could not be asked whether the post got through
            # (Telegram never can). Chat APIs take no idempotency key, so we re-send rather than risk losing the
            # alert, and say so, so nobody takes a repeat for a second movement.
            reply = replace(reply, parts=(Text(POSSIBLE_REPEAT), *reply.parts))
            self.stats.flagged += 1
        keys = {card.alert.id: card.alert.dedup_key for card in cards}
        message_id = await self._call_post(deliverer, platform, chat, reply, unit.items, keys)
        group = unit.ids[0] if len(unit.items) > 1 else None
        self.outbox.mark_sent(unit.ids, message_id, group_id=group, content_hash=content_hash(reply))
        self.stats.posts += 1
        self.stats.digests += 1 if group is not None else 0

    async def _edit_alert(self, deliverer: Deliverer, platform: str, chat: str, item: OutboxItem) -> None:
        assert item.alert_id is not None
        post = self.outbox.post_of_alert(item.alert_id)
        if post is None or post[0] in (OutboxStatus.PENDING, OutboxStatus.SENDING):
            # Not posted yet: the post is rendered when it is sent and will show the new state.
            self.outbox.mark_done(item.id, OutboxStatus.SUPERSEDED, "the post is not sent yet")
            return
        _status, message = post
        if message is None:  # the post failed for good: the change still has to reach the chat
            reply = self._render([item.alert_id], digest=False)
            if reply is None:
                self.outbox.mark_failed([item.id], "the alert is not in the store", count_attempt=False)
                return
            message_id = await self._call_post(deliverer, platform, chat, reply, [item])
            self.outbox.mark_sent([item.id], message_id, content_hash=content_hash(reply))
            self.stats.posts += 1
            return
        changed = await self._refresh(deliverer, platform, chat, message)
        self.outbox.mark_sent([item.id], message.message_id)
        if not changed:
            self.stats.skipped_edits += 1

    async def _edit_incident(self, deliverer: Deliverer, platform: str, chat: str, item: OutboxItem) -> None:
        assert item.incident_id is not None
        alert_ids = self.incidents.alert_ids(item.incident_id)
        for message in self.outbox.messages_of_incident(item.incident_id, alert_ids):
            await self._refresh(deliverer, platform, chat, message)
        self.outbox.mark_done(item.id, OutboxStatus.SENT)

    async def _refresh(self, deliverer: Deliverer, platform: str, chat: str, message: SentMessage) -> bool:
        """Edit a sent message to the current state of its alerts, unless it already shows it."""
        reply = self._render(message.alert_ids, digest=len(message.alert_ids) > 1)
        if reply is None:
            return False
        digest = content_hash(reply)
        if digest == message.content_hash:
            return False
        await self._call_edit(deliverer, platform, message.chat, message.message_id, reply)
        self.outbox.set_content_hash(message.lead_id, digest)
        self.stats.edits += 1
        return True

    async def _notice(self, deliverer: Deliverer, platform: str, chat: str, item: OutboxItem) -> None:
        payload = item.payload
        if payload.get("type") == "ops":
            ops_reply = Reply((Text(str(payload.get("text", ""))),))
            ops_id = await self._call_post(deliverer, platform, chat, ops_reply, [item])
            self.outbox.mark_sent([item.id], ops_id, content_hash=content_hash(ops_reply))
            self.stats.posts += 1
            return
        if payload.get("type") != "escalation" or item.incident_id is None:
            self.outbox.mark_failed([item.id], f"unknown notice {payload.get('type')!r}", count_attempt=False)
            return
        incident = self.incidents.get(item.incident_id)
        notice = EscalationNotice(
            incident=incident,
            level=int(str(payload.get("level", 1))),
            oncall_key=str(payload.get("oncall_key", "")),
            oncall_name=str(payload.get("oncall_name", "")),
            open_minutes=int(str(payload.get("open_minutes", 0))),
        )
        reply = Reply((notice,), actions=incident_actions(incident, incident.address, incident.chain))
        message_id = await self._call_post(deliverer, platform, chat, reply, [item])
        self.outbox.mark_sent([item.id], message_id, content_hash=content_hash(reply))
        self.stats.posts += 1


# -- deliverers over what exists today -----------------------------------------------------------------------


class ConsoleDeliverer:
    """Prints alerts to a stream (the console front end and `chainsleuth watch` without a chat platform)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._count = 0

    async def post(self, chat_id: str, reply: Reply) -> str:
        self._count += 1
        self.stream.write(f"[{chat_id} #{self._count}]\n{render_text(reply)}\n\n")
        self.stream.flush()
        return str(self._count)

    async def edit(self, chat_id: str, message_id: str, reply: Reply) -> None:
        self.stream.write(f"[{chat_id} #{message_id} updated]\n{render_text(reply)}\n\n")
        self.stream.flush()


class BackendDeliverer:
    """A `Deliverer` over a chat backend's `send` (and `edit`, when it has one; otherwise an update is posted as a
    new message). Platform exceptions are sorted into `RateLimited` and `DeliveryError` by `classify`.

    A backend with `find_posted` (Slack) marks its posts (`send(..., marker=)`) and finds them again; for one without
    (Telegram: a bot cannot read a chat's history) `find_posted` raises `PostLookupUnavailable`, and an interrupted
    post is re-sent flagged."""

    def __init__(self, backend: object) -> None:
        self.backend = backend

    @property
    def finds_posts(self) -> bool:
        return getattr(self.backend, "find_posted", None) is not None

    async def post_marked(self, chat_id: str, reply: Reply, marker: PostMarker) -> str:
        if not self.finds_posts:
            return await self.post(chat_id, reply)
        try:
            return str(await self.backend.send(chat_id, reply, marker=marker))  # type: ignore[attr-defined]
        except Exception as exc:
            raise classify(exc) from exc

    async def find_posted(self, chat_id: str, marker: PostMarker, since: datetime) -> list[FoundPost]:
        find = getattr(self.backend, "find_posted", None)
        if find is None:
            platform = getattr(self.backend, "platform", "this platform")
            raise PostLookupUnavailable(f"{platform} gives a bot no way to read a chat's history")
        return list(await find(chat_id, marker, since))

    async def post(self, chat_id: str, reply: Reply) -> str:
        try:
            return str(await self.backend.send(chat_id, reply))  # type: ignore[attr-defined]
        except Exception as exc:
            raise classify(exc) from exc

    async def edit(self, chat_id: str, message_id: str, reply: Reply) -> None:
        edit = getattr(self.backend, "edit", None)
        try:
            if edit is not None:
                await edit(chat_id, message_id, reply)
            else:
                await self.backend.send(chat_id, reply)  # type: ignore[attr-defined]
        except Exception as exc:
            raise classify(exc) from exc


def lookup_error(exc: BaseException) -> str:
    """A short reason for a failed history look-up: Slack's error code (and the scope it needs), else the exception."""
    response = getattr(exc, "response", None)
    get = getattr(response, "get", None)
    error = get("error") if callable(get) else None
    if error:
        needed = get("needed") if callable(get) else None
        return f"{error}" + (f", needs {needed}" if needed else "")
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"


NEVER_SENT = frozenset(
    {
        # aiohttp (slack_sdk): no connection was made (refused, DNS, TLS handshake, connect time-out)
        "ClientConnectorError",
        "ConnectionTimeoutError",
        # httpx (python-telegram-bot): the same, and no free connection in the pool
        "ConnectError",
        "ConnectTimeout",
        "PoolTimeout",
        "UnsupportedProtocol",
        # the socket layer
        "ConnectionRefusedError",
        "gaierror",
    }
)
"""Exception classes (by name, anywhere in the class hierarchy or the `raise … from` chain) that say the request
never left: the message is certainly not on the platform."""
NETWORK = frozenset({"NetworkError", "TimedOut", "ClientError", "HTTPError", "OSError", "TimeoutError"})


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def never_sent(exc: BaseException) -> bool:
    """Whether `exc` (or what it was raised from) says the request never reached the platform."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _names(current) & NEVER_SENT:
            return True
        current = current.__cause__
    return False


def classify(exc: BaseException) -> RateLimited | DeliveryError:
    """Sort a platform library's exception: flood control → RateLimited; a refusal (4xx: bad request, forbidden,
    chat not found) → permanent; a network failure before the request left (refused, DNS, connect time-out) →
    transient, certainly not posted; anything whose outcome is unknown (a read time-out, the connection lost after
    sending, a 5xx, an unknown network error) → transient and `maybe_sent`."""
    if isinstance(exc, RateLimited | DeliveryError):
        return exc
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:  # python-telegram-bot's RetryAfter (seconds, or a timedelta in newer versions)
        seconds = retry_after.total_seconds() if isinstance(retry_after, timedelta) else float(retry_after)
        return RateLimited(seconds, str(exc))
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int):  # slack_sdk's SlackApiError carries the HTTP response
        if status == 429:
            headers = getattr(response, "headers", {}) or {}
            return RateLimited(float(headers.get("Retry-After", headers.get("retry-after", 1))), str(exc))
        if status >= 500:  # the platform failed somewhere in handling it: it may have posted first
            return DeliveryError(str(exc), transient=True, maybe_sent=True)
        return DeliveryError(str(exc), transient=False)  # refused (a 4xx, or Slack's 200 with ok: false)
    name = type(exc).__name__
    if name in ("BadRequest", "Forbidden", "InvalidToken", "ChatMigrated", "Conflict"):
        return DeliveryError(f"{name}: {exc}", transient=False)
    if never_sent(exc):
        return DeliveryError(f"{name}: {exc}", transient=True, maybe_sent=False)
    # python-telegram-bot raises NetworkError for a 5xx too (no cause), and for any httpx error (from it).
    transient = bool(_names(exc) & NETWORK)
    return DeliveryError(f"{name}: {exc}", transient=transient, maybe_sent=True)
