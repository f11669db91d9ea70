"""Base58Check (bitcoin's legacy addresses, TRON's `T…` addresses) and bech32/bech32m (BIP-173, BIP-350): decoding
with every checksum checked, encoding for display. Pure functions, no chain knowledge."""

from __future__ import annotations

import hashlib

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}

BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_INDEX = {c: i for i, c in enumerate(BECH32_CHARSET)}
BECH32 = 1
BECH32M = 0x2BC830A3
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


class Base58Error(ValueError):
    """Not Base58, or a Base58Check checksum that does not match."""


def _sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def b58decode(text: str) -> bytes:
    """The bytes of a Base58 string (leading `1`s are zero bytes); Base58Error on a character outside the alphabet."""
    number = 0
    for char in text:
        digit = _INDEX.get(char)
        if digit is None:
            raise Base58Error(f"“{char}” is not a Base58 character")
        number = number * 58 + digit
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    zeros = len(text) - len(text.lstrip("1"))
    return b"\x00" * zeros + body


def b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, digit = divmod(number, 58)
        out.append(ALPHABET[digit])
    zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * zeros + "".join(reversed(out))


def b58check_decode(text: str) -> bytes:
    """The payload of a Base58Check string (version byte included, checksum removed); Base58Error when the
    checksum does not match."""
    raw = b58decode(text)
    if len(raw) < 5:
        raise Base58Error("too short for Base58Check")
    payload, check = raw[:-4], raw[-4:]
    if _sha256d(payload)[:4] != check:
        raise Base58Error("checksum mismatch")
    return payload


def b58check_encode(payload: bytes) -> str:
    return b58encode(payload + _sha256d(payload)[:4])


def _polymod(values: list[int]) -> int:
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for i, gen in enumerate(_GENERATOR):
            if (top >> i) & 1:
                check ^= gen
    return check


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def bech32_decode(text: str) -> tuple[str, list[int], int] | None:
    """(human-readable part, 5-bit data without the checksum, BECH32 or BECH32M), or None when `text` is not a
    valid bech32/bech32m string (mixed case, bad character, bad length, checksum)."""
    if any(ord(c) < 33 or ord(c) > 126 for c in text) or (text.lower() != text and text.upper() != text):
        return None
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text) or len(text) > 90:
        return None
    data = [_BECH32_INDEX.get(c, -1) for c in text[pos + 1 :]]
    if -1 in data:
        return None
    hrp = text[:pos]
    const = _polymod(_hrp_expand(hrp) + data)
    if const not in (BECH32, BECH32M):
        return None
    return hrp, data[:-6], const


def _convert_bits(data: list[int], from_bits: int, to_bits: int, pad: bool) -> list[int] | None:
    acc = bits = 0
    out: list[int] = []
    top = (1 << to_bits) - 1
    for value in data:
        if value < 0 or value >> from_bits:
            return None
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & top)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & top)
    elif bits >= from_bits or ((acc << (to_bits - bits)) & top):
        return None
    return out


def segwit_decode(text: str) -> tuple[str, int, bytes] | None:
    """(hrp, witness version, witness program) of a segwit address (BIP-173 for v0, BIP-350 bech32m for v1+), or
    None when it is not a valid one."""
    decoded = bech32_decode(text)
    if decoded is None:
        return None
    hrp, data, const = decoded
    if not data:
        return None
    version = data[0]
    program = _convert_bits(data[1:], 5, 8, False)
    if program is None or not 2 <= len(program) <= 40 or version > 16:
        return None
    if version == 0 and len(program) not in (20, 32):
        return None
    if (version == 0) != (const == BECH32):
        return None
    return hrp, version, bytes(program)


def segwit_encode(hrp: str, version: int, program: bytes) -> str:
    data = [version] + (_convert_bits(list(program), 8, 5, True) or [])
    const = BECH32 if version == 0 else BECH32M
    values = _hrp_expand(hrp) + data
    polymod = _polymod(values + [0] * 6) ^ const
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(BECH32_CHARSET[d] for d in data + checksum)
