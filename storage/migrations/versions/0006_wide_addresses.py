"""address columns wide enough for every chain family: TRON (34 characters), bitcoin bech32/bech32m (up to 90)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 19:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, nullable): every column that holds an address or a token address.
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("label", "address", False),
    ("transfer", "token", True),
    ("transfer", "from_addr", False),
    ("transfer", "to_addr", False),
    ("risk_check", "address", False),
    ("watch", "address", False),
    ("incident", "address", False),
    ("alert", "address", False),
    ("alert", "counterparty", True),
    ("alert", "token", True),
)


def _alter(width: int, was: int) -> None:
    tables: dict[str, list[tuple[str, bool]]] = {}
    for table, column, nullable in COLUMNS:
        tables.setdefault(table, []).append((column, nullable))
    for table, columns in tables.items():
        with op.batch_alter_table(table) as batch:
            for column, nullable in columns:
                batch.alter_column(
                    column, type_=sa.String(length=width), existing_type=sa.String(length=was),
                    existing_nullable=nullable,
                )


def upgrade() -> None:
    _alter(90, 42)


def downgrade() -> None:
    _alter(42, 90)
