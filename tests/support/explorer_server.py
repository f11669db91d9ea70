"""A local Etherscan-compatible account API for tests: a real aiohttp server on 127.0.0.1 answering `txlist`,
`tokentx` and `txlistinternal` in Etherscan's shapes, with its paging rules, result window, API-key check and
per-key rate limit, plus scripted faults (rate-limit answers, 429 with Retry-After, 5xx, malformed JSON).

    async with FakeExplorer(rows={"txlist": [...]}) as explorer:
        client = ExplorerClient(explorer.url, api_key=explorer.key, ...)
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tracing import Transfer, TransferKind

NOT_FOUND = {"status": "0", "message": "No transactions found", "result": []}
RATE_LIMITED = {"status": "0", "message": "NOTOK", "result": "Max rate limit reached"}
INVALID_KEY = {"status": "0", "message": "NOTOK", "result": "Invalid API Key (#err2)|Key not found"}


@dataclass(frozen=True)
class Fault:
    """What the server answers instead of the real result, once, for the next request of `action` and `page`
    (any when None). `kind`: `ratelimit`, `daily`, `http` (with `status`, `retry_after`), `malformed`."""

    kind: str
    action: str | None = None
    page: int | None = None
    status: int = 500
    retry_after: str | None = None


@dataclass(frozen=True)
class Seen:
    """A request as the server saw it: when (time.monotonic) and its query parameters."""

    at: float
    params: Mapping[str, str]

    @property
    def action(self) -> str:
        return self.params.get("action", "")


@dataclass
class FakeExplorer:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    key: str = "test-key"
    result_window: int = 10_000
    server_rate_limit: int | None = None
    """Answer "Max rate limit reached" past this many calls per `rate_window` seconds per key, as Etherscan does
    per second (a window a little under one second leaves room for the requests' jitter on the way)."""
    rate_window: float = 0.9

    faults: deque[Fault] = field(default_factory=deque)
    seen: list[Seen] = field(default_factory=list)
    rate_limit_answers: int = 0
    url: str = ""
    _runner: web.AppRunner | None = None
    _index: dict[str, tuple[list[dict[str, Any]], int, dict[str, list[dict[str, Any]]]]] = field(default_factory=dict)

    async def __aenter__(self) -> FakeExplorer:
        app = web.Application()
        app.router.add_get("/api", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/api"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def requests_for(self, action: str) -> list[Seen]:
        return [s for s in self.seen if s.action == action]

    def addresses_asked(self) -> set[str]:
        """Every address the server was asked about (lower case)."""
        return {s.params.get("address", "").lower() for s in self.seen if s.params.get("address")}

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        params = dict(request.query)
        now = time.monotonic()
        self.seen.append(Seen(now, params))
        fault = self._take_fault(params.get("action", ""), params.get("page", ""))
        if fault is not None:
            return self._fault(fault)
        if params.get("apikey") != self.key:
            return web.json_response(INVALID_KEY)
        if self.server_rate_limit is not None:
            key = params.get("apikey")
            recent = [s for s in self.seen if now - s.at < self.rate_window and s.params.get("apikey") == key]
            if len(recent) > self.server_rate_limit:
                self.rate_limit_answers += 1
                return web.json_response(RATE_LIMITED)
        if params.get("module") != "account" or params.get("action") not in self.rows:
            return web.json_response({"status": "0", "message": "NOTOK", "result": "Error! Missing Or invalid Module"})
        page, offset = int(params.get("page", "1")), int(params.get("offset", "10000"))
        if page * offset > self.result_window:
            return web.json_response(
                {
                    "status": "0",
                    "message": "NOTOK",
                    "result": f"Result window is too large, PageNo x Offset size must be less than or equal to "
                    f"{self.result_window}",
                }
            )
        matching = self._matching(params)
        chunk = matching[(page - 1) * offset : page * offset]
        if not chunk:
            return web.json_response(NOT_FOUND)
        return web.json_response({"status": "1", "message": "OK", "result": chunk})

    def _take_fault(self, action: str, page: str) -> Fault | None:
        for fault in self.faults:
            if fault.action in (None, action) and (fault.page is None or str(fault.page) == page):
                self.faults.remove(fault)
                return fault
        return None

    def _fault(self, fault: Fault) -> web.StreamResponse:
        if fault.kind == "ratelimit":
            self.rate_limit_answers += 1
            return web.json_response(RATE_LIMITED)
        if fault.kind == "daily":
            return web.json_response({"status": "0", "message": "NOTOK", "result": "Max daily rate limit reached"})
        if fault.kind == "malformed":
            return web.Response(text='{"status":"1","message":"OK","result":[{"blockNumber":', content_type="text/html")
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        return web.Response(status=fault.status, text="upstream trouble", headers=headers)

    def _matching(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        address = params.get("address", "").lower()
        start = int(params.get("startblock", "0"))
        end = int(params.get("endblock", str(2**63)))
        rows = [
            row
            for row in self._by_address(params["action"]).get(address, ())
            if start <= int(row["blockNumber"]) <= end
        ]
        rows.sort(key=lambda row: int(row["blockNumber"]))  # stable: keeps the order within a block
        return rows

    def _by_address(self, action: str) -> dict[str, list[dict[str, Any]]]:
        """The action's rows per address they touch (rebuilt when the rows change), so that a world of tens of
        thousands of rows answers without a scan per request."""
        rows = self.rows[action]
        cached = self._index.get(action)
        if cached is not None and cached[0] is rows and cached[1] == len(rows):
            return cached[2]
        found: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            ends = {str(row.get("from", "")).lower(), str(row.get("to", "")).lower()}
            for end in ends:
                found.setdefault(end, []).append(row)
        self._index[action] = (rows, len(rows), found)
        return found


def tx_hash(n: int) -> str:
    return "0x" + f"{n:064x}"


def address(n: int) -> str:
    return "0x" + f"{n:040x}"


def native_row(
    block: int, n: int, src: str, dst: str, value: int, *, is_error: str = "0", contract: str = ""
) -> dict[str, Any]:
    """A `txlist` row as Etherscan writes it (every value a string)."""
    return {
        "blockNumber": str(block),
        "timeStamp": str(1_600_000_000 + block * 12),
        "hash": tx_hash(n),
        "nonce": str(n),
        "blockHash": "0x" + f"{block:064x}",
        "transactionIndex": "0",
        "from": src,
        "to": dst,
        "value": str(value),
        "gas": "21000",
        "gasPrice": "1000000000",
        "isError": is_error,
        "txreceipt_status": "0" if is_error == "1" else "1",
        "input": "0x",
        "contractAddress": contract,
        "cumulativeGasUsed": "21000",
        "gasUsed": "21000",
        "confirmations": "100",
        "methodId": "0x",
        "functionName": "",
    }


def token_row(
    block: int,
    n: int,
    log_index: int | None,
    src: str,
    dst: str,
    value: int,
    *,
    token: str,
    symbol: str = "USDT",
    decimals: str = "6",
) -> dict[str, Any]:
    """A `tokentx` row; `log_index` None leaves the field out, as Etherscan itself does."""
    row = {
        "blockNumber": str(block),
        "timeStamp": str(1_600_000_000 + block * 12),
        "hash": tx_hash(n),
        "nonce": str(n),
        "blockHash": "0x" + f"{block:064x}",
        "from": src,
        "contractAddress": token,
        "to": dst,
        "value": str(value),
        "tokenName": "Tether USD",
        "tokenSymbol": symbol,
        "tokenDecimal": decimals,
        "transactionIndex": "0",
        "gas": "60000",
        "gasPrice": "1000000000",
        "gasUsed": "50000",
        "cumulativeGasUsed": "50000",
        "input": "deprecated",
        "confirmations": "100",
    }
    if log_index is not None:
        row["logIndex"] = str(log_index)
    return row


def internal_row(
    block: int,
    n: int,
    trace_id: str,
    src: str,
    dst: str,
    value: int,
    *,
    kind: str = "call",
    is_error: str = "0",
    contract: str = "",
) -> dict[str, Any]:
    """A `txlistinternal` row (no blockHash: Etherscan does not give one here)."""
    return {
        "blockNumber": str(block),
        "timeStamp": str(1_600_000_000 + block * 12),
        "hash": tx_hash(n),
        "from": src,
        "to": dst,
        "value": str(value),
        "contractAddress": contract,
        "input": "",
        "type": kind,
        "gas": "2300",
        "gasUsed": "0",
        "traceId": trace_id,
        "isError": is_error,
        "errCode": "",
    }


def observed_rate(seen: Sequence[Seen], window: float = 1.0) -> int:
    """The most requests the server saw in any `window` seconds."""
    times = sorted(s.at for s in seen)
    best = 0
    for i, start in enumerate(times):
        j = i
        while j < len(times) and times[j] - start < window:
            j += 1
        best = max(best, j - i)
    return best


def explorer_rows(transfers: Sequence[Transfer]) -> dict[str, list[dict[str, Any]]]:
    """Transfers as the rows an Etherscan-compatible explorer serves: native ones as `txlist` rows, token ones as
    `tokentx` rows, internal ones as `txlistinternal` rows (every action present, so an address without any of
    one kind gets "No transactions found")."""
    rows: dict[str, list[dict[str, Any]]] = {"txlist": [], "tokentx": [], "txlistinternal": []}
    for t in transfers:
        common = {
            "blockNumber": str(t.block_number),
            "timeStamp": str(t.timestamp),
            "hash": t.tx_hash,
            "blockHash": t.block_hash,
            "from": t.from_addr,
            "to": t.to_addr,
            "value": str(t.value),
        }
        if t.kind is TransferKind.ERC20:
            log_index = t.position.removeprefix("log:")
            rows["tokentx"].append(
                {
                    **common,
                    "contractAddress": t.token or "",
                    "tokenSymbol": t.symbol or "",
                    "tokenDecimal": "" if t.decimals is None else str(t.decimals),
                    "logIndex": log_index,
                }
            )
        elif t.kind is TransferKind.INTERNAL:
            trace_id = t.position.removeprefix("trace:").replace(".", "_")
            rows["txlistinternal"].append({**common, "contractAddress": "", "type": "call", "traceId": trace_id,
                                           "isError": "0"})  # fmt: skip
        else:
            rows["txlist"].append({**common, "isError": "0", "txreceipt_status": "1", "contractAddress": ""})
    return rows
