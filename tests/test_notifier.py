"""The notifier against a scripted fake platform: rate limits (429 retry_after) and transient errors for a while
lose nothing, double nothing, keep each chat's order and the platform limits; bursts become digests; messages are
edited in place when the alert or its incident changes; what fails for good stays visible. A post interrupted by
a crash is found again on Slack (message metadata, conversations.history) instead of being re-sent, and re-sent
flagged as a possible repeat where the platform cannot be asked. A post whose answer was lost (the connection dropped
after sending, a 500, a time-out) is treated the same way, and the clients do not re-send it on their own; a post
that certainly never left (connection refused) is simply retried."""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bot.app import App
from bot.backends import slack_history
from bot.backends.base import FoundPost, PostMarker
from bot.backends.errors import DeliveryError, Outcome, RateLimited
from bot.backends.slack import SlackBackend
from bot.backends.slack import delivery_error as slack_delivery_error
from bot.backends.telegram import TelegramBackend
from bot.backends.telegram import delivery_error as telegram_delivery_error
from bot.backends.testing import TestBackend
from bot.delivery.notifier import Notifier
from bot.delivery.pacing import RateLimits
from bot.messages import Reply, Text
from bot.render.alerts import POSSIBLE_REPEAT
from bot.render.text import render_text
from storage.db import Database
from storage.ops_models import AlertRow
from tests.support.slack_server import ApiCall, FakeSlack
from tests.support.telegram_server import TOKEN, FakeTelegram
from tracing.chain.address import checksum
from tracing.chain.prices import PriceBook, day_of
from tracing.monitor import Actor, Disposition, Escalator, IncidentDesk, OnCallBook
from tracing.monitor.alerts import AlertBook, AlertStatus, record_alert, set_status
from tracing.monitor.clock import ManualClock
from tracing.monitor.outbox import Outbox, OutboxStatus, outbox_stats
from tracing.monitor.watch import WatchBook

W = "0x" + "a1" * 20
X = "0x" + "b2" * 20
OLGA = Actor("telegram:7", "olga", "telegram")

Failure = Callable[[str, str, int, datetime], Exception | None]


@dataclass(frozen=True)
class Call:
    at: datetime
    op: str
    chat: str
    message_id: str
    text: str
    ok: bool


class FakePlatform:
    """A backend that records every call; `fail(op, chat, nth call to that chat, now)` may return an exception to
    raise. It cannot find its posts again (no `history`), like Telegram."""

    history = None

    def __init__(self, clock: ManualClock, fail: Failure | None = None) -> None:
        self.clock = clock
        self.fail = fail or (lambda op, chat, n, now: None)
        self.calls: list[Call] = []
        self.messages: dict[str, tuple[str, str]] = {}

    def _attempt(self, op: str, chat: str, message_id: str, reply: Reply) -> None:
        nth = sum(1 for c in self.calls if c.chat == chat)
        error = self.fail(op, chat, nth, self.clock.now())
        self.calls.append(Call(self.clock.now(), op, chat, message_id, render_text(reply), error is None))
        if error is not None:
            raise error

    async def send(self, chat_id: str, reply: Reply, *, marker: PostMarker | None = None) -> str:
        self._attempt("post", chat_id, "", reply)
        message_id = f"m{len(self.messages) + 1}"
        self.messages[message_id] = (chat_id, render_text(reply))
        return message_id

    async def edit(self, chat_id: str, message_id: str, reply: Reply) -> None:
        assert self.messages[message_id][0] == chat_id
        self._attempt("edit", chat_id, message_id, reply)
        self.messages[message_id] = (chat_id, render_text(reply))

    def ok(self, op: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.ok and (op is None or c.op == op)]


def tx(n: int) -> str:
    return "0x" + f"{n:064x}"


def make_alerts(
    db: Database,
    clock: ManualClock,
    chat: str,
    count: int,
    first_tx: int,
    address: str = W,
    *,
    platform: str = "telegram",
) -> list[int]:
    """`count` movement alerts (tx first_tx, first_tx + 1, ...) for a watch posting to `chat`."""
    watch, _ = WatchBook(db).watch(
        chain="eth", address=address, platform=platform, chat=chat, channel=True, created_by=f"{platform}:7"
    )
    ids = []
    with db.session() as session:
        for n in range(first_tx, first_tx + count):
            row = AlertRow(
                dedup_key=f"tx:eth:{tx(n)}:native:tx:w{watch.id}",
                kind="movement",
                status="provisional",
                watch_id=watch.id,
                platform=platform,
                chat=chat,
                chain="eth",
                address=address,
                direction="out",
                counterparty=X,
                tx_hash=tx(n),
                transfer_kind="native",
                position="tx",
                block_number=n,
                block_hash="0x" + "11" * 32,
                timestamp=1_700_000_000,
                value=10**18,
                reasons=["any movement in or out"],
            )
            alert = record_alert(session, row, clock.now())
            assert alert is not None
            ids.append(alert.id)
    return ids


