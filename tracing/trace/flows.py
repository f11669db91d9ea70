"""Flow selection, shared by every transfer source: which of an address's transfers a trace follows (the time
window, the asset and value filters, the scan limit, the fan-out cap over counterparties ranked by amount), and
`Asset`, how a trace names an asset."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tracing.chain.transfer import Direction, Transfer

Asset = str | None
"""A token address, or None for the chain's native coin."""

NATIVE_DECIMALS = 18


@dataclass(frozen=True, slots=True)
class FlowQuery:
    """What a trace asks of every address it expands (the per-address time window is in `FlowRequest`).

    `direction` is `out` (transfers sent by the address) or `in` (received). `token`: None for every asset,
    `"native"` for the native coin only, or a token address. `min_value` is in human units of each asset (raw units
    when a token's decimals are unknown). `fanout` caps the counterparties followed per address, largest flows
    first; `scan_limit` caps the transfers examined per address; an address with more than `hub_degree` transfers
    in the direction is treated as a busy service and not expanded (the root always is).
    """

    direction: Direction = Direction.OUT
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
    outgoing = query.direction is Direction.OUT
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
            decimals = (NATIVE_DECIMALS if t.decimals is None else t.decimals) if t.token is None else t.decimals
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


# --- an address's history, for the value-aware walk ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """One address the value-aware walk expands: `since`/`until` its window (forward, `since` is when the traced
    funds arrived; backward, `until`); `root` the trace's root."""

    address: str
    since: int | None = None
    until: int | None = None
    root: bool = False


@dataclass(frozen=True, slots=True)
class History:
    """What the value-aware walk reads of one address: its transfers in the trace direction within the window
    (`sends`, oldest first, after the scan limit and token filter), those the other way over the same span
    (`receives`), and what its own history before the window left it (`opening`, per asset: received less sent)."""

    address: str
    sends: tuple[Transfer, ...] = ()
    receives: tuple[Transfer, ...] = ()
    opening: Mapping[Asset, int] = field(default_factory=dict)
    degree: int = 0
    in_window: int = 0
    scanned: int = 0
    totals: Mapping[Asset, int] = field(default_factory=dict)
    hub: bool = False
    source: str = ""
    error: str = ""
    incomplete: str = ""

    @property
    def unscanned(self) -> int:
        return self.in_window - self.scanned


def transfer_order(t: Transfer) -> tuple[int, int, str, str, str]:
    return (t.timestamp, t.block_number, t.tx_hash, t.kind.value, t.position)


def history_of(
    address: str, transfers: Sequence[Transfer], request: HistoryRequest, query: FlowQuery, source: str
) -> History:
    """The reference `History` of `address` from every transfer it made or received (any order): what the SQL and
    explorer sources answer; `GraphSource` does the same on the graph's arrays and must agree with it."""
    outgoing = query.direction is Direction.OUT
    ways = sorted((t for t in transfers if (t.from_addr if outgoing else t.to_addr) == address), key=transfer_order)
    if len(ways) > query.hub_degree and not request.root:
        return History(address, degree=len(ways), hub=True, source=source)
    since, until = request.since, request.until
    window = [t for t in ways if (since is None or t.timestamp >= since) and (until is None or t.timestamp <= until)]
    scanned = scan_slice(window, outgoing, query.scan_limit)
    sends = [t for t in scanned if t.value > 0 and t.from_addr != t.to_addr and _asset_matches(query.token, t.token)]
    totals: dict[Asset, int] = {}
    for t in sends:
        totals[t.token] = totals.get(t.token, 0) + t.value
    receives: list[Transfer] = []
    opening: dict[Asset, int] = {}
    if sends and not request.root:  # the root holds nothing but traced funds: no ledger
        lo = since if outgoing else sends[0].timestamp
        hi = sends[-1].timestamp if outgoing else until
        start = None if request.root else (since if outgoing else until)
        for t in transfers:
            if t.value <= 0 or t.from_addr == t.to_addr:
                continue
            inward = (t.to_addr == address) == outgoing  # the other way from the trace's
            if start is not None and (t.timestamp < start if outgoing else t.timestamp > start):
                opening[t.token] = opening.get(t.token, 0) + (t.value if inward else -t.value)
            elif inward and (lo is None or t.timestamp >= lo) and (hi is None or t.timestamp <= hi):
                receives.append(t)
        receives.sort(key=transfer_order)
    return History(
        address,
        sends=tuple(sends),
        receives=tuple(receives),
        opening={asset: value for asset, value in opening.items() if value > 0},
        degree=len(ways),
        in_window=len(window),
        scanned=len(scanned),
        totals=totals,
        source=source,
    )
