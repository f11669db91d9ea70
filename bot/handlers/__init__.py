"""Command handlers, one module per group, each exporting `SPECS`; `build_registry` collects them all."""

from __future__ import annotations

import importlib
import pkgutil

from bot.commands import CommandSpec, Registry

# /help first, then the investigation commands, then the rest alphabetically: the order /help lists them in.
_FIRST = ("help", "risk", "trace", "labels")


def _modules() -> list[str]:
    names = [m.name for m in pkgutil.iter_modules(__path__)]
    return [n for n in _FIRST if n in names] + sorted(n for n in names if n not in _FIRST)


def build_registry() -> Registry:
    registry = Registry()
    for name in _modules():
        module = importlib.import_module(f"{__name__}.{name}")
        specs: list[CommandSpec] = getattr(module, "SPECS", [])
        for spec in specs:
            registry.add(spec)
    return registry
