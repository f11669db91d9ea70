"""Tables. Addresses are stored in one canonical form: lower-case `0x` + 40 hex characters.

Rows are storage records; the domain objects that flow between layers live in `tracing` and are built from
these rows there.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import JSON, BigInteger, Boolean, Column, DateTime, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import BigId, Uint256

ANY_EVM = "*"
"""The `chain` value of a label that holds on every EVM chain (the same 0x address is one identity)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def _id() -> Column[int]:
    return Column(BigId, primary_key=True, autoincrement=True)


class LabelRow(SQLModel, table=True):
    __tablename__ = "label"
    __table_args__ = (
        UniqueConstraint("address", "chain", "source", "category", "name", name="uq_label_identity"),
        Index("ix_label_address", "address"),
        Index("ix_label_source", "source"),
    )

    id: int | None = Field(default=None, sa_column=_id())
    address: str = Field(sa_column=Column(String(90), nullable=False))
    chain: str = Field(default=ANY_EVM, sa_column=Column(String(32), nullable=False))
    category: str = Field(sa_column=Column(String(24), nullable=False))
    name: str = Field(sa_column=Column(String(300), nullable=False))
    source: str = Field(sa_column=Column(String(64), nullable=False))
    source_url: str = Field(default="", sa_column=Column(String(500), nullable=False))
    confidence: float = 1.0
    first_seen: date | None = None
    delisted_on: date | None = None
    created_by: str = Field(default="system", sa_column=Column(String(120), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    details: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class LabelSetRow(SQLModel, table=True):
    """One row per imported label set: what was loaded, from where, when, how many rows."""

    __tablename__ = "label_set"

    source: str = Field(sa_column=Column(String(64), primary_key=True))
    version: str = Field(default="", sa_column=Column(String(120), nullable=False))
    source_url: str = Field(default="", sa_column=Column(String(500), nullable=False))
    licence: str = Field(default="", sa_column=Column(String(120), nullable=False))
    row_count: int = 0
    imported_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class AuditRow(SQLModel, table=True):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_at", "at"), Index("ix_audit_actor", "platform", "actor"))

    id: int | None = Field(default=None, sa_column=_id())
    at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    actor: str = Field(sa_column=Column(String(120), nullable=False))
    platform: str = Field(sa_column=Column(String(16), nullable=False))
    chat: str = Field(default="", sa_column=Column(String(120), nullable=False))
    command: str = Field(sa_column=Column(String(40), nullable=False))
    arguments: str = Field(default="", sa_column=Column(Text, nullable=False))
    outcome: str = Field(sa_column=Column(String(16), nullable=False))
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
    ref: str = Field(default="", sa_column=Column(String(32), nullable=False))


class TransferRow(SQLModel, table=True):
    """A value movement. `position` makes it unique within its transaction: `tx` for the native value of the
    transaction, `log:<index>` for an ERC-20 Transfer log, `trace:<a.b.c>` for an internal call."""

    __tablename__ = "transfer"
    __table_args__ = (
        UniqueConstraint("chain", "tx_hash", "kind", "position", name="uq_transfer_identity"),
        Index("ix_transfer_from", "chain", "from_addr", "block_number"),
        Index("ix_transfer_to", "chain", "to_addr", "block_number"),
        Index("ix_transfer_block", "chain", "block_number"),
    )

    id: int | None = Field(default=None, sa_column=_id())
    chain: str = Field(sa_column=Column(String(32), nullable=False))
    block_number: int = Field(sa_column=Column(BigInteger, nullable=False))
    block_hash: str = Field(default="", sa_column=Column(String(66), nullable=False))
    timestamp: int = Field(sa_column=Column(BigInteger, nullable=False))
    tx_hash: str = Field(sa_column=Column(String(66), nullable=False))
    kind: str = Field(sa_column=Column(String(8), nullable=False))
    position: str = Field(sa_column=Column(String(80), nullable=False))
    token: str | None = Field(default=None, sa_column=Column(String(90), nullable=True))
    from_addr: str = Field(sa_column=Column(String(90), nullable=False))
    to_addr: str = Field(sa_column=Column(String(90), nullable=False))
    value: int = Field(sa_column=Column(Uint256(), nullable=False))
    decimals: int | None = None
    symbol: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    source: str = Field(default="rpc", sa_column=Column(String(16), nullable=False))


class IndexedRangeRow(SQLModel, table=True):
    """Block ranges whose transfers are fully in the index, per chain and source (for resumable indexing and for
    the coverage statement of every report)."""

    __tablename__ = "indexed_range"
    __table_args__ = (Index("ix_indexed_range_chain", "chain", "from_block"),)

    id: int | None = Field(default=None, sa_column=_id())
    chain: str = Field(sa_column=Column(String(32), nullable=False))
    chain_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    source: str = Field(default="rpc", sa_column=Column(String(16), nullable=False))
    from_block: int = Field(sa_column=Column(BigInteger, nullable=False))
    to_block: int = Field(sa_column=Column(BigInteger, nullable=False))
    internal_coverage: str = Field(default="unknown", sa_column=Column(String(32), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class RiskCheckRow(SQLModel, table=True):
    """Who asked `/risk` about which address, and where: lets later label changes reach the people concerned."""

    __tablename__ = "risk_check"
    __table_args__ = (Index("ix_risk_check_address", "address", "at"),)

    id: int | None = Field(default=None, sa_column=_id())
    address: str = Field(sa_column=Column(String(90), nullable=False))
    chain: str = Field(sa_column=Column(String(32), nullable=False))
    platform: str = Field(sa_column=Column(String(16), nullable=False))
    chat: str = Field(default="", sa_column=Column(String(120), nullable=False))
    actor: str = Field(default="", sa_column=Column(String(120), nullable=False))
    level: str = Field(default="", sa_column=Column(String(16), nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class KeyValueRow(SQLModel, table=True):
    """Small durable settings the bot changes at run time (roles set with /role, the on-call roster, ...)."""

    __tablename__ = "kv"

    key: str = Field(sa_column=Column(String(200), primary_key=True))
    value: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class ButtonRow(SQLModel, table=True):
    """A chat button's action, kept server-side: the platform only carries this row's random id (Telegram allows 64
    bytes of callback data), the id cannot be guessed, and buttons keep working across restarts."""

    __tablename__ = "button"
    __table_args__ = (Index("ix_button_expires", "expires_at"),)

    id: str = Field(sa_column=Column(String(32), primary_key=True))
    platform: str = Field(sa_column=Column(String(16), nullable=False))
    chat: str = Field(sa_column=Column(String(120), nullable=False))
    pressable_by: str = Field(default="", sa_column=Column(String(120), nullable=False))
    """Who may press it (`platform:user_id`); empty means anyone in `chat` (the command's role is still checked)."""
    command: str = Field(sa_column=Column(Text, nullable=False))
    once: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    created_by: str = Field(default="", sa_column=Column(String(120), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    used_by: str = Field(default="", sa_column=Column(String(120), nullable=False))


class TokenRow(SQLModel, table=True):
    """A token's symbol and decimals as read from its contract (`symbol()`, `decimals()`), cached so each token is
    asked once. A row whose symbol and decimals are both None records that the contract answered neither."""

    __tablename__ = "token"

    chain: str = Field(sa_column=Column(String(32), primary_key=True))
    address: str = Field(sa_column=Column(String(64), primary_key=True))
    symbol: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    decimals: int | None = None
    source: str = Field(default="rpc", sa_column=Column(String(32), nullable=False))
    checked_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class PriceRow(SQLModel, table=True):
    """The USD price of one asset on one UTC day. `asset` is a price key: a coin symbol (`ETH`, `BTC`) or
    `<chain>:<token address>`. `usd` is a decimal string; None records that the price API had no price for that
    day, so it is not asked again."""

    __tablename__ = "price_daily"

    asset: str = Field(sa_column=Column(String(100), primary_key=True))
    day: date = Field(primary_key=True)
    usd: str | None = Field(default=None, sa_column=Column(String(40), nullable=True))
    source: str = Field(sa_column=Column(String(64), nullable=False))
    fetched_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class UtxoTxRow(SQLModel, table=True):
    """A mined bitcoin transaction: where it is and its totals in satoshis. `fee` and `input_value` are None for a
    coinbase and while an input's value is unknown. Its inputs and outputs are `utxo_input` and `utxo_output`."""

    __tablename__ = "utxo_tx"
    __table_args__ = (Index("ix_utxo_tx_block", "chain", "block_height"),)

    chain: str = Field(sa_column=Column(String(32), primary_key=True))
    txid: str = Field(sa_column=Column(String(64), primary_key=True))
    block_height: int = Field(sa_column=Column(BigInteger, nullable=False))
    block_hash: str = Field(sa_column=Column(String(64), nullable=False))
    timestamp: int = Field(sa_column=Column(BigInteger, nullable=False))
    position: int = 0
    version: int = Field(default=1, sa_column=Column(BigInteger, nullable=False))
    locktime: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    input_value: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    output_value: int = Field(sa_column=Column(BigInteger, nullable=False))
    fee: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    coinbase: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    source: str = Field(default="rpc", sa_column=Column(String(16), nullable=False))


class UtxoInputRow(SQLModel, table=True):
    """Input `idx` of a bitcoin transaction: the outpoint it spends (None for a coinbase) and, where known, that
    output's address, value and script type."""

    __tablename__ = "utxo_input"
    __table_args__ = (Index("ix_utxo_input_spends", "chain", "spent_txid", "spent_vout"),)

    chain: str = Field(sa_column=Column(String(32), primary_key=True))
    txid: str = Field(sa_column=Column(String(64), primary_key=True))
    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    spent_txid: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    spent_vout: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    address: str | None = Field(default=None, sa_column=Column(String(90), nullable=True))
    value: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    script_type: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    sequence: int = Field(default=0xFFFFFFFF, sa_column=Column(BigInteger, nullable=False))


class UtxoOutputRow(SQLModel, table=True):
    """Output `n` of a bitcoin transaction and, once the store holds the transaction that spent it, that
    transaction and input (`spent_by_txid`, `spent_by_input`): how a trace follows an output to its spender."""

    __tablename__ = "utxo_output"
    __table_args__ = (
        Index("ix_utxo_output_address", "chain", "address"),
        Index("ix_utxo_output_spent_by", "chain", "spent_by_txid"),
    )

    chain: str = Field(sa_column=Column(String(32), primary_key=True))
    txid: str = Field(sa_column=Column(String(64), primary_key=True))
    n: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    value: int = Field(sa_column=Column(BigInteger, nullable=False))
    address: str | None = Field(default=None, sa_column=Column(String(90), nullable=True))
    script_type: str = Field(default="nonstandard", sa_column=Column(String(32), nullable=False))
    spent_by_txid: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    spent_by_input: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


import storage.ops_models  # noqa: E402, F401  (watch, alert, incident and outbox tables)
