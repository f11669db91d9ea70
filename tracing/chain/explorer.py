"""An Etherscan-compatible block explorer as a transfer source: the full history of one address.

Speaks the account API that Etherscan (v2, one key for every chain via `chainid`), its clones and Blockscout's
compatibility layer share: `module=account&action=txlist|tokentx|txlistinternal`, paged with `page`/`offset`
inside a result window of 10,000 rows per query. Past the window the client starts again at the last block it
saw (that block is fetched again whole and the partial copy dropped), so long histories come through complete.

Every call with the same API key goes through one `ExplorerRateLimit` (free tier: 3 calls/s), and the explorer's own
"rate limit" answers, HTTP 429 (honouring Retry-After), 5xx and dropped connections are retried with backoff.
Rows become `Transfer`s with `source="explorer"` and the same keys the RPC mappers give (`tx`, `log:<index>`,
`trace:<a.b.c>`), so the two sources de-duplicate in the index.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from tracing.chain.address import normalise_address, parse_address
from tracing.chain.history_http import (
    ExplorerAuthError,
    ExplorerError,
    ExplorerRateLimit,
    ExplorerRateLimited,
    ExplorerResponseError,
    HistoryHttpClient,
    Retry,
    shared_limiter,
    snippet,
)
from tracing.chain.transfer import Transfer, TransferKind

log = logging.getLogger(__name__)

SOURCE = "explorer"
DEFAULT_CALLS_PER_SECOND = 3.0
"""Etherscan's free tier."""
RESULT_WINDOW = 10_000
"""Etherscan answers at most page x offset <= 10,000 rows per query."""

_HASH_LENGTH = 66
_NO_VALUE_CALLS = frozenset({"delegatecall", "callcode", "staticcall"})


class ExplorerAction(StrEnum):
    TXLIST = "txlist"
    TOKENTX = "tokentx"
    TXLISTINTERNAL = "txlistinternal"


# --- results ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActionFetch:
    """What one action (`txlist`, `tokentx` or `txlistinternal`) returned for the address.

    `rows` counts the explorer's rows kept (after de-duplication), `transfers` the value movements among them.
    `through_block` is the last block whose rows were all fetched (None: up to the chain head when fetched).
    `complete` is False when the history was cut (row cap, or a block holding more rows than one window);
    `cuts` then says where and why (also among `notes`). `busy` is the number of transfers in the asked direction
    when the fetch stopped early because there were more than asked for (`transfers_of(busy=…)`), else 0.
    """

    action: ExplorerAction
    transfers: tuple[Transfer, ...]
    rows: int
    requests: int
    complete: bool
    through_block: int | None
    notes: tuple[str, ...] = ()
    cuts: tuple[str, ...] = ()
    busy: int = 0


@dataclass(frozen=True, slots=True)
class ExplorerHistory:
    """The transfers of one address from the explorer, with what was fetched and where it was capped."""

    chain: str
    address: str
    start_block: int
    end_block: int | None
    transfers: tuple[Transfer, ...]
    fetches: tuple[ActionFetch, ...]

    @property
    def complete(self) -> bool:
        return all(f.complete for f in self.fetches)

    @property
    def requests(self) -> int:
        return sum(f.requests for f in self.fetches)

    @property
    def busy(self) -> int:
        """Transfers seen in the asked direction where a fetch stopped early at a busy address, else 0."""
        return max((f.busy for f in self.fetches), default=0)

    @property
    def cuts(self) -> tuple[str, ...]:
        """Why the history is incomplete, one line per cut (empty when complete)."""
        found = tuple(cut for f in self.fetches for cut in f.cuts)
        if found or self.complete:
            return found
        return tuple(f"{f.action}: history incomplete" for f in self.fetches if not f.complete)

    @property
    def notes(self) -> tuple[str, ...]:
        """One line per action (rows, requests, coverage), then anything that was capped or left out."""
        head = []
        for f in self.fetches:
            upto = "the chain head" if f.through_block is None else f"block {f.through_block}"
            state = "complete" if f.complete else "INCOMPLETE"
            head.append(
                f"{f.action}: {f.rows} rows, {len(f.transfers)} transfers, {f.requests} requests, "
                f"{state} from block {self.start_block} through {upto}"
            )
        return (*head, *(note for f in self.fetches for note in f.notes))


