"""Following value: how much of the traced funds each transfer of an address carries, and which of its transfers a
value-aware trace follows.

An address's ledger (`Ledger`) is run over its transfers in time order from the moment the traced funds reached
it: what it held before (its own history, never followed) is its opening balance, clean; each traced arrival adds
traced value; each transfer out carries a part of the traced value it holds, per taint model:

- `haircut`: in proportion to the traced share of the balance at that moment (per asset);
- `poison`: its whole value, once any traced value arrived;
- `fifo`: first in, first out (Clayton's case): the transfer takes the oldest value the address holds first.

A swap (the address sends one asset and receives another in the same transaction) moves the traced funds into the
asset received, in the proportion the asset sent carried them; the transfer into the router or pool is not followed.
An address that sends on none of the traced assets it received, but sends others, converted them where the source
does not show it: its transfers of the other assets carry its traced share (as the taint models count a swap).

Under haircut, a transfer that passes a receipt on (`PassThrough`: within `PASS_WINDOW` of a receipt of mostly
traced funds, the same asset and amount less at most `PASS_FEE`) carries that receipt's traced value, not the
balance's share: the funds moving through, as an analyst matches an amount in with the same amount out. What the
address holds besides is then left with its own share, so its everyday spending no longer carries the traced funds
that passed through.

Under haircut, money an address's transfers need beyond what its history shows (a swap return or a sale the source
does not list, an index that starts late, amounts in USD at each transfer's day) was there from the start, clean
(`shortfall`): the traced funds stay conserved, and are shared over all its transfers rather than used up by the
first ones. FIFO keeps the order it knows (such money, of unknown time, is taken when it is needed: the traced lots
leave first), poison does not count it.

A transfer is followed by one rule (`judge`, then `spread_followed` for the small ones): never when it is less than
`DILUTED` traced funds, at any amount (other money with a trace of them: a peel chain that took a payment of the
traced funds and moves on with its own); when the traced value it carries is at least the dust floor
(`TraceParams.dust_usd` in USD, or a floor in units of its asset where no USD price is known) and, if under
`CRUMB_CAP` times the floor, it is no crumb: at least `TraceParams.crumb_share` of the traced funds its address
received (a crumb of a fortune is spending: an everyday payment or exchange deposit of an address the funds passed
through, not the funds moving on). It is also followed when it is mostly traced funds (`PURITY`) and it, or all such
small transfers of its address together, carry at least `TraceParams.follow_share` of the traced funds the address
received: laundering that moves in many small amounts is still followed; a few dollars sent on by an address that
received millions, or an address's own spending with a trace of the funds in it, is not. What is not followed is
counted and summed (`Dust`), never hidden. Backward traces run the same rules with time and flow reversed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import IntEnum, StrEnum
from fractions import Fraction
from typing import NamedTuple, Protocol, TypeVar

from tracing.chain.prices import STABLE_KEYS, price_key
from tracing.chain.transfer import Transfer
from tracing.trace.flows import NATIVE_DECIMALS, Asset, rank_counterparties
from tracing.trace.params import TraceParams
from tracing.trace.taint import TaintModel

PURITY = Fraction(1, 2)
"""A transfer under the dust floor is followed by the share rule only when the traced funds are at least this part
of its value: funds moving on in small amounts, not an address's own money with a trace of them."""


CRUMB_CAP = 3
"""A transfer carrying at least this many times the dust floor is followed whatever share of its address's traced
funds it is (`TraceParams.crumb_share`)."""

DILUTED = Fraction(1, 20)
"""A transfer whose value is less than this part traced funds is not followed, whatever the amount: other money
carrying a trace of them (a peel chain that took a $400 payment of the traced funds moves $280,000 of its own on)."""

PASS_WINDOW = 86_400
"""Seconds between a receipt and the transfer that passes it on (`PassThrough`)."""

PASS_FEE = Fraction(5, 100)
"""The most a transfer passing a receipt on may be short of it (gas, a service's fee)."""


