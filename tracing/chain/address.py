"""EVM addresses: parsing what a person pastes into one canonical form (lower-case 0x + 40 hex)."""

from __future__ import annotations

import re

from eth_utils import is_checksum_address, to_checksum_address

from tracing.errors import InvalidAddress, UnsupportedAddress

_HEX40 = re.compile(r"^0x[0-9a-fA-F]{40}$")
_ANY_HEX40 = re.compile(r"0[xX][0-9a-fA-F]{40}")
_HEXISH = re.compile(r"^0x[0-9a-fA-F]*$")
_SLACK_WRAP = re.compile(r"^<([^|>]*)(?:\|[^>]*)?>$")
_ENS = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)*\.(eth|xyz|luxe|kred|art|club)$", re.IGNORECASE)
_BTC = re.compile(r"^(bc1[0-9a-z]{20,90}|[13][1-9A-HJ-NP-Za-km-z]{25,34})$")
_TRON = re.compile(r"^T[1-9A-HJ-NP-Za-km-z]{33}$")
_SOLANA = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{32,44}$")
_TRAILING = ".,;:!?)]}>'\"`"
_LEADING = "([{<'\"`"


def canonical(address: str) -> str:
    """Canonical form of an already valid address."""
    return address.lower()


def checksum(address: str) -> str:
    """EIP-55 form, for display."""
    return to_checksum_address(address)


def short(address: str) -> str:
    c = checksum(address)
    return f"{c[:6]}…{c[-4:]}"


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
    if _HEX40.match(raw):
        if raw[2:] != raw[2:].lower() and raw[2:] != raw[2:].upper() and not is_checksum_address(raw):
            raise InvalidAddress(
                "That address fails its EIP-55 checksum (mixed case); check for a typo or paste it in lower case."
            )
        return canonical(raw)
    if _HEXISH.match(raw):
        return _bad_hex(raw)
    if _BTC.match(raw) or _TRON.match(raw) or _SOLANA.match(raw):
        raise UnsupportedAddress("Only EVM (0x…) addresses are supported yet; Bitcoin, Tron and Solana are not.")
    raise InvalidAddress(f"“{shown}” is not an EVM address (expected 0x followed by 40 hex characters).")


def _bad_hex(raw: str) -> str:
    digits = len(raw) - 2
    if digits == 64:
        raise InvalidAddress("That looks like a transaction hash, not an address (64 hex digits, not 40).")
    raise InvalidAddress(f"An EVM address has 40 hex digits after 0x; this one has {digits}.")


def is_address(text: str) -> bool:
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
