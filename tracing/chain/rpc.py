"""The JSON-RPC source: one block's transfers from an EVM node, with time-outs, retries and fail-over.

Raw JSON-RPC over an `aiohttp` client session (batched where it saves round trips) rather than web3's AsyncWeb3: the
block, receipts and traces are only handed to `tracing.chain.mappers`, and skipping web3's per-call result formatting
keeps indexing fast; web3's eth_utils does the hashing (the Transfer topic, function selectors).

Per block: `eth_getBlockByNumber`, `eth_getBlockReceipts` (falling back to one `eth_getTransactionReceipt` per
transaction when the node lacks it), and internal transfers from `trace_block`, else `debug_traceBlockByNumber`
with the callTracer, else none — said in the block's coverage. Until a trace method has worked the block is read
with its transaction objects; from then on without them (hashes only), each transaction's value taken from its
top-level trace frame and its sender and recipient from its receipt (`mappers.transactions_from_traces`), and
the full block read only when those do not plainly agree. On anvil the full block was most of the node's work
(~20 ms of its CPU for 100 transactions, against ~0.4 ms for the header and ~3 ms for the receipts).
`fetch_blocks` sends several blocks' calls in one JSON-RPC batch.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Self
from urllib.parse import urlsplit

import aiohttp
from eth_utils import function_signature_to_4byte_selector

from tracing.chain.address import normalise_address
from tracing.chain.config import ChainConfig
from tracing.chain.mappers import (
    BlockTransfers,
    InternalSource,
    MalformedPayload,
    RawLog,
    TokenMeta,
    Traces,
    decode_decimals,
    decode_symbol,
    map_block,
    map_log,
    quantity,
    transactions_from_traces,
    with_token_meta,
)
from tracing.errors import SourceError

log = logging.getLogger(__name__)

DECIMALS_CALL = "0x" + function_signature_to_4byte_selector("decimals()").hex()
SYMBOL_CALL = "0x" + function_signature_to_4byte_selector("symbol()").hex()
BATCH_LIMIT = 100
"""Calls per JSON-RPC batch (providers cap batches at 100-1000)."""
LEAN_MISSES = 8
"""Blocks in a row whose traces could not give their transactions' values before full blocks are read at once."""
LOGS_MAX_BLOCKS = 5_000
"""Blocks per `eth_getLogs` call: TRON's `maxBlockRange` default, and within what most EVM providers allow."""

_TOO_MANY_LOGS = re.compile(
    r"exceed max block range|more than \d+ results|too many results|query returned more than|block range"
    r"|response size|limit exceeded|range too large|exceed.* limit",
    re.IGNORECASE,
)
"""What nodes answer to an `eth_getLogs` over too many blocks or with too many results (the range is then split)."""

_MISSING_METHOD = re.compile(
    r"method not found|not supported|unsupported|does not exist|not available|unknown method|not implemented"
    r"|method .* not (found|enabled|allowed)|tracer not found",
    re.IGNORECASE,
)
_RATE_LIMITED = re.compile(r"rate limit|too many requests|limit exceeded", re.IGNORECASE)


_TRACE_CALLS: dict[InternalSource, tuple[str, tuple[Any, ...]]] = {
    InternalSource.TRACE_BLOCK: ("trace_block", ()),
    InternalSource.CALL_TRACER: ("debug_traceBlockByNumber", ({"tracer": "callTracer"},)),
}
"""Per trace method: the JSON-RPC method and its parameters after the block number."""


class RpcError(SourceError):
    """The node answered a call with a JSON-RPC error object."""

    def __init__(self, method: str, where: str, code: int, message: str) -> None:
        place = f"{method} ({where})" if where else method
        super().__init__(f"{place}: the node answered error {code}: {message}")
        self.method = method
        self.where = where
        self.code = code
        self.rpc_message = message

    @property
    def missing_method(self) -> bool:
        """Whether the error says the node does not offer the method (rather than failing this call)."""
        return self.code == -32601 or bool(_MISSING_METHOD.search(self.rpc_message))


class RpcUnavailable(SourceError):
    """No RPC URL gave a usable answer within the attempts (time-outs, HTTP errors, broken JSON)."""


