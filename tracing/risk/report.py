"""Risk reports: an address's own labels, its exposure to risky entities (or, for a service, the leads its
transfers give), a score and level, the reasons, and what the analysis covered. An address we know nothing about
is `unknown`, never clean. How the level is decided lives in `tracing.risk.policy`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from tracing.chain import show_tx
from tracing.chain.amounts import amount_text
from tracing.chain.transfer import Direction
from tracing.labels import Category, Label
from tracing.trace.coverage import Coverage


class Level(StrEnum):
    UNKNOWN = "unknown"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    SEVERE = "severe"


@dataclass(frozen=True, slots=True)
class Amount:
    """A raw amount of one asset. `token` None means the chain's native coin. `usd`: its USD value, each transfer
    valued on its own day (None: no price); `usd_partial`: some transfers had no price, `usd` is a lower bound."""

    value: int
    token: str | None
    symbol: str | None
    decimals: int | None
    usd: Decimal | None = None
    """Its USD value, each transfer valued on its own day (None: no price)."""
    usd_partial: bool = False
    """Some of its transfers had no price: `usd` is a lower bound."""

    def text(self, chain: str = "eth") -> str:
        """`4.98 USDC ($4.98)`, `1.5 ETH (no USD price)`."""
        return amount_text(
            self.value,
            self.token,
            self.decimals,
            self.symbol,
            self.usd,
            native_symbol=native_symbol(chain),
            usd_partial=self.usd_partial,
        )

    def plus(self, other: Amount) -> Amount:
        """The sum of two amounts of the same asset (USD summed; partial when either is or only one is priced)."""
        usd = None if self.usd is None and other.usd is None else (self.usd or Decimal(0)) + (other.usd or Decimal(0))
        partial = self.usd_partial or other.usd_partial or (usd is not None and None in (self.usd, other.usd))
        return Amount(
            self.value + other.value,
            self.token,
            self.symbol or other.symbol,
            self.decimals if self.decimals is not None else other.decimals,
            usd,
            partial,
        )


class Timing(StrEnum):
    """Whether the funds moved before or after the counterparty was listed (sanctions) or labelled."""

    BEFORE = "before listing"
    AFTER = "after listing"
    UNKNOWN = "listing date unknown"


class Rule(StrEnum):
    """Which rule of the risk policy rated an exposure."""

    SENT_TO_SANCTIONED = "sent to a sanctioned address"
    RECEIVED_FROM_SANCTIONED = "received from a sanctioned address above the dust floor"
    DUSTING = "probable dusting"
    PREDATES_LISTING = "predates the listing"
    GRADED = "graded by value and hops"
    SERVICE_COUNTERPARTY = "a service counterparty"
    LEAD = "a lead"


@dataclass(frozen=True, slots=True)
class Exposure:
    """Funds between the subject and one risky entity."""

    category: Category
    direction: Direction
    hops: int
    counterparty: str
    labels: tuple[Label, ...]
    amounts: tuple[Amount, ...]
    share: float | None
    path: tuple[str, ...]
    """Transaction hashes from the subject to the counterparty (or back), in hop order."""
    path_addresses: tuple[str, ...] = ()
    passes_on: tuple[str | None, ...] = ()
    """Per transfer of `path`, the transaction of the receipt it passes on (the value-aware walk's pass-through:
    followed as that receipt moving on, matched by amount and time), None where it does not (or no value walk)."""
    evidence_note: str = ""
    first_at: int | None = None
    """When the funds first reached the counterparty (unix seconds), over the transfers the trace followed."""
    last_at: int | None = None
    """When they last did."""
    answered: bool | None = None
    """Incoming, direct: whether the subject ever sent to the counterparty (None: not looked at)."""
    # set by the policy:
    timing: Timing = Timing.UNKNOWN
    listed_on: date | None = None
    """The counterparty's listing (sanctions) or label date the timing was judged against."""
    timing_note: str = ""
    rule: Rule = Rule.GRADED
    score: int = 0
    counted: bool = True
    """Whether its amount is in the report's totals (False: the same funds are counted on another line)."""
    counted_note: str = ""

    @property
    def shown_path(self) -> tuple[str, ...]:
        """`path` as the chain shows its transaction ids (TRON's without `0x`)."""
        return tuple(show_tx(tx, self.counterparty) for tx in self.path)

    @property
    def pass_throughs(self) -> tuple[tuple[int, str], ...]:
        """(hop, receipt's transaction as the chain shows it) for each transfer of the path that passes a receipt
        on: links the trace made by matching an amount in with the same amount out, to be checked by hand."""
        return tuple(
            (hop, show_tx(tx, self.counterparty)) for hop, tx in enumerate(self.passes_on, start=1) if tx is not None
        )

    @property
    def direct(self) -> bool:
        return self.hops == 1

    @property
    def entity(self) -> str:
        return self.labels[0].name if self.labels else ""


@dataclass(frozen=True, slots=True)
class Total:
    """Funds between the subject and one category of risky entity, each amount counted once."""

    direction: Direction
    category: Category
    amounts: tuple[Amount, ...]
    counterparties: int


@dataclass(frozen=True, slots=True)
class RiskReport:
    address: str
    chain: str
    score: int
    level: Level
    sanctioned: bool
    labels: tuple[Label, ...]
    exposures: tuple[Exposure, ...]
    reasons: tuple[str, ...]
    coverage: Coverage
    volume: tuple[Amount, ...] = field(default=())
    """What the address sent within the analysis window, per asset (when traced)."""
    volume_in: tuple[Amount, ...] = field(default=())
    """What it received."""
    leads: tuple[Exposure, ...] = field(default=())
    """A service's counterparties' activity: what its transfers touched, shown for follow-up, not rated."""
    totals: tuple[Total, ...] = field(default=())
    service: str = ""
    """When the address is a labelled service rated by what it is: the service's name."""
    history: tuple[str, ...] = field(default=())
    """The covered history shares of volume are taken over, in words (one line per direction)."""


def native_symbol(chain: str) -> str:
    try:
        from tracing.chain.config import WELL_KNOWN
    except ImportError:  # chain configuration not available in this build
        return "ETH"
    known = WELL_KNOWN.get(chain)
    return known.symbol if known else "ETH"


def amounts_words(amounts: Sequence[Amount], chain: str = "eth") -> str:
    """`1,200 ETH ($2,400,000) + 5,000 USDT ($5,000)`: each amount in units and USD on its transfers' days, or
    "no USD price" (raw units with the token address when its metadata is unknown)."""
    if not amounts:
        return "an unknown amount"
    return " + ".join(amount.text(chain) for amount in amounts)
