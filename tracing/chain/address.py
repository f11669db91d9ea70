"""Addresses of every chain family: parsing what a person pastes into one canonical form, and showing it.

Canonical forms (what the store, the graph and the labels hold):

- EVM: lower-case `0x` + 40 hex digits; shown in EIP-55 mixed case.
- TRON: the `T…` Base58Check form (34 characters, case-sensitive); `41…`/`0x41…` hex is accepted as input.
- Bitcoin: Base58Check `1…`/`3…` (testnet/regtest `m…`/`n…`/`2…`) as given, bech32/bech32m `bc1…`/`tb1…`/`bcrt1…`
  in lower case.

`family_of` tells a canonical address's family from its shape alone, so display needs no chain. Transaction hashes
are stored as their source gives them (EVM and TRON `0x` + 64 hex); `show_tx` shows one as its chain does (TRON: the
64 hex digits without `0x`, as Tronscan and TronGrid write a transaction id).
"""

from __future__ import annotations

import re
from enum import StrEnum

from eth_utils import is_checksum_address, to_checksum_address

from tracing.chain.base58 import Base58Error, b58check_decode, b58check_encode, b58decode, segwit_decode
from tracing.errors import InvalidAddress, UnsupportedAddress


class Family(StrEnum):
    """A chain family: how its addresses look and how its data is read."""

    EVM = "evm"
    TRON = "tron"
    BTC = "btc"


TRON_PREFIX = 0x41
"""The byte before the 20 address bytes in a TRON address."""

BTC_VERSIONS: dict[int, tuple[str, str]] = {
    0x00: ("main", "p2pkh"),
    0x05: ("main", "p2sh"),
    0x6F: ("test", "p2pkh"),
    0xC4: ("test", "p2sh"),
}
"""Base58Check version byte → (network, script type). Testnet, signet and regtest share the test versions."""

BTC_HRPS: dict[str, str] = {"bc": "main", "tb": "test", "bcrt": "regtest"}
"""bech32 human-readable part → network."""

_HEX40 = re.compile(r"^0x[0-9a-fA-F]{40}$")
_ANY_HEX40 = re.compile(r"0[xX][0-9a-fA-F]{40}")
_HEXISH = re.compile(r"^0x[0-9a-fA-F]*$")
_SLACK_WRAP = re.compile(r"^<([^|>]*)(?:\|[^>]*)?>$")
_ENS = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)*\.(eth|xyz|luxe|kred|art|club)$", re.IGNORECASE)
_BASE58 = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{25,44}$")
_BECH32_LIKE = re.compile(r"^(bc|tb|bcrt)1[0-9a-z]{6,87}$", re.IGNORECASE)
_TRON = re.compile(r"^T[1-9A-HJ-NP-Za-km-z]{33}$")
_TRON_HEX = re.compile(r"^(0[xX])?41[0-9a-fA-F]{40}$")
_TX_ID = re.compile(r"^[0-9a-fA-F]{64}$")
_SOLANA = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{32,44}$")
_TRAILING = ".,;:!?)]}>'\"`"
_LEADING = "([{<'\"`"


def family_of(address: str) -> Family:
    """The family of a canonical address, from its shape (`0x…` EVM, `T…` TRON, anything else bitcoin)."""
    if address[:2] == "0x":
        return Family.EVM
    if address[:1] == "T" and len(address) == 34:
        return Family.TRON
    return Family.BTC


def canonical(address: str) -> str:
    """Canonical form of an already valid address (EVM hex in lower case; TRON and Base58 bitcoin unchanged;
    bech32 in lower case)."""
    if address[:2] in ("0x", "0X"):
        return address.lower()
    if _BECH32_LIKE.match(address):
        return address.lower()
    return address


def checksum(address: str) -> str:
    """The form to show: EIP-55 for an EVM address, the canonical form itself for TRON and bitcoin."""
    if address[:2] == "0x" and len(address) == 42:
        return to_checksum_address(address)
    return address


def short(address: str) -> str:
    c = checksum(address)
    if c[:2] == "0x":
        return f"{c[:6]}…{c[-4:]}"
    return f"{c[:5]}…{c[-4:]}"


def show_tx(tx_hash: str, address: str) -> str:
    """A transaction hash as the chain of `address` (any address of the transaction's chain, canonical) shows it:
    on TRON the 64 hex digits without `0x` (Tronscan's and TronGrid's transaction id); elsewhere unchanged."""
    if family_of(address) is Family.TRON and len(tx_hash) == 66 and tx_hash[:2] == "0x":
        return tx_hash[2:]
    return tx_hash


def tron_from_hex(hex_address: str) -> str:
    """The `T…` form of a TRON address given as 20 bytes (`0x` + 40 hex, an EVM-shaped log address) or as 21 bytes
    (`41` + 40 hex, TRON's own hex form, with or without `0x`)."""
    digits = hex_address[2:] if hex_address[:2] in ("0x", "0X") else hex_address
    if len(digits) == 40:
        digits = "41" + digits
    raw = bytes.fromhex(digits)
    if len(raw) != 21 or raw[0] != TRON_PREFIX:
        raise ValueError(f"not a TRON hex address: {hex_address[:50]}")
    return b58check_encode(raw)


def tron_to_hex(address: str) -> str:
    """The 20 address bytes of a `T…` address as an EVM-shaped `0x` + 40 hex (what TRON's logs and its
    `/jsonrpc` carry)."""
    return "0x" + b58check_decode(address)[1:].hex()


