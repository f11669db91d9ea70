"""Importing ethereum-etl CSV exports (transactions, token_transfers, traces, blocks) into the transfer index.

What analysts already have on disk from `ethereumetl export_blocks_and_transactions`, `export_token_transfers`
and `export_traces` becomes `Transfer`s with `source="etl"` and the keys the RPC mappers give, so the same
transfer from two sources is stored once:

- transactions.csv: the transaction's own value (`tx`), when above zero and not failed (`receipt_status` 0);
- token_transfers.csv: each ERC-20 transfer (`log:<log_index>`), zero-value ones included as the mappers do;
- traces.csv: internal calls with value (`trace:<a.b.c>`): call, create and suicide traces that succeeded, below
  the top level (the top-level trace is the transaction itself), DELEGATECALL/CALLCODE/STATICCALL left out;
- blocks.csv: block timestamps (and hashes) for the others; only `number` and `timestamp` are required.

For a TRON chain the same files as written by tronetl (c0mm4nd/tronetl, whose SCHEMA.md keeps ethereum-etl's
columns) are read: addresses as `T…` (or `41…` hex), transaction and block hashes with or without `0x` (stored with
it, as TRON's `/jsonrpc` gives them), timestamps in seconds or milliseconds (its two schema documents disagree; a
TRON timestamp past 10^11 is taken as milliseconds), a transaction's `status` (`SUCCESS`, `REVERT`, …) instead of
`receipt_status`, and of its transactions only TRX transfers (TransferContract) and TRX sent with contract calls
(TriggerSmartContract) where `transaction_type` says which; its trc10.csv and internal_transactions.csv are not
read (TRC-10 and internal TRX are not covered on TRON).

Files are recognised by header (or by name when the header lacks columns, to say which). blocks.csv is read
first and transactions.csv next whatever the argument order, because both give the block times that token
transfers and traces lack; blocks already in the index are looked up too. A bad row is reported with file and
line and skipped; a file with a missing column is refused whole; the other files are still imported. Files
are streamed and written in batches; the block table (about 200 bytes per block) is the only thing held.
"""

from __future__ import annotations

import csv
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from sqlmodel import col, select

from storage import Database, TransferRow
from tracing.chain.address import Family, normalise_address, parse_address, tron_from_hex
from tracing.chain.index import TransferIndex
from tracing.chain.transfer import Transfer, TransferKind
from tracing.errors import UserError

SOURCE = "etl"
BATCH_SIZE = 20_000
"""Transfers per write (one transaction each): larger batches amortise SQLite's page writes."""
MAX_ROW_ERRORS = 1000
"""Row errors kept per file (all are counted)."""

_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
_TRACE_ADDRESS = re.compile(r"\d+(,\d+)*")
_UINT256_LIMIT = 1 << 256
_UNKNOWN = -1
"""Placeholder timestamp of a transfer whose block time is still to be found."""

_Parser = Callable[[list[str]], "Transfer | str"]


class EtlFileKind(StrEnum):
    BLOCKS = "blocks"
    TRANSACTIONS = "transactions"
    TOKEN_TRANSFERS = "token_transfers"
    TRACES = "traces"


REQUIRED: Mapping[EtlFileKind, tuple[str, ...]] = {
    EtlFileKind.BLOCKS: ("number", "timestamp"),
    EtlFileKind.TRANSACTIONS: ("hash", "block_number", "from_address", "to_address", "value"),
    EtlFileKind.TOKEN_TRANSFERS: (
        "token_address",
        "from_address",
        "to_address",
        "value",
        "transaction_hash",
        "log_index",
        "block_number",
    ),
    EtlFileKind.TRACES: (
        "block_number",
        "transaction_hash",
        "from_address",
        "to_address",
        "value",
        "trace_type",
        "trace_address",
    ),
}
_ORDER = (EtlFileKind.BLOCKS, EtlFileKind.TRANSACTIONS, EtlFileKind.TOKEN_TRANSFERS, EtlFileKind.TRACES)
_NAME_HINTS = (  # token_transfers before transactions: "token_transfers" is not a transactions file
    ("token_transfers", EtlFileKind.TOKEN_TRANSFERS),
    ("transactions", EtlFileKind.TRANSACTIONS),
    ("traces", EtlFileKind.TRACES),
    ("blocks", EtlFileKind.BLOCKS),
)
_VALUE_TRACES = frozenset({"call", "create", "suicide"})
_NO_VALUE_CALLS = frozenset({"delegatecall", "callcode", "staticcall"})


