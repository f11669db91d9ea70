"""The block follower: per chain, polls the head, takes each new block's transfers from the chain source
(`tracing.chain.rpc.RpcSource`), finds watched addresses among them, applies the watch rules and writes the alerts,
their incidents, their outbox messages and the chain cursor in one transaction.

Bitcoin blocks (`tracing.chain.btc_rpc.CoreRpcSource`) carry their transactions (`utxo_txs`): each transaction's net
value to or from each watched address it touches is the movement (`tracing.monitor.utxo_watch`), and a block with
an input whose spent output could not be read is retried, never passed over (it could hide a watched spend).

Reorgs: the hashes of recent blocks are kept in the store; a block whose parent hash is not the stored hash of
the block before it means the chain was replaced. A source that can name the hash at a height (`HashSource`, the
bitcoin one) is also asked, while the watcher waits at the head, whether the block it stands on is still there: a
branch of the same height or a shorter one replaces it without a new block to notice it by. The cursor goes back
to the common ancestor, alerts from the orphaned blocks become `reorged_out` (their messages are edited) and the
new branch is processed like any other.
Alerts go out `provisional` at the head and are edited to `confirmed` once `confirmations` blocks are on top.

Freezes: on a feed with `freeze_contracts` (TRON's USDT), the blacklist events of each block become freeze labels
once the block is confirmed (`confirmations` deep: solidified on TRON, where no reorg can undo it), so no freeze
label has to be taken back; a log whose block hash is not the one the watcher followed is not recorded. The label
book's hooks raise the label alerts of a newly frozen address someone watches or checked.

Everything is in the store, and every step is idempotent: a watcher killed at any point resumes at its cursor.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlmodel import col, select

from storage import (
    STORE_FAULTS,
    AlertRow,
    ChainCursor,
    Database,
    KeyValueRow,
    LeaderLock,
    RecentBlock,
    StoreUnavailable,
    TransferRow,
    begin_write,
    utcnow,
)
from tracing.chain import (
    BlockTransfers,
    ContractLogs,
    Direction,
    InternalSource,
    PriceBook,
    RawLog,
    Transfer,
    UtxoBlock,
    Valuation,
    unresolved,
)
from tracing.errors import SourceError
from tracing.labels import FREEZE_TOPICS, LabelBook, record_freeze_logs
from tracing.monitor.alerts import (
    AlertStatus,
    known_counterparties,
    poisoning,
    record_alert,
    set_status,
    transfer_dedup_key,
)
from tracing.monitor.clock import Clock, SystemClock, sleep_or_stop
from tracing.monitor.counters import OpsCount, bump
from tracing.monitor.incidents import DEFAULT_WINDOW
from tracing.monitor.utxo_watch import utxo_matches
from tracing.monitor.watch import Match, Watch, WatchBook, WatchMatcher, counterparty_of, evaluate, needs_risk
from tracing.risk.policy import score_own_labels
from tracing.risk.report import Level, RiskReport

log = logging.getLogger(__name__)

MATCH_SAMPLES = 10_000
"""Matching times kept for the stats (the latest ones)."""
MAX_COUNTERPARTIES = 20
"""Counterparties an alert keeps by name (a bitcoin transaction can have thousands); the count is kept too."""


class BlockSource(Protocol):
    """What the watcher needs from a chain source; `tracing.chain.rpc.RpcSource` (EVM) and
    `tracing.chain.btc_rpc.CoreRpcSource` (bitcoin) are two."""

    async def head(self) -> int: ...

    async def fetch_block(self, number: int, *, token_meta: bool = True) -> BlockTransfers: ...


@runtime_checkable
class HashSource(Protocol):
    """A source that names the hash of the block at a height cheaply (None above its tip)."""

    async def block_hash(self, number: int) -> str | None: ...


class LogSource(Protocol):
    """A block source that also gives contracts' logs (`RpcSource.logs`), for a feed with `freeze_contracts`."""

    async def logs(
        self, contracts: Sequence[str], first: int, last: int, *, topics: Sequence[Any] | None = None
    ) -> list[RawLog]: ...


FREEZE_SPAN = 1_000
"""At most this many confirmed blocks' freeze logs read in one step (a watcher catching up reads them in parts)."""


