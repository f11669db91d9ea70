"""Watchlists as units: the matcher, the rules, the address-poisoning filter and the watch store (refreshing a
matcher in another "process"), plus the matcher's speed and memory at a million watched addresses."""

from __future__ import annotations

import gc
import os
import statistics
import time
import tracemalloc
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from storage.db import Database
from tracing.chain.transfer import Direction, Transfer, TransferKind
from tracing.errors import InvalidArgument
from tracing.monitor.alerts import AlertKind, PoisonReason, looks_alike, poisoning
from tracing.monitor.watch import Watch, WatchBook, WatchMatcher, evaluate, parse_min_amount
from tracing.risk.report import Level

W = "0x" + "a1" * 20
X = "0x" + "b2" * 20
Y = "0x" + "c3" * 20
TOKEN = "0x" + "d4" * 20
ZERO = "0x" + "00" * 20


def transfer(
    frm: str,
    to: str,
    value: int = 10**18,
    *,
    kind: TransferKind = TransferKind.NATIVE,
    position: str = "tx",
    token: str | None = None,
    decimals: int | None = None,
    tx: str = "0x" + "11" * 32,
) -> Transfer:
    return Transfer(
        chain="eth",
        block_number=100,
        block_hash="0x" + "22" * 32,
        timestamp=1_700_000_000,
        tx_hash=tx,
        kind=kind,
        position=position,
        from_addr=frm,
        to_addr=to,
        value=value,
        token=token,
        decimals=decimals,
    )


