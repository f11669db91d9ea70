"""Tether's freezes of USDT-TRC20 addresses, read from the chain: its contract's blacklist events → `FreezeEvent`s →
labels of category `frozen` from source `tether-blacklist`, with the block, date and transaction of each freeze.

Tether publishes no file of its freezes: the USDT contract (TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t, 6 decimals) emits
`AddedBlackList(address)` when it freezes an address, `RemovedBlackList(address)` when it lifts the freeze, and
`DestroyedBlackFunds(address, uint256)` when it burns a frozen address's balance. The events arrive as raw EVM-shaped
logs (`topics` and `data` as JSON-RPC's `eth_getLogs` returns them, from TRON's `/jsonrpc` or any EVM node), from a
TronGrid event export, or from a CSV (`labels.importers.tether`). TRON logs carry 20-byte addresses; they are shown
and stored in their `T…` form.

One label per address keeps the whole history in its details (`events`): a `RemovedBlackList` ends the label's
validity (`delisted_on`, the day of the removal) without losing what came before, and a later `AddedBlackList`
makes it current again. `record_freezes` merges new events into what the store already holds, so reading block
ranges one after another (or importing several exports) builds the same labels as reading everything at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from eth_utils import keccak

from tracing.chain import tron_from_hex
from tracing.labels.book import LabelBook
from tracing.labels.model import Category, Label, LabelSet

USDT_TRC20 = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
"""Tether USD on TRON (TRC-20, 6 decimals)."""
USDT_DECIMALS = 6
SOURCE = "tether-blacklist"
CHAIN = "tron"
NAME = "Frozen by Tether (USDT-TRC20)"
SOURCE_URL = f"https://tronscan.org/#/contract/{USDT_TRC20}/events"
TX_URL = "https://tronscan.org/#/transaction/{}"
LICENCE = "public chain data (Tether's USDT-TRC20 contract events)"
LABEL_SET = LabelSet(source=SOURCE, version="chain events", source_url=SOURCE_URL, licence=LICENCE)


class FreezeKind(StrEnum):
    ADDED = "added"
    """`AddedBlackList`: Tether froze the address."""
    REMOVED = "removed"
    """`RemovedBlackList`: Tether lifted the freeze."""
    DESTROYED = "destroyed"
    """`DestroyedBlackFunds`: Tether burnt the frozen address's balance (it stays frozen)."""

    @property
    def event_name(self) -> str:
        return _EVENT_NAMES[self]


_EVENT_NAMES = {
    FreezeKind.ADDED: "AddedBlackList",
    FreezeKind.REMOVED: "RemovedBlackList",
    FreezeKind.DESTROYED: "DestroyedBlackFunds",
}
EVENT_KINDS: Mapping[str, FreezeKind] = {name.lower(): kind for kind, name in _EVENT_NAMES.items()} | {
    kind.value: kind for kind in FreezeKind
}
"""Event name (any case) or kind → kind."""


def _topic(signature: str) -> str:
    return "0x" + keccak(text=signature).hex()


TOPICS: Mapping[str, FreezeKind] = {
    _topic("AddedBlackList(address)"): FreezeKind.ADDED,
    _topic("RemovedBlackList(address)"): FreezeKind.REMOVED,
    _topic("DestroyedBlackFunds(address,uint256)"): FreezeKind.DESTROYED,
}
"""topic0 of each blacklist event. The same whether the address parameter is indexed or not (Tether's Ethereum
contract leaves it in `data`; `decode_freeze_log` reads either shape)."""


def usdt_units(raw: int) -> str:
    """Raw USDT units (6 decimals) as an exact decimal: `12.345678`, `5`."""
    text = f"{Decimal(raw).scaleb(-USDT_DECIMALS):,f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


class FreezeLogError(ValueError):
    """A blacklist log (or export row) that cannot be read: the sentence says what is wrong."""


