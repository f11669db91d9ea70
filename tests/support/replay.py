"""A JSON-RPC replay server on 127.0.0.1: answers from recorded responses (ethereum-etl's mainnet fixtures), and
misbehaves on request (HTTP 500, no answer, truncated JSON, no batches) to test time-outs and fail-over.

    async with ReplayNode() as node:
        node.load_dir(shared_data("ethereum-etl-rpc-fixtures", "test_export_blocks_job", "block_with_logs"))
        ... RpcSource(chain_config(node.url)) ...
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import web

JsonDict = dict[str, Any]
Key = tuple[str, tuple[Any, ...]]


def _block_number(tag: Any) -> Any:
    return int(tag, 16) if isinstance(tag, str) and tag.startswith("0x") else tag


def request_key(method: str, params: list[Any]) -> Key:
    """What identifies a recorded answer: the method and the parameters that matter, normalised."""
    if method == "eth_getBlockByNumber":
        return method, (_block_number(params[0]), bool(params[1]) if len(params) > 1 else False)
    if method in ("eth_getBlockReceipts", "trace_block", "debug_traceBlockByNumber"):
        return method, (_block_number(params[0]),)
    if method in ("eth_getTransactionReceipt", "eth_getTransactionByHash"):
        return method, (str(params[0]).lower(),)
    if method == "eth_call":
        call = params[0]
        return method, (str(call.get("to", "")).lower(), str(call.get("data") or call.get("input", "")).lower())
    return method, ()


def fixture_key(method: str, rest: str) -> Key:
    """The request key of a `web3_response.<method>_<params>.json` file name."""
    parts = rest.split("_")
    if method == "eth_getBlockByNumber":
        return request_key(method, [parts[0], parts[1] == "true"])
    if method in ("trace_block", "debug_traceBlockByNumber", "eth_getBlockReceipts"):
        return request_key(method, [parts[0]])
    if method == "eth_getTransactionReceipt":
        return request_key(method, [parts[0]])
    if method == "eth_call":  # eth_call_data_<selector>_to_<address>_latest
        return request_key(method, [{"data": parts[1], "to": parts[3]}])
    return method, ()


class ReplayNode:
    """An aiohttp server answering JSON-RPC from `responses`; see the module docstring."""

    def __init__(self) -> None:
        self.responses: dict[Key, JsonDict] = {}
        self.calls: Counter[str] = Counter()  # JSON-RPC calls answered, per method
        self.requests = 0  # HTTP requests received
        self.mode = "ok"  # ok | http500 | hang | truncate | garbage
        self.truncate: set[str] = set()  # methods whose answers are cut in half
        self.hang: set[str] = set()  # methods that never get an answer
        self.failing: dict[str, JsonDict] = {}  # method -> JSON-RPC error object returned for it
        self.batches = True
        self.hang_seconds = 30.0
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- recorded answers -----------------------------------------------------------------------------------

    def add(self, method: str, params: list[Any], result: Any) -> None:
        self.responses[request_key(method, params)] = {"result": result}

    def load_dir(self, directory: Path) -> int:
        """Register every `web3_response.*.json` of a fixture directory; returns how many."""
        count = 0
        for path in sorted(directory.glob("web3_response.*.json")):
            stem = path.name[len("web3_response.") : -len(".json")]
            method = max((m for m in _METHODS if stem.startswith(f"{m}_")), key=len, default=None)
            if method is None:
                continue  # eth_newFilter and friends: not used by the RPC source
            body = json.loads(path.read_text())
            key = fixture_key(method, stem[len(method) + 1 :])
            self.responses[key] = {k: v for k, v in body.items() if k in ("result", "error")}
            count += 1
        return count

    def answer(self, request: JsonDict) -> JsonDict:
        method = str(request.get("method"))
        params = list(request.get("params") or [])
        self.calls[method] += 1
        base = {"jsonrpc": "2.0", "id": request.get("id")}
        if method in self.failing:
            return {**base, "error": self.failing[method]}
        recorded = self.responses.get(request_key(method, params))
        if recorded is not None:
            return {**base, **recorded}
        if not any(key[0] == method for key in self.responses):
            return {
                **base,
                "error": {"code": -32601, "message": f"the method {method} does not exist/is not available"},
            }
        return {**base, "result": None}

    # -- HTTP -----------------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        if self.mode == "http500":
            return web.Response(status=500, text="internal server error")
        if self.mode == "hang":
            await asyncio.sleep(self.hang_seconds)
        if self.mode == "garbage":
            return web.Response(text="<html>bad gateway</html>", content_type="text/html")
        payload = await request.json()
        requests = payload if isinstance(payload, list) else [payload]
        methods = {str(r.get("method")) for r in requests}
        if methods & self.hang:
            await asyncio.sleep(self.hang_seconds)
        if isinstance(payload, list):
            if not self.batches:
                body: Any = {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "batch not supported"}}
            else:
                body = [self.answer(r) for r in payload]
        else:
            body = self.answer(payload)
        text = json.dumps(body)
        if self.mode == "truncate" or methods & self.truncate:
            text = text[: len(text) // 2]
        return web.Response(text=text, content_type="application/json")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> ReplayNode:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ReplayNode:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


_METHODS = (
    "eth_getBlockByNumber",
    "eth_getBlockReceipts",
    "eth_getTransactionReceipt",
    "eth_getTransactionByHash",
    "eth_call",
    "eth_chainId",
    "eth_blockNumber",
    "trace_block",
    "debug_traceBlockByNumber",
)
