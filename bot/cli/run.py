"""`chainsleuth run` (start a front end) and `chainsleuth say` (one command through the command layer)."""

from __future__ import annotations

import asyncio
import logging

import typer

from bot.app import App
from bot.backends.base import Backend
from bot.backends.console import ConsoleBackend
from bot.backends.errors import SetupError
from bot.cli.base import app, open_app
from bot.cli.watch import run_watch
from bot.exports import save_attachments
from bot.health import HealthServer, database_check, node_check, store_check
from bot.messages import Identity, IncomingMessage
from bot.render.text import render_text
from bot.web.server import HttpLimits
from storage import get_settings
from tracing import ChainConfig, UserError, load_chains

log = logging.getLogger(__name__)


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
    try:
        chains = [chain for chain in load_chains(settings.chain_variables()).values() if chain.rpc_urls]
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    the_app = open_app()
    try:
        asyncio.run(serve(chosen, the_app, chains))
    except KeyboardInterrupt:
        pass
    except (SetupError, OSError) as exc:  # a bad token, an unreachable API, a port in use: one log line, no traceback
        log.error("cannot start the %s front end: %s", chosen, _one_line(exc))
        raise typer.Exit(1) from None
    finally:
        the_app.close()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "no detail"
    return text if isinstance(exc, SetupError) else f"{type(exc).__name__}: {text}"


async def serve(platform: str, app: App, chains: list[ChainConfig]) -> None:
    """The front end, plus — when chains with an RPC URL are configured — the watcher and the notifier that
    delivers alerts through the same front end, plus /healthz and /metrics when METRICS_PORT is set."""
    from bot.platforms import backend_for

    backend: Backend = ConsoleBackend(app.bot) if platform == "console" else backend_for(platform, app)
    settings = app.settings
    stop = asyncio.Event()
    health: HealthServer | None = None
    watching: asyncio.Task[None] | None = None
    if settings.metrics_port:
        checks = [database_check(app.db), store_check()]
        if chains:
            checks.append(node_check(app.db, settings.node_stale_after, [chain.name for chain in chains]))
        limits = HttpLimits.from_settings(settings)
        health = HealthServer(checks, settings.metrics_host, settings.metrics_port, limits, db=app.db)
        await health.start()
        log.info("health and metrics on http://%s:%d/healthz", settings.metrics_host, health.port)
    if chains:
        watching = asyncio.create_task(run_watch(app, chains, stop, backends={platform: backend}))
        log.info("watching %s", ", ".join(chain.name for chain in chains))
    try:
        await backend.serve()
    finally:
        stop.set()
        if watching is not None:
            try:
                await asyncio.wait_for(watching, timeout=15)
            except Exception:
                log.exception("watcher did not stop cleanly")
        if health is not None:
            await health.stop()


SAY_FAILED = 1
SAY_REFUSED = 2


@app.command()
def say(text: str = typer.Argument(..., help='one command, e.g. "/risk 0x…"')) -> None:
    """Run one command through the same command layer a chat uses and print the reply as plain text. Exits 0 when
    the command ran, 1 when it failed on our side (the reply has a reference), 2 when it was refused (invalid
    input, unknown command, not allowed, not found)."""
    the_app = open_app()
    try:
        message = IncomingMessage("cli", "cli", Identity("cli", "operator", "operator"), text.strip(), is_direct=True)
        if not message.text.startswith("/"):
            message = IncomingMessage("cli", "cli", message.user, "/" + message.text, is_direct=True)
        reply = asyncio.run(the_app.bot.handle(message))
        saved = save_attachments(reply.attachments, the_app.settings.data_dir / "exports") if reply is not None else []
        typer.echo(render_text(reply, saved) if reply is not None else "")
    finally:
        the_app.close()
    if reply is None:
        raise typer.Exit(SAY_REFUSED)
    if reply.is_error:
        raise typer.Exit(SAY_FAILED if reply.failed else SAY_REFUSED)
