"""/trace: follow an address's funds forward or backward, with the flow picture and the edge CSV attached."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bot.commands import CommandSpec
from bot.context import Context
from bot.grammar import Flag, Param, address_arg, choice_arg, direction_arg, int_arg, threshold_arg, time_arg
from bot.messages import Action, Attachment, Reply, Text
from tracing import (
    DEFAULT_HOPS,
    MAX_HOPS,
    USD_NOT_YET,
    Direction,
    InvalidArgument,
    PictureUnavailable,
    TaintModel,
    Threshold,
    TraceParams,
    chain_arg,
    parse_address,
    trace_csv,
    trace_png,
    trace_svg,
)


def token_arg(text: str) -> str:
    """`native` or a token contract address."""
    if text.strip().lower() in ("native", "eth"):
        return "native"
    return parse_address(text)


def taint_model_arg(text: str) -> TaintModel:
    """The taint models chat offers: haircut or poison (fifo is the library's, not yet the command's)."""
    return TaintModel(choice_arg(TaintModel.HAIRCUT.value, TaintModel.POISON.value)(text))


@dataclass(frozen=True, slots=True)
class TraceArgs:
    address: str
    direction: Direction = Direction.OUT
    hops: int = DEFAULT_HOPS
    model: TaintModel = TaintModel.HAIRCUT
    min_value: Threshold | None = None
    token: str | None = None
    since: int | None = None
    until: int | None = None
    chain: str | None = None

    def params(self) -> TraceParams:
        """The trace to run. A minimum in US dollars is refused here until prices are known."""
        if self.min_value is not None and self.min_value.units is None:
            raise InvalidArgument(USD_NOT_YET)
        return TraceParams(
            direction=self.direction,
            hops=self.hops,
            model=self.model,
            min_value=None if self.min_value is None else self.min_value.units,
            token=self.token,
            since=self.since,
            until=self.until,
        )


async def trace_command(ctx: Context, args: TraceArgs) -> Reply:
    params = args.params()
    await ctx.caches_ready(args.chain)
    result = await ctx.investigator.trace(args.address, args.chain, params)
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
        Flag("model", taint_model_arg, "taint model for the amounts", metavar="haircut|poison"),
        Flag("min-value", threshold_arg, "ignore transfers below this amount (in ETH or token units)", metavar="V"),
        Flag("token", token_arg, "follow only this token (contract address, or native)", metavar="TOKEN"),
        Flag("since", time_arg, "only transfers at or after this time", metavar="DATE|UNIX"),
        Flag("until", time_arg, "only transfers at or before this time", metavar="DATE|UNIX"),
        Flag("chain", chain_arg, "chain name (default: the configured default)", metavar="NAME"),
    ),
    examples=(
        "/trace 0x098B716B8Aaf21512996dC57EB0615e2383E2f96 --hops 2",
        "/trace 0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1 --direction in --model poison",
    ),
)

SPECS = [SPEC]
