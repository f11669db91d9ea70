"""Every label in memory for tracing (`LabelCache`), and one label snapshot as a byte per node of a graph
(`NodeMarks`), which the compiled walk reads to stop at services without calling back into Python."""

from __future__ import annotations

import time
import weakref
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlmodel import select

from storage import Database, LabelRow
from tracing.labels import Category, Label, label_applies, sort_labels
from tracing.trace.graph import TransferGraph

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
            wanted = [lb for lb in mine if label_applies(lb.chain, address, chain)]
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
                mine = [lb for lb in mine if label_applies(lb.chain, address, chain)]
            if mine:
                found[address] = mine
    return found
