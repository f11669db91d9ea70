"""/labels: every label of an address with its source."""

from __future__ import annotations

from bot.commands import CommandSpec, Flag, Invocation, Param, address_arg
from bot.core import Context
from bot.messages import Reply
from bot.render.objects import LabelListing
from tracing import chain_arg


async def labels_command(ctx: Context, inv: Invocation) -> Reply:
    address = inv["address"]
    labels = await ctx.investigator.labels_of(address, inv["chain"])
    return Reply((LabelListing(address, inv["chain"], tuple(labels)),))


SPECS = [
    CommandSpec(
        name="labels",
        summary="Every label we hold for an address, with its source and confidence.",
        handler=labels_command,
        params=(Param("address", address_arg, "an EVM address (0x…)"),),
        flags=(Flag("chain", chain_arg, "only labels valid on this chain", metavar="NAME"),),
        examples=("/labels 0xd90e2f925DA726b50C4Ed8D0Fb90Ad053324F31b",),
    )
]
