"""Alerts: what happened to a watched address (or to an address someone checked), for whom, and why.

An alert exists once per dedup key — (chain, tx, transfer position, watch) for movements, (address, label,
recipient) for label changes — enforced by a unique constraint. It is written together with its incident and
its outbox message. Address-poisoning spam (zero-value transfers, look-alikes of a known counterparty) is dropped
before it becomes an alert, and counted. `retro_alerts` tells the people concerned when an address they watch,
or checked in the last 90 days, gets a new sanctions or risk label.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import exists
from sqlalchemy.orm import Session
from sqlmodel import col, select

from storage import AlertRow, Database, RiskCheckRow, WatchRow
from tracing.chain import Direction, Transfer, short
from tracing.labels import Category, LabelFact, LabelHook, LabelIdentity, label_applies
from tracing.monitor.clock import Clock, SystemClock
from tracing.monitor.counters import OpsCount, bump
from tracing.monitor.incidents import DEFAULT_WINDOW, attach_alert, note_alert_change
from tracing.monitor.outbox import OutboxKind, enqueue

log = logging.getLogger(__name__)

RISK_CHECK_MEMORY = timedelta(days=90)
"""How long someone who ran /risk on an address hears about its new labels."""

LOOKALIKE_HEAD = 4
LOOKALIKE_TAIL = 4
"""Characters after an address's common prefix and at its end that wallets show (`0x1234…abcd`) and poisoners
copy."""


class AlertKind(StrEnum):
    """Why an alert was raised, most serious last (an alert with several reasons takes the most serious)."""

    MOVEMENT = "movement"
    THRESHOLD = "threshold"
    COUNTERPARTY_RISK = "counterparty_risk"
    LABEL_CHANGE = "label_change"

    @property
    def rank(self) -> int:
        return list(AlertKind).index(self)

    @property
    def display(self) -> str:
        return _KIND_TITLES[self]


_KIND_TITLES = {
    AlertKind.MOVEMENT: "Movement",
    AlertKind.THRESHOLD: "Large movement",
    AlertKind.COUNTERPARTY_RISK: "Risky counterparty",
    AlertKind.LABEL_CHANGE: "New risk label",
}


class AlertStatus(StrEnum):
    PROVISIONAL = "provisional"
    """Seen at the chain head, not yet buried under the chain's confirmation depth."""
    CONFIRMED = "confirmed"
    REORGED_OUT = "reorged_out"
    """Its block was replaced by a reorganisation: the movement did not (or not yet) happen."""


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    dedup_key: str
    kind: AlertKind
    status: AlertStatus
    watch_id: int | None
    incident_id: int | None
    platform: str
    chat: str
    chain: str
    address: str
    direction: Direction | None
    counterparty: str | None
    tx_hash: str | None
    transfer_kind: str | None
    position: str | None
    block_number: int | None
    block_hash: str | None
    timestamp: int | None
    token: str | None
    value: int | None
    decimals: int | None
    symbol: str | None
    reasons: tuple[str, ...]
    details: Mapping[str, object] = field(hash=False, compare=False)
    created_at: datetime | None = None
    confirmed_at: datetime | None = None

    @classmethod
    def from_row(cls, row: AlertRow) -> Alert:
        assert row.id is not None
        return cls(
            id=row.id,
            dedup_key=row.dedup_key,
            kind=AlertKind(row.kind),
            status=AlertStatus(row.status),
            watch_id=row.watch_id,
            incident_id=row.incident_id,
            platform=row.platform,
            chat=row.chat,
            chain=row.chain,
            address=row.address,
            direction=Direction(row.direction) if row.direction else None,
            counterparty=row.counterparty,
            tx_hash=row.tx_hash,
            transfer_kind=row.transfer_kind,
            position=row.position,
            block_number=row.block_number,
            block_hash=row.block_hash,
            timestamp=row.timestamp,
            token=row.token,
            value=row.value,
            decimals=row.decimals,
            symbol=row.symbol,
            reasons=tuple(row.reasons or ()),
            details=dict(row.details or {}),
            created_at=row.created_at,
            confirmed_at=row.confirmed_at,
        )


def transfer_dedup_key(transfer: Transfer, watch_id: int) -> str:
    """One alert per transfer (chain, tx, kind and position within the tx) per watch."""
    return f"tx:{transfer.chain}:{transfer.tx_hash}:{transfer.kind.value}:{transfer.position}:w{watch_id}"


def label_dedup_key(address: str, label: LabelIdentity, recipient: str) -> str:
    """One alert per new label of an address per recipient (a watch, or a chat that ran /risk)."""
    identity = "\x1f".join((address, *label, recipient))
    return "label:" + hashlib.sha256(identity.encode()).hexdigest()


# -- address poisoning ---------------------------------------------------------------------------------------


