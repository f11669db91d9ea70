"""Wording shared by every renderer, so the console, Telegram and Slack say the same things."""

from __future__ import annotations

from tracing import Amount, Exposure, Label, Level, RiskReport, amounts_words, checksum, programs_of

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
    list_date = label.details.get("list_date")
    if list_date:
        bits.append(f"list of {list_date}")
    if label.delisted_on:
        bits.append(f"DELISTED {label.delisted_on.isoformat()}")
    if label.chain != "*":
        bits.append(f"chain {label.chain}")
    return f"{label.category.display}: {label.name} — " + ", ".join(bits)


def amounts_text(amounts: tuple[Amount, ...], chain: str = "eth") -> str:
    """`4.98 USDC ($4.98) + 1.5 ETH (no USD price)`: units and USD on the transfers' days."""
    if not amounts:
        return "amount unknown"
    return amounts_words(amounts, chain)


def exposure_line(exposure: Exposure, chain: str = "eth") -> str:
    who = exposure.labels[0].name if exposure.labels else checksum(exposure.counterparty)
    hop_word = "direct" if exposure.direct else f"{exposure.hops} hops"
    share = f", {exposure.share:.1%} of volume" if exposure.share is not None else ""
    arrow = "from" if exposure.direction.value == "incoming" else "to"
    return (
        f"{exposure.category.display} ({hop_word}, {exposure.direction.value}): "
        f"{amounts_text(exposure.amounts, chain)} {arrow} {who}{share}"
    )


def path_text(exposure: Exposure) -> str:
    if exposure.path:
        return " → ".join(exposure.path)
    return exposure.evidence_note or "no transaction hashes in the source data"