# --- results ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowError:
    """A row that could not be imported, and why."""

    file: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass(frozen=True, slots=True)
class EtlFileResult:
    """What one file gave. `rows_read` counts data rows; each ends up added, already present, skipped (with
    the reason: zero value, failed, top-level trace, ...) or in error. `file_error` is set when the whole file
    was refused (unknown format, missing columns, unreadable); `errors` keeps the first `MAX_ROW_ERRORS`;
    `notes` are warnings that did not stop a row."""

    path: Path
    kind: EtlFileKind | None
    rows_read: int = 0
    transfers_added: int = 0
    already_present: int = 0
    blocks: int = 0
    skipped: Mapping[str, int] = field(default_factory=dict)
    errors: tuple[RowError, ...] = ()
    error_count: int = 0
    file_error: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def transfers(self) -> int:
        """Transfers the file holds (new or already in the index)."""
        return self.transfers_added + self.already_present


@dataclass(frozen=True, slots=True)
class EtlImportResult:
    chain: str
    files: tuple[EtlFileResult, ...]
    seconds: float

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def transfers_added(self) -> int:
        return sum(f.transfers_added for f in self.files)

    @property
    def errors(self) -> list[RowError]:
        return [e for f in self.files for e in f.errors]

    @property
    def error_count(self) -> int:
        return sum(f.error_count for f in self.files)

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    @property
    def imported_nothing(self) -> bool:
        """Nothing could be used: every file was refused, or rows were in error and none gave a transfer or a
        block time. (Re-importing a file, or one holding only zero-value rows, is not a failure.)"""
        if all(f.file_error for f in self.files):
            return True
        used = sum(f.transfers + f.blocks for f in self.files)
        return used == 0 and self.error_count > 0


# --- parsing ------------------------------------------------------------------------------------------------


class _BadRow(Exception):
    """A row that cannot be imported; the message is the reason shown with file:line."""


def _uint(text: str, what: str) -> int:
    if text.isascii() and text.isdigit():
        number = int(text)
        if number >= _UINT256_LIMIT:
            raise _BadRow(f"{what} {text[:20]}… does not fit in 256 bits")
        return number
    if not text:
        raise _BadRow(f"{what} is empty")
    raise _BadRow(f"{what} {text[:40]!r} is not a non-negative integer")


def _timestamp(text: str, what: str) -> int:
    """Unix seconds, or the `2015-08-07 03:30:33 UTC` form of BigQuery's public ethereum-etl tables."""
    if text.isascii() and text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.removesuffix(" UTC").replace(" ", "T"))
    except ValueError:
        raise _BadRow(f"{what} {text[:40]!r} is not a unix timestamp") from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def _column_address(text: str, what: str) -> str:
    address = normalise_address(text)
    if address is not None:
        return address
    raise _BadRow(f"{what} {text[:50]!r} is not an address" if text else f"{what} is empty")


def _tx_hash(text: str, what: str) -> str:
    if _HASH.fullmatch(text):
        return text.lower()
    raise _BadRow(f"{what} {text[:70]!r} is not a transaction hash" if text else f"{what} is empty")


_TRON_ADDRESS = re.compile(r"T[1-9A-HJ-NP-Za-km-z]{33}|(0x)?41[0-9a-fA-F]{40}")
_BARE_HASH = re.compile(r"[0-9a-fA-F]{64}")
_TRON_VALUE_TYPES = frozenset({"TransferContract", "TriggerSmartContract"})
_TRON_OK = frozenset({"", "SUCCESS", "1"})
_MILLISECONDS = 10**11
"""A unix time in seconds past this is after the year 5000: it is in milliseconds."""


