"""/status (what this bot is and how it sees you) and /role (admins give people roles)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from importlib import metadata

from bot.commands import CommandSpec
from bot.context import Context
from bot.grammar import Param
from bot.messages import Identity, Reply, Text
from bot.roles import Role
from storage import STORE_FAULTS, utcnow
from tracing import InvalidArgument, NotAllowed, outbox_stats, silence_of, watch_status

_STARTED = time.monotonic()
_SLACK_MENTION = re.compile(r"^<@([UW][A-Z0-9]{2,20})(?:\|[^>]*)?>$")
_USER_ID = {
    "telegram": re.compile(r"^[1-9][0-9]{0,19}$"),
    "slack": re.compile(r"^[UW][A-Z0-9]{2,20}$"),
}


def _version() -> str:
    try:
        return metadata.version("chainsleuth")
    except metadata.PackageNotFoundError:
        return "dev"


def _uptime() -> str:
    minutes = int(time.monotonic() - _STARTED) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return (f"{days}d " if days else "") + f"{hours}h {mins:02d}m"


async def status_command(ctx: Context, args: object) -> Reply:
    message = ctx.message
    allowed = "allowed" if ctx.access.chat_allowed(message) else "not on the allow-list"
    sets = ctx.investigator.labels.sets()
    counts = ctx.investigator.labels.counts()
    team = sum(n for (source, _category), n in counts.items() if source.startswith("team:"))
    lines = [
        f"chainsleuth {_version()} on {message.platform}, up {_uptime()}",
        f"You: {message.user.key} ({message.user.display}), role {ctx.role.title}",
        f"This chat: {message.platform}:{message.chat_id}, {allowed}",
        f"Store: {ctx.db.dialect}; default chain {ctx.settings.default_chain}",
        STORE_FAULTS.summary(),
        "Label sets: " + ("; ".join(f"{s.source} {s.version} ({s.rows} rows)" for s in sets) or "none"),
        f"Team labels: {team}",
    ]
    lines += _watch_lines(ctx)
    return Reply((Text("\n".join(lines)),))


def _watch_lines(ctx: Context) -> list[str]:
    """Per chain: head, cursor, lag, last error; then the outbox: depth, failures (never silently dropped)."""
    lines = []
    now = utcnow()
    for chain in watch_status(ctx.db):
        lag = "unknown" if chain.lag is None else f"{chain.lag} blocks"
        head = "?" if chain.head is None else str(chain.head)
        line = f"Chain {chain.chain}: head {head}, cursor {chain.block}, lag {lag}, alerts {chain.alerts}"
        line += f", poisoning dropped {chain.poisoning_dropped}, reorgs {chain.reorgs}"
        silence = silence_of(chain, now, ctx.settings.node_stale_after)
        if silence is not None:  # the lag above is as of the last good answer, so say that first
            line += f"; NOT ANSWERING: {silence.sentence()}"
        if chain.last_error:
            line += f"; last error {chain.last_error[:200]}"
        lines.append(line)
    stats = outbox_stats(ctx.db)
    lines.append(
        f"Outbox: {stats.pending} pending, {stats.sending} sending, {stats.sent} sent, {stats.failed} failed"
        + (f" (oldest pending since {stats.oldest_pending:%Y-%m-%d %H:%M} UTC)" if stats.oldest_pending else "")
    )
    for failure in stats.recent_failures:
        lines.append(
            f"  failed #{failure.id} to {failure.platform}:{failure.chat} after {failure.attempts} attempts: "
            f"{failure.last_error[:200]}"
        )
    return lines


def user_arg_for(platform: str, text: str) -> Identity:
    """`<@U0123>` (a Slack mention), `platform:id`, or a bare id on the caller's platform."""
    raw = text.strip()
    mention = _SLACK_MENTION.match(raw)
    if mention:
        return Identity("slack", mention.group(1))
    if raw.startswith("@"):
        raise InvalidArgument("Bots cannot look people up by @username; use their user id (/status shows it).")
    if ":" in raw:
        platform, raw = raw.split(":", 1)
        if platform not in _USER_ID:
            raise InvalidArgument(f"Unknown platform “{platform[:20]}”; use telegram:ID or slack:ID.")
    elif platform not in _USER_ID:
        raise InvalidArgument("Name the platform: telegram:12345 or slack:U0123.")
    if not _USER_ID[platform].match(raw):
        raise InvalidArgument(f"“{raw[:30]}” is not a {platform} user id.")
    return Identity(platform, raw)


@dataclass(frozen=True, slots=True)
class RoleArgs:
    user: str
    role: Role | None = None


async def role_command(ctx: Context, args: RoleArgs) -> Reply:
    who = user_arg_for(ctx.message.platform, args.user)
    current = ctx.access.role_of(who)
    new = args.role
    if new is None:
        return Reply((Text(f"{who.key} is {current.title}."),))
    if who.key == ctx.message.user.key:
        raise NotAllowed("You cannot change your own role; ask another admin.")
    ctx.access.grant(who.key, new)
    return Reply((Text(f"{who.key} is now {new.title} (was {current.title})."),))


SPECS = [
    CommandSpec(
        name="status",
        summary="What this bot runs on, what it knows, and your role here.",
        handler=status_command,
        examples=("/status",),
    ),
    CommandSpec(
        name="role",
        summary="Show or set someone's role: viewer, analyst, officer or admin.",
        handler=role_command,
        arguments=RoleArgs,
        params=(
            Param("user", str, "a user id (telegram:12345, slack:U0123, or a Slack @mention)"),
            Param("role", Role.parse, "viewer, analyst, officer or admin (omit to show)", optional=True),
        ),
        role=Role.ADMIN,
        examples=("/role telegram:12345 analyst", "/role slack:U0123ABCD officer"),
    ),
]
