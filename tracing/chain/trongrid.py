"""TronGrid's v1 account API as a transfer source: the history of one TRON address, on demand.

Two endpoints, as TronGrid documents them:

- `GET /v1/accounts/{address}/transactions`: the address's transactions (sent and received), each with `txID`,
  `blockNumber`, `block_timestamp` (ms), `ret[0].contractRet` and `raw_data.contract[0]` (`type` and
  `parameter.value`, addresses as `41…` hex). A `TransferContract` is a TRX transfer (`amount` in sun from
  `owner_address` to `to_address`), a `TriggerSmartContract` with a `call_value` pays TRX to the contract. Rows of
  internal transactions (`internal_tx_id`) and other contract types (TRC-10 `TransferAssetContract`, staking, votes)
  are counted and not used.
- `GET /v1/accounts/{address}/transactions/trc20`: TRC-20 transfers to or from the address, each with
  `transaction_id`, `token_info` (`address`, `symbol`, `decimals`), `block_timestamp` (ms), `from`, `to`, `type`
  and `value` (a decimal string). These rows carry neither a block number nor a log index: the block number is taken
  from the same transaction among the address's own transactions when it is there (else 0, and the history says
  so), and the position is an ordinal within the transaction (`log:#1`), which does not match the same transfer
  read from a node's logs.

Both are paged with `limit` (at most 200) and the `fingerprint` cursor of `meta`, oldest first
(`order_by=block_timestamp,asc`), solidified blocks only (`only_confirmed=true`). The API key goes in the
`TRON-PRO-API-KEY` header. Every call with the same key goes through one `ExplorerRateLimit`; HTTP 429 and 5xx are
retried with back-off (honouring Retry-After), and TronGrid's frequency-limit answer (`{"success": false, "error":
"… exceeds the frequency limit(15), and the query server is suspended for 30s", "statusCode": 403}`) is retried
after the suspension it names. Transfers have `source="trongrid"`, TRON addresses in `T…` form and transaction
hashes as `0x` + the txID, as `/jsonrpc` gives them, so the two de-duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import httpx

from tracing.chain.address import Family, family_of, parse_address, tron_from_hex
from tracing.chain.history_http import (
    ExplorerAuthError,
    ExplorerError,
    ExplorerRateLimit,
    ExplorerRateLimited,
    ExplorerResponseError,
    HistoryHttpClient,
    Retry,
    retry_after_header,
    shared_limiter,
    snippet,
)
from tracing.chain.transfer import Transfer, TransferKind
from tracing.errors import InvalidAddress

log = logging.getLogger(__name__)

SOURCE = "trongrid"
PAGE_LIMIT = 200
"""TronGrid's largest page (`limit`)."""
DEFAULT_CALLS_PER_SECOND = 10.0
"""Under TronGrid's per-key frequency limit (15 a second in its documentation) with room for other clients."""
KEY_HEADER = "TRON-PRO-API-KEY"
MAX_ROWS = 5_000
"""Rows read per endpoint and address: 25 pages, about 5 s for both endpoints at the default rate, inside a command's
budget; a longer history (an exchange's wallet) is cut there, oldest rows first, and the history says so."""

_SUSPENDED = re.compile(r"suspended for (\d+(?:\.\d+)?)\s*s", re.IGNORECASE)
_FREQUENCY = re.compile(r"frequency limit|rate limit|too many requests", re.IGNORECASE)
_HEX_TX = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


class TronGridAction(StrEnum):
    TRANSACTIONS = "transactions"
    TRC20 = "transactions/trc20"


@dataclass(frozen=True, slots=True)
class TronGridFetch:
    """What one endpoint returned for the address: transfers, rows read, requests made, and whether the whole
    history came (False when the row cap cut it; `cuts` says where)."""

    action: TronGridAction
    transfers: tuple[Transfer, ...]
    rows: int
    requests: int
    complete: bool
    notes: tuple[str, ...] = ()
    cuts: tuple[str, ...] = ()
    blocks: Mapping[str, int] = field(default_factory=dict)
    """`transactions` only: the block of every transaction listed, by hash (with or without value)."""


@dataclass(frozen=True, slots=True)
class TronGridHistory:
    """The transfers of one TRON address from TronGrid, oldest first, with what was fetched and left out."""

    chain: str
    address: str
    transfers: tuple[Transfer, ...]
    fetches: tuple[TronGridFetch, ...]

    @property
    def complete(self) -> bool:
        return all(f.complete for f in self.fetches)

    @property
    def requests(self) -> int:
        return sum(f.requests for f in self.fetches)

    @property
    def cuts(self) -> tuple[str, ...]:
        return tuple(cut for f in self.fetches for cut in f.cuts)

    @property
    def notes(self) -> tuple[str, ...]:
        head = [
            f"TronGrid {f.action}: {f.rows} rows, {len(f.transfers)} transfers, {f.requests} requests, "
            f"{'complete' if f.complete else 'INCOMPLETE'}"
            for f in self.fetches
        ]
        return (*head, *(note for f in self.fetches for note in f.notes))


