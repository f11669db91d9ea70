"""Bitcoin transactions in the store (SQLite and PostgreSQL) and the address-level transfers derived from them:
proportional allocation by default, FIFO as the alternative, fees and change accounted, the rule named."""

from __future__ import annotations

import pytest

from storage.db import Database
from tracing.chain.index import TransferIndex
from tracing.chain.transfer import TransferKind
from tracing.chain.utxo import Outpoint, TxInput, TxOutput, UtxoTx
from tracing.chain.utxo_store import UtxoStore
from tracing.chain.utxo_transfers import Allocation, derive_transfers, transfers_of

A, B, C, D = (
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
    "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
    "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH",
    "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr",
)
DAY = 1_600_000_000


def out(n: int, value: int, address: str | None, kind: str = "witness_v0_keyhash") -> TxOutput:
    return TxOutput(n, value, address, kind)


def spend(txid: str, vout: int, address: str | None = None, value: int | None = None) -> TxInput:
    return TxInput(Outpoint(txid, vout), address, value)


def mined(txid: str, inputs: list[TxInput], outputs: list[TxOutput], height: int = 10, position: int = 1) -> UtxoTx:
    return UtxoTx("btc", txid, tuple(inputs), tuple(outputs), height, f"{height:064x}", DAY + height * 600, position)


FUND = mined("f" * 64, [TxInput(None)], [out(0, 5_000_000_000, A)], height=1, position=0)
# A (0.6 BTC) and B (0.4 BTC) pay C 0.5 and D 0.29, 0.2 change back to A, fee 0.01.
JOINT = mined(
    "1" * 64,
    [spend("a" * 64, 0, A, 60_000_000), spend("b" * 64, 1, B, 40_000_000)],
    [out(0, 50_000_000, C), out(1, 29_000_000, D), out(2, 20_000_000, A)],
)


def pairs(tx: UtxoTx, allocation: Allocation = Allocation.PROPORTIONAL) -> dict[tuple[str, str], int]:
    return {(t.from_addr, t.to_addr): t.value for t in derive_transfers(tx, allocation).transfers}


def test_proportional_allocation_splits_each_output_by_the_inputs_shares() -> None:
    derived = derive_transfers(JOINT)
    assert pairs(JOINT) == {
        (A, C): 30_000_000, (B, C): 20_000_000, (A, D): 17_400_000, (B, D): 11_600_000, (B, A): 8_000_000,
    }  # fmt: skip
    # A's change to itself (12,000,000) is no transfer; the fee (1,000,000) goes to the miner and is stated.
    assert derived.fee == 1_000_000 and derived.unaddressed == 0 and derived.missing is None
    first = derived.transfers[0]
    assert (first.kind, first.position, first.tx_hash, first.decimals, first.symbol) == (
        TransferKind.UTXO, "p:0:0", JOINT.txid, 8, "BTC"
    )  # fmt: skip
    assert Allocation.of_position(first.position) is Allocation.PROPORTIONAL
    assert "proportional allocation" in derived.allocation.rule and "fees go to miners" in derived.allocation.rule


def test_fifo_pays_outputs_in_order_and_takes_the_fee_from_the_last_inputs() -> None:
    assert pairs(JOINT, Allocation.FIFO) == {
        (A, C): 50_000_000,
        (A, D): 10_000_000,
        (B, D): 19_000_000,
        (B, A): 20_000_000,
    }
    assert [t.position for t in derive_transfers(JOINT, Allocation.FIFO).transfers][0] == "f:0:0"


def test_each_output_receives_exactly_its_value() -> None:
    odd = mined(
        "2" * 64,
        [spend("a" * 64, 0, A, 1), spend("b" * 64, 0, B, 1), spend("c" * 64, 0, C, 1)],
        [out(0, 2, D), out(1, 1, None, "nulldata")],
    )
    derived = derive_transfers(odd)
    assert sum(t.value for t in derived.transfers) == 2 and derived.unaddressed == 1 and derived.fee == 0


def test_no_transfers_from_a_coinbase_or_from_unknown_input_values() -> None:
    assert derive_transfers(FUND).transfers == () and derive_transfers(FUND).fee is None
    blind = mined("3" * 64, [spend("a" * 64, 0)], [out(0, 10, C)])
    assert derive_transfers(blind).transfers == () and derive_transfers(blind).missing == "1 input value(s) unknown"
    overdrawn = mined("6" * 64, [spend("a" * 64, 0, A, 5)], [out(0, 6, C)])
    assert derive_transfers(overdrawn).transfers == () and derive_transfers(overdrawn).missing == (
        "outputs exceed inputs by 1 sat"
    )
    with pytest.raises(ValueError, match="not mined"):
        derive_transfers(UtxoTx("btc", "4" * 64, (spend("a" * 64, 0, A, 5),), (out(0, 4, C),)))


def test_the_store_keeps_transactions_and_follows_an_output_to_its_spender(db: Database) -> None:
    store = UtxoStore(db)
    spender = mined("5" * 64, [spend(FUND.txid, 0)], [out(0, 4_999_990_000, C)], height=2)
    assert store.add([spender]) == 1  # stored before the output it spends
    assert store.spender("btc", Outpoint(FUND.txid, 0)) == (spender.txid, 0)
    assert store.add([FUND, spender]) == 1  # idempotent
    assert store.outputs("btc", [Outpoint(FUND.txid, 0), Outpoint(FUND.txid, 7)]) == {
        Outpoint(FUND.txid, 0): FUND.outputs[0]
    }
    assert store.get("btc", FUND.txid) == FUND and store.get("btc", spender.txid) == spender
    assert store.txids_of("btc", A) == [FUND.txid, spender.txid]  # paid, then spent from
    assert [t.txid for t in store.of_address("btc", C)] == [spender.txid]
    assert store.spender("btc", Outpoint(spender.txid, 0)) is None  # unspent
    assert store.delete_from_block("btc", 2) == 1 and store.count("btc") == 1
    assert store.spender("btc", Outpoint(FUND.txid, 0)) is None
    assert store.add([spender]) == 1 and store.spender("btc", Outpoint(FUND.txid, 0)) == (spender.txid, 0)


def test_derived_transfers_land_in_the_transfer_index(db: Database) -> None:
    UtxoStore(db).add([JOINT])
    index = TransferIndex(db)
    assert index.add(transfers_of(UtxoStore(db).of_address("btc", B))) == 5
    got = index.for_address(B, "btc", direction="out")
    assert {t.to_addr: t.value for t in got} == {A: 8_000_000, C: 20_000_000, D: 11_600_000}
    assert {t.kind for t in got} == {TransferKind.UTXO}
