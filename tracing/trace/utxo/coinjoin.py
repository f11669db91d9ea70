"""CoinJoin detection: a transaction in which several owners pay into outputs of one value, so which output is whose
cannot be told. A trace stops there as at a mixer (unless the analyst asks to go through), and clustering never
merges its inputs.

Recognised, each with the reason it gives:

- **Whirlpool** (Samourai): 5 inputs, 5 outputs of one pool's value (0.001, 0.01, 0.05 or 0.5 BTC).
- **Whirlpool Tx0**: not a mix but the entry to one: one wallet splits its coins into premix outputs just above a
  pool's value, pays the coordinator and writes an OP_RETURN (`whirlpool_tx0`).
- **Wasabi 1.x**: many outputs of about 0.1 BTC (the base denomination, ±10 %), or equal outputs beside a fee to
  a known Wasabi coordinator address.
- **Wasabi 2.0**: 50+ inputs and 50+ outputs, most outputs sharing their value with others (standard denominations).
- **JoinMarket**: n equal outputs beside n−1 or n change outputs of other values (one per taker and maker).
- **Equal-output**: any other transaction with at least `min_equal` outputs of one value to distinct addresses,
  paid from at least as many distinct input addresses.

A batch payment from one wallet (one input address) is never taken for a CoinJoin; a two-party PayJoin is not
recognised (it looks like an ordinary payment).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from tracing.chain.utxo import SATS_PER_BTC, TxOutput, UtxoTx
from tracing.trace.utxo.amounts import btc

WHIRLPOOL_POOLS = (100_000, 1_000_000, 5_000_000, 50_000_000)
"""Whirlpool's pool denominations in satoshis (0.001, 0.01, 0.05, 0.5 BTC)."""
WASABI_BASE = SATS_PER_BTC // 10
"""Wasabi 1.x's base denomination, about 0.1 BTC (the coordinator adjusted it slightly over time)."""
WASABI_COORDINATORS: Mapping[str, str] = {
    "bc1qs604c7jv6amk4cxqlnvuxv26hv3e48cds4m0ew": "Wasabi coordinator fee address",
    "bc1qa24tsgchvuxsaccp8vrnkfd85hrcpafg20kmjw": "Wasabi coordinator fee address",
}
"""Wasabi's coordinator fee addresses (GraphSense TagPack `wasabi_collector`, from nopara73/WasabiVsSamourai)."""
WASABI_COORDINATORS_SOURCE = (
    "https://github.com/nopara73/WasabiVsSamourai/blob/master/WasabiVsSamourai/CoinJoinIndexer.cs#L24"
)
MIN_EQUAL = 3
"""Equal outputs (to distinct addresses, from as many distinct input addresses) that make a CoinJoin."""
MIN_DENOMINATION = 10_000
"""Equal outputs below this many satoshis are dust (spam, token protocols), not a mix."""


class CoinJoinKind(StrEnum):
    WHIRLPOOL = "whirlpool"
    WASABI = "wasabi"
    WASABI2 = "wasabi2"
    JOINMARKET = "joinmarket"
    EQUAL_OUTPUT = "equal-output"

    @property
    def display(self) -> str:
        return _TITLES[self]


_TITLES = {
    CoinJoinKind.WHIRLPOOL: "Whirlpool CoinJoin",
    CoinJoinKind.WASABI: "Wasabi CoinJoin",
    CoinJoinKind.WASABI2: "Wasabi 2.0 CoinJoin",
    CoinJoinKind.JOINMARKET: "JoinMarket CoinJoin",
    CoinJoinKind.EQUAL_OUTPUT: "CoinJoin-like transaction (equal outputs)",
}