def _tron_address(text: str, what: str) -> str:
    """A tronetl address column (`T…`, checked, or `41…` hex) in `T…` form."""
    if _TRON_ADDRESS.fullmatch(text):
        try:
            return parse_address(text) if text[:1] == "T" else tron_from_hex(text)
        except (UserError, ValueError):
            pass
    raise _BadRow(f"{what} {text[:50]!r} is not a TRON address" if text else f"{what} is empty")


def _tron_hash(text: str, what: str) -> str:
    """A TRON transaction or block hash, with or without `0x`, as `0x` + 64 lower-case hex."""
    if _BARE_HASH.fullmatch(text):
        return "0x" + text.lower()
    return _tx_hash(text, what)


def _tron_timestamp(text: str, what: str) -> int:
    seconds = _timestamp(text, what)
    return seconds // 1000 if seconds > _MILLISECONDS else seconds


def _kind_of(path: Path, header: Sequence[str]) -> EtlFileKind | None:
    """By header when it holds every required column of a kind, else by the file's name."""
    names = set(header)
    for kind in (EtlFileKind.TOKEN_TRANSFERS, EtlFileKind.TRACES, EtlFileKind.TRANSACTIONS, EtlFileKind.BLOCKS):
        if names.issuperset(REQUIRED[kind]):
            return kind
    stem = path.name.lower()
    for hint, kind in _NAME_HINTS:
        if hint in stem:
            return kind
    return None


# --- the import ---------------------------------------------------------------------------------------------


@dataclass
class _File:
    """Mutable tally of one file while it is read."""

    path: Path
    kind: EtlFileKind | None = None
    header: list[str] = field(default_factory=list)
    rows_read: int = 0
    added: int = 0
    present: int = 0
    blocks: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    file_error: str | None = None
    notes: list[str] = field(default_factory=list)

    def error(self, line: int, reason: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ROW_ERRORS:
            self.errors.append(RowError(self.path, line, reason))

    def result(self) -> EtlFileResult:
        return EtlFileResult(
            path=self.path,
            kind=self.kind,
            rows_read=self.rows_read,
            transfers_added=self.added,
            already_present=self.present,
            blocks=self.blocks,
            skipped=dict(self.skipped.most_common()),
            errors=tuple(self.errors),
            error_count=self.error_count,
            file_error=self.file_error,
            notes=tuple(self.notes),
        )


def expand_paths(paths: Sequence[Path]) -> list[Path]:
    """Files as given, and every `*.csv` below a directory (ethereum-etl writes partitioned trees)."""
    out: list[Path] = []
    for path in paths:
        out.extend(sorted(path.rglob("*.csv")) if path.is_dir() else [path])
    return out


def import_etl_files(
    db: Database,
    paths: Sequence[Path],
    chain: str = "eth",
    *,
    batch_size: int = BATCH_SIZE,
    family: Family = Family.EVM,
) -> EtlImportResult:
    """Import ethereum-etl CSV files (or directories of them; tronetl's for a TRON chain) into the transfer index
    of `chain`."""
    began = time.perf_counter()
    files = [_File(path) for path in expand_paths(paths)]
    for state in files:
        _classify(state)
    importer = _Importer(db, chain, batch_size, family)
    for kind in _ORDER:
        for state in files:
            if state.kind is kind and state.file_error is None:
                importer.read(state)
    return EtlImportResult(chain, tuple(s.result() for s in files), time.perf_counter() - began)


def _classify(state: _File) -> None:
    try:
        with state.path.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), None)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        state.file_error = f"{state.path}: cannot read: {exc}"
        return
    if not header:
        state.notes.append("empty file: nothing to import")  # ethereum-etl writes these for empty ranges
        return
    state.header = [name.strip().lower() for name in header]
    state.kind = _kind_of(state.path, state.header)
    if state.kind is None:
        state.file_error = (
            f"{state.path}: not an ethereum-etl blocks, transactions, token_transfers or traces file "
            f"(header: {', '.join(state.header[:8])}{', …' if len(state.header) > 8 else ''})"
        )
        return
    missing = [name for name in REQUIRED[state.kind] if name not in state.header]
    if missing:
        state.file_error = f"{state.path}: missing column(s) for {state.kind}.csv: {', '.join(missing)}"


