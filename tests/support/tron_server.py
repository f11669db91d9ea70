"""A local TRON full node's `/jsonrpc` and TronGrid's v1 account API for tests: one aiohttp server on 127.0.0.1.

    async with TronServer(upstream=anvil.url) as tron:          # /jsonrpc in front of a real anvil
        ... TronRpcSource(ChainConfig(..., rpc_urls=(tron.jsonrpc_url,))) ...
    async with TronServer(ledger=[TrxTransfer(...), Trc20Transfer(...)]) as tron:   # TronGrid's account API
        ... TronGridClient(tron.url, api_key=tron.key) ...

No TRON node can be installed here, so `/jsonrpc` forwards to an EVM node (anvil started with TRON's chain id,
0x2b6653dc) and answers the way java-tron's `TronJsonRpcImpl` is documented to (tronprotocol/documentation-en,
`docs/api/json-rpc/`), which is what our code depends on:

- only the methods TRON offers are answered; `trace_*`, `debug_*` and any other method get `-32601`
  "The method <name> does not exist/is not available";
- the `pending` and `safe` block tags are refused with `-32602` "TAG pending not supported" (`TAG safe …`);
  `eth_call` and `eth_getBalance` answer at `latest` only ("QUANTITY not supported, just support TAG as latest");
- `eth_getLogs` answers at most `max_block_range` blocks (default 5,000: `-32602` "exceed max block range:
  5000"), at most `max_results` logs (default 10,000: `-32005` "query returned more than 10000 results"), and refuses
  `fromBlock > toBlock` ("please verify: fromBlock <= toBlock");
- transaction objects carry only TRON's fields (`hash`, `nonce`, `blockHash`, `blockNumber`, `transactionIndex`,
  `from`, `to`, `gas`, `gasPrice`, `value`, `input`, `type`, `v`, `r`, `s`), receipts only TRON's receipt fields,
  and addresses stay 20-byte hex, as TRON's `/jsonrpc` gives them;
- `POST /wallet/getblockbynum` (the full node's HTTP API, `{"num": n}`) answers the block's `blockID` and each
  transaction's `txID` and `raw_data.contract[0].type`: a call with data is a TriggerSmartContract, a contract
  creation a CreateSmartContract, anything else a TransferContract — unless `contract_types` (txID → type) says
  otherwise, to play a TRC-10 transfer or a freeze, which `/jsonrpc` shows like a TRX transfer (java-tron's
  `getTransactionAmount`); an unknown block gets `{}`.

TronGrid's v1 account API (TRON-US/trongrid README; developers.tron.network "TronGrid v1 API", "Rate Limits") is
answered from `ledger`, a list of TRX and TRC-20 transfers:

- `GET /v1/accounts/{address}/transactions`: the address's transactions in TronGrid's row shape (`txID`,
  `blockNumber`, `block_timestamp` in ms, `ret[0].contractRet`, `raw_data.contract[0]` with `type` and
  `parameter.value`, addresses as `41…` hex): a TRX transfer as a `TransferContract` for both parties, a TRC-20
  transfer as the sender's `TriggerSmartContract` call; `internal` rows (`internal_tx_id`) and TRC-10 rows can be
  added to check that they are skipped;
- `GET /v1/accounts/{address}/transactions/trc20`: TRC-20 rows (`transaction_id`, `token_info`, `block_timestamp`,
  `from`, `to`, `type`, `value` as a decimal string), without block number or log index, as TronGrid gives them;
- addresses in the path as Base58 or hex (`41…`, `0x41…`); a bad one gets 400 with TronGrid's error body
  `{"success": false, "error": …, "statusCode": 400}`;
- paging: `limit` (default 20, at most 200; more is refused with 400), `fingerprint` as an opaque cursor in
  `meta.fingerprint` and `meta.links.next` while rows remain, `order_by=block_timestamp,asc|desc` (default desc),
  `only_confirmed`, `min_timestamp`/`max_timestamp`; `meta.at` and `meta.page_size` on every page;
- the API key in the `TRON-PRO-API-KEY` header (a key not in `keys` gets 401 "ApiKey not exists"; with
  `require_key` False a missing key is served at the anonymous limit); past `frequency_limit` requests a second per
  key, 403 `{"success": false, "error": "The key exceeds the frequency limit(15), and the query server is suspended
  for 30s", "statusCode": 403}` and no service for `penalty` seconds (TronGrid: 30; tests shorten it);
- scripted faults, once each: HTTP 429 (with Retry-After), 503, a truncated body, and the frequency-limit answer
  with the key suspended for `penalty` seconds.

Wording we could not find documented and chose ourselves: the 400 text for a bad address or limit, and the 401 text.
"""

