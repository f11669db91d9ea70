"""/label: a team-private label on an address (analyst role), stored with who made it and on which platform."""

from __future__ import annotations

from dataclasses import dataclass

from bot.commands import CommandSpec
from bot.context import Context
from bot.grammar import Flag, Param, address_arg, confidence_arg, text_arg, url_arg
from bot.messages import Reply, Text
from bot.render.objects import LabelListing
from bot.roles import Role
from tracing import Category, Label, checksum


@dataclass(frozen=True, slots=True)
class LabelArgs:
    address: str
    category: Category
    name: str
    source: str = ""
    confidence: float = 1.0


async def label_command(ctx: Context, args: LabelArgs) -> Reply:
    name = " ".join(args.name.split())  # never empty: the grammar refuses a blank NAME
    label = Label(
        address=args.address,
        category=args.category,
        name=name,
        source=f"team:{ctx.message.platform}",
        source_url=args.source,
        confidence=args.confidence,
        created_by=ctx.message.user.key,
    )
    ctx.investigator.labels.add(label)
    saved = f"Saved a team label on {checksum(label.address)}; /risk and /labels show it from now on."
    return Reply((Text(saved), LabelListing(label.address, None, (label,))))


SPECS = [
    CommandSpec(
        name="label",
        summary="Label an address for the team (category from the fixed list, a name, and where it comes from).",
        handler=label_command,
        arguments=LabelArgs,
        params=(
            Param("address", address_arg, "an EVM address (0x…)"),
            Param("category", Category.parse, "one of: " + ", ".join(c.value for c in Category)),
            Param("name", text_arg(300), "who or what the address is (free text)", rest=True),
        ),
        flags=(
            Flag("source", url_arg, "link to the evidence (http or https)", metavar="URL"),
            Flag("confidence", confidence_arg, "how sure you are, 0–1 or a percentage", metavar="X"),
        ),
        role=Role.ANALYST,
        examples=(
            '/label 0x1111111111111111111111111111111111111111 scam "Fake airdrop" --source https://example.org/report',
        ),
    )
]
