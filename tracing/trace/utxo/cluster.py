"""Common-input-ownership clustering: the addresses whose coins one transaction spends together are taken to have
one owner (whoever signed all the inputs). Offered as an option (`--heuristics cluster`), because it is a claim:
a CoinJoin's inputs belong to many owners, so a transaction recognised as one is never used, and the result lists
it among the transactions left out. Every cluster carries its evidence (which transaction joined which addresses)
and its size. A two-party PayJoin is not recognised and would join two owners: the evidence lets an analyst check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tracing.chain.utxo import UtxoTx
from tracing.trace.utxo.coinjoin import CoinJoin, detect_coinjoin


@dataclass(frozen=True, slots=True)
class ClusterLink:
    """One piece of evidence: transaction `txid` spent coins of all these addresses together."""

    txid: str
    addresses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Cluster:
    addresses: tuple[str, ...]
    links: tuple[ClusterLink, ...]

    @property
    def size(self) -> int:
        return len(self.addresses)

    @property
    def reason(self) -> str:
        joined = "; ".join(f"{link.txid} joined {', '.join(link.addresses)}" for link in self.links[:5])
        more = f"; and {len(self.links) - 5} more transaction(s)" if len(self.links) > 5 else ""
        return f"cluster of {self.size} addresses (common inputs): {joined}{more}"


@dataclass(frozen=True, slots=True)
class Clustering:
    clusters: tuple[Cluster, ...]
    """Clusters of two or more addresses, largest first."""
    left_out: tuple[tuple[str, str], ...]
    """(txid, why its inputs were not joined), e.g. a CoinJoin."""

    def cluster_of(self, address: str) -> Cluster | None:
        return next((c for c in self.clusters if address in c.addresses), None)


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        root = self.parent.setdefault(item, item)
        while root != self.parent[root]:
            root = self.parent[root]
        while item != root:  # path compression
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def cluster_addresses(
    txs: Iterable[UtxoTx], *, coinjoin: Callable[[UtxoTx], CoinJoin | None] = detect_coinjoin
) -> Clustering:
    """Join the input addresses of every transaction that is not a CoinJoin (`coinjoin` tells), with evidence."""
    found = _UnionFind()
    links: list[ClusterLink] = []
    left_out: list[tuple[str, str]] = []
    for tx in txs:
        addresses = tx.input_addresses()
        if tx.coinbase or len(addresses) < 2:
            continue
        mix = coinjoin(tx)
        if mix is not None:
            left_out.append((tx.txid, f"not joined: {mix.reason}"))
            continue
        for address in addresses[1:]:
            found.union(addresses[0], address)
        links.append(ClusterLink(tx.txid, addresses))
    members: dict[str, list[str]] = {}
    for address in list(found.parent):
        members.setdefault(found.find(address), []).append(address)
    evidence: dict[str, list[ClusterLink]] = {}
    for link in links:
        evidence.setdefault(found.find(link.addresses[0]), []).append(link)
    clusters = [
        Cluster(tuple(sorted(addresses)), tuple(evidence.get(root, ())))
        for root, addresses in members.items()
        if len(addresses) >= 2
    ]
    clusters.sort(key=lambda c: (-c.size, c.addresses[0]))
    return Clustering(tuple(clusters), tuple(left_out))
