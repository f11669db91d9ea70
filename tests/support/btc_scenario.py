"""A known bitcoin history on the regtest node, built from raw transactions so every input and output is chosen:

    block h+1  fund:  coinbase (50)      → SRC 20, MINER 29.9999                      (fee 0.0001)
    block h+2  hop1:  SRC 20             → H1 15, SRC 4.9999 (change)                  (fee 0.0001)
    block h+3  hop2:  H1 15              → H2 10, H1B 4.9998                           (fee 0.0002)
    block h+4  hop3:  H2 10              → H3 9.9997                                   (fee 0.0003)
               join:  H1B 4.9998 + SRC 4.9999 → JOIN 9.9990                             (fee 0.0007)

A 3-hop trace from SRC reaches H1, H2, H3 (and JOIN through H1B and SRC's change). Amounts are whole satoshis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from tests.support.bitcoind import BitcoinNode


@dataclass
class BtcScenario:
    first_block: int
    last_block: int
    addresses: dict[str, str]
    txids: dict[str, str]
    fees: dict[str, int] = field(default_factory=dict)


def pay(node: BitcoinNode, inputs: list[tuple[str, int]], outputs: dict[str, Decimal]) -> str:
    """Build, sign and send a transaction spending exactly `inputs` to exactly `outputs`."""
    amounts = {address: str(amount) for address, amount in outputs.items()}  # the node reads decimal strings
    raw = node.rpc("createrawtransaction", [{"txid": t, "vout": v} for t, v in inputs], amounts)
    signed = node.rpc("signrawtransaction", raw)
    assert signed.get("complete"), signed
    return str(node.rpc("sendrawtransaction", signed["hex"]))


def build_btc_scenario(node: BitcoinNode) -> BtcScenario:
    names = ("MINER", "SRC", "H1", "H2", "H3", "H1B", "JOIN")
    a = {name: str(node.rpc("getnewaddress")) for name in names}
    first = int(node.rpc("getblockcount")) + 1
    coin = min(
        (u for u in node.rpc("listunspent", 100) if u["amount"] == Decimal(50)),
        key=lambda u: (u["confirmations"], u["txid"]),
    )
    tx: dict[str, str] = {}
    tx["fund"] = pay(node, [(coin["txid"], coin["vout"])], {a["SRC"]: Decimal(20), a["MINER"]: Decimal("29.9999")})
    node.mine(1, a["MINER"])
    tx["hop1"] = pay(node, [(tx["fund"], 0)], {a["H1"]: Decimal(15), a["SRC"]: Decimal("4.9999")})
    node.mine(1, a["MINER"])
    tx["hop2"] = pay(node, [(tx["hop1"], 0)], {a["H2"]: Decimal(10), a["H1B"]: Decimal("4.9998")})
    node.mine(1, a["MINER"])
    tx["hop3"] = pay(node, [(tx["hop2"], 0)], {a["H3"]: Decimal("9.9997")})
    tx["join"] = pay(node, [(tx["hop2"], 1), (tx["hop1"], 1)], {a["JOIN"]: Decimal("9.9990")})
    node.mine(1, a["MINER"])
    fees = {"fund": 10_000, "hop1": 10_000, "hop2": 20_000, "hop3": 30_000, "join": 70_000}
    return BtcScenario(first, first + 3, a, tx, fees)
