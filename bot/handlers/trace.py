"""/trace: follow an address's funds forward or backward, with the flow picture and the edge CSV attached."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from bot.commands import CommandSpec, Flag, Invocation, Param, address_arg, choice_arg, decimal_arg, int_arg, time_arg
from bot.core import Context
from bot.messages import Action, Attachment, Reply, Text
from tracing import (
    DEFAULT_HOPS,
    MAX_HOPS,
    PictureUnavailable,
    TaintModel,
    TraceDirection,
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


async def trace_command(ctx: Context, inv: Invocation) -> Reply:
    address = inv["address"]
    direction = TraceDirection.parse(inv["direction"] or "out")
    params = TraceParams(
        direction=direction,
        hops=inv["hops"] or DEFAULT_HOPS,
        model=TaintModel.parse(inv["model"] or "haircut"),
        min_value=Decimal(inv["min-value"]) if inv["min-value"] else None,
        token=inv["token"],
        since=inv["since"],
        until=inv["until"],
    )
    await ctx.caches_ready(inv["chain"])
    result = await ctx.investigator.trace(address, inv["chain"], params)
    stem = f"trace-{address[:10]}-{direction.value}-{params.hops}h"
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
    other = "in" if direction is TraceDirection.OUT else "out"
    actions = (
        Action("Risk report", f"/risk {address}"),
        Action(f"Trace {other}", f"/trace {address} --direction {other} --hops {params.hops}"),
    )
    return Reply(tuple(parts), actions=actions, attachments=tuple(attachments))


SPECS = [
    CommandSpec(
        name="trace",
        summary="Follow funds out of (or into) an address for up to N hops, to exchanges, mixers, bridges, sanctioned "
        "entities; with a flow picture and a CSV of every transfer.",
        handler=trace_command,
        params=(Param("address", address_arg, "an EVM address (0x…)"),),
        flags=(
            Flag(
                "direction",
                choice_arg("out", "in"),
                "out: where the funds went; in: where they came from",
                metavar="out|in",
            ),
            Flag("hops", int_arg(1, MAX_HOPS), f"how many hops (1–{MAX_HOPS}, default {DEFAULT_HOPS})", metavar="N"),
            Flag("model", choice_arg("haircut", "poison"), "taint model for the amounts", metavar="haircut|poison"),
            Flag("min-value", decimal_arg, "ignore transfers below this amount (in ETH or token units)", metavar="V"),
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
]
