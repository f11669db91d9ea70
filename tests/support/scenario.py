"""A small, known set of value movements on an anvil chain, and the transfers an indexer must find in it.

`build_scenario(node)` deploys two tokens, a Forwarder and a MixerPool, then sends about twenty transactions in
five manually mined blocks. `Scenario.expected` is derived only from what was sent (receipts supply just the
block number and confirm success/revert), so tests of the indexer do not depend on the code under test.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from eth_utils import keccak

from tests.support.contracts import Contract, contract_from_receipt, send_deploy
from tests.support.rpc import ZERO_ADDRESS, JsonDict, Rpc, from_hex

if TYPE_CHECKING:
    from tests.support.anvil import AnvilNode

TransferKind = Literal["native", "erc20", "internal"]

ETHER = 10**18
PLAIN_GAS = 21_000
CALL_GAS = 500_000

# Roles of anvil's ten dev accounts (eth_accounts order).
ROLES = ("deployer", "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "relayer")


class ExpectedTransfer(NamedTuple):
    """One value movement the chain must show. Addresses are lower-case; `token` is None unless erc20."""

    block_number: int
    tx_hash: str
    kind: TransferKind
    token: str | None
    from_addr: str
    to_addr: str
    value: int


@dataclass(frozen=True)
class TokenMeta:
    symbol: str
    decimals: int


@dataclass
class Scenario:
    """What `build_scenario` did. Every address is lower-case."""

    chain_id: int
    tst: str  # TestToken "TST", 18 decimals
    usdx: str  # TestToken "USDX", 6 decimals
    forwarder: str
    mixer: str
    denomination: int  # MixerPool's fixed deposit, in wei
    accounts: dict[str, str]  # role (see ROLES) -> dev account
    first_block: int  # block of the first scenario transaction
    last_block: int  # block of the last one
    expected: list[ExpectedTransfer]  # in chain order: block, tx index, then order within the tx
    tx_hashes: list[str]  # every transaction sent, deployments included
    reverted: list[str]  # transactions that revert (status 0) although they carried value or calls
    zero_value: list[str]  # plain native sends of 0 wei (succeed, move nothing)
    tokens: dict[str, TokenMeta] = field(default_factory=dict)  # token address -> metadata

    @property
    def contracts(self) -> dict[str, str]:
        return {"tst": self.tst, "usdx": self.usdx, "forwarder": self.forwarder, "mixer": self.mixer}

    @property
    def labels(self) -> dict[str, str]:
        """address -> readable name (roles and contracts), for assertion messages."""
        names = {address: role for role, address in self.accounts.items()}
        names.update({address: name for name, address in self.contracts.items()})
        names[ZERO_ADDRESS] = "zero"
        return names

    @property
    def blocks(self) -> range:
        return range(self.first_block, self.last_block + 1)

    def of_kind(self, kind: TransferKind) -> list[ExpectedTransfer]:
        return [t for t in self.expected if t.kind == kind]

    def in_tx(self, tx_hash: str) -> list[ExpectedTransfer]:
        return [t for t in self.expected if t.tx_hash == tx_hash]

    def involving(self, address: str) -> list[ExpectedTransfer]:
        address = address.lower()
        return [t for t in self.expected if address in (t.from_addr, t.to_addr)]


class _Move(NamedTuple):
    kind: TransferKind
    token: str | None
    from_addr: str
    to_addr: str
    value: int


@dataclass
class _Sent:
    tx_hash: str
    moves: list[_Move]
    reverts: bool


class _Recorder:
    """Sends a batch with automine off, mines it, and turns what was sent into ExpectedTransfers."""

    def __init__(self, rpc: Rpc) -> None:
        self.rpc = rpc
        self.batch: list[_Sent] = []
        self.sent: list[str] = []
        self.reverted: list[str] = []
        self.rows: list[tuple[int, int, int, ExpectedTransfer]] = []  # (block, tx index, n, transfer)
        self.blocks: list[int] = []

    def add(self, tx_hash: str, moves: Iterable[_Move] = (), *, reverts: bool = False) -> str:
        self.batch.append(_Sent(tx_hash, list(moves), reverts))
        self.sent.append(tx_hash)
        if reverts:
            self.reverted.append(tx_hash)
        return tx_hash

    def mine(self) -> list[JsonDict]:
        """Mine until every transaction of the batch has a receipt; check success/revert as intended."""
        receipts: list[JsonDict | None] = [None] * len(self.batch)
        for _ in range(5):
            self.rpc.mine()
            missing = [i for i, r in enumerate(receipts) if r is None]
            found = self.rpc.batch([("eth_getTransactionReceipt", [self.batch[i].tx_hash]) for i in missing])
            for i, receipt in zip(missing, found, strict=True):
                receipts[i] = receipt
            if all(r is not None for r in receipts):
                break
        else:
            raise RuntimeError("scenario transactions were not mined after 5 blocks")
        done: list[JsonDict] = []
        for sent, receipt in zip(self.batch, receipts, strict=True):
            assert receipt is not None
            ok = from_hex(receipt["status"]) == 1
            if ok == sent.reverts:
                raise RuntimeError(f"scenario tx {sent.tx_hash} status {receipt['status']}, reverts={sent.reverts}")
            block, index = from_hex(receipt["blockNumber"]), from_hex(receipt["transactionIndex"])
            self.blocks.append(block)
            for n, move in enumerate(sent.moves):
                self.rows.append((block, index, n, ExpectedTransfer(block, sent.tx_hash, *move)))
            done.append(receipt)
        self.batch = []
        return done

    def expected(self) -> list[ExpectedTransfer]:
        return [row[3] for row in sorted(self.rows, key=lambda r: r[:3])]


def _bytes32(label: str) -> bytes:
    return keccak(text=f"chainsleuth-scenario:{label}")


def build_scenario(node: AnvilNode | Rpc) -> Scenario:
    """Deploy the test contracts and send the scenario's transactions; return what the chain must now show.

    Works on a fresh or a used node (the scenario occupies blocks [first_block, last_block] after the current
    head). Automine is switched off while building and restored afterwards.
    """
    rpc = node if isinstance(node, Rpc) else node.rpc
    dev = rpc.accounts()
    if len(dev) < len(ROLES):
        raise RuntimeError(f"need {len(ROLES)} unlocked dev accounts, node has {len(dev)}")
    acc = dict(zip(ROLES, dev, strict=False))
    automine = rpc.get_automine()
    rpc.set_automine(False)
    try:
        return _build(rpc, acc)
    finally:
        rpc.set_automine(automine)


def _native(sender: str, to: str, value: int) -> _Move:
    return _Move("native", None, sender, to, value)


def _internal(contract: str, to: str, value: int) -> _Move:
    return _Move("internal", None, contract, to, value)


def _erc20(token: Contract, sender: str, to: str, value: int) -> _Move:
    return _Move("erc20", token.address, sender, to, value)


def _build(rpc: Rpc, acc: dict[str, str]) -> Scenario:
    rec = _Recorder(rpc)
    deployer, alice, bob, carol = acc["deployer"], acc["alice"], acc["bob"], acc["carol"]
    dave, erin, frank, grace, heidi, relayer = (
        acc["dave"], acc["erin"], acc["frank"], acc["grace"], acc["heidi"], acc["relayer"]
    )  # fmt: skip
    denomination = 1 * ETHER

    def send_eth(sender: str, to: str, value: int) -> str:
        tx = rpc.send_transaction({"from": sender, "to": to, "value": value, "gas": PLAIN_GAS})
        return rec.add(tx, [_native(sender, to, value)] if value else [])

    # Block 1: deployments (creation transactions carry no value: nothing expected).
    deploys = [
        ("TestToken", ("Test Token", "TST", 18)),
        ("TestToken", ("USD Example", "USDX", 6)),
        ("Forwarder", ()),
        ("MixerPool", (denomination,)),
    ]
    for name, args in deploys:
        rec.add(send_deploy(rpc, name, *args, sender=deployer))
    receipts = rec.mine()
    tst, usdx, fwd, mixer = (
        contract_from_receipt(rpc, name, receipt) for (name, _), receipt in zip(deploys, receipts, strict=True)
    )

    # Block 2: plain native sends (one of 0 wei) and mints (Transfer from the zero address).
    huge = 2**70 + 7
    send_eth(alice, bob, 3 * ETHER // 2)
    zero_tx = send_eth(bob, carol, 0)
    send_eth(carol, alice, 12_345)
    rec.add(tst.transact("mint", alice, 1_000 * ETHER, sender=alice), [_erc20(tst, ZERO_ADDRESS, alice, 1_000 * ETHER)])
    rec.add(tst.transact("mint", bob, huge, sender=bob), [_erc20(tst, ZERO_ADDRESS, bob, huge)])
    rec.add(
        usdx.transact("mint", carol, 5_000 * 10**6, sender=deployer), [_erc20(usdx, ZERO_ADDRESS, carol, 5_000 * 10**6)]
    )
    rec.mine()

    # Block 3: ERC-20 transfers (one above 2**63), an approval (no transfer) and a native send.
    big = 2**64 + 3
    rec.add(tst.transact("transfer", carol, big, sender=bob), [_erc20(tst, bob, carol, big)])
    rec.add(tst.transact("transfer", dave, 250 * ETHER, sender=alice), [_erc20(tst, alice, dave, 250 * ETHER)])
    rec.add(usdx.transact("transfer", dave, 1_234_567, sender=carol), [_erc20(usdx, carol, dave, 1_234_567)])
    rec.add(tst.transact("approve", fwd.address, 100 * ETHER, sender=alice))
    send_eth(dave, erin, ETHER // 4)
    rec.mine()

    # Block 4: contract calls with value (tx-level native + internal transfers) and a token pull.
    rec.add(
        fwd.transact("forwardToken", tst.address, erin, 40 * ETHER, sender=alice),
        [_erc20(tst, alice, erin, 40 * ETHER)],
    )
    rec.add(
        fwd.transact("forward", frank, sender=alice, value=2 * ETHER),
        [_native(alice, fwd.address, 2 * ETHER), _internal(fwd.address, frank, 2 * ETHER)],
    )
    split_value = 3 * ETHER + 1  # odd: grace gets the floor half, heidi the rest
    half = split_value // 2
    rec.add(
        fwd.transact("split", grace, heidi, sender=bob, value=split_value),
        [
            _native(bob, fwd.address, split_value),
            _internal(fwd.address, grace, half),
            _internal(fwd.address, heidi, split_value - half),
        ],
    )
    rec.add(
        mixer.transact("deposit", _bytes32("commitment-1"), sender=carol, value=denomination),
        [_native(carol, mixer.address, denomination)],
    )
    rec.mine()

    # Block 5: a mixer withdrawal sent by a relayer, and three reverted transactions that move nothing.
    rec.add(
        mixer.transact("withdraw", erin, _bytes32("nullifier-1"), sender=relayer),
        [_internal(mixer.address, erin, denomination)],
    )
    rec.add(fwd.transact("forwardAndRevert", frank, sender=dave, value=ETHER // 2), reverts=True)
    rec.add(tst.transact("transfer", alice, 1, sender=frank), reverts=True)  # frank holds no TST
    rec.add(mixer.transact("deposit", _bytes32("commitment-2"), sender=dave, value=ETHER // 2), reverts=True)
    rec.mine()

    return Scenario(
        chain_id=rpc.chain_id(),
        tst=tst.address,
        usdx=usdx.address,
        forwarder=fwd.address,
        mixer=mixer.address,
        denomination=denomination,
        accounts=acc,
        first_block=min(rec.blocks),
        last_block=max(rec.blocks),
        expected=rec.expected(),
        tx_hashes=rec.sent,
        reverted=rec.reverted,
        zero_value=[zero_tx],
        tokens={tst.address: TokenMeta("TST", 18), usdx.address: TokenMeta("USDX", 6)},
    )


def summarize(scenario: Scenario) -> list[dict[str, Any]]:
    """`expected` as dicts with readable names instead of addresses (for debugging and failure messages)."""
    names = scenario.labels
    return [
        {
            "block": t.block_number,
            "tx": t.tx_hash[:10],
            "kind": t.kind,
            "token": scenario.tokens[t.token].symbol if t.token else None,
            "from": names.get(t.from_addr, t.from_addr),
            "to": names.get(t.to_addr, t.to_addr),
            "value": t.value,
        }
        for t in scenario.expected
    ]
