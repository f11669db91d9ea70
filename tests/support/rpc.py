"""A small synchronous Ethereum JSON-RPC client (httpx) with the calls the anvil tests need.

Transactions are sent with `eth_sendTransaction` from anvil's unlocked dev accounts, so nothing is signed here.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

JsonDict = dict[str, Any]
BlockId = int | str

ZERO_ADDRESS = "0x" + "00" * 20


class RpcError(RuntimeError):
    """A JSON-RPC error object returned by the node."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{method}: [{code}] {message}" + (f" ({data})" if data is not None else ""))
        self.method = method
        self.code = code
        self.message = message
        self.data = data


def to_hex(value: int) -> str:
    """An int as a JSON-RPC quantity (`0x0`, `0x1f`)."""
    if value < 0:
        raise ValueError(f"negative quantity: {value}")
    return hex(value)


def from_hex(value: str | int) -> int:
    """A JSON-RPC quantity as an int (ints pass through)."""
    return value if isinstance(value, int) else int(value, 16)


def block_id(block: BlockId) -> str:
    """A block number or tag (`latest`, `pending`, …) as a JSON-RPC block parameter."""
    return to_hex(block) if isinstance(block, int) else block


def _tx_params(tx: Mapping[str, Any]) -> JsonDict:
    """Transaction fields with ints turned into quantities and addresses lower-cased."""
    out: JsonDict = {}
    for key, value in tx.items():
        if value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            out[key] = to_hex(value)
        elif key in ("from", "to") and isinstance(value, str):
            out[key] = value.lower()
        else:
            out[key] = value
    return out


class Rpc:
    """Synchronous JSON-RPC over HTTP. Use as a context manager or call `close()`."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = url
        self._client = httpx.Client(timeout=timeout)
        self._ids = itertools.count(1)

    def __enter__(self) -> Rpc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    # -- raw calls ------------------------------------------------------------------------------------------

    def call(self, method: str, *params: Any) -> Any:
        """Call `method` with positional `params`; return `result` or raise RpcError."""
        payload = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        response = self._client.post(self.url, json=payload)
        response.raise_for_status()
        return self._result(method, response.json())

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Send several calls in one JSON-RPC batch; results in the order of `calls` (first error raises)."""
        if not calls:
            return []
        ids = [next(self._ids) for _ in calls]
        payload = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": list(params)}
            for i, (method, params) in zip(ids, calls, strict=True)
        ]
        response = self._client.post(self.url, json=payload)
        response.raise_for_status()
        by_id = {item["id"]: item for item in response.json()}
        return [self._result(method, by_id[i]) for i, (method, _) in zip(ids, calls, strict=True)]

    @staticmethod
    def _result(method: str, body: JsonDict) -> Any:
        if "error" in body and body["error"] is not None:
            err = body["error"]
            raise RpcError(method, int(err.get("code", 0)), str(err.get("message", "")), err.get("data"))
        return body.get("result")

    # -- chain state ----------------------------------------------------------------------------------------

    def chain_id(self) -> int:
        return from_hex(self.call("eth_chainId"))

    def block_number(self) -> int:
        return from_hex(self.call("eth_blockNumber"))

    def accounts(self) -> list[str]:
        """The node's unlocked accounts, lower-case (anvil: 10 pre-funded dev accounts)."""
        return [a.lower() for a in self.call("eth_accounts")]

    def get_balance(self, address: str, block: BlockId = "latest") -> int:
        return from_hex(self.call("eth_getBalance", address.lower(), block_id(block)))

    def get_code(self, address: str, block: BlockId = "latest") -> str:
        return str(self.call("eth_getCode", address.lower(), block_id(block)))

    def get_block(self, block: BlockId, *, full: bool = False) -> JsonDict | None:
        result: JsonDict | None = self.call("eth_getBlockByNumber", block_id(block), full)
        return result

    def get_transaction(self, tx_hash: str) -> JsonDict | None:
        result: JsonDict | None = self.call("eth_getTransactionByHash", tx_hash)
        return result

    def get_receipt(self, tx_hash: str) -> JsonDict | None:
        result: JsonDict | None = self.call("eth_getTransactionReceipt", tx_hash)
        return result

    def get_logs(self, filter_params: Mapping[str, Any]) -> list[JsonDict]:
        params = dict(filter_params)
        for key in ("fromBlock", "toBlock"):
            if isinstance(params.get(key), int):
                params[key] = to_hex(params[key])
        result: list[JsonDict] = self.call("eth_getLogs", params)
        return result

    def eth_call(self, tx: Mapping[str, Any], block: BlockId = "latest") -> str:
        return str(self.call("eth_call", _tx_params(tx), block_id(block)))

    # -- transactions ---------------------------------------------------------------------------------------

    def send_transaction(self, tx: Mapping[str, Any]) -> str:
        """`eth_sendTransaction` from an unlocked account; ints in `tx` become quantities. Returns the hash.

        Pass `gas` explicitly when the transaction may revert or depends on a not-yet-mined one: otherwise the
        node estimates gas at send time and rejects the transaction.
        """
        return str(self.call("eth_sendTransaction", _tx_params(tx)))

    def wait_receipt(self, tx_hash: str, *, timeout: float = 10.0, poll: float = 0.02) -> JsonDict:
        """Poll until `tx_hash` has a receipt (it is mined); raise TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            receipt = self.get_receipt(tx_hash)
            if receipt is not None:
                return receipt
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no receipt for {tx_hash} after {timeout}s")
            time.sleep(poll)

    # -- anvil / hardhat test methods -----------------------------------------------------------------------

    def mine(self, blocks: int = 1, *, timestamp: int | None = None) -> int:
        """Mine `blocks` blocks (`evm_mine`, or `anvil_mine` for several); return the new head number."""
        if blocks == 1:
            if timestamp is None:
                self.call("evm_mine")
            else:
                self.call("evm_mine", timestamp)
        else:
            self.call("anvil_mine", to_hex(blocks))
        return self.block_number()

    def snapshot(self) -> str:
        """`evm_snapshot`: an id to pass to `revert`."""
        return str(self.call("evm_snapshot"))

    def revert(self, snapshot_id: str) -> bool:
        """`evm_revert` to a snapshot (the snapshot is consumed)."""
        return bool(self.call("evm_revert", snapshot_id))

    def get_automine(self) -> bool:
        return bool(self.call("anvil_getAutomine"))

    def set_automine(self, enabled: bool) -> None:
        self.call("anvil_setAutomine", enabled)

    def set_interval_mining(self, seconds: int) -> None:
        """`anvil_setIntervalMining` (0 disables interval mining)."""
        self.call("anvil_setIntervalMining", seconds)

    def set_balance(self, address: str, wei: int) -> None:
        self.call("anvil_setBalance", address.lower(), to_hex(wei))

    def trace_block_calls(self, block: BlockId) -> list[JsonDict]:
        """`debug_traceBlockByNumber` with the callTracer: one `{"txHash", "result"}` per transaction.

        `result` is the call frame tree (`from`, `to`, `value`, `type`, `error`, nested `calls`).
        """
        result: list[JsonDict] = self.call("debug_traceBlockByNumber", block_id(block), {"tracer": "callTracer"})
        return result

    def trace_transaction_calls(self, tx_hash: str) -> JsonDict:
        """`debug_traceTransaction` with the callTracer: the call frame tree of one transaction."""
        result: JsonDict = self.call("debug_traceTransaction", tx_hash, {"tracer": "callTracer"})
        return result
