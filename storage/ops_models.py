"""Tables for watching and alerting: watches, alerts, incidents and their timeline, the outbox of chat messages,
per-chain cursors with recent block hashes (reorg detection), escalation policies and on-call rosters.

Everything the watcher and the notifier know lives here, so either can be killed and restarted at any point.
Times are stored in UTC and always read back timezone-aware (`UtcDateTime`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from storage.types import BigId, Uint256


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and read back timezone-aware on every dialect (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime given to a UTC column: {value!r}")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def begin_write(session: Session) -> None:
    """Start the session's transaction as a writer.

    SQLite: `BEGIN IMMEDIATE` takes the write lock up front (waiting out other writers), so a transaction that
    reads and then writes cannot fail on a stale snapshot. PostgreSQL needs nothing: row locks do that job.
    Call it before anything else in the session.
    """
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _id() -> Column[int]:
    return Column(BigId, primary_key=True, autoincrement=True)


def _at(nullable: bool = False) -> Column[datetime]:
    return Column(UtcDateTime(), nullable=nullable)


class WatchRow(SQLModel, table=True):
    """One watched address for one recipient chat. Unwatching keeps the row (alerts point at it) inactive."""

    __tablename__ = "watch"
    __table_args__ = (
        UniqueConstraint("chain", "address", "platform", "chat", name="uq_watch_target"),
        Index("ix_watch_address", "address", "chain"),
        Index("ix_watch_chat", "platform", "chat"),
        Index("ix_watch_revision", "revision"),
    )

    id: int | None = Field(default=None, sa_column=_id())
    chain: str = Field(sa_column=Column(String(32), nullable=False))
    address: str = Field(sa_column=Column(String(90), nullable=False))
    platform: str = Field(sa_column=Column(String(16), nullable=False))
    chat: str = Field(sa_column=Column(String(120), nullable=False))
    channel: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    created_by: str = Field(default="", sa_column=Column(String(120), nullable=False))
    note: str = Field(default="", sa_column=Column(String(500), nullable=False))
    min_amount: str | None = Field(default=None, sa_column=Column(String(80), nullable=True))
    active: bool = Field(default=True, sa_column=Column(Boolean, nullable=False))
    revision: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_at())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_at())


class IncidentRow(SQLModel, table=True):
    """Alerts about one watch (or one address in one chat) grouped into something an officer acts on."""

    __tablename__ = "incident"
    __table_args__ = (
        Index("ix_incident_watch", "watch_id", "state"),
        Index("ix_incident_chat", "platform", "chat", "state"),
        Index("ix_incident_escalation", "state", "next_escalation_at"),
    )

    id: int | None = Field(default=None, sa_column=_id())
    platform: str = Field(sa_column=Column(String(16), nullable=False))
    chat: str = Field(sa_column=Column(String(120), nullable=False))
    chain: str = Field(sa_column=Column(String(32), nullable=False))
    address: str = Field(sa_column=Column(String(90), nullable=False))
    watch_id: int | None = Field(default=None, sa_column=Column(BigInteger, ForeignKey("watch.id"), nullable=True))
    state: str = Field(default="open", sa_column=Column(String(16), nullable=False))
    title: str = Field(default="", sa_column=Column(String(300), nullable=False))
    opened_at: datetime = Field(default_factory=utcnow, sa_column=_at())
    last_alert_at: datetime = Field(default_factory=utcnow, sa_column=_at())
    alert_count: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    owner_key: str = Field(default="", sa_column=Column(String(120), nullable=False))
    owner_name: str = Field(default="", sa_column=Column(String(120), nullable=False))
    acked_by: str = Field(default="", sa_column=Column(String(120), nullable=False))
    acked_at: datetime | None = Field(default=None, sa_column=_at(nullable=True))
    resolved_by: str = Field(default="", sa_column=Column(String(120), nullable=False))
    resolved_at: datetime | None = Field(default=None, sa_column=_at(nullable=True))
    disposition: str = Field(default="", sa_column=Column(String(24), nullable=False))
    resolution_note: str = Field(default="", sa_column=Column(Text, nullable=False))
    escalation_level: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    next_escalation_at: datetime | None = Field(default=None, sa_column=_at(nullable=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_at())


class IncidentEventRow(SQLModel, table=True):
    """An incident's timeline: opened, alert joined, acknowledged, escalated, assigned, resolved, ..."""

    __tablename__ = "incident_event"
    __table_args__ = (Index("ix_incident_event_incident", "incident_id", "id"),)

    id: int | None = Field(default=None, sa_column=_id())
    incident_id: int = Field(sa_column=Column(BigInteger, ForeignKey("incident.id"), nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_column=_at())
    actor: str = Field(default="system", sa_column=Column(String(120), nullable=False))
    kind: str = Field(sa_column=Column(String(24), nullable=False))
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))