from __future__ import annotations

import base64
import json
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web

from tracing.chain.address import parse_address, tron_to_hex
from tracing.errors import UserError

TRON_CHAIN_ID = 0x2B6653DC
USDT = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"

JSONRPC_METHODS = frozenset(
    {
        "eth_accounts",
        "eth_blockNumber",
        "eth_call",
        "eth_chainId",
        "eth_coinbase",
        "eth_estimateGas",
        "eth_gasPrice",
        "eth_getBalance",
        "eth_getBlockByHash",
        "eth_getBlockByNumber",
        "eth_getBlockReceipts",
        "eth_getBlockTransactionCountByHash",
        "eth_getBlockTransactionCountByNumber",
        "eth_getCode",
        "eth_getLogs",
        "eth_getStorageAt",
        "eth_getTransactionByBlockHashAndIndex",
        "eth_getTransactionByBlockNumberAndIndex",
        "eth_getTransactionByHash",
        "eth_getTransactionReceipt",
        "eth_protocolVersion",
        "eth_syncing",
        "net_listening",
        "net_peerCount",
        "net_version",
        "web3_clientVersion",
        "web3_sha3",
    }
)
"""TRON's `/jsonrpc` methods that read (the `buildTransaction` and filter methods are left out)."""

_TX_FIELDS = (
    "hash",
    "nonce",
    "blockHash",
    "blockNumber",
    "transactionIndex",
    "from",
    "to",
    "gas",
    "gasPrice",
    "value",
    "input",
    "type",
    "v",
    "r",
    "s",
)
_RECEIPT_FIELDS = (
    "blockHash",
    "blockNumber",
    "transactionHash",
    "transactionIndex",
    "from",
    "to",
    "gasUsed",
    "cumulativeGasUsed",
    "effectiveGasPrice",
    "contractAddress",
    "logs",
    "logsBloom",
    "status",
    "type",
)


# --- the ledger TronGrid answers from --------------------------------------------------------------------------


@dataclass(frozen=True)
class TrxTransfer:
    """A TRX transfer (TransferContract) of `amount` sun."""

    tx_id: str
    block: int
    timestamp_ms: int
    sender: str
    recipient: str
    amount: int


@dataclass(frozen=True)
class Trc20Transfer:
    """A TRC-20 `Transfer` made by the sender calling the token (`transfer(to, value)`)."""

    tx_id: str
    block: int
    timestamp_ms: int
    sender: str
    recipient: str
    value: int
    token: str = USDT
    symbol: str = "USDT"
    name: str = "Tether USD"
    decimals: int = 6


@dataclass(frozen=True)
class OtherRow:
    """A row TronGrid lists for `account` that moves no TRX or TRC-20 (an internal transaction, a TRC-10 transfer,
    a vote): `kind` is `internal` or a contract type such as `TransferAssetContract`."""

    tx_id: str
    block: int
    timestamp_ms: int
    account: str
    kind: str


Entry = TrxTransfer | Trc20Transfer | OtherRow


def hex41(address: str) -> str:
    """`41…` hex of a `T…` address, as TronGrid writes addresses inside transactions."""
    return "41" + tron_to_hex(address)[2:]


