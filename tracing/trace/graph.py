"""In-memory indexes over the store for tracing at interactive speed: the transfer graph (compact adjacency
arrays per chain, loaded lazily from the `transfer` table and refreshed as new rows arrive), the label snapshot,
and the flow selection every transfer source shares (which transfers of an address a trace follows).

The graph holds, per edge, everything a trace result needs (no database round-trip on the hot path): endpoints,
time, block, token, exact raw value, tx hash, kind/position and source. Arrays are stdlib `array`s (about 90 bytes
per transfer); numpy, when installed, only speeds up building them.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from array import array
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlmodel import select

from storage import ANY_EVM, Database, LabelRow
from tracing.chain.transfer import Transfer, TransferKind
from tracing.labels import Category, Label, sort_labels

log = logging.getLogger(__name__)

Asset = str | None
"""A token address, or None for the chain's native coin."""

NATIVE_DECIMALS = 18

# --- flow selection, shared by every transfer source ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FlowQuery:
    """What a trace asks of every address it expands (the per-address time window is in `FlowRequest`).

    `direction` is `out` (transfers sent by the address) or `in` (received). `token`: None for every asset,
    `"native"` for the native coin only, or a token address. `min_value` is in human units of each asset (raw units
    when a token's decimals are unknown). `fanout` caps the counterparties followed per address, largest flows
    first; `scan_limit` caps the transfers examined per address; an address with more than `hub_degree` transfers
    in the direction is treated as a busy service and not expanded (the root always is).
    """

    direction: str = "out"
    token: str | None = None
    min_value: Decimal | None = None
    fanout: int = 100
    scan_limit: int = 50_000
    hub_degree: int = 1_000


@dataclass(frozen=True, slots=True)
class FlowRequest:
    address: str
    since: int | None = None
    until: int | None = None
    root: bool = False


@dataclass(frozen=True, slots=True)
class Flows:
    """The transfers a trace follows from one address, and what it left out."""

    address: str
    transfers: tuple[Transfer, ...] = ()
    degree: int = 0
    """Every transfer of the address in the direction, at any time (0: the source knows nothing of it)."""
    in_window: int = 0
    scanned: int = 0
    matched: int = 0
    counterparties: int = 0
    kept: int = 0
    totals: Mapping[Asset, int] = field(default_factory=dict)
    """Value per asset of the transfers in the window (before the value filter and the fan-out cap)."""
    hub: bool = False
    source: str = ""
    error: str = ""
    """Why the source could not answer (the trace records it as a gap)."""
    incomplete: str = ""
    """Why the source's history of the address is known to be incomplete (an explorer's row cap, a block with more
    rows than one result window); empty when it is complete or the source cannot tell. The trace reports it."""

    @property
    def dropped(self) -> int:
        return self.counterparties - self.kept

    @property
    def unscanned(self) -> int:
        return self.in_window - self.scanned


def raw_threshold(min_value: Decimal | None, decimals: int | None) -> int:
    """The smallest raw value that passes `min_value` (human units) for an asset with those decimals."""
    if min_value is None or min_value <= 0:
        return 1
    return max(1, math.ceil(min_value.scaleb(decimals or 0)))


def _asset_matches(token_filter: str | None, asset: Asset) -> bool:
    if token_filter is None:
        return True
    if token_filter == "native":
        return asset is None
    return asset == token_filter


def scan_slice(window: list[Any], outgoing: bool, limit: int) -> list[Any]:
    """The part of an address's window a trace examines: the earliest `limit` transfers going forward (the funds
    left first), the latest going backward (the funds arrived last before they moved on)."""
    if len(window) <= limit:
        return window
    return window[:limit] if outgoing else window[len(window) - limit :]


def rank_counterparties(amounts: Mapping[str, Mapping[Any, int]]) -> list[str]:
    """Counterparties, most important first: each is ranked within every asset it moved (largest amount first), and
    ordered by its best rank, then address. Raw amounts of different assets are never added up."""
    assets = {asset for by_asset in amounts.values() for asset in by_asset}
    if len(assets) == 1:  # the common case: one asset, a plain sort
        (only,) = assets
        return sorted(amounts, key=lambda party: (-amounts[party][only], party))
    best: dict[str, int] = {}
    per_asset: dict[Any, list[tuple[int, str]]] = defaultdict(list)
    for party, by_asset in amounts.items():
        for asset, value in by_asset.items():
            per_asset[asset].append((-value, party))
    for entries in per_asset.values():
        entries.sort()
        for rank, (_, party) in enumerate(entries):
            if rank < best.get(party, rank + 1):
                best[party] = rank
    return sorted(best, key=lambda party: (best[party], party))


