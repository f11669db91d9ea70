"""The store: migrations, exact uint256 values, canonical addresses — on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel, select

from storage.db import Database, redact_url
from storage.migrate import heads
from storage.models import TransferRow
from tracing.chain.index import TransferIndex
from tracing.chain.transfer import Transfer, TransferKind

BIG = 2**255 + 12345678901234567890123


def test_migrations_have_one_head() -> None:
    assert len(heads()) == 1


def test_schema_from_migrations_matches_the_models(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def _transfer(value: int, position: str = "log:0") -> Transfer:
    return Transfer(
        chain="eth",
        block_number=2**40,
        block_hash="0x" + "11" * 32,
        timestamp=1_700_000_000,
        tx_hash="0x" + "22" * 32,
        kind=TransferKind.ERC20,
        position=position,
        from_addr="0x" + "a" * 40,
        to_addr="0x" + "b" * 40,
        value=value,
        token="0x" + "c" * 40,
        decimals=18,
        symbol="TST",
    )


def test_uint256_values_and_big_block_numbers_are_exact(db: Database) -> None:
    index = TransferIndex(db)
    assert index.add([_transfer(BIG), _transfer(2**63 + 1, "log:1")]) == 2
    stored = sorted(t.value for t in index.for_address("0x" + "a" * 40))
    assert stored == [2**63 + 1, BIG]
    with db.session() as session:
        blocks = {row.block_number for row in session.exec(select(TransferRow))}
    assert blocks == {2**40}


def test_adding_the_same_transfer_twice_stores_it_once(db: Database) -> None:
    index = TransferIndex(db)
    assert index.add([_transfer(5)]) == 1
    assert index.add([_transfer(5)]) == 0
    assert index.count("eth") == 1


def test_redact_url_hides_the_password() -> None:
    assert redact_url("postgresql+psycopg://u:secret@h:5432/db") == "postgresql+psycopg://u:***@h:5432/db"
    assert "secret" not in redact_url("postgresql://u:secret@h/db")
