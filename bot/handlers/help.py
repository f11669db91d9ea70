"""/help: generated from the registry, listing only what the caller may run."""

from __future__ import annotations

from bot.commands import CommandSpec, Invocation, Param
from bot.core import Context
from bot.messages import Reply
from bot.render.objects import HelpListing, HelpTopic
from tracing import NotFound


async def help_command(ctx: Context, inv: Invocation) -> Reply:
    topic = inv["command"]
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
        params=(Param("command", optional=True, help="a command name"),),
        examples=("/help", "/help risk"),
        aliases=("start",),
    )
]
