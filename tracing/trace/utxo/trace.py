"""The bitcoin heuristics applied to a trace: a transfer source that stops at CoinJoins (a mixer stop, unless the
trace goes `through` mixers), and the findings a bitcoin trace reports beside its walk — the CoinJoins it stopped
at and why, the change output of each transaction it followed (with the signals), the peel chain from the root
along the change, and, when asked, the clusters of common-input ownership among the traced addresses' transactions
with their evidence and size.

The transactions come from the store of bitcoin transactions (`tracing.chain.utxo_store`) through `StoredTxs`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from tracing.chain.transfer import Direction, Transfer
from tracing.chain.utxo import Outpoint, UtxoTx
from tracing.chain.utxo_store import UtxoStore
from tracing.trace.flows import FlowQuery, FlowRequest, Flows, History, HistoryRequest
from tracing.trace.sources import HistorySource, TransferSource
from tracing.trace.utxo.amounts import btc
from tracing.trace.utxo.change import ChangeGuess, find_change
from tracing.trace.utxo.cluster import Clustering, cluster_addresses
from tracing.trace.utxo.coinjoin import CoinJoin, Tx0, detect_coinjoin, whirlpool_tx0
from tracing.trace.utxo.peel import PeelChain, follow_peel, peel_step
from tracing.trace.utxo.settings import Heuristics

MAX_LINES = 12
"""Findings of one kind shown in a reply (the rest are counted)."""
MAX_CLUSTER_NODES = 200
"""Traced addresses whose transactions the clustering reads."""


class StoredTxs:
    """The stored bitcoin transactions of one chain, read once each."""

    def __init__(self, store: UtxoStore, chain: str) -> None:
        self.store = store
        self.chain = chain
        self._txs: dict[str, UtxoTx | None] = {}
        self._coinjoins: dict[str, CoinJoin | None] = {}

    def get(self, txid: str) -> UtxoTx | None:
        if txid not in self._txs:
            self._txs[txid] = self.store.get(self.chain, txid)
        return self._txs[txid]

    def many(self, txids: Iterable[str]) -> list[UtxoTx]:
        txids = list(txids)
        wanted = [t for t in dict.fromkeys(txids) if t not in self._txs]
        for tx in self.store.transactions(self.chain, wanted):
            self._txs[tx.txid] = tx
        for txid in wanted:
            self._txs.setdefault(txid, None)
        found = [self._txs[t] for t in dict.fromkeys(txids)]
        return [tx for tx in found if tx is not None]

    def spender(self, outpoint: Outpoint) -> UtxoTx | None:
        spent = self.store.spender(self.chain, outpoint)
        return self.get(spent[0]) if spent is not None else None

    def of_address(self, address: str) -> list[UtxoTx]:
        return self.many(self.store.txids_of(self.chain, address))

    def coinjoin(self, txid: str) -> CoinJoin | None:
        if txid not in self._coinjoins:
            tx = self.get(txid)
            self._coinjoins[txid] = detect_coinjoin(tx) if tx is not None else None
        return self._coinjoins[txid]

    def seen_before(self, tx: UtxoTx) -> SeenBeforeTx:
        return SeenBeforeTx(self, tx)


class SeenBeforeTx:
    """`fresh-address`'s look-up: was `address` in a stored transaction mined before `tx`?"""

    def __init__(self, txs: StoredTxs, tx: UtxoTx) -> None:
        self.txs = txs
        self.at = (tx.block_height or 0, tx.position)

    def __call__(self, address: str) -> bool:
        earlier = self.txs.store.txids_of(self.txs.chain, address)
        return any((t.block_height or 0, t.position) < self.at for t in self.txs.many(earlier))


@dataclass(frozen=True, slots=True)
class CoinJoinStop:
    """Where a trace stopped at a CoinJoin: the address whose funds entered it, the CoinJoin, what entered."""

    address: str
    coinjoin: CoinJoin
    value: int
    """Satoshis of the address's coins the CoinJoin spent (an outgoing trace)."""
    paid: int = 0
    """Satoshis the CoinJoin paid the address (an incoming trace: the funds came out of it)."""

    @property
    def reason(self) -> str:
        moved = (
            f"{btc(self.value)} from {self.address} went into it"
            if self.value or not self.paid
            else f"{btc(self.paid)} came out of it to {self.address}"
        )
        return (
            f"stopped at CoinJoin {self.coinjoin.txid}: {moved}. {self.coinjoin.reason} A mixer stop (--through "
            "mixer goes on; identity is lost there)."
        )