async def drain(notifier: Notifier, db: Database, clock: ManualClock, rounds: int = 2000) -> None:
    """Run the notifier until the outbox is empty, letting (virtual) time pass while messages wait."""
    for _ in range(rounds):
        stats = outbox_stats(db)
        if stats.pending == 0 and stats.sending == 0:
            return
        if await notifier.drain_once() == 0:
            clock.advance(seconds=1)
    raise AssertionError(f"outbox not drained: {outbox_stats(db)}")


def tx_order(calls: Sequence[Call]) -> list[int]:
    order = []
    for call in calls:
        for word in call.text.split():
            if word.startswith("0x") and len(word) == 66:
                order.append(int(word, 16))
    return order


def check_limits(calls: Sequence[Call], groups: Sequence[str]) -> None:
    by_chat: dict[str, list[datetime]] = defaultdict(list)
    for call in calls:
        by_chat[call.chat].append(call.at)
    for chat, times in by_chat.items():
        gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
        assert min(gaps, default=1.0) >= 1.0, f"two messages to {chat} within a second"
        if chat in groups:
            for i in range(len(times) - 20):
                assert times[i + 20] - times[i] >= timedelta(seconds=60), f"more than 20 a minute to {chat}"
    everything = sorted(c.at for c in calls)
    for i in range(len(everything) - 30):
        assert everything[i + 30] - everything[i] >= timedelta(seconds=1), "more than 30 a second overall"


async def test_rate_limits_and_transient_errors_lose_nothing_and_keep_order(db: Database) -> None:
    clock = ManualClock()
    start = clock.now()
    groups = ["-1", "-2"]
    created = {
        "-1": make_alerts(db, clock, "-1", 25, 1000),
        "-2": make_alerts(db, clock, "-2", 6, 2000, address=X),
        "42": make_alerts(db, clock, "42", 4, 3000, address="0x" + "c3" * 20),
    }

    def fail(op: str, chat: str, nth: int, now: datetime) -> Exception | None:
        elapsed = (now - start).total_seconds()
        if chat == "-1" and nth == 0:
            return RateLimited(7)
        if chat == "-1" and nth == 3:
            return RateLimited(30)
        if elapsed < 90 and chat == "-2" and nth % 2 == 0:
            return DeliveryError("502 Bad Gateway", Outcome.NOT_SENT)
        if elapsed < 20 and chat == "42":
            return DeliveryError("connection reset", Outcome.NOT_SENT)
        return None

    platform = FakePlatform(clock, fail)
    notifier = Notifier(db, {"telegram": platform}, clock=clock, jitter=lambda: 0.0, digest_threshold=10_000)
    await drain(notifier, db, clock)

    stats = outbox_stats(db)
    assert (stats.sent, stats.failed, stats.pending) == (35, 0, 0)
    for chat, ids in created.items():
        delivered = tx_order([c for c in platform.ok("post") if c.chat == chat])
        first = {"-1": 1000, "-2": 2000, "42": 3000}[chat]
        assert delivered == list(range(first, first + len(ids))), f"order or count wrong in {chat}"
    check_limits(platform.calls, groups)
    rate_limited = [c for c in platform.calls if c.chat == "-1" and not c.ok]
    after_first = [c for c in platform.calls if c.chat == "-1" and c.at > rate_limited[0].at]
    assert (after_first[0].at - rate_limited[0].at) >= timedelta(seconds=7)  # retry_after honoured
    assert notifier.stats.rate_limited == 2 and notifier.stats.retries > 0


async def test_a_message_failing_for_good_stays_visible_and_does_not_block_its_chat(db: Database) -> None:
    clock = ManualClock()
    ids = make_alerts(db, clock, "-5", 2, 1)

    def fail(op: str, chat: str, nth: int, now: datetime) -> Exception | None:
        return DeliveryError("400 Bad Request: message is too long", Outcome.REFUSED) if nth == 0 else None

    platform = FakePlatform(clock, fail)
    notifier = Notifier(db, {"telegram": platform}, clock=clock, jitter=lambda: 0.0)
    await drain(notifier, db, clock)
    stats = outbox_stats(db)
    assert (stats.sent, stats.failed) == (1, 1)
    assert "message is too long" in stats.recent_failures[0].last_error
    assert tx_order(platform.ok("post")) == [2]
    # the lost message's alert changes later: the change still reaches the chat, as a new message
    with db.session() as session:
        row = session.get(AlertRow, ids[0])
        assert row is not None
        set_status(session, row, AlertStatus.CONFIRMED, clock.now())
    await drain(notifier, db, clock)
    assert [c.op for c in platform.ok()] == ["post", "post"]
    assert tx_order(platform.ok()[-1:]) == [1] and "confirmed" in platform.ok()[-1].text


