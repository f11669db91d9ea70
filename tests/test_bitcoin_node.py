"""The regtest node the bitcoin tests run on (tests/support/bitcoind.py) does what they rely on: mines, pays with
change, serves blocks with their transactions (getblock verbosity 2) and previous outputs, and reorganises."""

from __future__ import annotations

from decimal import Decimal

from tests.support.bitcoind import BitcoinNode
from tests.support.fixtures import bitcoin_node  # noqa: F401


def test_a_payment_has_its_input_a_payee_output_and_change(bitcoin_node: BitcoinNode) -> None:  # noqa: F811
    node = bitcoin_node
    payee = node.rpc("getnewaddress")
    txid = node.rpc("sendtoaddress", payee, Decimal("1.5"))
    block_hash = node.mine(1)[0]
    block = node.rpc("getblock", block_hash, 2)
    tx = next(t for t in block["tx"] if t["txid"] == txid)
    assert len(tx["vin"]) == 1 and "txid" in tx["vin"][0]
    outputs = {o["scriptPubKey"]["addresses"][0]: o["value"] for o in tx["vout"]}
    assert outputs[payee] == Decimal("1.5") and len(outputs) == 2
    spent = node.rpc("getrawtransaction", tx["vin"][0]["txid"], 1)["vout"][tx["vin"][0]["vout"]]["value"]
    fee = spent - sum(outputs.values())
    assert Decimal(0) < fee < Decimal("0.001")


def test_invalidating_the_tip_reorganises_the_chain(bitcoin_node: BitcoinNode) -> None:  # noqa: F811
    node = bitcoin_node
    txid = node.rpc("sendtoaddress", node.rpc("getnewaddress"), Decimal("2"))
    tip = node.mine(1)[0]
    assert node.rpc("getrawtransaction", txid, 1)["blockhash"] == tip
    node.rpc("invalidateblock", tip)
    other = node.mine(2, node.rpc("getnewaddress"))
    assert node.rpc("getblockcount") == 103 and tip not in other
    assert node.rpc("getblock", tip)["confirmations"] == -1