class AlertRow(SQLModel, table=True):
    """One alert for one recipient. `dedup_key` (chain, tx, transfer position, watch — or the label change and
    the recipient) makes it exist once, whatever restarts or reorgs happen."""

    __tablename__ = "alert"
    __table_args__ = (
        UniqueConstraint("dedup_key", name="uq_alert_dedup"),
        Index("ix_alert_chain_block", "chain", "block_number"),
        Index("ix_alert_status", "chain", "status", "block_number"),
        Index("ix_alert_incident", "incident_id"),
        Index("ix_alert_address", "chain", "address", "counterparty"),
    )

    id: int | None = Field(default=None, sa_column=_id())
    dedup_key: str = Field(sa_column=Column(String(200), nullable=False))
    kind: str = Field(sa_column=Column(String(24), nullable=False))
    status: str = Field(default="provisional", sa_column=Column(String(16), nullable=False))
    watch_id: int | None = Field(default=None, sa_column=Column(BigInteger, ForeignKey("watch.id"), nullable=True))
    incident_id: int | None = Field(
        default=None, sa_column=Column(BigInteger, ForeignKey("incident.id"), nullable=True)
    )
    platform: str = Field(sa_column=Column(String(16), nullable=False))
    chat: str = Field(sa_column=Column(String(120), nullable=False))
    chain: str = Field(sa_column=Column(String(32), nullable=False))
    address: str = Field(sa_column=Column(String(90), nullable=False))
    direction: str = Field(default="", sa_column=Column(String(8), nullable=False))
    counterparty: str | None = Field(default=None, sa_column=Column(String(90), nullable=True))
    tx_hash: str | None = Field(default=None, sa_column=Column(String(66), nullable=True))
    transfer_kind: str | None = Field(default=None, sa_column=Column(String(8), nullable=True))
    position: str | None = Field(default=None, sa_column=Column(String(80), nullable=True))
    block_number: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    block_hash: str | None = Field(default=None, sa_column=Column(String(66), nullable=True))
    timestamp: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    token: str | None = Field(default=None, sa_column=Column(String(90), nullable=True))
    value: int | None = Field(default=None, sa_column=Column(Uint256(), nullable=True))
    decimals: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    symbol: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    details: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_at())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_at())
    confirmed_at: datetime | None = Field(default=None, sa_column=_at(nullable=True))


class OutboxMessage(SQLModel, table=True):
    """A chat message to post (or edit), written in the same transaction as the change it reports and drained
    by the notifier: claimed with a lease, retried with backoff, never deleted when it fails."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_ready", "status", "next_attempt_at"),
        Index("ix_outbox_chat", "platform", "chat", "status", "id"),
        Index("ix_outbox_alert", "alert_id", "kind"),
        Index("ix_outbox_incident", "incident_id"),
    )

    id: int | None = Field(default=None, sa_column=_id())
    platform: str = Field(sa_column=Column(String(16), nullable=False))
    chat: str = Field(sa_column=Column(String(120), nullable=False))
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    alert_id: int | None = Field(default=None, sa_column=Column(BigInteger, ForeignKey("alert.id"), nullable=True))
    incident_id: int | None = Field(
        default=None, sa_column=Column(BigInteger, ForeignKey("incident.id"), nullable=True)
    )
    payload: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", sa_column=Column(String(12), nullable=False))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=_at())
    lease_until: datetime | None = Field(default=None, sa_column=_at(nullable=True))
    claimed_by: str = Field(default="", sa_column=Column(String(64), nullable=False))
    message_id: str = Field(default="", sa_column=Column(String(120), nullable=False))
    group_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    content_hash: str = Field(default="", sa_column=Column(String(64), nullable=False))
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_at())
    sent_at: datetime | None = Field(default=None, sa_column=_at(nullable=True))


class ChainCursor(SQLModel, table=True):
    """The last block the watcher finished on a chain (number and hash), and its running counts."""

    __tablename__ = "chain_cursor"

    chain: str = Field(sa_column=Column(String(32), primary_key=True))
    number: int = Field(sa_column=Column(BigInteger, nullable=False))
    hash: str = Field(default="", sa_column=Column(String(66), nullable=False))
    alerts: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    poisoning_dropped: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    reorgs: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_at())
    head: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    head_seen_at: datetime | None = Field(default=None, sa_column=_at(nullable=True))
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    last_error_at: datetime | None = Field(default=None, sa_column=_at(nullable=True))


class RecentBlock(SQLModel, table=True):
    """Hashes of the last blocks the watcher processed: a replaced block is found by comparing them."""

    __tablename__ = "recent_block"

    chain: str = Field(sa_column=Column(String(32), primary_key=True))
    number: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: str = Field(sa_column=Column(String(66), nullable=False))
    parent_hash: str = Field(default="", sa_column=Column(String(66), nullable=False))


class EscalationPolicyRow(SQLModel, table=True):
    """How long an open incident in a chat may stay unacknowledged before each escalation level."""

    __tablename__ = "escalation_policy"

    platform: str = Field(sa_column=Column(String(16), primary_key=True))
    chat: str = Field(sa_column=Column(String(120), primary_key=True))
    steps_minutes: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    updated_by: str = Field(default="", sa_column=Column(String(120), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_at())


class OnCallRow(SQLModel, table=True):
    """Who is on call for a chat at each escalation level (1 = first responder, 2 = the next level, ...)."""

    __tablename__ = "oncall"

    platform: str = Field(sa_column=Column(String(16), primary_key=True))
    chat: str = Field(sa_column=Column(String(120), primary_key=True))
    level: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    user_key: str = Field(sa_column=Column(String(120), nullable=False))
    user_name: str = Field(default="", sa_column=Column(String(120), nullable=False))
    set_by: str = Field(default="", sa_column=Column(String(120), nullable=False))
    set_at: datetime = Field(default_factory=utcnow, sa_column=_at())


class OpsCounter(SQLModel, table=True):
    """Named monotonic counters (`watch_revision`: bumped by every watch change, so watchers reload only what
    changed). Updated with `value = value + 1`, which serialises writers on the row."""

    __tablename__ = "ops_counter"

    name: str = Field(sa_column=Column(String(64), primary_key=True))
    value: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