class PassThrough:
    """Haircut's pass-through rule: a transfer of one asset sent within `PASS_WINDOW` seconds of a receipt of that
    asset that was mostly traced funds (`PURITY`), of the receipt's amount or up to `PASS_FEE` less, is that receipt
    moving on: it carries the receipt's traced value (no more than the address holds). Each receipt passes on once,
    the latest first. Backward (`outgoing` False) the roles turn: the "receipt" is a traced transfer out and the
    transfer in that funded it is its amount or up to `PASS_FEE` more. `tracing.trace.value_graph` and the compiled
    walk (`_walk.c`, `pass_match`) run the same rule."""

    def __init__(self, outgoing: bool = True) -> None:
        self.outgoing = outgoing
        self.open: dict[Hashable, list[tuple[int, int, int, Hashable]]] = {}

    def receive(self, asset: Hashable, value: int, when: int, traced: int, receipt: Hashable = None) -> None:
        """A receipt (`traced` ≤ `value`; `receipt`: what names it, its transaction or edge): open to be passed on
        when it is mostly traced funds."""
        if traced > 0 and traced * PURITY.denominator >= PURITY.numerator * value:
            self.open.setdefault(asset, []).append((value, when, traced, receipt))

    def match(self, asset: Hashable, value: int, when: int) -> Passed | None:
        """The receipt a transfer of `value` at `when` passes on, and its traced value; None when it passes none."""
        found = self.open.get(asset)
        if not found:
            return None
        for i in range(len(found) - 1, -1, -1):
            got, at, traced, receipt = found[i]
            if abs(when - at) > PASS_WINDOW:
                break
            less, more = (value, got) if self.outgoing else (got, value)
            if less <= more and less * PASS_FEE.denominator >= more * (PASS_FEE.denominator - PASS_FEE.numerator):
                del found[i]
                return Passed(traced, receipt)
        return None


class Passed(NamedTuple):
    """A receipt a transfer passes on (`PassThrough.match`)."""

    traced: int
    receipt: Hashable


class FollowedBy(StrEnum):
    """Which part of the follow rule a value-aware trace followed a transfer by (`judge`)."""

    FLOOR = "dust floor"
    """The traced value it carries reaches the dust floor (and it is no crumb of its address's traced funds)."""
    SHARE = "share"
    """Mostly traced funds, under the floor, carrying alone the follow share of what its address received."""
    TOGETHER = "small transfers together"
    """Mostly traced funds, under the floor, with its address's other such transfers carrying the follow share."""
    NO_FLOOR = "no floor for its asset"
    """Its asset has no USD price that day and no floor in units: followed at any traced amount it carries (unless
    it is diluted: under `DILUTED` traced funds)."""


class Followed(NamedTuple):
    """Why a value-aware trace followed one transfer: the rule, and the receipt it passes on, if it does
    (`PassThrough`: it carries that receipt's traced value, not its address's share)."""

    by: FollowedBy
    passes_on: str | None = None
    """The transaction of the receipt it passes on."""


class UsdPrices(Protocol):
    """The USD value of a raw amount of an asset on the day of `timestamp`; None when no price exists."""

    def usd(
        self, asset: Asset, decimals: int | None, symbol: str | None, timestamp: int, raw: int
    ) -> Decimal | None: ...


class PegPrices:
    """USD stablecoins of `chain` at their peg, by contract address (never by symbol: anyone can name a token USDC),
    nothing else: the prices a trace uses when given none (the investigator passes stored prices as well)."""

    def __init__(self, chain: str) -> None:
        self.chain = chain

    def usd(self, asset: Asset, decimals: int | None, symbol: str | None, timestamp: int, raw: int) -> Decimal | None:
        if asset is None or decimals is None or price_key(self.chain, asset) not in STABLE_KEYS:
            return None
        return Decimal(raw).scaleb(-decimals)

    def never_priced(self, asset: Asset) -> bool:
        """Whether `usd` is None for the asset on every day (the compiled walk then stops asking day by day)."""
        return asset is None or price_key(self.chain, asset) not in STABLE_KEYS


def asset_key(asset: Asset) -> str:
    """How `TraceParams.dust_units` names an asset: `native` or the token address."""
    return "native" if asset is None else asset