def watch(minimum: str | None = None) -> Watch:
    return Watch(
        id=1,
        chain="eth",
        address=W,
        platform="telegram",
        chat="-100",
        channel=True,
        created_by="telegram:1",
        note="",
        min_amount=Decimal(minimum) if minimum else None,
        active=True,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


# -- matcher -------------------------------------------------------------------------------------------------


def test_matcher_finds_both_directions_once_per_endpoint_and_per_chain() -> None:
    matcher = WatchMatcher()
    matcher.add("eth", W)
    out, into, self_, other = transfer(W, X), transfer(Y, W), transfer(W, W), transfer(X, Y)
    found = matcher.matches("eth", [out, into, self_, other])
    assert [(m.transfer, m.direction) for m in found] == [
        (out, Direction.OUT),
        (into, Direction.IN),
        (self_, Direction.SELF),
    ]
    assert matcher.matches("base", [out]) == []  # watched on eth only
    assert ("eth", W) in matcher and ("eth", X) not in matcher


def test_matcher_refresh_picks_up_changes_made_elsewhere(db: Database) -> None:
    book = WatchBook(db)
    matcher = WatchMatcher()
    matcher.refresh(book)
    assert len(matcher) == 0
    book.watch(chain="eth", address=W, platform="telegram", chat="-1", channel=True, created_by="telegram:1")
    # another "process" (a second book on the same store) adds a watch too
    WatchBook(db).watch(chain="base", address=X, platform="slack", chat="C1", channel=True, created_by="slack:U1")
    assert matcher.refresh(book) is True
    assert ("eth", W) in matcher and ("base", X) in matcher
    assert matcher.refresh(book) is False  # nothing new: one cheap revision read
    book.unwatch(chain="eth", address=W, platform="telegram", chat="-1")
    assert matcher.refresh(book) is True
    assert matcher.stale == 1  # a stale candidate until compaction; the store no longer confirms it
    with db.session() as session:
        assert WatchBook.active_for(session, "eth", [W]) == {}


def test_matcher_compacts_when_stale_entries_pile_up(db: Database) -> None:
    book = WatchBook(db)
    matcher = WatchMatcher(compact_at=0.1)
    for i in range(3):
        book.watch(chain="eth", address=f"0x{i:040x}", platform="t", chat="c", channel=True, created_by="t:1")
    matcher.refresh(book)
    matcher.stale = 5000  # as if thousands of unwatches had been applied
    book.unwatch(chain="eth", address=f"0x{0:040x}", platform="t", chat="c")
    matcher.refresh(book)
    assert matcher.stale == 0 and len(matcher) == 2


def test_two_chats_watching_one_address_and_one_leaving(db: Database) -> None:
    book = WatchBook(db)
    for chat in ("-1", "-2"):
        book.watch(chain="eth", address=W, platform="telegram", chat=chat, channel=True, created_by="telegram:1")
    book.unwatch(chain="eth", address=W, platform="telegram", chat="-1")
    _revision, watched, unwatched = book.changes_since(0)
    assert watched == [("eth", W)] and unwatched == []
    with db.session() as session:
        assert [w.chat for w in WatchBook.active_for(session, "eth", [W])[W]] == ["-2"]


def test_rewatching_updates_instead_of_duplicating(db: Database) -> None:
    book = WatchBook(db)
    first, created = book.watch(chain="eth", address=W, platform="t", chat="c", channel=True, created_by="t:1")
    again, created_again = book.watch(
        chain="eth", address=W, platform="t", chat="c", channel=True, created_by="t:2", note="n", min_amount=Decimal(5)
    )
    assert created and not created_again
    assert again.id == first.id and again.note == "n" and again.min_amount == Decimal(5)
    assert again.created_by == "t:1"


# -- rules ---------------------------------------------------------------------------------------------------


def test_any_movement_without_a_minimum() -> None:
    hits = evaluate(watch(), transfer(W, X, 1), None)
    assert [h.kind for h in hits] == [AlertKind.MOVEMENT]


def test_threshold_compares_in_the_assets_own_units() -> None:
    rule = watch("1.5")
    assert evaluate(rule, transfer(W, X, 15 * 10**17), None)[0].kind is AlertKind.THRESHOLD
    assert evaluate(rule, transfer(W, X, 15 * 10**17 - 1), None) == []

    def usdx(value: int) -> Transfer:
        return transfer(W, X, value, kind=TransferKind.ERC20, position="log:0", token=TOKEN, decimals=6)

    assert evaluate(rule, usdx(2_000_000), None)[0].kind is AlertKind.THRESHOLD
    assert evaluate(rule, usdx(1_000_000), None) == []


def test_unknown_decimals_alert_rather_than_miss() -> None:
    hits = evaluate(watch("1000"), transfer(W, X, 5, kind=TransferKind.ERC20, position="log:1", token=TOKEN), None)
    assert hits[0].kind is AlertKind.THRESHOLD and "not comparable" in hits[0].reason


@pytest.mark.parametrize("level", [Level.HIGH, Level.SEVERE])
def test_risky_counterparty_alerts_even_below_the_minimum(level: Level) -> None:
    hits = evaluate(watch("100"), transfer(X, W, 1), level)
    assert [h.kind for h in hits] == [AlertKind.COUNTERPARTY_RISK]
    assert level.value in hits[0].reason


@pytest.mark.parametrize("level", [Level.UNKNOWN, Level.LOW, Level.MEDIUM, None])
def test_unremarkable_counterparty_is_no_reason(level: Level | None) -> None:
    assert evaluate(watch("100"), transfer(X, W, 1), level) == []


def test_most_serious_reason_first() -> None:
    hits = evaluate(watch(), transfer(X, W, 1), Level.SEVERE)
    assert [h.kind for h in hits] == [AlertKind.COUNTERPARTY_RISK, AlertKind.MOVEMENT]


def test_min_amount_parsing() -> None:
    assert parse_min_amount("1.50").units == Decimal("1.50")
    assert parse_min_amount("$500").usd == Decimal(500)
    for bad in ("0", "-1", "abc", "nan", "inf", "1e99"):
        with pytest.raises(InvalidArgument):
            parse_min_amount(bad)


# -- address poisoning ---------------------------------------------------------------------------------------

REAL = "0x1234" + "5" * 32 + "abcd"
FAKE = "0x1234" + "9" * 32 + "abcd"


def test_lookalike_shares_head_and_tail_only() -> None:
    assert looks_alike(REAL, FAKE)
    assert not looks_alike(REAL, REAL)
    assert not looks_alike(REAL, "0x1234" + "9" * 32 + "abce")
    assert not looks_alike(REAL, "0x1235" + "9" * 32 + "abcd")


def test_a_bitcoin_look_alike_is_told_by_what_bitcoin_wallets_show() -> None:
    """After what every address of its kind shares: a Base58 version character (`1`, `3`), a bech32 hrp with its
    `1` and witness version (`bc1q`); never on the prefix alone."""
    genesis = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
    assert looks_alike("1A1zPxxxxxxxxxxxxxxxxxxxxxxxxDivfNa", genesis)  # the 4 after `1` and the last 4
    assert not looks_alike("1A1zQ1eP5QGefi2DMPTfTL5SLmv7DivfNa", genesis)  # only 3 after the `1` agree
    assert not looks_alike("3A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", genesis)  # P2SH, not P2PKH: another prefix
    segwit = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"  # BIP 173's example
    assert looks_alike("bc1qw508xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxv8f3t4", segwit)
    assert not looks_alike("bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh"[:-4] + "f3t4", segwit)  # only `bc1q` agrees
    assert not looks_alike("bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", segwit)  # taproot, not v0
    assert not looks_alike("tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", segwit)  # testnet
    dust = transfer("bc1qw508xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxv8f3t4", W, 1)
    assert poisoning(dust, W, "bc1qw508xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxv8f3t4", {segwit}) is PoisonReason.LOOKALIKE
    other = "bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh"
    assert poisoning(transfer(other, W, 1), W, other, {segwit}) is None


def test_zero_value_token_transfer_is_poisoning() -> None:
    zero = transfer(W, FAKE, 0, kind=TransferKind.ERC20, position="log:3", token=TOKEN, decimals=6)
    assert poisoning(zero, W, FAKE, set()) is PoisonReason.ZERO_VALUE


def test_lookalike_of_a_known_counterparty_is_poisoning() -> None:
    dust = transfer(FAKE, W, 1)
    assert poisoning(dust, W, FAKE, {REAL}) is PoisonReason.LOOKALIKE
    assert poisoning(transfer(REAL, W, 1), W, REAL, {REAL}) is None  # the real one
    assert poisoning(transfer(Y, W, 1), W, Y, {REAL}) is None  # new, but looks like nobody
    assert poisoning(dust, W, FAKE, {REAL, FAKE}) is None  # already dealt with: not a look-alike any more


def test_lookalike_of_the_watched_address_itself() -> None:
    twin = W[:6] + "0" * 32 + W[-4:]
    assert poisoning(transfer(twin, W, 1), W, twin, set()) is PoisonReason.LOOKALIKE


# -- speed and memory at a million watches -------------------------------------------------------------------


@pytest.mark.slow
def test_matching_a_block_against_a_million_watches() -> None:
    """~2,000 endpoints (1,000 transfers) per block against 1M watched addresses: p99 and memory."""
    watched = ["0x" + os.urandom(20).hex() for _ in range(1_000_000)]
    gc.collect()
    tracemalloc.start()
    matcher = WatchMatcher()
    for address in watched:
        matcher.add("eth", address)
    memory, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rng = os.urandom
    blocks = []
    for b in range(200):
        transfers = []
        for i in range(1000):
            frm = watched[(b * 1000 + i) % len(watched)] if i % 250 == 0 else "0x" + rng(20).hex()
            transfers.append(transfer(frm, "0x" + rng(20).hex(), tx="0x" + rng(32).hex()))
        blocks.append(transfers)
    wall, cpu = [], []
    hits = 0
    for block in blocks:
        started, started_cpu = time.perf_counter(), time.thread_time()
        hits += len(matcher.matches("eth", block))
        cpu.append(time.thread_time() - started_cpu)
        wall.append(time.perf_counter() - started)
    wall.sort()
    cpu.sort()

    def p99(values: list[float]) -> float:
        return values[int(len(values) * 0.99) - 1]

    print(
        f"\nmatcher: 1M watches in {memory / 2**20:.1f} MiB; per 2,000-endpoint block: wall p50 "
        f"{statistics.median(wall) * 1e3:.3f} ms, p99 {p99(wall) * 1e3:.3f} ms; CPU p99 {p99(cpu) * 1e3:.3f} ms"
    )
    assert hits == 200 * 4
    assert memory < 150 * 2**20
    assert statistics.median(wall) < 1e-3
    # CPU time, not wall time: on a shared machine the wall-clock tail measures the neighbours' load.
    assert p99(cpu) < 1e-3