def _retry(reason: str, wait: float | None) -> Retry:
    """A retry; rate limited when TronGrid's answer says so (a frequency limit, 429)."""
    return Retry(reason, wait=wait, rate_limited=_FREQUENCY.search(reason) is not None)


class TronGridClient(HistoryHttpClient):
    """TronGrid's v1 account API for one TRON chain (see the module docstring).

    `base_url` is the API root (`https://api.trongrid.io`); `page_size` the `limit` per page (at most 200);
    `max_rows` caps each endpoint's history (an exchange's hot wallet has millions of rows), and the history says so
    when it bites.
    """

    label = "TronGrid"

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str = "",
        chain: str = "tron",
        calls_per_second: float = DEFAULT_CALLS_PER_SECOND,
        page_size: int = PAGE_LIMIT,
        max_rows: int = MAX_ROWS,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        max_retry_after: float = 60.0,
        timeout: float = 30.0,
        limiter: ExplorerRateLimit | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        if not 1 <= page_size <= PAGE_LIMIT:
            raise ValueError(f"page_size must be between 1 and {PAGE_LIMIT}, not {page_size}")
        headers = {"User-Agent": "chainsleuth", "Accept": "application/json"}
        if api_key:
            headers[KEY_HEADER] = api_key
        super().__init__(
            api_key=api_key,
            limiter=limiter or shared_limiter(f"trongrid:{api_key}", calls_per_second),
            http=http,
            timeout=timeout,
            headers=headers,
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
            max_retry_after=max_retry_after,
        )
        self.base_url = base_url.rstrip("/")
        self.chain = chain
        self.page_size = page_size
        self.max_rows = max_rows

    async def transfers_of(self, address: str) -> TronGridHistory:
        """TRX and TRC-20 transfers touching `address` (a TRON address), oldest first."""
        canonical = parse_address(address)
        if family_of(canonical) is not Family.TRON:
            raise InvalidAddress("TronGrid answers for TRON addresses (T…) only.")
        transactions, trc20 = await asyncio.gather(
            self.fetch(TronGridAction.TRANSACTIONS, canonical), self.fetch(TronGridAction.TRC20, canonical)
        )
        blocks = transactions.blocks
        unplaced = 0
        placed: list[Transfer] = []
        for t in trc20.transfers:
            where = blocks.get(t.tx_hash)
            if where is None:
                unplaced += 1
                placed.append(t)
            else:
                placed.append(replace(t, block_number=where))
        notes = trc20.notes
        if unplaced:
            notes += (
                f"TronGrid {TronGridAction.TRC20}: {unplaced} TRC-20 transfer(s) without a block number (TronGrid's "
                "TRC-20 rows have none; shown as block 0): their time is exact, their block is not",
            )
        trc20 = replace(trc20, transfers=tuple(placed), notes=notes)
        merged: dict[tuple[str, str, str, str], Transfer] = {}
        for fetch in (transactions, trc20):
            for transfer in fetch.transfers:
                merged.setdefault(transfer.key, transfer)
        ordered = sorted(merged.values(), key=lambda t: (t.timestamp, t.block_number, t.tx_hash, t.position))
        return TronGridHistory(self.chain, canonical, tuple(ordered), (transactions, trc20))

    async def fetch(self, action: TronGridAction, address: str) -> TronGridFetch:
        """Every row of one endpoint for the address, page after page, mapped to transfers."""
        rows: list[Mapping[str, Any]] = []
        cuts: list[str] = []
        requests = 0
        complete = True
        fingerprint: str | None = None
        seen: set[str] = set()
        while True:
            params: dict[str, str | int] = {
                "limit": self.page_size,
                "only_confirmed": "true",
                "order_by": "block_timestamp,asc",
            }
            if fingerprint:
                params["fingerprint"] = fingerprint
            page, fingerprint = await self._page(action, address, params, requests + 1)
            requests += 1
            rows.extend(page)
            if not fingerprint or not page:
                break
            if fingerprint in seen:
                complete = False
                cuts.append(f"TronGrid {action}: the same page cursor came back twice; stopped after {len(rows)} rows")
                break
            seen.add(fingerprint)
            if len(rows) >= self.max_rows:
                complete = False
                cuts.append(
                    f"TronGrid {action}: stopped after {len(rows)} rows (cap {self.max_rows}); later transfers of "
                    "this address were not fetched"
                )
                break
        blocks: dict[str, int] = {}
        if action is TronGridAction.TRANSACTIONS:
            transfers, notes = _map_transactions(self.chain, rows, blocks)
        else:
            transfers, notes = _map_trc20(self.chain, rows)
        return TronGridFetch(action, transfers, len(rows), requests, complete, (*cuts, *notes), tuple(cuts), blocks)

    # --- one page, with retries ---

    async def _page(
        self, action: TronGridAction, address: str, params: Mapping[str, str | int], number: int
    ) -> tuple[list[Mapping[str, Any]], str | None]:
        url = f"{self.base_url}/v1/accounts/{address}/{action.value}"
        where = f"{action} page {number}"
        return await self._retrying(lambda: self._once(url, params, where), where)

    def _give_up(self, retry: Retry, where: str) -> ExplorerError:
        if retry.rate_limited:
            return ExplorerRateLimited(
                f"TronGrid {where}: still rate limited after {self.max_retries} retries ({retry.reason})"
            )
        return ExplorerError(f"TronGrid {where}: {retry.reason} after {self.max_retries} retries")

    async def _once(
        self, url: str, params: Mapping[str, str | int], where: str
    ) -> tuple[list[Mapping[str, Any]], str | None]:
        response = await self._send(url, params)
        status = response.status_code
        body: Any
        try:
            body = response.json()
        except ValueError:
            body = None
        error = str(body.get("error") or body.get("Error") or "") if isinstance(body, dict) else ""
        if status == 429:
            raise _retry(f"HTTP 429 {error or 'Too Many Requests'}", self._suspension(response, where, error))
        if status == 403 and _FREQUENCY.search(error):
            raise _retry(error, self._suspension(response, where, error))
        if status >= 500:
            raise _retry(f"HTTP {status}{': ' + error if error else ''}", self._suspension(response, where, error))
        if status in (401, 403):
            raise ExplorerAuthError(
                f"TronGrid {where}: HTTP {status} {self._redact(error) or 'refused'}; check {KEY_HEADER} (the API key)"
            )
        if status >= 400:
            raise ExplorerError(f"TronGrid {where}: HTTP {status}: {self._redact(error) or snippet(response.text)}")
        if not isinstance(body, dict):
            raise ExplorerResponseError(f"TronGrid {where}: the answer is not a JSON object: {snippet(response.text)}")
        if body.get("success") is False:
            raise ExplorerError(f"TronGrid {where}: {self._redact(error) or snippet(body)}")
        data, meta = body.get("data"), body.get("meta")
        if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
            raise ExplorerResponseError(f"TronGrid {where}: 'data' is not a list of rows: {snippet(data)}")
        fingerprint = meta.get("fingerprint") if isinstance(meta, dict) else None
        return data, (str(fingerprint) if fingerprint else None)

    def _suspension(self, response: httpx.Response, where: str, error: str) -> float | None:
        """Retry-After, or the suspension TronGrid's frequency-limit answer names, whichever is longer."""
        wait = retry_after_header(response)
        suspended = _SUSPENDED.search(error)
        if suspended:
            wait = max(wait or 0.0, float(suspended.group(1)))
        return self._capped_wait(wait, where)


