"""Mappers for bitcoin: Bitcoin Core's JSON-RPC answers → `UtxoTx` (and `UtxoBlock`), pure functions.

What they read:

- `getblock <hash> 2` (and `3`, Core ≥ 25: each input also carries `prevout`, the output it spends, with its value
  and script), and `getrawtransaction <txid> 1` (the same transaction object, with `blockhash`/`blocktime` when
  mined);
- values are BTC decimals and become exact satoshis: parse the JSON with `parse_float=Decimal` (a float answer is
  read through its shortest decimal form, which is exact for every amount under 21M BTC with 8 decimals); a value
  with a fraction of a satoshi is refused (MalformedPayload);
- an output's address is `scriptPubKey.address` (Core ≥ 22) or, from older nodes, `scriptPubKey.addresses` when it
  holds exactly one (a bare multisig's several keys give no address); scripts without one (OP_RETURN, bare
  multisig, P2PK on Core ≥ 22, non-standard) keep `address` None and their `type`;
- an input's value, address and script type come from its `prevout` when the node gave one, else from the output
  it spends (`resolve_inputs` with the previous transactions' outputs: those of the same block first, then the
  ones the caller looked up); an input still unresolved keeps value None, so its transaction's fee is unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from tracing.chain.address import canonical
from tracing.chain.mappers import MalformedPayload
from tracing.chain.utxo import SATS_PER_BTC, Outpoint, TxInput, TxOutput, UtxoTx

JsonDict = dict[str, Any]


@dataclass(frozen=True, slots=True)
class UtxoBlock:
    """One bitcoin block's transactions, with the header fields a reorg-aware follower needs."""

    chain: str
    number: int
    hash: str
    parent_hash: str
    timestamp: int
    txs: tuple[UtxoTx, ...]

    @property
    def inputs_known(self) -> bool:
        """Whether every input of every transaction has its value (fees and transfers need them)."""
        return all(tx.inputs_known for tx in self.txs)


