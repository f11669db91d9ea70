"""/labels: every label of an address with its source."""

from __future__ import annotations

from dataclasses import dataclass

from bot.commands import CommandSpec
from bot.context import Context
from bot.grammar import Flag, Param, address_arg
from bot.messages import Reply
from bot.render.objects import LabelListing
from tracing import chain_arg


@dataclass(frozen=True, slots=True)
class LabelsArgs:
    address: str
    chain: str | None = None


async def labels_command(ctx: Context, args: LabelsArgs) -> Reply:
    labels = await ctx.investigator.labels_of(args.address, args.chain)
    return Reply((LabelListing(args.address, args.chain, tuple(labels)),))


SPECS = [
    CommandSpec(
        name="labels",
        summary="Every label we hold for an address, with its source and confidence.",
        handler=labels_command,
        arguments=LabelsArgs,
        params=(Param("address", address_arg, "an EVM address (0x…)"),),
        flags=(Flag("chain", chain_arg, "only labels valid on this chain", metavar="NAME"),),
        examples=("/labels 0xd90e2f925DA726b50C4Ed8D0Fb90Ad053324F31b",),
    )
]