class Ledger:
    """What one address holds of each asset, traced and clean, under one taint model (exact raw integers)."""

    def __init__(self, model: TaintModel, opening: Mapping[Asset, int]) -> None:
        self.model = model
        self.traced: dict[Asset, int] = {}
        self.clean: dict[Asset, int] = {asset: max(0, value) for asset, value in opening.items()}
        self.lots: dict[Asset, deque[list[int]]] = {}
        self.last: dict[Asset, Fraction] = {}
        """Per asset, the traced share of the last value it held (for transfers beyond what it holds)."""
        if model is TaintModel.FIFO:
            for asset, value in self.clean.items():
                if value:
                    self.lots[asset] = deque([[value, 0]])

    def receive(self, asset: Asset, value: int, traced: int) -> None:
        traced = min(traced, value)
        self.traced[asset] = self.traced.get(asset, 0) + traced
        self.clean[asset] = self.clean.get(asset, 0) + value - traced
        if self.model is TaintModel.FIFO:
            self.lots.setdefault(asset, deque()).append([value, traced])

    def share(self, assets: set[Asset]) -> Fraction:
        """The largest traced share of what it holds of `assets` (1 under poison once any traced value arrived)."""
        best = Fraction(0)
        for asset in assets:
            traced, clean = self.traced.get(asset, 0), self.clean.get(asset, 0)
            if traced:
                best = max(best, Fraction(1) if self.model is TaintModel.POISON else Fraction(traced, traced + clean))
        return best

    def pass_on(self, asset: Asset, value: int, traced: int) -> int:
        """A transfer out passing a receipt of `traced` traced value on (`PassThrough`, haircut): it carries that
        value, no more than the ledger holds."""
        held, clean = self.traced.get(asset, 0), self.clean.get(asset, 0)
        carried = min(value, traced, held)
        self.traced[asset] = held - carried
        self.clean[asset] = max(0, clean - (value - carried))
        return carried

    def send(self, asset: Asset, value: int) -> int:
        """The traced value a transfer out of `value` carries (and the ledger after it).

        A transfer larger than what the ledger holds (history the source lacks: an index that starts late, an
        explorer's cut) carries at most the traced funds the address still holds: traced funds are conserved, so
        what leaves beyond the known balance is not attributed to them (FIFO: its lots, then the last traced share
        of the rest, capped the same way). `select_value` opens the ledger with what the address lacked
        (`shortfall`), so its own transfers never run beyond it."""
        traced, clean = self.traced.get(asset, 0), self.clean.get(asset, 0)
        if self.model is TaintModel.POISON:
            carried = value if traced else 0
            self.clean[asset] = max(0, clean - value)
            return carried
        held = traced + clean
        if held and (held >= value or asset not in self.last):
            # the composition of a balance that covers the transfer (a few units of dust received since an
            # overdraft do not make the next transfer clean)
            self.last[asset] = Fraction(traced, held)
        if self.model is TaintModel.FIFO:
            carried, left = 0, value
            lots = self.lots.get(asset)
            while left and lots:
                lot = lots[0]
                if lot[0] <= left:
                    carried += lot[1]
                    left -= lot[0]
                    lots.popleft()
                else:
                    part = lot[1] * left // lot[0]
                    carried += part
                    lot[0] -= left
                    lot[1] -= part
                    left = 0
            carried = min(value, traced, carried + int(left * self.last.get(asset, Fraction(0))))
            self.traced[asset] = max(0, traced - carried)
            self.clean[asset] = max(0, clean - (value - carried))
            return carried
        if value <= held:
            carried = value * traced // held
        else:
            carried = traced  # traced funds are conserved: an overdraft carries no more than the address holds
        self.traced[asset] = max(0, traced - carried)
        self.clean[asset] = max(0, clean - (value - carried))
        return carried


K = TypeVar("K", bound=Hashable)


def shortfall(opening: Mapping[K, int], moves: Iterable[tuple[K, int]]) -> dict[K, int]:
    """Per asset, the most an address's transfers run ahead of what it is known to hold: `moves` are (asset, value
    in or, negative, out) in the ledger's order from `opening`. The ground truth of a case, an index that starts late
    or an explorer's cut leave out money an address had; the ledger takes that money to have been there from the
    start, clean (its origin unknown), so traced funds are conserved and shared out over all its transfers, not
    used up by the first ones with nothing left for the rest."""
    held = {asset: max(0, value) for asset, value in opening.items()}
    lacking: dict[K, int] = {}
    for asset, value in moves:
        now = held[asset] = held.get(asset, 0) + value
        if now < -lacking.get(asset, 0):
            lacking[asset] = -now
    return lacking


class Step(NamedTuple):
    """One transfer out of an address the value walk looked at: the traced value it carries, and what became of it."""

    transfer: Transfer
    carried: int
    followed: bool
    swap: bool = False
    edge: int = -1
    """Its edge id in the in-memory graph, when the step was read from there (`tracing.trace.value_graph`)."""
    by: FollowedBy | None = None
    """Followed: by which part of the rule (`judge`)."""
    passes_on: str | None = None
    """The transaction of the receipt it passes on (`PassThrough`), if it does."""

    def followed_as(self) -> Followed:
        return Followed(self.by or FollowedBy.FLOOR, self.passes_on)