# --- the client ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Page:
    """The rows of one answer, with where they came from (for error messages)."""

    where: str
    rows: list[Mapping[str, Any]]


class ExplorerClient(HistoryHttpClient):
    """An Etherscan-compatible account API for one chain.

    `base_url` is the API endpoint (`https://api.etherscan.io/v2/api`); `chain_id` is sent as `chainid` when
    given (Etherscan v2), left out otherwise (v1 clones, Blockscout); `chain` names the chain in the transfers.
    `page_size` is the `offset` per page and must divide into `result_window`; `max_rows` caps each action's
    history (an exchange's hot wallet has millions of rows), and the history says so when it bites.
    """

    label = "explorer"

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str = "",
        chain_id: int | None = None,
        chain: str = "eth",
        calls_per_second: float = DEFAULT_CALLS_PER_SECOND,
        page_size: int = 1000,
        result_window: int = RESULT_WINDOW,
        max_rows: int = 200_000,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        max_retry_after: float = 120.0,
        timeout: float = 30.0,
        limiter: ExplorerRateLimit | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        if not 1 <= page_size <= result_window:
            raise ValueError(f"page_size must be between 1 and the result window ({result_window}), not {page_size}")
        super().__init__(
            api_key=api_key,
            limiter=limiter or shared_limiter(api_key, calls_per_second),
            http=http,
            timeout=timeout,
            headers={"User-Agent": "chainsleuth"},
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
            max_retry_after=max_retry_after,
        )
        self.base_url = base_url
        self.chain_id = chain_id
        self.chain = chain
        self.page_size = page_size
        self.pages_per_window = result_window // page_size
        self.max_rows = max_rows

    # --- public calls ---

    async def transfers_of(
        self,
        address: str,
        *,
        start_block: int = 0,
        end_block: int | None = None,
        busy: tuple[bool, int] | None = None,
    ) -> ExplorerHistory:
        """Native, ERC-20 and internal transfers touching `address` in [start_block, end_block], oldest first.

        `busy` (outgoing, limit): stop an action's paging as soon as it holds more than `limit` transfers out of
        the address (outgoing) or into it: the address is busier than a trace expands, and the rest of a hot
        wallet's history (up to `max_rows` rows per action) need not be read to know it (`ExplorerHistory.busy`)."""
        canonical = parse_address(address)
        halt = asyncio.Event()  # one action found it busy: the others stop at their next page
        fetches = await asyncio.gather(
            *(
                self.fetch(action, canonical, start_block=start_block, end_block=end_block, busy=busy, halt=halt)
                for action in ExplorerAction
            )
        )
        merged: dict[tuple[str, str, str, str], Transfer] = {}
        for fetch in fetches:
            for transfer in fetch.transfers:
                merged.setdefault(transfer.key, transfer)
        ordered = sorted(merged.values(), key=lambda t: (t.block_number, t.tx_hash, t.kind.value, t.position))
        return ExplorerHistory(self.chain, canonical, start_block, end_block, tuple(ordered), tuple(fetches))

    async def normal_transactions(
        self, address: str, *, start_block: int = 0, end_block: int | None = None
    ) -> ActionFetch:
        """`txlist`: the address's own transactions; those with value become native transfers."""
        return await self.fetch(ExplorerAction.TXLIST, address, start_block=start_block, end_block=end_block)

    async def token_transfers(self, address: str, *, start_block: int = 0, end_block: int | None = None) -> ActionFetch:
        """`tokentx`: ERC-20 Transfer events to or from the address."""
        return await self.fetch(ExplorerAction.TOKENTX, address, start_block=start_block, end_block=end_block)

    async def fetch(
        self,
        action: ExplorerAction,
        address: str,
        *,
        start_block: int = 0,
        end_block: int | None = None,
        busy: tuple[bool, int] | None = None,
        halt: asyncio.Event | None = None,
    ) -> ActionFetch:
        """Every row of one action for the address, across pages and result windows, mapped to transfers (`busy`:
        stop early at a busy address, see `transfers_of`; `halt`: set when this action finds it busy, and read
        after each page: another action found it busy)."""
        canonical = parse_address(address)
        rows: list[tuple[str, Mapping[str, Any]]] = []
        cuts: list[str] = []
        requests = 0
        complete = True
        start = start_block
        through: int | None = end_block
        seen: set[tuple[str, str, str, str]] = set()
        while True:
            window: list[tuple[str, Mapping[str, Any]]] = []
            exhausted = False
            for page_number in range(1, self.pages_per_window + 1):
                page = await self._page(action, canonical, start, end_block, page_number)
                requests += 1
                window.extend((page.where, row) for row in page.rows)
                if busy is not None and (
                    _busier(action, self.chain, canonical, page, busy, seen) or (halt is not None and halt.is_set())
                ):
                    if halt is not None:
                        halt.set()
                    transfers, kept, _ = _map_rows(action, self.chain, rows + window)
                    why = f"{action}: stopped after {len(seen)} transfers {'out' if busy[0] else 'in'}: a busy address"
                    return ActionFetch(action, transfers, kept, requests, False, None, (why,), (why,), len(seen))
                if len(page.rows) < self.page_size:
                    exhausted = True
                    break
            if exhausted:
                rows.extend(window)
                break
            blocks = [_block_of(action, where, row) for where, row in window]
            first, last = min(blocks), max(blocks)
            if first == last:
                # One block holds a whole window of rows: nothing to restart from, so move past it.
                complete = False
                cuts.append(
                    f"{action}: block {last} holds more than {len(window)} rows for this address; "
                    f"only the first {len(window)} were fetched"
                )
                rows.extend(window)
                start = last + 1
            else:
                # Fetch the last block again whole in the next window; drop its partial copy here.
                rows.extend(item for item, block in zip(window, blocks, strict=True) if block < last)
                start = last
            if end_block is not None and start > end_block:
                break
            if len(rows) >= self.max_rows:
                complete = False
                through = start - 1
                cuts.append(
                    f"{action}: stopped after {len(rows)} rows (cap {self.max_rows}); "
                    f"blocks after {through} were not fetched"
                )
                break
        transfers, kept, mapping_notes = _map_rows(action, self.chain, rows)
        return ActionFetch(action, transfers, kept, requests, complete, through, (*cuts, *mapping_notes), tuple(cuts))

    # --- one page, with retries ---

    async def _page(self, action: ExplorerAction, address: str, start: int, end: int | None, page: int) -> _Page:
        params: dict[str, str | int] = {}
        if self.chain_id is not None:
            params["chainid"] = self.chain_id
        params.update(
            module="account", action=action.value, address=address, startblock=start, page=page, offset=self.page_size
        )
        if end is not None:
            params["endblock"] = end
        params["sort"] = "asc"
        if self.api_key:
            params["apikey"] = self.api_key
        where = f"{action} page {page} (startblock {start})"
        return _Page(where, await self._retrying(lambda: self._request(params, where), where))

    async def _request(self, params: Mapping[str, str | int], where: str) -> list[Mapping[str, Any]]:
        response = await self._send(self.base_url, params)
        status = response.status_code
        if status == 429:
            raise Retry("HTTP 429 Too Many Requests", wait=self._retry_after(response, where), rate_limited=True)
        if status >= 500:
            raise Retry(f"HTTP {status}", wait=self._retry_after(response, where))
        if status in (401, 403):
            raise ExplorerAuthError(f"explorer {where}: HTTP {status}; check the explorer API key")
        if status >= 400:
            raise ExplorerError(f"explorer {where}: HTTP {status}: {snippet(response.text)}")
        try:
            body = response.json()
        except ValueError:
            raise ExplorerResponseError(
                f"explorer {where}: the answer is not valid JSON: {snippet(response.text)}"
            ) from None
        if not isinstance(body, dict) or "result" not in body:
            raise ExplorerResponseError(f"explorer {where}: expected an object with 'result', got {snippet(body)}")
        result = body["result"]
        if str(body.get("status")) == "1":
            if not isinstance(result, list) or not all(isinstance(row, dict) for row in result):
                raise ExplorerResponseError(f"explorer {where}: 'result' is not a list of rows: {snippet(result)}")
            return result
        if result == [] or result is None:
            return []  # "No transactions found" and its kin: an empty history, not an error
        text = f"{body.get('message', '')}: {result}" if isinstance(result, str) else snippet(body)
        lowered = text.lower()
        if "rate limit" in lowered:
            if "daily" in lowered:
                raise ExplorerRateLimited(f"explorer {where}: the API key's daily allowance is spent ({result})")
            raise Retry(str(result), rate_limited=True)
        if "timeout" in lowered or "time out" in lowered:
            raise Retry(str(result))
        if "api key" in lowered or "apikey" in lowered:
            raise ExplorerAuthError(f"explorer {where}: the API key was refused: {self._redact(str(result))}")
        raise ExplorerError(f"explorer {where}: {self._redact(text)}")


