"""Addresses of every family (EVM, TRON, bitcoin): what a person pastes becomes one canonical form or one clear
sentence; the family and the chain come from the address unless `--chain` says otherwise."""

from __future__ import annotations

import pytest

from tracing.chain.address import (
    Family,
    btc_network,
    btc_script_type,
    checksum,
    family_of,
    parse_address,
    short,
    tron_from_hex,
    tron_to_hex,
)
from tracing.chain.base58 import b58check_encode, segwit_decode, segwit_encode
from tracing.chain.config import chain_for_address, load_chains
from tracing.errors import InvalidAddress, UnknownChain, UnsupportedAddress, UserError

USDT_TRON = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
USDT_TRON_HEX = "41a614f803b6fd780986a42c78ec9c7f77e6ded13c"
GENESIS = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
# BIP-86's first receiving address (a bech32m vector): a random string passes the checksum about once in 10^9.
TAPROOT = "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297"
P2WSH = "bc1q4rzdtlt0uslyw86cp29sctl6ct29g9a95cuup7pn5md9ddj7xgmqpp5m73"
P2WPKH = "bc1q000xx03wpr69dx7pyetfmwdlk9je0wcg4tudkr"
P2SH = "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"


def test_tron_addresses_parse_from_base58_and_hex() -> None:
    assert parse_address(USDT_TRON) == USDT_TRON
    assert parse_address(USDT_TRON_HEX) == USDT_TRON
    assert parse_address("0x" + USDT_TRON_HEX) == USDT_TRON
    assert tron_to_hex(USDT_TRON) == "0x" + USDT_TRON_HEX[2:]
    assert tron_from_hex("0x" + USDT_TRON_HEX[2:]) == USDT_TRON
    assert family_of(USDT_TRON) is Family.TRON
    assert checksum(USDT_TRON) == USDT_TRON and short(USDT_TRON) == "TR7NH…Lj6t"


@pytest.mark.parametrize(
    ("text", "canonical", "script", "network"),
    [
        (GENESIS, GENESIS, "p2pkh", "main"),
        (P2SH, P2SH, "p2sh", "main"),
        (P2WPKH.upper(), P2WPKH, "p2wpkh", "main"),
        (P2WSH, P2WSH, "p2wsh", "main"),
        (TAPROOT, TAPROOT, "p2tr", "main"),
        (b58check_encode(bytes([0x6F]) + b"\x01" * 20), b58check_encode(bytes([0x6F]) + b"\x01" * 20), "p2pkh", "test"),
        (segwit_encode("bcrt", 0, b"\x02" * 20), segwit_encode("bcrt", 0, b"\x02" * 20), "p2wpkh", "regtest"),
    ],
)
def test_bitcoin_addresses_parse_with_their_script_type_and_network(
    text: str, canonical: str, script: str, network: str
) -> None:
    parsed = parse_address(f"  {text}. ")
    assert parsed == canonical
    assert family_of(parsed) is Family.BTC
    assert btc_script_type(parsed) == script
    assert btc_network(parsed) == network


def test_segwit_round_trip_and_version_rules() -> None:
    hrp, version, program = segwit_decode(TAPROOT) or ("", -1, b"")
    assert (hrp, version, len(program)) == ("bc", 1, 32)
    assert segwit_encode(hrp, version, program) == TAPROOT
    # A v1 program under the v0 (bech32) checksum is invalid (BIP-350), and the reverse.
    v0_checksum_for_v1 = _encode_with_const("bc", 1, program, const=1)
    assert segwit_decode(v0_checksum_for_v1) is None


def _encode_with_const(hrp: str, version: int, program: bytes, const: int) -> str:
    from tracing.chain import base58

    data = [version] + (base58._convert_bits(list(program), 8, 5, True) or [])
    polymod = base58._polymod(base58._hrp_expand(hrp) + data + [0] * 6) ^ const
    check = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(base58.BECH32_CHARSET[d] for d in data + check)


@pytest.mark.parametrize(
    ("text", "error", "says"),
    [
        (TAPROOT[:-1] + "8", InvalidAddress, "bech32 checksum"),
        (GENESIS[:-1] + "b", InvalidAddress, "bitcoin address fails its checksum"),
        (USDT_TRON[:-1] + "u", InvalidAddress, "TRON address fails its checksum"),
        ("4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi", UnsupportedAddress, "Solana"),
        ("0x41" + "0" * 39, InvalidAddress, "40 hex digits"),
        ("hello", InvalidAddress, "not an address"),
    ],
)
def test_a_mistyped_address_gets_one_sentence(text: str, error: type[UserError], says: str) -> None:
    with pytest.raises(error) as caught:
        parse_address(text)
    message = str(caught.value)
    assert says in message and message.count(". ") == 0 and message.endswith(".")


def test_the_chain_comes_from_the_address_unless_given() -> None:
    chains = load_chains({"CHAINS": "eth,tron,btc,btcreg", "BTCREG_FAMILY": "btc", "BTCREG_NETWORK": "regtest"})
    assert chain_for_address("0x" + "a" * 40, None, "eth", chains).name == "eth"
    assert chain_for_address(USDT_TRON, None, "eth", chains).name == "tron"
    assert chain_for_address(GENESIS, None, "eth", chains).name == "btc"
    regtest = segwit_encode("bcrt", 0, b"\x02" * 20)
    assert chain_for_address(regtest, None, "eth", chains).name == "btcreg"
    assert chain_for_address(regtest, "btcreg", "eth", chains).name == "btcreg"
    with pytest.raises(InvalidAddress, match="a TRON address, but chain eth is an EVM chain"):
        chain_for_address(USDT_TRON, "eth", "eth", chains)
    with pytest.raises(InvalidAddress, match="regtestnet bitcoin address; chain btc is mainnet"):
        chain_for_address(regtest, "btc", "eth", chains)
    with pytest.raises(UnknownChain, match="No TRON chain is configured"):
        chain_for_address(USDT_TRON, None, "eth", load_chains({"CHAINS": "eth"}))
    tron = chains["tron"]
    assert (tron.family, tron.symbol, tron.decimals, tron.confirmations) == (Family.TRON, "TRX", 6, 19)
    assert (chains["btc"].family, chains["btc"].decimals) == (Family.BTC, 8)


def test_a_tron_transaction_id_is_shown_without_0x_and_is_not_taken_for_an_address() -> None:
    from tracing.chain.address import show_tx

    tx = "0x" + "ab" * 32  # as stored (the node's form)
    assert show_tx(tx, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t") == "ab" * 32  # Tronscan's and TronGrid's form
    assert show_tx(tx, "0x" + "11" * 20) == tx  # EVM keeps its 0x
    for pasted in (tx, "AB" * 32):  # a transaction id in either form, pasted where an address goes
        with pytest.raises(InvalidAddress, match="transaction"):
            parse_address(pasted)
