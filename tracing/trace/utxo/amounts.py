"""Satoshi amounts in words for the heuristics' reasons (`0.015 BTC`), and script types in one vocabulary."""

from __future__ import annotations

from decimal import Decimal

from tracing.chain.address import btc_script_type
from tracing.chain.base58 import Base58Error
from tracing.chain.utxo import SATS_PER_BTC

NODE_SCRIPT_TYPES = {
    "pubkeyhash": "p2pkh",
    "scripthash": "p2sh",
    "witness_v0_keyhash": "p2wpkh",
    "witness_v0_scripthash": "p2wsh",
    "witness_v1_taproot": "p2tr",
}
"""The node's `scriptPubKey.type` names → the names `btc_script_type` gives an address."""


def btc(sats: int) -> str:
    """`0.015 BTC`, `1.5 BTC`, `0.00000546 BTC`: whole satoshis, trailing zeros dropped."""
    text = format(Decimal(sats) / SATS_PER_BTC, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} BTC"


def script_kind(address: str | None, node_type: str | None) -> str | None:
    """One name for a script's type (`p2pkh`, `p2wpkh`, …) from its address, else from the node's name."""
    if address is not None:
        try:
            return btc_script_type(address)
        except (Base58Error, KeyError, ValueError):
            pass
    if node_type is None:
        return None
    return NODE_SCRIPT_TYPES.get(node_type, node_type)