def select_flows(
    address: str, candidates: Sequence[Transfer], request: FlowRequest, query: FlowQuery, degree: int, source: str
) -> Flows:
    """Pick the transfers to follow from `candidates` (the address's transfers in the direction, oldest first).

    The reference implementation, used by the SQL and explorer sources; `TransferGraph.flows` does the same on its
    arrays and must agree with it.
    """
    outgoing = query.direction == "out"
    if degree > query.hub_degree and not request.root:
        return Flows(address, degree=degree, hub=True, source=source)
    window = [
        t
        for t in candidates
        if (request.since is None or t.timestamp >= request.since)
        and (request.until is None or t.timestamp <= request.until)
    ]
    scanned = scan_slice(window, outgoing, query.scan_limit)
    totals: dict[Asset, int] = defaultdict(int)
    amounts: dict[str, dict[Asset, int]] = defaultdict(lambda: defaultdict(int))
    passing: dict[str, list[Transfer]] = defaultdict(list)
    thresholds: dict[Asset, int] = {}
    matched = 0
    for t in scanned:
        if t.value <= 0 or t.from_addr == t.to_addr or not _asset_matches(query.token, t.token):
            continue
        totals[t.token] += t.value
        threshold = thresholds.get(t.token)
        if threshold is None:
            decimals = NATIVE_DECIMALS if t.token is None else t.decimals
            threshold = thresholds[t.token] = raw_threshold(query.min_value, decimals)
        if t.value < threshold:
            continue
        party = t.to_addr if outgoing else t.from_addr
        amounts[party][t.token] += t.value
        passing[party].append(t)
        matched += 1
    ranked = rank_counterparties(amounts)
    kept = ranked[: query.fanout]
    chosen = sorted(
        (t for party in kept for t in passing[party]),
        key=lambda t: (t.timestamp, t.block_number, t.tx_hash, t.position),
    )
    return Flows(
        address,
        transfers=tuple(chosen),
        degree=degree,
        in_window=len(window),
        scanned=len(scanned),
        matched=matched,
        counterparties=len(ranked),
        kept=len(kept),
        totals=dict(totals),
        source=source,
    )


# --- the transfer graph --------------------------------------------------------------------------------------


class Selection(NamedTuple):
    """What `TransferGraph.select` picked at one address: edge ids in time order, and what it left out."""

    degree: int
    hub: bool
    in_window: int
    scanned: int
    chosen: list[int]
    totals: dict[int, int]
    """Per token id (-1: native)."""
    counterparties: int
    kept: int
    matched: int = 0


_MASK64 = (1 << 64) - 1
_BIG = _MASK64
"""`value_hi` sentinel: the exact value (≥ 2**127) is in `TransferGraph.big_values`."""

_COLUMNS = (
    "id, block_number, timestamp, tx_hash, kind, position, token, from_addr, to_addr, value, decimals, symbol, source"
)


def _empty(typecode: str, n: int = 0) -> array[Any]:
    return array(typecode, bytes(array(typecode).itemsize * n))


@dataclass
class GraphStats:
    nodes: int
    edges: int
    approx_bytes: int
    first_block: int | None
    last_block: int | None
    first_time: int | None
    last_time: int | None
    sources: tuple[str, ...]


