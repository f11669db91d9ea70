"""What a trace asks: its direction, hop budget, taint model, filters and limits (`TraceParams`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tracing.chain.transfer import Direction
from tracing.errors import InvalidArgument
from tracing.labels import Category
from tracing.trace.flows import FlowQuery
from tracing.trace.taint import TaintModel
from tracing.trace.utxo.settings import Heuristics

DEFAULT_HOPS = 3
MAX_HOPS = 10


STOPS = frozenset({Category.EXCHANGE, Category.MIXER, Category.BRIDGE})
"""Where a trace stops by default: services, where funds lose their identity. Never a sanctioned or hacker wallet
that is not a service: funds keep their identity there (an address labelled both, an exchange under sanctions,
stops as the exchange)."""

DEFAULT_DUST_USD = Decimal(100)
"""The dust floor of a value-aware trace, in USD."""

DEFAULT_FOLLOW_SHARE = Decimal("0.5")
"""A transfer under the dust floor is still followed when it, or all the transfers under the floor of its address
together, carry this share of the traced funds the address received (laundering that moves in many small amounts)."""

DEFAULT_CRUMB_SHARE = Decimal("0.0005")
"""A transfer at or above the dust floor, but under `tracing.trace.value.CRUMB_CAP` times it, is still not followed
when it carries less than this share of the traced funds its address received: a crumb of a fortune (an address
that received millions paying $150 out of it is spending, not moving the funds on). Chosen on the case evaluation
(BENCHMARKS.md): 0.05 % keeps precision ≥ 0.85 on every case and mix at the least cost in recall; 0 misses that
on reduced traffic, 0.1 % and more lose more terminals for little precision."""


@dataclass(frozen=True, slots=True)
class TraceParams:
    """How to trace. `fanout`: counterparties followed per address (largest flows first); `max_nodes`: addresses
    in the whole trace (about: a batch of addresses being expanded may overshoot a little); `hub_degree`: an
    address with more transfers than this in the direction is a busy service and is not expanded; `stop_at`: label
    categories where the trace stops (services: funds entering them lose their identity); `through`: those of them
    the trace goes on past where the analyst asks (identity lost there: the result says so).

    `follow_value` (the default): the walk propagates the traced amount along transfers in time order under
    `model` and follows a transfer only when the traced value it carries is at least `dust_usd` (in USD on the
    transfer's day; where the asset has no USD price, the floor in units of `dust_units`, keyed by `native` or the
    token address; with neither, no floor) or when it, or all its address's transfers under the floor together,
    carry at least `follow_share` of the traced funds the address received; but a transfer less than `DILUTED`
    traced funds is not followed at any amount, nor one under `CRUMB_CAP` times the floor that carries less than
    `crumb_share` of what its address received (a crumb), the trace's roots aside: they hold nothing but the traced
    funds (`tracing.trace.value.judge`). Under haircut, money an address sends beyond what its history shows
    was there from the start, clean (`tracing.trace.value.shortfall`). Off, or without `follow_time`, the walk
    follows the graph: every transfer after the arrival, largest counterparties first.

    `min_value`: transfers under this many units of their asset are not followed; `min_usd`: nor those worth less
    than this in USD on their day (value-aware walk only; a transfer whose asset has no price that day cannot be
    compared, is followed, and the result says so)."""

    direction: Direction = Direction.OUT
    hops: int = DEFAULT_HOPS
    model: TaintModel = TaintModel.HAIRCUT
    min_value: Decimal | None = None
    min_usd: Decimal | None = None
    token: str | None = None
    since: int | None = None
    until: int | None = None
    follow_time: bool = True
    fanout: int = 100
    max_nodes: int = 2_000
    scan_limit: int = 50_000
    hub_degree: int = 1_000
    stop_at: frozenset[Category] = STOPS
    through: frozenset[Category] = frozenset()
    follow_value: bool = True
    dust_usd: Decimal | None = DEFAULT_DUST_USD
    dust_units: tuple[tuple[str, Decimal], ...] = ()
    follow_share: Decimal = DEFAULT_FOLLOW_SHARE
    crumb_share: Decimal = DEFAULT_CRUMB_SHARE
    pass_through: bool = True
    """Haircut's pass-through (`tracing.trace.value.PassThrough`): a transfer sent on within a day of a receipt of
    mostly traced funds, of its amount or a little less, carries that receipt's traced value. Off: the balance's
    share alone (`--no-pass-through`: no link resting on matching amounts)."""
    heuristics: Heuristics | None = None
    """Bitcoin only: the heuristics applied (`tracing.trace.utxo`); None on other chains, and for a bitcoin trace
    that names none (the investigator applies the default set)."""

    def __post_init__(self) -> None:
        if self.direction not in Direction.ways():
            raise InvalidArgument("A trace goes out or in.")
        if not 1 <= self.hops <= MAX_HOPS:
            raise InvalidArgument(f"Hops must be between 1 and {MAX_HOPS}; got {self.hops}.")
        if self.fanout < 1 or self.max_nodes < 1 or self.scan_limit < 1:
            raise InvalidArgument("Fan-out, node budget and scan limit must be at least 1.")
        if self.since is not None and self.until is not None and self.since > self.until:
            raise InvalidArgument("--since is after --until.")
        if self.dust_usd is not None and self.dust_usd < 0:
            raise InvalidArgument("The dust floor cannot be negative.")
        if self.min_usd is not None and not self.value_aware:
            raise InvalidArgument("A minimum in US dollars needs the value-aware trace.")
        if not 0 <= self.follow_share <= 1:
            raise InvalidArgument("The share of the traced funds to follow must be between 0 and 1.")
        if not 0 <= self.crumb_share <= 1:
            raise InvalidArgument("The share under which a transfer is a crumb must be between 0 and 1.")

    @property
    def stops(self) -> frozenset[Category]:
        """The categories where this trace stops: `stop_at` but those it goes `through`."""
        return self.stop_at - self.through

    @property
    def value_aware(self) -> bool:
        """Whether the walk follows value (`follow_value` with `follow_time`), not the graph."""
        return self.follow_value and self.follow_time

    def query(self) -> FlowQuery:
        return FlowQuery(
            direction=self.direction,
            token=self.token,
            min_value=self.min_value,
            fanout=self.fanout,
            scan_limit=self.scan_limit,
            hub_degree=self.hub_degree,
        )
