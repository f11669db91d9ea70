"""The outbox on SQLite and PostgreSQL: enqueued with the change or not at all, claimed only from the front of
each chat's queue, leases that outlive a crashed notifier, concurrent claimers that never share a message
(`FOR UPDATE SKIP LOCKED` on PostgreSQL), retries that hold back their chat, and stats for /status."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from storage.db import Database
from tracing.monitor.clock import ManualClock
from tracing.monitor.outbox import (
    EscalationNotice,
    NoticeError,
    OpsNotice,
    Outbox,
    OutboxKind,
    OutboxStatus,
    enqueue,
    notice_from_payload,
    notice_payload,
    outbox_stats,
)


def fill(db: Database, clock: ManualClock, chats: dict[str, int]) -> dict[str, list[int]]:
    ids: dict[str, list[int]] = {chat: [] for chat in chats}
    with db.session() as session:
        for n in range(max(chats.values())):
            for chat, count in chats.items():
                if n < count:
                    row = enqueue(
                        session,
                        platform="telegram",
                        chat=chat,
                        kind=OutboxKind.NOTICE,
                        now=clock.now(),
                        notice=OpsNotice(f"n={n}"),
                    )
                    session.flush()
                    assert row.id is not None
                    ids[chat].append(row.id)
    return ids


def test_enqueue_is_part_of_the_callers_transaction(db: Database) -> None:
    clock = ManualClock()
    with pytest.raises(RuntimeError), db.session() as session:
        enqueue(session, platform="telegram", chat="-1", kind=OutboxKind.NOTICE, now=clock.now())
        raise RuntimeError("the change failed")
    assert outbox_stats(db).pending == 0


def test_claims_take_each_chats_queue_from_the_front(db: Database) -> None:
    clock = ManualClock()
    ids = fill(db, clock, {"a": 3, "b": 2})
    outbox = Outbox(db, clock)
    first = outbox.claim("w1", platforms=["telegram"], limit=3)
    assert [i.id for i in first] == ids["a"]  # a chat at a time: the one waiting longest, its burst together
    # a second worker gets nothing of chats whose front w1 holds, the rest of what is ready
    second = outbox.claim("w2", platforms=["telegram"])
    assert [i.id for i in second] == ids["b"]
    assert outbox.claim("w3", platforms=["telegram"]) == []
    outbox.mark_sent(ids["a"][:2], "m1")
    outbox.release([ids["a"][2]])
    outbox.release(ids["b"])
    third = outbox.claim("w2", platforms=["telegram"], per_chat=1)
    assert [i.id for i in third] == sorted([ids["a"][2], ids["b"][0]])


def test_a_burst_is_claimed_per_chat_whatever_else_waits(db: Database) -> None:
    """Interleaved alerts for many chats: a claim holds whole bursts of a few chats, not one message of each."""
    clock = ManualClock()
    ids = fill(db, clock, {f"c{n:03d}": 30 for n in range(50)})
    outbox = Outbox(db, clock)
    items = outbox.claim("w", platforms=["telegram"], limit=100, per_chat=20)
    by_chat: dict[str, list[int]] = {}
    for item in items:
        by_chat.setdefault(item.chat, []).append(item.id)
    assert by_chat == {chat: ids[chat][:20] for chat in ["c000", "c001", "c002", "c003", "c004"]}
    # the next claim goes on with the chats that waited longest, not with the rest of those bursts
    nxt = outbox.claim("w", platforms=["telegram"], limit=100, per_chat=20)
    assert sorted({item.chat for item in nxt}) == ["c005", "c006", "c007", "c008", "c009"]


def test_a_send_in_doubt_comes_back_interrupted_after_its_delay(db: Database) -> None:
    clock = ManualClock()
    ids = fill(db, clock, {"a": 2})
    outbox = Outbox(db, clock)
    [first] = outbox.claim("w", platforms=["telegram"], per_chat=1)
    assert not first.interrupted
    clock.advance(seconds=3)
    outbox.retry_in_doubt([first.id], 10, "ReadTimeout")
    assert outbox_stats(db).sending == 1
    assert outbox.claim("w2", platforms=["telegram"]) == []  # holds back its chat meanwhile
    clock.advance(seconds=11)
    again = outbox.claim("w2", platforms=["telegram"])
    assert [(i.id, i.interrupted, i.attempts) for i in again] == [(ids["a"][0], True, 1), (ids["a"][1], False, 0)]
    assert again[0].ready_at == first.ready_at  # the look-up for the post still starts before the first attempt


def test_a_retry_holds_back_the_rest_of_its_chat(db: Database) -> None:
    clock = ManualClock()
    ids = fill(db, clock, {"a": 2, "b": 1})
    outbox = Outbox(db, clock)
    outbox.claim("w", platforms=["telegram"])
    outbox.retry_later([ids["a"][0]], 30, "502", count_attempt=True)
    outbox.release([ids["a"][1]])
    outbox.mark_sent([ids["b"][0]], "m")
    assert outbox.claim("w", platforms=["telegram"]) == []
    clock.advance(seconds=30)
    again = outbox.claim("w", platforms=["telegram"])
    assert [(i.id, i.attempts) for i in again] == [(ids["a"][0], 1), (ids["a"][1], 0)]


def test_a_dead_notifiers_lease_runs_out(db: Database) -> None:
    clock = ManualClock()
    ids = fill(db, clock, {"a": 1})
    outbox = Outbox(db, clock)
    assert [i.id for i in outbox.claim("crashed", platforms=["telegram"], lease=timedelta(minutes=5))] == ids["a"]
    clock.advance(minutes=4)
    assert outbox.claim("survivor", platforms=["telegram"]) == []
    clock.advance(minutes=2)
    assert [i.id for i in outbox.claim("survivor", platforms=["telegram"])] == ids["a"]


def test_concurrent_claimers_never_share_a_message(db: Database) -> None:
    clock = ManualClock()
    ids = fill(db, clock, {f"c{n}": 5 for n in range(12)})
    outbox = Outbox(db, clock)
    claimed: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        mine: list[int] = []
        try:
            for _ in range(200):
                items = outbox.claim(name, platforms=["telegram"], limit=7)
                mine.extend(item.id for item in items)
                if items:
                    outbox.mark_sent([i.id for i in items], name)
                if outbox_stats(db).pending == 0:
                    break
        except BaseException as exc:  # reported below, with the thread's name
            errors.append(exc)
        claimed[name] = mine

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    everything = [i for mine in claimed.values() for i in mine]
    assert sorted(everything) == sorted(i for chat in ids.values() for i in chat)  # all, each once


def test_stats_show_what_waits_and_what_failed(db: Database) -> None:
    clock = ManualClock()
    ids = fill(db, clock, {"a": 2, "b": 1})
    outbox = Outbox(db, clock)
    outbox.claim("w", platforms=["telegram"])
    outbox.mark_failed([ids["a"][0]], "403 Forbidden: bot was kicked")
    outbox.mark_done(ids["a"][1], OutboxStatus.SUPERSEDED)
    stats = outbox_stats(db)
    assert (stats.pending, stats.sending, stats.failed, stats.superseded) == (0, 1, 1, 1)
    assert stats.oldest_pending == clock.now() and not stats.healthy
    assert stats.recent_failures[0].last_error == "403 Forbidden: bot was kicked"
    assert stats.recent_failures[0].attempts == 1
    assert outbox.requeue_failed() == 1 and outbox_stats(db).failed == 0


STORED_NOTICES = [
    ({"type": "ops", "text": "⚠️ eth: 40 blocks behind"}, OpsNotice("⚠️ eth: 40 blocks behind")),
    (
        {"type": "escalation", "level": 2, "oncall_key": "telegram:@bob", "oncall_name": "bob", "open_minutes": 45},
        EscalationNotice(level=2, oncall_key="telegram:@bob", oncall_name="bob", open_minutes=45),
    ),
]


@pytest.mark.parametrize(("stored", "notice"), STORED_NOTICES)
def test_notices_are_stored_as_before_and_read_back_typed(
    db: Database, stored: dict[str, object], notice: OpsNotice | EscalationNotice
) -> None:
    assert notice_payload(notice) == stored
    assert notice_from_payload(stored) == notice
    clock = ManualClock()
    with db.session() as session:
        row = enqueue(session, platform="telegram", chat="-1", kind=OutboxKind.NOTICE, now=clock.now(), notice=notice)
        session.flush()
        assert row.payload == stored
    [item] = Outbox(db, clock).claim("w", platforms=["telegram"])
    assert item.notice() == notice


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({}, "unknown notice None"),
        ({"type": "party"}, "unknown notice 'party'"),
        ({"type": "escalation", "level": "two"}, "level is not a whole number"),
        ({"type": "ops", "text": 3}, "text is not text"),
    ],
)
def test_a_notice_that_is_not_one_we_know_says_what_is_wrong(payload: dict[str, object], words: str) -> None:
    with pytest.raises(NoticeError, match=words):
        notice_from_payload(payload)