class TransferGraph:
    """Transfers of one chain as compact adjacency arrays: out- and in-edges of every address sorted by time.

    Build it with `TransferGraph.from_transfers` or `from_columns`, or let `GraphCache` load it from the store.
    `append` adds transfers after the build (kept in small per-address overflow lists until `compact`).
    """

    def __init__(self, chain: str) -> None:
        self.chain = chain
        self.addresses: list[str] = []
        self.ids: dict[str, int] = {}
        self.tokens: list[str] = []
        self.token_ids: dict[str, int] = {}
        self.token_meta: list[tuple[int | None, str | None]] = []
        self.kinds: list[tuple[TransferKind, str]] = []
        self.kind_ids: dict[tuple[str, str], int] = {}
        self.sources: list[str] = []
        self.source_ids: dict[str, int] = {}
        self.src = _empty("i")
        self.dst = _empty("i")
        self.ts = _empty("q")
        self.block = _empty("q")
        self.token = _empty("i")
        self.value_lo = _empty("Q")
        self.value_hi = _empty("Q")
        self.big_values: dict[int, int] = {}
        self.tx = bytearray()
        self.tx_other: dict[int, str] = {}
        self.kind = _empty("i")
        self.source = _empty("B")
        self.row_ids: set[tuple[str, str, str]] = set()
        self.out_off = _empty("q", 1)
        self.out_edge = _empty("i")
        self.out_ts = _empty("q")
        self.in_off = _empty("q", 1)
        self.in_edge = _empty("i")
        self.in_ts = _empty("q")
        self.extra_out: dict[int, list[int]] = {}
        self.extra_in: dict[int, list[int]] = {}
        self.indexed_edges = 0
        self.last_row_id = 0
        self.last_row_key: tuple[str, str] | None = None
        self.loaded_at = 0.0
        self.meta_changes = 0
        """Bumped whenever token metadata changes (keys `walk_columns`' cache)."""
        self._walk_columns: dict[tuple[Any, ...], tuple[array[Any], ...]] = {}

    # -- building --

    def _node(self, address: str) -> int:
        node = self.ids.get(address)
        if node is None:
            node = self.ids[address] = len(self.addresses)
            self.addresses.append(address)
        return node

    def _token(self, token: str | None, decimals: int | None, symbol: str | None) -> int:
        if token is None:
            return -1
        tid = self.token_ids.get(token)
        if tid is None:
            tid = self.token_ids[token] = len(self.tokens)
            self.tokens.append(token)
            self.token_meta.append((decimals, symbol))
        elif self.token_meta[tid][0] is None and decimals is not None:
            self.token_meta[tid] = (decimals, symbol)
            self.meta_changes += 1
        return tid

    def _kind(self, kind: str, position: str) -> int:
        key = (kind, position)
        kid = self.kind_ids.get(key)
        if kid is None:
            kid = self.kind_ids[key] = len(self.kinds)
            self.kinds.append((TransferKind(kind), position))
        return kid

    def _source(self, source: str) -> int:
        sid = self.source_ids.get(source)
        if sid is None:
            sid = self.source_ids[source] = len(self.sources)
            self.sources.append(source)
        return sid

    def _push_transfer(self, t: Transfer) -> int:
        return self._push(
            t.block_number,
            t.timestamp,
            t.tx_hash,
            t.kind.value,
            t.position,
            t.token,
            t.from_addr,
            t.to_addr,
            t.value,
            t.decimals,
            t.symbol,
            t.source,
        )

    def _push(
        self,
        block: int,
        timestamp: int,
        tx_hash: str,
        kind: str,
        position: str,
        token: str | None,
        from_addr: str,
        to_addr: str,
        value: int,
        decimals: int | None,
        symbol: str | None,
        source: str,
    ) -> int:
        edge = len(self.src)
        self.src.append(self._node(from_addr))
        self.dst.append(self._node(to_addr))
        self.ts.append(timestamp)
        self.block.append(block)
        self.token.append(self._token(token, decimals, symbol))
        if value >> 127:
            self.value_lo.append(0)
            self.value_hi.append(_BIG)
            self.big_values[edge] = value
        else:
            self.value_lo.append(value & _MASK64)
            self.value_hi.append(value >> 64)
        if len(tx_hash) == 66 and tx_hash.startswith("0x"):
            try:
                self.tx += bytes.fromhex(tx_hash[2:])
            except ValueError:
                self.tx += bytes(32)
                self.tx_other[edge] = tx_hash
        else:
            self.tx += bytes(32)
            self.tx_other[edge] = tx_hash
        self.kind.append(self._kind(kind, position))
        self.source.append(self._source(source))
        self.row_ids.add((tx_hash, kind, position))
        return edge

    @classmethod
    def from_transfers(cls, chain: str, transfers: Iterable[Transfer]) -> TransferGraph:
        graph = cls(chain)
        for t in transfers:
            if t.chain != chain or (t.tx_hash, t.kind.value, t.position) in graph.row_ids:
                continue
            graph._push_transfer(t)
        graph.compact()
        return graph

    def _push_row(self, row: Sequence[Any]) -> None:
        (row_id, block, ts, tx_hash, kind, position, token, from_addr, to_addr, value, decimals, symbol, source) = row
        if (tx_hash, kind, position) in self.row_ids:
            return
        self._push(
            int(block),
            int(ts),
            tx_hash,
            kind,
            position,
            token,
            from_addr,
            to_addr,
            int(value),
            decimals,
            symbol,
            source,
        )
        if int(row_id) > self.last_row_id:
            self.last_row_id = int(row_id)
            self.last_row_key = (tx_hash, position)

    @classmethod
    def from_columns(
        cls,
        chain: str,
        addresses: Sequence[str],
        src: Sequence[int],
        dst: Sequence[int],
        timestamps: Sequence[int],
        blocks: Sequence[int],
        values: Sequence[int],
        tx_hashes: bytes,
        *,
        source: str = "synthetic",
    ) -> TransferGraph:
        """Build from ready-made columns (the benchmark's generator): native transfers, node ids into `addresses`,
        `values` below 2**64, `tx_hashes` 32 bytes per edge. Sequences may be numpy arrays."""
        graph = cls(chain)
        graph.addresses = list(addresses)
        graph.ids = {a: i for i, a in enumerate(graph.addresses)}
        n = len(src)
        graph.src = _as_array("i", src)
        graph.dst = _as_array("i", dst)
        graph.ts = _as_array("q", timestamps)
        graph.block = _as_array("q", blocks)
        graph.value_lo = _as_array("Q", values)
        graph.value_hi = _empty("Q", n)
        graph.token = array("i", [-1]) * n
        graph.kind = array("i", [graph._kind(TransferKind.NATIVE.value, "tx")]) * n
        graph.source = array("B", [graph._source(source)]) * n
        graph.tx = bytearray(tx_hashes)
        graph.compact()
        return graph

    def append(self, transfers: Iterable[Transfer]) -> int:
        """Add transfers after the build; returns how many were new."""
        added = 0
        for t in transfers:
            if t.chain != self.chain or (t.tx_hash, t.kind.value, t.position) in self.row_ids:
                continue
            edge = self._push_transfer(t)
            self._link_extra(edge)
            added += 1
        return added

    def _link_extra(self, edge: int) -> None:
        for extra, node in ((self.extra_out, self.src[edge]), (self.extra_in, self.dst[edge])):
            bucket = extra.setdefault(node, [])
            bucket.append(edge)
            bucket.sort(key=self.ts.__getitem__)

    def compact(self) -> None:
        """(Re)build the sorted adjacency arrays over every edge, emptying the overflow lists."""
        n_nodes, n_edges = len(self.addresses), len(self.src)
        self.out_off, self.out_edge, self.out_ts = _csr(self.src, self.ts, n_nodes)
        self.in_off, self.in_edge, self.in_ts = _csr(self.dst, self.ts, n_nodes)
        self.extra_out, self.extra_in = {}, {}
        self.indexed_edges = n_edges
        self.loaded_at = time.monotonic()
        self._walk_columns = {}

    def walk_columns(self, outgoing: bool, min_value: Decimal | None) -> tuple[array[Any], ...]:
        """The arrays `tracing.trace._walk.walk` reads, for one direction and value filter (cached until the graph or
        its token metadata changes): offsets, edge ids and times of the adjacency, the far end of every edge, time,
        value (low and high 64 bits), token, source, then per token (index 0: native) the decimals that scale a value to
        its weight (-1: more than 19, not handled) and the raw threshold of `min_value` (low and high 64 bits)."""
        key = (outgoing, min_value, len(self.src), len(self.tokens), self.meta_changes, self.indexed_edges)
        cached = self._walk_columns.get(key)
        if cached is not None:
            return cached
        decimals = array("i", [NATIVE_DECIMALS])
        decimals.extend(d if d <= 19 else -1 for d in ((meta[0] or 0) for meta in self.token_meta))
        limits = [
            raw_threshold(min_value, NATIVE_DECIMALS if tid < 0 else self.token_meta[tid][0])
            for tid in range(-1, len(self.tokens))
        ]
        limits = [min(limit, (1 << 128) - 1) for limit in limits]
        columns = (
            *((self.out_off, self.out_edge, self.out_ts) if outgoing else (self.in_off, self.in_edge, self.in_ts)),
            self.dst if outgoing else self.src,
            self.ts,
            self.value_lo,
            self.value_hi,
            self.token,
            self.source,
            decimals,
            array("Q", [limit & _MASK64 for limit in limits]),
            array("Q", [limit >> 64 for limit in limits]),
        )
        if any(k[2:] != key[2:] for k in self._walk_columns):  # the graph changed: drop the old columns
            self._walk_columns = {}
        if len(self._walk_columns) >= 8:
            self._walk_columns.clear()
        self._walk_columns[key] = columns  # both directions of a risk report stay cached
        return columns

    @property
    def pending(self) -> int:
        """Edges added since the last `compact`."""
        return len(self.src) - self.indexed_edges

    # -- reading --

    def __len__(self) -> int:
        return len(self.src)

    def value(self, edge: int) -> int:
        hi = self.value_hi[edge]
        if hi == _BIG:
            return self.big_values[edge]
        return (hi << 64) | self.value_lo[edge] if hi else self.value_lo[edge]

    def tx_hash(self, edge: int) -> str:
        other = self.tx_other.get(edge)
        if other is not None:
            return other
        return "0x" + self.tx[32 * edge : 32 * edge + 32].hex()

    def transfer(self, edge: int) -> Transfer:
        tid = self.token[edge]
        token, decimals, symbol = (None, None, None) if tid < 0 else (self.tokens[tid], *self.token_meta[tid])
        kind, position = self.kinds[self.kind[edge]]
        return Transfer(
            chain=self.chain,
            block_number=self.block[edge],
            block_hash="",
            timestamp=self.ts[edge],
            tx_hash=self.tx_hash(edge),
            kind=kind,
            position=position,
            from_addr=self.addresses[self.src[edge]],
            to_addr=self.addresses[self.dst[edge]],
            value=self.value(edge),
            token=token,
            decimals=decimals,
            symbol=symbol,
            source=self.sources[self.source[edge]],
        )

    def degree(self, address: str, direction: str) -> int:
        node = self.ids.get(address)
        if node is None:
            return 0
        off, extra = (self.out_off, self.extra_out) if direction == "out" else (self.in_off, self.extra_in)
        base = off[node + 1] - off[node] if node + 1 < len(off) else 0
        return base + len(extra.get(node, ()))

    def edges_of(self, address: str, direction: str) -> Iterator[int]:
        """Edge ids of the address in the direction, oldest first."""
        node = self.ids.get(address)
        if node is None:
            return iter(())
        return iter(self._window(node, direction == "out", None, None))

    def _window(self, node: int, outgoing: bool, since: int | None, until: int | None) -> list[int]:
        off, edges, stamps, extra = (
            (self.out_off, self.out_edge, self.out_ts, self.extra_out)
            if outgoing
            else (self.in_off, self.in_edge, self.in_ts, self.extra_in)
        )
        found: list[int] = []
        if node + 1 < len(off):
            lo, hi = off[node], off[node + 1]
            if since is not None:
                lo = bisect_left(stamps, since, lo, hi)
            if until is not None:
                hi = bisect_right(stamps, until, lo, hi)
            found = edges[lo:hi].tolist()
        more = extra.get(node)
        if more:
            ts = self.ts
            found += [e for e in more if (since is None or ts[e] >= since) and (until is None or ts[e] <= until)]
            found.sort(key=ts.__getitem__)
        return found

    def select(
        self, node: int, outgoing: bool, since: int | None, until: int | None, query: FlowQuery, root: bool = False
    ) -> Selection:
        """`select_flows` on the arrays, by node and edge ids: the same selection, nothing materialised."""
        off, extra = (self.out_off, self.extra_out) if outgoing else (self.in_off, self.extra_in)
        degree = (off[node + 1] - off[node] if node + 1 < len(off) else 0) + len(extra.get(node, ()))
        if degree > query.hub_degree and not root:
            return Selection(degree, True, 0, 0, [], {}, 0, 0)
        window = self._window(node, outgoing, since, until)
        scanned = scan_slice(window, outgoing, query.scan_limit)
        far = self.dst if outgoing else self.src
        token_of, lo_of, hi_of = self.token, self.value_lo, self.value_hi
        totals: dict[int, int] = {}
        amounts: dict[int, dict[int, int]] = {}
        passing: list[int] = []
        party_of: dict[int, int] = {}
        token_filter = query.token
        plain = token_filter is None and (query.min_value is None or query.min_value <= 0)
        wanted_token = -1 if token_filter in (None, "native") else self.token_ids.get(token_filter or "", -3)
        thresholds: dict[int, int] = {}
        for edge in scanned:
            party = far[edge]
            if party == node:
                continue
            hi = hi_of[edge]
            value = self.value(edge) if hi else lo_of[edge]
            if not value:
                continue
            tid = token_of[edge]
            if not plain:
                if token_filter is not None and tid != wanted_token:
                    continue
                totals[tid] = totals.get(tid, 0) + value
                threshold = thresholds.get(tid)
                if threshold is None:
                    decimals = NATIVE_DECIMALS if tid < 0 else self.token_meta[tid][0]
                    threshold = thresholds[tid] = raw_threshold(query.min_value, decimals)
                if value < threshold:
                    continue
            else:
                totals[tid] = totals.get(tid, 0) + value
            by_asset = amounts.get(party)
            if by_asset is None:
                amounts[party] = {tid: value}
            else:
                by_asset[tid] = by_asset.get(tid, 0) + value
            passing.append(edge)
            party_of[edge] = party
        count = len(amounts)
        if count <= query.fanout:  # nothing to cut: every counterparty is followed, in time order
            chosen = passing
            kept = count
        else:
            names = self.addresses
            ranked = rank_counterparties({names[p]: by_asset for p, by_asset in amounts.items()})
            ids = self.ids
            keep = {ids[name] for name in ranked[: query.fanout]}
            chosen = [edge for edge in passing if party_of[edge] in keep]
            kept = len(keep)
        return Selection(degree, False, len(window), len(scanned), chosen, totals, count, kept, len(passing))

    def flows(self, request: FlowRequest, query: FlowQuery, source: str = "graph") -> Flows:
        """The `TransferSource` answer for one address (with `Transfer`s), from `select`."""
        node = self.ids.get(request.address)
        if node is None:
            return Flows(request.address, source=source)
        picked = self.select(node, query.direction == "out", request.since, request.until, query, request.root)
        if picked.hub:
            return Flows(request.address, degree=picked.degree, hub=True, source=source)
        return Flows(
            request.address,
            transfers=tuple(self.transfer(e) for e in picked.chosen),
            degree=picked.degree,
            in_window=picked.in_window,
            scanned=picked.scanned,
            matched=picked.matched,
            counterparties=picked.counterparties,
            kept=picked.kept,
            totals={(None if tid < 0 else self.tokens[tid]): v for tid, v in picked.totals.items()},
            source=source,
        )

    def stats(self) -> GraphStats:
        n = len(self.src)
        return GraphStats(
            nodes=len(self.addresses),
            edges=n,
            approx_bytes=self.approx_bytes(),
            first_block=min(self.block) if n else None,
            last_block=max(self.block) if n else None,
            first_time=min(self.ts) if n else None,
            last_time=max(self.ts) if n else None,
            sources=tuple(self.sources),
        )

    def approx_bytes(self) -> int:
        arrays = (self.src, self.dst, self.ts, self.block, self.token, self.value_lo, self.value_hi, self.kind)
        size = sum(a.itemsize * len(a) for a in arrays) + len(self.source) + len(self.tx)
        size += sum(a.itemsize * len(a) for a in (self.out_off, self.out_edge, self.out_ts))
        size += sum(a.itemsize * len(a) for a in (self.in_off, self.in_edge, self.in_ts))
        # address strings (~91 B), their list slot and dict entry; the (tx, kind, position) dedup set
        size += len(self.addresses) * (91 + 8 + 100) + len(self.row_ids) * 200
        return size


