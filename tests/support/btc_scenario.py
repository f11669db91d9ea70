"""A known bitcoin history on the regtest node, built from raw transactions so every input and output is chosen:

    block h+1  fund:  coinbase (50)      → SRC 20, MINER 29.9999                      (fee 0.0001)
    block h+2  hop1:  SRC 20             → H1 15, SRC 4.9999 (change)                  (fee 0.0001)
    block h+3  hop2:  H1 15              → H2 10, H1B 4.9998                           (fee 0.0002)
    block h+4  hop3:  H2 10              → H3 9.9997                                   (fee 0.0003)
               join:  H1B 4.9998 + SRC 4.9999 → JOIN 9.9990                             (fee 0.0007)

A 3-hop trace from SRC reaches H1, H2, H3 (and JOIN through H1B and SRC's change). Amounts are whole satoshis.

`paged=N` adds, after that, N transactions each paying PAGED 0.01 (a chain of change from another coinbase, a block
every 10), and `mempool=M` M more left unconfirmed: an address whose history spans pages of 25.
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


def build_btc_scenario(node: BitcoinNode, *, paged: int = 0, mempool: int = 0) -> BtcScenario:
    names = ("MINER", "SRC", "H1", "H2", "H3", "H1B", "JOIN", "PAGED", "CHANGE")
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
    if paged or mempool:
        coins = sorted(
            (u for u in node.rpc("listunspent", 100) if u["amount"] == Decimal(50) and u["txid"] != coin["txid"]),
            key=lambda u: (-u["confirmations"], u["txid"]),
        )
        spend, left = (coins[0]["txid"], coins[0]["vout"]), Decimal(50)
        for k in range(paged + mempool):
            left -= Decimal("0.0101")
            txid = pay(node, [spend], {a["PAGED"]: Decimal("0.01"), a["CHANGE"]: left})
            tx[f"paged{k}"], spend = txid, (txid, 1)
            if k < paged and (k % 10 == 9 or k == paged - 1):
                node.mine(1, a["MINER"])
    last = int(node.rpc("getblockcount"))
    return BtcScenario(first, last, a, tx, fees)


@dataclass
class HeuristicsScenario:
    """`build_heuristics_scenario`'s history: the addresses and transactions by name."""

    first_block: int
    last_block: int
    addresses: dict[str, str]
    txids: dict[str, str]


def _coinbase(node: BitcoinNode, taken: set[str]) -> dict[str, object]:
    """A mature 50 BTC coinbase output not used yet."""
    coins = [u for u in node.rpc("listunspent", 100) if u["amount"] == Decimal(50) and u["txid"] not in taken]
    coin: dict[str, object] = min(coins, key=lambda u: (-u["confirmations"], u["txid"]))
    taken.add(str(coin["txid"]))
    return coin


def build_heuristics_scenario(node: BitcoinNode) -> HeuristicsScenario:
    """The bitcoin heuristics' history (two blocks mined first, then one block each):

        fundk:  coinbase 50          → K1 3, K2 2, K3 15.0002, MINER (rest)       a wallet's three coins
        fundx:  coinbase 50          → X1 5.0002, X2 5.0002, MINER (rest)         two other wallets' coins
        consol: K1 + K2 + K3         → S0 20                                       consolidation (one owner)
        pay:    S0 20                → M 1.5 (round payment), C1 18.4999 (change)  payment and change
        peel1:  C1                   → P1 0.8, C2 17.6998                          peel chain along the change
        peel2:  C2                   → P2 0.6, C3 17.0997
        peel3:  C3                   → P3 0.7, C4 16.3996
        mix:    C4 + X1 + X2         → J1 5, J2 5, J3 5, D1 11.3996                equal-output CoinJoin, 3 owners

    A trace out of S0 follows pay and the peel chain along the change and stops at the mix; clustering joins K1,
    K2 and K3 (consol) and never C4, X1 and X2 (mix). Bitcoin SV regtest: every address is P2PKH.
    """
    names = ("MINER", "K1", "K2", "K3", "X1", "X2", "S0", "M", "C1", "P1", "C2", "P2", "C3", "P3", "C4")
    a = {name: str(node.rpc("getnewaddress")) for name in (*names, "J1", "J2", "J3", "D1")}
    node.mine(2, a["MINER"])  # two coinbases mature beyond the 101 blocks every bitcoin test starts from
    first = int(node.rpc("getblockcount")) + 1
    taken: set[str] = set()
    tx: dict[str, str] = {}

    def send(name: str, inputs: list[tuple[str, int]], outputs: dict[str, str]) -> None:
        tx[name] = pay(node, inputs, {a[k]: Decimal(v) for k, v in outputs.items()})
        node.mine(1, a["MINER"])

    k = _coinbase(node, taken)
    x = _coinbase(node, taken)
    tx["fundk"] = pay(
        node,
        [(str(k["txid"]), int(str(k["vout"])))],
        {a["K1"]: Decimal(3), a["K2"]: Decimal(2), a["K3"]: Decimal("15.0002"), a["MINER"]: Decimal("29.9997")},
    )
    tx["fundx"] = pay(
        node,
        [(str(x["txid"]), int(str(x["vout"])))],
        {a["X1"]: Decimal("5.0002"), a["X2"]: Decimal("5.0002"), a["MINER"]: Decimal("39.9995")},
    )
    node.mine(1, a["MINER"])
    send("consol", [(tx["fundk"], 0), (tx["fundk"], 1), (tx["fundk"], 2)], {"S0": "20"})
    send("pay", [(tx["consol"], 0)], {"M": "1.5", "C1": "18.4999"})
    send("peel1", [(tx["pay"], 1)], {"P1": "0.8", "C2": "17.6998"})
    send("peel2", [(tx["peel1"], 1)], {"P2": "0.6", "C3": "17.0997"})
    send("peel3", [(tx["peel2"], 1)], {"P3": "0.7", "C4": "16.3996"})
    send(
        "mix",
        [(tx["peel3"], 1), (tx["fundx"], 0), (tx["fundx"], 1)],
        {"J1": "5", "J2": "5", "J3": "5", "D1": "11.3996"},
    )
    return HeuristicsScenario(first, int(node.rpc("getblockcount")), a, tx)
