"""The `chainsleuth` command line (typer). Every sub-module of this package adds its commands to `app`."""

from __future__ import annotations

import importlib
import pkgutil

from bot.cli.base import app

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")


def main() -> None:
    app()


__all__ = ["app", "main"]
