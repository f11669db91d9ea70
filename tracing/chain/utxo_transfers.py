"""Address-level `Transfer`s derived from a bitcoin transaction, for the graph and the taint models.

A bitcoin transaction does not say which input paid which output, so the derivation needs a rule, and every result
built on these transfers names it (`Allocation.rule`):

- **proportional** (the default): each output receives from every input address in proportion to that address's
  share of the inputs; an output's amounts add up to its value exactly (largest remainder, per output);
- **fifo**: inputs and outputs are laid end to end in their order, the first inputs paying the first outputs, and
  the fee comes out of the last inputs.

For both: one transfer per (input address, output address) pair, its `position` `p:<i>:<j>` or `f:<i>:<j>` (the
pair's first input and first output); the fee goes to the miner and is not a transfer (`UtxoTransfers.fee`); change
back to an address that spent in the transaction is not a transfer (the funds stay there); a coinbase creates coins
and transfers nothing; a transaction whose input values are not all known gives no transfers (`missing`); value to
or from a script without an address (OP_RETURN, bare multisig, P2PK on newer nodes) is not a transfer and is summed
in `unaddressed`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from tracing.chain.transfer import Transfer, TransferKind
from tracing.chain.utxo import UtxoTx

BTC_DECIMALS = 8


class Allocation(StrEnum):
    """How a transaction's inputs are matched to its outputs."""

    PROPORTIONAL = "proportional"
    FIFO = "fifo"

    @property
    def prefix(self) -> str:
        return "p" if self is Allocation.PROPORTIONAL else "f"

    @property
    def rule(self) -> str:
        """The rule in one sentence, as results state it."""
        how = (
            "each output paid by every input address in proportion to its share of the inputs"
            if self is Allocation.PROPORTIONAL
            else "inputs paying outputs in their order (first in, first out), the fee from the last inputs"
        )
        return (
            f"bitcoin transfers by {self.value} allocation: {how}; fees go to miners and change back to a spending "
            "address stays there (neither is a transfer)"
        )

    @classmethod
    def of_position(cls, position: str) -> Allocation | None:
        """The rule a stored bitcoin transfer was derived with, from its position."""
        return {"p": cls.PROPORTIONAL, "f": cls.FIFO}.get(position.split(":", 1)[0])


@dataclass(frozen=True, slots=True)
class UtxoTransfers:
    """The transfers of one transaction under one rule, with what is not a transfer (in satoshis)."""

    tx: UtxoTx
    allocation: Allocation
    transfers: tuple[Transfer, ...]
    fee: int | None
    unaddressed: int = 0
    """Satoshis paid from or to scripts without an address."""
    missing: str | None = None
    """Why no transfers could be derived (input values unknown), else None."""


def derive_transfers(
    tx: UtxoTx,
    allocation: Allocation = Allocation.PROPORTIONAL,
    *,
    symbol: str = "BTC",
    source: str = "rpc",
) -> UtxoTransfers:
    """The address-level transfers of a mined transaction under `allocation`."""
    if tx.block_height is None or tx.block_hash is None or tx.timestamp is None:
        raise ValueError(f"transaction {tx.txid} is not mined; only mined transactions give transfers")
    if tx.coinbase:
        return UtxoTransfers(tx, allocation, (), None)
    if not tx.inputs_known:
        unknown = sum(1 for i in tx.inputs if i.value is None)
        return UtxoTransfers(tx, allocation, (), None, missing=f"{unknown} input value(s) unknown")
    if (tx.fee or 0) < 0:  # a source's error: no allocation of money that was not there
        return UtxoTransfers(tx, allocation, (), tx.fee, missing=f"outputs exceed inputs by {-(tx.fee or 0)} sat")
    cells = _proportional(tx) if allocation is Allocation.PROPORTIONAL else _fifo(tx)
    pairs: dict[tuple[str, str], list[int]] = {}  # (from, to) → [value, first input, first output]
    unaddressed = 0
    for (i, j), value in cells.items():
        source_address, target = tx.inputs[i].address, tx.outputs[j].address
        if source_address is None or target is None:
            unaddressed += value
            continue
        if source_address == target or value == 0:
            continue
        pair = pairs.setdefault((source_address, target), [0, i, j])
        pair[0] += value
        pair[1], pair[2] = min(pair[1], i), min(pair[2], j)
    transfers = tuple(
        Transfer(
            chain=tx.chain,
            block_number=tx.block_height,
            block_hash=tx.block_hash,
            timestamp=tx.timestamp,
            tx_hash=tx.txid,
            kind=TransferKind.UTXO,
            position=f"{allocation.prefix}:{i}:{j}",
            from_addr=source_address,
            to_addr=target,
            value=value,
            decimals=BTC_DECIMALS,
            symbol=symbol,
            source=source,
        )
        for (source_address, target), (value, i, j) in sorted(pairs.items(), key=lambda kv: (kv[1][1], kv[1][2]))
    )
    return UtxoTransfers(tx, allocation, transfers, tx.fee, unaddressed)


def transfers_of(
    txs: Iterable[UtxoTx], allocation: Allocation = Allocation.PROPORTIONAL, *, symbol: str = "BTC", source: str = "rpc"
) -> list[Transfer]:
    """The transfers of several mined transactions (those with unknown input values give none)."""
    return [t for tx in txs for t in derive_transfers(tx, allocation, symbol=symbol, source=source).transfers]


def _proportional(tx: UtxoTx) -> dict[tuple[int, int], int]:
    """(input index, output index) → satoshis: every output split over the input *addresses* in proportion to
    their values (inputs of one address count together, listed under its first input), exact per output."""
    groups: dict[str | None, list[int]] = {}  # address → [value, first input index]
    for index, spent in enumerate(tx.inputs):
        group = groups.setdefault(spent.address if spent.address is not None else f"\0{index}", [0, index])
        group[0] += spent.value or 0
    total = sum(value for value, _ in groups.values())
    cells: dict[tuple[int, int], int] = {}
    if total <= 0:
        return cells
    for j, output in enumerate(tx.outputs):
        if output.value == 0:
            continue
        shares = [
            (value * output.value // total, value * output.value % total, first) for value, first in groups.values()
        ]
        short = output.value - sum(share for share, _, _ in shares)
        ranked = sorted(range(len(shares)), key=lambda k: (-shares[k][1], shares[k][2]))
        for rank, k in enumerate(ranked):
            share, _, first = shares[k]
            share += 1 if rank < short else 0
            if share:
                cells[(first, j)] = share
    return cells


def _fifo(tx: UtxoTx) -> dict[tuple[int, int], int]:
    """(input index, output index) → satoshis: inputs and outputs end to end in order; what the outputs do not take
    is the fee, from the last inputs."""
    cells: dict[tuple[int, int], int] = {}
    j, left = 0, tx.outputs[0].value if tx.outputs else 0
    for i, spent in enumerate(tx.inputs):
        have = spent.value or 0
        while have > 0 and j < len(tx.outputs):
            take = min(have, left)
            if take:
                cells[(i, j)] = cells.get((i, j), 0) + take
            have -= take
            left -= take
            if left == 0:
                j += 1
                left = tx.outputs[j].value if j < len(tx.outputs) else 0
    return cells