@dataclass(frozen=True, slots=True)
class FreezeEvent:
    """One blacklist event of the USDT contract."""

    address: str
    """The address concerned, in `T…` form."""
    kind: FreezeKind
    block: int
    tx_hash: str
    """As TRON shows it: 64 hex digits, no `0x` (`tx_id`)."""
    timestamp: int
    """The block's time, unix seconds (UTC)."""
    amount: int | None = None
    """`DestroyedBlackFunds` only: the raw amount burnt (6 decimals)."""
    log_index: int = 0
    contract: str = USDT_TRC20

    @property
    def day(self) -> date:
        return datetime.fromtimestamp(self.timestamp, UTC).date()

    @property
    def when(self) -> str:
        """`2024-05-01 12:00:03 UTC`, or `2024-05-01` for an event known only by its day (a CSV row with a date)."""
        moment = datetime.fromtimestamp(self.timestamp, UTC)
        return moment.date().isoformat() if self.timestamp % 86400 == 0 else moment.strftime("%Y-%m-%d %H:%M:%S UTC")

    @property
    def key(self) -> tuple[str, int, str]:
        """What makes two copies of one event the same event (a log is its transaction and index)."""
        return (tx_id(self.tx_hash), self.log_index, self.kind.value)

    def words(self) -> str:
        """`AddedBlackList at block 1,234 on 2024-05-01 12:00:03 UTC, tx abc…` (the transaction id as TRON shows it)."""
        burnt = f" of {usdt_units(self.amount)} USDT" if self.amount is not None else ""
        return f"{self.kind.event_name}{burnt} at block {self.block:,} on {self.when}, tx {self.tx_hash}"

    def to_json(self) -> dict[str, object]:
        found: dict[str, object] = {
            "kind": self.kind.value,
            "block": self.block,
            "tx": self.tx_hash,
            "time": self.timestamp,
            "log_index": self.log_index,
            "contract": self.contract,
        }
        if self.amount is not None:
            found["amount"] = str(self.amount)
        return found

    @classmethod
    def from_json(cls, address: str, data: Mapping[str, Any]) -> FreezeEvent:
        amount = data.get("amount")
        return cls(
            address=address,
            kind=FreezeKind(str(data["kind"])),
            block=int(data["block"]),
            tx_hash=str(data["tx"]),
            timestamp=int(data["time"]),
            amount=int(str(amount)) if amount is not None else None,
            log_index=int(data.get("log_index", 0)),
            contract=str(data.get("contract", USDT_TRC20)),
        )


# --- raw logs --------------------------------------------------------------------------------------------------