def btc_network(address: str) -> str:
    """`main`, `test` or `regtest` for a canonical bitcoin address (Base58 test versions say `test`: testnet,
    signet and regtest share them)."""
    segwit = segwit_decode(address) if _BECH32_LIKE.match(address) else None
    if segwit is not None:
        return BTC_HRPS[segwit[0]]
    return BTC_VERSIONS[b58check_decode(address)[0]][0]


def btc_script_type(address: str) -> str:
    """`p2pkh`, `p2sh`, `p2wpkh`, `p2wsh`, `p2tr` or `witness_vN` for a canonical bitcoin address."""
    segwit = segwit_decode(address) if _BECH32_LIKE.match(address) else None
    if segwit is not None:
        _, version, program = segwit
        if version == 0:
            return "p2wpkh" if len(program) == 20 else "p2wsh"
        return "p2tr" if version == 1 and len(program) == 32 else f"witness_v{version}"
    return BTC_VERSIONS[b58check_decode(address)[0]][1]


def parse_address(text: str) -> str:
    """Turn pasted text into a canonical address, or raise a user error that says what is wrong.

    Tolerates surrounding whitespace, Slack's `<…>` / `<…|…>` wrapping and trailing punctuation. Mixed-case input
    must pass the EIP-55 checksum (a typo in a checksummed address must not silently hit another account).
    """
    raw = text.strip()
    wrapped = _SLACK_WRAP.match(raw)
    if wrapped:
        raw = wrapped.group(1).strip()
    raw = raw.strip(_TRAILING).lstrip(_LEADING).strip()
    if raw.lower().startswith("ethereum:"):
        raw = raw.split(":", 1)[1].split("@", 1)[0]
    shown = raw if len(raw) <= 50 else raw[:47] + "..."
    if not raw:
        raise InvalidAddress("No address given.")
    if _ENS.match(raw):
        raise UnsupportedAddress("ENS names are not supported yet; paste the 0x address.")
    if raw[:2] in ("0X",):
        raw = "0x" + raw[2:]
    if raw.lower().startswith(("bitcoin:", "tron:")):
        raw = raw.split(":", 1)[1].split("?", 1)[0]
    if _HEX40.match(raw):
        if raw[2:] != raw[2:].lower() and raw[2:] != raw[2:].upper() and not is_checksum_address(raw):
            raise InvalidAddress(
                "That address fails its EIP-55 checksum (mixed case); check for a typo or paste it in lower case."
            )
        return canonical(raw)
    if _TRON_HEX.match(raw):
        return tron_from_hex(raw)
    if _HEXISH.match(raw):
        return _bad_hex(raw)
    if _TX_ID.match(raw):
        raise InvalidAddress("That looks like a transaction id, not an address (64 hex digits).")
    if _TRON.match(raw):
        return _tron(raw)
    if _BECH32_LIKE.match(raw):
        return _bech32(raw)
    if _BASE58.match(raw):
        return _base58(raw)
    raise InvalidAddress(f"“{shown}” is not an address (EVM 0x…, TRON T… or bitcoin 1…, 3…, bc1…).")


def _tron(raw: str) -> str:
    try:
        payload = b58check_decode(raw)
    except Base58Error:
        raise InvalidAddress("That TRON address fails its checksum; check for a typo.") from None
    if len(payload) != 21 or payload[0] != TRON_PREFIX:
        raise InvalidAddress("That is not a TRON address (T… must hold 0x41 and 20 bytes).")
    return raw


def _bech32(raw: str) -> str:
    if segwit_decode(raw) is None:
        raise InvalidAddress("That bitcoin address (bc1…) fails its bech32 checksum or is malformed; check for a typo.")
    return raw.lower()


def _base58(raw: str) -> str:
    try:
        size = len(b58decode(raw))
    except Base58Error:
        size = 0
    if size == 32 and _SOLANA.match(raw):
        raise UnsupportedAddress("Solana addresses are not supported; EVM, TRON and bitcoin are.")
    try:
        payload = b58check_decode(raw)
    except Base58Error:
        raise InvalidAddress("That bitcoin address fails its checksum; check for a typo.") from None
    if len(payload) != 21 or payload[0] not in BTC_VERSIONS:
        raise InvalidAddress("That is not a bitcoin address (unknown version byte).")
    return raw


def _bad_hex(raw: str) -> str:
    digits = len(raw) - 2
    if digits == 64:
        raise InvalidAddress("That looks like a transaction hash, not an address (64 hex digits, not 40).")
    raise InvalidAddress(f"An EVM address has 40 hex digits after 0x; this one has {digits}.")


def is_address(text: str) -> bool:
    """Whether `text` is an EVM address (0x + 40 hex)."""
    return bool(_HEX40.match(text.strip()))


def normalise_address(value: object, *, hex_digits: bool = True) -> str | None:
    """The canonical form of an address a machine wrote (a node's JSON, an explorer's row, an export's column, a
    label file), or None when `value` is not one: `0x` or `0X` and 40 hex digits, no checksum check (a person's
    paste goes through `parse_address`). With `hex_digits=False` any 40 characters after the prefix pass: a node
    payload's digits are the node's business, and the demo data was checked when it was made."""
    if not isinstance(value, str) or len(value) != 42:
        return None
    if hex_digits:
        return canonical(value) if _ANY_HEX40.fullmatch(value) else None
    return canonical(value) if value[:2] in ("0x", "0X") else None


ZERO_ADDRESS = "0x" + "0" * 40