@dataclass(frozen=True, slots=True)
class CoinJoin:
    """A transaction recognised as a CoinJoin, with what gave it away."""

    txid: str
    kind: CoinJoinKind
    denomination: int
    """Satoshis of each of the equal outputs."""
    equal_outputs: int
    inputs: int
    input_addresses: int
    outputs: int
    coordinator: str | None = None
    """A known coordinator's fee address the transaction pays, if any."""

    @property
    def reason(self) -> str:
        """`Whirlpool CoinJoin: 5 inputs from 5 addresses → 5 outputs of 0.01 BTC each (the 0.01 BTC pool); which
        output is whose cannot be told.`"""
        pool = f" (the {btc(self.denomination)} pool)" if self.kind is CoinJoinKind.WHIRLPOOL else ""
        fee = f", a fee to the coordinator at {self.coordinator}" if self.coordinator else ""
        return (
            f"{self.kind.display}: {self.inputs} inputs from {self.input_addresses} addresses → {self.equal_outputs} "
            f"of {self.outputs} outputs of {btc(self.denomination)} each{pool}{fee}; which output is whose cannot be "
            "told."
        )


def _spendable(tx: UtxoTx) -> list[TxOutput]:
    return [o for o in tx.outputs if o.address is not None and o.value > 0]


def detect_coinjoin(
    tx: UtxoTx,
    *,
    min_equal: int = MIN_EQUAL,
    coordinators: Mapping[str, str] = WASABI_COORDINATORS,
) -> CoinJoin | None:
    """The CoinJoin `tx` is (see the module docstring), or None."""
    if tx.coinbase:
        return None
    outputs = _spendable(tx)
    if len(outputs) < min_equal:
        return None
    counts = Counter(o.value for o in outputs if o.value >= MIN_DENOMINATION)
    if not counts:
        return None
    denomination, _ = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
    equal = [o for o in outputs if o.value == denomination]
    equal_count = len({o.address for o in equal})
    input_addresses = len(tx.input_addresses())
    coordinator = next((o.address for o in outputs if o.address in coordinators), None)
    if equal_count < min_equal or input_addresses < min_equal:
        return None

    def found(kind: CoinJoinKind) -> CoinJoin:
        return CoinJoin(
            txid=tx.txid,
            kind=kind,
            denomination=denomination,
            equal_outputs=equal_count,
            inputs=len(tx.inputs),
            input_addresses=input_addresses,
            outputs=len(outputs),
            coordinator=coordinator,
        )

    if (
        denomination in WHIRLPOOL_POOLS
        and len(tx.inputs) == 5
        and len(outputs) == 5
        and len(tx.outputs) == 5
        and equal_count == 5
    ):
        return found(CoinJoinKind.WHIRLPOOL)
    if coordinator is not None or (
        abs(denomination - WASABI_BASE) <= WASABI_BASE // 10 and equal_count >= 10 and len(tx.inputs) >= equal_count
    ):
        return found(CoinJoinKind.WASABI)
    if len(tx.inputs) >= 50 and len(outputs) >= 50:
        shared = sum(n for n in counts.values() if n > 1)
        if shared * 2 >= len(outputs):
            return found(CoinJoinKind.WASABI2)
    others = [o.value for o in outputs if o.value != denomination]
    if equal_count - 1 <= len(others) <= equal_count and len(set(others)) == len(others):
        return found(CoinJoinKind.JOINMARKET)
    return found(CoinJoinKind.EQUAL_OUTPUT)


@dataclass(frozen=True, slots=True)
class Tx0:
    """A Whirlpool Tx0: one wallet's coins split into premix outputs for a pool (the entry to the mix)."""

    txid: str
    pool: int
    premix_outputs: int

    @property
    def reason(self) -> str:
        return (
            f"Whirlpool Tx0: {self.premix_outputs} premix output(s) for the {btc(self.pool)} pool, with an OP_RETURN "
            "and a coordinator fee; the next transaction of each premix output is a Whirlpool mix."
        )


def whirlpool_tx0(tx: UtxoTx) -> Tx0 | None:
    """The Whirlpool Tx0 `tx` is, or None: an OP_RETURN output, and equal outputs each just above a pool's value
    (the pool's denomination plus its share of the mix's mining fee, at most 10 % more)."""
    if tx.coinbase or not any(o.script_type == "nulldata" for o in tx.outputs):
        return None
    counts = Counter(o.value for o in _spendable(tx))
    for value, count in sorted(counts.items(), key=lambda kv: -kv[1]):
        pool = next((p for p in WHIRLPOOL_POOLS if p < value <= p + p // 10), None)
        if pool is not None and count >= 1 and len(counts) >= 2:
            return Tx0(tx.txid, pool, count)
    return None
