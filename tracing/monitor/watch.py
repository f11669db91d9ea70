"""Watchlists: the `Watch` domain object, the store of watches (`WatchBook`), the alert rules, and the in-memory
`WatchMatcher` that finds watched addresses among a block's transfers.

Rules of a watch: any movement in or out — or, with a minimum, only movements of at least that amount (in the
moved asset's own units, or in USD on the transfer's day by the stored daily prices: a transfer whose asset has no
price that day alerts and says so, rather than being dropped); always a counterparty rated high or severe; always
a new sanctions or risk label on the address (`tracing.monitor.alerts.retro_alerts`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlmodel import col, select

from storage import Database, OpsCounter, WatchRow, begin_write
from tracing.chain import ZERO_ADDRESS, Direction, Threshold, Transfer, parse_threshold
from tracing.monitor.alerts import AlertKind
from tracing.monitor.clock import Clock, SystemClock
from tracing.risk.report import Level

WATCH_REVISION = "watch_revision"
RISKY_LEVELS = frozenset({Level.HIGH, Level.SEVERE})


@dataclass(frozen=True, slots=True)
class Watch:
    """An address watched on one chain for one recipient: a channel (`channel`) or a person's direct chat."""

    id: int
    chain: str
    address: str
    platform: str
    chat: str
    channel: bool
    created_by: str
    note: str
    min_amount: Decimal | None
    active: bool
    created_at: datetime
    min_usd: Decimal | None = None
    """A minimum in USD on the transfer's day (stored as `$500` in the row's `min_amount`)."""

    @property
    def minimum_text(self) -> str:
        """The minimum as the user gave it: `1.5` (units) or `$500`; empty without one."""
        if self.min_usd is not None:
            return f"${self.min_usd:,}"
        return "" if self.min_amount is None else str(self.min_amount)

    @classmethod
    def from_row(cls, row: WatchRow) -> Watch:
        assert row.id is not None
        return cls(
            id=row.id,
            chain=row.chain,
            address=row.address,
            platform=row.platform,
            chat=row.chat,
            channel=row.channel,
            created_by=row.created_by,
            note=row.note,
            min_amount=Decimal(row.min_amount) if row.min_amount and row.min_amount[0] != "$" else None,
            active=row.active,
            created_at=row.created_at,
            min_usd=Decimal(row.min_amount[1:]) if row.min_amount and row.min_amount[0] == "$" else None,
        )


def parse_min_amount(text: str) -> Threshold:
    """A positive amount in the asset's units (`1.5`, `10000`) or in USD (`$500`), read by the one amount
    grammar."""
    return parse_threshold(text)


UsdOf = Callable[[Transfer], Decimal | None]
"""A transfer's USD value on its day (stored prices), None where its asset has no price that day."""


# -- rules ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleHit:
    kind: AlertKind
    reason: str


def counterparty_of(transfer: Transfer, address: str) -> str:
    return transfer.to_addr if transfer.from_addr == address else transfer.from_addr


def evaluate(
    watch: Watch, transfer: Transfer, counterparty_level: Level | None, usd_of: UsdOf | None = None
) -> list[RuleHit]:
    """The rules of `watch` that `transfer` (which touches the watched address) sets off; empty when none.
    `usd_of`: the transfer's USD on its day, for a watch with a minimum in USD."""
    hits: list[RuleHit] = []
    if counterparty_level in RISKY_LEVELS:
        assert counterparty_level is not None
        hits.append(RuleHit(AlertKind.COUNTERPARTY_RISK, f"counterparty rated {counterparty_level.value} risk"))
    if watch.min_usd is not None:
        usd = None if usd_of is None else usd_of(transfer)
        if usd is None:
            # No price that day: never a guess, and a missed alert is worse than an extra one.
            hits.append(
                RuleHit(AlertKind.THRESHOLD, f"no USD price that day to compare with the minimum {watch.minimum_text}")
            )
        elif usd >= watch.min_usd:
            hits.append(RuleHit(AlertKind.THRESHOLD, f"at least the minimum {watch.minimum_text} (${usd:,.2f})"))
    elif watch.min_amount is None:
        hits.append(RuleHit(AlertKind.MOVEMENT, "any movement in or out"))
    else:
        amount = transfer.amount()
        if amount is None:
            # Unknown decimals: the amount cannot be compared, and a missed alert is worse than an extra one.
            hits.append(RuleHit(AlertKind.THRESHOLD, f"amount not comparable with the minimum {watch.min_amount}"))
        elif amount >= watch.min_amount:
            hits.append(RuleHit(AlertKind.THRESHOLD, f"at least the minimum {watch.min_amount}"))
    return sorted(hits, key=lambda hit: -hit.kind.rank)


