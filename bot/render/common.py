"""Wording shared by every renderer, so the console, Telegram and Slack say the same things."""

from __future__ import annotations

from bot.render.invisible import reveal
from tracing import (
    Amount,
    Category,
    Exposure,
    Label,
    Level,
    RiskReport,
    Rule,
    Timing,
    amounts_words,
    checksum,
    day_words,
    freeze_words,
    lead_words,
    programs_of,
)

LEVEL_MARK = {
    Level.UNKNOWN: "⚪",
    Level.LOW: "🟢",
    Level.MEDIUM: "🟡",
    Level.HIGH: "🟠",
    Level.SEVERE: "🔴",
}


def headline(report: RiskReport) -> str:
    if report.level is Level.UNKNOWN:
        return f"{LEVEL_MARK[report.level]} UNKNOWN risk — {checksum(report.address)} on {report.chain}"
    state = " — SANCTIONED" if report.sanctioned else ""
    if any(lb.active and lb.category is Category.FROZEN for lb in report.labels):
        state += " — FROZEN"
    return (
        f"{LEVEL_MARK[report.level]} {report.level.value.upper()} risk ({report.score}/100){state} — "
        f"{checksum(report.address)} on {report.chain}"
    )


def label_line(label: Label) -> str:
    """`Sanctions: Lazarus Group — ofac-sdn, confidence 100%, DPRK3, listed 2019-09-13`."""
    bits = [f"{label.source}", f"confidence {label.confidence:.0%}"]
    programs = programs_of(label)
    if programs:
        bits.append("program " + ", ".join(programs))
    if label.first_seen:
        bits.append(f"since {label.first_seen.isoformat()}")
    address_listed = label.details.get("address_listed")
    if address_listed:
        bits.append(f"address listed {address_listed}")
    list_date = label.details.get("list_date")
    if list_date:
        bits.append(f"list of {list_date}")
    evidence = freeze_words(label)
    if evidence:
        bits.append(evidence)
    if label.delisted_on:
        bits.append(f"{'LIFTED' if evidence else 'DELISTED'} {label.delisted_on.isoformat()}")
    if label.chain != "*":
        bits.append(f"chain {label.chain}")
    return reveal(f"{label.category.display}: {label.name} — " + ", ".join(bits))


def amounts_text(amounts: tuple[Amount, ...], chain: str = "eth") -> str:
    """`4.98 USDC ($4.98) + 1.5 ETH (no USD price)`: units and USD on the transfers' days."""
    if not amounts:
        return "amount unknown"
    return amounts_words(amounts, chain)


_RATED = {
    Rule.SENT_TO_SANCTIONED: "severe: sent to a sanctioned address",
    Rule.RECEIVED_FROM_SANCTIONED: "severe: received from a sanctioned address above the dust floor",
    Rule.DUSTING: "probable dusting: below the dust floor and never answered; not severe",
    Rule.PREDATES_LISTING: "predates the listing: weighed down",
    Rule.GRADED: "graded by value and hops",
    Rule.SERVICE_COUNTERPARTY: "a service counterparty, not risk",
    Rule.LEAD: "a lead",
}


def exposure_line(exposure: Exposure, chain: str = "eth") -> str:
    """`Sanctions (direct, outgoing): 1.0569 ETH to Lazarus Group (ofac-sdn) 0x098B…, on 2022-03-23, 4.1% of …`."""
    name = f"{exposure.entity} ({exposure.labels[0].source}) " if exposure.labels else ""
    hop_word = "direct" if exposure.direct else f"{exposure.hops} hops"
    way = exposure.direction.adjective
    share = f", {exposure.share:.1%} of its {way} volume covered" if exposure.share is not None else ""
    arrow = "from" if way == "incoming" else "to"
    return (
        f"{exposure.category.display} ({hop_word}, {way}): {amounts_text(exposure.amounts, chain)} {arrow} "
        f"{name}{checksum(exposure.counterparty)}, {day_words(exposure)}{share}"
    )


def exposure_detail(exposure: Exposure) -> str:
    """`after listing (after: OFAC listed this address on 2022-04-14); rated: severe: …; score 95`."""
    if exposure.rule is Rule.SERVICE_COUNTERPARTY:
        return _RATED[exposure.rule]
    if exposure.timing is Timing.UNKNOWN:
        timing = exposure.timing_note or exposure.timing.value
    else:
        timing = exposure.timing.value + (f" ({exposure.timing_note})" if exposure.timing_note else "")
    counted = "" if exposure.counted else f"; not added to totals: {exposure.counted_note}"
    return f"{timing}; rated: {_RATED[exposure.rule]} (score {exposure.score}){counted}"


def lead_line(lead: Exposure, chain: str = "eth") -> str:
    words = lead_words(lead, chain)
    return words[0].upper() + words[1:]


def totals_line(report: RiskReport) -> str:
    """`outgoing Sanctions 144,836 ETH (7 counterparties); outgoing Hack/exploit 5,702.33 ETH (3)`."""
    parts = [
        f"{t.direction.adjective} {t.category.display}: {amounts_words(t.amounts, report.chain)} "
        f"({t.counterparties} counterpart{'ies' if t.counterparties != 1 else 'y'})"
        for t in report.totals
    ]
    return "; ".join(parts)


def path_text(exposure: Exposure) -> str:
    if exposure.path:
        return " → ".join(exposure.shown_path) + pass_through_words(exposure)
    return exposure.evidence_note or "no transaction hashes in the source data"


def pass_through_words(exposure: Exposure) -> str:
    """`; hop 2 passes on the receipt in 0x…` for each link of the path matched by amount and time (empty if none)."""
    return "".join(f"; hop {hop} passes on the receipt in {tx}" for hop, tx in exposure.pass_throughs)
