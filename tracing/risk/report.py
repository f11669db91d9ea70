"""Risk reports: an address's own labels, its exposure to risky entities, a score and level, the reasons, and
what the analysis covered. An address we know nothing about is `unknown`, never clean."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from tracing.chain.address import checksum
from tracing.chain.amounts import amount_text
from tracing.labels import Category, Label
from tracing.trace.coverage import Coverage


class Level(StrEnum):
    UNKNOWN = "unknown"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    SEVERE = "severe"


class Direction(StrEnum):
    INCOMING = "incoming"
    OUTGOING = "outgoing"


@dataclass(frozen=True, slots=True)
class Amount:
    """A raw amount of one asset. `token` None means the chain's native coin. `usd`: its USD value, each transfer
    valued on its own day (None: no price); `usd_partial`: some transfers had no price, `usd` is a lower bound."""

    value: int
    token: str | None
    symbol: str | None
    decimals: int | None
    usd: Decimal | None = None
    usd_partial: bool = False

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
    evidence_note: str = ""

    @property
    def direct(self) -> bool:
        return self.hops == 1


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


OWN_CATEGORY_SCORE: dict[Category, tuple[int, Level]] = {
    Category.SANCTIONS: (100, Level.SEVERE),
    Category.RANSOMWARE: (90, Level.HIGH),
    Category.DARKNET: (85, Level.HIGH),
    Category.HACK: (85, Level.HIGH),
    Category.MIXER: (80, Level.HIGH),
    Category.SCAM: (75, Level.HIGH),
    Category.GAMBLING: (45, Level.MEDIUM),
    Category.EXCHANGE: (10, Level.LOW),
    Category.BRIDGE: (10, Level.LOW),
    Category.DEFI: (5, Level.LOW),
    Category.OTHER: (5, Level.LOW),
}


def level_for_score(score: int) -> Level:
    if score >= 90:
        return Level.SEVERE
    if score >= 60:
        return Level.HIGH
    if score >= 30:
        return Level.MEDIUM
    return Level.LOW


def score_own_labels(labels: list[Label]) -> tuple[int, Level, list[str]]:
    """Score from the address's own active labels (highest wins, scaled by confidence)."""
    score, level, reasons = 0, Level.UNKNOWN, []
    for label in labels:
        if not label.active:
            reasons.append(
                f"Was labelled {label.category.display} “{label.name}” by {label.source} until {label.delisted_on}."
            )
            continue
        base, base_level = OWN_CATEGORY_SCORE[label.category]
        this = round(base * label.confidence) if label.category is not Category.SANCTIONS else base
        if label.category is Category.SANCTIONS:
            reasons.append(f"The address itself is sanctioned: {label.name} ({label.source}).")
        elif label.category.illicit:
            reasons.append(f"The address itself is labelled {label.category.display}: {label.name} ({label.source}).")
        else:
            reasons.append(f"The address is a known {label.category.display.lower()}: {label.name} ({label.source}).")
        if this > score or level is Level.UNKNOWN:
            score = max(score, this)
            level = base_level if label.category is Category.SANCTIONS else level_for_score(score)
            if label.category.illicit and level is Level.LOW:
                level = Level.MEDIUM
    return score, level, reasons


def labels_only_report(address: str, chain: str, labels: list[Label], label_sets: tuple[str, ...]) -> RiskReport:
    """A report from labels alone, for when the address has not been traced (no chain data configured)."""
    score, level, reasons = score_own_labels(labels)
    sanctioned = any(lb.category is Category.SANCTIONS and lb.active for lb in labels)
    if not labels:
        reasons.append("No labels; not yet traced. Unknown is not clean.")
    coverage = Coverage(
        chains=(chain,),
        sources=("labels",),
        traced=False,
        label_sets=label_sets,
        gaps=("No transfers were traced: exposure to other entities is unknown.",),
    )
    return RiskReport(
        address=address,
        chain=chain,
        score=score,
        level=level,
        sanctioned=sanctioned,
        labels=tuple(labels),
        exposures=(),
        reasons=tuple(reasons),
        coverage=coverage,
    )


# --- reports from traces ---------------------------------------------------------------------------------------

EXPOSURE_WEIGHT: dict[Category, int] = {
    Category.SANCTIONS: 95,
    Category.RANSOMWARE: 85,
    Category.DARKNET: 80,
    Category.HACK: 80,
    Category.MIXER: 75,
    Category.SCAM: 70,
    Category.GAMBLING: 35,
}
"""Score of a direct exposure that is most of the address's volume; hops and a small share lower it."""


def hop_factor(hops: int) -> float:
    """1 hop counts fully; each further hop counts less (0.8, 0.65, then ×0.8 per hop, at least 0.25)."""
    if hops <= 1:
        return 1.0
    if hops == 2:
        return 0.8
    return max(0.25, 0.65 * 0.8 ** (hops - 3))


def share_factor(share: float | None) -> float:
    if share is None:
        return 0.7
    if share >= 0.25:
        return 1.0
    if share >= 0.05:
        return 0.85
    if share >= 0.005:
        return 0.7
    return 0.55


def exposure_score(exposure: Exposure) -> int:
    base = EXPOSURE_WEIGHT.get(exposure.category, 0)
    return round(base * hop_factor(exposure.hops) * share_factor(exposure.share))


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