async def test_transient_errors_give_up_after_the_attempts_and_can_be_requeued(db: Database) -> None:
    clock = ManualClock()
    make_alerts(db, clock, "-5", 1, 1)
    down = True

    def fail(op: str, chat: str, nth: int, now: datetime) -> Exception | None:
        return DeliveryError("503", Outcome.NOT_SENT) if down else None

    platform = FakePlatform(clock, fail)
    notifier = Notifier(db, {"telegram": platform}, clock=clock, jitter=lambda: 0.0, max_attempts=4, backoff=1)
    await drain(notifier, db, clock)
    assert len(platform.calls) == 4
    gaps = [(b.at - a.at).total_seconds() for a, b in zip(platform.calls, platform.calls[1:], strict=False)]
    assert gaps == sorted(gaps) and gaps[0] >= 1 and gaps[-1] >= 4  # exponential back-off
    assert outbox_stats(db).failed == 1
    down = False
    assert notifier.outbox.requeue_failed() == 1
    await drain(notifier, db, clock)
    assert outbox_stats(db).failed == 0 and len(platform.ok("post")) == 1


async def test_a_burst_is_one_digest_and_state_changes_edit_it_in_place(db: Database) -> None:
    clock = ManualClock()
    ids = make_alerts(db, clock, "-7", 5, 1)
    chat = TestBackend(platform="telegram")
    notifier = Notifier(db, {"telegram": chat}, clock=clock, digest_threshold=3)
    await drain(notifier, db, clock)
    digest = chat.pop()
    assert chat.delivered == []
    assert not digest.edit and "5 alerts on watched addresses" in digest.text
    assert digest.text.count("provisional") == 5

    with db.session() as session:
        for alert_id in ids:  # five confirmations: five edit rows, one edit of the one message
            row = session.get(AlertRow, alert_id)
            assert row is not None
            set_status(session, row, AlertStatus.CONFIRMED, clock.now())
    await drain(notifier, db, clock)
    edit = chat.pop()
    assert chat.delivered == []
    assert edit.edit and edit.message_id == digest.message_id
    assert edit.text.count("confirmed") == 5
    assert notifier.stats.skipped_edits == 4


async def test_alert_message_shows_ack_and_resolution(db: Database) -> None:
    clock = ManualClock()
    (alert_id,) = make_alerts(db, clock, "-9", 1, 1)
    chat = TestBackend(platform="telegram")
    notifier = Notifier(db, {"telegram": chat}, clock=clock)
    await drain(notifier, db, clock)
    post = chat.pop()
    assert chat.delivered == [] and not post.edit
    assert "Incident #1: open, not acknowledged" in post.text
    assert "/ack 1" in post.text and "/resolve 1" in post.text and f"/trace {W} --chain eth" in post.text

    desk = IncidentDesk(db, clock)
    desk.ack(1, OLGA)
    await drain(notifier, db, clock)
    acked = chat.delivered[-1]
    assert acked.edit and acked.message_id == post.message_id  # the post, edited in place
    assert "acknowledged by olga" in acked.text and "/ack 1" not in acked.text

    desk.resolve(1, OLGA, Disposition.TRUE_POSITIVE, "reported to FIU")
    with db.session() as session:
        row = session.get(AlertRow, alert_id)
        assert row is not None
        set_status(session, row, AlertStatus.REORGED_OUT, clock.now())
    await drain(notifier, db, clock)
    final = chat.shown(post.message_id)
    assert "resolved as true positive by olga" in final and "reorged out" in final
    assert all(d.edit for d in chat.delivered)  # everything after the post was an edit of it


async def test_alert_amounts_carry_usd_on_the_transfer_day_or_say_there_is_none(db: Database) -> None:
    clock = ManualClock()
    make_alerts(db, clock, "-9", 1, 1)  # 1 ETH on 2023-11-14 (timestamp 1,700,000,000)
    chat = TestBackend(platform="telegram")
    notifier = Notifier(db, {"telegram": chat}, clock=clock)
    await drain(notifier, db, clock)
    assert f"Sent 1 ETH (no USD price) to {checksum(X)}" in chat.pop().text  # no price stored: none is guessed

    PriceBook(db).store([("ETH", day_of(1_700_000_000), Decimal("2045.5"))], "test")
    make_alerts(db, clock, "-8", 1, 2)
    fresh = Notifier(db, {"telegram": chat}, clock=clock)
    await drain(fresh, db, clock)
    assert f"Sent 1 ETH ($2,046) to {checksum(X)}" in chat.pop().text


async def test_a_change_before_the_post_is_sent_is_shown_by_the_post(db: Database) -> None:
    clock = ManualClock()
    (alert_id,) = make_alerts(db, clock, "-9", 1, 1)
    with db.session() as session:
        row = session.get(AlertRow, alert_id)
        assert row is not None
        set_status(session, row, AlertStatus.CONFIRMED, clock.now())
    chat = TestBackend(platform="telegram")
    notifier = Notifier(db, {"telegram": chat}, clock=clock)
    await drain(notifier, db, clock)
    post = chat.pop()
    assert chat.delivered == [] and not post.edit
    assert "confirmed" in post.text
    assert outbox_stats(db).sent == 2 and notifier.stats.skipped_edits == 1  # the edit had nothing to add


