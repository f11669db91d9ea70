"""Reading Tether's freezes from a chain: the USDT contract's blacklist logs of a block range, over JSON-RPC
`eth_getLogs` (TRON's `/jsonrpc`, or any EVM node such as anvil in the tests), decoded by `labels.freezes` and
recorded as labels part by part, with a cursor in the store so that the next run goes on where this one stopped.
The logs a caller already holds (the indexer's `ContractLogs` of the blocks it indexed, the watcher's of the blocks
it confirmed) are recorded the same way by `record_freeze_logs`, without reading them again.

The cursor is the last block of an unbroken run of blocks whose freezes were read: a read that starts after a gap
(or ends before the cursor) leaves it where it is, so `chainsleuth labels tether-freezes` without `--from-block`
never skips blocks that nobody read.

TRON's `/jsonrpc` speaks Ethereum's shapes: 20-byte `0x` addresses (the contract's `T…` form is sent as its 20
bytes, and the addresses in the logs come back as `T…`), block times in `eth_getBlockByNumber`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from storage import KeyValueRow, utcnow
from tracing.chain import ContractLogs, RawLog, tron_to_hex
from tracing.chain.rpc import ChainIdMismatch, JsonRpcClient
from tracing.errors import SourceError
from tracing.labels.book import LabelBook
from tracing.labels.freezes import (
    CHAIN,
    TOPICS,
    USDT_TRC20,
    FreezeEvent,
    FreezeLogError,
    decode_freeze_log,
    log_timestamp,
    record_freezes,
)

STEP = 2_000
"""Blocks per `eth_getLogs` call (public TRON nodes refuse wide ranges)."""
MAX_NOTES = 5


@dataclass
class FreezeScan:
    """What one read of a block range found and did."""

    chain: str
    contract: str
    first: int
    last: int
    events: int = 0
    skipped: int = 0
    notes: list[str] = field(default_factory=list)
    states: dict[str, bool] = field(default_factory=dict)
    """Per address concerned: whether it is frozen now (False: the freeze was lifted)."""

    @property
    def addresses(self) -> int:
        return len(self.states)

    @property
    def frozen(self) -> int:
        return sum(self.states.values())

    @property
    def lifted(self) -> int:
        return len(self.states) - self.frozen

    def words(self) -> str:
        """`tron: blocks 1-5000 of TR7N…: 3 blacklist events, 2 addresses (1 frozen, 1 lifted)`."""
        text = (
            f"{self.chain}: blocks {self.first}-{self.last} of {self.contract}: {self.events} blacklist event"
            f"{'s' if self.events != 1 else ''}, {self.addresses} address{'es' if self.addresses != 1 else ''} "
            f"({self.frozen} frozen, {self.lifted} lifted)"
        )
        return text + (f"; {self.skipped} unreadable log(s) skipped" if self.skipped else "")


def cursor_key(chain: str, contract: str) -> str:
    return f"tether-freezes:{chain}:{contract}"


def read_cursor(book: LabelBook, chain: str, contract: str = USDT_TRC20) -> int | None:
    """The last block whose freezes were read on `chain` (None: never read)."""
    with book.db.session() as session:
        row = session.get(KeyValueRow, cursor_key(chain, contract))
        value = row.value.get("last_block") if row is not None else None
        return int(str(value)) if value is not None else None


def advance_cursor(book: LabelBook, chain: str, contract: str, first: int, last: int) -> int | None:
    """Record that blocks `first`..`last` were read: the cursor moves to `last` when the range joins the unbroken run
    it ends (or there is no cursor yet); a range after a gap, or within the run, leaves it. Returns the cursor."""
    held = read_cursor(book, chain, contract)
    if held is not None and (first > held + 1 or last <= held):
        return held
    _write_cursor(book, chain, contract, last)
    return last


def _write_cursor(book: LabelBook, chain: str, contract: str, last: int) -> None:
    table = KeyValueRow.__table__  # type: ignore[attr-defined]
    stmt = (postgresql if book.db.dialect == "postgresql" else sqlite).insert(table)
    stmt = stmt.values(key=cursor_key(chain, contract), value={"last_block": last}, updated_at=utcnow())
    with book.db.session() as session:
        session.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": stmt.excluded.value}))


async def head(client: JsonRpcClient) -> int:
    return int(str(await client.call("eth_blockNumber", [])), 16)


async def fetch_freezes(
    client: JsonRpcClient, contract: str, first: int, last: int
) -> tuple[list[FreezeEvent], int, list[str]]:
    """The blacklist events of `contract` (a `T…` address) in blocks `first`..`last` (one `eth_getLogs` call),
    with the count of unreadable logs and notes on them."""
    logs = await client.call(
        "eth_getLogs",
        [{"address": tron_to_hex(contract), "fromBlock": hex(first), "toBlock": hex(last), "topics": [list(TOPICS)]}],
        where=f"blocks {first}-{last}",
    )
    if not isinstance(logs, list):
        raise SourceError(f"eth_getLogs for blocks {first}-{last} did not answer a list of logs.")
    untimed = {_block(log) for log in logs if isinstance(log, dict) and _untimed(log)}
    times = await _block_times(client, sorted(b for b in untimed if b is not None))
    return _decode_logs(logs, times)


def _decode_logs(logs: Sequence[object], times: Mapping[int, int]) -> tuple[list[FreezeEvent], int, list[str]]:
    """The freeze events of `eth_getLogs` items (`times`: block times for those without their own), with the count
    of unreadable blacklist logs and notes on them."""
    events: list[FreezeEvent] = []
    notes: list[str] = []
    skipped = 0
    for log in logs:
        try:
            if not isinstance(log, dict):
                raise FreezeLogError("a log that is not an object")
            event = _decode(log, times)
        except FreezeLogError as exc:
            skipped += 1
            if len(notes) < MAX_NOTES:
                notes.append(f"block {_block(log) if isinstance(log, dict) else '?'}: {exc}")
            continue
        if event is not None:
            events.append(event)
    return events, skipped, notes


def _untimed(log: dict[str, Any]) -> bool:
    """Whether the log lacks a usable block time of its own (its block's must be asked for)."""
    try:
        return log_timestamp(log) is None
    except FreezeLogError:
        return True


def _block(log: dict[str, Any]) -> int | None:
    raw = log.get("blockNumber")
    try:
        return int(str(raw), 16)
    except ValueError:
        return None


def _decode(log: dict[str, Any], times: Mapping[int, int]) -> FreezeEvent | None:
    number = _block(log)
    return decode_freeze_log(log, times.get(number) if number is not None else None)


async def _block_times(client: JsonRpcClient, numbers: Sequence[int]) -> dict[int, int]:
    if not numbers:
        return {}
    answers = await client.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers], where="block times")
    times: dict[int, int] = {}
    for number, block in zip(numbers, answers, strict=True):
        if isinstance(block, dict) and block.get("timestamp") is not None:
            times[number] = int(str(block["timestamp"]), 16)
    return times