class ChainIdMismatch(SourceError):
    """The node serves another chain than the configuration says."""


class BlockNotFound(SourceError):
    """The node does not have the block (yet)."""


def redact(url: str) -> str:
    """An RPC URL fit for messages and logs: scheme, host and port only (paths often hold API keys)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    path = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{host}{port}{path}"


class JsonRpcClient:
    """Raw JSON-RPC over HTTP with fail-over across `urls`.

    Each call tries the URL that last worked, then the others; after a full round without a usable answer it
    waits (exponential back-off) and starts another, `attempts` rounds in all. A JSON-RPC error object is an
    answer and is raised at once as RpcError (except rate limiting, which is retried).
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        timeout: float = 20.0,
        attempts: int = 3,
        backoff: float = 0.25,
        max_backoff: float = 8.0,
        max_connections: int = 32,
        parse_float: Callable[[str], Any] | None = None,
    ) -> None:
        """`parse_float`: how JSON numbers with a fraction are read (`decimal.Decimal` for bitcoin amounts)."""
        if not urls:
            raise ValueError("at least one RPC URL is needed")
        self.urls = tuple(urls)
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._preferred = 0
        self._ids = itertools.count(1)
        self._batches = True
        self._max_connections = max_connections
        self._parse_float = parse_float
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    def _http(self) -> aiohttp.ClientSession:
        """The HTTP session, made on first use in the running event loop (and again in another loop)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            self._session = aiohttp.ClientSession(
                # Per socket operation, as a node's answer time; waiting for a free connection is not the node's fault.
                timeout=aiohttp.ClientTimeout(sock_connect=self.timeout, sock_read=self.timeout),
                connector=aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=self._max_connections),
                headers={"content-type": "application/json"},
                skip_auto_headers=("User-Agent",),
            )
            self._session_loop = loop
        return self._session

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def call(self, method: str, params: Sequence[Any], *, where: str = "") -> Any:
        """`result` of one call; RpcError for an error answer, RpcUnavailable when no URL answered usably."""
        request_id = next(self._ids)
        body = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(params)}).encode()

        def check(data: Any) -> str | None:
            if not isinstance(data, dict) or ("result" not in data and "error" not in data):
                return "the answer is not a JSON-RPC response"
            error = data.get("error")
            if isinstance(error, dict) and _RATE_LIMITED.search(str(error.get("message", ""))):
                return f"rate limited: {error.get('message')}"
            return None

        data = await self._exchange(body, f"{method} ({where})" if where else method, check)
        return _result(method, where, data)

    async def batch(self, calls: Sequence[tuple[str, Sequence[Any]]], *, where: str = "") -> list[Any]:
        """Several calls in JSON-RPC batches of at most BATCH_LIMIT; per call its result or its RpcError.

        A node that refuses batches gets the calls one by one (concurrently) from then on.
        """
        out: list[Any] = []
        for start in range(0, len(calls), BATCH_LIMIT):
            out.extend(await self._batch_chunk(calls[start : start + BATCH_LIMIT], where))
        return out

    async def _batch_chunk(self, calls: Sequence[tuple[str, Sequence[Any]]], where: str) -> list[Any]:
        if not calls:
            return []
        if self._batches and len(calls) > 1:
            ids = [next(self._ids) for _ in calls]
            payload = [
                {"jsonrpc": "2.0", "id": i, "method": method, "params": list(params)}
                for i, (method, params) in zip(ids, calls, strict=True)
            ]

            def check(data: Any) -> str | None:
                if isinstance(data, dict) and "error" in data:
                    return None  # batches refused: handled below
                if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
                    return "the answer to a batch is not a list of JSON-RPC responses"
                return None

            methods = ", ".join(sorted({m for m, _ in calls}))
            label = f"batch of {len(calls)} {methods}" + (f" ({where})" if where else "")
            data = await self._exchange(json.dumps(payload).encode(), label, check)
            if isinstance(data, list):
                by_id = {item.get("id"): item for item in data}
                if all(i in by_id for i in ids):
                    return [_answer(m, where, by_id[i]) for i, (m, _) in zip(ids, calls, strict=True)]
            log.info("the RPC node does not answer batches; sending calls one by one")
            self._batches = False
        return list(await asyncio.gather(*(self._call_or_error(method, params, where) for method, params in calls)))

    async def _call_or_error(self, method: str, params: Sequence[Any], where: str) -> Any:
        try:
            return await self.call(method, params, where=where)
        except RpcError as exc:
            return exc

    async def _exchange(self, body: bytes, what: str, check: Callable[[Any], str | None]) -> Any:
        """POST `body` until a URL answers with JSON that `check` accepts (it returns a problem or None)."""
        last = "no attempt made"
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))
            for offset in range(len(self.urls)):
                index = (self._preferred + offset) % len(self.urls)
                url = self.urls[index]
                try:
                    async with self._http().post(url, data=body) as response:
                        status, content = response.status, await response.read()
                except TimeoutError:
                    last = f"{redact(url)} gave no answer within {self.timeout:g}s"
                    continue
                except aiohttp.ClientError as exc:
                    last = f"{redact(url)}: {type(exc).__name__} {str(exc).replace(url, redact(url))}".strip()
                    continue
                try:
                    data = json.loads(content, parse_float=self._parse_float)
                except ValueError as exc:
                    if status >= 400:
                        last = f"{redact(url)} answered HTTP {status}"
                    else:
                        last = f"{redact(url)} sent broken JSON (truncated response?): {exc}"
                    continue
                if status >= 400 and not (isinstance(data, dict) and "error" in data):
                    last = f"{redact(url)} answered HTTP {status}"
                    continue
                problem = check(data)
                if problem:
                    last = f"{redact(url)}: {problem}"
                    continue
                if index != self._preferred:
                    log.warning("RPC fail-over to %s for %s", redact(url), what)
                self._preferred = index
                return data
        rounds = f"{self.attempts} attempt{'s' if self.attempts > 1 else ''}"
        urls = f"{len(self.urls)} URL{'s' if len(self.urls) > 1 else ''}"
        raise RpcUnavailable(f"{what}: no usable answer from {urls} after {rounds}; last: {last}")


def _answer(method: str, where: str, body: Mapping[str, Any]) -> Any:
    try:
        return _result(method, where, body)
    except RpcError as exc:
        return exc


def _result(method: str, where: str, body: Mapping[str, Any]) -> Any:
    error = body.get("error")
    if error is not None:
        if isinstance(error, dict):
            code, message = error.get("code", 0), str(error.get("message", ""))
        else:
            code, message = 0, str(error)
        raise RpcError(method, where, int(code) if isinstance(code, int) else 0, message[:300])
    return body.get("result")


class NodeSource:
    """A source that reads one node through its `client`, and closes it when done (`async with`)."""

    client: JsonRpcClient

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.client.aclose()


class RpcSource(NodeSource):
    """An EVM chain's blocks as `BlockTransfers`, read from its JSON-RPC node(s).

    `connect()` reads the node's chain id and checks it against the configuration. `fetch_block(n)` returns one
    block's transfers (ERC-20 decimals and symbols filled in from a per-source cache) and can be called
    concurrently; it is what the indexer and a block-by-block watcher both use.
    """

    def __init__(
        self,
        chain: ChainConfig,
        *,
        timeout: float = 20.0,
        attempts: int = 3,
        backoff: float = 0.25,
        client: JsonRpcClient | None = None,
        trace_methods: Sequence[InternalSource] = (InternalSource.TRACE_BLOCK, InternalSource.CALL_TRACER),
    ) -> None:
        """`trace_methods`: the trace methods to try, in order. trace_block first: where a node offers both
        (Erigon, Reth, Nethermind, anvil) it is the cheaper (anvil: ~330 vs ~40 busy blocks/s); geth answers
        "method not found" once and debug_traceBlockByNumber is used from then on."""
        self.chain = chain
        self.client = client or JsonRpcClient(chain.require_rpc(), timeout=timeout, attempts=attempts, backoff=backoff)
        self.chain_id: int | None = None
        self.internal: InternalSource | None = None
        """The trace method found to work (None until a block was traced)."""
        self._block_receipts = True
        self._lean = True
        self._lean_misses = 0
        self._probed = False
        self._probing: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._trace_methods = [m for m in trace_methods if m is not InternalSource.UNAVAILABLE]
        self._tokens: dict[str, TokenMeta] = {}
        self._token_calls: dict[str, asyncio.Future[TokenMeta]] = {}

    async def connect(self) -> int:
        """The node's chain id; ChainIdMismatch when the configuration expects another one."""
        chain_id = quantity(await self.client.call("eth_chainId", [], where=self.chain.name), "eth_chainId")
        if self.chain.chain_id is not None and chain_id != self.chain.chain_id:
            raise ChainIdMismatch(
                f"the RPC node for {self.chain.name} serves chain id {chain_id}, not {self.chain.chain_id}; "
                f"check {self.chain.env_prefix}_RPC_URL (or {self.chain.env_prefix}_CHAIN_ID)"
            )
        self.chain_id = chain_id
        return chain_id

    async def head(self) -> int:
        return quantity(await self.client.call("eth_blockNumber", [], where=self.chain.name), "eth_blockNumber")

    async def fetch_block(self, number: int, *, token_meta: bool = True) -> BlockTransfers:
        """The transfers of block `number`. Raises a SourceError naming the method and block when it cannot."""
        where = f"block {number}"
        for _ in range(3):
            mapped = await self._fetch_once(number, where)
            if mapped is not None:
                break
        else:
            raise SourceError(f"{where} of {self.chain.name} kept changing while it was read (chain reorganising?)")
        if token_meta and mapped.tokens:
            metas = await self.token_meta(mapped.tokens)
            mapped = replace(mapped, transfers=with_token_meta(mapped.transfers, metas))
        return mapped

    async def fetch_blocks(
        self, numbers: Sequence[int], *, token_meta: bool = True
    ) -> list[BlockTransfers | SourceError]:
        """The transfers of several blocks, per block in order: its `BlockTransfers`, or the SourceError that
        `fetch_block` raised for it.

        Once a trace method is known to work, the blocks' calls (header, receipts, traces) go together in one
        JSON-RPC batch; until then the first call reads its first block alone to find it, and concurrent calls
        wait for that. A block whose answers are not plainly usable — an error answer, a missing block, a block
        that changed between calls, traces that do not give every transaction's value, a malformed payload — is
        read again on its own by `fetch_block`, which deals with it (fall-backs, retries, the error to raise);
        so does every block when the batch as a whole gets no usable answer.
        """
        numbers = list(numbers)
        mapped: list[BlockTransfers | SourceError | None] = [None] * len(numbers)
        batching = len(numbers) > 1 and self._lean and self._block_receipts
        if batching and self.internal is None:
            # The first block alone finds the trace method that works; concurrent calls wait for it rather than
            # each reading its blocks in full.
            async with self._probe_lock():
                if self.internal is None and not self._probed:
                    self._probed = True
                    try:
                        mapped[0] = await self.fetch_block(numbers[0], token_meta=False)
                    except SourceError as exc:
                        mapped[0] = exc
        method = self.internal
        todo = [i for i, m in enumerate(mapped) if m is None]
        if batching and method is not None and len(todo) > 1:
            trace_call = _TRACE_CALLS[method]
            calls: list[tuple[str, Sequence[Any]]] = []
            for i in todo:
                tag = hex(numbers[i])
                calls += [("eth_getBlockByNumber", [tag, False]), ("eth_getBlockReceipts", [tag])]
                calls.append((trace_call[0], [tag, *trace_call[1]]))
            try:
                answers = await self.client.batch(calls, where=f"blocks {numbers[todo[0]]}-{numbers[todo[-1]]}")
            except SourceError as exc:
                log.info("%s: a batch of blocks failed (%s); reading them one by one", self.chain.name, exc)
            else:
                for k, i in enumerate(todo):
                    block, receipts, traces = answers[3 * k : 3 * k + 3]
                    mapped[i] = self._map_batched(numbers[i], block, receipts, traces, method)

        async def one(i: int, number: int) -> BlockTransfers | SourceError:
            try:
                return mapped[i] or await self.fetch_block(number, token_meta=False)
            except SourceError as exc:
                return exc

        results = list(await asyncio.gather(*(one(i, n) for i, n in enumerate(numbers))))
        tokens = {t for r in results if isinstance(r, BlockTransfers) for t in r.tokens}
        if token_meta and tokens:
            metas = await self.token_meta(tokens)
            results = [
                replace(r, transfers=with_token_meta(r.transfers, metas)) if isinstance(r, BlockTransfers) else r
                for r in results
            ]
        return results

    def _probe_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._probing is None or self._probing[0] is not loop:
            self._probing = (loop, asyncio.Lock())
        return self._probing[1]

    def _map_batched(
        self, number: int, block: Any, receipts: Any, traces: Any, method: InternalSource
    ) -> BlockTransfers | None:
        """One block from its answers in a batch (header without transactions, receipts, traces); None unless
        every answer is plainly usable."""
        if not (isinstance(block, dict) and isinstance(receipts, list) and isinstance(traces, list)):
            return None  # an RpcError, a missing block or an odd answer: fetch_block sorts it out
        block_hash = str(block.get("hash", "")).lower()
        if block.get("number") != hex(number):
            return None
        if any(not isinstance(r, dict) or str(r.get("blockHash", block_hash)).lower() != block_hash for r in receipts):
            return None
        if method is InternalSource.TRACE_BLOCK and any(
            not isinstance(t, dict) or (t.get("blockHash") and str(t["blockHash"]).lower() != block_hash)
            for t in traces
        ):
            return None
        found = Traces(method, traces)
        txs = transactions_from_traces(block.get("transactions") or [], receipts, found)
        if txs is None:
            return None
        try:
            return map_block(
                self.chain.name,
                {**block, "transactions": txs},
                receipts,
                found,
                native_symbol=self.chain.symbol,
                native_decimals=self.chain.decimals,
            )
        except MalformedPayload:
            return None

    async def _fetch_once(self, number: int, where: str) -> BlockTransfers | None:
        tag = hex(number)
        want_receipts = self._block_receipts
        # Once a trace method works, the block comes without its transaction objects (see the module docstring).
        lean = self._lean and self.internal is not None and want_receipts
        block, receipts, traces = await asyncio.gather(
            self.client.call("eth_getBlockByNumber", [tag, not lean], where=where),
            self._get_block_receipts(tag, where) if want_receipts else _none(),
            self._traces(tag, where),
            return_exceptions=True,
        )
        # The block's own answer first: for a block that does not exist yet, that is the news, not the receipts'.
        if isinstance(block, BaseException):
            raise block
        if block is None:
            raise BlockNotFound(f"{where} does not exist on {self.chain.name} (yet)")
        for answer in (receipts, traces):
            if isinstance(answer, BaseException):
                raise answer
        if not isinstance(block, dict):
            raise MalformedPayload(f"eth_getBlockByNumber ({where}): the answer is not a block object")
        assert isinstance(traces, Traces)
        block_hash = str(block.get("hash", "")).lower()
        receipts_source = "eth_getBlockReceipts"
        if receipts is None:
            receipts_source = "eth_getTransactionReceipt"
            receipts = await self._tx_receipts(block, where)
        if not isinstance(receipts, list):
            raise MalformedPayload(f"{receipts_source} ({where}): the answer is not a list of receipts")
        if any(isinstance(r, dict) and str(r.get("blockHash", block_hash)).lower() != block_hash for r in receipts):
            log.info("%s of %s changed between calls; reading it again", where, self.chain.name)
            return None
        if traces.source is InternalSource.TRACE_BLOCK and any(
            t.get("blockHash") and str(t["blockHash"]).lower() != block_hash for t in traces.payload
        ):
            return None
        if lean:
            txs = transactions_from_traces(block.get("transactions") or [], receipts, traces)
            if txs is not None:
                block = {**block, "transactions": txs}
                self._lean_misses = 0
            else:
                block = await self._full_block(tag, where, block_hash)
                if block is None:
                    return None
        try:
            return map_block(
                self.chain.name,
                block,
                receipts,
                traces,
                receipts_source=receipts_source,
                native_symbol=self.chain.symbol,
                native_decimals=self.chain.decimals,
            )
        except MalformedPayload as exc:
            raise MalformedPayload(f"{self.chain.name} {exc}") from exc

    async def _full_block(self, tag: str, where: str, block_hash: str) -> dict[str, Any] | None:
        """The block with its transaction objects, when the traces could not stand in for them; None when it is
        no longer the block read before. After LEAN_MISSES such blocks in a row, full blocks are read at once."""
        self._lean_misses += 1
        if self._lean_misses >= LEAN_MISSES:
            log.info("%s: traces do not give every transaction's value; reading full blocks", self.chain.name)
            self._lean = False
        block = await self.client.call("eth_getBlockByNumber", [tag, True], where=where)
        if not isinstance(block, dict):
            return None  # gone since the first read: read again
        return block if str(block.get("hash", "")).lower() == block_hash else None

    async def _get_block_receipts(self, tag: str, where: str) -> list[Any] | None:
        """eth_getBlockReceipts, or None when the node does not offer it (remembered)."""
        try:
            result = await self.client.call("eth_getBlockReceipts", [tag], where=where)
        except RpcError as exc:
            if not exc.missing_method:
                raise
            log.info("%s has no eth_getBlockReceipts (%s); reading receipts per transaction", self.chain.name, exc)
            self._block_receipts = False
            return None
        if result is None:
            return None
        if not isinstance(result, list):
            raise MalformedPayload(f"eth_getBlockReceipts ({where}): the answer is not a list")
        return result

    async def _tx_receipts(self, block: Mapping[str, Any], where: str) -> list[Any]:
        txs = block.get("transactions") or []
        hashes = [tx.get("hash") if isinstance(tx, dict) else tx for tx in txs]
        if not hashes:
            return []
        answers = await self.client.batch([("eth_getTransactionReceipt", [h]) for h in hashes], where=where)
        receipts = []
        for tx_hash, answer in zip(hashes, answers, strict=True):
            if isinstance(answer, RpcError):
                raise answer
            if answer is None:
                raise SourceError(f"eth_getTransactionReceipt ({where}): the node has no receipt for tx {tx_hash}")
            receipts.append(answer)
        return receipts

    async def _traces(self, tag: str, where: str) -> Traces:
        """The block's call traces from the first trace method the node offers; `unavailable` when none."""
        notes = []
        for method in list(self._trace_methods):
            try:
                name, extra = _TRACE_CALLS[method]
                payload = await self.client.call(name, [tag, *extra], where=where)
            except RpcError as exc:
                if exc.missing_method:
                    if method in self._trace_methods:
                        self._trace_methods.remove(method)
                        log.info("%s: %s is not offered by the node", self.chain.name, exc.method)
                    notes.append(f"{exc.method} not offered")
                else:
                    notes.append(f"{exc.method} failed: {exc.rpc_message}")
                continue
            if not isinstance(payload, list):
                notes.append(f"{method.value} gave {type(payload).__name__} instead of a list")
                continue
            self.internal = method
            return Traces(method, payload)
        reason = "; ".join(notes) or "the node offers neither debug_traceBlockByNumber nor trace_block"
        return Traces(InternalSource.UNAVAILABLE, (), note=f"internal transfers unavailable ({reason})")

    async def logs(
        self, contracts: Sequence[str], first: int, last: int, *, topics: Sequence[Any] | None = None
    ) -> list[RawLog]:
        """Every log of `contracts` (canonical addresses) in blocks first..last, oldest first, with `eth_getLogs`:
        at most LOGS_MAX_BLOCKS blocks a call, and a range the node refuses as too large or too rich in results
        (TRON: `exceed max block range`, -32005 for more than 10,000 results) split in halves until it answers.
        A single block the node still refuses raises a SourceError naming it."""
        if first > last or not contracts:
            return []
        wanted = sorted({self._node_address(c) for c in contracts})
        found: list[RawLog] = []
        for start in range(first, last + 1, LOGS_MAX_BLOCKS):
            found.extend(await self._logs_range(wanted, start, min(last, start + LOGS_MAX_BLOCKS - 1), topics))
        found.sort(key=lambda item: (item.block_number, item.log_index))
        return found

    async def _logs_range(
        self, contracts: list[str], first: int, last: int, topics: Sequence[Any] | None
    ) -> list[RawLog]:
        where = f"blocks {first}-{last}"
        query: dict[str, Any] = {"fromBlock": hex(first), "toBlock": hex(last), "address": contracts}
        if topics is not None:
            query["topics"] = list(topics)
        try:
            answer = await self.client.call("eth_getLogs", [query], where=where)
        except RpcError as exc:
            if first < last and (exc.code == -32005 or _TOO_MANY_LOGS.search(exc.rpc_message)):
                middle = (first + last) // 2
                return [
                    *await self._logs_range(contracts, first, middle, topics),
                    *await self._logs_range(contracts, middle + 1, last, topics),
                ]
            raise
        if not isinstance(answer, list):
            raise MalformedPayload(f"eth_getLogs ({where}): the answer is not a list of logs")
        out = []
        for item in answer:
            if not isinstance(item, dict):
                raise MalformedPayload(f"eth_getLogs ({where}): a log is not an object")
            out.append(map_log(self.chain.name, item, self._chain_address(item.get("address"), where)))
        return out

    def _node_address(self, address: str) -> str:
        """An address as this chain's node takes it in a request (EVM: as it is)."""
        return address

    def _chain_address(self, value: object, where: str) -> str:
        """An address from this chain's node in canonical form (EVM: lower-case hex)."""
        address = normalise_address(value, hex_digits=False)
        if address is None:
            raise MalformedPayload(f"{where}: {str(value)[:50]!r} is not an address")
        return address

    async def token_meta(self, tokens: Iterable[str]) -> dict[str, TokenMeta]:
        """decimals() and symbol() of each token, read once per token and cached (None where a call reverts)."""
        wanted = set(tokens)
        to_fetch = [t for t in wanted if t not in self._tokens and t not in self._token_calls]
        if to_fetch:
            loop = asyncio.get_running_loop()
            futures = {t: loop.create_future() for t in to_fetch}
            self._token_calls.update(futures)
            try:
                fetched = await self._read_tokens(to_fetch)
                for token, future in futures.items():
                    future.set_result(fetched[token])
            except BaseException as exc:
                for future in futures.values():
                    if not future.done():
                        future.set_exception(exc)
                        future.exception()  # retrieved here: waiters get it through their own await
                raise
            finally:
                for token in to_fetch:
                    self._token_calls.pop(token, None)
        pending = {t: self._token_calls[t] for t in wanted if t not in self._tokens and t in self._token_calls}
        if pending:
            await asyncio.gather(*pending.values(), return_exceptions=True)
        return {t: self._tokens.get(t) or TokenMeta(t, None, None) for t in wanted}

    async def _read_tokens(self, tokens: Sequence[str]) -> dict[str, TokenMeta]:
        calls: list[tuple[str, Sequence[Any]]] = []
        for token in tokens:
            calls.append(("eth_call", [{"to": token, "data": DECIMALS_CALL}, "latest"]))
            calls.append(("eth_call", [{"to": token, "data": SYMBOL_CALL}, "latest"]))
        try:
            answers = await self.client.batch(calls, where="token metadata")
        except RpcUnavailable as exc:
            log.warning("token metadata not read: %s", exc)
            return {t: TokenMeta(t, None, None) for t in tokens}
        out = {}
        for i, token in enumerate(tokens):
            decimals, symbol = answers[2 * i], answers[2 * i + 1]
            meta = TokenMeta(
                token,
                None if isinstance(decimals, RpcError) else decode_decimals(decimals),
                None if isinstance(symbol, RpcError) else decode_symbol(symbol),
            )
            self._tokens[token] = meta
            out[token] = meta
        return out


async def _none() -> None:
    return None