def _as_array(typecode: str, values: Any) -> array[Any]:
    if hasattr(values, "astype"):  # numpy: one memcpy instead of a Python loop
        dtype = {"i": "int32", "q": "int64", "Q": "uint64", "B": "uint8"}[typecode]
        out = array(typecode)
        out.frombytes(values.astype(dtype).tobytes())  # type: ignore[attr-defined]
        return out
    return array(typecode, values)


def _csr(keys: array[Any], stamps: array[Any], n_nodes: int) -> tuple[array[Any], array[Any], array[Any]]:
    """Offsets, edge ids and timestamps of edges grouped by `keys` (node ids), each group sorted by time."""
    n = len(keys)
    if n:
        try:
            return _csr_numpy(keys, stamps, n_nodes)
        except ImportError:
            pass
    counts = [0] * (n_nodes + 1)
    for key in keys:
        counts[key + 1] += 1
    for i in range(n_nodes):
        counts[i + 1] += counts[i]
    offsets = array("q", counts)
    slots = counts[:-1]
    edges = _empty("i", n)
    for edge in sorted(range(n), key=stamps.__getitem__):
        key = keys[edge]
        edges[slots[key]] = edge
        slots[key] += 1
    return offsets, edges, array("q", (stamps[e] for e in edges))


def _csr_numpy(keys: array[Any], stamps: array[Any], n_nodes: int) -> tuple[array[Any], array[Any], array[Any]]:
    import numpy as np

    k: Any = np.frombuffer(keys, dtype=np.int32)
    t: Any = np.frombuffer(stamps, dtype=np.int64)
    order: Any = np.lexsort((t, k)).astype(np.int32)
    offsets: Any = np.zeros(n_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(k, minlength=n_nodes), out=offsets[1:])
    return _as_array("q", offsets), _as_array("i", order), _as_array("q", t[order])


