"""The label domain (GraphSense TagPack discipline): no label without a source and a confidence, categories from a
fixed taxonomy. `Label`, its `Category` and the `LabelSet` it came from; the store-backed book is `labels.book`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from storage import ANY_EVM, LabelRow, utcnow
from tracing.chain import Family, family_of
from tracing.errors import InvalidArgument

ANY_BTC = "btc"
"""The chain of a bitcoin label: it applies on every configured bitcoin chain (whatever its name), never elsewhere."""


class Category(StrEnum):
    SANCTIONS = "sanctions"
    MIXER = "mixer"
    HACK = "hack"
    SCAM = "scam"
    RANSOMWARE = "ransomware"
    DARKNET = "darknet"
    FROZEN = "frozen"
    """Frozen by a stablecoin's issuer (Tether's blacklist): its tokens cannot move."""
    GAMBLING = "gambling"
    EXCHANGE = "exchange"
    BRIDGE = "bridge"
    DEFI = "defi"
    OTHER = "other"

    @property
    def display(self) -> str:
        return _TITLES[self]

    @property
    def illicit(self) -> bool:
        return self in ILLICIT

    @classmethod
    def parse(cls, text: str) -> Category:
        key = text.strip().lower().replace("_", "-")
        found = _ALIASES.get(key)
        if found is None:
            choices = ", ".join(c.value for c in cls)
            raise InvalidArgument(f"Unknown category “{text[:40]}”; use one of: {choices}.")
        return found


_TITLES = {
    Category.SANCTIONS: "Sanctions",
    Category.MIXER: "Mixer",
    Category.HACK: "Hack/exploit",
    Category.SCAM: "Scam/phishing",
    Category.RANSOMWARE: "Ransomware",
    Category.DARKNET: "Darknet market",
    Category.FROZEN: "Frozen by issuer",
    Category.GAMBLING: "Gambling",
    Category.EXCHANGE: "Exchange",
    Category.BRIDGE: "Bridge",
    Category.DEFI: "DeFi",
    Category.OTHER: "Other",
}
_ALIASES: dict[str, Category] = {c.value: c for c in Category} | {
    "sanctioned": Category.SANCTIONS,
    "ofac": Category.SANCTIONS,
    "exploit": Category.HACK,
    "hack/exploit": Category.HACK,
    "heist": Category.HACK,
    "phishing": Category.SCAM,
    "scam/phishing": Category.SCAM,
    "phish-hack": Category.SCAM,
    "cex": Category.EXCHANGE,
    "dark-market": Category.DARKNET,
    "blacklisted": Category.FROZEN,
    "frozen-by-tether": Category.FROZEN,
}
ILLICIT = frozenset(
    {
        Category.SANCTIONS,
        Category.MIXER,
        Category.HACK,
        Category.SCAM,
        Category.RANSOMWARE,
        Category.DARKNET,
        Category.FROZEN,  # an issuer freezes for hacks, scams and sanctions: a new freeze alerts like a new label
    }
)
SERVICES = frozenset({Category.EXCHANGE, Category.MIXER, Category.BRIDGE, Category.SANCTIONS})
"""Where a trace stops: funds entering a service lose their identity there."""


@dataclass(frozen=True, slots=True)
class Label:
    address: str
    category: Category
    name: str
    source: str
    source_url: str = ""
    confidence: float = 1.0
    chain: str = ANY_EVM
    first_seen: date | None = None
    delisted_on: date | None = None
    created_by: str = "system"
    created_at: datetime | None = None
    details: dict[str, object] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        # "Every EVM chain" means nothing for a TRON or bitcoin address: such a label belongs to its family's chain
        # (a team label on a T… address is a `tron` label), or no lookup would ever find it.
        if self.chain == ANY_EVM and self.address[:2] != "0x":
            family = family_of(self.address)
            if family is not Family.EVM:
                object.__setattr__(self, "chain", family.value)

    @property
    def active(self) -> bool:
        return self.delisted_on is None

    def to_row(self) -> dict[str, object]:
        return {
            "address": self.address,
            "chain": self.chain,
            "category": self.category.value,
            "name": self.name[:300],
            "source": self.source,
            "source_url": self.source_url[:500],
            "confidence": self.confidence,
            "first_seen": self.first_seen,
            "delisted_on": self.delisted_on,
            "created_by": self.created_by[:120],
            "created_at": self.created_at or utcnow(),
            "details": self.details,
        }

    @classmethod
    def from_row(cls, row: LabelRow) -> Label:
        return cls(
            address=row.address,
            category=Category(row.category),
            name=row.name,
            source=row.source,
            source_url=row.source_url,
            confidence=row.confidence,
            chain=row.chain,
            first_seen=row.first_seen,
            delisted_on=row.delisted_on,
            created_by=row.created_by,
            created_at=row.created_at,
            details=dict(row.details or {}),
        )


@dataclass(frozen=True, slots=True)
class LabelSet:
    """What a bundled or imported label set is, for `label_set` bookkeeping and attribution."""

    source: str
    version: str
    source_url: str
    licence: str


@dataclass(frozen=True, slots=True)
class LabelSetInfo:
    source: str
    version: str
    licence: str
    rows: int
    imported_at: datetime


_RANK = {c: i for i, c in enumerate(Category)}


def sort_labels(labels: Iterable[Label]) -> list[Label]:
    """Most serious first, then most confident."""
    return sorted(labels, key=lambda lb: (not lb.active, _RANK[lb.category], -lb.confidence, lb.source, lb.name))


def label_applies(label_chain: str, address: str, chain: str) -> bool:
    """Whether a label of `label_chain` on `address` counts when asking on `chain`: a label of that very chain, an
    "every EVM chain" label on an EVM address, a bitcoin label on a bitcoin address (of any bitcoin chain). A bitcoin
    label never matches an EVM or TRON address, nor an EVM label a bitcoin or TRON one; an "every EVM chain" row on
    a TRON or bitcoin address (a team label made before families existed) counts as that family's label."""
    family = family_of(address)
    if label_chain == ANY_EVM and family is not Family.EVM:
        label_chain = family.value  # an "every EVM chain" row on a T… or bitcoin address is that family's label
    if label_chain == chain:
        return True
    if label_chain == ANY_EVM:
        return family is Family.EVM
    return label_chain == ANY_BTC and family is Family.BTC


LabelIdentity = tuple[str, str, str, str]
"""(chain, source, category, name): what makes one label of an address that label (`uq_label_identity`)."""
LabelFact = tuple[str, LabelIdentity]
"""(address, label identity) of one active label."""
