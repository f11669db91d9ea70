"""Tether's USDT-TRC20 freezes from files: a TronGrid event export (`--format tether-trongrid`) or a CSV
(`--format tether-csv`). Both become `FreezeEvent`s merged into the stored freeze labels (`labels.freezes`), so an
export of one period, imported after another, adds to the history instead of replacing it.

TronGrid: the JSON pages of `GET /v1/contracts/TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t/events?event_name=AddedBlackList`
(and `RemovedBlackList`, `DestroyedBlackFunds`) as saved: one page (`{"data": [...], "meta": {...}}`), a list of
pages, or a list of events. Each event has `event_name`, `contract_address`, `block_number`, `block_timestamp`
(milliseconds), `transaction_id`, `event_index` and `result` (`_user`, or `_blackListedUser` and `_balance`, else
positional `0`/`1`), the address in base58 or hex.

CSV: columns `address, block, date, tx, event` (and optionally `amount`, raw units, for DestroyedBlackFunds, and
`log_index`); `event` is the event name or added/removed/destroyed; `date` is an ISO date or date-time (UTC) or
unix seconds or milliseconds. Bad rows are skipped and reported as `file:line: reason`.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tracing.chain import Family, family_of, parse_address, tron_from_hex
from tracing.errors import InvalidArgument, UserError
from tracing.labels.book import LabelBook
from tracing.labels.freezes import (
    EVENT_KINDS,
    LABEL_SET,
    USDT_TRC20,
    FreezeEvent,
    FreezeKind,
    freeze_labels,
    record_freezes,
    seconds,
    tx_id,
)
from tracing.labels.importers import LabelImport, register
from tracing.labels.model import LabelSet

CSV_COLUMNS = ("address", "block", "date", "tx", "event")
MAX_NOTES = 5
_HEX_ADDRESS = re.compile(r"(0[xX])?(41)?[0-9a-fA-F]{40}")
_TX = re.compile(r"(0[xX])?[0-9a-fA-F]{64}")
_DIGITS = re.compile(r"[0-9]{1,20}")
_ADDRESS_KEYS = ("_user", "_blackListedUser", "user", "0")
_AMOUNT_KEYS = ("_balance", "balance", "1")


class RowError(ValueError):
    """One row or event that cannot be read."""


def tron_address(value: object) -> str:
    """A TRON address in `T…` form from base58 (checksum checked), `41…` hex or 20-byte `0x…` hex."""
    text = str(value).strip() if value is not None else ""
    if _HEX_ADDRESS.fullmatch(text):
        return tron_from_hex(text)
    try:
        found = parse_address(text)
    except UserError as exc:
        raise RowError(str(exc)) from None
    if family_of(found) is not Family.TRON:
        raise RowError(f"“{text[:40]}” is not a TRON address")
    return found


def _tx(value: object) -> str:
    text = str(value or "").strip()
    if not _TX.fullmatch(text):
        raise RowError(f"“{text[:70]}” is not a transaction hash (64 hex digits)")
    return tx_id(text)


def _number(value: object, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value or "").strip()
    if not _DIGITS.fullmatch(text):
        raise RowError(f"{what} “{text[:30]}” is not a whole number")
    return int(text)


def _kind(value: object) -> FreezeKind:
    kind = EVENT_KINDS.get(str(value or "").strip().lower())
    if kind is None:
        raise RowError(f"event “{str(value)[:40]}” is not AddedBlackList, RemovedBlackList or DestroyedBlackFunds")
    return kind


def _timestamp(value: object) -> int:
    text = str(value or "").strip()
    if _DIGITS.fullmatch(text):
        return seconds(int(text))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RowError(f"date “{text[:30]}” is not a date (YYYY-MM-DD, ISO date-time or unix time)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if not 2009 <= moment.year <= 2100:
        raise RowError(f"date “{text[:30]}” is out of range")
    return int(moment.timestamp())


@dataclass(frozen=True)
class _Read:
    events: list[FreezeEvent]
    skipped: int
    problems: list[str]
    """The first bad rows, `file:line: reason` (at most MAX_NOTES)."""
    notes: list[str] = field(default_factory=list)


def _import(read: _Read, what: str) -> LabelImport:
    """The import of `read`'s events: stored by merging into the freeze labels."""
    events = read.events
    kinds = {kind: sum(1 for e in events if e.kind is kind) for kind in FreezeKind}
    summary = ", ".join(f"{count} {kind.event_name}" for kind, count in kinds.items() if count)
    notes = [f"{what}: {summary or 'no blacklist events'}", *read.notes, *read.problems]
    if read.skipped > len(read.problems):
        notes.append(f"{read.skipped - len(read.problems)} more rows skipped")

    def store(book: LabelBook, label_set: LabelSet) -> int:
        return record_freezes(book, events, label_set=label_set).addresses

    # `labels` shows what the file alone says; `store` merges it with the history the store holds
    preview = freeze_labels(events)
    return LabelImport(label_set=LABEL_SET, labels=preview, skipped=read.skipped, notes=notes, store=store)