class CounterpartyRisk(Protocol):
    """The risk level of a counterparty, for the "risky counterparty" rule."""

    async def level(self, address: str, chain: str) -> Level: ...


class LabelRisk:
    """A counterparty's risk from its own labels only: no network, no trace."""

    def __init__(self, labels: LabelBook) -> None:
        self.labels = labels

    async def level(self, address: str, chain: str) -> Level:
        _score, level, _reasons = score_own_labels(self.labels.for_address(address, chain))
        return level


class RiskReporter(Protocol):
    """What `InvestigatorRisk` asks of the investigator (`tracing.investigator.Investigator`, a layer above)."""

    labels: LabelBook

    async def risk(self, address: str, chain: str, *, hops: int) -> RiskReport: ...


class InvestigatorRisk:
    """A counterparty's risk from the investigator's risk report (labels and exposure), cached for `ttl` seconds
    and bounded by `timeout`; on time-out or failure the counterparty's own labels decide."""

    def __init__(
        self,
        investigator: RiskReporter,
        *,
        hops: int = 1,
        ttl: float = 600.0,
        timeout: float = 10.0,
        size: int = 50_000,
    ) -> None:
        self.investigator = investigator
        self.fallback = LabelRisk(investigator.labels)
        self.hops = hops
        self.ttl = ttl
        self.timeout = timeout
        self.size = size
        self._cache: dict[tuple[str, str], tuple[float, Level]] = {}

    async def level(self, address: str, chain: str) -> Level:
        key = (address, chain)
        cached = self._cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        try:
            report = await asyncio.wait_for(self.investigator.risk(address, chain, hops=self.hops), self.timeout)
            level: Level = report.level
        except Exception as exc:  # a slow or failing source must not hold up the block
            log.warning("risk of counterparty %s on %s unavailable (%s); using its labels", address, chain, exc)
            return await self.fallback.level(address, chain)
        if len(self._cache) >= self.size:
            self._cache.clear()
        self._cache[key] = (time.monotonic(), level)
        return level


@dataclass(frozen=True)
class ChainFeed:
    """One chain to watch: its source of blocks and how to follow it."""

    chain: str
    source: BlockSource
    confirmations: int = 2
    poll_interval: float = 2.0
    start_block: int | None = None
    """Where a watcher without a cursor starts; None: at the current head."""
    keep_blocks: int = 64
    """Recent block hashes kept for reorg detection (the deepest reorg handled exactly)."""
    symbol: str = "BTC"
    """The native coin's symbol where the block does not carry it (bitcoin blocks)."""
    freeze_contracts: tuple[str, ...] = ()
    """Contracts (canonical addresses) whose blacklist events become freeze labels as their blocks are confirmed
    (TRON: USDT-TRC20); the source must have `logs` and the watcher a label book."""


class Step(StrEnum):
    IDLE = "idle"
    BLOCK = "block"
    REORG = "reorg"


@dataclass
class WatcherStats:
    blocks: int = 0
    alerts: int = 0
    poisoning_dropped: int = 0
    reorgs: int = 0
    match_seconds: deque[float] = field(default_factory=lambda: deque(maxlen=MATCH_SAMPLES))


class CursorMoved(Exception):
    """Another watcher advanced this chain's cursor first; this step's work was rolled back."""


@dataclass
class _Plan:
    rows: list[AlertRow] = field(default_factory=list)
    dropped: int = 0


@dataclass(frozen=True, slots=True)
class _Cursor:
    number: int
    hash: str


LEADER_RETRY = 1.0
"""Seconds between attempts to become the leader for a chain."""
ANSWER_EVERY = timedelta(seconds=5)
"""How often an idle watcher stores that its node still answers (`head_seen_at`); well under `stale_after`."""


