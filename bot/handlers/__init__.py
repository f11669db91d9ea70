"""Command handlers, one module per group; `build_registry` assembles them."""

from __future__ import annotations

from bot.commands import Registry
from bot.handlers import help as help_commands
from bot.handlers import labels as label_commands
from bot.handlers import risk as risk_commands


def build_registry() -> Registry:
    registry = Registry()
    for module in (help_commands, risk_commands, label_commands):
        for spec in module.SPECS:
            registry.add(spec)
    return registry