COINBASE = "coinbase"
"""The counterparty of newly mined bitcoin (a coinbase transaction spends nothing)."""
NO_ADDRESS = "(no address)"
"""The counterparty when the other side is only scripts without an address (OP_RETURN, bare multisig, …)."""
NOT_ADDRESSES = frozenset({ZERO_ADDRESS, COINBASE, NO_ADDRESS})
"""Counterparties that are no one: mints and burns, newly mined bitcoin, scripts without an address."""


def needs_risk(transfer: Transfer, address: str) -> str | None:
    """The counterparty whose risk the rules need, or None (the zero address of mints and burns, a coinbase, an
    output without an address have none)."""
    counterparty = counterparty_of(transfer, address)
    return None if counterparty in NOT_ADDRESSES or counterparty == address else counterparty


# -- the store -----------------------------------------------------------------------------------------------


def bump_revision(session: Session) -> int:
    """Advance the watch-set revision inside the caller's transaction (one atomic upsert)."""
    dialect = postgresql if session.connection().dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(OpsCounter)
        .values(name=WATCH_REVISION, value=1)
        .on_conflict_do_update(index_elements=["name"], set_={"value": col(OpsCounter.value) + 1})
        .returning(col(OpsCounter.value))
    )
    return int(session.execute(stmt).scalar_one())


class WatchBook:
    """Adds, removes and lists watches. Every change bumps the watch-set revision, so a `WatchMatcher` in any
    process reloads just what changed."""

    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()

    def watch(
        self,
        *,
        chain: str,
        address: str,
        platform: str,
        chat: str,
        channel: bool,
        created_by: str,
        note: str = "",
        min_amount: Decimal | None = None,
        min_usd: Decimal | None = None,
    ) -> tuple[Watch, bool]:
        """Watch `address` for `chat`; an existing watch of the same address for the same chat is updated (and
        reactivated). Returns the watch and whether it is new."""
        now = self.clock.now()
        with self.db.session() as session:
            begin_write(session)
            revision = bump_revision(session)
            row = session.scalars(
                select(WatchRow).where(
                    col(WatchRow.chain) == chain,
                    col(WatchRow.address) == address,
                    col(WatchRow.platform) == platform,
                    col(WatchRow.chat) == chat,
                )
            ).first()
            created = row is None or not row.active
            if row is None:
                row = WatchRow(chain=chain, address=address, platform=platform, chat=chat, created_at=now)
            if created:
                row.created_by = created_by[:120]
                row.created_at = now
            row.channel = channel
            row.note = note[:500]
            if min_usd is not None:
                row.min_amount = f"${min_usd}"
            else:
                row.min_amount = str(min_amount) if min_amount is not None else None
            row.active = True
            row.revision = revision
            row.updated_at = now
            session.add(row)
            session.flush()
            return Watch.from_row(row), created

    def unwatch(self, *, chain: str, address: str, platform: str, chat: str) -> Watch | None:
        """Stop watching; the row stays (inactive) because alerts and incidents point at it."""
        now = self.clock.now()
        with self.db.session() as session:
            begin_write(session)
            row = session.scalars(
                select(WatchRow).where(
                    col(WatchRow.chain) == chain,
                    col(WatchRow.address) == address,
                    col(WatchRow.platform) == platform,
                    col(WatchRow.chat) == chat,
                    col(WatchRow.active).is_(True),
                )
            ).first()
            if row is None:
                return None
            row.active = False
            row.revision = bump_revision(session)
            row.updated_at = now
            session.add(row)
            session.flush()
            return Watch.from_row(row)

    def get(self, watch_id: int) -> Watch | None:
        with self.db.session() as session:
            row = session.get(WatchRow, watch_id)
            return Watch.from_row(row) if row else None

    def for_chats(self, platform: str, chats: Sequence[str], *, limit: int = 200) -> list[Watch]:
        """Active watches whose alerts go to any of `chats`, oldest first."""
        with self.db.session() as session:
            rows = session.scalars(
                select(WatchRow)
                .where(
                    col(WatchRow.platform) == platform,
                    col(WatchRow.chat).in_(list(chats)),
                    col(WatchRow.active).is_(True),
                )
                .order_by(col(WatchRow.id))
                .limit(limit)
            )
            return [Watch.from_row(r) for r in rows]

    def count_for_chats(self, platform: str, chats: Sequence[str]) -> int:
        with self.db.session() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(WatchRow)
                    .where(
                        col(WatchRow.platform) == platform,
                        col(WatchRow.chat).in_(list(chats)),
                        col(WatchRow.active).is_(True),
                    )
                )
                or 0
            )

    @staticmethod
    def active_for(session: Session, chain: str, addresses: Iterable[str]) -> dict[str, list[Watch]]:
        """The active watches of each address on `chain` (exact: this is where matcher hits are confirmed)."""
        wanted = sorted(set(addresses))
        found: dict[str, list[Watch]] = {}
        for start in range(0, len(wanted), 500):
            rows = session.scalars(
                select(WatchRow)
                .where(
                    col(WatchRow.chain) == chain,
                    col(WatchRow.address).in_(wanted[start : start + 500]),
                    col(WatchRow.active).is_(True),
                )
                .order_by(col(WatchRow.id))
            )
            for row in rows:
                found.setdefault(row.address, []).append(Watch.from_row(row))
        return found

    def revision(self) -> int:
        with self.db.session() as session:
            row = session.get(OpsCounter, WATCH_REVISION)
            return row.value if row else 0

    def changes_since(self, revision: int) -> tuple[int, list[tuple[str, str]], list[tuple[str, str]]]:
        """(current revision, (chain, address) pairs watched now, pairs possibly no longer watched) since
        `revision`. A pair unwatched by one chat may still be watched by another: both lists are exact."""
        with self.db.session() as session:
            current = session.get(OpsCounter, WATCH_REVISION)
            now_revision = current.value if current else 0
            if now_revision <= revision:
                return now_revision, [], []
            changed = session.execute(
                select(col(WatchRow.chain), col(WatchRow.address), col(WatchRow.active)).where(
                    col(WatchRow.revision) > revision, col(WatchRow.revision) <= now_revision
                )
            ).all()
            added = {(chain, address) for chain, address, active in changed if active}
            dropped = {(chain, address) for chain, address, active in changed if not active} - added
            still = set()
            for chain in {c for c, _ in dropped}:
                addresses = [a for c, a in dropped if c == chain]
                still |= {(chain, a) for a in self.active_for(session, chain, addresses)}
            return now_revision, sorted(added | still), sorted(dropped - still)

    def active_pairs(self, batch: int = 10_000) -> Iterator[tuple[str, str]]:
        """Every watched (chain, address), streamed (for building a matcher over a million watches)."""
        with self.db.session() as session:
            result = session.execute(
                select(col(WatchRow.chain), col(WatchRow.address))
                .where(col(WatchRow.active).is_(True))
                .execution_options(yield_per=batch)
            )
            yield from ((chain, address) for chain, address in result)


