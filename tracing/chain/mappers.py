"""Mappers: JSON-RPC payloads (a block with its transactions, receipts, call traces) → `Transfer`s of one block.

As in ethereum-etl, a mapper is a pure function from the node's JSON to domain objects; fetching lives in
`tracing.chain.rpc` and storing in `tracing.chain.index`. What moves value:

- a successful transaction's own value (`position` `tx`), to its recipient or to the contract it created;
- each standard ERC-20 `Transfer(address,address,uint256)` log (`log:<block log index>`), decoded by hand
  (3 topics, 32 bytes of data); other logs with that topic (ERC-721's 4 topics, too few topics, bad data) are
  skipped and counted;
- each successful internal CALL, CREATE/CREATE2 or SELFDESTRUCT frame with value (`trace:<a.b.c>`), from
  debug_traceBlockByNumber's callTracer or from trace_block. A frame that reverted moves nothing, nor do its
  children; DELEGATECALL, CALLCODE and STATICCALL move no value themselves.

A failed transaction (receipt status 0) moves nothing: neither its value, nor logs, nor internal calls.
Block rewards and withdrawals are not transfers between addresses and are not mapped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from eth_utils import keccak

from tracing.chain.address import normalise_address
from tracing.chain.transfer import Transfer, TransferKind
from tracing.chain.utxo import UtxoTx
from tracing.errors import SourceError

TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
"""topic0 of ERC-20 (and ERC-721) `Transfer` events."""

MAX_NOTES = 5
"""Notes kept per block about skipped logs or frames (the counts are always complete)."""

JsonDict = dict[str, Any]


class MalformedPayload(SourceError):
    """A node answered with JSON that is not the shape the method promises (missing fields, wrong types)."""


class NonStandardLog(ValueError):
    """A log with the Transfer topic that is not a standard ERC-20 Transfer; the message says why."""


class InternalSource(StrEnum):
    """Where internal (contract-to-address) native transfers came from, if anywhere."""

    CALL_TRACER = "callTracer"
    TRACE_BLOCK = "trace_block"
    UNAVAILABLE = "unavailable"
    UTXO = "utxo"
    """Bitcoin: no internal transfers exist; every movement is in the transaction's inputs and outputs."""


@dataclass(frozen=True, slots=True)
class BlockCoverage:
    """What the transfers of one block cover, and what was left out.

    `internal`: the trace source of internal transfers (`unavailable`: the block's internal transfers are
    missing). `skipped_logs`: Transfer-topic logs that were not standard ERC-20 transfers. `failed_txs`:
    transactions that failed and so moved nothing. `skipped_frames`: trace frames that could not be read.
    `unknown_status`: transactions without a receipt status (pre-Byzantium) and without a trace to tell whether
    they failed; their value is counted as moved.
    """

    internal: InternalSource
    receipts: str = "eth_getBlockReceipts"
    skipped_logs: int = 0
    failed_txs: int = 0
    skipped_frames: int = 0
    unknown_status: int = 0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BlockTransfers:
    """The value movements of one block, with the header fields a reorg-aware watcher needs."""

    chain: str
    number: int
    hash: str
    parent_hash: str
    timestamp: int
    tx_count: int
    transfers: tuple[Transfer, ...]
    coverage: BlockCoverage
    utxo_txs: tuple[UtxoTx, ...] = ()
    """Bitcoin: the block's transactions, which the indexer stores beside the transfers derived from them."""

    @property
    def tokens(self) -> set[str]:
        return {t.token for t in self.transfers if t.token is not None}


@dataclass(frozen=True, slots=True)
class TokenMeta:
    """An ERC-20 token's decimals and symbol as read from the contract; None where the call failed."""

    address: str
    decimals: int | None
    symbol: str | None


@dataclass(frozen=True, slots=True)
class Traces:
    """A block's call traces as the node returned them, and which method produced them."""

    source: InternalSource
    payload: Sequence[JsonDict] = ()
    note: str = ""


# --- small decoders -----------------------------------------------------------------------------------------


