"""The risk policy: how an address is rated from its own labels and its exposures, in one place.

Every number is a field of `RiskPolicy` (the defaults below; `Settings` can change the dust floor), and the README's
"How risk is rated" says the same in words. The rules, in order:

1. Own labels: a sanctioned address is severe; other labels score by category, scaled by confidence.
2. A labelled service (exchange, bridge, mixer, DeFi, gambling) is rated by what it is. Its counterparties'
   activity is listed as *leads* (which of its transfers touched what, how much, when), not as its own risk.
3. Sending to a sanctioned address, directly, after it was listed: severe at any amount.
4. Receiving from a sanctioned address, directly, after it was listed: severe above the dust floor. Below it and
   never answered (the subject sent nothing back), it is probable dusting: shown, not severe.
5. Funds that moved before the counterparty was listed (or labelled) are not a sanctions breach: graded, and
   weighed down.
6. Everything else is graded: category weight × hop weight × value weight (the traced value in dust floors).
7. One line per counterparty and category; an amount is counted once in the totals: under the counterparty's most
   serious category, and not again where the same funds went on through another risky counterparty.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal

from tracing.chain.address import checksum
from tracing.chain.prices import native_decimals
from tracing.chain.transfer import Direction, format_amount
from tracing.labels import Category, Label
from tracing.risk.report import (
    Amount,
    Exposure,
    Level,
    RiskReport,
    Rule,
    Timing,
    Total,
    amounts_words,
    native_symbol,
)
from tracing.trace.coverage import Coverage

OWN_CATEGORY_SCORE: Mapping[Category, tuple[int, Level]] = {
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

EXPOSURE_WEIGHT: Mapping[Category, int] = {
    Category.SANCTIONS: 95,
    Category.RANSOMWARE: 85,
    Category.DARKNET: 80,
    Category.HACK: 80,
    Category.MIXER: 75,
    Category.SCAM: 70,
    Category.GAMBLING: 35,
}
"""Score of a direct exposure of a large value; hops, a small value and predating the listing lower it. Categories
not here (exchange, bridge, DeFi, other) are counterparties, not risk."""

SERVICE_SUBJECTS = frozenset({Category.EXCHANGE, Category.BRIDGE, Category.MIXER, Category.DEFI, Category.GAMBLING})
"""An address labelled as one of these is a service: rated by what it is, its counterparties are leads."""

DUST_UNITS: Mapping[str, Decimal] = {
    "ETH": Decimal("0.2"),
    "WETH": Decimal("0.2"),
    "BNB": Decimal("1"),
    "USDC": Decimal("250"),
    "USDT": Decimal("250"),
    "DAI": Decimal("250"),
}
"""The dust floor in units, per symbol, for amounts without a USD price. The 2022 Tornado Cash dusting sent 0.1 ETH
to each address: below the ETH floor."""


@dataclass(frozen=True, slots=True)
class RiskPolicy:
    """Every threshold and weight of the rating (see the module docstring for the rules)."""

    dust_usd: Decimal = Decimal(250)
    """Below this traced value (USD on the transfer's day) an incoming sanctioned transfer can be dusting."""
    dust_units: Mapping[str, Decimal] = field(default_factory=lambda: dict(DUST_UNITS))
    services: frozenset[Category] = SERVICE_SUBJECTS
    own_scores: Mapping[Category, tuple[int, Level]] = field(default_factory=lambda: dict(OWN_CATEGORY_SCORE))
    weights: Mapping[Category, int] = field(default_factory=lambda: dict(EXPOSURE_WEIGHT))
    hop_weights: tuple[float, ...] = (1.0, 0.8, 0.65, 0.5, 0.4)
    """Weight of an exposure 1, 2, 3, … hops away; beyond the list, `min_hop_weight`."""
    min_hop_weight: float = 0.25
    value_bands: tuple[tuple[float, float], ...] = ((400.0, 1.0), (40.0, 0.85), (4.0, 0.7), (1.0, 0.55))
    """(at least this many dust floors of traced value, weight), largest first ($100k, $10k, $1k, $250)."""
    below_dust_weight: float = 0.3
    unknown_value_weight: float = 0.7
    """Weight when the value cannot be put in dust floors (no USD price and no floor in units for the asset)."""
    predates_weight: float = 0.5
    """Funds that moved before the counterparty was listed or labelled count this much."""
    severe_score: int = 95
    dusting_score: int = 15
    severe_at: int = 90
    high_at: int = 60
    medium_at: int = 30

    def level(self, score: int) -> Level:
        if score >= self.severe_at:
            return Level.SEVERE
        if score >= self.high_at:
            return Level.HIGH
        if score >= self.medium_at:
            return Level.MEDIUM
        return Level.LOW

    def hop_weight(self, hops: int) -> float:
        if hops <= len(self.hop_weights):
            return max(self.min_hop_weight, self.hop_weights[max(hops, 1) - 1])
        return self.min_hop_weight

    def value_weight(self, floors: float | None) -> float:
        if floors is None:
            return self.unknown_value_weight
        for at_least, weight in self.value_bands:
            if floors >= at_least:
                return weight
        return self.below_dust_weight

    def dust_words(self, chain: str = "eth") -> str:
        """`$250 (0.2 ETH, 250 USDC, … where no USD price exists)`."""
        native = native_symbol(chain)
        units = [f"{self.dust_units[native]} {native}"] if native in self.dust_units else []
        units += [f"{v} {k}" for k, v in self.dust_units.items() if k != native and k in ("USDC", "USDT", "DAI")]
        return f"${self.dust_usd:,.0f}" + (f" ({', '.join(units)} where no USD price exists)" if units else "")

    def floors(self, amounts: Sequence[Amount], chain: str = "eth") -> float | None:
        """The traced value in dust floors: in USD when every amount has a price, else per asset in units (the
        largest). None when no amount can be put in floors."""
        if amounts and all(a.usd is not None and not a.usd_partial for a in amounts) and self.dust_usd > 0:
            return float(sum((a.usd for a in amounts if a.usd is not None), Decimal(0)) / self.dust_usd)
        found: list[float] = []
        for amount in amounts:
            if amount.usd is not None and not amount.usd_partial and self.dust_usd > 0:
                found.append(float(amount.usd / self.dust_usd))
                continue
            symbol = native_symbol(chain) if amount.token is None else (amount.symbol or "")
            floor = self.dust_units.get(symbol.upper())
            decimals = native_decimals(chain) if amount.token is None else amount.decimals
            if floor is None or decimals is None or floor <= 0:
                continue
            found.append(float(Decimal(amount.value).scaleb(-decimals) / floor))
        return max(found) if found else None


DEFAULT_POLICY = RiskPolicy()


# --- the address's own labels ----------------------------------------------------------------------------------


def score_own_labels(labels: Sequence[Label], policy: RiskPolicy = DEFAULT_POLICY) -> tuple[int, Level, list[str]]:
    """Score from the address's own active labels (highest wins, scaled by confidence; sanctions always severe)."""
    score, level, reasons = 0, Level.UNKNOWN, []
    for label in labels:
        if not label.active:
            reasons.append(
                f"Was labelled {label.category.display} “{label.name}” by {label.source} until {label.delisted_on}."
            )
            continue
        base, base_level = policy.own_scores[label.category]
        sanctioned = label.category is Category.SANCTIONS
        this = base if sanctioned else round(base * label.confidence)
        if sanctioned:
            reasons.append(f"The address itself is sanctioned: {label.name} ({label.source}).")
        elif label.category.illicit:
            reasons.append(f"The address itself is labelled {label.category.display}: {label.name} ({label.source}).")
        else:
            reasons.append(f"The address is a known {label.category.display.lower()}: {label.name} ({label.source}).")
        if this > score or level is Level.UNKNOWN:
            score = max(score, this)
            level = base_level if sanctioned else policy.level(score)
            if label.category.illicit and level is Level.LOW:
                level = Level.MEDIUM
    return score, level, reasons


def service_label(labels: Sequence[Label], policy: RiskPolicy = DEFAULT_POLICY) -> Label | None:
    """The label that makes the address a service rated by what it is (None when it is not one)."""
    return next((lb for lb in labels if lb.active and lb.category in policy.services), None)


# --- timing: before or after the listing -----------------------------------------------------------------------


def _day(timestamp: int) -> date:
    return datetime.fromtimestamp(timestamp, UTC).date()


def _detail_date(label: Label, key: str) -> date | None:
    value = label.details.get(key)
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def timing_of(exposure: Exposure) -> tuple[Timing, date | None, str]:
    """Whether the exposure's transfers predate the counterparty's listing (sanctions) or label, the date judged
    against, and a note saying what that date is."""
    if exposure.first_at is None:
        return Timing.UNKNOWN, None, "no transfer date"
    first, last = _day(exposure.first_at), _day(exposure.last_at or exposure.first_at)
    labels = [lb for lb in exposure.labels if lb.category is exposure.category] or list(exposure.labels)
    if exposure.category is Category.SANCTIONS:
        for label in labels:
            listed = _detail_date(label, "address_listed")
            if listed is not None:
                return _against(first, last, listed, f"OFAC listed this address on {listed.isoformat()}")
        entity = min((lb.first_seen for lb in labels if lb.first_seen), default=None)
        if entity is not None and last < entity:
            return Timing.BEFORE, entity, f"before the entity was first listed ({entity.isoformat()})"
        listed_by = min((d for lb in labels if (d := _detail_date(lb, "listed_by"))), default=None)
        if listed_by is not None and first >= listed_by:
            return Timing.AFTER, listed_by, f"the address was listed by {listed_by.isoformat()} at the latest"
        since = f" (entity listed since {entity.isoformat()})" if entity else ""
        return Timing.UNKNOWN, entity, f"this address's own listing date is unknown{since}: treated as listed"
    dated = min((lb.first_seen for lb in labels if lb.first_seen), default=None)
    if dated is None:
        return Timing.UNKNOWN, None, "the label has no date"
    return _against(first, last, dated, f"labelled since {dated.isoformat()}")


def _against(first: date, last: date, listed: date, what: str) -> tuple[Timing, date, str]:
    if last < listed:
        days = (listed - last).days
        return Timing.BEFORE, listed, f"{days} day{'s' if days != 1 else ''} before: {what}"
    if first < listed:
        return Timing.AFTER, listed, f"partly after: {what}"
    return Timing.AFTER, listed, f"after: {what}"


# --- rating one exposure ---------------------------------------------------------------------------------------


def rate(exposure: Exposure, chain: str = "eth", policy: RiskPolicy = DEFAULT_POLICY) -> Exposure:
    """The exposure with its timing, the rule that rates it, and its score. A counterparty that is not a risk
    category (exchange, bridge, DeFi, other) is returned as a service counterparty, unrated."""
    base = policy.weights.get(exposure.category)
    if base is None:
        if exposure.rule is Rule.SERVICE_COUNTERPARTY:
            return exposure
        return replace(exposure, rule=Rule.SERVICE_COUNTERPARTY, score=0)
    timing, listed_on, note = timing_of(exposure)
    floors = policy.floors(exposure.amounts, chain)
    rule, score = Rule.GRADED, 0
    if exposure.category is Category.SANCTIONS and timing is not Timing.BEFORE and exposure.direct:
        if exposure.direction is Direction.OUT:
            rule, score = Rule.SENT_TO_SANCTIONED, policy.severe_score
        elif floors is not None and floors < 1 and exposure.answered is False:
            rule, score = Rule.DUSTING, policy.dusting_score
        else:
            rule, score = Rule.RECEIVED_FROM_SANCTIONED, policy.severe_score
    else:
        graded = base * policy.hop_weight(exposure.hops) * policy.value_weight(floors)
        if timing is Timing.BEFORE:
            rule, graded = Rule.PREDATES_LISTING, graded * policy.predates_weight
        # graded exposures stay below severe: only the sanctions rules and the address's own labels make it severe
        score = min(round(graded), policy.severe_at - 1)
    return replace(exposure, timing=timing, listed_on=listed_on, timing_note=note, rule=rule, score=score)


def _rank(exposure: Exposure, policy: RiskPolicy) -> tuple[object, ...]:
    return (-policy.weights.get(exposure.category, 0), exposure.category.value)


def count_once(exposures: Sequence[Exposure], policy: RiskPolicy = DEFAULT_POLICY) -> list[Exposure]:
    """Mark the lines whose amount must not be added again: a counterparty's other categories (the same funds as
    its most serious one), and funds that went on through another risky counterparty (counted there)."""
    risky = [e for e in exposures if e.category in policy.weights]
    primary: dict[tuple[Direction, str], Exposure] = {}
    for exposure in sorted(risky, key=lambda e: _rank(e, policy)):
        primary.setdefault((exposure.direction, exposure.counterparty), exposure)
    entities = {(d, a): e.entity or e.category.display for (d, a), e in primary.items()}
    result = []
    for exposure in exposures:
        key = (exposure.direction, exposure.counterparty)
        if exposure.category not in policy.weights:
            result.append(exposure)  # not risk: never in the totals
            continue
        main = primary[key]
        if exposure.rule is Rule.DUSTING:
            result.append(replace(exposure, counted=False, counted_note="probable dusting, not a risk total"))
            continue
        if main is not exposure:
            note = f"the same funds as its {main.category.display} line"
            result.append(replace(exposure, counted=False, counted_note=note))
            continue
        via = next(
            (a for a in exposure.path_addresses[1:-1] if (exposure.direction, a) in primary),
            None,
        )
        if via is not None:
            note = f"these funds went through {checksum(via)} ({entities[(exposure.direction, via)]}), counted there"
            result.append(replace(exposure, counted=False, counted_note=note))
            continue
        result.append(exposure)
    return result


def add_amounts(amounts: Iterable[Amount]) -> tuple[Amount, ...]:
    """Amounts summed per asset (never across assets); USD summed, partial (a lower bound) where a part has none."""
    summed: dict[str | None, Amount] = {}
    for a in amounts:
        old = summed.get(a.token)
        summed[a.token] = a if old is None else old.plus(a)
    return tuple(sorted(summed.values(), key=lambda a: (a.token is not None, a.token or "")))


def totals_of(exposures: Sequence[Exposure]) -> tuple[Total, ...]:
    """Per direction and category, the counted amounts (each amount once)."""
    groups: dict[tuple[Direction, Category], list[Exposure]] = defaultdict(list)
    for exposure in exposures:
        if exposure.counted:
            groups[(exposure.direction, exposure.category)].append(exposure)
    return tuple(
        Total(direction, category, add_amounts(a for e in group for a in e.amounts), len(group))
        for (direction, category), group in groups.items()
    )


# --- the report ------------------------------------------------------------------------------------------------

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
_MAX_REASONS = 6
_LEVEL_ORDER = [Level.UNKNOWN, Level.LOW, Level.MEDIUM, Level.HIGH, Level.SEVERE]


def day_words(exposure: Exposure) -> str:
    """`on 2022-03-23` or `2022-03-23 … 2022-04-02`."""
    if exposure.first_at is None:
        return "on an unknown date"
    first, last = _day(exposure.first_at), _day(exposure.last_at or exposure.first_at)
    return f"on {first.isoformat()}" if first == last else f"{first.isoformat()} … {last.isoformat()}"


def share_words(exposure: Exposure, history: Mapping[Direction, str]) -> str:
    """`, 6.9% of its outgoing volume over the covered history (412 transfers)`."""
    if exposure.share is None:
        return ""
    way = exposure.direction.adjective
    covered = history.get(exposure.direction, "")
    return f", {exposure.share:.1%} of its {way} volume over the covered history" + (f" ({covered})" if covered else "")


def exposure_reason(
    group: Sequence[Exposure], chain: str, history: Mapping[Direction, str], policy: RiskPolicy = DEFAULT_POLICY
) -> str:
    """One plain sentence on exposures to one entity under one rule."""
    first = group[0]
    name = f"{first.entity} ({first.labels[0].source})" if first.labels else checksum(first.counterparty)
    addresses = {e.counterparty for e in group}
    who = f"{_ENTITY[first.category]} {name}" + (
        f" ({len(addresses)} addresses)" if len(addresses) > 1 else f" at {checksum(first.counterparty)}"
    )
    amount = amounts_words(add_amounts(a for e in group for a in e.amounts), chain)
    when = day_words(first) if len(group) == 1 else ""
    share = share_words(first, history) if len(group) == 1 else ""
    outgoing = first.direction is Direction.OUT
    if first.rule is Rule.SENT_TO_SANCTIONED:
        return (
            f"Sent {amount} directly to {who}{share} ({first.timing_note}): sending to a sanctioned address is "
            "severe at any amount."
        )
    if first.rule is Rule.RECEIVED_FROM_SANCTIONED:
        return (
            f"Received {amount} directly from {who}{share} ({first.timing_note}): above the dust floor "
            f"({policy.dust_words(chain)}), or answered, so severe."
        )
    if first.rule is Rule.DUSTING:
        return (
            f"Received {amount} from {who} {when}, below the dust floor ({policy.dust_words(chain)}) and never "
            "answered (nothing was sent back): probable dusting, as in the 2022 Tornado Cash dusting of public "
            "figures. Shown here, not rated severe."
        )
    if first.rule is Rule.PREDATES_LISTING:
        verb = "Sent" if outgoing else "Received"
        way = "to" if outgoing else "from"
        hops = "directly" if first.direct else f"in {first.hops} hops"
        return (
            f"{verb} {amount} {hops} {way} {who} {when} — {first.timing_note}: "
            f"{'not a sanctions breach; ' if first.category is Category.SANCTIONS else ''}graded as "
            f"{'contact with' if first.direct else 'exposure to'} "
            f"{'a sanctioned' if first.category is Category.SANCTIONS else 'a ' + first.category.display.lower()} "
            f"address, weighed down (score {first.score})."
        ).replace("  ", " ")
    if outgoing:
        if first.direct:
            return f"Sent {amount} directly to {who}{share}."
        return f"Funds reached {who} in {first.hops} hops: {amount}{share}."
    if first.direct:
        return f"Received {amount} directly from {who}{share}."
    return f"Received funds traced back {first.hops} hops to {who}: {amount}{share}."


def as_leads(exposures: Sequence[Exposure], policy: RiskPolicy = DEFAULT_POLICY) -> tuple[Exposure, ...]:
    """A service's risky direct counterparties as leads (its own transfers: what they touched, how much, when): one
    per counterparty and direction, with all its labels. Further hops are not leads: a service's funds are pooled,
    so what left a counterparty later is not the service's transfer."""
    labels: dict[tuple[Direction, str], list[Label]] = defaultdict(list)
    for e in exposures:
        labels[(e.direction, e.counterparty)].extend(e.labels)
    leads = []
    for e in exposures:
        if e.direct and e.category in policy.weights and not e.counted_note.startswith("the same funds"):
            every = tuple(dict.fromkeys(labels[(e.direction, e.counterparty)]))
            leads.append(replace(e, rule=Rule.LEAD, score=0, labels=every))
    return tuple(leads)


def lead_words(lead: Exposure, chain: str = "eth") -> str:
    """`Sent 1.0569 ETH to 0x098B…2f96 (sanctioned Lazarus Group, ofac-sdn) on 2022-03-23 — 22 days before: …`."""
    way = "to" if lead.direction is Direction.OUT else "from"
    verb = "sent" if lead.direction is Direction.OUT else "received"
    hops = "" if lead.direct else f" ({lead.hops} hops away)"
    names = "; ".join(dict.fromkeys(f"{lb.category.display}: {lb.name} ({lb.source})" for lb in lead.labels))
    return (
        f"{verb} {amounts_words(lead.amounts, chain)} {way} {checksum(lead.counterparty)}{hops} "
        f"[{names or lead.category.display}] {day_words(lead)} — {lead.timing_note}"
    )


def assess(
    address: str,
    chain: str,
    labels: Sequence[Label],
    exposures: Sequence[Exposure],
    coverage: Coverage,
    *,
    volume: tuple[Amount, ...] = (),
    volume_in: tuple[Amount, ...] = (),
    history: Mapping[Direction, str] | None = None,
    policy: RiskPolicy = DEFAULT_POLICY,
) -> RiskReport:
    """The risk report of `address` from its own labels and its exposures (from traces in both directions)."""
    history = history or {}
    score, level, reasons = score_own_labels(labels, policy)
    sanctioned = any(lb.category is Category.SANCTIONS and lb.active for lb in labels)
    rated = count_once([rate(e, chain, policy) for e in exposures], policy)
    ordered = sorted(rated, key=lambda e: (-e.score, e.hops, e.direction, e.counterparty, e.category.value))
    service = service_label(labels, policy)
    leads: tuple[Exposure, ...] = ()
    shown: list[Exposure] = ordered
    if service is not None:
        leads = as_leads(ordered, policy)
        shown = [e for e in ordered if e.category not in policy.weights]
        what = service.category.display.lower()
        reasons.append(
            f"Rated by what it is, {'an' if what[0] in 'aeiou' else 'a'} {what} ({service.name}): its counterparties' "
            "activity is listed as leads to follow up (the service knows its customers), not as its own risk"
            + (f" — {len(leads)} lead{'s' if len(leads) != 1 else ''}." if leads else "; no risky direct counterparty.")
        )
        further = {e.counterparty for e in ordered if not e.direct and e.category in policy.weights}
        if further:
            reasons.append(
                f"{len(further)} risky address{'es' if len(further) != 1 else ''} 2 or more hops away "
                "are not leads: a service's funds are pooled, so what its counterparties sent on is not its transfer."
            )
    else:
        risky = [e for e in shown if e.category in policy.weights]
        groups: dict[tuple[object, ...], list[Exposure]] = {}
        for exposure in risky:  # every rated line gets a reason, also one whose funds are counted on another line
            key = (exposure.category, exposure.direction, exposure.hops, exposure.entity or exposure.counterparty)
            groups.setdefault((*key, exposure.rule), []).append(exposure)
        for group in list(groups.values())[:_MAX_REASONS]:
            reasons.append(exposure_reason(group, chain, history, policy))
        if len(groups) > _MAX_REASONS:
            reasons.append(f"{len(groups) - _MAX_REASONS} more risky entities (see the exposure list).")
        if risky:
            top = max(e.score for e in risky)
            score = max(score, top)
            from_exposure = policy.level(top)
            if any(e.rule in (Rule.SENT_TO_SANCTIONED, Rule.RECEIVED_FROM_SANCTIONED) for e in risky):
                from_exposure = Level.SEVERE
            elif from_exposure is Level.LOW and any(
                e.direct and e.category.illicit and e.rule is Rule.GRADED for e in risky
            ):
                from_exposure = Level.MEDIUM
            level = max(level, from_exposure, key=_LEVEL_ORDER.index)
        severe_rules = (Rule.SENT_TO_SANCTIONED, Rule.RECEIVED_FROM_SANCTIONED)
        unknown = sorted({e.entity for e in risky if e.rule in severe_rules and e.timing is Timing.UNKNOWN})
        if unknown:
            reasons.append(
                f"The listing date of {', '.join(unknown)} addresses is unknown (OFAC dates the entity, not each "
                "address): transfers to or from them are treated as after listing."
            )
    counterparties = sorted({e.entity for e in shown if e.category not in policy.weights and e.labels})
    if counterparties:
        more = f" and {len(counterparties) - 5} more" if len(counterparties) > 5 else ""
        reasons.append(
            f"Counterparties within {coverage.hop_budget} hops include: {', '.join(counterparties[:5])}{more}."
        )
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
        exposures=tuple(shown),
        reasons=tuple(reasons),
        coverage=coverage,
        volume=volume,
        volume_in=volume_in,
        leads=leads,
        totals=totals_of([e for e in shown if e.category in policy.weights]) if service is None else (),
        service=service.name if service is not None else "",
        history=tuple(f"{d.adjective}: {words}" for d, words in history.items()),
    )


def labels_only_report(
    address: str,
    chain: str,
    labels: Sequence[Label],
    label_sets: tuple[str, ...],
    policy: RiskPolicy = DEFAULT_POLICY,
) -> RiskReport:
    """A report from labels alone, for when the address has not been traced (no chain data configured)."""
    score, level, reasons = score_own_labels(labels, policy)
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


def floor_words(amount: Amount, policy: RiskPolicy, chain: str = "eth") -> str:
    """The dust floor that applies to one amount, in words (`$250` or `0.2 ETH (no USD price)`)."""
    if amount.usd is not None:
        return f"${policy.dust_usd:,.0f}"
    symbol = native_symbol(chain) if amount.token is None else (amount.symbol or "")
    floor = policy.dust_units.get(symbol.upper())
    if floor is None:
        return f"none for {symbol or checksum(amount.token or '')} (no USD price, no floor in units)"
    decimals = native_decimals(chain) if amount.token is None else (amount.decimals or 0)
    return format_amount(int(floor.scaleb(decimals)), decimals, symbol) + " (no USD price)"