# --- CSV -------------------------------------------------------------------------------------------------------


def read_freeze_csv(path: Path) -> _Read:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InvalidArgument(f"{path.name}: missing column(s) {', '.join(missing)}.")
        events: list[FreezeEvent] = []
        notes: list[str] = []
        skipped = 0
        for row in reader:
            try:
                kind = _kind(row["event"])
                amount = row.get("amount")
                events.append(
                    FreezeEvent(
                        address=tron_address(row["address"]),
                        kind=kind,
                        block=_number(row["block"], "block"),
                        tx_hash=_tx(row["tx"]),
                        timestamp=_timestamp(row["date"]),
                        amount=_number(amount, "amount") if kind is FreezeKind.DESTROYED and amount else None,
                        log_index=_number(row.get("log_index") or 0, "log_index"),
                    )
                )
            except RowError as exc:
                skipped += 1
                if len(notes) < MAX_NOTES:
                    notes.append(f"{path.name}:{reader.line_num}: {exc}")
    return _Read(events, skipped, notes)


@register("tether-csv")
def read_tether_csv(path: Path) -> LabelImport:
    """`labels import FILE --format tether-csv`: Tether freezes as CSV rows (address, block, date, tx, event)."""
    if path.is_dir():
        raise InvalidArgument(f"{path.name} is a folder; give the CSV file.")
    return _import(read_freeze_csv(path), path.name)


# --- TronGrid --------------------------------------------------------------------------------------------------


def _trongrid_events(document: object) -> Iterator[Mapping[str, Any]]:
    """The events of a saved page, a list of pages, or a list of events."""
    if isinstance(document, Mapping):
        data = document.get("data")
        if not isinstance(data, list):
            raise InvalidArgument("not a TronGrid events page: no “data” list.")
        for item in data:
            if isinstance(item, Mapping):
                yield item
        return
    if isinstance(document, list):
        for item in document:
            if isinstance(item, Mapping) and "data" in item:
                yield from _trongrid_events(item)
            elif isinstance(item, Mapping):
                yield item
        return
    raise InvalidArgument("not a TronGrid events export: a page, a list of pages or a list of events is expected.")


def _first(result: Mapping[str, Any], keys: tuple[str, ...]) -> object:
    return next((result[k] for k in keys if result.get(k) not in (None, "")), None)


def trongrid_event(item: Mapping[str, Any], contract: str = USDT_TRC20) -> FreezeEvent | None:
    """The freeze event of one TronGrid event object; None for another event or another contract's."""
    name = str(item.get("event_name") or "")
    kind = EVENT_KINDS.get(name.lower())
    if kind is None or name.lower() in ("added", "removed", "destroyed"):
        return None
    if tron_address(item.get("contract_address")) != contract:
        return None
    result = item.get("result")
    if not isinstance(result, Mapping):
        raise RowError("no “result” object")
    amount = None
    if kind is FreezeKind.DESTROYED:
        amount = _number(_first(result, _AMOUNT_KEYS), "_balance")
    return FreezeEvent(
        address=tron_address(_first(result, _ADDRESS_KEYS)),
        kind=kind,
        block=_number(item.get("block_number"), "block_number"),
        tx_hash=_tx(item.get("transaction_id")),
        timestamp=seconds(_number(item.get("block_timestamp"), "block_timestamp")),
        amount=amount,
        log_index=_number(item.get("event_index") or 0, "event_index"),
    )


def read_trongrid_export(path: Path) -> _Read:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"{path.name} is not JSON: {str(exc)[:80]}") from None
    events: list[FreezeEvent] = []
    notes: list[str] = []
    skipped = other = 0
    for number, item in enumerate(_trongrid_events(document), start=1):
        try:
            event = trongrid_event(item)
        except RowError as exc:
            skipped += 1
            if len(notes) < MAX_NOTES:
                notes.append(f"{path.name}: event {number}: {exc}")
            continue
        if event is None:
            other += 1
        else:
            events.append(event)
    ignored = [f"{other} other events (not USDT-TRC20 blacklist events) ignored"] if other else []
    return _Read(events, skipped, notes, ignored)


@register("tether-trongrid")
def read_tether_trongrid(path: Path) -> LabelImport:
    """`labels import FILE --format tether-trongrid`: saved TronGrid `/v1/contracts/{USDT}/events` pages."""
    if path.is_dir():
        raise InvalidArgument(f"{path.name} is a folder; give the saved JSON page(s).")
    return _import(read_trongrid_export(path), path.name)
