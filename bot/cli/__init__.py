"""The `chainsleuth` command line (typer). Each sub-module adds its commands to `app`."""

from __future__ import annotations

from bot.cli import db as _db  # noqa: F401
from bot.cli import labels as _labels  # noqa: F401
from bot.cli import run as _run  # noqa: F401
from bot.cli.base import app


def main() -> None:
    app()


__all__ = ["app", "main"]