# --- rows → transfers ---------------------------------------------------------------------------------------


def _tx_hash(value: object, where: str) -> str:
    if isinstance(value, str) and _HEX_TX.match(value):
        return "0x" + value.removeprefix("0x").lower()
    raise ExplorerResponseError(f"TronGrid {where}: {snippet(value, 70)} is not a transaction id")


def _address(value: object, where: str) -> str:
    """A row's address (`41…` hex in transactions, `T…` in TRC-20 rows) in `T…` form."""
    if isinstance(value, str):
        try:
            return parse_address(value) if value[:1] == "T" else tron_from_hex(value)
        except (ValueError, InvalidAddress):
            pass
    raise ExplorerResponseError(f"TronGrid {where}: {snippet(value, 50)} is not a TRON address")


def _int(value: object, what: str, where: str) -> int:
    if isinstance(value, bool):
        raise ExplorerResponseError(f"TronGrid {where}: {what}={value!r} is not an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        number = int(value)
    else:
        raise ExplorerResponseError(f"TronGrid {where}: {what}={snippet(value, 40)} is not an integer")
    if number < 0:
        raise ExplorerResponseError(f"TronGrid {where}: {what}={number} is negative")
    return number


def _map_transactions(
    chain: str, rows: Sequence[Mapping[str, Any]], blocks: dict[str, int]
) -> tuple[tuple[Transfer, ...], tuple[str, ...]]:
    """TRX transfers of `/transactions` rows, and notes on the rows not used; `blocks` gets every transaction's
    block number."""
    out: dict[str, Transfer] = {}
    internal = failed = other = 0
    kinds: dict[str, int] = {}
    for row in rows:
        if "internal_tx_id" in row:
            internal += 1
            continue
        tx_hash = _tx_hash(row.get("txID"), "a transaction row")
        where = f"transaction {tx_hash[2:]}"
        blocks[tx_hash] = _int(row.get("blockNumber"), "blockNumber", where)
        contracts = (row.get("raw_data") or {}).get("contract") or []
        if not isinstance(contracts, list) or not contracts or not isinstance(contracts[0], dict):
            raise ExplorerResponseError(f"TronGrid {where}: raw_data.contract is missing")
        contract = contracts[0]
        kind = str(contract.get("type") or "")
        value = ((contract.get("parameter") or {}).get("value")) or {}
        ret = row.get("ret") or [{}]
        result = str((ret[0] if isinstance(ret, list) and ret and isinstance(ret[0], dict) else {}).get("contractRet"))
        if kind == "TransferContract":
            amount, recipient = value.get("amount"), value.get("to_address")
        elif kind == "TriggerSmartContract":
            amount, recipient = value.get("call_value", 0), value.get("contract_address")
        else:
            other += 1
            kinds[kind or "?"] = kinds.get(kind or "?", 0) + 1
            continue
        # A TransferContract in a block succeeded; a contract call that reverted paid nothing.
        if result not in ("SUCCESS", "None") and kind == "TriggerSmartContract":
            failed += 1
            continue
        amount = _int(amount, "amount", where)
        if amount == 0:
            continue
        out[tx_hash] = Transfer(
            chain=chain,
            block_number=blocks[tx_hash],
            block_hash="",
            timestamp=_int(row.get("block_timestamp"), "block_timestamp", where) // 1000,
            tx_hash=tx_hash,
            kind=TransferKind.NATIVE,
            position="tx",
            from_addr=_address(value.get("owner_address"), where),
            to_addr=_address(recipient, where),
            value=amount,
            decimals=6,
            symbol="TRX",
            source=SOURCE,
        )
    notes = []
    if internal:
        notes.append(
            f"TronGrid {TronGridAction.TRANSACTIONS}: {internal} internal-transaction row(s) not used (internal TRX "
            "transfers are not covered on TRON)"
        )
    if other:
        listed = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        notes.append(
            f"TronGrid {TronGridAction.TRANSACTIONS}: {other} transaction(s) of other types not used ({listed}); "
            "TRC-10 transfers and staking are not covered"
        )
    if failed:
        notes.append(f"TronGrid {TronGridAction.TRANSACTIONS}: {failed} failed contract call(s) moved nothing")
    return tuple(out.values()), tuple(notes)


def _map_trc20(chain: str, rows: Sequence[Mapping[str, Any]]) -> tuple[tuple[Transfer, ...], tuple[str, ...]]:
    """TRC-20 transfers of `/transactions/trc20` rows (block number 0 until placed), and notes."""
    out: list[Transfer] = []
    ordinals: dict[str, int] = {}
    seen: set[tuple[str, str, str, str, str]] = set()
    others = 0
    for row in rows:
        tx_hash = _tx_hash(row.get("transaction_id"), "a TRC-20 row")
        where = f"TRC-20 transfer in {tx_hash[2:]}"
        if str(row.get("type") or "Transfer") != "Transfer":
            others += 1
            continue
        info = row.get("token_info") or {}
        if not isinstance(info, dict):
            raise ExplorerResponseError(f"TronGrid {where}: token_info is not an object")
        token = _address(info.get("address"), where)
        src, dst = _address(row.get("from"), where), _address(row.get("to"), where)
        value = _int(row.get("value"), "value", where)
        identity = (tx_hash, token, src, dst, str(value))
        if identity in seen:
            continue  # the same row on two pages (a page boundary moved)
        seen.add(identity)
        ordinals[tx_hash] = ordinals.get(tx_hash, 0) + 1
        digits = info.get("decimals")
        decimals = digits if isinstance(digits, int) and 0 <= digits <= 255 else None
        symbol = str(info.get("symbol") or "")[:32] or None
        out.append(
            Transfer(
                chain=chain,
                block_number=0,
                block_hash="",
                timestamp=_int(row.get("block_timestamp"), "block_timestamp", where) // 1000,
                tx_hash=tx_hash,
                kind=TransferKind.ERC20,
                position=f"log:#{ordinals[tx_hash]}",
                from_addr=src,
                to_addr=dst,
                value=value,
                token=token,
                decimals=decimals,
                symbol=symbol,
                source=SOURCE,
            )
        )
    notes = [
        f"TronGrid {TronGridAction.TRC20}: positions are ordinals within the transaction (TronGrid gives no log "
        "index); the same transfer indexed from a node is keyed by its log index"
    ]
    if others:
        notes.append(f"TronGrid {TronGridAction.TRC20}: {others} row(s) of other events (not Transfer) not used")
    return tuple(out), tuple(notes) if out else tuple(notes[1:])
