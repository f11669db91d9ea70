"""`chainsleuth run` (start a front end) and `chainsleuth say` (one command through the command layer)."""

from __future__ import annotations

import asyncio

import typer

from bot.backends.console import ConsoleBackend
from bot.cli.base import app, open_app
from bot.messages import Identity, IncomingMessage
from bot.render.text import render_text
from storage.settings import get_settings


@app.command()
def run(
    platform: str = typer.Option(
        "", "--platform", "-p", help="console, telegram or slack (default: the one whose tokens are configured)"
    ),
) -> None:
    """Start the bot."""
    settings = get_settings()
    chosen = platform or settings.chosen_platform
    if chosen not in ("console", "telegram", "slack"):
        typer.echo(f"error: unknown platform {chosen!r}; use console, telegram or slack", err=True)
        raise typer.Exit(2)
    the_app = open_app()
    try:
        if chosen == "console":
            asyncio.run(ConsoleBackend(the_app.bot).serve())
        else:
            from bot.platforms import serve_platform

            asyncio.run(serve_platform(chosen, the_app))
    except KeyboardInterrupt:
        pass
    finally:
        the_app.close()


@app.command()
def say(text: str = typer.Argument(..., help='one command, e.g. "/risk 0x…"')) -> None:
    """Run one command through the same command layer a chat uses and print the reply as plain text."""
    the_app = open_app()
    try:
        message = IncomingMessage("cli", "cli", Identity("cli", "operator", "operator"), text.strip(), is_direct=True)
        if not message.text.startswith("/"):
            message = IncomingMessage("cli", "cli", message.user, "/" + message.text, is_direct=True)
        reply = asyncio.run(the_app.bot.handle(message))
        typer.echo(render_text(reply) if reply is not None else "")
    finally:
        the_app.close()
