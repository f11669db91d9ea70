"""The compiled test contracts (tests/contracts/*.json): loading, deploying and calling them over JSON-RPC.

ABI encoding uses eth_abi directly, so the helpers stay independent of the web3 code under test.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from eth_abi import decode, encode
from eth_utils import keccak

from tests.support.rpc import JsonDict, Rpc

CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "contracts"

DEFAULT_GAS = 500_000
DEPLOY_GAS = 3_000_000

TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()


def _canonical_type(param: Mapping[str, Any]) -> str:
    """`uint256`, `address[]`, `(uint256,address)` … from an ABI parameter (tuples expanded)."""
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_canonical_type(c) for c in param.get("components", []))
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def _types(params: Sequence[Mapping[str, Any]]) -> list[str]:
    return [_canonical_type(p) for p in params]


@dataclass(frozen=True)
class Artifact:
    """One compiled contract: name, ABI and creation bytecode (0x-prefixed)."""

    name: str
    abi: list[JsonDict]
    bytecode: str

    def function(self, name: str) -> JsonDict:
        matches = [e for e in self.abi if e.get("type") == "function" and e.get("name") == name]
        if len(matches) != 1:
            raise KeyError(f"{self.name}: {len(matches)} functions named {name!r}")
        return matches[0]

    def event_topic(self, name: str) -> str:
        """topic0 of event `name`."""
        for entry in self.abi:
            if entry.get("type") == "event" and entry.get("name") == name:
                signature = f"{name}({','.join(_types(entry['inputs']))})"
                return "0x" + keccak(text=signature).hex()
        raise KeyError(f"{self.name}: no event {name!r}")

    def constructor_data(self, *args: Any) -> str:
        """Creation bytecode followed by the ABI-encoded constructor arguments."""
        ctor = next((e for e in self.abi if e.get("type") == "constructor"), None)
        types = _types(ctor["inputs"]) if ctor else []
        if len(types) != len(args):
            raise TypeError(f"{self.name} constructor takes {len(types)} arguments, got {len(args)}")
        return self.bytecode + (encode(types, list(args)).hex() if types else "")


@cache
def load_artifact(name: str) -> Artifact:
    """Read tests/contracts/<name>.json (written by tests/contracts/compile.js)."""
    data = json.loads((CONTRACTS_DIR / f"{name}.json").read_text())
    return Artifact(name=name, abi=data["abi"], bytecode=data["bytecode"])


class Contract:
    """A deployed contract: ABI-encode calls, send them as transactions, or `eth_call` them."""

    def __init__(self, rpc: Rpc, address: str, artifact: Artifact) -> None:
        self.rpc = rpc
        self.address = address.lower()
        self.artifact = artifact

    def __repr__(self) -> str:
        return f"<{self.artifact.name} at {self.address}>"

    def encode(self, fn: str, *args: Any) -> str:
        """Calldata for `fn(*args)` (4-byte selector + ABI-encoded arguments)."""
        entry = self.artifact.function(fn)
        types = _types(entry["inputs"])
        selector = keccak(text=f"{fn}({','.join(types)})")[:4]
        return "0x" + (selector + encode(types, list(args))).hex()

    def transact(self, fn: str, *args: Any, sender: str, value: int = 0, gas: int = DEFAULT_GAS) -> str:
        """Send `fn(*args)` from the unlocked `sender`; return the tx hash (not waiting for it to be mined).

        `gas` is explicit so the node does not estimate: calls that will revert, or that depend on
        transactions still in the pool, are accepted.
        """
        return self.rpc.send_transaction(
            {"from": sender, "to": self.address, "value": value, "gas": gas, "data": self.encode(fn, *args)}
        )

    def call(self, fn: str, *args: Any, block: int | str = "latest") -> Any:
        """`eth_call` of a view function; a single return value is unwrapped, several come as a tuple."""
        entry = self.artifact.function(fn)
        raw = self.rpc.eth_call({"to": self.address, "data": self.encode(fn, *args)}, block)
        values = decode(_types(entry["outputs"]), bytes.fromhex(raw.removeprefix("0x")))
        return values[0] if len(values) == 1 else values


def send_deploy(rpc: Rpc, name: str, *args: Any, sender: str, gas: int = DEPLOY_GAS) -> str:
    """Send the creation transaction of contract `name` with constructor `args`; return the tx hash."""
    artifact = load_artifact(name)
    return rpc.send_transaction({"from": sender, "gas": gas, "data": artifact.constructor_data(*args)})


def deploy(rpc: Rpc, name: str, *args: Any, sender: str, gas: int = DEPLOY_GAS) -> Contract:
    """Deploy contract `name` and wait for it (the node must be automining, or mine it from another thread)."""
    tx_hash = send_deploy(rpc, name, *args, sender=sender, gas=gas)
    return contract_from_receipt(rpc, name, rpc.wait_receipt(tx_hash))


def contract_from_receipt(rpc: Rpc, name: str, receipt: Mapping[str, Any]) -> Contract:
    """The Contract created by a mined creation transaction."""
    if int(receipt["status"], 16) != 1 or not receipt.get("contractAddress"):
        raise RuntimeError(f"deploying {name} failed: {receipt}")
    return Contract(rpc, receipt["contractAddress"], load_artifact(name))