async def collect_freezes(
    book: LabelBook,
    rpc_urls: Sequence[str],
    first: int,
    last: int | None,
    *,
    chain: str = CHAIN,
    contract: str = USDT_TRC20,
    step: int = STEP,
    rpc_timeout: float = 30.0,
    chain_id: int | None = None,
    progress: Callable[[int], object] | None = None,
) -> FreezeScan:
    """Read the blacklist events of `contract` in blocks `first`..`last` (None: the head) from the JSON-RPC node(s)
    and record them as labels of `chain`, `step` blocks at a time; the cursor moves after each part, so an
    interrupted read goes on from there. With `chain_id`, a node that answers another chain id is refused
    (`ChainIdMismatch`) before anything is read."""
    client = JsonRpcClient(rpc_urls, timeout=rpc_timeout)
    try:
        if chain_id is not None:  # a testnet's (or another chain's) freezes must not become this chain's labels
            answered = int(str(await client.call("eth_chainId", [])), 16)
            if answered != chain_id:
                raise ChainIdMismatch(
                    f"The node answers chain id {answered}, not {chain_id} ({chain}): no freezes were read."
                )
        end = await head(client) if last is None else last
        scan = FreezeScan(chain, contract, first, end)
        for start in range(first, end + 1, max(1, step)):
            stop = min(end, start + max(1, step) - 1)
            _record(book, scan, await fetch_freezes(client, contract, start, stop), start, stop)
            if progress is not None:
                progress(stop - start + 1)
        return scan
    finally:
        await client.aclose()


def _log_json(log: RawLog) -> dict[str, Any]:
    """A RawLog in `eth_getLogs`'s shape, for `decode_freeze_log`."""
    found: dict[str, Any] = {
        "topics": list(log.topics),
        "data": log.data,
        "blockNumber": hex(log.block_number),
        "transactionHash": log.tx_hash,
        "logIndex": hex(log.log_index),
    }
    if log.timestamp is not None:
        found["blockTimestamp"] = hex(log.timestamp)
    return found


def freezes_in_logs(logs: Iterable[RawLog], contract: str) -> tuple[list[FreezeEvent], int, list[str]]:
    """The blacklist events among `logs` emitted by `contract` (a `T…` address; other contracts' logs and other
    events are passed over), with the count of unreadable blacklist logs and notes on them."""
    events, skipped, notes = _decode_logs([_log_json(log) for log in logs if log.address == contract], {})
    return [replace(event, contract=contract) for event in events], skipped, notes


def _record(
    book: LabelBook, scan: FreezeScan, part: tuple[list[FreezeEvent], int, list[str]], first: int, last: int
) -> None:
    """Record one part's events as labels, add it to `scan` and move the cursor over blocks `first`..`last`."""
    events, skipped, notes = part
    scan.skipped += skipped
    scan.notes.extend(notes[: max(0, MAX_NOTES - len(scan.notes))])
    scan.events += len(events)
    if events:
        recorded = record_freezes(book, events, scan.chain)
        scan.states.update({label.address: label.active for label in recorded.labels})
    advance_cursor(book, scan.chain, scan.contract, first, last)


def record_freeze_logs(
    book: LabelBook, logs: ContractLogs, contract: str = USDT_TRC20, *, scan: FreezeScan | None = None
) -> FreezeScan:
    """Record the blacklist events of `contract` among logs already read for blocks `logs.first`..`logs.last` (the
    indexer's or the watcher's, one read of the chain) as labels of `logs.chain`, and move the freeze cursor as
    `collect_freezes` does. Each log needs its block time (`RawLog.timestamp`); one without is skipped and noted.
    With `scan` (of earlier, lower blocks), this part is added to it and its span stretched to `logs.last`."""
    if scan is None:
        scan = FreezeScan(logs.chain, contract, logs.first, logs.last)
    scan.last = max(scan.last, logs.last)
    _record(book, scan, freezes_in_logs(logs.logs, contract), logs.first, logs.last)
    return scan