def transaction_row(entry: Entry, account: str) -> dict[str, Any]:
    """`entry` as a row of `/v1/accounts/{account}/transactions`."""
    if isinstance(entry, OtherRow) and entry.kind == "internal":
        return {
            "internal_tx_id": "0x" + entry.tx_id[:60] + "0001",
            "data": {"note": "63616c6c", "rejected": False, "call_value": {"_": 1}},
            "block_timestamp": entry.timestamp_ms,
            "to_address": hex41(entry.account),
            "tx_id": entry.tx_id,
            "from_address": hex41(entry.account),
        }
    if isinstance(entry, TrxTransfer):
        kind = "TransferContract"
        value: dict[str, Any] = {
            "amount": entry.amount,
            "owner_address": hex41(entry.sender),
            "to_address": hex41(entry.recipient),
        }
    elif isinstance(entry, Trc20Transfer):
        kind = "TriggerSmartContract"
        call = "a9059cbb" + tron_to_hex(entry.recipient)[2:].rjust(64, "0") + f"{entry.value:064x}"
        value = {"data": call, "owner_address": hex41(entry.sender), "contract_address": hex41(entry.token)}
    else:
        kind = entry.kind
        value = {"owner_address": hex41(entry.account)}
    return {
        "ret": [{"contractRet": "SUCCESS", "fee": 0}],
        "signature": ["00" * 65],
        "txID": entry.tx_id,
        "net_usage": 268,
        "raw_data_hex": "0a02",
        "net_fee": 0,
        "energy_usage": 0,
        "blockNumber": entry.block,
        "block_timestamp": entry.timestamp_ms,
        "energy_fee": 0,
        "energy_usage_total": 0,
        "raw_data": {
            "contract": [
                {"parameter": {"value": value, "type_url": f"type.googleapis.com/protocol.{kind}"}, "type": kind}
            ],
            "ref_block_bytes": f"{entry.block & 0xFFFF:04x}",
            "ref_block_hash": "00" * 8,
            "expiration": entry.timestamp_ms + 60_000,
            "timestamp": entry.timestamp_ms - 1_000,
        },
        "internal_transactions": [],
    }


def trc20_row(entry: Trc20Transfer) -> dict[str, Any]:
    """`entry` as a row of `/v1/accounts/{account}/transactions/trc20`."""
    return {
        "transaction_id": entry.tx_id,
        "token_info": {"symbol": entry.symbol, "address": entry.token, "decimals": entry.decimals, "name": entry.name},
        "block_timestamp": entry.timestamp_ms,
        "from": entry.sender,
        "to": entry.recipient,
        "type": "Transfer",
        "value": str(entry.value),
    }


@dataclass(frozen=True)
class Fault:
    """Answered instead of the next request to an endpoint (`transactions`, `trc20`, or any when None)."""

    kind: str  # "429", "503", "truncated", "suspend" (the frequency-limit answer, and the key suspended)
    endpoint: str | None = None
    retry_after: str | None = None


# --- the server ------------------------------------------------------------------------------------------------


