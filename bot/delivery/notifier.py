"""The notifier: drains the outbox into chats through each platform's `Backend` (`send`, `edit`, `history`).

Per chat it keeps the platform's limits (`pacing`), honours `RateLimited(retry_after)`, backs off
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
went out, a 5xx — is in the same doubt (`Outcome.IN_DOUBT`, as each backend sorts its platform's failures), and is
retried the same way; a failure that certainly posted nothing (no connection made, a 429, a 4xx refusal) is retried
or given up plainly. The platform clients do not re-send on their own (see the backends), so these are the only
re-sends there are.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import secrets
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal

from bot.backends.base import Backend, FoundPost, PostMarker
from bot.backends.errors import DeliveryError, HistoryUnavailable, RateLimited
from bot.delivery.pacing import PLATFORM_LIMITS, ChatPacer, RateLimits
from bot.messages import Reply, Text
from bot.render.alerts import POSSIBLE_REPEAT, AlertCard, EscalationCard, alert_reply, digest_reply, escalation_reply
from bot.render.text import render_text
from storage import STORE_FAULTS, Database, StoreUnavailable
from tracing import (
    Alert,
    AlertBook,
    Clock,
    EscalationNotice,
    IncidentDesk,
    NoticeError,
    OpsNotice,
    Outbox,
    OutboxItem,
    OutboxKind,
    OutboxStatus,
    PriceBook,
    PriceTable,
    SentMessage,
    SystemClock,
    Valuation,
    sleep_or_stop,
)

log = logging.getLogger(__name__)
RECOVERY_MARGIN = timedelta(minutes=5)
"""How far before a row became ready a look-up for its interrupted post starts (clock skew with the platform)."""
RECOVERABLE_KINDS = frozenset({OutboxKind.ALERT, OutboxKind.NOTICE})


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
        backends: Mapping[str, Backend],
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
        self.backends = dict(backends)
        self.clock = clock or SystemClock()
        self.pacer = ChatPacer(PLATFORM_LIMITS if limits is None else limits, self.clock)
        self.outbox = Outbox(db, self.clock)
        self.alerts = AlertBook(db)
        self.prices = PriceBook(db, check_interval=60.0)
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
        self._store_fault = False

    async def run(self, stop: asyncio.Event, *, idle: float = 1.0) -> None:
        """Drain until `stop` is set, pausing `idle` seconds whenever there was nothing to send."""
        while not stop.is_set():
            try:
                sent = await self.drain_once()
                self._store_fault = False
            except StoreUnavailable as fault:  # logged once until a round works again: not a line a second
                if not self._store_fault:
                    ref = secrets.token_hex(4)
                    log.error("notifier paused (ref %s): %s; retrying every %.0fs", ref, fault, idle)
                    STORE_FAULTS.note(fault, ref, "the notifier")
                self._store_fault = True
                sent = 0
            except Exception:  # a store hiccup must not end delivery; the next round retries
                log.exception("notifier round failed")
                sent = 0
            if not sent and await sleep_or_stop(self.clock, idle, stop):
                return

    async def drain_once(self) -> int:
        """Claim what is ready and deliver it; returns the outbox rows settled (sent, skipped or failed)."""
        items = self.outbox.claim(
            self.worker, platforms=list(self.backends), limit=self.batch, per_chat=self.per_chat, lease=self.lease
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
        if not doubtful:
            return queue, 0
        ids = [item.id for item in doubtful]
        history = self.backends[platform].history
        if history is None:
            log.info(
                "%s chat %s: outbox %s interrupted mid-send; %s gives a bot no way to read a chat's history, "
                "so re-sending flagged",
                platform,
                chat,
                ids,
                platform,
            )
            return queue, 0
        marker = self._marker(doubtful)
        since = min(item.ready_at or item.created_at for item in doubtful) - RECOVERY_MARGIN
        try:
            found: list[FoundPost] = await asyncio.wait_for(
                history.find_posted(chat, marker, since), self.lookup_timeout
            )
        except Exception as exc:
            log.warning(
                "%s chat %s: outbox %s interrupted mid-send and the chat's history could not be checked (%s); "
                "re-sending flagged as possible repeats",
                platform,
                chat,
                ids,
                lookup_failure(exc),
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
        backend = self.backends[platform]
        settled = 0
        for index, unit in enumerate(units):
            # Still in doubt from an earlier attempt (interrupted, and the platform could not be asked): a failure
            # now that certainly did not post leaves that doubt as it was, so the row must stay `interrupted`.
            doubtful = unit.first.kind in RECOVERABLE_KINDS and any(item.interrupted for item in unit.items)
            try:
                await self._send(backend, platform, chat, unit)
                settled += len(unit.items)
            except RateLimited as exc:
                self.stats.rate_limited += 1
                self.pacer.hold(platform, chat, exc.retry_after)
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
                else:  # the store's surprise (or a backend's): nobody can say whether the post went out
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
        backend: Backend,
        platform: str,
        chat: str,
        reply: Reply,
        items: Sequence[OutboxItem],
        keys: Mapping[int, str] | None = None,
    ) -> str:
        """Post, marked with its outbox rows where the platform can find posts again (so a crash can be recovered
        from)."""
        await self.pacer.acquire(platform, chat)
        marker = self._marker(items, keys) if backend.history is not None else None
        return str(await backend.send(chat, reply, marker=marker))

    async def _call_edit(self, backend: Backend, platform: str, chat: str, message_id: str, reply: Reply) -> None:
        await self.pacer.acquire(platform, chat)
        await backend.edit(chat, message_id, reply)

    async def _send(self, backend: Backend, platform: str, chat: str, unit: _Unit) -> None:
        item = unit.first
        if item.kind is OutboxKind.ALERT:
            await self._post_alerts(backend, platform, chat, unit)
        elif item.kind is OutboxKind.ALERT_EDIT:
            await self._edit_alert(backend, platform, chat, item)
        elif item.kind is OutboxKind.INCIDENT_EDIT:
            await self._edit_incident(backend, platform, chat, item)
        elif item.kind is OutboxKind.NOTICE:
            await self._notice(backend, platform, chat, item)

    def _cards(self, alert_ids: Sequence[int]) -> list[AlertCard]:
        alerts = self.alerts.many(alert_ids)
        incidents = self.incidents.many([a.incident_id for a in alerts if a.incident_id is not None])
        table = self.prices.table()
        return [
            AlertCard(a, incidents.get(a.incident_id) if a.incident_id else None, _usd_of(a, table)) for a in alerts
        ]

    def _render(self, alert_ids: Sequence[int], *, digest: bool) -> Reply | None:
        cards = self._cards(alert_ids)
        if not cards:
            return None
        return digest_reply(cards) if digest or len(cards) > 1 else alert_reply(cards[0])

    async def _post_alerts(self, backend: Backend, platform: str, chat: str, unit: _Unit) -> None:
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
        message_id = await self._call_post(backend, platform, chat, reply, unit.items, keys)
        group = unit.ids[0] if len(unit.items) > 1 else None
        self.outbox.mark_sent(unit.ids, message_id, group_id=group, content_hash=content_hash(reply))
        self.stats.posts += 1
        self.stats.digests += 1 if group is not None else 0

    async def _edit_alert(self, backend: Backend, platform: str, chat: str, item: OutboxItem) -> None:
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
            message_id = await self._call_post(backend, platform, chat, reply, [item])
            self.outbox.mark_sent([item.id], message_id, content_hash=content_hash(reply))
            self.stats.posts += 1
            return
        changed = await self._refresh(backend, platform, chat, message)
        self.outbox.mark_sent([item.id], message.message_id)
        if not changed:
            self.stats.skipped_edits += 1

    async def _edit_incident(self, backend: Backend, platform: str, chat: str, item: OutboxItem) -> None:
        assert item.incident_id is not None
        alert_ids = self.incidents.alert_ids(item.incident_id)
        for message in self.outbox.messages_of_incident(item.incident_id, alert_ids):
            await self._refresh(backend, platform, chat, message)
        self.outbox.mark_done(item.id, OutboxStatus.SENT)

    async def _refresh(self, backend: Backend, platform: str, chat: str, message: SentMessage) -> bool:
        """Edit a sent message to the current state of its alerts, unless it already shows it."""
        reply = self._render(message.alert_ids, digest=len(message.alert_ids) > 1)
        if reply is None:
            return False
        digest = content_hash(reply)
        if digest == message.content_hash:
            return False
        await self._call_edit(backend, platform, message.chat, message.message_id, reply)
        self.outbox.set_content_hash(message.lead_id, digest)
        self.stats.edits += 1
        return True

    async def _notice(self, backend: Backend, platform: str, chat: str, item: OutboxItem) -> None:
        try:
            notice = item.notice()
        except NoticeError as exc:
            self.outbox.mark_failed([item.id], str(exc), count_attempt=False)
            return
        if isinstance(notice, OpsNotice):
            ops_reply = Reply((Text(notice.text),))
            ops_id = await self._call_post(backend, platform, chat, ops_reply, [item])
            self.outbox.mark_sent([item.id], ops_id, content_hash=content_hash(ops_reply))
            self.stats.posts += 1
            return
        if item.incident_id is None:
            self.outbox.mark_failed([item.id], "unknown notice 'escalation'", count_attempt=False)
            return
        reply = escalation_reply(self._escalation(item.incident_id, notice))
        message_id = await self._call_post(backend, platform, chat, reply, [item])
        self.outbox.mark_sent([item.id], message_id, content_hash=content_hash(reply))
        self.stats.posts += 1

    def _escalation(self, incident_id: int, notice: EscalationNotice) -> EscalationCard:
        return EscalationCard(
            incident=self.incidents.get(incident_id),
            level=notice.level,
            oncall_key=notice.oncall_key,
            oncall_name=notice.oncall_name,
            open_minutes=notice.open_minutes,
        )


def lookup_failure(exc: BaseException) -> str:
    """A short reason for a failed history look-up."""
    if isinstance(exc, HistoryUnavailable):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"


def _usd_of(alert: Alert, table: PriceTable) -> Decimal | None:
    """The alert's moved amount in USD on its transfer's day, from the stored daily prices (and the stablecoin
    peg); None where there is no price."""
    if alert.value is None or alert.timestamp is None:
        return None
    decimals = alert.decimals or 18 if alert.token is None else alert.decimals
    return Valuation(alert.chain, {}, table).usd(alert.token, alert.value, alert.timestamp, decimals)
