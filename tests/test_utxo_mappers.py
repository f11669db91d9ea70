"""Bitcoin mappers: Bitcoin Core's getblock / getrawtransaction JSON → UtxoTx.

Against bitcoin-etl's recorded mainnet responses and the inputs, outputs, addresses and fees bitcoin-etl parses from
them (../shared/data/bitcoin-etl-rpc-fixtures; those blocks are from 2009-2010, so P2PK and P2PKH only); segwit and
taproot in Core's verbosity-3 shape (the recorded fixtures hold none; the case below is built in that shape with the
BIP-173/BIP-350/BIP-86 test-vector addresses); and against the regtest node."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import shared_data
from tests.support.bitcoind import BitcoinNode
from tests.support.fixtures import bitcoin_node  # noqa: F401
from tracing.chain.mappers import MalformedPayload
from tracing.chain.utxo import Outpoint, UtxoTx
from tracing.chain.utxo_mappers import (
    map_core_block,
    map_core_transaction,
    outputs_of,
    resolve_inputs,
    satoshis,
    unresolved,
)

CASES = ("block_0", "block_1", "block_without_transactions", "block_with_transactions", "stream_50001_50002")


def load(path: Path) -> Any:
    return json.loads(path.read_text(), parse_float=Decimal)


def expected(case: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (case / "expected_transactions.json").read_text().splitlines() if line]


@pytest.mark.parametrize("name", CASES)
def test_recorded_mainnet_blocks_parse_to_bitcoin_etls_transactions(name: str) -> None:
    case = shared_data("bitcoin-etl-rpc-fixtures", "test_export_blocks_job", "bitcoin", name)
    txs: list[UtxoTx] = []
    for path in sorted(case.glob("rpc_response_getblock_*_2.json")):
        txs.extend(map_core_block(load(path), "btc").txs)
    previous = [map_core_transaction(load(p), "btc") for p in case.glob("rpc_response_getrawtransaction_*.json")]
    txs = resolve_inputs(txs, outputs_of(previous))
    by_id = {tx.txid: tx for tx in txs}
    wanted = expected(case)
    assert sorted(by_id) == sorted(w["hash"] for w in wanted)
    for want in wanted:
        tx = by_id[want["hash"]]
        assert (tx.block_height, tx.block_hash, tx.timestamp) == (
            want["block_number"],
            want["block_hash"],
            want["block_timestamp"],
        )
        assert tx.coinbase is want["is_coinbase"] and tx.position == want["index"]
        assert [(o.n, o.value, o.script_type, [o.address]) for o in tx.outputs] == [
            (o["index"], o["value"], o["type"], o["addresses"]) for o in want["outputs"]
        ]
        assert tx.output_value == want["output_value"]
        spends = [i for i in tx.inputs if not i.coinbase]
        assert [(i.spends.txid, i.spends.vout) for i in spends if i.spends] == [
            (i["spent_transaction_hash"], i["spent_output_index"]) for i in want["inputs"]
        ]
        if tx.coinbase:
            assert tx.fee is None and want["fee"] == 0
        elif all(i["value"] is not None for i in want["inputs"]):  # bitcoin-etl resolved them too
            assert [(i.value, [i.address], i.script_type) for i in spends] == [
                (i["value"], i["addresses"], i["type"]) for i in want["inputs"]
            ]
            assert (tx.input_value, tx.fee) == (want["input_value"], want["fee"])
        else:  # no previous transactions recorded: the values stay unknown, never 0
            assert not tx.inputs_known and tx.fee is None and unresolved([tx])


SEGWIT_TAPROOT_BLOCK: dict[str, Any] = {
    "hash": "00000000000000000002a7c4c1e48d76c5a37902165a270156b7a8d72728a054",
    "height": 800000,
    "time": 1690168629,
    "previousblockhash": "00000000000000000001b3d1a2f5c6e7d8c9b0a1f2e3d4c5b6a7980f1e2d3c4b",
    "tx": [
        {
            "txid": "aa" * 32, "version": 2, "locktime": 0,
            "vin": [{"coinbase": "0300350c", "sequence": 4294967295}],
            "vout": [
                {"value": Decimal("6.25"), "n": 0, "scriptPubKey": {
                    "address": "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr",
                    "type": "witness_v1_taproot"}},
                {"value": Decimal("0E-8"), "n": 1, "scriptPubKey": {"asm": "OP_RETURN aa21a9ed", "type": "nulldata"}},
            ],
        },
        {
            "txid": "bb" * 32, "version": 2, "locktime": 0,
            "vin": [
                {"txid": "CC" * 32, "vout": 3, "sequence": 4294967293, "txinwitness": ["00"],
                 "prevout": {"generated": False, "height": 799990, "value": Decimal("0.01000000"), "scriptPubKey": {
                     "address": "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "type": "witness_v0_keyhash"}}},
                {"txid": "dd" * 32, "vout": 0, "sequence": 4294967295,
                 "prevout": {"generated": False, "height": 799991, "value": Decimal("0.00500001"), "scriptPubKey": {
                     "address": "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr",
                     "type": "witness_v1_taproot"}}},
            ],
            "vout": [
                {"value": Decimal("0.01200000"), "n": 0, "scriptPubKey": {
                    "address": "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3",
                    "type": "witness_v0_scripthash"}},
                {"value": Decimal("0.00299000"), "n": 1, "scriptPubKey": {
                    "address": "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", "type": "scripthash"}},
                {"value": Decimal("0.00000546"), "n": 2, "scriptPubKey": {"type": "multisig", "addresses": [
                    "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"]}},
            ],
            "fee": Decimal("0.00000455"),
        },
    ],
}  # fmt: skip


def test_segwit_and_taproot_with_prevouts_verbosity_3() -> None:
    block = map_core_block(SEGWIT_TAPROOT_BLOCK, "btc")
    coinbase, spend = block.txs
    assert coinbase.coinbase and coinbase.fee is None
    assert [(o.address, o.value, o.script_type) for o in coinbase.outputs] == [
        ("bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr", 625_000_000, "witness_v1_taproot"),
        (None, 0, "nulldata"),
    ]
    assert [(i.spends, i.address, i.value, i.script_type) for i in spend.inputs] == [
        (Outpoint("cc" * 32, 3), "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", 1_000_000, "witness_v0_keyhash"),
        (Outpoint("dd" * 32, 0), "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr", 500_001,
         "witness_v1_taproot"),
    ]  # fmt: skip
    assert [o.address for o in spend.outputs] == [
        "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3",
        "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
        None,
    ]  # a bare multisig has keys, not one address
    assert spend.fee == 455 and block.inputs_known and (block.number, block.parent_hash[:8]) == (800000, "00000000")


def test_amounts_are_exact_satoshis() -> None:
    assert satoshis(Decimal("20999999.99999999")) == 2_099_999_999_999_999
    assert satoshis(20999999.99999999) == 2_099_999_999_999_999  # a float answer, read through its shortest form
    assert satoshis("0.00000001") == 1 and satoshis(50) == 5_000_000_000
    for bad in (Decimal("0.000000001"), "-1", "abc", None, True):
        with pytest.raises(MalformedPayload):
            satoshis(bad)


def test_a_transaction_without_its_outpoints_is_refused() -> None:
    with pytest.raises(MalformedPayload, match="outpoint"):
        map_core_transaction({"txid": "ab" * 32, "vin": [{"vout": 0}], "vout": []}, "btc")
    with pytest.raises(MalformedPayload, match="verbosity"):
        map_core_block({"height": 1, "hash": "00" * 32, "time": 1, "tx": ["ab" * 32]}, "btc")


def test_regtest_block_with_previous_transactions(bitcoin_node: BitcoinNode) -> None:  # noqa: F811
    node = bitcoin_node
    payee = node.rpc("getnewaddress")
    txid = node.rpc("sendtoaddress", payee, Decimal("1.5"))
    block = map_core_block(node.rpc("getblock", node.mine(1)[0], 2), "regtest")
    assert not block.inputs_known  # verbosity 2: the spent outputs are elsewhere
    previous = [
        map_core_transaction(node.rpc("getrawtransaction", o.txid, 1), "regtest") for o in unresolved(block.txs)
    ]
    assert all(tx.block_hash and tx.timestamp for tx in previous)
    tx = next(t for t in resolve_inputs(block.txs, outputs_of(previous)) if t.txid == txid)
    assert tx.inputs_known and payee in tx.output_addresses() and len(tx.outputs) == 2
    assert next(o.value for o in tx.outputs if o.address == payee) == 150_000_000
    assert tx.fee == satoshis(-node.rpc("gettransaction", txid)["fee"])
    assert tx.block_height == 102 and tx.position == 1