def satoshis(value: object, where: str = "value") -> int:
    """An amount in BTC (Decimal, int, decimal string, or float read through its shortest form) as satoshis."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, float, str)):
        raise MalformedPayload(f"{where}: expected an amount in BTC, got {type(value).__name__}")
    try:
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise MalformedPayload(f"{where}: “{str(value)[:40]}” is not an amount") from None
    sats = amount * SATS_PER_BTC
    if not sats.is_finite() or sats != sats.to_integral_value() or sats < 0:
        raise MalformedPayload(f"{where}: {value} BTC is not a whole number of satoshis")
    return int(sats)


def script_address(script: Mapping[str, Any] | None) -> str | None:
    """The address of a `scriptPubKey` object (`address`, or the only one of `addresses`), canonical; else None."""
    if not isinstance(script, Mapping):
        return None
    address = script.get("address")
    if not isinstance(address, str):
        addresses = script.get("addresses")
        address = addresses[0] if isinstance(addresses, list) and len(addresses) == 1 else None
    return canonical(address) if isinstance(address, str) and address else None


def tx_parts(tx: Mapping[str, Any], what: str = "a transaction") -> tuple[str, str, list[Any], list[Any]]:
    """(txid, where, vin, vout) of a transaction object (Core's or Esplora's), or MalformedPayload."""
    txid = tx.get("txid")
    if not isinstance(txid, str) or len(txid) != 64:
        raise MalformedPayload(f"{what} without a 64-hex-digit txid")
    where = f"tx {txid}"
    vin, vout = tx.get("vin"), tx.get("vout")
    if not isinstance(vin, list) or not isinstance(vout, list):
        raise MalformedPayload(f"{where}: vin and vout must be lists")
    return txid, where, vin, vout


def spent_outpoint(vin: Mapping[str, Any], where: str) -> Outpoint:
    """The outpoint a (non-coinbase) input spends, from its `txid` and `vout`."""
    txid, vout = vin.get("txid"), vin.get("vout")
    if not isinstance(txid, str) or not isinstance(vout, int) or isinstance(vout, bool):
        raise MalformedPayload(f"{where}: an input without the outpoint it spends (txid, vout)")
    return Outpoint(txid.lower(), vout)


def map_core_output(vout: Mapping[str, Any], where: str = "vout") -> TxOutput:
    script = vout.get("scriptPubKey")
    n = vout.get("n")
    if not isinstance(n, int) or isinstance(n, bool):
        raise MalformedPayload(f"{where}: an output without its index `n`")
    return TxOutput(
        n=n,
        value=satoshis(vout.get("value"), f"{where}[{n}].value"),
        address=script_address(script),
        script_type=str(script.get("type") or "nonstandard") if isinstance(script, Mapping) else "nonstandard",
    )


def map_core_input(vin: Mapping[str, Any], where: str = "vin") -> TxInput:
    sequence = vin.get("sequence", 0xFFFFFFFF)
    sequence = sequence if isinstance(sequence, int) else 0xFFFFFFFF
    if "coinbase" in vin:
        return TxInput(spends=None, sequence=sequence)
    spends = spent_outpoint(vin, where)
    prevout = vin.get("prevout")
    if isinstance(prevout, Mapping):
        script = prevout.get("scriptPubKey")
        return TxInput(
            spends=spends,
            address=script_address(script),
            value=satoshis(prevout.get("value"), f"{where}.prevout.value"),
            sequence=sequence,
            script_type=str(script.get("type")) if isinstance(script, Mapping) and script.get("type") else None,
        )
    return TxInput(spends=spends, sequence=sequence)


def map_core_transaction(
    tx: Mapping[str, Any],
    chain: str,
    *,
    block_height: int | None = None,
    block_hash: str | None = None,
    timestamp: int | None = None,
    position: int = 0,
) -> UtxoTx:
    """One transaction object of `getblock` (verbosity 2 or 3) or `getrawtransaction … 1`. Without the block
    fields given, `blockhash` and `blocktime` are read from the object itself (None while unconfirmed)."""
    txid, where, vin, vout = tx_parts(tx)
    if block_hash is None and isinstance(tx.get("blockhash"), str):
        block_hash = tx["blockhash"]
    if timestamp is None and isinstance(tx.get("blocktime"), int):
        timestamp = tx["blocktime"]
    return UtxoTx(
        chain=chain,
        txid=txid.lower(),
        inputs=tuple(map_core_input(i, f"{where} vin[{k}]") for k, i in enumerate(vin)),
        outputs=tuple(map_core_output(o, f"{where} vout") for o in vout),
        block_height=block_height,
        block_hash=block_hash,
        timestamp=timestamp,
        position=position,
        locktime=int(tx.get("locktime") or 0),
        version=int(tx.get("version") or 1),
    )


def map_core_block(block: Mapping[str, Any], chain: str) -> UtxoBlock:
    """`getblock <hash> 2|3` → the block with its transactions, inputs resolved within the block where their
    previous transaction is in it (`resolve_inputs` fills the rest from looked-up transactions)."""
    try:
        number, block_hash, timestamp = int(block["height"]), str(block["hash"]), int(block["time"])
    except (KeyError, TypeError, ValueError):
        raise MalformedPayload("getblock: a block without height, hash or time") from None
    raw_txs = block.get("tx")
    if not isinstance(raw_txs, list) or not all(isinstance(t, Mapping) for t in raw_txs):
        raise MalformedPayload(f"getblock {block_hash}: `tx` must hold transaction objects (verbosity 2 or 3)")
    count = block_tx_count(block)
    if count is not None and count != len(raw_txs):
        raise MalformedPayload(f"getblock {block_hash}: {len(raw_txs)} transaction objects for {count} transactions")
    txs = [
        map_core_transaction(t, chain, block_height=number, block_hash=block_hash, timestamp=timestamp, position=k)
        for k, t in enumerate(raw_txs)
    ]
    return UtxoBlock(
        chain=chain,
        number=number,
        hash=block_hash,
        parent_hash=str(block.get("previousblockhash") or "0" * 64),
        timestamp=timestamp,
        txs=tuple(resolve_inputs(txs, outputs_of(txs))),
    )


def block_tx_count(block: Mapping[str, Any]) -> int | None:
    """The transaction count a block states (`nTx`, or `num_tx` on Bitcoin SV), if it states one."""
    count = block.get("nTx", block.get("num_tx"))
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def outputs_of(txs: Iterable[UtxoTx]) -> dict[Outpoint, TxOutput]:
    """Every output of `txs` by its outpoint (what later inputs spend)."""
    return {Outpoint(tx.txid, o.n): o for tx in txs for o in tx.outputs}


def unresolved(txs: Iterable[UtxoTx]) -> list[Outpoint]:
    """The outpoints spent by inputs whose value is not known yet, in order, each once."""
    return list(dict.fromkeys(i.spends for tx in txs for i in tx.inputs if i.spends is not None and i.value is None))


def resolve_inputs(txs: Sequence[UtxoTx], spent: Mapping[Outpoint, TxOutput]) -> list[UtxoTx]:
    """`txs` with each input whose value is unknown filled from the output it spends, where `spent` has it."""
    out: list[UtxoTx] = []
    for tx in txs:
        if tx.inputs_known:
            out.append(tx)
            continue
        inputs = tuple(
            _filled(i, spent.get(i.spends)) if i.spends is not None and i.value is None else i for i in tx.inputs
        )
        out.append(replace(tx, inputs=inputs))
    return out


def _filled(tx_input: TxInput, output: TxOutput | None) -> TxInput:
    if output is None:
        return tx_input
    return replace(tx_input, address=output.address, value=output.value, script_type=output.script_type)
