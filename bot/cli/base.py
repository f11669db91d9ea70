"""The shared typer app and helpers for the CLI modules."""

from __future__ import annotations

import typer

from bot.app import App, build_app
from bot.observability import configure_logging
from storage import Settings, get_settings

app = typer.Typer(
    name="chainsleuth",
    help="chainsleuth — AML investigation bot: risk, traces, labels, watchlists.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def setup_logging(settings: Settings) -> None:
    configure_logging(settings)


def open_app() -> App:
    settings = get_settings()
    setup_logging(settings)
    try:
        return build_app(settings)
    except Exception as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