class CoinJoinStops:
    """A source that leaves out, in the trace's direction, the transfers of CoinJoins, and records each stop."""

    def __init__(self, inner: TransferSource, txs: StoredTxs) -> None:
        self.inner = inner
        self.txs = txs
        self.name = inner.name
        self.stops: dict[tuple[str, str], CoinJoinStop] = {}

    def _keep(self, address: str, transfers: Sequence[Transfer]) -> tuple[Transfer, ...]:
        kept = []
        for t in transfers:
            mix = self.txs.coinjoin(t.tx_hash)
            if mix is None:
                kept.append(t)
                continue
            key = (address, mix.txid)
            if key not in self.stops:
                tx = self.txs.get(mix.txid)
                spent = sum(i.value or 0 for i in tx.inputs if i.address == address) if tx is not None else 0
                paid = sum(o.value for o in tx.outputs if o.address == address) if tx is not None else 0
                self.stops[key] = CoinJoinStop(address, mix, spent, paid)
        return tuple(kept)

    async def flows(self, chain: str, query: FlowQuery, requests: Sequence[FlowRequest]) -> list[Flows]:
        found = await self.inner.flows(chain, query, requests)
        self.txs.many(t.tx_hash for f in found for t in f.transfers)  # one read for the batch
        return [replace(f, transfers=self._keep(f.address, f.transfers)) for f in found]

    async def histories(self, chain: str, query: FlowQuery, requests: Sequence[HistoryRequest]) -> list[History]:
        if not isinstance(self.inner, HistorySource):
            raise TypeError(f"{self.inner.name} gives no histories")
        found = await self.inner.histories(chain, query, requests)
        self.txs.many(t.tx_hash for h in found for t in h.sends)  # one read for the batch
        return [replace(h, sends=self._keep(h.address, h.sends)) for h in found]

    def coinjoin_stops(self) -> tuple[CoinJoinStop, ...]:
        return tuple(self.stops[key] for key in sorted(self.stops))


def wrap_source(source: TransferSource, txs: StoredTxs, heuristics: Heuristics, through_mixer: bool) -> TransferSource:
    """The source a bitcoin trace walks: CoinJoins stop it when CoinJoin detection is on and mixers stop it."""
    if heuristics.coinjoin and not through_mixer:
        return CoinJoinStops(source, txs)
    return source