def quantity(value: object, what: str = "quantity") -> int:
    """A JSON-RPC quantity (`0x1f`, or an int as some nodes send for trace fields) as an int."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value, 16)
        except ValueError:
            pass
    raise MalformedPayload(f"{what} is not a quantity: {str(value)[:40]!r}")


def _payload_address(value: object, what: str) -> str:
    address = normalise_address(value, hex_digits=False)
    if address is not None:
        return address
    raise MalformedPayload(f"{what} is not an address: {str(value)[:50]!r}")


def decode_transfer_log(log: Mapping[str, Any]) -> tuple[str, str, int] | None:
    """(from, to, raw value) of a standard ERC-20 Transfer log; None for a log of any other event.

    Raises NonStandardLog for a log with the Transfer topic but not 3 topics and 32 bytes of data (ERC-721's
    indexed token id, truncated or padded data, ...). Decoded by hand: ~15x faster than web3's process_log.
    """
    topics = log.get("topics")
    if not topics or not isinstance(topics, list) or str(topics[0]).lower() != TRANSFER_TOPIC:
        return None
    if len(topics) != 3:
        kind = " (ERC-721 style, token id indexed)" if len(topics) == 4 else ""
        raise NonStandardLog(f"{len(topics)} topics instead of 3{kind}")
    data = log.get("data")
    if not isinstance(data, str) or len(data) != 66:
        size = (len(data) - 2) // 2 if isinstance(data, str) else "no"
        raise NonStandardLog(f"{size} bytes of data instead of 32")
    from_topic, to_topic = topics[1], topics[2]
    if not (isinstance(from_topic, str) and isinstance(to_topic, str) and len(from_topic) == len(to_topic) == 66):
        raise NonStandardLog("an address topic is not 32 bytes")
    try:
        value = int(data, 16)
    except ValueError:
        raise NonStandardLog("data is not hex") from None
    return "0x" + from_topic[26:].lower(), "0x" + to_topic[26:].lower(), value


def decode_uint(result: object) -> int | None:
    """A uint256 eth_call result, None when empty or not 32 bytes."""
    if not isinstance(result, str) or len(result) < 66:
        return None
    try:
        return int(result[2:66], 16)
    except ValueError:
        return None


def decode_decimals(result: object) -> int | None:
    """ERC-20 `decimals()`: a small number, or None for a revert, empty answer or nonsense (> 255)."""
    value = decode_uint(result)
    return value if value is not None and value <= 255 else None


def decode_symbol(result: object) -> str | None:
    """ERC-20 `symbol()`: an ABI string, or a bytes32 (older tokens such as EOS and MKR); None when neither."""
    if not isinstance(result, str) or not result.startswith("0x"):
        return None
    try:
        raw = bytes.fromhex(result[2:])
    except ValueError:
        return None
    text: bytes
    if len(raw) == 32:
        text = raw.rstrip(b"\x00")
    elif len(raw) >= 64 and int.from_bytes(raw[:32], "big") == 32:
        length = int.from_bytes(raw[32:64], "big")
        if length > len(raw) - 64:
            return None
        text = raw[64 : 64 + length]
    else:
        return None
    symbol = "".join(ch for ch in text.decode("utf-8", errors="replace") if ch.isprintable()).strip()
    return symbol[:32] or None


# --- one block ----------------------------------------------------------------------------------------------


@dataclass
class _Block:
    chain: str
    number: int
    hash: str
    timestamp: int
    native_symbol: str | None = None
    native_decimals: int | None = None
    transfers: list[Transfer] = field(default_factory=list)
    skipped_logs: int = 0
    skipped_frames: int = 0
    notes: list[str] = field(default_factory=list)

    def add(
        self, tx_hash: str, kind: TransferKind, position: str, src: str, dst: str, value: int, token: str | None
    ) -> None:
        self.transfers.append(
            Transfer(
                chain=self.chain,
                block_number=self.number,
                block_hash=self.hash,
                timestamp=self.timestamp,
                tx_hash=tx_hash,
                kind=kind,
                position=position,
                from_addr=src,
                to_addr=dst,
                value=value,
                token=token,
                decimals=self.native_decimals if token is None else None,
                symbol=self.native_symbol if token is None else None,
            )
        )

    def note(self, text: str) -> None:
        if len(self.notes) < MAX_NOTES:
            self.notes.append(f"block {self.number}: {text}")


def _field(payload: Mapping[str, Any], key: str, what: str) -> Any:
    try:
        return payload[key]
    except (KeyError, TypeError):
        raise MalformedPayload(f"{what} has no {key!r}") from None


def _map_logs(block: _Block, tx_hash: str, logs: Iterable[Mapping[str, Any]]) -> None:
    """Standard ERC-20 Transfer logs of one successful transaction."""
    for log in logs:
        try:
            decoded = decode_transfer_log(log)
        except NonStandardLog as exc:
            block.skipped_logs += 1
            block.note(f"log {log.get('logIndex')} of tx {tx_hash} skipped: {exc}")
            continue
        if decoded is None or log.get("removed"):
            continue
        src, dst, value = decoded
        position = f"log:{quantity(log.get('logIndex'), f'logIndex in tx {tx_hash}')}"
        block.add(
            tx_hash, TransferKind.ERC20, position, src, dst, value, _payload_address(log.get("address"), "log address")
        )


def _frames(root: Mapping[str, Any]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    """(trace address, frame) of every sub-call below `root` that did not revert, depth first; the children of
    a reverted frame are left out with it."""
    stack: list[tuple[str, Mapping[str, Any]]] = [
        (str(i), child) for i, child in reversed(list(enumerate(root.get("calls") or [])))
    ]
    while stack:
        address, frame = stack.pop()
        if frame.get("error"):
            continue
        yield address, frame
        children = frame.get("calls") or []
        stack.extend((f"{address}.{i}", child) for i, child in reversed(list(enumerate(children))))


def _map_call_frames(block: _Block, tx_hash: str, root: Mapping[str, Any]) -> None:
    """Internal native transfers of one transaction from its callTracer frame tree."""
    for address, frame in _frames(root):
        kind = str(frame.get("type", "")).upper()
        if kind not in ("CALL", "CREATE", "CREATE2", "SELFDESTRUCT"):
            continue  # DELEGATECALL / CALLCODE / STATICCALL move no value of their own
        raw_value = frame.get("value")
        if kind == "SELFDESTRUCT" and (raw_value is None or not frame.get("from") or not frame.get("to")):
            # Old geth callTracers emitted `{"type": "SELFDESTRUCT"}` alone: a transfer of unknown size.
            block.skipped_frames += 1
            block.note(f"SELFDESTRUCT at trace {address} of tx {tx_hash} has no from/to/value")
            continue
        value = quantity(raw_value or "0x0", f"value of trace {address} in tx {tx_hash}")
        if value == 0:
            continue
        if not frame.get("to"):
            block.skipped_frames += 1
            block.note(f"{kind} at trace {address} of tx {tx_hash} with value has no 'to'")
            continue
        block.add(
            tx_hash,
            TransferKind.INTERNAL,
            f"trace:{address}",
            _payload_address(frame.get("from"), f"trace {address} from"),
            _payload_address(frame.get("to"), f"trace {address} to"),
            value,
            None,
        )


def _map_parity_traces(block: _Block, tx_hash: str, traces: Sequence[Mapping[str, Any]]) -> bool:
    """Internal native transfers of one transaction from its part of trace_block's flat list. Returns whether
    the transaction itself (the top-level trace) failed."""
    failed = [tuple(t.get("traceAddress") or ()) for t in traces if t.get("error")]
    for trace in traces:
        path = tuple(trace.get("traceAddress") or ())
        if not path:
            continue  # the transaction itself
        if any(path[: len(bad)] == bad for bad in failed):
            continue
        kind = trace.get("type")
        action = trace.get("action") or {}
        address = ".".join(str(i) for i in path)
        where = f"trace {address} of tx {tx_hash}"
        if kind == "call":
            if action.get("callType", "call") != "call":
                continue
            value, src, dst = quantity(action.get("value", "0x0"), where), action.get("from"), action.get("to")
        elif kind == "create":
            value, src, dst = (
                quantity(action.get("value", "0x0"), where),
                action.get("from"),
                (trace.get("result") or {}).get("address"),
            )
        elif kind == "suicide":
            value, src, dst = (
                quantity(action.get("balance", "0x0"), where),
                action.get("address"),
                action.get("refundAddress"),
            )
        else:
            block.skipped_frames += 1
            block.note(f"{where}: unknown trace type {kind!r}")
            continue
        if value == 0:
            continue
        if not src or not dst:
            block.skipped_frames += 1
            block.note(f"{where}: {kind} with value but without from/to")
            continue
        block.add(
            tx_hash,
            TransferKind.INTERNAL,
            f"trace:{address}",
            _payload_address(src, where),
            _payload_address(dst, where),
            value,
            None,
        )
    return () in failed


@dataclass(frozen=True, slots=True)
class TxTrace:
    """What the call trace of one transaction says: whether its top-level call failed, and its internal
    transfers (frames that reverted, and their children, left out)."""

    failed: bool
    transfers: tuple[Transfer, ...] = ()
    skipped_frames: int = 0
    notes: tuple[str, ...] = ()


def map_traces(
    traces: Traces,
    tx_hashes: Sequence[str],
    *,
    chain: str,
    number: int,
    block_hash: str,
    timestamp: int,
    native_symbol: str | None = None,
    native_decimals: int | None = None,
) -> dict[str, TxTrace]:
    """Per transaction hash, its trace from debug_traceBlockByNumber (callTracer: one item per transaction, in
    block order, matched to `tx_hashes`) or trace_block (flat, keyed by transactionHash; rewards ignored)."""
    where = f"block {number}"
    out: dict[str, TxTrace] = {}

    def accumulator() -> _Block:
        return _Block(chain, number, block_hash, timestamp, native_symbol, native_decimals)

    def done(acc: _Block, failed: bool) -> TxTrace:
        return TxTrace(failed, tuple(acc.transfers), acc.skipped_frames, tuple(acc.notes))

    if traces.source is InternalSource.CALL_TRACER:
        if len(traces.payload) != len(tx_hashes):
            raise MalformedPayload(
                f"{where}: debug_traceBlockByNumber gave {len(traces.payload)} traces for {len(tx_hashes)} transactions"
            )
        for tx_hash, item in zip(tx_hashes, traces.payload, strict=True):
            if not isinstance(item, Mapping):
                raise MalformedPayload(f"{where}: a trace is not an object")
            if item.get("txHash") and str(item["txHash"]).lower() != tx_hash:
                raise MalformedPayload(f"{where}: traces are not in transaction order (at tx {tx_hash})")
            root = item.get("result")
            if not isinstance(root, Mapping) and item.get("error"):
                # geth reports a tracer failure (e.g. its time-out) per transaction: that one is not traced.
                note = f"block {number}: the trace of tx {tx_hash} failed: {str(item['error'])[:200]}"
                out[tx_hash] = TxTrace(False, (), 1, (note,))
                continue
            if not isinstance(root, Mapping):
                raise MalformedPayload(f"{where}: the trace of tx {tx_hash} has no result")
            acc = accumulator()
            _map_call_frames(acc, tx_hash, root)
            out[tx_hash] = done(acc, bool(root.get("error")))
    elif traces.source is InternalSource.TRACE_BLOCK:
        grouped: dict[str, list[Mapping[str, Any]]] = {}
        for trace in traces.payload:
            if not isinstance(trace, Mapping):
                raise MalformedPayload(f"{where}: a trace is not an object")
            if trace.get("transactionHash"):
                grouped.setdefault(str(trace["transactionHash"]).lower(), []).append(trace)
        for tx_hash, items in grouped.items():
            if len(items) == 1 and not items[0].get("traceAddress"):
                out[tx_hash] = _FAILED if items[0].get("error") else _PLAIN  # no internal frames: nothing to map
                continue
            acc = accumulator()
            failed = _map_parity_traces(acc, tx_hash, items)
            out[tx_hash] = done(acc, failed)
    return out


_PLAIN = TxTrace(False)
_FAILED = TxTrace(True)


def _top_level_frames(traces: Traces, tx_hashes: Sequence[str]) -> dict[str, tuple[Any, Any, Any]]:
    """(from, to, value) of each transaction's top-level frame, by tx hash, as the node gave them: to is None
    for a creation. Only transactions with exactly one plain top-level frame (a call or a creation, with a
    value) are in the answer."""
    out: dict[str, tuple[Any, Any, Any]] = {}
    doubtful: set[str] = set()
    if traces.source is InternalSource.TRACE_BLOCK:
        for trace in traces.payload:
            if not isinstance(trace, dict) or trace.get("traceAddress"):
                continue
            tx_hash, action, kind = trace.get("transactionHash"), trace.get("action"), trace.get("type")
            if not isinstance(tx_hash, str) or not tx_hash:
                continue  # a block reward
            tx_hash = tx_hash.lower()
            if tx_hash in out or not isinstance(action, dict) or "value" not in action:
                doubtful.add(tx_hash)
            elif kind == "call" and action.get("callType", "call") == "call":
                out[tx_hash] = (action.get("from"), action.get("to"), action["value"])
            elif kind == "create":
                out[tx_hash] = (action.get("from"), None, action["value"])
            else:
                doubtful.add(tx_hash)
    elif traces.source is InternalSource.CALL_TRACER and len(traces.payload) == len(tx_hashes):
        for tx_hash, item in zip(tx_hashes, traces.payload, strict=True):
            if not isinstance(item, dict):
                return {}
            if item.get("txHash") and str(item["txHash"]).lower() != tx_hash:
                return {}
            root = item.get("result")
            if not isinstance(root, dict) or "value" not in root:
                continue
            kind = str(root.get("type", "")).upper()
            if kind == "CALL":
                out[tx_hash] = (root.get("from"), root.get("to"), root["value"])
            elif kind in ("CREATE", "CREATE2"):
                out[tx_hash] = (root.get("from"), None, root["value"])
    for tx_hash in doubtful:
        out.pop(tx_hash, None)
    return out


def _same_address(a: object, b: object) -> bool:
    """Whether two addresses from the node are the same (either may be None, for no address)."""
    if a is None or b is None:
        return a is None and b is None
    return isinstance(a, str) and isinstance(b, str) and (a == b or a.lower() == b.lower())


def transactions_from_traces(
    tx_hashes: Sequence[object], receipts: Sequence[Any], traces: Traces
) -> list[JsonDict] | None:
    """The transactions of a block fetched without them (`eth_getBlockByNumber(n, false)`: hashes only), as
    `map_block` reads them — hash, from, to, value — rebuilt from the receipts (from, to) and the value of each
    transaction's top-level trace frame, which is the transaction's own value.

    None, so that the caller fetches the full transactions instead, unless every transaction has a receipt and
    one plain top-level frame, and the two agree on sender and recipient: a node that leaves transactions out
    of its traces (system transactions on some chains), a trace that failed, or any other doubt.
    """
    hashes = [h.lower() for h in tx_hashes if isinstance(h, str)]
    if len(hashes) != len(tx_hashes):
        return None
    frames = _top_level_frames(traces, hashes)
    if len(frames) != len(hashes):
        return None
    by_hash: dict[str, Any] = {}
    for receipt in receipts:
        tx_hash = receipt.get("transactionHash") if isinstance(receipt, dict) else None
        if isinstance(tx_hash, str):
            by_hash[tx_hash.lower()] = receipt
    txs: list[JsonDict] = []
    for tx_hash in hashes:
        receipt, frame = by_hash.get(tx_hash), frames.get(tx_hash)
        if receipt is None or frame is None:
            return None
        src, dst, value = frame
        if src is None or not _same_address(src, receipt.get("from")) or not _same_address(dst, receipt.get("to")):
            return None
        txs.append({"hash": tx_hash, "from": src, "to": dst, "value": value})
    return txs


def _index_receipts(receipts: Sequence[Mapping[str, Any]], number: int) -> dict[str, Mapping[str, Any]]:
    by_hash: dict[str, Mapping[str, Any]] = {}
    for receipt in receipts:
        if not isinstance(receipt, Mapping):
            raise MalformedPayload(f"block {number}: a receipt is not an object")
        by_hash[str(_field(receipt, "transactionHash", f"a receipt of block {number}")).lower()] = receipt
    return by_hash


def map_block(
    chain: str,
    block: Mapping[str, Any],
    receipts: Sequence[Mapping[str, Any]],
    traces: Traces,
    *,
    receipts_source: str = "eth_getBlockReceipts",
    native_symbol: str | None = None,
    native_decimals: int = 18,
) -> BlockTransfers:
    """The transfers of one block from eth_getBlockByNumber(n, true), its receipts and its call traces.

    `native_symbol` (the chain's coin, e.g. ETH) is set on native and internal transfers with `native_decimals`.
    """
    if not isinstance(block, Mapping):
        raise MalformedPayload("the block is not an object")
    number = quantity(_field(block, "number", "the block"), "block number")
    where = f"block {number}"
    b = _Block(
        chain=chain,
        number=number,
        hash=str(_field(block, "hash", where)).lower(),
        timestamp=quantity(_field(block, "timestamp", where), f"{where} timestamp"),
        native_symbol=native_symbol,
        native_decimals=native_decimals if native_symbol else None,
    )
    parent_hash = str(_field(block, "parentHash", where)).lower()
    txs = _field(block, "transactions", where)
    if not isinstance(txs, list) or any(not isinstance(tx, Mapping) for tx in txs):
        raise MalformedPayload(f"{where}: transactions are not objects (was the block fetched with full=true?)")
    by_hash = _index_receipts(receipts, number)

    tx_hashes = [str(_field(tx, "hash", f"a transaction of {where}")).lower() for tx in txs]
    traced = map_traces(
        traces,
        tx_hashes,
        chain=chain,
        number=number,
        block_hash=b.hash,
        timestamp=b.timestamp,
        native_symbol=b.native_symbol,
        native_decimals=b.native_decimals,
    )

    failed_txs = unknown_status = 0
    for tx, tx_hash in zip(txs, tx_hashes, strict=True):
        receipt = by_hash.get(tx_hash)
        if receipt is None:
            raise MalformedPayload(f"{where}: no receipt for tx {tx_hash}")
        trace = traced.get(tx_hash)
        status = receipt.get("status")
        if status is not None:
            failed = quantity(status, f"status of tx {tx_hash}") == 0
        elif trace is not None:
            failed = trace.failed  # before Byzantium receipts had no status; the trace tells
        else:
            failed = False
            unknown_status += 1
        if failed:
            failed_txs += 1
            continue
        value = quantity(tx.get("value", "0x0"), f"value of tx {tx_hash}")
        if value:
            sender = _payload_address(_field(tx, "from", f"tx {tx_hash}"), f"tx {tx_hash} from")
            recipient = tx.get("to") or receipt.get("contractAddress")
            if recipient:
                b.add(
                    tx_hash,
                    TransferKind.NATIVE,
                    "tx",
                    sender,
                    _payload_address(recipient, f"tx {tx_hash} to"),
                    value,
                    None,
                )
            else:
                b.note(f"tx {tx_hash} carries value but has neither a recipient nor a created contract")
        if trace is not None:
            b.transfers.extend(trace.transfers)
            b.skipped_frames += trace.skipped_frames
            for note in trace.notes:
                if len(b.notes) < MAX_NOTES:
                    b.notes.append(note)
        _map_logs(b, tx_hash, receipt.get("logs") or [])

    notes = list(b.notes)
    if traces.note:
        notes.insert(0, f"{where}: {traces.note}")
    coverage = BlockCoverage(
        internal=traces.source,
        receipts=receipts_source,
        skipped_logs=b.skipped_logs,
        failed_txs=failed_txs,
        skipped_frames=b.skipped_frames,
        unknown_status=unknown_status,
        notes=tuple(notes),
    )
    return BlockTransfers(
        chain=chain,
        number=number,
        hash=b.hash,
        parent_hash=parent_hash,
        timestamp=b.timestamp,
        tx_count=len(txs),
        transfers=tuple(b.transfers),
        coverage=coverage,
    )


def with_token_meta(transfers: Iterable[Transfer], tokens: Mapping[str, TokenMeta]) -> tuple[Transfer, ...]:
    """The transfers with `decimals` and `symbol` filled in from `tokens` where known."""
    out = []
    for t in transfers:
        meta = tokens.get(t.token) if t.token is not None else None
        if meta is not None and (meta.decimals is not None or meta.symbol is not None):
            t = replace(t, decimals=meta.decimals, symbol=meta.symbol)
        out.append(t)
    return tuple(out)