# --- rows → transfers ---------------------------------------------------------------------------------------


def _block_of(action: ExplorerAction, where: str, row: Mapping[str, Any]) -> int:
    return _int(row, "blockNumber", action, where)


def _int(row: Mapping[str, Any], key: str, action: ExplorerAction, where: str) -> int:
    value = row.get(key)
    try:
        number = int(str(value), 10)
    except ValueError:
        raise ExplorerResponseError(f"explorer {where}: row {key}={snippet(value, 40)} is not an integer") from None
    if number < 0:
        raise ExplorerResponseError(f"explorer {where}: row {key}={number} is negative")
    return number


def _row_address(row: Mapping[str, Any], key: str, where: str) -> str:
    value = row.get(key)
    address = normalise_address(value)
    if address is not None:
        return address
    raise ExplorerResponseError(f"explorer {where}: row {key}={snippet(value, 50)} is not an address")


def _hash(row: Mapping[str, Any], where: str) -> str:
    value = row.get("hash")
    if isinstance(value, str) and len(value) == _HASH_LENGTH and value[:2] in ("0x", "0X"):
        return value.lower()
    raise ExplorerResponseError(f"explorer {where}: row hash={snippet(value, 70)} is not a transaction hash")


def _recipient(row: Mapping[str, Any], where: str) -> str:
    """`to`, or the created contract (`contractAddress`) when the transaction or call created one."""
    return _row_address(row, "to" if row.get("to") else "contractAddress", where)


