"""/watch, /unwatch and /watchlist: addresses whose movements (and new risk labels) raise alerts.

Alerts go to you directly by default, or to this chat with `--channel`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.chains import configured_chain, watcher_gap
from bot.commands import CommandSpec
from bot.context import Context
from bot.delivery.notifier import UNDELIVERABLE
from bot.grammar import Flag, Param, address_arg, text_arg, threshold_arg
from bot.messages import Action, Reply, Text
from bot.roles import Role
from tracing import (
    NotFound,
    Threshold,
    Watch,
    chain_arg,
    checksum,
)

MAX_LISTED = 50


def _recipient(ctx: Context, channel: bool) -> str:
    """Where alerts go: this chat, or the person's direct chat with the bot (its id is the user id)."""
    return ctx.message.chat_id if channel else ctx.message.user.user_id


def watch_line(watch: Watch) -> str:
    where = "this chat" if watch.channel else "you directly"
    rules = f"movements of at least {watch.minimum_text}" if watch.minimum_text else "any movement"
    note = f" — {watch.note}" if watch.note else ""
    return f"{checksum(watch.address)} on {watch.chain}: {rules}, alerts to {where}{note}"


@dataclass(frozen=True, slots=True)
class WatchSaved:
    watch: Watch
    created: bool

    def __str__(self) -> str:
        verb = "Now watching" if self.created else "Updated the watch on"
        return (
            f"{verb} {watch_line(self.watch)}.\n"
            "Also alerted: counterparties rated high or severe risk, and new sanctions or risk labels on the address."
        )


@dataclass(frozen=True, slots=True)
class WatchListing:
    watches: tuple[Watch, ...]
    total: int

    def __str__(self) -> str:
        if not self.watches:
            return "No watched addresses here. Add one with /watch ADDRESS."
        lines = [f"Watched addresses ({self.total}):"]
        lines += [f"  • #{w.id} {watch_line(w)}" for w in self.watches]
        if self.total > len(self.watches):
            lines.append(f"  … and {self.total - len(self.watches)} more")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class WatchArgs:
    address: str
    chain: str | None = None
    note: str = ""
    min: Threshold | None = None
    channel: bool = False


@dataclass(frozen=True, slots=True)
class UnwatchArgs:
    address: str
    chain: str | None = None
    channel: bool = False


async def watch_command(ctx: Context, args: WatchArgs) -> Reply:
    chain = configured_chain(ctx, args.chain, args.address)
    watch, created = ctx.watches.watch(
        chain=chain,
        address=args.address,
        platform=ctx.message.platform,
        chat=_recipient(ctx, args.channel),
        channel=args.channel,
        created_by=ctx.message.user.key,
        note=args.note,
        min_amount=None if args.min is None else args.min.units,
        min_usd=None if args.min is None else args.min.usd,
    )
    flag = " --channel" if watch.channel else ""
    undo = Action("Unwatch", f"/unwatch {watch.address} --chain {watch.chain}{flag}")
    parts: list[object] = [WatchSaved(watch, created)]
    undeliverable = UNDELIVERABLE.get(ctx.message.platform)
    if undeliverable:
        parts.append(Text(f"Warning: alerts to this chat cannot be delivered: {undeliverable}."))
    gap = watcher_gap(ctx, chain)
    if gap:
        parts.append(Text(f"Warning: {gap}"))
    return Reply(tuple(parts), actions=(undo,))


async def unwatch_command(ctx: Context, args: UnwatchArgs) -> Reply:
    chain = configured_chain(ctx, args.chain, args.address)
    removed = ctx.watches.unwatch(
        chain=chain, address=args.address, platform=ctx.message.platform, chat=_recipient(ctx, args.channel)
    )
    if removed is None:
        where = "this chat" if args.channel else "you"
        hint = "" if args.channel else " (for a chat's watch add --channel)"
        raise NotFound(f"{checksum(args.address)} on {chain} is not watched for {where}{hint}.")
    return Reply.text(f"Stopped watching {checksum(removed.address)} on {removed.chain}.")


async def watchlist_command(ctx: Context, args: object) -> Reply:
    book = ctx.watches
    chats = list(dict.fromkeys([ctx.message.chat_id, ctx.message.user.user_id]))
    watches = book.for_chats(ctx.message.platform, chats, limit=MAX_LISTED)
    total = book.count_for_chats(ctx.message.platform, chats)
    return Reply((WatchListing(tuple(watches), total),))


_CHAIN = Flag("chain", chain_arg, "chain name (default: the configured default)", metavar="NAME")
_CHANNEL = Flag("channel", boolean=True, help="alerts to this chat instead of to you directly")

SPECS = [
    CommandSpec(
        name="watch",
        summary="Watch an address: alerts on its movements, risky counterparties and new risk labels.",
        handler=watch_command,
        arguments=WatchArgs,
        params=(Param("address", address_arg, "an address: EVM (0x…), TRON (T…) or bitcoin"),),
        flags=(
            _CHAIN,
            Flag("note", text_arg(200), "why it is watched (shown in alerts)", metavar="TEXT"),
            Flag(
                "min",
                threshold_arg,
                "only movements of at least this amount: in the moved asset's units, or $500 (USD on the day, by "
                "the stored prices; without a price that day the alert says so)",
                metavar="VALUE|$USD",
            ),
            _CHANNEL,
        ),
        role=Role.ANALYST,
        examples=(
            "/watch 0x098B716B8Aaf21512996dC57EB0615e2383E2f96 --note 'Ronin exploiter' --channel",
            "/watch 0x1111111111111111111111111111111111111111 --min 10",
        ),
    ),
    CommandSpec(
        name="unwatch",
        summary="Stop watching an address.",
        handler=unwatch_command,
        arguments=UnwatchArgs,
        params=(Param("address", address_arg, "an address: EVM (0x…), TRON (T…) or bitcoin"),),
        flags=(_CHAIN, _CHANNEL),
        role=Role.ANALYST,
        examples=("/unwatch 0x098B716B8Aaf21512996dC57EB0615e2383E2f96 --channel",),
    ),
    CommandSpec(
        name="watchlist",
        summary="The addresses watched for this chat and for you.",
        handler=watchlist_command,
        examples=("/watchlist",),
    ),
]
