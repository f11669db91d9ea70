"""bitcoin transactions, their inputs and outputs (each output with the transaction and input that spent it)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 19:45:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('utxo_tx',
    sa.Column('chain', sa.String(length=32), nullable=False),
    sa.Column('txid', sa.String(length=64), nullable=False),
    sa.Column('block_height', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=64), nullable=False),
    sa.Column('timestamp', sa.BigInteger(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('locktime', sa.BigInteger(), nullable=False),
    sa.Column('input_value', sa.BigInteger(), nullable=True),
    sa.Column('output_value', sa.BigInteger(), nullable=False),
    sa.Column('fee', sa.BigInteger(), nullable=True),
    sa.Column('coinbase', sa.Boolean(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('chain', 'txid')
    )
    op.create_index('ix_utxo_tx_block', 'utxo_tx', ['chain', 'block_height'], unique=False)
    op.create_table('utxo_input',
    sa.Column('chain', sa.String(length=32), nullable=False),
    sa.Column('txid', sa.String(length=64), nullable=False),
    sa.Column('idx', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('spent_txid', sa.String(length=64), nullable=True),
    sa.Column('spent_vout', sa.BigInteger(), nullable=True),
    sa.Column('address', sa.String(length=90), nullable=True),
    sa.Column('value', sa.BigInteger(), nullable=True),
    sa.Column('script_type', sa.String(length=32), nullable=True),
    sa.Column('sequence', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('chain', 'txid', 'idx')
    )
    op.create_index('ix_utxo_input_spends', 'utxo_input', ['chain', 'spent_txid', 'spent_vout'], unique=False)
    op.create_table('utxo_output',
    sa.Column('chain', sa.String(length=32), nullable=False),
    sa.Column('txid', sa.String(length=64), nullable=False),
    sa.Column('n', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.Column('address', sa.String(length=90), nullable=True),
    sa.Column('script_type', sa.String(length=32), nullable=False),
    sa.Column('spent_by_txid', sa.String(length=64), nullable=True),
    sa.Column('spent_by_input', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('chain', 'txid', 'n')
    )
    op.create_index('ix_utxo_output_address', 'utxo_output', ['chain', 'address'], unique=False)
    op.create_index('ix_utxo_output_spent_by', 'utxo_output', ['chain', 'spent_by_txid'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_utxo_output_spent_by', table_name='utxo_output')
    op.drop_index('ix_utxo_output_address', table_name='utxo_output')
    op.drop_table('utxo_output')
    op.drop_index('ix_utxo_input_spends', table_name='utxo_input')
    op.drop_table('utxo_input')
    op.drop_index('ix_utxo_tx_block', table_name='utxo_tx')
    op.drop_table('utxo_tx')
