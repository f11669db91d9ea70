"""The `chainsleuth` command line (typer). Every sub-module of this package adds its commands to `app`."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import secrets

import typer

from bot.cli.base import app
from storage import store_fault

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")


def main() -> None:
    """Run the command line; a store that cannot be written ends any command with one line naming the cause."""
    try:
        app()
    except Exception as exc:
        fault = store_fault(exc)
        if fault is None:
            raise
        ref = secrets.token_hex(4)
        logging.getLogger(__name__).error("store fault (ref %s): %s", ref, fault)
        typer.echo(f"error: {fault.cause}; the step that met it was not written (reference {ref}).", err=True)
        raise SystemExit(1) from exc


__all__ = ["app", "main"]
