"""/ack, /unack, /assign, /resolve, /incidents and /oncall: working the incidents that alerts open.

Officers acknowledge (and so own) and resolve incidents with an AML disposition; everyone may list them. Each
change edits the alert messages in chat and lands in the audit log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.commands import CommandSpec, Flag, Invocation, Param, choice_arg, int_arg, text_arg
from bot.core import Context
from bot.messages import Action, Identity, Reply
from bot.roles import Role
from tracing import (
    Actor,
    Disposition,
    EscalationPolicy,
    Incident,
    IncidentDesk,
    IncidentState,
    InvalidArgument,
    NotAllowed,
    OnCall,
    OnCallBook,
)

LOCAL_PLATFORMS = ("console", "cli")
_SLACK_MENTION = re.compile(r"^<@([UW][A-Z0-9]{2,20})(?:\|([^>]*))?>$")
_HANDLE = re.compile(r"^@[A-Za-z0-9_]{3,64}$")


def incident_arg(text: str) -> int:
    raw = text.strip().lstrip("#")
    if not raw.isdigit() or not 0 < int(raw) < 2**62:
        raise InvalidArgument(f"“{text[:20]}” is not an incident number (like 12 or #12).")
    return int(raw)


def minutes_arg(text: str) -> list[int]:
    try:
        minutes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InvalidArgument("Give the waits as minutes separated by commas, like 15,30.") from None
    return minutes


def person(ctx: Context, text: str) -> Identity:
    """`me`, a Slack mention, a Telegram @username, `platform:user_id`, or a user id on this platform."""
    raw = text.strip()
    if raw.lower() == "me":
        return ctx.message.user
    mention = _SLACK_MENTION.match(raw)
    if mention:
        return Identity("slack", mention.group(1), mention.group(2) or mention.group(1))
    if _HANDLE.match(raw):
        return Identity(ctx.message.platform, raw, raw[1:])
    if ":" in raw:
        platform, user_id = raw.split(":", 1)
        if platform and user_id and re.fullmatch(r"[A-Za-z0-9_@-]{1,64}", user_id):
            return Identity(platform.lower(), user_id, user_id)
    if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", raw):
        return Identity(ctx.message.platform, raw, raw)
    raise InvalidArgument(f"“{raw[:30]}” is not a person: use me, @username, a mention or platform:user_id.")


def _actor(ctx: Context) -> Actor:
    user = ctx.message.user
    return Actor(user.key, user.display, ctx.message.platform, ctx.message.chat_id)


def _scope(ctx: Context) -> str | None:
    """Incidents are reachable from chats of their own platform; the local operator reaches every one."""
    return None if ctx.message.platform in LOCAL_PLATFORMS else ctx.message.platform


def _desk(ctx: Context) -> IncidentDesk:
    return IncidentDesk(ctx.db)


@dataclass(frozen=True, slots=True)
class IncidentCard:
    incident: Incident

    def __str__(self) -> str:
        i = self.incident
        lines = [f"Incident #{i.id} — {i.state.value}: {i.title}"]
        lines.append(f"Alerts: {i.alert_count}; opened {i.opened_at:%Y-%m-%d %H:%M} UTC; last {i.last_alert_at:%H:%M}")
        if i.owner_name:
            lines.append(f"Owner: {i.owner_name}")
        if i.acked_by:
            lines.append(f"Acknowledged by {i.acked_by}")
        if i.state is IncidentState.RESOLVED and i.disposition is not None:
            note = f": {i.resolution_note}" if i.resolution_note else ""
            lines.append(f"Resolved as {i.disposition.display} by {i.resolved_by}{note}")
        elif i.escalation_level:
            lines.append(f"Escalated to level {i.escalation_level}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class IncidentListing:
    scope: str
    incidents: tuple[Incident, ...]

    def __str__(self) -> str:
        if not self.incidents:
            return {"open": "No open incidents here.", "mine": "You own no open incidents."}.get(
                self.scope, "No incidents here."
            )
        lines = [f"Incidents ({self.scope}):"]
        for i in self.incidents:
            owner = f", owner {i.owner_name}" if i.owner_name else ""
            extra = f", {i.disposition.display}" if i.disposition else ""
            lines.append(f"  • #{i.id} {i.state.value}{extra}{owner} — {i.title} ({i.alert_count} alerts)")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class OnCallRoster:
    roster: tuple[OnCall, ...]
    policy: EscalationPolicy

    def __str__(self) -> str:
        waits = ", then ".join(f"{m} min" for m in self.policy.minutes)
        lines = [f"On call here (an unacknowledged incident escalates after {waits}):"]
        if not self.roster:
            lines.append("  nobody — set someone with /oncall @user (add --level 2 for the next level)")
        lines += [f"  level {o.level}: {o.user_name} ({o.user_key})" for o in self.roster]
        return "\n".join(lines)


def _card(incident: Incident) -> Reply:
    actions: list[Action] = []
    if incident.state is IncidentState.OPEN:
        actions.append(Action("Ack", f"/ack {incident.id}", style="primary"))
    if incident.state is IncidentState.ACKNOWLEDGED:
        actions.append(Action("Un-ack", f"/unack {incident.id}"))
    if incident.state is not IncidentState.RESOLVED:
        actions.append(Action("Resolve…", f"/resolve {incident.id}"))
    return Reply((IncidentCard(incident),), actions=tuple(actions))


async def ack_command(ctx: Context, inv: Invocation) -> Reply:
    return _card(_desk(ctx).ack(inv["id"], _actor(ctx), platform=_scope(ctx)))


async def unack_command(ctx: Context, inv: Invocation) -> Reply:
    return _card(_desk(ctx).unack(inv["id"], _actor(ctx), platform=_scope(ctx)))


async def assign_command(ctx: Context, inv: Invocation) -> Reply:
    who = person(ctx, inv["user"])
    return _card(_desk(ctx).assign(inv["id"], _actor(ctx), who.key, who.display, platform=_scope(ctx)))


async def resolve_command(ctx: Context, inv: Invocation) -> Reply:
    desk = _desk(ctx)
    if inv["disposition"] is None:
        incident = desk.get(inv["id"], platform=_scope(ctx))
        choices = tuple(Action(d.display.capitalize(), f"/resolve {incident.id} {d.value}") for d in Disposition)
        return Reply((IncidentCard(incident),), actions=choices)
    disposition = Disposition.parse(inv["disposition"])
    return _card(desk.resolve(inv["id"], _actor(ctx), disposition, inv["note"] or "", platform=_scope(ctx)))


async def incidents_command(ctx: Context, inv: Invocation) -> Reply:
    scope = inv["scope"] or "open"
    chats = list(dict.fromkeys([ctx.message.chat_id, ctx.message.user.user_id]))
    found = _desk(ctx).listing(platform=ctx.message.platform, chats=chats, scope=scope, actor_key=ctx.message.user.key)
    return Reply((IncidentListing(scope, tuple(found)),))


async def oncall_command(ctx: Context, inv: Invocation) -> Reply:
    book = OnCallBook(ctx.db)
    platform, chat = ctx.message.platform, ctx.message.chat_id
    changes = inv["user"] is not None or inv["clear"] or inv["after"] is not None
    if changes and ctx.role < Role.OFFICER:
        raise NotAllowed(f"Changing the on-call roster needs the officer role; you are {ctx.role.title}.")
    level = inv["level"] or 1
    if inv["clear"]:
        if not book.clear_oncall(platform, chat, level, _actor(ctx)):
            raise InvalidArgument(f"Nobody is on call at level {level} here.")
    elif inv["user"] is not None:
        who = person(ctx, inv["user"])
        book.set_oncall(platform, chat, level, who.key, who.display, _actor(ctx))
    if inv["after"] is not None:
        book.set_policy(platform, chat, inv["after"], _actor(ctx))
    return Reply((OnCallRoster(tuple(book.roster(platform, chat)), book.policy(platform, chat)),))


_ID = Param("id", incident_arg, "an incident number (12 or #12)")

SPECS = [
    CommandSpec(
        name="incidents",
        summary="Incidents of this chat: open (default), mine, or all.",
        handler=incidents_command,
        params=(Param("scope", choice_arg("open", "mine", "all"), "open, mine or all", optional=True),),
        examples=("/incidents", "/incidents mine"),
    ),
    CommandSpec(
        name="ack",
        summary="Acknowledge an incident: you own it and escalation stops.",
        handler=ack_command,
        params=(_ID,),
        role=Role.OFFICER,
        examples=("/ack 12",),
    ),
    CommandSpec(
        name="unack",
        summary="Withdraw an acknowledgement: the incident is open again and escalates.",
        handler=unack_command,
        params=(_ID,),
        role=Role.OFFICER,
        examples=("/unack 12",),
    ),
    CommandSpec(
        name="assign",
        summary="Give an incident to someone.",
        handler=assign_command,
        params=(_ID, Param("user", str, "me, @username, a mention or platform:user_id")),
        role=Role.OFFICER,
        examples=("/assign 12 @alice", "/assign 12 me"),
    ),
    CommandSpec(
        name="resolve",
        summary="Resolve an incident as true_positive, false_positive, escalated or reported, with a note.",
        handler=resolve_command,
        params=(
            _ID,
            Param("disposition", str, "true_positive, false_positive, escalated or reported", optional=True),
            Param("note", text_arg(1000), "what was found or done", optional=True, rest=True),
        ),
        role=Role.OFFICER,
        examples=("/resolve 12 false_positive exchange hot wallet", "/resolve 12 reported SAR filed"),
    ),
    CommandSpec(
        name="oncall",
        summary="Show or set who is called when an incident stays unacknowledged, and after how long.",
        handler=oncall_command,
        params=(Param("user", str, "who is on call (me, @username, a mention or platform:user_id)", optional=True),),
        flags=(
            Flag("level", int_arg(1, 5), "escalation level (1: first responder, 2: the next level)", metavar="N"),
            Flag("clear", boolean=True, help="nobody on call at this level"),
            Flag("after", minutes_arg, "minutes before each escalation level, like 15,30", metavar="M,M"),
        ),
        examples=("/oncall", "/oncall @alice", "/oncall @bob --level 2", "/oncall --after 10,30"),
    ),
]