def looks_alike(a: str, b: str, head: int = LOOKALIKE_HEAD, tail: int = LOOKALIKE_TAIL) -> bool:
    """Different addresses that share the characters a wallet shows: `0x1234…abcd`, `TR7NH…Lj6t`, `bc1qxy2k…0wlh`.
    The head is compared after what every address of its kind shares (`0x`; TRON's `T`; a bitcoin Base58 version
    character `1`, `3`, `m`, `n`, `2`; a bech32 hrp, its `1` and the witness version, as in `bc1q`), which must be
    the same too."""
    start = _shared_prefix(a)
    return a != b and a[: start + head] == b[: start + head] and a[-tail:] == b[-tail:]


def _shared_prefix(address: str) -> int:
    """How many leading characters `address` shares with every address of its kind (see `looks_alike`)."""
    if address[:2] == "0x":
        return 2
    hrp, separator, _ = address.rpartition("1") if address[:1] in "bt" else ("", "", "")
    if separator and hrp in ("bc", "tb", "bcrt"):
        return len(hrp) + 2  # hrp, `1`, witness version
    return 1  # TRON's `T`, a Base58 version character


class PoisonReason(StrEnum):
    ZERO_VALUE = "zero_value"
    LOOKALIKE = "lookalike"


def poisoning(transfer: Transfer, watched: str, counterparty: str, known: Collection[str]) -> PoisonReason | None:
    """Why `transfer` is address-poisoning spam rather than a movement worth an alert, or None.

    Zero-value transfers move nothing (a token's `transferFrom(victim, x, 0)` needs no signature of the victim).
    A counterparty never seen before that looks like a known counterparty (or like the watched address itself)
    is a look-alike planted in the history for the victim to copy.
    """
    if transfer.value == 0:
        return PoisonReason.ZERO_VALUE
    if counterparty in known or counterparty == watched:
        return None
    if looks_alike(counterparty, watched) or any(looks_alike(counterparty, k) for k in known):
        return PoisonReason.LOOKALIKE
    return None


# -- writing alerts ------------------------------------------------------------------------------------------


def record_alert(session: Session, row: AlertRow, now: datetime, *, window: timedelta = DEFAULT_WINDOW) -> Alert | None:
    """Store a new alert with its incident and its outbox post, in the caller's transaction.

    Returns None when the dedup key exists already — except for an alert that was reorged out and whose
    movement is back (re-included after the reorg): that one is revived and its message edited.
    """
    existing = session.scalars(select(AlertRow).where(col(AlertRow.dedup_key) == row.dedup_key)).first()
    if existing is not None:
        if existing.status == AlertStatus.REORGED_OUT.value and row.block_hash:
            existing.status = AlertStatus.PROVISIONAL.value
            existing.block_number, existing.block_hash, existing.timestamp = (
                row.block_number,
                row.block_hash,
                row.timestamp,
            )
            existing.updated_at = now
            session.add(existing)
            note_alert_change(session, existing, f"alert #{existing.id} is back, in block {row.block_number}", now)
            _edit(session, existing, now)
        return None
    row.created_at = row.updated_at = now
    session.add(row)
    session.flush()
    attach_alert(session, row, now, window=window)
    session.add(row)
    enqueue(session, platform=row.platform, chat=row.chat, kind=OutboxKind.ALERT, alert_id=row.id, now=now)
    bump(session, OpsCount.ALERTS, row.chain, row.kind)
    session.flush()
    return Alert.from_row(row)


def set_status(session: Session, row: AlertRow, status: AlertStatus, now: datetime) -> None:
    """Change an alert's status in the caller's transaction; its message is edited to match."""
    if row.status == status.value:
        return
    row.status = status.value
    row.updated_at = now
    if status is AlertStatus.CONFIRMED:
        row.confirmed_at = now
    session.add(row)
    if status is AlertStatus.REORGED_OUT:
        note_alert_change(session, row, f"alert #{row.id} reorged out of block {row.block_number}", now)
    _edit(session, row, now)


def _edit(session: Session, row: AlertRow, now: datetime) -> None:
    enqueue(session, platform=row.platform, chat=row.chat, kind=OutboxKind.ALERT_EDIT, alert_id=row.id, now=now)