def _set_field_limit() -> None:
    """Trace inputs and outputs can be megabytes of hex; the csv module's default cap is 128 KiB."""
    limit = sys.maxsize
    while True:
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 10


class _Importer:
    def __init__(self, db: Database, chain: str, batch_size: int, family: Family = Family.EVM) -> None:
        self.db = db
        self.chain = chain
        self.tron = family is Family.TRON
        self._address = _tron_address if self.tron else _column_address
        self._hash = _tron_hash if self.tron else _tx_hash
        self._time = _tron_timestamp if self.tron else _timestamp
        self.index = TransferIndex(db)
        self.batch_size = batch_size
        self.blocks: dict[int, tuple[int, str]] = {}
        """block number → (timestamp, block hash or "") from blocks.csv, transactions.csv and the index."""
        self.unknown_blocks: set[int] = set()
        _set_field_limit()

    def read(self, state: _File) -> None:
        columns = {name: i for i, name in enumerate(state.header)}
        try:
            if state.kind is EtlFileKind.BLOCKS:
                self._read_blocks(state, columns)
            else:
                self._read_transfers(state, columns)
        except (OSError, UnicodeDecodeError) as exc:
            state.file_error = f"{state.path}: cannot read past line {state.rows_read + 1}: {exc}"

    def _rows(self, state: _File) -> Iterator[tuple[int, list[str]]]:
        """(line, fields) of each data row; rows that are cut or have the wrong number of fields are errors."""
        width = len(state.header)
        with state.path.open("rb") as raw:
            raw.seek(0, 2)
            size = raw.tell()
            if size:
                raw.seek(size - 1)
            cut = size > 0 and raw.read(1) not in (b"\n", b"\r")
        with state.path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            next(reader, None)
            previous: tuple[int, list[str]] | None = None  # held back: only the last row can be cut
            line = reader.line_num
            while True:
                try:
                    fields = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    state.rows_read += 1
                    state.error(line + 1, f"unreadable CSV: {exc}")
                    line = reader.line_num
                    continue
                start, line = line + 1, reader.line_num
                if not fields:
                    continue
                state.rows_read += 1
                if previous is not None and self._whole(state, *previous, width):
                    yield previous
                previous = (start, fields)
            if previous is None:
                return
            last_line, fields = previous
            if cut and len(fields) != width:
                state.error(last_line, f"the file ends in the middle of this line ({len(fields)} of {width} fields)")
                return
            if cut:
                # ethereum-etl ends every line with a line break, but hand-edited files often do not: keep the
                # row (it has every field) and say that a cut inside its last field would go unnoticed.
                state.notes.append(
                    f"the file does not end with a line break; line {last_line} was imported as it stands, "
                    "check that the file was not cut"
                )
            if self._whole(state, *previous, width):
                yield previous

    @staticmethod
    def _whole(state: _File, line: int, fields: list[str], width: int) -> bool:
        if len(fields) == width:
            return True
        state.error(line, f"{len(fields)} fields instead of {width}")
        return False

    def _read_blocks(self, state: _File, columns: Mapping[str, int]) -> None:
        number_at, timestamp_at, hash_at = columns["number"], columns["timestamp"], columns.get("hash")
        for line, fields in self._rows(state):
            try:
                number = _uint(fields[number_at], "number")
                timestamp = self._time(fields[timestamp_at], "timestamp")
                block_hash = self._block_hash(fields[hash_at]) if hash_at is not None else ""
            except _BadRow as exc:
                state.error(line, str(exc))
                continue
            self.blocks[number] = (timestamp, block_hash)
            state.blocks += 1

    def _read_transfers(self, state: _File, columns: Mapping[str, int]) -> None:
        make_parser = {
            EtlFileKind.TRANSACTIONS: self._transaction_parser,
            EtlFileKind.TOKEN_TRANSFERS: self._token_transfer_parser,
            EtlFileKind.TRACES: self._trace_parser,
        }[state.kind or EtlFileKind.TRANSACTIONS]
        parse = make_parser(columns)
        batch: list[Transfer] = []
        waiting: list[tuple[int, Transfer]] = []
        for line, fields in self._rows(state):
            try:
                outcome = parse(fields)
            except _BadRow as exc:
                state.error(line, str(exc))
                continue
            if isinstance(outcome, str):
                state.skipped[outcome] += 1
            elif outcome.timestamp == _UNKNOWN:
                waiting.append((line, outcome))
            else:
                batch.append(outcome)
            if len(batch) + len(waiting) >= self.batch_size:
                self._flush(state, batch, waiting)
                batch, waiting = [], []
        self._flush(state, batch, waiting)

    def _flush(self, state: _File, batch: list[Transfer], waiting: list[tuple[int, Transfer]]) -> None:
        if waiting:
            self._look_up_blocks({t.block_number for _, t in waiting})
            for line, transfer in waiting:
                known = self.blocks.get(transfer.block_number)
                if known is None:
                    state.error(
                        line,
                        f"no timestamp for block {transfer.block_number}: import blocks.csv "
                        "(or transactions.csv with block_timestamp) covering it",
                    )
                else:
                    batch.append(replace(transfer, timestamp=known[0], block_hash=transfer.block_hash or known[1]))
        if batch:
            added = self.index.add(batch)
            state.added += added
            state.present += len(batch) - added

    def _look_up_blocks(self, numbers: set[int]) -> None:
        """Block times already in the index (from an earlier import or the RPC indexer)."""
        wanted = sorted(n for n in numbers if n not in self.blocks and n not in self.unknown_blocks)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            query = (
                select(col(TransferRow.block_number), col(TransferRow.timestamp), col(TransferRow.block_hash))
                .where(col(TransferRow.chain) == self.chain, col(TransferRow.block_number).in_(chunk))
                .distinct()
            )
            with self.db.session() as session:
                for number, timestamp, block_hash in session.exec(query):
                    known = self.blocks.get(number)
                    if known is None or not known[1]:
                        self.blocks[number] = (timestamp, block_hash)
            self.unknown_blocks.update(n for n in chunk if n not in self.blocks)

    # --- one row of each kind: a parser per file (column positions looked up once) that returns a Transfer,
    # a skip reason, or raises _BadRow ---

    def _block_hash(self, text: str) -> str:
        if self.tron and _BARE_HASH.fullmatch(text):
            return "0x" + text.lower()
        return text.lower()

    def _block_time_reader(self, columns: Mapping[str, int]) -> Callable[[list[str], int], tuple[int, str]]:
        """The row's own block_timestamp/block_hash when it has them (remembered for the other files), else
        what blocks.csv or transactions.csv said, else unknown for now (looked up in the index at the flush)."""
        ts_at, hash_at = columns.get("block_timestamp"), columns.get("block_hash")
        blocks = self.blocks

        def block_time(fields: list[str], number: int) -> tuple[int, str]:
            if ts_at is not None and fields[ts_at]:
                timestamp = self._time(fields[ts_at], "block_timestamp")
                block_hash = self._block_hash(fields[hash_at]) if hash_at is not None else ""
                if number not in blocks:
                    blocks[number] = (timestamp, block_hash)
                return timestamp, block_hash
            known = blocks.get(number)
            if known is not None:
                return known
            return _UNKNOWN, self._block_hash(fields[hash_at]) if hash_at is not None else ""

        return block_time

    def _transaction_parser(self, columns: Mapping[str, int]) -> _Parser:
        chain, block_time = self.chain, self._block_time_reader(columns)
        block_at, hash_at, value_at = columns["block_number"], columns["hash"], columns["value"]
        from_at, to_at = columns["from_address"], columns["to_address"]
        status_at, created_at = columns.get("receipt_status"), columns.get("receipt_contract_address")
        address, tx_hash = self._address, self._hash
        tron_status_at = columns.get("status") if self.tron else None
        tron_type_at = columns.get("transaction_type") if self.tron else None

        def parse(fields: list[str]) -> Transfer | str:
            block = _uint(fields[block_at], "block_number")
            timestamp, block_hash = block_time(fields, block)  # also for skipped rows: other files need it
            if status_at is not None and fields[status_at] == "0":
                return "failed transaction (receipt_status 0)"
            if tron_status_at is not None and fields[tron_status_at].upper() not in _TRON_OK:
                return f"failed transaction (status {fields[tron_status_at][:20]})"
            if tron_type_at is not None and fields[tron_type_at] not in _TRON_VALUE_TYPES:
                return f"{fields[tron_type_at][:40] or 'untyped'} transaction (only TRX transfers are covered on TRON)"
            value = _uint(fields[value_at], "value")
            if value == 0:
                return "zero value"
            to_text = fields[to_at] or (fields[created_at] if created_at is not None else "")
            if not to_text:
                return "contract creation without receipt_contract_address"
            return Transfer(
                chain=chain,
                block_number=block,
                block_hash=block_hash,
                timestamp=timestamp,
                tx_hash=tx_hash(fields[hash_at], "hash"),
                kind=TransferKind.NATIVE,
                position="tx",
                from_addr=address(fields[from_at], "from_address"),
                to_addr=address(to_text, "to_address"),
                value=value,
                source=SOURCE,
            )

        return parse

    def _token_transfer_parser(self, columns: Mapping[str, int]) -> _Parser:
        chain, block_time = self.chain, self._block_time_reader(columns)
        block_at, hash_at, value_at = columns["block_number"], columns["transaction_hash"], columns["value"]
        from_at, to_at, token_at, log_at = (
            columns["from_address"],
            columns["to_address"],
            columns["token_address"],
            columns["log_index"],
        )
        address, tx_hash = self._address, self._hash

        def parse(fields: list[str]) -> Transfer | str:
            block = _uint(fields[block_at], "block_number")
            timestamp, block_hash = block_time(fields, block)
            return Transfer(
                chain=chain,
                block_number=block,
                block_hash=block_hash,
                timestamp=timestamp,
                tx_hash=tx_hash(fields[hash_at], "transaction_hash"),
                kind=TransferKind.ERC20,
                position=f"log:{_uint(fields[log_at], 'log_index')}",
                from_addr=address(fields[from_at], "from_address"),
                to_addr=address(fields[to_at], "to_address"),
                value=_uint(fields[value_at], "value"),
                token=address(fields[token_at], "token_address"),
                source=SOURCE,
            )

        return parse

    def _trace_parser(self, columns: Mapping[str, int]) -> _Parser:
        chain, block_time = self.chain, self._block_time_reader(columns)
        block_at, hash_at, value_at = columns["block_number"], columns["transaction_hash"], columns["value"]
        from_at, to_at, type_at, address_at = (
            columns["from_address"],
            columns["to_address"],
            columns["trace_type"],
            columns["trace_address"],
        )
        status_at, error_at, call_at = columns.get("status"), columns.get("error"), columns.get("call_type")

        def parse(fields: list[str]) -> Transfer | str:
            trace_type = fields[type_at]
            if trace_type not in _VALUE_TRACES:
                return f"{trace_type or 'untyped'} trace"  # rewards, genesis: no sender
            trace_address = fields[address_at].replace(" ", "")
            if not trace_address:
                return "top-level trace"  # the transaction itself, imported from transactions.csv
            status = fields[status_at] if status_at is not None else ""
            # ethereum-etl sets status 0 on a failed trace and on everything below it; older exports only
            # fill `error`.
            if status == "0" or (not status and error_at is not None and fields[error_at]):
                return "failed trace"
            call_type = fields[call_at] if call_at is not None else ""
            if call_type in _NO_VALUE_CALLS:
                return f"{call_type} frame"
            value = _uint(fields[value_at], "value")
            if value == 0:
                return "zero value"
            if not _TRACE_ADDRESS.fullmatch(trace_address):
                raise _BadRow(f"trace_address {trace_address[:40]!r} is not a list of integers")
            block = _uint(fields[block_at], "block_number")
            timestamp, block_hash = block_time(fields, block)
            return Transfer(
                chain=chain,
                block_number=block,
                block_hash=block_hash,
                timestamp=timestamp,
                tx_hash=_tx_hash(fields[hash_at], "transaction_hash"),
                kind=TransferKind.INTERNAL,
                position="trace:" + trace_address.replace(",", "."),
                from_addr=_column_address(fields[from_at], "from_address"),
                to_addr=_column_address(fields[to_at], "to_address"),
                value=value,
                source=SOURCE,
            )

        return parse