# --- loading from the store, refreshing, and the label snapshot ------------------------------------------------


class GraphCache:
    """One `TransferGraph` per chain, loaded from the store on first use and kept fresh.

    Freshness is checked at most every `check_interval` seconds, cheaply: new rows (id above the last loaded) are
    appended; if the last loaded row is gone or changed (a reorg deleted and replaced rows), the graph is reloaded.
    Stores larger than `sync_limit` rows load in a background thread; until then `get` returns None and callers use
    the SQL path.
    """

    def __init__(
        self, db: Database, *, check_interval: float = 1.0, sync_limit: int = 250_000, compact_ratio: float = 0.2
    ) -> None:
        self.db = db
        self.check_interval = check_interval
        self.sync_limit = sync_limit
        self.compact_ratio = compact_ratio
        self._graphs: dict[str, TransferGraph] = {}
        self._checked: dict[str, float] = {}
        self._loading: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def get(self, chain: str) -> TransferGraph | None:
        graph = self._graphs.get(chain)
        if graph is None:
            if chain in self._loading:
                return None
            if self._max_row_id() > self.sync_limit:
                self._load_in_background(chain)
                return None
            graph = self.load(chain)
        else:
            self.refresh(chain)
            graph = self._graphs.get(chain)
        return graph

    def load(self, chain: str) -> TransferGraph:
        """Load the chain's graph now (replacing any loaded one)."""
        started = time.monotonic()
        graph = TransferGraph(chain)
        for row in self._rows(chain, after=0):
            graph._push_row(row)
        graph.compact()
        with self._lock:
            self._graphs[chain] = graph
            self._checked[chain] = time.monotonic()
        log.info("loaded %s transfer graph: %d transfers in %.2fs", chain, len(graph), time.monotonic() - started)
        return graph

    def put(self, graph: TransferGraph, *, last_row_id: int = 0) -> None:
        """Use a graph built elsewhere (a benchmark's synthetic one) as the chain's loaded graph."""
        graph.last_row_id = max(graph.last_row_id, last_row_id)
        with self._lock:
            self._graphs[graph.chain] = graph
            self._checked[graph.chain] = time.monotonic()

    def invalidate(self, chain: str | None = None) -> None:
        """Forget loaded graphs (all, or one chain's); the next `get` reloads."""
        with self._lock:
            for name in [chain] if chain else list(self._graphs):
                self._graphs.pop(name, None)
                self._checked.pop(name, None)

    def refresh(self, chain: str, *, force: bool = False) -> int:
        """Bring the chain's loaded graph up to date; returns the number of transfers appended (-1: reloaded)."""
        graph = self._graphs.get(chain)
        if graph is None:
            return 0
        now = time.monotonic()
        if not force and now - self._checked.get(chain, 0.0) < self.check_interval:
            return 0
        self._checked[chain] = now
        if graph.last_row_id and self._row_key(graph.last_row_id) != (chain, *(graph.last_row_key or ("", ""))):
            self.load(chain)
            return -1
        before = len(graph)
        with self._lock:
            for row in self._rows(chain, after=graph.last_row_id):
                (
                    row_id,
                    block,
                    ts,
                    tx_hash,
                    kind,
                    position,
                    token,
                    from_addr,
                    to_addr,
                    value,
                    decimals,
                    symbol,
                    source,
                ) = row
                if (tx_hash, kind, position) not in graph.row_ids:
                    graph.append(
                        [
                            Transfer(
                                chain,
                                int(block),
                                "",
                                int(ts),
                                tx_hash,
                                TransferKind(kind),
                                position,
                                from_addr,
                                to_addr,
                                int(value),
                                token,
                                decimals,
                                symbol,
                                source,
                            )
                        ]
                    )
                graph.last_row_id = max(graph.last_row_id, int(row_id))
                if graph.last_row_id == int(row_id):
                    graph.last_row_key = (tx_hash, position)
            if graph.pending > max(1000, self.compact_ratio * graph.indexed_edges):
                graph.compact()
        return len(graph) - before

    def _load_in_background(self, chain: str) -> None:
        def run() -> None:
            try:
                self.load(chain)
            except Exception:
                log.exception("loading the %s transfer graph failed; tracing stays on the SQL path", chain)
            finally:
                self._loading.pop(chain, None)

        thread = threading.Thread(target=run, name=f"graph-load-{chain}", daemon=True)
        self._loading[chain] = thread
        thread.start()

    def wait(self, chain: str, timeout: float | None = None) -> TransferGraph | None:
        """Wait for a background load (tests, benchmarks) and return the graph."""
        thread = self._loading.get(chain)
        if thread is not None:
            thread.join(timeout)
        return self._graphs.get(chain)

    def _max_row_id(self) -> int:
        with self.db.engine.connect() as conn:
            return int(conn.execute(text("SELECT max(id) FROM transfer")).scalar() or 0)

    def _row_key(self, row_id: int) -> tuple[str, str, str] | None:
        with self.db.engine.connect() as conn:
            row = conn.execute(
                text("SELECT chain, tx_hash, position FROM transfer WHERE id = :id"), {"id": row_id}
            ).first()
        return (row[0], row[1], row[2]) if row else None

    def _rows(self, chain: str, after: int) -> Iterator[Sequence[Any]]:
        query = text(f"SELECT {_COLUMNS} FROM transfer WHERE chain = :chain AND id > :after ORDER BY id")  # noqa: S608
        with self.db.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=20_000).execute(
                query, {"chain": chain, "after": after}
            )
            yield from result


