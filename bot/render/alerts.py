"""What an alert message shows: an alert card (with its incident), a digest of a burst, an escalation calling the
on-call officer, and the buttons that go with them. Plain text by default; the platform renderers may do better."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from bot.messages import Action, Reply
from tracing import (
    WELL_KNOWN,
    Alert,
    AlertKind,
    AlertStatus,
    Direction,
    Incident,
    IncidentState,
    amount_text,
    checksum,
    short,
    show_tx,
)

POSSIBLE_REPEAT = (
    "↻ Possible repeat: sending this alert was interrupted (a restart or a lost connection), "
    "so it may already be above."
)
"""Put on top of an alert re-sent when nobody could tell whether the first send got through."""

_STATUS_TEXT = {
    AlertStatus.PROVISIONAL: "⏳ provisional (at the chain head, not yet confirmed)",
    AlertStatus.CONFIRMED: "✅ confirmed",
    AlertStatus.REORGED_OUT: "↩️ reorged out: its block was replaced, this movement is not on the chain",
}
_KIND_MARK = {
    AlertKind.MOVEMENT: "🔔",
    AlertKind.THRESHOLD: "💰",
    AlertKind.COUNTERPARTY_RISK: "🚨",
    AlertKind.LABEL_CHANGE: "🏷️",
}


def native_symbol(chain: str) -> str:
    known = WELL_KNOWN.get(chain)
    return known.symbol if known else "ETH"


def alert_amount(alert: Alert, usd: Decimal | None) -> str:
    """The moved amount in units and USD on the transfer's day ("1.5 ETH ($4,500.00)"), or "… (no USD price)"."""
    if alert.value is None:
        return "amount unknown"
    # The chain source fills in the native coin's symbol and decimals.
    decimals = alert.decimals or 18 if alert.token is None else alert.decimals
    return amount_text(alert.value, alert.token, decimals, alert.symbol, usd, native_symbol=native_symbol(alert.chain))


def incident_line(incident: Incident | None) -> str:
    if incident is None:
        return ""
    if incident.state is IncidentState.OPEN:
        state = "open, not acknowledged"
        if incident.owner_name:
            state += f", assigned to {incident.owner_name}"
    elif incident.state is IncidentState.ACKNOWLEDGED:
        state = f"acknowledged by {incident.acked_by}" + (
            f", owner {incident.owner_name}" if incident.owner_name and incident.owner_name != incident.acked_by else ""
        )
    else:
        disposition = incident.disposition.display if incident.disposition else "resolved"
        state = f"resolved as {disposition} by {incident.resolved_by}"
    return f"Incident #{incident.id}: {state}"


def movement_line(alert: Alert, usd: Decimal | None = None) -> str:
    kind = {
        "native": "transfer",
        "erc20": "token transfer",
        "internal": "internal transfer",
        "utxo": "bitcoin transaction",
    }.get(alert.transfer_kind or "", "transfer")
    counterparty = checksum(alert.counterparty) if alert.counterparty else "?"
    count = alert.details.get("counterparty_count")
    if isinstance(count, int) and count > 1:  # a bitcoin transaction's other addresses, the largest named
        counterparty += f" and {count - 1} other address{'es' if count > 2 else ''}"
    if alert.direction is Direction.OUT:
        return f"Sent {alert_amount(alert, usd)} to {counterparty} ({kind})"
    if alert.direction is Direction.IN:
        return f"Received {alert_amount(alert, usd)} from {counterparty} ({kind})"
    return f"Moved {alert_amount(alert, usd)} to itself ({kind})"


@dataclass(frozen=True, slots=True)
class AlertCard:
    """One alert with its incident, as a reply part (plain text by default; platform renderers may do better)."""

    alert: Alert
    incident: Incident | None
    usd: Decimal | None = None
    """The moved amount's USD value on the transfer's day; None: no price (the card says so)."""

    def __str__(self) -> str:
        a = self.alert
        head = f"{_KIND_MARK[a.kind]} {a.kind.display} — {checksum(a.address)} on {a.chain}"
        lines = [head]
        if a.kind is AlertKind.LABEL_CHANGE:
            lines += list(a.reasons)
            why = a.details.get("why")
            lines.append(
                "You watch this address."
                if why == "watched"
                else "This chat checked this address with /risk in the last 90 days."
            )
        else:
            lines.append(movement_line(a, self.usd))
            lines.append(f"tx {show_tx(a.tx_hash, a.address) if a.tx_hash else '?'} in block {a.block_number}")
            lines.append(_STATUS_TEXT[a.status])
            if a.reasons:
                lines.append("Why: " + "; ".join(a.reasons))
            note = a.details.get("note")
            if note:
                lines.append(f"Note: {note}")
        if self.incident is not None:
            lines.append(incident_line(self.incident))
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class AlertDigest:
    """Several alerts for one chat in one message (a burst)."""

    cards: tuple[AlertCard, ...]

    def __str__(self) -> str:
        lines = [f"🔔 {len(self.cards)} alerts on watched addresses:"]
        for card in self.cards:
            a = card.alert
            if a.kind is AlertKind.LABEL_CHANGE:
                what = "; ".join(a.reasons)
            else:
                what = f"{short(a.address)}: {movement_line(a, card.usd)}, block {a.block_number}, {a.status.value}"
            incident = f" — incident #{card.incident.id} {card.incident.state.value}" if card.incident else ""
            lines.append(f"• {a.kind.display}: {what}{incident}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class EscalationCard:
    """An incident nobody acknowledged in time, calling the on-call officer of `level`."""

    incident: Incident
    level: int
    oncall_key: str
    oncall_name: str
    open_minutes: int

    def __str__(self) -> str:
        who = f"@{self.oncall_name}" if self.oncall_name else "nobody is on call here (set someone with /oncall)"
        return (
            f"⏰ Incident #{self.incident.id} has not been acknowledged for {self.open_minutes} min — "
            f"escalated to level {self.level}: {who}\n{self.incident.title}\n{incident_line(self.incident)}"
        )


def incident_actions(incident: Incident | None, address: str, chain: str) -> tuple[Action, ...]:
    trace = Action("Trace", f"/trace {address} --chain {chain}")
    if incident is None or incident.state is IncidentState.RESOLVED:
        return (trace,)
    resolve = Action("Resolve…", f"/resolve {incident.id}")
    if incident.state is IncidentState.OPEN:
        return (Action("Ack", f"/ack {incident.id}", style="primary"), resolve, trace)
    return (resolve, trace)


def alert_reply(card: AlertCard) -> Reply:
    return Reply((card,), actions=incident_actions(card.incident, card.alert.address, card.alert.chain))


def digest_reply(cards: Sequence[AlertCard]) -> Reply:
    actions: list[Action] = []
    for incident in {c.incident.id: c.incident for c in cards if c.incident is not None}.values():
        if incident.state is IncidentState.OPEN and len(actions) < 3:
            actions.append(Action(f"Ack #{incident.id}", f"/ack {incident.id}", style="primary"))
    actions.append(Action("Open incidents", "/incidents open"))
    return Reply((AlertDigest(tuple(cards)),), actions=tuple(actions))


def escalation_reply(card: EscalationCard) -> Reply:
    return Reply((card,), actions=incident_actions(card.incident, card.incident.address, card.incident.chain))
