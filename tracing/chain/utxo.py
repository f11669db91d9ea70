"""The UTXO model in the domain (bitcoin): a transaction spends inputs (earlier outputs, each locked to an address)
and creates outputs. The money's path goes through outputs, so a trace follows an output to the transaction that
spent it (`Outpoint` → the spending `UtxoTx`). Amounts are whole satoshis; addresses are canonical
(`tracing.chain.address`) or None where a script has no address (OP_RETURN data, bare multisig, non-standard).

Mappers turn a node's or an explorer's JSON into these; address-level `Transfer`s for the graph and the taint
models are derived from them by a stated allocation rule; the heuristics (change, CoinJoin, clustering) read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

SATS_PER_BTC = 100_000_000


class Outpoint(NamedTuple):
    """One output of one transaction: what an input spends."""

    txid: str
    vout: int


@dataclass(frozen=True, slots=True)
class TxOutput:
    """Output `n` of a transaction: `value` satoshis locked to `address` (None: no address, e.g. OP_RETURN)."""

    n: int
    value: int
    address: str | None
    script_type: str
    """The node's name for the script: pubkeyhash, scripthash, witness_v0_keyhash, witness_v0_scripthash,
    witness_v1_taproot, nulldata, pubkey, multisig, nonstandard, ..."""


@dataclass(frozen=True, slots=True)
class TxInput:
    """One input: the output it spends (`spends`; None for a coinbase) and, where known, that output's address and
    value (from the node's `prevout`, verbosity 3, or from the previous transaction)."""

    spends: Outpoint | None
    address: str | None = None
    value: int | None = None
    sequence: int = 0xFFFFFFFF
    script_type: str | None = None

    @property
    def coinbase(self) -> bool:
        return self.spends is None


@dataclass(frozen=True, slots=True)
class UtxoTx:
    """A bitcoin transaction where it was mined (`block_height`/`block_hash`/`timestamp` None while unconfirmed)."""

    chain: str
    txid: str
    inputs: tuple[TxInput, ...]
    outputs: tuple[TxOutput, ...]
    block_height: int | None = None
    block_hash: str | None = None
    timestamp: int | None = None
    position: int = 0
    """The transaction's index in its block."""
    locktime: int = 0
    version: int = 1

    @property
    def coinbase(self) -> bool:
        return len(self.inputs) == 1 and self.inputs[0].coinbase

    @property
    def inputs_known(self) -> bool:
        """Whether every input's value and address are known (needed for fees and allocation)."""
        return self.coinbase or all(i.value is not None for i in self.inputs)

    @property
    def input_value(self) -> int | None:
        if self.coinbase or not self.inputs_known:
            return None
        return sum(i.value or 0 for i in self.inputs)

    @property
    def output_value(self) -> int:
        return sum(o.value for o in self.outputs)

    @property
    def fee(self) -> int | None:
        """Satoshis paid to the miner (None for a coinbase or when an input's value is unknown)."""
        total = self.input_value
        return None if total is None else total - self.output_value

    def outpoint(self, n: int) -> Outpoint:
        return Outpoint(self.txid, n)

    def input_addresses(self) -> tuple[str, ...]:
        """Distinct input addresses, in input order."""
        return tuple(dict.fromkeys(i.address for i in self.inputs if i.address is not None))

    def output_addresses(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(o.address for o in self.outputs if o.address is not None))
