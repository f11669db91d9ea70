"""/help: generated from the registry, listing only what the caller may run."""

from __future__ import annotations

from dataclasses import dataclass

from bot.commands import CommandSpec
from bot.context import Context
from bot.grammar import Param
from bot.messages import Reply
from bot.render.objects import HelpListing, HelpTopic
from tracing import NotFound


@dataclass(frozen=True, slots=True)
class HelpArgs:
    command: str | None = None


async def help_command(ctx: Context, args: HelpArgs) -> Reply:
    topic = args.command
    if topic:
        spec = ctx.registry.get(topic.lstrip("/"))
        if spec is None or ctx.role < spec.role:
            raise NotFound(f"No command /{topic.lstrip('/')[:30]}; try /help.")
        return Reply((HelpTopic(spec.usage, spec.summary, spec.params, spec.flags, spec.examples, spec.role.title),))
    specs = ctx.registry.visible_to(ctx.role)
    return Reply((HelpListing(tuple((s.usage, s.summary) for s in specs), ctx.role.title),))


SPECS = [
    CommandSpec(
        name="help",
        summary="List the commands you may run, or show one command's usage.",
        handler=help_command,
        arguments=HelpArgs,
        params=(Param("command", optional=True, help="a command name"),),
        examples=("/help", "/help risk"),
        aliases=("start",),
    )
]