class Watcher:
    """Follows one chain (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        feed: ChainFeed,
        *,
        matcher: WatchMatcher | None = None,
        risk: CounterpartyRisk | None = None,
        clock: Clock | None = None,
        incident_window: timedelta = DEFAULT_WINDOW,
        labels: LabelBook | None = None,
    ) -> None:
        if feed.freeze_contracts and (labels is None or not callable(getattr(feed.source, "logs", None))):
            raise ValueError("freeze_contracts need a label book and a source with `logs`")
        self.db = db
        self.labels = labels
        self.feed = feed
        self.chain = feed.chain
        self.book = WatchBook(db)
        self.matcher = matcher or WatchMatcher()
        self.risk = risk
        self.clock = clock or SystemClock()
        self.incident_window = incident_window
        self.stats = WatcherStats()
        self._head: int | None = None
        self._warned_internal = False
        self._answer_recorded: datetime | None = None
        self._freezes_failing = False
        self.prices = PriceBook(db, check_interval=60.0)

    def _usd_of(self, transfer: Transfer) -> Decimal | None:
        """A transfer's USD on its day by the stored prices (a watch's minimum in USD): no API call at match time."""
        valuation = Valuation(self.chain, {}, self.prices.table())
        return valuation.usd(transfer.token, transfer.value, transfer.timestamp, transfer.decimals)

    # -- running ------------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, leader_retry: float = LEADER_RETRY) -> None:
        """Follow the chain until `stop` is set; source and store failures are logged and retried.

        Only the holder of the leader lock `follow:<chain>` follows the chain, so several processes on one store
        can run `chainsleuth watch` and exactly one follows each chain; the others retry every `leader_retry`
        seconds and take over (from the stored cursor) when the leader dies."""
        lock = LeaderLock(self.db, f"follow:{self.chain}")
        try:
            await self._run_led(stop, lock, leader_retry)
        finally:
            if lock.held:
                log.info("watcher %s: releasing leadership", self.chain)
            lock.release()

    async def _run_led(self, stop: asyncio.Event, lock: LeaderLock, leader_retry: float) -> None:
        failures = 0
        leading = False
        while not stop.is_set():
            if not lock.try_acquire():  # when already held, re-checks that the lock is still ours
                if leading:
                    log.warning("watcher %s: lost leadership", self.chain)
                leading = False
                if await sleep_or_stop(self.clock, leader_retry, stop):
                    return
                continue
            if not leading:
                leading = True
                self._head = None
                log.info("watcher %s: leader (lock follow:%s)", self.chain, self.chain)
            try:
                outcome = await self.step()
                if failures:
                    self._record_health(error="")
                failures = 0
            except StoreUnavailable as fault:  # the cause is known: one line, and /status and the ops channel hear
                failures += 1
                ref = secrets.token_hex(4)
                log.error("watcher %s: the block was not stored (ref %s): %s (retrying)", self.chain, ref, fault)
                STORE_FAULTS.note(fault, ref, f"watcher {self.chain}")
                outcome = Step.IDLE
            except (SourceError, CursorMoved, IntegrityError) as exc:
                failures += 1
                log.warning("watcher %s: %s (retrying)", self.chain, exc)
                self._record_health(error=str(exc))
                outcome = Step.IDLE
            except Exception as exc:
                failures += 1
                log.exception("watcher %s: step failed (retrying)", self.chain)
                self._record_health(error=f"{type(exc).__name__}: {exc}")
                outcome = Step.IDLE
            if outcome is Step.IDLE:
                delay = self.feed.poll_interval * min(2**failures, 30) if failures else self.feed.poll_interval
                if await sleep_or_stop(self.clock, delay, stop):
                    return

    async def catch_up(self, max_steps: int = 100_000) -> int:
        """Process blocks until the head is reached; returns the blocks processed (reorg rewinds not counted)."""
        processed = 0
        self._head = None
        for _ in range(max_steps):
            outcome = await self.step()
            if outcome is Step.IDLE:
                return processed
            if outcome is Step.BLOCK:
                processed += 1
        raise RuntimeError(f"watcher {self.chain} did not reach the head in {max_steps} steps")

    async def step(self) -> Step:
        """Process the next block, or handle a reorg, or find nothing to do."""
        self.matcher.refresh(self.book)
        cursor = await self._cursor()
        if self._head is None or cursor.number >= self._head:
            head = await self.feed.source.head()
            # Every good answer is recorded (at most every ANSWER_EVERY s while nothing changes): /status, /healthz and
            # the ops monitor tell a node that stopped answering from one with no new blocks by its age.
            now = self.clock.now()
            if head != self._head or self._answer_recorded is None or now - self._answer_recorded >= ANSWER_EVERY:
                self._record_health(head=head)
                self._answer_recorded = now
            self._head = head
        if cursor.number >= self._head:
            if cursor.hash and isinstance(self.feed.source, HashSource):
                if await self.feed.source.block_hash(cursor.number) != cursor.hash:
                    await self._rewind(cursor)
                    return Step.REORG
            return Step.IDLE
        block = await self.feed.source.fetch_block(cursor.number + 1)
        if cursor.hash and block.parent_hash.lower() != cursor.hash:
            await self._rewind(cursor)
            return Step.REORG
        plan = await self._plan(block)
        self._commit(cursor, block, plan)
        if self.feed.freeze_contracts:
            await self._freezes(block.number - self.feed.confirmations)
        return Step.BLOCK

    # -- cursor -------------------------------------------------------------------------------------------

    def _record_health(self, *, head: int | None = None, error: str | None = None) -> None:
        """Store the head seen and the last error for /status and the ops monitor (other processes read them)."""
        values: dict[str, object] = {}
        now = self.clock.now()
        if head is not None:
            values.update(head=head, head_seen_at=now)
        if error is not None:
            values.update(last_error=error[:2000], last_error_at=now if error else None)
        if not values:
            return
        try:
            with self.db.session() as session:
                session.execute(update(ChainCursor).where(col(ChainCursor.chain) == self.chain).values(**values))
        except StoreUnavailable as fault:  # counted where the step meets it; the cause needs no traceback
            log.warning("watcher %s: could not record health: %s", self.chain, fault)
        except Exception:  # health bookkeeping must never stop the watcher
            log.warning("watcher %s: could not record health", self.chain, exc_info=True)

    async def _cursor(self) -> _Cursor:
        with self.db.session() as session:
            row = session.get(ChainCursor, self.chain)
            if row is not None:
                return _Cursor(row.number, row.hash)
        start = self.feed.start_block
        if start is None:
            start = await self.feed.source.head()
        first = await self.feed.source.fetch_block(start)
        now = self.clock.now()
        parent = first.parent_hash.lower()
        with self.db.session() as session:
            begin_write(session)
            if session.get(ChainCursor, self.chain) is None:
                session.add(ChainCursor(chain=self.chain, number=start - 1, hash=parent, updated_at=now))
                session.add(RecentBlock(chain=self.chain, number=start - 1, hash=parent, parent_hash=""))
                log.info("watcher %s starts at block %d", self.chain, start)
        return await self._cursor()

    def _advance(self, session: Session, cursor: _Cursor, number: int, block_hash: str, **counts: int) -> None:
        """Move the cursor from `cursor` to (`number`, `block_hash`) — only if nobody else moved it meanwhile."""
        values: dict[str, object] = {"number": number, "hash": block_hash, "updated_at": self.clock.now()}
        for name, amount in counts.items():
            if amount:
                values[name] = getattr(ChainCursor, name) + amount
        result = session.execute(
            update(ChainCursor)
            .where(
                col(ChainCursor.chain) == self.chain,
                col(ChainCursor.number) == cursor.number,
                col(ChainCursor.hash) == cursor.hash,
            )
            .values(**values)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise CursorMoved(f"the {self.chain} cursor is no longer at block {cursor.number}")

    # -- one block ----------------------------------------------------------------------------------------

    async def _plan(self, block: BlockTransfers) -> _Plan:
        """Match the block's transfers, drop poisoning, apply the rules: the alert rows to write."""
        started = time.perf_counter()
        if block.coverage.internal is InternalSource.UTXO:
            missing = unresolved(block.utxo_txs)
            if missing:
                raise SourceError(
                    f"{self.chain} block {block.number}: {len(missing)} spent output(s) could not be read "
                    f"(first {missing[0].txid}:{missing[0].vout}); the node needs -txindex=1 or getblock verbosity 3"
                )
            utxo = UtxoBlock(block.chain, block.number, block.hash, block.parent_hash, block.timestamp, block.utxo_txs)
            matches = utxo_matches(self.matcher, utxo, self.feed.symbol)
        else:
            if block.coverage.internal is InternalSource.UNAVAILABLE and not self._warned_internal:
                self._warned_internal = True
                log.warning(
                    "watcher %s: the node gives no traces; contract-internal movements are not seen", self.chain
                )
            matches = self.matcher.matches(self.chain, block.transfers)
        self.stats.match_seconds.append(time.perf_counter() - started)
        plan = _Plan()
        if not matches:
            return plan
        with self.db.session() as session:
            watches = self.book.active_for(session, self.chain, {m.address for m in matches})
            known = known_counterparties(session, self.chain, watches)
            for address, seen in _index_counterparties(session, self.chain, watches).items():
                known[address] |= seen
        levels: dict[str, Level] = {}
        for match in matches:
            address_watches = watches.get(match.address)
            if not address_watches:
                continue  # a stale or colliding matcher entry: not watched
            counterparty = counterparty_of(match.transfer, match.address)
            if poisoning(match.transfer, match.address, counterparty, known[match.address]) is not None:
                plan.dropped += 1
                continue
            known[match.address].add(counterparty)
            level = await self._level(match, levels)
            for watch in address_watches:
                hits = evaluate(watch, match.transfer, level, self._usd_of)
                if hits:
                    plan.rows.append(
                        self._row(
                            block, match, watch, counterparty, level, [h.reason for h in hits], hits[0].kind.value
                        )
                    )
        return plan

    async def _level(self, match: Match, cache: dict[str, Level]) -> Level | None:
        counterparty = needs_risk(match.transfer, match.address)
        if counterparty is None or self.risk is None:
            return None
        if counterparty not in cache:
            cache[counterparty] = await self.risk.level(counterparty, self.chain)
        return cache[counterparty]

    def _row(
        self,
        block: BlockTransfers,
        match: Match,
        watch: Watch,
        counterparty: str,
        level: Level | None,
        reasons: list[str],
        kind: str,
    ) -> AlertRow:
        t = match.transfer
        details: dict[str, object] = {"note": watch.note} if watch.note else {}
        if level is not None:
            details["counterparty_level"] = level.value
        if len(match.counterparties) > 1:
            details["counterparties"] = list(match.counterparties[:MAX_COUNTERPARTIES])
            details["counterparty_count"] = len(match.counterparties)
        return AlertRow(
            dedup_key=transfer_dedup_key(t, watch.id),
            kind=kind,
            status=AlertStatus.PROVISIONAL.value,
            watch_id=watch.id,
            platform=watch.platform,
            chat=watch.chat,
            chain=self.chain,
            address=match.address,
            direction=match.direction.value,
            counterparty=counterparty if match.direction is not Direction.SELF else match.address,
            tx_hash=t.tx_hash,
            transfer_kind=t.kind.value,
            position=t.position,
            block_number=block.number,
            block_hash=block.hash.lower(),
            timestamp=block.timestamp,
            token=t.token,
            value=t.value,
            decimals=t.decimals,
            symbol=t.symbol,
            reasons=reasons,
            details=details,
        )

    def _commit(self, cursor: _Cursor, block: BlockTransfers, plan: _Plan) -> None:
        """The block's alerts, incidents, outbox rows, recent-block hash, confirmations and the cursor: one
        transaction."""
        now = self.clock.now()
        created = 0
        with self.db.session() as session:
            begin_write(session)
            self._advance(session, cursor, block.number, block.hash.lower(), poisoning_dropped=plan.dropped)
            bump(session, OpsCount.BLOCKS, self.chain)
            session.merge(
                RecentBlock(
                    chain=self.chain,
                    number=block.number,
                    hash=block.hash.lower(),
                    parent_hash=block.parent_hash.lower(),
                )
            )
            session.execute(
                delete(RecentBlock).where(
                    col(RecentBlock.chain) == self.chain,
                    col(RecentBlock.number) <= block.number - max(self.feed.keep_blocks, self.feed.confirmations + 1),
                )
            )
            for row in plan.rows:
                if record_alert(session, row, now, window=self.incident_window) is not None:
                    created += 1
            confirmable = session.scalars(
                select(AlertRow).where(
                    col(AlertRow.chain) == self.chain,
                    col(AlertRow.status) == AlertStatus.PROVISIONAL.value,
                    col(AlertRow.block_number) <= block.number - self.feed.confirmations,
                )
            ).all()
            for alert in confirmable:
                set_status(session, alert, AlertStatus.CONFIRMED, now)
            if created:
                session.execute(
                    update(ChainCursor)
                    .where(col(ChainCursor.chain) == self.chain)
                    .values(alerts=col(ChainCursor.alerts) + created)
                )
        self.stats.blocks += 1
        self.stats.alerts += created
        self.stats.poisoning_dropped += plan.dropped

    # -- freezes ------------------------------------------------------------------------------------------

    def _freeze_key(self) -> str:
        return f"watch-freezes:{self.chain}"

    def _freeze_mark(self) -> int | None:
        """The last confirmed block whose freeze logs this chain's watcher recorded (None: none yet)."""
        with self.db.session() as session:
            row = session.get(KeyValueRow, self._freeze_key())
            value = row.value.get("last_block") if row is not None else None
            return int(str(value)) if value is not None else None

    async def _freezes(self, confirmed: int) -> None:
        """Record the freeze contracts' blacklist events of the blocks confirmed since the last call (the first time:
        only `confirmed`, the watcher's start). A failure is logged and the same blocks are read again next step;
        it never holds up the blocks' alerts."""
        done = self._freeze_mark()
        first = confirmed if done is None else done + 1
        if first > confirmed or confirmed < 0:
            return
        last = min(confirmed, first + FREEZE_SPAN - 1)
        source: LogSource = self.feed.source  # type: ignore[assignment]  # checked in __init__
        assert self.labels is not None
        try:
            found = await source.logs(self.feed.freeze_contracts, first, last, topics=[list(FREEZE_TOPICS)])
            logs = await self._checked_logs(found)
        except SourceError as exc:
            log.warning("watcher %s: freezes of blocks %d-%d not read (%s); retrying", self.chain, first, last, exc)
            self._record_health(error=f"freezes of blocks {first}-{last} not read: {exc}")
            self._freezes_failing = True
            return
        if self._freezes_failing:  # /status no longer shows the old failure
            self._record_health(error="")
            self._freezes_failing = False
        for contract in self.feed.freeze_contracts:
            scan = record_freeze_logs(
                self.labels, ContractLogs(self.chain, first, last, self.feed.freeze_contracts, logs), contract
            )
            if scan.events or scan.skipped:
                log.info("watcher %s: %s", self.chain, scan.words())
        with self.db.session() as session:
            session.merge(KeyValueRow(key=self._freeze_key(), value={"last_block": last}, updated_at=utcnow()))

    async def _checked_logs(self, found: Sequence[RawLog]) -> tuple[RawLog, ...]:
        """The logs with their block times, each from the block the watcher followed: a log whose block hash is not
        the kept hash of its height (or the node's block there now) is refused (SourceError), not recorded."""
        with self.db.session() as session:
            numbers = sorted({item.block_number for item in found})
            kept = {
                row.number: row.hash
                for row in session.scalars(
                    select(RecentBlock).where(
                        col(RecentBlock.chain) == self.chain, col(RecentBlock.number).in_(numbers)
                    )
                )
            }
        blocks = {n: await self.feed.source.fetch_block(n, token_meta=False) for n in numbers}
        out = []
        for item in found:
            block = blocks[item.block_number]
            hashes = {block.hash.lower(), kept.get(item.block_number, block.hash.lower())}
            if hashes != {item.block_hash.lower()}:
                raise SourceError(f"a log of block {item.block_number} is not from the block followed (reorg?)")
            out.append(item if item.timestamp is not None else replace(item, timestamp=block.timestamp))
        return tuple(out)

    # -- reorgs -------------------------------------------------------------------------------------------

    async def _rewind(self, cursor: _Cursor) -> None:
        """Go back to the newest kept block that is still on the chain; the alerts above it are reorged out."""
        with self.db.session() as session:
            recent = session.scalars(
                select(RecentBlock)
                .where(col(RecentBlock.chain) == self.chain, col(RecentBlock.number) <= cursor.number)
                .order_by(col(RecentBlock.number).desc())
            ).all()
        ancestor: _Cursor | None = None
        for kept in recent:
            if await self._hash_at(kept.number) == kept.hash:
                ancestor = _Cursor(kept.number, kept.hash)
                break
        if ancestor is None:
            oldest = recent[-1].number if recent else cursor.number
            ancestor = _Cursor(oldest - 1, "")  # deeper than we keep: resume without a parent check
            log.error(
                "watcher %s: reorg deeper than %d kept blocks; resuming at %d", self.chain, len(recent), oldest - 1
            )
        now = self.clock.now()
        with self.db.session() as session:
            begin_write(session)
            self._advance(session, cursor, ancestor.number, ancestor.hash, reorgs=1)
            session.execute(
                delete(RecentBlock).where(
                    col(RecentBlock.chain) == self.chain, col(RecentBlock.number) > ancestor.number
                )
            )
            orphaned = session.scalars(
                select(AlertRow).where(
                    col(AlertRow.chain) == self.chain,
                    col(AlertRow.block_number) > ancestor.number,
                    col(AlertRow.status) != AlertStatus.REORGED_OUT.value,
                )
            ).all()
            for alert in orphaned:
                set_status(session, alert, AlertStatus.REORGED_OUT, now)
        self._head = None
        self.stats.reorgs += 1
        log.warning(
            "watcher %s: reorg — back from block %d to %d, %d alerts reorged out",
            self.chain,
            cursor.number,
            ancestor.number,
            len(orphaned),
        )

    async def _hash_at(self, number: int) -> str | None:
        """The hash of the chain's block at `number` now; None when the chain is shorter."""
        source = self.feed.source
        if isinstance(source, HashSource):
            return await source.block_hash(number)
        try:
            return (await source.fetch_block(number, token_meta=False)).hash.lower()
        except SourceError:
            return None

    def cursor(self) -> tuple[int, str] | None:
        """The stored (block, hash) this watcher has finished, if it has started."""
        with self.db.session() as session:
            row = session.get(ChainCursor, self.chain)
            return (row.number, row.hash) if row else None