@dataclass
class Dust:
    """Transfers that carried traced value but were not followed (under the floor and the share)."""

    count: int = 0
    usd: Decimal = Decimal(0)
    priced: int = 0
    unpriced: dict[Asset, int] = field(default_factory=dict)
    """Traced raw amounts of transfers with no USD price, per asset."""
    meta: dict[Asset, tuple[int | None, str | None]] = field(default_factory=dict)
    """Decimals and symbol of the unpriced assets."""

    def add(self, t: Transfer, carried: int, usd: Decimal | None) -> None:
        self.count += 1
        if usd is None:
            asset = t.token
            self.unpriced[asset] = self.unpriced.get(asset, 0) + carried
            self.meta.setdefault(asset, (_decimals(t), t.symbol or ("native" if asset is None else None)))
        else:
            self.usd += usd
            self.priced += 1

    def merge(self, other: Dust) -> None:
        self.count += other.count
        self.usd += other.usd
        self.priced += other.priced
        for asset, value in other.unpriced.items():
            self.unpriced[asset] = self.unpriced.get(asset, 0) + value
        self.meta.update(other.meta)


@dataclass
class ValueSelection:
    """What the value walk picked at one address."""

    chosen: list[Step]
    """Followed transfers in time order, with the traced value each carries."""
    dust: Dust
    counterparties: int
    kept: int
    unpriced_unfloored: set[Asset]
    """Assets followed without any floor (no USD price and no floor in units)."""
    unpriced_minimum: set[Asset] = field(default_factory=set)
    """Assets of transfers the USD minimum (`TraceParams.min_usd`) could not be applied to: no price that day."""


def _time_key(outgoing: bool, t: Transfer) -> int:
    return t.timestamp if outgoing else -t.timestamp


def select_value(
    sends: Sequence[Transfer],
    receives: Sequence[Transfer],
    opening: Mapping[Asset, int],
    arrivals: Mapping[tuple[str, str, str], int],
    root: bool,
    params: TraceParams,
    prices: UsdPrices,
) -> ValueSelection:
    """Run one address's ledger and pick the transfers to follow.

    `sends`: its transfers in the trace direction within the window (forward: out of it, from the arrival of the
    traced funds on); `receives`: those the other way over the same time; `opening`: what its own history before
    the arrival left it, per asset (received less sent; never followed); `arrivals`: the traced value each followed
    transfer into it carries, by (tx hash, kind, position); `root`: the trace's root holds nothing but traced funds.
    Backward, "sends" are the transfers into the address and time runs the other way."""
    outgoing = params.direction.value == "out"
    swaps = _swap_txs(sends, receives)
    # in time order (backward: reversed), arrivals before departures at the same time but a swap's proceeds,
    # which come back after what was sent; then in a fixed order, whatever order the source gave them in
    events: list[tuple[int, int, tuple[str, str, str], Transfer]] = []
    for t in receives:
        events.append((_time_key(outgoing, t), 2 if t.tx_hash in swaps else 0, _key(t), t))
    for t in sends:
        events.append((_time_key(outgoing, t), 1, _key(t), t))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    # money its transfers need that its history does not show: there from the start, clean (haircut; FIFO keeps the
    # order it knows and takes such money when it is needed, poison does not count it)
    if not root and params.model is TaintModel.HAIRCUT:
        lacking = shortfall(opening, ((t.token, -t.value if phase == 1 else t.value) for _, phase, _, t in events))
        opening = {**opening, **{a: max(0, opening.get(a, 0)) + v for a, v in lacking.items()}}
    ledger = Ledger(params.model, opening)
    received: dict[Asset, int] = {}
    if root:
        for t in sends:
            received[t.token] = received.get(t.token, 0) + t.value
    swap_share: dict[str, Fraction] = {}
    steps: list[Step] = []
    # traced assets it never sends on here, while it sends others: converted where the source does not show it
    # (a swap in another transaction, a bridge round trip); its other assets then carry its traced share
    traced_assets = {t.token for t in receives if _key(t) in arrivals}
    converted = not root and bool(traced_assets) and not traced_assets & {t.token for t in sends}
    passing = PassThrough(outgoing) if not root and params.model is TaintModel.HAIRCUT and params.pass_through else None
    for _, phase, _, t in events:
        if phase != 1:
            traced = arrivals.get(_key(t), 0)
            if phase == 2:
                traced = max(traced, int(t.value * swap_share.get(t.tx_hash, Fraction(0))))
            elif passing is not None:
                passing.receive(t.token, t.value, t.timestamp, min(traced, t.value), t.tx_hash)
            ledger.receive(t.token, t.value, traced)
            if traced:
                received[t.token] = received.get(t.token, 0) + traced
            continue
        passed = None
        if passing is not None and not (t.tx_hash in swaps and t.token in swaps[t.tx_hash]):
            passed = passing.match(t.token, t.value, t.timestamp)
        if root:
            carried = t.value
        elif passed is not None:
            carried = ledger.pass_on(t.token, t.value, passed.traced)
        else:
            carried = ledger.send(t.token, t.value)
        if converted and not carried and t.token not in traced_assets:
            carried = int(t.value * ledger.share(traced_assets))
        if t.tx_hash in swaps and t.token in swaps[t.tx_hash]:
            share = Fraction(carried, t.value) if t.value else Fraction(0)
            swap_share[t.tx_hash] = max(swap_share.get(t.tx_hash, Fraction(0)), share)
            steps.append(Step(t, carried, False, swap=True))
            continue
        steps.append(Step(t, carried, False, passes_on=None if passed is None else str(passed.receipt)))
    return _follow(steps, received, params, prices, outgoing, root)