class AlertBook:
    """Reads alerts."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, alert_id: int) -> Alert | None:
        with self.db.session() as session:
            row = session.get(AlertRow, alert_id)
            return Alert.from_row(row) if row else None

    def many(self, ids: Sequence[int]) -> list[Alert]:
        """The alerts with these ids, in the order given (missing ids skipped)."""
        if not ids:
            return []
        with self.db.session() as session:
            rows = {r.id: r for r in session.scalars(select(AlertRow).where(col(AlertRow.id).in_(list(ids))))}
        return [Alert.from_row(rows[i]) for i in ids if i in rows]

    def all(self, *, chain: str | None = None) -> list[Alert]:
        query = select(AlertRow).order_by(col(AlertRow.id))
        if chain is not None:
            query = query.where(col(AlertRow.chain) == chain)
        with self.db.session() as session:
            return [Alert.from_row(r) for r in session.scalars(query)]


# -- retro-alerts on new labels ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Recipient:
    key: str
    platform: str
    chat: str
    chain: str
    watch_id: int | None


def retro_alerts(
    db: Database,
    before: set[LabelFact],
    after: set[LabelFact],
    *,
    session: Session | None = None,
    clock: Clock | None = None,
    memory: timedelta = RISK_CHECK_MEMORY,
) -> list[Alert]:
    """Alert the watchers of an address, and the chats that ran /risk on it within `memory`, about each sanctions
    or risk label it has in `after` but not in `before`. Pass `session` to write in the caller's transaction
    (the label change's own), so the label change and its alerts commit together."""
    new = sorted(fact for fact in after - before if Category(fact[1][2]).illicit)
    if not new:
        return []
    now = (clock or SystemClock()).now()
    if session is not None:
        return _retro(session, new, now, memory)
    with db.session() as own:
        return _retro(own, new, now, memory)


def retro_alert_hook(db: Database, clock: Clock | None = None) -> LabelHook:
    """`retro_alerts` as a `LabelBook` hook: runs inside each label change's transaction."""

    def hook(session: Session, before: set[LabelFact], after: set[LabelFact]) -> None:
        retro_alerts(db, before, after, session=session, clock=clock)

    return hook


def _retro(session: Session, new: Sequence[LabelFact], now: datetime, memory: timedelta) -> list[Alert]:
    if not _anyone_listening(session, now - memory):
        return []  # a fresh store loading its first label sets: nobody to tell, skip the per-address lookups
    addresses = sorted({address for address, _ in new})
    recipients = _recipients(session, addresses, now - memory)
    created: list[Alert] = []
    for address, label in new:
        label_chain, source, category, name = label
        for recipient in recipients.get(address, ()):
            if not label_applies(label_chain, address, recipient.chain):
                continue
            title = Category(category).display
            row = AlertRow(
                dedup_key=label_dedup_key(address, label, recipient.key),
                kind=AlertKind.LABEL_CHANGE.value,
                status=AlertStatus.CONFIRMED.value,
                watch_id=recipient.watch_id,
                platform=recipient.platform,
                chat=recipient.chat,
                chain=recipient.chain,
                address=address,
                reasons=[f"{short(address)} is newly labelled {title}: {name} ({source})"],
                details={
                    "label": {"chain": label_chain, "source": source, "category": category, "name": name},
                    "why": "watched" if recipient.watch_id is not None else "risk_checked",
                },
                confirmed_at=now,
            )
            alert = record_alert(session, row, now)
            if alert is not None:
                created.append(alert)
    if created:
        log.info("label change: %d retro-alerts for %d addresses", len(created), len(addresses))
    return created


def _anyone_listening(session: Session, since: datetime) -> bool:
    watching = session.scalar(select(exists().where(col(WatchRow.active).is_(True))))
    return bool(watching) or bool(session.scalar(select(exists().where(col(RiskCheckRow.at) >= since))))


def _recipients(session: Session, addresses: Sequence[str], since: datetime) -> dict[str, list[_Recipient]]:
    """Per address: its active watches, then the chats that checked it since `since` and do not watch it."""
    found: dict[str, list[_Recipient]] = defaultdict(list)
    seen: set[tuple[str, str, str, str]] = set()
    for start in range(0, len(addresses), 500):
        chunk = list(addresses[start : start + 500])
        for w in session.scalars(
            select(WatchRow).where(col(WatchRow.address).in_(chunk), col(WatchRow.active).is_(True))
        ):
            assert w.id is not None
            seen.add((w.address, w.chain, w.platform, w.chat))
            found[w.address].append(_Recipient(f"w{w.id}", w.platform, w.chat, w.chain, w.id))
        for check in session.scalars(
            select(RiskCheckRow)
            .where(col(RiskCheckRow.address).in_(chunk), col(RiskCheckRow.at) >= since)
            .order_by(col(RiskCheckRow.id))
        ):
            where = (check.address, check.chain, check.platform, check.chat)
            if where in seen or not check.chat:
                continue
            seen.add(where)
            key = f"risk:{check.platform}:{check.chat}:{check.chain}"
            found[check.address].append(_Recipient(key, check.platform, check.chat, check.chain, None))
    return found


def known_counterparties(session: Session, chain: str, addresses: Iterable[str]) -> dict[str, set[str]]:
    """Counterparties each address has already been alerted about (not reorged out): the look-alike filter's
    memory of who the address really deals with."""
    wanted = sorted(set(addresses))
    out: dict[str, set[str]] = {a: set() for a in wanted}
    for start in range(0, len(wanted), 500):
        rows = session.execute(
            select(col(AlertRow.address), col(AlertRow.counterparty))
            .where(
                col(AlertRow.chain) == chain,
                col(AlertRow.address).in_(wanted[start : start + 500]),
                col(AlertRow.counterparty).is_not(None),
                col(AlertRow.status) != AlertStatus.REORGED_OUT.value,
            )
            .distinct()
        )
        for address, counterparty in rows:
            if counterparty:
                out[address].add(counterparty)
    return out
