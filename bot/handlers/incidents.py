"""/ack, /unack, /assign, /resolve, /incidents and /oncall: working the incidents that alerts open.

Officers acknowledge (and so own) and resolve incidents with an AML disposition; everyone may list them. Each
change edits the alert messages in chat and lands in the audit log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.commands import CommandSpec
from bot.context import Context
from bot.grammar import Flag, Param, choice_arg, int_arg, refuse_foreign_digits, text_arg, whole_number
from bot.messages import Action, Identity, Reply
from bot.roles import Role
from tracing import (
    Actor,
    Disposition,
    EscalationPolicy,
    Incident,
    IncidentState,
    InvalidArgument,
    NotAllowed,
    OnCall,
)

LOCAL_PLATFORMS = ("console", "cli")
_SLACK_MENTION = re.compile(r"^<@([UW][A-Z0-9]{2,20})(?:\|([^>]*))?>$")
_HANDLE = re.compile(r"^@[A-Za-z0-9_]{3,64}$")


MAX_INCIDENT = 2**62
MAX_WAITS = 5
MAX_WAIT_MINUTES = 7 * 24 * 60


def incident_arg(text: str) -> int:
    raw = text.strip()
    refuse_foreign_digits(raw)
    number = raw[1:] if raw.startswith("#") else raw
    if not re.fullmatch(r"[0-9]{1,19}", number, re.ASCII) or not 0 < int(number) < MAX_INCIDENT:
        raise InvalidArgument(f"“{text[:20]}” is not an incident number (like 12 or #12).")
    return int(number)


def minutes_arg(text: str) -> tuple[int, ...]:
    """Escalation waits: 1 to 5 numbers of minutes separated by commas, each at most a week."""
    refuse_foreign_digits(text)
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or not all(re.fullmatch(r"[0-9]+", part, re.ASCII) for part in parts):
        raise InvalidArgument("Give the waits as minutes separated by commas, like 15,30.")
    if len(parts) > MAX_WAITS:
        raise InvalidArgument(
            f"Give 1 to {MAX_WAITS} waits in minutes, each between 1 and {MAX_WAIT_MINUTES} (a week)."
        )
    return tuple(whole_number(part, 1, MAX_WAIT_MINUTES) for part in parts)


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


@dataclass(frozen=True, slots=True)
class IncidentArgs:
    id: int


@dataclass(frozen=True, slots=True)
class AssignArgs:
    id: int
    user: str


@dataclass(frozen=True, slots=True)
class ResolveArgs:
    id: int
    disposition: Disposition | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class IncidentsArgs:
    scope: str = "open"


@dataclass(frozen=True, slots=True)
class OnCallArgs:
    user: str | None = None
    level: int = 1
    clear: bool = False
    after: tuple[int, ...] | None = None


async def ack_command(ctx: Context, args: IncidentArgs) -> Reply:
    return _card(ctx.incidents.ack(args.id, _actor(ctx), platform=_scope(ctx)))


async def unack_command(ctx: Context, args: IncidentArgs) -> Reply:
    return _card(ctx.incidents.unack(args.id, _actor(ctx), platform=_scope(ctx)))


async def assign_command(ctx: Context, args: AssignArgs) -> Reply:
    who = person(ctx, args.user)
    return _card(ctx.incidents.assign(args.id, _actor(ctx), who.key, who.display, platform=_scope(ctx)))


async def resolve_command(ctx: Context, args: ResolveArgs) -> Reply:
    desk = ctx.incidents
    if args.disposition is None:
        incident = desk.get(args.id, platform=_scope(ctx))
        choices = tuple(Action(d.display.capitalize(), f"/resolve {incident.id} {d.value}") for d in Disposition)
        return Reply((IncidentCard(incident),), actions=choices)
    return _card(desk.resolve(args.id, _actor(ctx), args.disposition, args.note, platform=_scope(ctx)))


async def incidents_command(ctx: Context, args: IncidentsArgs) -> Reply:
    scope = args.scope
    chats = list(dict.fromkeys([ctx.message.chat_id, ctx.message.user.user_id]))
    found = ctx.incidents.listing(
        platform=ctx.message.platform, chats=chats, scope=scope, actor_key=ctx.message.user.key
    )
    return Reply((IncidentListing(scope, tuple(found)),))


async def oncall_command(ctx: Context, args: OnCallArgs) -> Reply:
    book = ctx.oncall
    platform, chat = ctx.message.platform, ctx.message.chat_id
    changes = args.user is not None or args.clear or args.after is not None
    if changes and ctx.role < Role.OFFICER:
        raise NotAllowed(f"Changing the on-call roster needs the officer role; you are {ctx.role.title}.")
    level = args.level
    if args.clear:
        if not book.clear_oncall(platform, chat, level, _actor(ctx)):
            raise InvalidArgument(f"Nobody is on call at level {level} here.")
    elif args.user is not None:
        who = person(ctx, args.user)
        book.set_oncall(platform, chat, level, who.key, who.display, _actor(ctx))
    if args.after is not None:
        book.set_policy(platform, chat, args.after, _actor(ctx))
    return Reply((OnCallRoster(tuple(book.roster(platform, chat)), book.policy(platform, chat)),))


_ID = Param("id", incident_arg, "an incident number (12 or #12)")

SPECS = [
    CommandSpec(
        name="incidents",
        summary="Incidents of this chat: open (default), mine, or all.",
        handler=incidents_command,
        arguments=IncidentsArgs,
        params=(Param("scope", choice_arg("open", "mine", "all"), "open, mine or all", optional=True),),
        examples=("/incidents", "/incidents mine"),
    ),
    CommandSpec(
        name="ack",
        summary="Acknowledge an incident: you own it and escalation stops.",
        handler=ack_command,
        arguments=IncidentArgs,
        params=(_ID,),
        role=Role.OFFICER,
        examples=("/ack 12",),
    ),
    CommandSpec(
        name="unack",
        summary="Withdraw an acknowledgement: the incident is open again and escalates.",
        handler=unack_command,
        arguments=IncidentArgs,
        params=(_ID,),
        role=Role.OFFICER,
        examples=("/unack 12",),
    ),
    CommandSpec(
        name="assign",
        summary="Give an incident to someone.",
        handler=assign_command,
        arguments=AssignArgs,
        params=(_ID, Param("user", str, "me, @username, a mention or platform:user_id")),
        role=Role.OFFICER,
        examples=("/assign 12 @alice", "/assign 12 me"),
    ),
    CommandSpec(
        name="resolve",
        summary="Resolve an incident as true_positive, false_positive, escalated or reported, with a note.",
        handler=resolve_command,
        arguments=ResolveArgs,
        params=(
            _ID,
            Param(
                "disposition", Disposition.parse, "true_positive, false_positive, escalated or reported", optional=True
            ),
            Param("note", text_arg(1000), "what was found or done", optional=True, rest=True),
        ),
        role=Role.OFFICER,
        examples=("/resolve 12 false_positive exchange hot wallet", "/resolve 12 reported SAR filed"),
    ),
    CommandSpec(
        name="oncall",
        summary="Show or set who is called when an incident stays unacknowledged, and after how long.",
        handler=oncall_command,
        arguments=OnCallArgs,
        params=(Param("user", str, "who is on call (me, @username, a mention or platform:user_id)", optional=True),),
        flags=(
            Flag("level", int_arg(1, 5), "escalation level (1: first responder, 2: the next level)", metavar="N"),
            Flag("clear", boolean=True, help="nobody on call at this level"),
            Flag("after", minutes_arg, "minutes before each escalation level, like 15,30", metavar="M,M"),
        ),
        examples=("/oncall", "/oncall @alice", "/oncall @bob --level 2", "/oncall --after 10,30"),
    ),
]