async def test_escalation_notice_mentions_the_oncall_officer(db: Database) -> None:
    clock = ManualClock()
    make_alerts(db, clock, "-9", 1, 1)
    OnCallBook(db, clock).set_oncall("telegram", "-9", 1, "telegram:@alice", "alice", OLGA)
    chat = TestBackend(platform="telegram")
    notifier = Notifier(db, {"telegram": chat}, clock=clock)
    await drain(notifier, db, clock)
    chat.pop()  # the alert
    clock.advance(minutes=15)
    assert len(Escalator(db, clock).escalate_due()) == 1
    await drain(notifier, db, clock)
    notice = chat.pop()
    assert chat.delivered == [] and not notice.edit
    assert "escalated to level 1: @alice" in notice.text and "/ack 1" in notice.text


async def test_only_platforms_with_a_backend_are_claimed(db: Database) -> None:
    clock = ManualClock()
    make_alerts(db, clock, "-9", 1, 1)
    notifier = Notifier(db, {"slack": FakePlatform(clock)}, clock=clock)
    assert await notifier.drain_once() == 0
    assert outbox_stats(db).pending == 1


@pytest.mark.parametrize(
    ("limits", "expected_gap"),
    [(RateLimits(per_chat=1.0), 1.0), (RateLimits(per_chat=0.0), 0.0)],
)
async def test_limiter_spacing(db: Database, limits: RateLimits, expected_gap: float) -> None:
    clock = ManualClock()
    make_alerts(db, clock, "-9", 3, 1)
    platform = FakePlatform(clock)
    notifier = Notifier(db, {"telegram": platform}, clock=clock, limits={"telegram": limits}, digest_threshold=99)
    await drain(notifier, db, clock)
    times = [c.at for c in platform.calls]
    assert [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)] == [expected_gap] * 2
    assert Counter(c.op for c in platform.calls) == {"post": 3}


def slack_error(status: int, headers: dict[str, str] | None = None) -> Exception:
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web.slack_response import SlackResponse

    response = SlackResponse(
        client=None,
        http_verb="POST",
        api_url="https://slack.test/api/chat.postMessage",
        req_args={},
        data={"ok": False, "error": "ratelimited" if status == 429 else "fatal_error"},
        headers=headers or {},
        status_code=status,
    )
    return SlackApiError("chat.postMessage failed", response)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_platform_errors_are_sorted_into_rate_limits_retries_and_give_ups() -> None:
    from telegram.error import BadRequest, RetryAfter, TimedOut

    # each platform's failures, sorted by its backend (and what either may see from the socket layer, by both)
    cases: list[tuple[BaseException, Callable[[BaseException], Exception], type[Exception], object]] = [
        (RetryAfter(12), telegram_delivery_error, RateLimited, 12.0),
        (slack_error(429, {"Retry-After": "30"}), slack_delivery_error, RateLimited, 30.0),
        (TimedOut(), telegram_delivery_error, DeliveryError, True),
        (slack_error(503), slack_delivery_error, DeliveryError, True),
        (ConnectionResetError("reset by peer"), telegram_delivery_error, DeliveryError, True),
        (ConnectionResetError("reset by peer"), slack_delivery_error, DeliveryError, True),
        (BadRequest("Chat not found"), telegram_delivery_error, DeliveryError, False),
        (slack_error(404), slack_delivery_error, DeliveryError, False),
    ]
    # (the outcome of each transient one: maybe posted, or certainly not)
    for error, delivery_error, kind, detail in cases:
        sorted_ = delivery_error(error)
        assert isinstance(sorted_, kind), error
        if isinstance(sorted_, RateLimited):
            assert sorted_.retry_after == detail
        else:
            assert isinstance(sorted_, DeliveryError) and sorted_.transient is detail