@dataclass
class TronServer:
    """See the module docstring. `upstream`: the EVM node behind `/jsonrpc` (None: no `/jsonrpc`)."""

    upstream: str | None = None
    ledger: list[Entry] = field(default_factory=list)
    keys: frozenset[str] = frozenset({"tron-test-key"})
    require_key: bool = False
    frequency_limit: int = 15
    anonymous_limit: int = 5
    penalty: float = 30.0
    max_block_range: int = 5_000
    max_results: int = 10_000

    faults: deque[Fault] = field(default_factory=deque)
    grid_requests: list[tuple[float, str, dict[str, str]]] = field(default_factory=list)
    """(time.monotonic, path, query) of every TronGrid request."""
    contract_types: dict[str, str] = field(default_factory=dict)
    """txID (64 hex, no 0x) → contract type `/wallet/getblockbynum` reports instead of the guessed one."""
    log_block_hash: str | None = None
    """Put in every `eth_getLogs` item as its `blockHash`: a node (or a pool behind one URL) whose logs come from
    another branch than its blocks."""
    wallet_calls: int = 0
    rpc_calls: list[str] = field(default_factory=list)
    """Every `/jsonrpc` method called (batch members one by one)."""
    url: str = ""
    _runner: web.AppRunner | None = None
    _client: httpx.AsyncClient | None = None
    _suspended: dict[str, float] = field(default_factory=dict)
    _recent: dict[str, deque[float]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return sorted(self.keys)[0]

    @property
    def jsonrpc_url(self) -> str:
        return f"{self.url}/jsonrpc"

    async def __aenter__(self) -> TronServer:
        app = web.Application()
        app.router.add_post("/jsonrpc", self._jsonrpc)
        app.router.add_post("/wallet/getblockbynum", self._block_by_num)
        app.router.add_get("/v1/accounts/{address}/transactions", self._transactions)
        app.router.add_get("/v1/accounts/{address}/transactions/trc20", self._trc20)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        if self.upstream:
            self._client = httpx.AsyncClient(timeout=30)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- /jsonrpc ---

    async def _jsonrpc(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return web.json_response(
                {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "JSON parse error"}}
            )
        if isinstance(body, list):
            return web.json_response([await self._one(item) for item in body])
        return web.json_response(await self._one(body))

    async def _one(self, call: Any) -> dict[str, Any]:
        if not isinstance(call, dict):
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Invalid Request"}}
        method, params, ident = str(call.get("method")), list(call.get("params") or []), call.get("id")
        self.rpc_calls.append(method)

        def error(code: int, message: str) -> dict[str, Any]:
            return {"jsonrpc": "2.0", "id": ident, "error": {"code": code, "message": message, "data": "{}"}}

        if method not in JSONRPC_METHODS or self._client is None:
            return error(-32601, f"The method {method} does not exist/is not available")
        for tag in _tags(method, params):
            if tag in ("pending", "safe"):
                return error(-32602, f"TAG {tag} not supported")
        if method in ("eth_call", "eth_getBalance", "eth_getCode", "eth_getStorageAt"):
            tag = params[-1] if params else "latest"
            if tag != "latest":
                return error(-32602, "QUANTITY not supported, just support TAG as latest")
        if method == "eth_getLogs":
            refused = await self._check_logs(params)
            if refused is not None:
                return error(*refused)
        answer = await self._upstream(method, params, ident)
        if "result" in answer and answer["result"] is not None:
            answer["result"] = _tron_shape(method, answer["result"])
            if method == "eth_getLogs" and len(answer["result"]) > self.max_results:
                return error(-32005, f"query returned more than {self.max_results} results")
            if method == "eth_getLogs" and self.log_block_hash is not None:
                answer["result"] = [{**item, "blockHash": self.log_block_hash} for item in answer["result"]]
        return answer

    async def _check_logs(self, params: Sequence[Any]) -> tuple[int, str] | None:
        query = params[0] if params and isinstance(params[0], dict) else {}
        if "blockHash" in query:
            return None
        head: int | None = None

        async def number(tag: Any) -> int:
            nonlocal head
            if isinstance(tag, str) and tag.startswith("0x"):
                return int(tag, 16)
            if tag == "earliest":
                return 0
            if head is None:
                head = int((await self._upstream("eth_blockNumber", [], 0))["result"], 16)
            return head

        first, last = await number(query.get("fromBlock", "latest")), await number(query.get("toBlock", "latest"))
        if first > last:
            return -32602, "please verify: fromBlock <= toBlock"
        if last - first > self.max_block_range:
            return -32602, f"exceed max block range: {self.max_block_range}"
        return None

    async def _upstream(self, method: str, params: list[Any], ident: Any) -> dict[str, Any]:
        assert self._client is not None and self.upstream is not None
        response = await self._client.post(
            self.upstream, json={"jsonrpc": "2.0", "id": ident, "method": method, "params": params}
        )
        answer: dict[str, Any] = response.json()
        return answer

    async def _block_by_num(self, request: web.Request) -> web.Response:
        self.wallet_calls += 1
        try:
            number = int((await request.json())["num"])
        except (ValueError, KeyError, TypeError):
            return web.json_response({"Error": "class java.lang.NumberFormatException : invalid num"})
        if self._client is None:
            return web.json_response({})
        block = (await self._upstream("eth_getBlockByNumber", [hex(number), True], 1)).get("result")
        if not isinstance(block, dict):
            return web.json_response({})
        txs = []
        for tx in block.get("transactions") or []:
            tx_id = str(tx["hash"])[2:].lower()
            guessed = (
                "CreateSmartContract"
                if not tx.get("to")
                else "TriggerSmartContract"
                if tx.get("input") not in (None, "0x")
                else "TransferContract"
            )
            kind = self.contract_types.get(tx_id, guessed)
            txs.append(
                {
                    "ret": [{"contractRet": "SUCCESS"}],
                    "txID": tx_id,
                    "raw_data": {"contract": [{"parameter": {"value": {}}, "type": kind}]},
                }
            )
        header = {"raw_data": {"number": number, "timestamp": int(block["timestamp"], 16) * 1000}}
        return web.json_response({"blockID": str(block["hash"])[2:], "block_header": header, "transactions": txs})

    # --- TronGrid ---

    async def _transactions(self, request: web.Request) -> web.Response:
        return await self._grid(request, "transactions")

    async def _trc20(self, request: web.Request) -> web.Response:
        return await self._grid(request, "trc20")

    async def _grid(self, request: web.Request, endpoint: str) -> web.Response:
        query = dict(request.query)
        now = time.monotonic()
        self.grid_requests.append((now, request.path, query))
        key = request.headers.get("TRON-PRO-API-KEY", "")
        for fault in list(self.faults):
            if fault.endpoint in (None, endpoint):
                self.faults.remove(fault)
                if fault.kind == "suspend":
                    self._suspended[key or "anonymous"] = now + self.penalty
                    return _grid_error(403, _suspension(self.frequency_limit, self.penalty))
                return _fault(fault)
        if key and key not in self.keys:
            return _grid_error(401, "ApiKey not exists")
        if not key and self.require_key:
            return _grid_error(401, "ApiKey not exists")
        refused = self._frequency(key, now)
        if refused is not None:
            return refused
        try:
            account = parse_address(request.match_info["address"])
        except UserError:
            return _grid_error(400, f"Invalid address: {request.match_info['address'][:64]}")
        if account[:1] != "T":
            return _grid_error(400, f"Invalid address: {request.match_info['address'][:64]}")
        raw_limit = query.get("limit", "20")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 200:
            return _grid_error(400, "limit must be between 1 and 200")
        limit = int(raw_limit)
        rows = self._rows(endpoint, account, query)
        offset = 0
        if query.get("fingerprint"):
            try:
                offset = int(base64.urlsafe_b64decode(query["fingerprint"].encode()).decode().split(":")[1])
            except (ValueError, IndexError):
                return _grid_error(400, "Invalid fingerprint")
        page = rows[offset : offset + limit]
        meta: dict[str, Any] = {"at": int(time.time() * 1000), "page_size": len(page)}
        if offset + limit < len(rows):
            cursor = base64.urlsafe_b64encode(f"{endpoint}:{offset + limit}".encode()).decode()
            meta["fingerprint"] = cursor
            rest = "&".join(f"{k}={v}" for k, v in query.items() if k != "fingerprint")
            meta["links"] = {"next": f"{self.url}{request.path}?{rest}&fingerprint={cursor}"}
        return web.json_response({"data": page, "success": True, "meta": meta})

    def _frequency(self, key: str, now: float) -> web.Response | None:
        who = key or "anonymous"
        limit = self.frequency_limit if key else self.anonymous_limit
        if self._suspended.get(who, 0.0) > now:
            return _grid_error(403, _suspension(limit, self.penalty))
        recent = self._recent.setdefault(who, deque())
        recent.append(now)
        while recent and now - recent[0] >= 1.0:
            recent.popleft()
        if len(recent) > limit:
            self._suspended[who] = now + self.penalty
            return _grid_error(403, _suspension(limit, self.penalty))
        return None

    def _rows(self, endpoint: str, account: str, query: dict[str, str]) -> list[dict[str, Any]]:
        since = int(query.get("min_timestamp") or query.get("min_block_timestamp") or 0)
        until = int(query.get("max_timestamp") or query.get("max_block_timestamp") or 2**62)
        chosen: list[tuple[int, dict[str, Any]]] = []
        for entry in self.ledger:
            if not since <= entry.timestamp_ms <= until:
                continue
            if endpoint == "trc20":
                if isinstance(entry, Trc20Transfer) and account in (entry.sender, entry.recipient):
                    chosen.append((entry.timestamp_ms, trc20_row(entry)))
            elif isinstance(entry, TrxTransfer) and account in (entry.sender, entry.recipient):
                chosen.append((entry.timestamp_ms, transaction_row(entry, account)))
            elif isinstance(entry, Trc20Transfer) and account == entry.sender:
                chosen.append((entry.timestamp_ms, transaction_row(entry, account)))
            elif isinstance(entry, OtherRow) and account == entry.account:
                chosen.append((entry.timestamp_ms, transaction_row(entry, account)))
        descending = query.get("order_by", "block_timestamp,desc").endswith(",desc")
        chosen.sort(key=lambda item: item[0], reverse=descending)
        return [row for _t, row in chosen]

    def requests_to(self, endpoint: str) -> int:
        suffix = "/trc20" if endpoint == "trc20" else "/transactions"
        return sum(1 for _t, path, _q in self.grid_requests if path.endswith(suffix))


def _suspension(limit: int, penalty: float) -> str:
    return f"The key exceeds the frequency limit({limit}), and the query server is suspended for {penalty:g}s"


def _grid_error(status: int, message: str) -> web.Response:
    return web.json_response({"success": False, "error": message, "statusCode": status}, status=status)


def _fault(fault: Fault) -> web.Response:
    if fault.kind == "429":
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        return web.json_response(
            {"success": False, "error": "Too Many Requests", "statusCode": 429}, status=429, headers=headers
        )
    if fault.kind == "503":
        return web.Response(status=503, text="Service Temporarily Unavailable")
    return web.Response(text='{"data":[{"txID":', content_type="application/json")


def _tags(method: str, params: Sequence[Any]) -> list[Any]:
    if method in ("eth_getBlockByNumber", "eth_getBlockReceipts", "eth_getBlockTransactionCountByNumber"):
        return list(params[:1])
    if method == "eth_getLogs" and params and isinstance(params[0], dict):
        return [params[0].get("fromBlock"), params[0].get("toBlock")]
    if method in ("eth_call", "eth_getBalance", "eth_getCode", "eth_getStorageAt"):
        return list(params[-1:])
    return []


def _tron_shape(method: str, result: Any) -> Any:
    """An upstream answer cut to the fields TRON's `/jsonrpc` gives."""
    if method in ("eth_getBlockByNumber", "eth_getBlockByHash") and isinstance(result, dict):
        txs = result.get("transactions") or []
        shaped = [({k: tx.get(k) for k in _TX_FIELDS} if isinstance(tx, dict) else tx) for tx in txs]
        return {**result, "transactions": shaped, "stateRoot": "0x", "difficulty": "0x0", "baseFeePerGas": "0x0"}
    if method in ("eth_getTransactionByHash",) and isinstance(result, dict):
        return {k: result.get(k) for k in _TX_FIELDS}
    if method == "eth_getTransactionReceipt" and isinstance(result, dict):
        return _receipt(result)
    if method == "eth_getBlockReceipts" and isinstance(result, list):
        return [_receipt(r) for r in result]
    if method == "eth_getLogs" and isinstance(result, list):
        return [_log(item) for item in result]
    return result


def _receipt(receipt: dict[str, Any]) -> dict[str, Any]:
    shaped = {k: receipt.get(k) for k in _RECEIPT_FIELDS}
    shaped["logs"] = [_log(item) for item in receipt.get("logs") or []]
    return shaped


_LOG_FIELDS = (
    "address",
    "topics",
    "data",
    "blockHash",
    "blockNumber",
    "transactionHash",
    "transactionIndex",
    "logIndex",
    "removed",
)
"""What java-tron's `/jsonrpc` puts in a log (its LogFilterElement): no `blockTimestamp`, which anvil adds."""


def _log(item: dict[str, Any]) -> dict[str, Any]:
    return {k: item[k] for k in _LOG_FIELDS if k in item}