def _key(t: Transfer) -> tuple[str, str, str]:
    return (t.tx_hash, t.kind, t.position)  # a StrEnum: equal to, and hashed as, its value


def _swap_txs(sends: Sequence[Transfer], receives: Sequence[Transfer]) -> dict[str, set[Asset]]:
    """Per transaction where the address sends one asset and receives another: the assets it sends."""
    sent: dict[str, set[Asset]] = {}
    for t in sends:
        sent.setdefault(t.tx_hash, set()).add(t.token)
    found: dict[str, set[Asset]] = {}
    for t in receives:
        assets = sent.get(t.tx_hash)
        if assets and t.token not in assets:
            found[t.tx_hash] = assets
    return found


class Verdict(IntEnum):
    """What the follow rule makes of one transfer (`judge`)."""

    FOLLOW = 0
    """At least the dust floor, and no crumb."""
    SMALL = 1
    """Under the floor but mostly traced funds: followed if its address's small transfers together carry enough
    (`spread_followed`)."""
    DUST = 2
    SHARE = 3
    """Under the floor (or a crumb) and mostly traced funds, carrying alone the share of what its address received:
    followed."""


def judge(
    carried: int,
    value: int,
    received: int,
    over_floor: bool,
    over_cap: bool,
    root: bool,
    share: Fraction,
    crumb: Fraction,
) -> Verdict:
    """The follow rule for one transfer out of an address (the one place it is decided: `select_value` and
    `tracing.trace.value_graph` both ask here).

    `carried`: the traced value it carries, `value`: its whole value, `received`: the traced funds its address
    received (both in units of its asset); `over_floor`, `over_cap`: whether `carried` reaches the dust floor and
    `CRUMB_CAP` times it (both True where the asset has no floor); `root`: the trace's root (nothing but traced funds);
    `share`: `TraceParams.follow_share`; `crumb`: `TraceParams.crumb_share`.

    1. Less than `DILUTED` traced funds: not followed, whatever the amount (other money carrying a trace of them: a
       peel chain moving $280,000 of its own after a $400 payment of the traced funds reached it).
    2. At least the floor: followed, unless it is a crumb under `CRUMB_CAP` times the floor (less than `crumb` of
       what its address received: a payment out of a fortune).
    3. Under the floor (or a crumb) and at least `PURITY` traced funds: followed if it alone carries `share` of
       what its address received (`SHARE`), else weighed with its address's other such transfers (`SMALL`).
    4. Otherwise not followed (`DUST`: summed, never hidden)."""
    if not root and carried * DILUTED.denominator < DILUTED.numerator * value:
        return Verdict.DUST
    crumb_of = not root and received > 0 and carried * crumb.denominator < crumb.numerator * received
    if over_floor and (over_cap or not crumb_of):
        return Verdict.FOLLOW
    if carried * PURITY.denominator < PURITY.numerator * value:
        return Verdict.DUST
    if received and carried * share.denominator >= share.numerator * received:
        return Verdict.SHARE
    return Verdict.SMALL