@dataclass(frozen=True, slots=True)
class ChainStatus:
    """Where the watcher of a chain is, and what it has done (for /status)."""

    chain: str
    block: int
    alerts: int
    poisoning_dropped: int
    reorgs: int
    updated_at: datetime
    head: int | None = None
    last_error: str = ""
    last_error_at: datetime | None = None
    head_seen_at: datetime | None = None

    @property
    def lag(self) -> int | None:
        """Blocks between the last head the watcher saw and the last block it finished."""
        return None if self.head is None else max(self.head - self.block, 0)

    @property
    def last_answer_at(self) -> datetime:
        """When the node last gave the watcher a good answer: a head read, or a block finished."""
        return max(self.updated_at, self.head_seen_at) if self.head_seen_at else self.updated_at


def watch_status(db: Database) -> list[ChainStatus]:
    """One line per watched chain: head, last block finished, lag, last error, alerts, poisoning, reorgs."""
    with db.session() as session:
        rows = session.scalars(select(ChainCursor).order_by(col(ChainCursor.chain)))
        return [
            ChainStatus(
                r.chain,
                r.number,
                r.alerts,
                r.poisoning_dropped,
                r.reorgs,
                r.updated_at,
                head=r.head,
                last_error=r.last_error,
                last_error_at=r.last_error_at,
                head_seen_at=r.head_seen_at,
            )
            for r in rows
        ]