@dataclass(frozen=True, slots=True)
class BtcFindings:
    """What the heuristics found on one bitcoin trace."""

    heuristics: Heuristics
    coinjoins: tuple[CoinJoinStop, ...] = ()
    passed: tuple[CoinJoin, ...] = ()
    """CoinJoins the trace went through (`--through mixer`)."""
    entries: tuple[Tx0, ...] = ()
    """Whirlpool Tx0s the trace followed: the funds were split into premix outputs, the entry to a mix."""
    changes: tuple[ChangeGuess, ...] = ()
    peels: tuple[PeelChain, ...] = ()
    clustering: Clustering | None = None
    clustered: int = 0
    """Stored transactions the clustering read."""
    unstored: tuple[str, ...] = ()
    """Followed transactions the store does not hold (an explorer's): no heuristic could judge them."""

    def lines(self) -> tuple[str, ...]:
        """The findings in words, most telling first (each kind capped at `MAX_LINES`)."""
        lines: list[str] = []
        if self.unstored:
            lines.append(
                f"unchecked: {len(self.unstored)} followed transaction(s) are not in the index (read from an explorer, "
                f"e.g. {self.unstored[0]}): no CoinJoin check, change or cluster for them; index the blocks to judge"
            )
        lines += [f"coinjoin: {stop.reason}" for stop in self.coinjoins]
        lines += [f"coinjoin: went through {mix.txid} (--through mixer): {mix.reason}" for mix in self.passed]
        lines += [f"coinjoin: {entry.txid} is a {entry.reason}" for entry in self.entries]
        for chain in self.peels:
            lines.append(f"peel: {chain.reason}")
            for n, step in enumerate(chain.steps[:MAX_LINES], start=1):
                lines.append(
                    f"peel step {n}: {step.txid} paid {btc(step.payment.value)} to {step.payment.address}, "
                    f"change {btc(step.change.value)} to {step.change.address}"
                )
        found = [g for g in self.changes if g.found]
        lines += [f"change: {g.txid} → {g.reason}" for g in found[:MAX_LINES]]
        if len(found) > MAX_LINES:
            lines.append(f"change: and {len(found) - MAX_LINES} more transactions (see the CSV)")
        untold = [g for g in self.changes if not g.found]
        if untold:
            lines.append(f"change: not told for {len(untold)} transaction(s) ({untold[0].txid}: {untold[0].reason})")
        if self.clustering is not None:
            clusters = self.clustering.clusters
            lines += [f"cluster: {c.reason}" for c in clusters[:MAX_LINES]]
            if not self.clustered:
                lines.append(
                    "cluster: no stored transaction of the traced addresses, so nothing to cluster (not: no "
                    "common owner)"
                )
            elif not clusters:
                lines.append(
                    f"cluster: in the {self.clustered} stored transaction(s) of the traced addresses, no two "
                    "addresses' coins were spent together"
                )
            lines += [f"cluster: {txid} {why}" for txid, why in self.clustering.left_out[:MAX_LINES]]
        return tuple(lines)


def find_heuristics(
    txs: StoredTxs,
    root: str,
    direction: Direction,
    edge_txids: Sequence[str],
    nodes: Sequence[str],
    heuristics: Heuristics,
    stops: Sequence[CoinJoinStop] = (),
) -> BtcFindings:
    """The findings of a bitcoin trace from `root` whose edges came from `edge_txids` and reached `nodes`."""
    traced = txs.many(edge_txids)
    held = {tx.txid for tx in traced}
    unstored = tuple(t for t in dict.fromkeys(edge_txids) if t not in held)
    passed: tuple[CoinJoin, ...] = ()
    entries: tuple[Tx0, ...] = ()
    if heuristics.coinjoin:
        passed = tuple(mix for tx in traced if (mix := txs.coinjoin(tx.txid)) is not None)
        entries = tuple(entry for tx in traced if (entry := whirlpool_tx0(tx)) is not None)
    changes: tuple[ChangeGuess, ...] = ()
    if heuristics.change:
        changes = tuple(
            find_change(tx, txs.seen_before(tx), coinjoin=txs.coinjoin(tx.txid) is not None)
            for tx in traced
            if not tx.coinbase
        )
    peels: tuple[PeelChain, ...] = ()
    if heuristics.peel and direction is Direction.OUT:
        starts = [tx for tx in txs.of_address(root) if root in tx.input_addresses() and peel_step(tx) is not None]
        found = []
        for start in starts:
            chain = follow_peel(start, txs.spender)
            last = chain.steps[-1] if chain.steps else None
            next_tx = txs.spender(Outpoint(last.txid, last.change.n)) if last is not None else None
            mix = txs.coinjoin(next_tx.txid) if next_tx is not None and heuristics.coinjoin else None
            if mix is not None:
                chain = replace(chain, end=f"its change went into CoinJoin {mix.txid}")
            if chain.is_chain:
                found.append(chain)
        peels = tuple(found)
    clustering, clustered = None, 0
    if heuristics.cluster:
        around = [tx for address in list(dict.fromkeys(nodes))[:MAX_CLUSTER_NODES] for tx in txs.of_address(address)]
        unique = list({tx.txid: tx for tx in around}.values())
        clustering = cluster_addresses(unique, coinjoin=lambda tx: txs.coinjoin(tx.txid))  # with or without `coinjoin`
        clustered = len(unique)
    return BtcFindings(heuristics, tuple(stops), passed, entries, changes, peels, clustering, clustered, unstored)
