"""The transfer graph: transfers of one chain as compact adjacency arrays (out- and in-edges of every address
sorted by time), with the flow selection of `tracing.trace.flows` done on its arrays by node and edge ids.

The graph holds, per edge, everything a trace result needs (no database round-trip on the hot path): endpoints,
time, block, token, exact raw value, tx hash, kind/position and source. Arrays are stdlib `array`s (about 90 bytes
per transfer); numpy, when installed, only speeds up building them. `GraphCache` (`tracing.trace.cache`) loads it
from the store and keeps it fresh.
"""

from __future__ import annotations

import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from tracing.chain.prices import native_decimals
from tracing.chain.transfer import Direction, Transfer, TransferKind
from tracing.trace.flows import (
    Asset,
    FlowQuery,
    FlowRequest,
    Flows,
    History,
    HistoryRequest,
    rank_counterparties,
    raw_threshold,
    scan_slice,
    transfer_order,
)


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

    def push_row(self, row: Sequence[Any]) -> None:
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
        native = native_decimals(self.chain)
        decimals = array("i", [native])
        decimals.extend(d if d <= 19 else -1 for d in ((meta[0] or 0) for meta in self.token_meta))
        limits = [
            raw_threshold(min_value, native if tid < 0 else self.token_meta[tid][0])
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
                    decimals = native_decimals(self.chain) if tid < 0 else self.token_meta[tid][0]
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
        picked = self.select(node, query.direction is Direction.OUT, request.since, request.until, query, request.root)
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

    def history(self, request: HistoryRequest, query: FlowQuery, source: str = "graph") -> History:
        """`history_of` on the arrays: the same `History`, reading only the address's own edges."""
        node = self.ids.get(request.address)
        if node is None:
            return History(request.address, source=source)
        outgoing = query.direction is Direction.OUT
        off, extra = (self.out_off, self.extra_out) if outgoing else (self.in_off, self.extra_in)
        degree = (off[node + 1] - off[node] if node + 1 < len(off) else 0) + len(extra.get(node, ()))
        if degree > query.hub_degree and not request.root:
            return History(request.address, degree=degree, hub=True, source=source)
        since, until = request.since, request.until
        window = self._window(node, outgoing, since, until)
        scanned = scan_slice(window, outgoing, query.scan_limit)
        far = self.dst if outgoing else self.src
        token_filter = query.token
        wanted = -1 if token_filter in (None, "native") else self.token_ids.get(token_filter or "", -3)
        sends = sorted(
            (
                self.transfer(e)
                for e in scanned
                if far[e] != node and self.value(e) and (token_filter is None or self.token[e] == wanted)
            ),
            key=transfer_order,
        )
        totals: dict[Asset, int] = {}
        for t in sends:
            totals[t.token] = totals.get(t.token, 0) + t.value
        receives: list[Transfer] = []
        opening: dict[int, int] = {}
        if sends and not request.root:  # the root holds nothing but traced funds: no ledger
            start = since if outgoing else until
            lo = since if outgoing else sends[0].timestamp
            hi = sends[-1].timestamp if outgoing else until
            other = self.src if outgoing else self.dst
            back = self._window(node, not outgoing, lo, hi)
            receives = sorted(
                (self.transfer(e) for e in back if other[e] != node and self.value(e)), key=transfer_order
            )
            if start is not None:
                before = (None, start - 1) if outgoing else (start + 1, None)
                for edge in self._window(node, not outgoing, *before):
                    if other[edge] != node:
                        tid = self.token[edge]
                        opening[tid] = opening.get(tid, 0) + self.value(edge)
                for edge in self._window(node, outgoing, *before):
                    if far[edge] != node:
                        tid = self.token[edge]
                        opening[tid] = opening.get(tid, 0) - self.value(edge)
        tokens = self.tokens
        return History(
            request.address,
            sends=tuple(sends),
            receives=tuple(receives),
            opening={(None if tid < 0 else tokens[tid]): value for tid, value in opening.items() if value > 0},
            degree=degree,
            in_window=len(window),
            scanned=len(scanned),
            totals=totals,
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
