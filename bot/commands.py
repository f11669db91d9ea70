"""The command layer: a registry of commands, each a `Syntax` (grammar, help, required role; see `bot.grammar`)
with the handler that runs it. Every platform's message is parsed here into the command's typed arguments, which
the handler reads as attributes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.context import Context
from bot.grammar import Grammar, Syntax
from bot.messages import Reply
from bot.roles import Role

Handler = Callable[[Context, Any], Awaitable[Reply]]
"""`async def handler(ctx: Context, args: TheCommandsArguments) -> Reply`; the registry checks at start-up that
the command's `arguments` type matches its grammar, so `args` is always that type."""


@dataclass(frozen=True)
class CommandSpec(Syntax):
    """A command: its syntax and the handler that gets its parsed arguments."""

    handler: Handler = field(kw_only=True)


@dataclass
class Registry:
    """Every command by name (and alias), with its grammar (`grammar`, what handlers see as `ctx.registry`)."""

    grammar: Grammar = field(default_factory=Grammar)
    commands: dict[str, CommandSpec] = field(default_factory=dict)

    @property
    def aliases(self) -> dict[str, str]:
        return self.grammar.aliases

    def add(self, spec: CommandSpec) -> None:
        self.grammar.add(spec)
        self.commands[spec.name] = spec

    def get(self, name: str) -> CommandSpec | None:
        syntax = self.grammar.get(name)
        return None if syntax is None else self.commands[syntax.name]

    def visible_to(self, role: Role) -> list[CommandSpec]:
        return [spec for spec in self.commands.values() if role >= spec.role]

    def split(self, text: str) -> tuple[str, str] | None:
        return self.grammar.split(text)

    def parse(self, spec: CommandSpec, rest: str) -> Any:
        return self.grammar.parse(spec, rest)

    def parse_words(self, spec: CommandSpec, words: Sequence[str]) -> Any:
        return self.grammar.parse_words(spec, words)
