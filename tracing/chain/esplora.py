"""An Esplora REST API (Blockstream's esplora/electrs, mempool.space's API) as an on-demand bitcoin source: the
confirmed history of one address, a transaction, a block's transactions, the tip height.

History paging as Esplora does it: `/address/:a/txs` answers up to 50 mempool transactions and then the newest 25
confirmed ones; `/address/:a/txs/chain/:last_seen_txid` the 25 confirmed ones before `last_seen_txid`, until a
page holds fewer than 25. Mempool transactions are left out (they may never confirm) and the history says how many.
`max_txs` (500: 20 pages, a few seconds against a public Esplora, inside `EXPLORER_BUDGET`) caps the history (a
service's address has millions): the newest are kept and the history says it was cut.

Calls go through an `ExplorerRateLimit` (per base URL), and HTTP 429 (honouring Retry-After), 5xx and dropped
connections are retried with back-off; after the retries the error is an `ExplorerError` (a guard rests the source),
while a 4xx answer (a malformed address, an unknown transaction) is an `ExplorerResponseError`. Inside a command the
client sits behind `tracing.chain.guard` like the EVM explorer (`EXPLORER_BUDGET` seconds per address).

An address's transactions become transfers by `tracing.chain.utxo_transfers` (proportional allocation unless told
otherwise); `EsploraHistory` holds both, with what was fetched.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from tracing.chain.esplora_mappers import is_confirmed, map_esplora_tx
from tracing.chain.history_http import ExplorerError, ExplorerRateLimit, ExplorerResponseError, HistoryHttpClient, Retry
from tracing.chain.transfer import Transfer
from tracing.chain.utxo import UtxoTx
from tracing.chain.utxo_transfers import Allocation, derive_transfers

log = logging.getLogger(__name__)

SOURCE = "esplora"
PAGE = 25
"""Confirmed transactions per page of `/address/:a/txs[/chain/:last_seen_txid]` and of `/block/:hash/txs/:start`."""
DEFAULT_CALLS_PER_SECOND = 10.0


@dataclass(frozen=True, slots=True)
class EsploraHistory:
    """The confirmed transactions of one address from Esplora, the transfers derived from them, and what was
    fetched and left out."""

    chain: str
    address: str
    txs: tuple[UtxoTx, ...]
    transfers: tuple[Transfer, ...]
    allocation: Allocation
    requests: int
    pages: int
    mempool_skipped: int
    complete: bool
    cuts: tuple[str, ...] = ()

    @property
    def notes(self) -> tuple[str, ...]:
        head = (
            f"esplora: {len(self.txs)} confirmed transactions of {self.address} in {self.pages} page(s), "
            f"{self.requests} request(s), {'complete' if self.complete else 'INCOMPLETE'}; {self.allocation.rule}"
        )
        mempool = (
            (f"{self.mempool_skipped} unconfirmed (mempool) transaction(s) left out",) if self.mempool_skipped else ()
        )
        return (head, *mempool, *self.cuts)


class EsploraClient(HistoryHttpClient):
    """One Esplora API (`base_url`, e.g. `https://blockstream.info/api`) for the bitcoin chain `chain`."""

    label = "esplora"

    def __init__(
        self,
        base_url: str,
        *,
        chain: str = "btc",
        symbol: str = "BTC",
        calls_per_second: float = DEFAULT_CALLS_PER_SECOND,
        max_txs: int = 500,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 60.0,
        timeout: float = 20.0,
        allocation: Allocation = Allocation.PROPORTIONAL,
        limiter: ExplorerRateLimit | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        if max_txs < 1:
            raise ValueError("max_txs must be at least 1")
        super().__init__(
            api_key="",
            limiter=limiter or ExplorerRateLimit.per_second(calls_per_second, margin=0.05),
            http=http,
            timeout=timeout,
            headers={"User-Agent": "chainsleuth"},
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
            max_retry_after=max_retry_after,
        )
        self.base_url = base_url.rstrip("/")
        self.chain = chain
        self.symbol = symbol
        self.max_txs = max_txs
        self.allocation = allocation

    # --- calls ---

    async def tip_height(self) -> int:
        text = await self._get("/blocks/tip/height", "tip height", text=True)
        try:
            return int(str(text).strip())
        except ValueError:
            raise ExplorerResponseError(f"esplora tip height: not a number: {str(text)[:40]}") from None

    async def transaction(self, txid: str) -> UtxoTx:
        return map_esplora_tx(await self._get(f"/tx/{txid}", f"tx {txid}"), self.chain)

    async def block_txs(self, block_hash: str, start: int = 0) -> list[UtxoTx]:
        """Up to 25 transactions of a block from index `start` (a multiple of 25), with their positions; the block's
        height and time are read from `/block/:hash` once per call."""
        if start % PAGE:
            raise ValueError(f"start must be a multiple of {PAGE}, not {start}")
        header = await self._get(f"/block/{block_hash}", f"block {block_hash}")
        rows = await self._get(f"/block/{block_hash}/txs/{start}", f"block {block_hash} txs from {start}")
        if not isinstance(header, Mapping) or not isinstance(rows, list):
            raise ExplorerResponseError(f"esplora block {block_hash}: unexpected answer")
        height, when = header.get("height"), header.get("timestamp")
        return [
            map_esplora_tx(
                row,
                self.chain,
                block_height=height if isinstance(height, int) else None,
                block_hash=block_hash,
                timestamp=when if isinstance(when, int) else None,
                position=start + k,
            )
            for k, row in enumerate(rows)
            if isinstance(row, Mapping)
        ]

    async def address_txs(self, address: str) -> tuple[list[UtxoTx], int, int, int, bool]:
        """(confirmed transactions newest first, pages, requests, mempool transactions left out, complete)."""
        before = self.requests
        rows = await self._list(f"/address/{address}/txs", f"address {address} txs")
        mempool = sum(1 for r in rows if not is_confirmed(r))
        confirmed = [r for r in rows if is_confirmed(r)]
        txs = [map_esplora_tx(r, self.chain) for r in confirmed]
        pages, last_page = 1, len(confirmed)
        while last_page >= PAGE and len(txs) < self.max_txs:
            last_seen = txs[-1].txid
            rows = await self._list(
                f"/address/{address}/txs/chain/{last_seen}", f"address {address} txs after {last_seen}"
            )
            page = [map_esplora_tx(r, self.chain) for r in rows if is_confirmed(r)]
            pages, last_page = pages + 1, len(page)
            txs.extend(page)
        complete = last_page < PAGE and len(txs) <= self.max_txs
        return txs[: self.max_txs], pages, self.requests - before, mempool, complete

    async def transfers_of(self, address: str, **_: Any) -> EsploraHistory:
        """The address's confirmed history and the transfers derived from it (all of each transaction's transfers,
        not only the address's own: the trace takes what it needs)."""
        txs, pages, requests, mempool, complete = await self.address_txs(address)
        txs.reverse()  # oldest first
        transfers = tuple(
            t for tx in txs for t in derive_transfers(tx, self.allocation, symbol=self.symbol, source=SOURCE).transfers
        )
        cuts = () if complete else (f"esplora: history of {address} cut at its newest {self.max_txs} transactions",)
        return EsploraHistory(
            self.chain, address, tuple(txs), transfers, self.allocation, requests, pages, mempool, complete, cuts
        )

    # --- HTTP ---

    async def _list(self, path: str, where: str) -> list[Mapping[str, Any]]:
        body = await self._get(path, where)
        if not isinstance(body, list) or not all(isinstance(row, Mapping) for row in body):
            raise ExplorerResponseError(f"esplora {where}: expected a list of transactions")
        return body

    async def _get(self, path: str, where: str, *, text: bool = False) -> Any:
        return await self._retrying(lambda: self._request(path, where, text), where)

    def _give_up(self, retry: Retry, where: str) -> ExplorerError:
        return ExplorerError(f"esplora {where}: {retry.reason} after {self.max_retries + 1} attempts")

    async def _request(self, path: str, where: str, text: bool) -> Any:
        response = await self._send(self.base_url + path)
        status = response.status_code
        if status == 429:
            raise Retry("HTTP 429 Too Many Requests", wait=self._retry_after(response, where))
        if status >= 500:
            raise Retry(f"HTTP {status}", wait=self._retry_after(response, where))
        if status >= 400:
            raise ExplorerResponseError(f"esplora {where}: HTTP {status}: {response.text.strip()[:120]}")
        if text:
            return response.text
        try:
            return response.json()
        except ValueError:
            raise ExplorerResponseError(f"esplora {where}: the answer is not JSON: {response.text[:120]}") from None
