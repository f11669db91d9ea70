"""Risk reports: an address's own labels, its exposure to risky entities, a score and level, the reasons, and
what the analysis covered. An address we know nothing about is `unknown`, never clean."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from tracing.labels import Category, Label


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
    """A raw amount of one asset. `token` None means the chain's native coin."""

    value: int
    token: str | None
    symbol: str | None
    decimals: int | None


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
class Coverage:
    """What the analysis looked at, and what it did not."""

    chains: tuple[str, ...]
    sources: tuple[str, ...]
    traced: bool
    hop_budget: int = 0
    index_range: str = ""
    label_sets: tuple[str, ...] = ()
    cuts: tuple[str, ...] = ()
    gaps: tuple[str, ...] = ()


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
