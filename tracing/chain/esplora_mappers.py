"""Mapper for an Esplora REST API's transaction JSON (`/tx/:txid`, `/address/:a/txs…`, `/block/:hash/txs…`) →
`UtxoTx`, a pure function.

Esplora gives amounts in satoshis (integers), every input's `prevout` (so values and addresses are always known),
`scriptpubkey_address` where the script has one, and `status` (`confirmed`, `block_height`, `block_hash`,
`block_time`; absent on `/block/:hash/txs`, where the caller gives the block). Script types are renamed to Bitcoin
Core's names (`v0_p2wpkh` → `witness_v0_keyhash`, …) so both sources read the same. Esplora does not say a
transaction's index in its block except through `/block/:hash/txs/:start` (the caller passes `position`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tracing.chain.address import canonical
from tracing.chain.mappers import MalformedPayload
from tracing.chain.utxo import TxInput, TxOutput, UtxoTx
from tracing.chain.utxo_mappers import spent_outpoint, tx_parts

SCRIPT_TYPES = {
    "p2pk": "pubkey",
    "p2pkh": "pubkeyhash",
    "p2sh": "scripthash",
    "v0_p2wpkh": "witness_v0_keyhash",
    "v0_p2wsh": "witness_v0_scripthash",
    "v1_p2tr": "witness_v1_taproot",
    "op_return": "nulldata",
    "multisig": "multisig",
}
"""Esplora's `scriptpubkey_type` → Bitcoin Core's `scriptPubKey.type` (anything else: `nonstandard`)."""
CORE_TYPES = {core: esplora for esplora, core in SCRIPT_TYPES.items()}


def _sats(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedPayload(f"{where}: expected whole satoshis, got {str(value)[:40]}")
    return value


def _output(vout: Mapping[str, Any], n: int, where: str) -> TxOutput:
    address = vout.get("scriptpubkey_address")
    return TxOutput(
        n=n,
        value=_sats(vout.get("value"), f"{where} vout[{n}].value"),
        address=canonical(address) if isinstance(address, str) and address else None,
        script_type=SCRIPT_TYPES.get(str(vout.get("scriptpubkey_type")), "nonstandard"),
    )


def _input(vin: Mapping[str, Any], where: str) -> TxInput:
    sequence = vin.get("sequence")
    sequence = sequence if isinstance(sequence, int) else 0xFFFFFFFF
    if vin.get("is_coinbase"):
        return TxInput(spends=None, sequence=sequence)
    spends = spent_outpoint(vin, where)
    prevout = vin.get("prevout")
    if not isinstance(prevout, Mapping):
        return TxInput(spends=spends, sequence=sequence)
    spent = _output(prevout, spends.vout, f"{where} prevout")
    return TxInput(spends, spent.address, spent.value, sequence, spent.script_type)


def map_esplora_tx(
    tx: Mapping[str, Any],
    chain: str,
    *,
    block_height: int | None = None,
    block_hash: str | None = None,
    timestamp: int | None = None,
    position: int = 0,
) -> UtxoTx:
    """One Esplora transaction object. The block fields default to its `status` (None while unconfirmed)."""
    txid, where, vin, vout = tx_parts(tx, "an Esplora transaction")
    status = tx.get("status")
    if isinstance(status, Mapping) and status.get("confirmed"):
        block_height = block_height if block_height is not None else _int_or_none(status.get("block_height"))
        block_hash = block_hash or (str(status["block_hash"]) if status.get("block_hash") else None)
        timestamp = timestamp if timestamp is not None else _int_or_none(status.get("block_time"))
    return UtxoTx(
        chain=chain,
        txid=txid.lower(),
        inputs=tuple(_input(i, f"{where} vin[{k}]") for k, i in enumerate(vin) if isinstance(i, Mapping)),
        outputs=tuple(_output(o, n, where) for n, o in enumerate(vout) if isinstance(o, Mapping)),
        block_height=block_height,
        block_hash=block_hash,
        timestamp=timestamp,
        position=position,
        locktime=int(tx.get("locktime") or 0),
        version=int(tx.get("version") or 1),
    )


def is_confirmed(tx: Mapping[str, Any]) -> bool:
    status = tx.get("status")
    return isinstance(status, Mapping) and bool(status.get("confirmed"))


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