_ENTITY = {
    Category.SANCTIONS: "sanctioned",
    Category.MIXER: "mixer",
    Category.HACK: "hack/exploit address",
    Category.SCAM: "scam address",
    Category.RANSOMWARE: "ransomware address",
    Category.DARKNET: "darknet market",
    Category.GAMBLING: "gambling service",
    Category.EXCHANGE: "exchange",
    Category.BRIDGE: "bridge",
    Category.DEFI: "DeFi contract",
    Category.OTHER: "labelled address",
}


def exposure_reason(
    exposures: Sequence[Exposure], chain: str = "eth", volume: Sequence[Amount] = (), volume_in: Sequence[Amount] = ()
) -> str:
    """One plain sentence on exposures to one entity (same category, direction, name and hop count)."""
    first = exposures[0]
    label = first.labels[0] if first.labels else None
    name = f"{label.name} ({label.source})" if label else checksum(first.counterparty)
    count = len({e.counterparty for e in exposures})
    who = f"{_ENTITY[first.category]} {name}" + (f" ({count} addresses)" if count > 1 else "")
    summed: dict[str | None, Amount] = {}
    for exposure in exposures:
        for a in exposure.amounts:
            old = summed.get(a.token)
            summed[a.token] = a if old is None else old.plus(a)
    amount = amounts_words(tuple(summed.values()), chain)
    outgoing = first.direction is Direction.OUTGOING
    base = {a.token: a.value for a in (volume if outgoing else volume_in)}
    ratios = [a.value / base[a.token] for a in summed.values() if base.get(a.token)]
    share = f", {min(1.0, max(ratios)):.1%} of its {'outgoing' if outgoing else 'incoming'} volume" if ratios else ""
    if outgoing:
        if first.direct:
            return f"Sent {amount} directly to {who}{share}."
        return f"Funds reached {who} in {first.hops} hops: {amount}{share}."
    if first.direct:
        return f"Received {amount} directly from {who}{share}."
    return f"Received funds traced back {first.hops} hops to {who}: {amount}{share}."


_MAX_REASONS = 6


def traced_report(
    address: str,
    chain: str,
    labels: list[Label],
    exposures: Sequence[Exposure],
    coverage: Coverage,
    volume: tuple[Amount, ...] = (),
    volume_in: tuple[Amount, ...] = (),
) -> RiskReport:
    """Score an address from its own labels and its exposures (from traces in both directions).

    The score is the highest of the own-label score and each illicit exposure's score (category weight × hop factor
    × share factor). Any link to a sanctioned entity, at any hop and of any amount, makes the level severe.
    """
    score, level, reasons = score_own_labels(labels)
    sanctioned = any(lb.category is Category.SANCTIONS and lb.active for lb in labels)
    ranked = sorted(exposures, key=lambda e: (-exposure_score(e), e.hops, e.counterparty))
    sanction_links = [e for e in exposures if e.category is Category.SANCTIONS]
    risky = [e for e in ranked if e.category in EXPOSURE_WEIGHT]
    groups: dict[tuple[object, ...], list[Exposure]] = {}
    for exposure in risky:
        name = exposure.labels[0].name if exposure.labels else exposure.counterparty
        groups.setdefault((exposure.category, exposure.direction, exposure.hops, name), []).append(exposure)
    for group in list(groups.values())[:_MAX_REASONS]:
        reasons.append(exposure_reason(group, chain, volume, volume_in))
    if len(groups) > _MAX_REASONS:
        reasons.append(f"{len(groups) - _MAX_REASONS} more risky entities (see the exposure list).")
    if risky:
        top = max(exposure_score(e) for e in risky)
        score = max(score, top)
        from_exposure = level_for_score(top)
        if from_exposure is Level.LOW and any(e.direct and e.category.illicit for e in risky):
            from_exposure = Level.MEDIUM
        level = max(level, from_exposure, key=_LEVEL_ORDER.index)
    if sanction_links:
        score, level = max(score, 95), Level.SEVERE
        reasons.append("Any link to a sanctioned entity makes the risk severe, whatever the hops or amount.")
    services = sorted(
        {e.labels[0].name for e in exposures if e.category not in EXPOSURE_WEIGHT and e.labels},
    )
    if services:
        shown = ", ".join(services[:5]) + (f" and {len(services) - 5} more" if len(services) > 5 else "")
        reasons.append(f"Counterparties within {coverage.hop_budget} hops include: {shown}.")
    if level is Level.UNKNOWN:
        level = Level.LOW
        reasons.append(
            f"No labelled risky entity within {coverage.hop_budget} hops in either direction "
            f"({coverage.transfers:,} transfers followed). Low is not clean: see what was not covered."
        )
    return RiskReport(
        address=address,
        chain=chain,
        score=min(100, score),
        level=level,
        sanctioned=sanctioned,
        labels=tuple(labels),
        exposures=tuple(sorted(exposures, key=lambda e: (-exposure_score(e), e.hops, e.direction, e.counterparty))),
        reasons=tuple(reasons),
        coverage=coverage,
        volume=volume,
        volume_in=volume_in,
    )


_LEVEL_ORDER = [Level.UNKNOWN, Level.LOW, Level.MEDIUM, Level.HIGH, Level.SEVERE]
