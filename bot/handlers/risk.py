"""/risk: the risk summary of one address."""

from __future__ import annotations

from bot.commands import CommandSpec, Flag, Invocation, Param, address_arg, int_arg
from bot.core import Context
from bot.messages import Action, Reply
from tracing.chainref import chain_arg


async def risk_command(ctx: Context, inv: Invocation) -> Reply:
    address = inv["address"]
    report = await ctx.investigator.risk(address, inv["chain"], asker=ctx.asker, hops=inv["hops"])
    return Reply((report,), actions=(Action("Trace funds out", f"/trace {address} --hops 3"),))


SPECS = [
    CommandSpec(
        name="risk",
        summary="Risk summary of an address: labels, exposure, score, evidence and coverage.",
        handler=risk_command,
        params=(Param("address", address_arg, "an EVM address (0x…)"),),
        flags=(
            Flag("chain", chain_arg, "chain name (default: the configured default)", metavar="NAME"),
            Flag("hops", int_arg(1, 10), "how many hops of exposure to look at (1–10)", default=None, metavar="N"),
        ),
        examples=("/risk 0x098B716B8Aaf21512996dC57EB0615e2383E2f96",),
    )
]
