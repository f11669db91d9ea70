"""/trace: follow an address's funds forward or backward, with the flow picture and the edge CSV attached;
`--model compare` traces once per taint model and answers with the models side by side."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal

from bot.chains import configured_chain
from bot.commands import CommandSpec
from bot.context import Context
from bot.grammar import Flag, Param, address_arg, choice_arg, direction_arg, int_arg, threshold_arg, time_arg
from bot.messages import Action, Attachment, Reply, Text
from tracing import (
    DEFAULT_DUST_USD,
    DEFAULT_HOPS,
    MAX_HOPS,
    STOPS,
    Category,
    Direction,
    Family,
    Heuristics,
    InvalidArgument,
    PictureUnavailable,
    TaintModel,
    Threshold,
    TraceParams,
    chain_arg,
    comparison_csv,
    comparison_png,
    comparison_svg,
    family_of,
    parse_address,
    trace_csv,
    trace_png,
    trace_svg,
)


def token_arg(text: str) -> str:
    """`native` (also `eth`, `trx`: the chain's own coin) or a token contract address (0x… or TRC-20 T…)."""
    if text.strip().lower() in ("native", "eth", "trx"):
        return "native"
    return parse_address(text)


COMPARE = "compare"
"""`--model compare`: trace once per taint model and show them side by side."""


def taint_model_arg(text: str) -> str:
    """A taint model (haircut, poison, fifo), or `compare` for all of them side by side."""
    return choice_arg(*(m.value for m in TaintModel), COMPARE)(text)


def through_arg(text: str) -> frozenset[Category]:
    """`mixer,bridge,exchange` (any of them): the kinds of stop the trace goes on past."""
    kinds = {stop.value: stop for stop in STOPS}
    found: set[Category] = set()
    for word in text.split(","):
        word = word.strip().lower()
        if word not in kinds:
            raise InvalidArgument(f"“{word[:20]}” is not a kind of stop: {', '.join(sorted(kinds))}.")
        found.add(kinds[word])
    return frozenset(found)


def heuristics_arg(text: str) -> Heuristics:
    """`change,coinjoin,peel,cluster` (any of them), `none`, `default` or `all`: the bitcoin heuristics applied."""
    return Heuristics.parse(text)


@dataclass(frozen=True, slots=True)
class TraceArgs:
    address: str
    direction: Direction = Direction.OUT
    hops: int = DEFAULT_HOPS
    model: str = TaintModel.HAIRCUT.value
    min_value: Threshold | None = None
    dust: Threshold | None = None
    through: frozenset[Category] = frozenset()
    token: str | None = None
    since: int | None = None
    until: int | None = None
    chain: str | None = None
    heuristics: Heuristics | None = None
    no_pass_through: bool = False

    @property
    def compare(self) -> bool:
        return self.model == COMPARE

    def params(self) -> TraceParams:
        """The trace to run. A dust floor in units applies to the traced token (`--token`, else the native coin)
        and replaces the USD floor."""
        dust_usd: Decimal | None = DEFAULT_DUST_USD
        dust_units: tuple[tuple[str, Decimal], ...] = ()
        if self.dust is not None:
            dust_usd = self.dust.usd
            if self.dust.units is not None:
                dust_units = ((self.token or "native", self.dust.units),)
        minimum = self.min_value
        if self.no_pass_through and self.model in (TaintModel.POISON.value, TaintModel.FIFO.value):
            raise InvalidArgument(
                "--no-pass-through applies to haircut (the default model): poison and FIFO never match amounts."
            )
        return TraceParams(
            direction=self.direction,
            hops=self.hops,
            model=TaintModel.HAIRCUT if self.compare else TaintModel(self.model),
            min_value=None if minimum is None else minimum.units,
            min_usd=None if minimum is None else minimum.usd,
            token=self.token,
            since=self.since,
            until=self.until,
            through=self.through,
            dust_usd=dust_usd,
            dust_units=dust_units,
            heuristics=self.heuristics,
            pass_through=not self.no_pass_through,
        )


async def trace_command(ctx: Context, args: TraceArgs) -> Reply:
    if args.heuristics is not None and family_of(args.address) is not Family.BTC:
        raise InvalidArgument("--heuristics applies to bitcoin addresses only.")
    params = args.params()
    chain = configured_chain(ctx, args.chain, args.address)
    await ctx.caches_ready(chain)
    if args.compare:
        return await _compared(ctx, args, chain, params)
    result = await ctx.investigator.trace(args.address, chain, params)
    stem = f"trace-{args.address[:10]}-{params.direction.value}-{params.hops}h"
    parts: list[object] = [result]
    attachments: list[Attachment] = []
    try:
        picture = await asyncio.to_thread(trace_png, result)
        attachments.append(Attachment(f"{stem}.png", picture, "image/png", "Flow graph (coloured by label category)"))
        scalable = await asyncio.to_thread(trace_svg, result)
        attachments.append(Attachment(f"{stem}.svg", scalable, "image/svg+xml", "The same flow graph, as SVG"))
    except PictureUnavailable as exc:
        parts.append(Text(str(exc)))
    attachments.append(Attachment(f"{stem}.csv", trace_csv(result).encode(), "text/csv", "One row per transfer"))
    other = params.direction.opposite.value
    actions = (
        Action("Risk report", f"/risk {args.address}"),
        Action(f"Trace {other}", f"/trace {args.address} --direction {other} --hops {params.hops}"),
    )
    return Reply(tuple(parts), actions=actions, attachments=tuple(attachments))


async def _compared(ctx: Context, args: TraceArgs, chain: str, params: TraceParams) -> Reply:
    """`--model compare`: the models side by side in words, one picture of every model's flows (which models
    followed each edge, the disagreements outlined) and one CSV with each model's traced amount per transfer."""
    comparison = await ctx.investigator.compare(args.address, chain, params)
    stem = f"compare-{args.address[:10]}-{params.direction.value}-{params.hops}h"
    parts: list[object] = [comparison]
    attachments: list[Attachment] = []
    try:
        picture = await asyncio.to_thread(comparison_png, comparison)
        caption = "Flow graph of every taint model (dashed: followed by some models only; red: they disagree)"
        attachments.append(Attachment(f"{stem}.png", picture, "image/png", caption))
        scalable = await asyncio.to_thread(comparison_svg, comparison)
        attachments.append(Attachment(f"{stem}.svg", scalable, "image/svg+xml", "The same flow graph, as SVG"))
    except PictureUnavailable as exc:
        parts.append(Text(str(exc)))
    table = comparison_csv(comparison).encode()
    attachments.append(Attachment(f"{stem}.csv", table, "text/csv", "One row per transfer, each model's traced amount"))
    return Reply(
        tuple(parts), actions=(Action("Risk report", f"/risk {args.address}"),), attachments=tuple(attachments)
    )


SPEC = CommandSpec(
    name="trace",
    summary="Follow funds out of (or into) an address for up to N hops, to exchanges, mixers, bridges, sanctioned "
    "entities; with a flow picture and a CSV of every transfer.",
    handler=trace_command,
    arguments=TraceArgs,
    params=(Param("address", address_arg, "an EVM address (0x…)"),),
    flags=(
        Flag("direction", direction_arg, "out: where the funds went; in: where they came from", metavar="out|in"),
        Flag("hops", int_arg(1, MAX_HOPS), f"how many hops (1–{MAX_HOPS}, default {DEFAULT_HOPS})", metavar="N"),
        Flag(
            "model",
            taint_model_arg,
            "taint model (default haircut); compare: every model side by side, with where they disagree",
            metavar="haircut|poison|fifo|compare",
        ),
        Flag(
            "min-value",
            threshold_arg,
            "ignore transfers below this amount: in the asset's units, or $500 (USD on the transfer's day)",
            metavar="V|$USD",
        ),
        Flag(
            "dust",
            threshold_arg,
            f"dust floor: traced value under it is not followed (default ${DEFAULT_DUST_USD}); in units it applies "
            "to --token (else the native coin)",
            metavar="$USD|UNITS",
        ),
        Flag(
            "through",
            through_arg,
            "go on past these kinds of stop (identity lost there)",
            metavar="mixer,bridge,exchange",
        ),
        Flag("token", token_arg, "follow only this token (contract address, or native)", metavar="TOKEN"),
        Flag("since", time_arg, "only transfers at or after this time", metavar="DATE|UNIX"),
        Flag("until", time_arg, "only transfers at or before this time", metavar="DATE|UNIX"),
        Flag("chain", chain_arg, "chain name (default: the configured default)", metavar="NAME"),
        Flag(
            "no-pass-through",
            boolean=True,
            help="haircut: no link by matching amounts (a transfer sent on within a day of a receipt of its amount "
            "then carries its balance's share only)",
        ),
        Flag(
            "heuristics",
            heuristics_arg,
            "bitcoin: which heuristics apply (default change,coinjoin,peel; cluster adds common-input clustering; "
            "none; all)",
            metavar="change,coinjoin,peel,cluster",
        ),
    ),
    examples=(
        "/trace 0x098B716B8Aaf21512996dC57EB0615e2383E2f96 --hops 2",
        "/trace 0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1 --direction in --model poison",
        "/trace 0x098B716B8Aaf21512996dC57EB0615e2383E2f96 --model compare --dust $1000",
    ),
)

SPECS = [SPEC]
