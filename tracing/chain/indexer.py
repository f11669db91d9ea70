"""Filling the local transfer index from a chain source, block range by block range.

Resumable: ranges already in `indexed_range` for the chain are skipped, and a range is marked only after its
transfers are stored. Idempotent: `TransferIndex.add` skips transfers it already holds. Blocks are fetched in
batches with bounded concurrency while the previous batch is written.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from tracing.chain.index import IndexedRange, TransferIndex
from tracing.chain.mappers import BlockTransfers, ContractLogs, InternalSource, RawLog
from tracing.chain.utxo_store import UtxoStore
from tracing.errors import SourceError

log = logging.getLogger(__name__)

SOURCE = "rpc"
"""The `source` of indexed ranges and transfers written by this indexer."""
CONCURRENCY = 8
"""Blocks in flight."""
BLOCKS_PER_REQUEST = 4
"""Blocks per fetch from a source with `fetch_blocks` (one JSON-RPC batch of their calls)."""


class BlockSource(Protocol):
    """What the indexer needs from a chain source (`tracing.chain.rpc.RpcSource` is one)."""

    async def fetch_block(self, number: int, *, token_meta: bool = True) -> BlockTransfers: ...


class LogSource(Protocol):
    """A source that also gives the raw logs of some contracts over a block range (`RpcSource.logs`)."""

    async def logs(self, contracts: Sequence[str], first: int, last: int) -> list[RawLog]: ...


async def fetch_range(
    source: BlockSource, first: int, last: int, *, concurrency: int, blocks_per_request: int = 1
) -> tuple[list[BlockTransfers], SourceError | None]:
    """The blocks first..last in order, up to the first that failed, and that failure (if any).

    At most `concurrency` blocks are in flight. From a source that also has `fetch_blocks(numbers, *, token_meta)`
    (`tracing.chain.rpc.RpcSource`: their calls in one JSON-RPC batch; per block its BlockTransfers or SourceError),
    with `blocks_per_request` > 1, blocks are fetched that many at a time (consecutive ones),
    concurrency // blocks_per_request fetches in flight (at least one)."""
    many = getattr(source, "fetch_blocks", None) if blocks_per_request > 1 else None
    semaphore = asyncio.Semaphore(max(1, concurrency // blocks_per_request) if many else concurrency)

    async def one(number: int) -> list[BlockTransfers | BaseException]:
        async with semaphore:
            try:
                return [await source.fetch_block(number)]
            except SourceError as exc:
                return [exc]

    async def group(numbers: Sequence[int]) -> list[BlockTransfers | BaseException]:
        assert many is not None
        async with semaphore:
            return list(await many(numbers))

    if many is None:
        parts = await asyncio.gather(*(one(n) for n in range(first, last + 1)))
    else:
        starts = range(first, last + 1, blocks_per_request)
        parts = await asyncio.gather(*(group(range(a, min(last, a + blocks_per_request - 1) + 1)) for a in starts))
    blocks: list[BlockTransfers] = []
    for result in (r for part in parts for r in part):
        if isinstance(result, SourceError):
            return blocks, result
        if isinstance(result, BaseException):
            raise result
        blocks.append(result)
    return blocks, None


class IndexingFailed(SourceError):
    """A block could not be indexed; the blocks before it in the batch were stored and marked."""


@dataclass(frozen=True, slots=True)
class IndexReport:
    """What one `Indexer.run` did."""

    chain: str
    first: int
    last: int
    blocks_indexed: int
    blocks_skipped: int
    transfers_seen: int
    transfers_added: int
    skipped_logs: int
    failed_txs: int
    skipped_frames: int
    unknown_status: int
    internal: tuple[str, ...]
    seconds: float
    notes: tuple[str, ...] = field(default=())

    @property
    def blocks_per_second(self) -> float:
        return self.blocks_indexed / self.seconds if self.seconds > 0 else 0.0


def missing_ranges(first: int, last: int, done: Sequence[IndexedRange]) -> list[tuple[int, int]]:
    """The parts of [first, last] not covered by `done` (any order, may overlap)."""
    gaps: list[tuple[int, int]] = []
    cursor = first
    for r in sorted(done, key=lambda r: r.from_block):
        if r.to_block < cursor:
            continue
        if r.from_block > last:
            break
        if r.from_block > cursor:
            gaps.append((cursor, min(last, r.from_block - 1)))
        cursor = max(cursor, r.to_block + 1)
        if cursor > last:
            break
    if cursor <= last:
        gaps.append((cursor, last))
    return gaps


def range_coverage(blocks: Sequence[BlockTransfers]) -> str:
    """One internal-coverage word for consecutive blocks: the common trace source, else `partial`."""
    sources = {b.coverage.internal.value for b in blocks}
    if len(sources) == 1:
        return sources.pop()
    return "partial" if sources else InternalSource.UNAVAILABLE.value


@dataclass
class _Tally:
    indexed: int = 0
    seen: int = 0
    added: int = 0
    skipped_logs: int = 0
    failed_txs: int = 0
    skipped_frames: int = 0
    unknown_status: int = 0
    internal: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def count(self, blocks: Sequence[BlockTransfers], added: int) -> None:
        self.indexed += len(blocks)
        self.added += added
        for b in blocks:
            self.seen += len(b.transfers)
            self.skipped_logs += b.coverage.skipped_logs
            self.failed_txs += b.coverage.failed_txs
            self.skipped_frames += b.coverage.skipped_frames
            self.unknown_status += b.coverage.unknown_status
            self.internal.add(b.coverage.internal.value)
            for note in b.coverage.notes:
                if len(self.notes) < 20:
                    self.notes.append(note)


class Indexer:
    """Indexes a block range of one chain from `source` into `index`.

    `batch_size` blocks are fetched at a time with at most `concurrency` in flight, `blocks_per_request` per
    request where the source can (see `fetch_range`); each batch is written (and its range marked) in a worker
    thread while the next one is fetched.

    `watched_contracts` and `on_logs`: for each stored batch, every log of those contracts in its blocks is read
    (`eth_getLogs`, through `source.logs`), given its block's time, and handed to `on_logs` as `ContractLogs` before
    the range is marked, batch after batch in block order, so a contract's other events (a stablecoin's blacklist,
    say) are seen for exactly the blocks indexed; an error in `on_logs` leaves the range unmarked.
    """

    def __init__(
        self,
        index: TransferIndex,
        source: BlockSource,
        chain: str,
        *,
        chain_id: int | None = None,
        batch_size: int = 100,
        concurrency: int = CONCURRENCY,
        blocks_per_request: int = BLOCKS_PER_REQUEST,
        watched_contracts: Sequence[str] = (),
        on_logs: Callable[[ContractLogs], None] | None = None,
    ) -> None:
        if (watched_contracts and on_logs is None) or (on_logs is not None and not watched_contracts):
            raise ValueError("watched_contracts and on_logs go together")
        if watched_contracts and not callable(getattr(source, "logs", None)):
            raise ValueError("the source gives no contract logs (it has no `logs` method)")
        if batch_size < 1 or concurrency < 1 or blocks_per_request < 1:
            raise ValueError("batch_size, concurrency and blocks_per_request must be at least 1")
        self.index = index
        self.source = source
        self.chain = chain
        self.chain_id = chain_id
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.blocks_per_request = blocks_per_request
        self.watched_contracts = tuple(watched_contracts)
        self.on_logs = on_logs

    def todo(self, first: int, last: int) -> list[tuple[int, int]]:
        """The sub-ranges of [first, last] not yet indexed for this chain."""
        return missing_ranges(first, last, [r for r in self.index.ranges(self.chain) if r.source == SOURCE])

    async def run(self, first: int, last: int, progress: Callable[[int], None] | None = None) -> IndexReport:
        """Index blocks first..last (inclusive), skipping ranges already done. `progress(n)` is called as n more
        blocks are done (skipped ones included). Raises IndexingFailed at the first block that fails, after
        storing every block fetched before it."""
        if first < 0 or last < first:
            raise ValueError(f"bad block range {first}..{last}")
        started = time.perf_counter()
        todo = self.todo(first, last)
        total = last - first + 1
        skipped = total - sum(b - a + 1 for a, b in todo)
        if progress and skipped:
            progress(skipped)
        tally = _Tally()
        writing: asyncio.Task[int] | None = None
        pending: list[BlockTransfers] = []
        try:
            for start, end in todo:
                for batch_start in range(start, end + 1, self.batch_size):
                    batch_end = min(end, batch_start + self.batch_size - 1)
                    blocks, error = await self._fetch(batch_start, batch_end)
                    logs = await self._contract_logs(blocks)
                    if writing is not None:
                        tally.count(pending, await writing)
                    pending, writing = blocks, asyncio.create_task(self._store_async(blocks, progress, logs))
                    if error is not None:
                        tally.count(pending, await writing)
                        writing = None
                        raise IndexingFailed(
                            f"{error} — stopped there; {tally.indexed} block(s) stored, run again to resume"
                        ) from error
            if writing is not None:
                tally.count(pending, await writing)
                writing = None
        finally:
            if writing is not None:
                await asyncio.shield(writing)
        return IndexReport(
            chain=self.chain,
            first=first,
            last=last,
            blocks_indexed=tally.indexed,
            blocks_skipped=skipped,
            transfers_seen=tally.seen,
            transfers_added=tally.added,
            skipped_logs=tally.skipped_logs,
            failed_txs=tally.failed_txs,
            skipped_frames=tally.skipped_frames,
            unknown_status=tally.unknown_status,
            internal=tuple(sorted(tally.internal)),
            seconds=time.perf_counter() - started,
            notes=tuple(tally.notes),
        )

    async def _fetch(self, first: int, last: int) -> tuple[list[BlockTransfers], SourceError | None]:
        """The blocks first..last in order, up to the first that failed, and that failure (if any)."""
        return await fetch_range(
            self.source, first, last, concurrency=self.concurrency, blocks_per_request=self.blocks_per_request
        )

    async def _contract_logs(self, blocks: Sequence[BlockTransfers]) -> ContractLogs | None:
        """The watched contracts' logs in the blocks' range (None when no contract is watched or no block came)."""
        if not self.watched_contracts or not blocks:
            return None
        source: LogSource = self.source  # type: ignore[assignment]  # checked in __init__
        first, last = blocks[0].number, blocks[-1].number
        found = await source.logs(self.watched_contracts, first, last)
        # each log gets its block's time from the blocks just fetched (TRON's /jsonrpc puts none in a log)
        times = {b.number: b.timestamp for b in blocks}
        timed = (
            item if item.timestamp is not None else replace(item, timestamp=times.get(item.block_number))
            for item in found
        )
        return ContractLogs(self.chain, first, last, self.watched_contracts, tuple(timed))

    async def _store_async(
        self,
        blocks: Sequence[BlockTransfers],
        progress: Callable[[int], None] | None,
        logs: ContractLogs | None = None,
    ) -> int:
        added = await asyncio.to_thread(self._store, blocks, logs)
        if progress is not None and blocks:
            progress(len(blocks))
        return added

    def _store(self, blocks: Sequence[BlockTransfers], logs: ContractLogs | None = None) -> int:
        """Write the transfers of consecutive blocks, hand over the watched contracts' logs, then mark their range
        (so a crash, or a failing `on_logs`, leaves it unmarked)."""
        if not blocks:
            return 0
        utxo_txs = [tx for b in blocks for tx in b.utxo_txs]
        if utxo_txs:
            UtxoStore(self.index.db).add(utxo_txs, source=SOURCE)
        added = self.index.add(t for b in blocks for t in b.transfers)
        if logs is not None and self.on_logs is not None:
            self.on_logs(logs)
        self.index.mark_indexed(
            self.chain,
            SOURCE,
            blocks[0].number,
            blocks[-1].number,
            chain_id=self.chain_id,
            internal=range_coverage(blocks),
        )
        return added
