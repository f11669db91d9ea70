"""/risk: the risk summary of one address (labels, exposure with evidence paths, score, reasons, coverage)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.chains import configured_chain
from bot.commands import CommandSpec
from bot.context import Context
from bot.grammar import Flag, Param, address_arg, int_arg
from bot.messages import Action, Attachment, Reply
from bot.render.text import MAX_EXPOSURES
from tracing import DEFAULT_HOPS, MAX_HOPS, chain_arg, risk_csv


@dataclass(frozen=True, slots=True)
class RiskArgs:
    address: str
    chain: str | None = None
    hops: int | None = None
    """None: the investigator's default."""


async def risk_command(ctx: Context, args: RiskArgs) -> Reply:
    address = args.address
    chain = configured_chain(ctx, args.chain, args.address)
    await ctx.caches_ready(chain)
    report = await ctx.investigator.risk(address, chain, asker=ctx.asker, hops=args.hops)
    hops = args.hops or DEFAULT_HOPS
    actions = (
        Action("Trace funds out", f"/trace {address} --hops {hops}"),
        Action("Trace funds in", f"/trace {address} --direction in --hops {hops}"),
    )
    attachments: tuple[Attachment, ...] = ()
    if len(report.exposures) > MAX_EXPOSURES:  # the text shows the first ones; the file holds every one
        attachments = (
            Attachment(f"exposure-{address[:10]}.csv", risk_csv(report).encode(), "text/csv", "Every exposure"),
        )
    return Reply((report,), actions=actions, attachments=attachments)


SPEC = CommandSpec(
    name="risk",
    summary="Risk summary of an address: labels, exposure, score, evidence and coverage.",
    handler=risk_command,
    arguments=RiskArgs,
    params=(Param("address", address_arg, "an EVM address (0x…)"),),
    flags=(
        Flag("chain", chain_arg, "chain name (default: the configured default)", metavar="NAME"),
        Flag(
            "hops",
            int_arg(1, MAX_HOPS),
            f"how many hops of exposure to look at (1–{MAX_HOPS}, default {DEFAULT_HOPS})",
            metavar="N",
        ),
    ),
    examples=("/risk 0x098B716B8Aaf21512996dC57EB0615e2383E2f96",),
)

SPECS = [SPEC]