def _index_counterparties(
    session: Session, chain: str, addresses: Iterable[str], limit: int = 5000
) -> dict[str, set[str]]:
    """Counterparties each address has in the local transfer index (its history, when it was indexed)."""
    out: dict[str, set[str]] = {}
    for address in addresses:
        sent = session.scalars(
            select(col(TransferRow.to_addr))
            .where(col(TransferRow.chain) == chain, col(TransferRow.from_addr) == address)
            .distinct()
            .limit(limit)
        ).all()
        received = session.scalars(
            select(col(TransferRow.from_addr))
            .where(col(TransferRow.chain) == chain, col(TransferRow.to_addr) == address)
            .distinct()
            .limit(limit)
        ).all()
        out[address] = set(sent) | set(received)
    return out


async def watch_chains(
    db: Database,
    feeds: Iterable[ChainFeed],
    stop: asyncio.Event,
    *,
    risk: CounterpartyRisk | None = None,
    clock: Clock | None = None,
    matcher: WatchMatcher | None = None,
    labels: LabelBook | None = None,
) -> Mapping[str, Watcher]:
    """Run one watcher per feed (sharing one matcher) until `stop` is set; returns the watchers. `labels` records
    the freezes of feeds with `freeze_contracts` (its hooks raise their label alerts)."""
    shared = matcher or WatchMatcher()
    watchers = {feed.chain: Watcher(db, feed, matcher=shared, risk=risk, clock=clock, labels=labels) for feed in feeds}
    await asyncio.gather(*(w.run(stop) for w in watchers.values()))
    return watchers