def _row_id(action: ExplorerAction, row: Mapping[str, Any]) -> tuple[str, ...] | None:
    """What identifies a row across overlapping answers; None when the row carries no identifier (then it is
    never treated as a duplicate: two equal token payments in one transaction are two payments)."""
    tx_hash = str(row.get("hash", "")).lower()
    if action is ExplorerAction.TXLIST:
        return (tx_hash,)
    key = "logIndex" if action is ExplorerAction.TOKENTX else "traceId"
    marker = str(row.get(key) or "")
    return (tx_hash, marker) if marker else None


def _busier(
    action: ExplorerAction,
    chain: str,
    address: str,
    page: _Page,
    busy: tuple[bool, int],
    seen: set[tuple[str, str, str, str]],
) -> bool:
    """Add the page's transfers out of `address` (busy[0]) or into it to `seen`; whether they are more than
    busy[1] now."""
    outgoing, limit = busy
    for t in _map_rows(action, chain, [(page.where, row) for row in page.rows])[0]:
        if (t.from_addr if outgoing else t.to_addr) == address:
            seen.add(t.key)
    return len(seen) > limit


def _map_rows(
    action: ExplorerAction, chain: str, rows: Sequence[tuple[str, Mapping[str, Any]]]
) -> tuple[tuple[Transfer, ...], int, tuple[str, ...]]:
    """Transfers of the rows, the number of distinct rows, and a note when positions had to be made up."""
    transfers: dict[tuple[str, str, str, str], Transfer] = {}
    ordinals: dict[str, int] = {}
    seen: set[tuple[str, ...]] = set()
    kept = 0
    for where, row in rows:
        identity = _row_id(action, row)
        if identity is not None:
            if identity in seen:
                continue
            seen.add(identity)
        kept += 1
        transfer = _to_transfer(action, chain, where, row, ordinals)
        if transfer is not None:
            transfers.setdefault(transfer.key, transfer)
    notes: tuple[str, ...] = ()
    made_up = sum(ordinals.values())
    if made_up:
        field = "logIndex" if action is ExplorerAction.TOKENTX else "traceId"
        notes = (
            f"{action}: {made_up} rows had no {field}; their positions are ordinals within the transaction "
            "and will not match the same transfers indexed from a node",
        )
    ordered = sorted(transfers.values(), key=lambda t: (t.block_number, t.tx_hash, t.position))
    return tuple(ordered), kept, notes