LABEL_FINGERPRINT = text(
    "SELECT count(*), max(id), max(created_at), (SELECT value FROM kv WHERE key = 'labels:revision') FROM label"
)
"""What changes whenever the label table does: rows added or removed, and `LabelBook`'s revision for updates in place
(a delisting, a changed name or confidence)."""


class LabelCache:
    """Every label in memory, for label look-ups while tracing (thousands per trace). Same interface as
    `LabelBook.for_addresses`; reloaded when the label table changes (checked at most every `check_interval`)."""

    def __init__(self, db: Database, *, check_interval: float = 1.0) -> None:
        self.db = db
        self.check_interval = check_interval
        self._labels: dict[str, list[Label]] = {}
        self._fingerprint: tuple[Any, ...] | None = None
        self._checked = 0.0
        self._marks: weakref.WeakKeyDictionary[TransferGraph, dict[tuple[str, frozenset[Category]], NodeMarks]]
        self._marks = weakref.WeakKeyDictionary()

    def _fresh(self) -> None:
        now = time.monotonic()
        if self._fingerprint is not None and now - self._checked < self.check_interval:
            return
        self._checked = now
        with self.db.engine.connect() as conn:
            fingerprint = tuple(conn.execute(LABEL_FINGERPRINT).one())
        if fingerprint == self._fingerprint:
            return
        found: dict[str, list[Label]] = defaultdict(list)
        with self.db.session() as session:
            for row in session.scalars(select(LabelRow)):
                found[row.address].append(Label.from_row(row))
        self._labels = {address: sort_labels(labels) for address, labels in found.items()}
        self._fingerprint = fingerprint

    def fingerprint(self) -> tuple[Any, ...] | None:
        """The label table's fingerprint as of the (fresh) snapshot: equal fingerprints, equal labels and sets."""
        self._fresh()
        return self._fingerprint

    def for_addresses(self, addresses: Sequence[str], chain: str | None = None) -> dict[str, list[Label]]:
        self._fresh()
        return self._lookup(addresses, chain)

    def node_marks(self, graph: TransferGraph, chain: str, stop_at: frozenset[Category]) -> NodeMarks:
        """The current snapshot's labels as a byte per node of `graph` (see `NodeMarks`), built once per graph,
        snapshot, chain and stop set: the compiled walk reads it instead of calling back for every hop's labels."""
        self._fresh()
        labels = self._labels
        n_nodes = len(graph.addresses)
        per_graph = self._marks.get(graph)
        if per_graph is None:
            per_graph = self._marks[graph] = {}
        cached = per_graph.get((chain, stop_at))
        if cached is not None and cached.snapshot is labels and cached.n_nodes == n_nodes:
            return cached
        marks = bytearray(n_nodes)
        ids = graph.ids
        for address, mine in labels.items():
            node = ids.get(address)
            if node is None:
                continue
            wanted = [lb for lb in mine if lb.chain in (chain, ANY_EVM)]
            if wanted:
                marks[node] = 2 if any(lb.active and lb.category in stop_at for lb in wanted) else 1
        if any(m.snapshot is not labels or m.n_nodes != n_nodes for m in per_graph.values()):
            per_graph.clear()  # an older snapshot or a smaller graph
        found = per_graph[(chain, stop_at)] = NodeMarks(bytes(marks), labels, chain, n_nodes)
        return found

    def _lookup(self, addresses: Iterable[str], chain: str | None) -> dict[str, list[Label]]:
        return lookup_labels(self._labels, addresses, chain)

    def for_address(self, address: str, chain: str | None = None) -> list[Label]:
        return self.for_addresses([address], chain).get(address, [])


class NodeMarks(NamedTuple):
    """One label snapshot over one graph's nodes, for one chain and stop set: `marks[node]` is 0 for no label, 1
    for a labelled node, 2 for a labelled service where a trace stops (an active label in the stop set)."""

    marks: bytes
    snapshot: Mapping[str, list[Label]]
    chain: str
    n_nodes: int

    def labels_of(self, address: str) -> list[Label]:
        """The address's labels in the snapshot (`LabelCache.for_address` as of the snapshot)."""
        return lookup_labels(self.snapshot, (address,), self.chain).get(address, [])


def lookup_labels(
    labels: Mapping[str, list[Label]], addresses: Iterable[str], chain: str | None
) -> dict[str, list[Label]]:
    """`LabelCache.for_addresses` over the snapshot `labels`."""
    found: dict[str, list[Label]] = {}
    for address in addresses:
        mine = labels.get(address)
        if mine:
            if chain is not None:
                mine = [lb for lb in mine if lb.chain in (chain, ANY_EVM)]
            if mine:
                found[address] = mine
    return found