def followed_by(verdict: Verdict, floored: bool) -> FollowedBy:
    """What a transfer `judge` followed on its own (`FOLLOW` or `SHARE`) was followed by; `floored`: its asset had a
    floor (a USD price that day or a floor in units)."""
    if verdict is Verdict.SHARE:
        return FollowedBy.SHARE
    return FollowedBy.FLOOR if floored else FollowedBy.NO_FLOOR


def spread_followed(spread: int, received: int, share: Fraction) -> bool:
    """Whether an address's `SMALL` transfers of one asset, carrying `spread` of the traced funds together, are
    followed: when they carry `share` of the traced funds it `received` (the funds moving on in small amounts: a
    payout, gift cards bought one by one), not when they are a few dollars out of much more."""
    return bool(received) and spread * share.denominator >= share.numerator * received


def _follow(
    steps: list[Step], received: Mapping[Asset, int], params: TraceParams, prices: UsdPrices, outgoing: bool, root: bool
) -> ValueSelection:
    share = Fraction(params.follow_share)
    crumb = Fraction(params.crumb_share)
    floors = dict(params.dust_units)
    dust = Dust()
    unfloored: set[Asset] = set()
    no_price: set[Asset] = set()
    passing: list[int] = []
    small: list[tuple[int, Decimal | None]] = []
    for i, step in enumerate(steps):
        t, carried = step.transfer, step.carried
        if step.swap or carried <= 0:
            continue
        if params.min_value is not None and t.value < _raw(params.min_value, t):
            continue
        if params.min_usd is not None:
            whole = prices.usd(t.token, _decimals(t), t.symbol, t.timestamp, t.value)
            if whole is None:
                no_price.add(t.token)
            elif whole < params.min_usd:
                continue
        usd = None
        if params.dust_usd is not None:
            usd = prices.usd(t.token, _decimals(t), t.symbol, t.timestamp, carried)
        total = received.get(t.token, 0)
        floored = True
        if usd is not None and params.dust_usd is not None:
            over_floor, over_cap = usd >= params.dust_usd, usd >= params.dust_usd * CRUMB_CAP
        else:
            floor = floors.get(asset_key(t.token))
            if floor is None:
                over_floor = over_cap = True
                floored = False
                unfloored.add(t.token)
            else:
                raw_floor = _raw(floor, t)
                over_floor, over_cap = carried >= raw_floor, carried >= raw_floor * CRUMB_CAP
        verdict = judge(carried, t.value, total, over_floor, over_cap, root, share, crumb)
        if verdict is Verdict.FOLLOW or verdict is Verdict.SHARE:
            steps[i] = step._replace(by=followed_by(verdict, floored))
            passing.append(i)
        elif verdict is Verdict.SMALL:
            small.append((i, usd))
        else:
            dust.add(t, carried, usd)
    # small transfers that together carry a share of what the address received: the funds themselves moving in
    # small amounts (a payout, a peel), followed; a few dollars out of much more, not
    spread: dict[Asset, int] = {}
    for i, _ in small:
        spread[steps[i].transfer.token] = spread.get(steps[i].transfer.token, 0) + steps[i].carried
    for i, usd in small:
        t = steps[i].transfer
        if spread_followed(spread[t.token], received.get(t.token, 0), share):
            steps[i] = steps[i]._replace(by=FollowedBy.TOGETHER)
            passing.append(i)
        else:
            dust.add(t, steps[i].carried, usd)
    passing.sort()
    amounts: dict[str, dict[Asset, int]] = {}
    for i in passing:
        t = steps[i].transfer
        party = t.to_addr if outgoing else t.from_addr
        mine = amounts.setdefault(party, {})
        mine[t.token] = mine.get(t.token, 0) + steps[i].carried
    if len(amounts) > params.fanout:
        keep = set(rank_counterparties(amounts)[: params.fanout])
    else:
        keep = set(amounts)
    chosen = [
        steps[i]._replace(followed=True)
        for i in passing
        if (steps[i].transfer.to_addr if outgoing else steps[i].transfer.from_addr) in keep
    ]
    return ValueSelection(chosen, dust, len(amounts), len(keep), unfloored, no_price)


def _decimals(t: Transfer) -> int | None:
    return (NATIVE_DECIMALS if t.decimals is None else t.decimals) if t.token is None else t.decimals


def _raw(units: Decimal, t: Transfer) -> int:
    return int(units.scaleb(_decimals(t) or 0))