def _to_transfer(
    action: ExplorerAction, chain: str, where: str, row: Mapping[str, Any], ordinals: dict[str, int]
) -> Transfer | None:
    """One explorer row as a transfer; None for a failed call or one that moves no native value."""
    if str(row.get("isError", "0")) == "1" or str(row.get("txreceipt_status", "")) == "0":
        return None
    value = _int(row, "value", action, where)
    tx_hash = _hash(row, where)

    def ordinal() -> int:
        ordinals[tx_hash] = ordinals.get(tx_hash, 0) + 1
        return ordinals[tx_hash]

    token: str | None = None
    decimals: int | None = None
    symbol: str | None = None
    if action is ExplorerAction.TXLIST:
        if value == 0:
            return None
        kind, position, recipient = TransferKind.NATIVE, "tx", _recipient(row, where)
    elif action is ExplorerAction.TOKENTX:
        # Zero-value token transfers are kept, as the RPC mappers keep them (address poisoning is evidence).
        has_index = row.get("logIndex") not in (None, "")
        position = f"log:{_int(row, 'logIndex', action, where)}" if has_index else f"log:#{ordinal()}"
        kind, recipient = TransferKind.ERC20, _row_address(row, "to", where)
        token = _row_address(row, "contractAddress", where)
        digits = str(row.get("tokenDecimal") or "")
        decimals = int(digits) if digits.isdigit() and int(digits) <= 255 else None
        symbol = str(row.get("tokenSymbol") or "")[:32] or None
    else:
        if value == 0 or str(row.get("type") or "call").lower() in _NO_VALUE_CALLS:
            return None
        trace_id = str(row.get("traceId") or "")
        # Etherscan writes the trace address as 0_1_2; the RPC mappers as 0.1.2.
        position = "trace:" + (trace_id.replace("_", ".").replace(",", ".") if trace_id else f"#{ordinal()}")
        kind, recipient = TransferKind.INTERNAL, _recipient(row, where)
    return Transfer(
        chain=chain,
        block_number=_int(row, "blockNumber", action, where),
        block_hash=str(row.get("blockHash") or "").lower(),
        timestamp=_int(row, "timeStamp", action, where),
        tx_hash=tx_hash,
        kind=kind,
        position=position,
        from_addr=_row_address(row, "from", where),
        to_addr=recipient,
        value=value,
        token=token,
        decimals=decimals,
        symbol=symbol,
        source=SOURCE,
    )