def _hex_int(value: object, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value[:2] in ("0x", "0X") and len(value) > 2:
        try:
            return int(value, 16)
        except ValueError:
            pass
    raise FreezeLogError(f"{what} is not a hex quantity: {str(value)[:40]}")


def _words(data: object) -> list[str]:
    if not isinstance(data, str) or data[:2] not in ("0x", "0X"):
        raise FreezeLogError("data is not hex")
    digits = data[2:]
    if len(digits) % 64 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise FreezeLogError("data is not whole 32-byte words")
    return [digits[i : i + 64] for i in range(0, len(digits), 64)]


def _address_word(word: str) -> str:
    if len(word) != 64 or int(word[:24] or "0", 16) != 0:
        raise FreezeLogError("an address word has bytes above its 20")
    return tron_from_hex("0x" + word[24:])


def log_timestamp(log: Mapping[str, Any]) -> int | None:
    """The block time some nodes put in a log (`blockTimestamp`), in seconds; None when it is not there."""
    raw = log.get("blockTimestamp")
    if raw is None:
        return None
    return seconds(_hex_int(raw, "blockTimestamp"))


def tx_id(text: str) -> str:
    """A transaction hash as TRON shows it: 64 hex digits in lower case, no `0x`."""
    return text.strip().lower().removeprefix("0x")


def seconds(timestamp: int) -> int:
    """Unix seconds from seconds or milliseconds (TRON's own APIs count in milliseconds)."""
    return timestamp // 1000 if timestamp > 100_000_000_000 else timestamp


def decode_freeze_log(log: Mapping[str, Any], timestamp: int | None = None) -> FreezeEvent | None:
    """The freeze event a raw log holds; None for a log that is not a blacklist event (or was removed by a reorg).

    `log` is one entry of `eth_getLogs` (`address`, `topics`, `data`, `blockNumber`, `transactionHash`,
    `logIndex`); `timestamp` is its block's time (seconds, or milliseconds as TRON gives them), else the log's own
    `blockTimestamp`. The address parameter is read from `topics[1]` when indexed, else from the first data word.
    Raises `FreezeLogError` for a blacklist log that is malformed."""
    topics = log.get("topics")
    if not isinstance(topics, list) or not topics or not isinstance(topics[0], str):
        return None
    kind = TOPICS.get(topics[0].lower())
    if kind is None or log.get("removed") is True:
        return None
    words = _words(log.get("data", "0x"))
    if len(topics) >= 2:
        topic = topics[1]
        if not isinstance(topic, str) or len(topic) != 66:
            raise FreezeLogError("topic 1 is not a 32-byte word")
        address, values = _address_word(topic[2:]), words
    else:
        if not words:
            raise FreezeLogError(f"{kind.event_name} without its address")
        address, values = _address_word(words[0]), words[1:]
    amount = None
    if kind is FreezeKind.DESTROYED:
        if not values:
            raise FreezeLogError("DestroyedBlackFunds without its amount")
        amount = int(values[0], 16)
    when = timestamp if timestamp is not None else log_timestamp(log)
    if when is None:
        raise FreezeLogError("no block time for the log")
    tx_hash = log.get("transactionHash")
    if not isinstance(tx_hash, str) or not tx_hash:
        raise FreezeLogError("no transaction hash")
    contract = log.get("address")
    return FreezeEvent(
        address=address,
        kind=kind,
        block=_hex_int(log.get("blockNumber"), "blockNumber"),
        tx_hash=tx_id(tx_hash),
        timestamp=seconds(when),
        amount=amount,
        log_index=_hex_int(log.get("logIndex", "0x0"), "logIndex"),
        contract=tron_from_hex(contract) if isinstance(contract, str) and len(contract) == 42 else USDT_TRC20,
    )


# --- labels ----------------------------------------------------------------------------------------------------


def _ordered(events: Iterable[FreezeEvent]) -> list[FreezeEvent]:
    unique = {event.key: event for event in events}
    return sorted(unique.values(), key=lambda e: (e.block, e.log_index, e.tx_hash))


def freeze_label(address: str, events: Sequence[FreezeEvent], chain: str = CHAIN) -> Label:
    """The label of one address from its blacklist events: current when the last freeze was not lifted, else kept
    as history with `delisted_on` the day the freeze was lifted. Details hold the freeze's (or, for history, the
    last freeze's) block, time and transaction, the removal's, what was burnt, and every event."""
    history = _ordered(events)
    frozen = [e for e in history if e.kind is FreezeKind.ADDED]
    removed = [e for e in history if e.kind is FreezeKind.REMOVED]
    last_add = frozen[-1] if frozen else None
    last_removal = removed[-1] if removed else None
    # frozen unless the last word was a removal (a burn needs a frozen address: it counts as frozen)
    active = last_removal is None or (last_add is not None and history.index(last_add) > history.index(last_removal))
    details: dict[str, object] = {
        "contract": (last_add or history[-1]).contract,
        "token": "USDT",
        "events": [e.to_json() for e in history],
    }
    if last_add is not None:
        details |= {"frozen_block": last_add.block, "frozen_tx": last_add.tx_hash, "frozen_at": last_add.when}
    else:
        details["note"] = "the freeze itself is not among the events read (earlier than the blocks read)"
    if not active and last_removal is not None:
        details |= {
            "removed_block": last_removal.block,
            "removed_tx": last_removal.tx_hash,
            "removed_at": last_removal.when,
        }
    burnt = [e for e in history if e.kind is FreezeKind.DESTROYED and e.amount is not None]
    if burnt:
        details["destroyed"] = [e.words() for e in burnt]
    evidence = last_add or last_removal or history[-1]
    return Label(
        address=address,
        category=Category.FROZEN,
        name=NAME,
        source=SOURCE,
        source_url=TX_URL.format(tx_id(evidence.tx_hash)),
        confidence=1.0,
        chain=chain,
        first_seen=last_add.day if last_add is not None else None,
        delisted_on=None if active else (last_removal.day if last_removal is not None else None),
        details=details,
    )


def freeze_labels(events: Iterable[FreezeEvent], chain: str = CHAIN) -> list[Label]:
    """One label per address of `events` (see `freeze_label`), in address order."""
    per_address: dict[str, list[FreezeEvent]] = defaultdict(list)
    for event in events:
        per_address[event.address].append(event)
    return [freeze_label(address, per_address[address], chain) for address in sorted(per_address)]


def stored_events(label: Label) -> list[FreezeEvent]:
    """The events a stored freeze label holds (none for a label of another source)."""
    raw = label.details.get("events")
    if label.source != SOURCE or not isinstance(raw, list):
        return []
    return [FreezeEvent.from_json(label.address, item) for item in raw if isinstance(item, dict)]


def freeze_words(label: Label) -> str:
    """The evidence of a freeze label in words: `frozen at block N on DATE, tx H` and, for one lifted since,
    `; lifted at block M on DATE, tx H2`. Empty for another label."""
    if label.source != SOURCE:
        return ""
    parts = []
    if label.details.get("frozen_block") is not None:
        parts.append(
            f"frozen at block {int(str(label.details['frozen_block'])):,} on {label.details.get('frozen_at')}, "
            f"tx {label.details.get('frozen_tx')}"
        )
    else:
        parts.append("freeze not among the blocks read")
    if label.details.get("removed_block") is not None:
        parts.append(
            f"lifted at block {int(str(label.details['removed_block'])):,} on {label.details.get('removed_at')}, "
            f"tx {label.details.get('removed_tx')}"
        )
    destroyed = label.details.get("destroyed")
    if isinstance(destroyed, list) and destroyed:
        parts.append("; ".join(str(d) for d in destroyed))
    return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class FreezeRecord:
    """What `record_freezes` did."""

    events: int
    """Events given (copies of one event count once)."""
    addresses: int
    frozen: int
    """Addresses whose label is current (frozen now, as far as the events read say)."""
    lifted: int
    """Addresses whose freeze was lifted: kept as history."""
    labels: tuple[Label, ...] = ()
    """The labels written."""


def record_freezes(
    book: LabelBook, events: Iterable[FreezeEvent], chain: str = CHAIN, *, label_set: LabelSet = LABEL_SET
) -> FreezeRecord:
    """Merge `events` into the freeze labels the store holds (their history kept) and write the labels of every
    address they concern, in one transaction; the set's bookkeeping records `label_set`'s version."""
    given = _ordered(events)
    addresses = sorted({e.address for e in given})
    held = book.for_addresses(addresses, chain) if addresses else {}
    merged: dict[str, list[FreezeEvent]] = defaultdict(list)
    for event in given:
        merged[event.address].append(event)
    for address in addresses:
        for label in held.get(address, []):
            if label.source == SOURCE and label.chain == chain:
                merged[address].extend(stored_events(label))
    labels = [freeze_label(address, merged[address], chain) for address in addresses]
    if labels:
        book.merge_set(label_set, labels)
    return FreezeRecord(
        events=len(given),
        addresses=len(labels),
        frozen=sum(1 for lb in labels if lb.active),
        lifted=sum(1 for lb in labels if not lb.active),
        labels=tuple(labels),
    )
