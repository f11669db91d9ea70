"""Address input: what people paste, and the one-sentence errors for what is wrong with it."""

from __future__ import annotations

import pytest

from tracing.chain.address import checksum, parse_address
from tracing.errors import InvalidAddress, UnsupportedAddress

LAZARUS = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"


@pytest.mark.parametrize(
    "pasted",
    [
        LAZARUS,
        LAZARUS.lower(),
        "0x" + LAZARUS[2:].upper(),
        f"  {LAZARUS}\n",
        f"<{LAZARUS.lower()}>",
        f"<{LAZARUS.lower()}|{LAZARUS.lower()}>",
        f"{LAZARUS}.",
        f"({LAZARUS}),",
        f"ethereum:{LAZARUS}",
        "0X" + LAZARUS[2:].lower(),
    ],
)
def test_pasted_forms_are_canonicalised(pasted: str) -> None:
    assert parse_address(pasted) == LAZARUS.lower()


def test_checksum_round_trip() -> None:
    assert checksum(LAZARUS.lower()) == LAZARUS


@pytest.mark.parametrize(
    ("text", "error", "words"),
    [
        (LAZARUS[:-1] + "7", InvalidAddress, "checksum"),
        ("0x123", InvalidAddress, "40 hex digits"),
        ("0x" + "ab" * 32, InvalidAddress, "transaction hash"),
        ("hello", InvalidAddress, "not an address"),
        ("0xZZ8b716b8aaf21512996dc57eb0615e2383e2f96", InvalidAddress, "not an address"),
        ("vitalik.eth", UnsupportedAddress, "ENS"),
        ("bc1qa5wkgaew2dkv56kfvj49j0av5nml45x9ek9hz7", InvalidAddress, "bech32 checksum"),
        ("TNaRAoLUyYEV2uF7GUrzSjRQTU8v5ZJ5VS", InvalidAddress, "TRON address fails its checksum"),
        ("", InvalidAddress, "No address"),
    ],
)
def test_bad_input_says_what_is_wrong_in_one_sentence(text: str, error: type[Exception], words: str) -> None:
    with pytest.raises(error) as caught:
        parse_address(text)
    message = str(caught.value)
    assert words in message
    assert "\n" not in message and len(message) < 160


def test_long_garbage_is_shortened_in_the_error() -> None:
    with pytest.raises(InvalidAddress) as caught:
        parse_address("x" * 5000)
    assert len(str(caught.value)) < 160