# -- matching ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Match:
    """A transfer that touches a (probably) watched address; `WatchBook.active_for` confirms it."""

    transfer: Transfer
    address: str
    direction: Direction
    counterparties: tuple[str, ...] = ()
    """Every counterparty, largest first, where there can be several (a bitcoin transaction's other addresses);
    empty: just the transfer's other end."""


class WatchMatcher:
    """Which of a block's transfer endpoints are watched, fast enough for a million watched addresses.

    Holds, per chain, a set of the 64-bit `hash()` of each watched address (about 70 bytes per address instead of
    about 130 for the strings themselves). Python's string hash is salted per process, so nobody can craft
    collisions; the rare accidental one (1 in 10^13 per lookup at a million watches) is a candidate that
    `WatchBook.active_for` does not confirm — one extra query, never a wrong alert. For the same reason an
    unwatched address is not removed (its hash might be another's): it stays as a harmless stale candidate until
    stale entries reach `compact_at` of the set, when the set is rebuilt from the store.
    """

    def __init__(self, *, compact_at: float = 0.1) -> None:
        self._chains: dict[str, set[int]] = {}
        self.revision = -1
        self.stale = 0
        self.compact_at = compact_at

    def __len__(self) -> int:
        return sum(len(s) for s in self._chains.values())

    def add(self, chain: str, address: str) -> None:
        self._chains.setdefault(chain, set()).add(hash(address))

    def __contains__(self, pair: tuple[str, str]) -> bool:
        chain, address = pair
        return hash(address) in self._chains.get(chain, ())

    def matches(self, chain: str, transfers: Iterable[Transfer]) -> list[Match]:
        """Every (transfer, watched endpoint) of `transfers`, in order; a self-transfer matches once."""
        watched = self._chains.get(chain)
        if not watched:
            return []
        found: list[Match] = []
        for t in transfers:
            if hash(t.from_addr) in watched:
                direction = Direction.SELF if t.from_addr == t.to_addr else Direction.OUT
                found.append(Match(t, t.from_addr, direction))
                if direction is Direction.SELF:
                    continue
            if hash(t.to_addr) in watched:
                found.append(Match(t, t.to_addr, Direction.IN))
        return found

    def load(self, book: WatchBook) -> None:
        """Rebuild from every active watch in the store."""
        revision = book.revision()
        chains: dict[str, set[int]] = {}
        for chain, address in book.active_pairs():
            chains.setdefault(chain, set()).add(hash(address))
        self._chains = chains
        self.revision = revision
        self.stale = 0

    def refresh(self, book: WatchBook) -> bool:
        """Apply the watch changes made since the last load or refresh (by any process). True when any."""
        if self.revision < 0:
            self.load(book)
            return True
        revision, watched, unwatched = book.changes_since(self.revision)
        if revision == self.revision:
            return False
        for chain, address in watched:
            self.add(chain, address)
        self.stale += len(unwatched)
        self.revision = revision
        if self.stale > max(1000, self.compact_at * len(self)):
            self.load(book)
        return True