def raised_from(error: BaseException, cause: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_failure_after_the_request_left_is_maybe_posted_and_one_before_it_is_not() -> None:
    import aiohttp
    import httpx
    from telegram.error import BadRequest, NetworkError, TimedOut

    tg, sl = telegram_delivery_error, slack_delivery_error
    maybe = [
        (raised_from(TimedOut(), httpx.ReadTimeout("read")), tg),
        (
            raised_from(NetworkError("httpx.RemoteProtocolError: Server disconnected"), httpx.RemoteProtocolError("x")),
            tg,
        ),
        (NetworkError("Internal Server Error"), tg),  # PTB's 5xx
        (slack_error(500), sl),
        (aiohttp.ServerDisconnectedError(), sl),
        (ConnectionResetError("reset by peer"), tg),
        (ConnectionResetError("reset by peer"), sl),
        (TimeoutError(), tg),
        (TimeoutError(), sl),
    ]
    never = [
        (
            raised_from(
                NetworkError("httpx.ConnectError: refused"), httpx.ConnectError("All connection attempts failed")
            ),
            tg,
        ),
        (raised_from(TimedOut("Pool timeout"), httpx.PoolTimeout("pool")), tg),
        (raised_from(TimedOut(), httpx.ConnectTimeout("connect")), tg),
        (ConnectionRefusedError("refused"), tg),
        (ConnectionRefusedError("refused"), sl),
        (aiohttp.ConnectionTimeoutError("connect"), sl),
    ]
    for error, delivery_error in maybe:
        sorted_ = delivery_error(error)
        assert isinstance(sorted_, DeliveryError) and sorted_.transient and sorted_.maybe_sent, error
    for error, delivery_error in never:
        sorted_ = delivery_error(error)
        assert isinstance(sorted_, DeliveryError) and sorted_.transient and not sorted_.maybe_sent, error
    for error, delivery_error in [
        (BadRequest("Chat not found"), telegram_delivery_error),
        (slack_error(403), slack_delivery_error),
        (slack_error(400), slack_delivery_error),
    ]:
        sorted_ = delivery_error(error)
        assert isinstance(sorted_, DeliveryError) and not sorted_.transient and not sorted_.maybe_sent, error


# -- a crash between "posted" and "marked sent" --------------------------------------------------------------

CHANNEL = "C0ALERTS"
LEASE = timedelta(seconds=30)


class Killed(BaseException):
    """The process dies (SIGKILL): nothing after this point runs, no handler sees it."""


def dies_before_marking_sent(notifier: Notifier) -> Notifier:
    def die(*args: object, **kwargs: object) -> None:
        raise Killed

    notifier.outbox.mark_sent = die  # type: ignore[method-assign]
    return notifier


@pytest.fixture
async def slack(app: App) -> AsyncIterator[tuple[FakeSlack, SlackBackend]]:
    """The recording Slack server and a send-only `SlackBackend` on it (as `chainsleuth watch` has)."""
    server = FakeSlack()
    await server.start()
    settings = app.settings.model_copy(update={"slack_bot_token": "xoxb-test", "slack_api_base_url": server.api_url})
    try:
        yield server, SlackBackend(app.bot, settings, send_only=True)
    finally:
        await server.stop()


def said(call: ApiCall) -> str:
    """Everything a Slack call carried, as readable text (the raw JSON body escapes "↻")."""
    return json.dumps(call.params, ensure_ascii=False)


def change(db: Database, clock: ManualClock, alert_id: int, status: AlertStatus) -> None:
    with db.session() as session:
        row = session.get(AlertRow, alert_id)
        assert row is not None
        set_status(session, row, status, clock.now())


async def test_a_slack_post_interrupted_before_it_was_marked_sent_is_found_and_not_posted_again(
    app: App, slack: tuple[FakeSlack, SlackBackend]
) -> None:
    server, backend = slack
    clock = ManualClock(datetime.now(UTC))  # Slack stamps messages with the real time
    (alert_id,) = make_alerts(app.db, clock, CHANNEL, 1, 1, platform="slack")
    dedup_key = AlertBook(app.db).many([alert_id])[0].dedup_key
    dying = dies_before_marking_sent(Notifier(app.db, {"slack": backend}, clock=clock, lease=LEASE))
    with pytest.raises(Killed):
        await dying.drain_once()
    [posted] = server.messages(CHANNEL)
    outbox_id = posted["metadata"]["event_payload"]["lead_id"]
    assert posted["metadata"] == {
        "event_type": "chainsleuth_outbox",
        "event_payload": {"lead_id": outbox_id, "rows": [{"outbox_id": outbox_id, "dedup_key": dedup_key}]},
    }
    assert outbox_stats(app.db).sending == 1  # on Slack, not marked sent

    clock.advance(seconds=LEASE.total_seconds() + 1)  # the dead process's lease runs out
    restarted = Notifier(app.db, {"slack": backend}, clock=clock, lease=LEASE)
    await drain(restarted, app.db, clock)
    assert len(server.sent("chat.postMessage")) == 1, "posted again"
    assert server.dedup_keys() == Counter({dedup_key: 1})
    [lookup] = server.sent("conversations.history")
    assert lookup.params["channel"] == CHANNEL and lookup.params["include_all_metadata"] in ("1", "true")
    assert float(lookup.params["oldest"]) < float(posted["ts"])
    assert (restarted.stats.recovered, restarted.stats.flagged, restarted.stats.posts) == (1, 0, 0)
    post = Outbox(app.db).post_of_alert(alert_id)
    assert post is not None and post[0] is OutboxStatus.SENT and post[1] is not None
    assert post[1].message_id == posted["ts"]

    # what happens to the alert later edits that very message
    change(app.db, clock, alert_id, AlertStatus.CONFIRMED)
    await drain(restarted, app.db, clock)
    change(app.db, clock, alert_id, AlertStatus.REORGED_OUT)
    await drain(restarted, app.db, clock)
    edits = server.sent("chat.update")
    assert [e.params["ts"] for e in edits] == [posted["ts"]] * 2
    assert "confirmed" in edits[0].text and "reorged out" in edits[1].text
    assert len(server.messages(CHANNEL)) == 1 and "reorged out" in server.messages(CHANNEL)[0]["text"]
    assert not any(POSSIBLE_REPEAT in said(c) for c in server.sent("chat.postMessage", "chat.update"))


async def test_a_change_made_while_a_slack_post_is_in_doubt_reaches_the_post_found_again(
    app: App, slack: tuple[FakeSlack, SlackBackend]
) -> None:
    """The alert is confirmed while its post is in doubt. The edit waits behind the post (a chat's rows are claimed
    in order, and the post's row is still leased), so it is neither dropped nor sent to a message not known yet: the
    post found again after the lease ends up showing "confirmed", with one edit."""
    server, backend = slack
    clock = ManualClock(datetime.now(UTC))
    (alert_id,) = make_alerts(app.db, clock, CHANNEL, 1, 1, platform="slack")
    dying = dies_before_marking_sent(Notifier(app.db, {"slack": backend}, clock=clock, lease=LEASE))
    with pytest.raises(Killed):
        await dying.drain_once()
    [posted] = server.messages(CHANNEL)
    assert "not yet confirmed" in posted["text"]

    live = Notifier(app.db, {"slack": backend}, clock=clock, lease=LEASE)
    change(app.db, clock, alert_id, AlertStatus.CONFIRMED)
    await live.drain_once()  # the edit waits: the post before it in the chat is still in doubt
    assert server.sent("chat.update") == [] and outbox_stats(app.db).sending == 1

    clock.advance(seconds=LEASE.total_seconds() + 1)
    await drain(live, app.db, clock)
    assert len(server.sent("chat.postMessage")) == 1 and live.stats.recovered == 1
    [edit] = server.sent("chat.update")  # the waiting edit, to the message found
    assert edit.params["ts"] == posted["ts"] and "not yet confirmed" not in edit.text
    assert "not yet confirmed" not in server.messages(CHANNEL)[0]["text"]

    await drain(live, app.db, clock)  # nothing changed since: the recovered post is not edited again
    assert len(server.sent("chat.update")) == 1


async def test_an_interrupted_slack_digest_is_found_whole_and_new_alerts_still_go_out(
    app: App, slack: tuple[FakeSlack, SlackBackend]
) -> None:
    server, backend = slack
    clock = ManualClock(datetime.now(UTC))
    ids = make_alerts(app.db, clock, CHANNEL, 3, 1, platform="slack")
    dying = dies_before_marking_sent(Notifier(app.db, {"slack": backend}, clock=clock, lease=LEASE))
    with pytest.raises(Killed):
        await dying.drain_once()
    [digest] = server.messages(CHANNEL)
    assert "3 alerts on watched addresses" in digest["text"]
    later = make_alerts(app.db, clock, CHANNEL, 1, 10, address=X, platform="slack")  # queued while it was down

    clock.advance(seconds=LEASE.total_seconds() + 1)
    restarted = Notifier(app.db, {"slack": backend}, clock=clock, lease=LEASE)
    await drain(restarted, app.db, clock)
    posts = server.sent("chat.postMessage")
    assert len(posts) == 2 and tx(10) in posts[1].text and tx(1) not in posts[1].text
    assert set(server.dedup_keys().values()) == {1} and len(server.dedup_keys()) == 4
    assert POSSIBLE_REPEAT not in said(posts[1])
    outbox = Outbox(app.db)
    for alert_id in ids:
        post = outbox.post_of_alert(alert_id)
        assert post is not None and post[1] is not None and post[1].message_id == digest["ts"]
        assert post[1].alert_ids == tuple(ids)
    post = outbox.post_of_alert(later[0])
    assert post is not None and post[1] is not None and post[1].message_id == posts[1].result["ts"]

    change(app.db, clock, ids[1], AlertStatus.CONFIRMED)
    await drain(restarted, app.db, clock)
    [edit] = server.sent("chat.update")
    assert edit.params["ts"] == digest["ts"] and "confirmed" in edit.text


async def test_a_slack_post_that_never_left_is_posted_without_the_repeat_warning(
    app: App, slack: tuple[FakeSlack, SlackBackend]
) -> None:
    server, backend = slack
    clock = ManualClock(datetime.now(UTC))
    make_alerts(app.db, clock, CHANNEL, 1, 1, platform="slack")
    assert len(Outbox(app.db, clock).claim("died-before-posting", platforms=["slack"], lease=LEASE)) == 1
    clock.advance(seconds=LEASE.total_seconds() + 1)
    notifier = Notifier(app.db, {"slack": backend}, clock=clock, lease=LEASE)
    await drain(notifier, app.db, clock)
    [post] = server.sent("chat.postMessage")
    assert POSSIBLE_REPEAT not in said(post) and len(server.sent("conversations.history")) == 1
    assert (notifier.stats.recovered, notifier.stats.flagged, notifier.stats.posts) == (0, 0, 1)


@pytest.mark.parametrize("failure", ["missing_scope", "private_channel", "not_in_channel", "server_error"])
async def test_when_slack_history_cannot_be_read_the_interrupted_post_is_re_sent_flagged(
    app: App, slack: tuple[FakeSlack, SlackBackend], failure: str, caplog: pytest.LogCaptureFixture
) -> None:
    server, backend = slack
    clock = ManualClock(datetime.now(UTC))
    make_alerts(app.db, clock, CHANNEL, 1, 1, platform="slack")
    dying = dies_before_marking_sent(Notifier(app.db, {"slack": backend}, clock=clock, lease=LEASE))
    with pytest.raises(Killed):
        await dying.drain_once()
    expected = {
        "missing_scope": "missing_scope, needs channels:history",
        "private_channel": "missing_scope, needs groups:history",
        "not_in_channel": "not_in_channel",
        "server_error": "internal_error",
    }[failure]
    if failure == "missing_scope":
        server.scopes.discard("channels:history")
    elif failure == "private_channel":
        server.private.add(CHANNEL)
        server.scopes.discard("groups:history")
    elif failure == "not_in_channel":
        server.not_in.add(CHANNEL)
    else:
        server.fail_next("conversations.history", 500, {}, {"ok": False, "error": "internal_error"})

    clock.advance(seconds=LEASE.total_seconds() + 1)
    restarted = Notifier(app.db, {"slack": backend}, clock=clock, lease=LEASE)
    with caplog.at_level(logging.WARNING, logger="bot.delivery.notifier"):
        await drain(restarted, app.db, clock)
    first, again = server.sent("chat.postMessage")
    assert POSSIBLE_REPEAT not in said(first) and POSSIBLE_REPEAT in said(again)
    assert (restarted.stats.recovered, restarted.stats.flagged) == (0, 1)
    assert any(expected in r.getMessage() and "re-sending flagged" in r.getMessage() for r in caplog.records)
    assert outbox_stats(app.db).failed == 0


async def test_where_the_platform_cannot_be_asked_an_interrupted_post_is_re_sent_flagged(db: Database) -> None:
    clock = ManualClock()
    make_alerts(db, clock, "-9", 1, 1)
    platform = FakePlatform(clock)
    dying = dies_before_marking_sent(Notifier(db, {"telegram": platform}, clock=clock, lease=LEASE))
    with pytest.raises(Killed):
        await dying.drain_once()
    clock.advance(seconds=LEASE.total_seconds() + 1)
    restarted = Notifier(db, {"telegram": platform}, clock=clock, lease=LEASE)
    await drain(restarted, db, clock)
    first, again = platform.ok("post")
    assert POSSIBLE_REPEAT not in first.text and again.text.startswith(POSSIBLE_REPEAT)
    assert (restarted.stats.recovered, restarted.stats.flagged) == (0, 1)


async def test_slack_history_is_paged_back_to_the_time_asked_and_gives_up_when_too_long(
    app: App, slack: tuple[FakeSlack, SlackBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, backend = slack
    since = datetime.now(UTC) - timedelta(seconds=5)
    wanted = PostMarker(((7, "key-7"), (8, "key-8")))
    ts = await backend.send(CHANNEL, Reply((Text("digest"),)), marker=wanted)
    for n in range(5):  # newer chatter, some of it ours for other rows
        other = PostMarker(((100 + n, "key-x"),)) if n % 2 else None
        await backend.send(CHANNEL, Reply((Text(f"chatter {n}"),)), marker=other)
    monkeypatch.setattr(slack_history, "PAGE_SIZE", 2)
    [found] = await backend.history.find_posted(CHANNEL, PostMarker(((8, "key-8"),)), since)
    assert found == FoundPost(ts, wanted)
    assert len(server.sent("conversations.history")) == 3  # newest first, two a page, back to the digest
    assert await backend.history.find_posted(CHANNEL, PostMarker(((8, "another key"),)), since) == []
    with pytest.raises(slack_history.HistoryTooLong):
        await slack_history.find_posted(backend.client, CHANNEL, wanted, since, max_pages=2)
    assert await backend.history.find_posted(CHANNEL, wanted, datetime.now(UTC) + timedelta(seconds=5)) == []


# -- a post whose answer was lost --------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["disconnect", "500", "stall"])
async def test_a_slack_post_whose_answer_was_lost_is_found_and_not_posted_again(
    app: App, slack: tuple[FakeSlack, SlackBackend], how: str
) -> None:
    server, backend = slack
    backend.client.timeout = 1  # "stall" answers after the client gave up
    clock = ManualClock(datetime.now(UTC))
    (alert_id,) = make_alerts(app.db, clock, CHANNEL, 1, 1, platform="slack")
    server.lose_next("chat.postMessage", how, stall=2.5)
    notifier = Notifier(app.db, {"slack": backend}, clock=clock, jitter=lambda: 0.0)
    await drain(notifier, app.db, clock)
    [posted] = server.messages(CHANNEL)
    assert len(server.sent("chat.postMessage")) == 1, "posted again (by the notifier or by slack_sdk's own retry)"
    assert len(server.sent("conversations.history")) == 1
    assert (notifier.stats.in_doubt, notifier.stats.recovered, notifier.stats.flagged) == (1, 1, 0)
    post = Outbox(app.db).post_of_alert(alert_id)
    assert post is not None and post[0] is OutboxStatus.SENT and post[1] is not None
    assert post[1].message_id == posted["ts"]

    change(app.db, clock, alert_id, AlertStatus.CONFIRMED)
    await drain(notifier, app.db, clock)
    [edit] = server.sent("chat.update")
    assert edit.params["ts"] == posted["ts"] and "confirmed" in edit.text
    assert len(server.messages(CHANNEL)) == 1 and "confirmed" in server.messages(CHANNEL)[0]["text"]


TG_CHAT = "-1001234"


@pytest.fixture
async def telegram(app: App) -> AsyncIterator[tuple[FakeTelegram, TelegramBackend]]:
    """The recording Bot API server and a send-only `TelegramBackend` (python-telegram-bot) on it."""
    server = FakeTelegram()
    await server.start()
    settings = app.settings.model_copy(update={"telegram_bot_token": TOKEN, "telegram_base_url": server.base_url})
    backend = TelegramBackend(app.bot, settings)
    await backend.application.initialize()
    try:
        yield server, backend
    finally:
        await backend.application.shutdown()
        await server.stop()


@pytest.mark.parametrize("how", ["disconnect", "500"])
async def test_a_telegram_post_whose_answer_was_lost_is_re_sent_flagged(
    app: App, telegram: tuple[FakeTelegram, TelegramBackend], how: str
) -> None:
    server, backend = telegram
    clock = ManualClock()
    (alert_id,) = make_alerts(app.db, clock, TG_CHAT, 1, 1)
    server.lose_next("sendMessage", how)
    notifier = Notifier(app.db, {"telegram": backend}, clock=clock, jitter=lambda: 0.0)
    await drain(notifier, app.db, clock)
    first, again = server.sent("sendMessage")
    assert first.result is not None, "the first post was made (its answer was lost)"
    assert "Possible repeat" not in first.params["text"] and again.params["text"].startswith("↻ Possible repeat")
    assert (notifier.stats.in_doubt, notifier.stats.flagged) == (1, 1)
    post = Outbox(app.db).post_of_alert(alert_id)
    assert post is not None and post[1] is not None and post[1].message_id == str(again.result["message_id"])
    change(app.db, clock, alert_id, AlertStatus.CONFIRMED)
    await drain(notifier, app.db, clock)
    [edit] = server.sent("editMessageText")
    assert edit.params["message_id"] in (again.result["message_id"], str(again.result["message_id"]))


async def test_a_telegram_post_refused_before_it_left_is_retried_without_the_flag(app: App) -> None:
    server = FakeTelegram()
    await server.start()
    port = int(server.base_url.rsplit(":", 1)[1].split("/", 1)[0])
    settings = app.settings.model_copy(update={"telegram_bot_token": TOKEN, "telegram_base_url": server.base_url})
    backend = TelegramBackend(app.bot, settings)
    await backend.application.initialize()
    await server.stop()  # nothing listens: the connection is refused
    again = FakeTelegram()
    try:
        clock = ManualClock()
        make_alerts(app.db, clock, TG_CHAT, 1, 1)
        notifier = Notifier(app.db, {"telegram": backend}, clock=clock, jitter=lambda: 0.0)
        assert await notifier.drain_once() == 0
        assert (notifier.stats.retries, notifier.stats.in_doubt) == (1, 0)
        assert outbox_stats(app.db).pending == 1  # back in the queue, not in doubt
        await again.start(port=port)
        await drain(notifier, app.db, clock)
        [post] = again.sent("sendMessage")
        assert "Possible repeat" not in post.params["text"] and notifier.stats.flagged == 0
    finally:
        await backend.application.shutdown()
        await again.stop()


async def test_an_interrupted_post_stays_in_doubt_through_a_rate_limit(db: Database) -> None:
    clock = ManualClock()
    make_alerts(db, clock, "-9", 1, 1)
    limited = {"left": 1}

    def fail(op: str, chat: str, nth: int, now: datetime) -> Exception | None:
        if nth >= 1 and limited["left"]:
            limited["left"] -= 1
            return RateLimited(5)
        return None

    platform = FakePlatform(clock, fail)
    dying = dies_before_marking_sent(Notifier(db, {"telegram": platform}, clock=clock, lease=LEASE))
    with pytest.raises(Killed):
        await dying.drain_once()
    clock.advance(seconds=LEASE.total_seconds() + 1)
    restarted = Notifier(db, {"telegram": platform}, clock=clock, lease=LEASE)
    await drain(restarted, db, clock)
    first, again = platform.ok("post")
    assert restarted.stats.rate_limited == 1
    assert again.text.startswith(POSSIBLE_REPEAT), "the 429 made the notifier forget the first post may be there"
