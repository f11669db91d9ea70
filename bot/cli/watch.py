"""`chainsleuth watch`: follow the configured chains, raise alerts on watched addresses, escalate unacknowledged
incidents and deliver the outbox — to the console, or to the configured Telegram bot or Slack app (send only: no
polling, no HTTP server, no Socket Mode, so it runs beside a `chainsleuth run` holding the same credentials).

`run_watch(app, chains, stop)` is the same work as a coroutine, for `chainsleuth run` to start beside a chat
front end (passing that front end's backend, so one process both answers commands and posts alerts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping, Sequence
from datetime import timedelta

import typer

from bot.app import App
from bot.backends.base import Backend
from bot.backends.console import ConsoleBackend
from bot.cli.base import app, open_app
from bot.delivery.notifier import Notifier
from bot.grammar import decimal_number, whole_number
from storage import get_settings
from tracing import (
    USDT_TRC20,
    ChainConfig,
    ChainConfigError,
    ChainFeed,
    Clock,
    CoreRpcSource,
    Escalator,
    Family,
    InvestigatorRisk,
    OpsMonitor,
    OpsPolicy,
    RpcSource,
    SourceError,
    SystemClock,
    UserError,
    adhoc_chain,
    get_chain,
    load_chains,
    parse_ops_chat,
    rpc_source,
    watch_chains,
)

log = logging.getLogger(__name__)

DEFAULT_POLL = 2.0
MAX_BLOCK = 2**53
"""No chain is anywhere near this block height; a larger `--from-block` is a typo."""


async def run_watch(
    app: App,
    chains: Sequence[ChainConfig],
    stop_event: asyncio.Event,
    *,
    backends: Mapping[str, Backend] | None = None,
    poll_interval: float = DEFAULT_POLL,
    start_block: int | None = None,
    clock: Clock | None = None,
    lease: timedelta | None = None,
) -> None:
    """Watch `chains` (each needs an RPC URL), escalate incidents and, with `backends`, drain the outbox through
    them — until `stop_event` is set. Without backends alerts wait in the outbox for a process that has them."""
    clock = clock or SystemClock()
    sources: list[CoreRpcSource | RpcSource] = [
        CoreRpcSource(chain) if chain.family is Family.BTC else rpc_source(chain) for chain in chains
    ]
    try:
        for source in sources:
            await source.connect()
        feeds = [
            ChainFeed(
                chain.name,
                source,
                confirmations=chain.confirmations,
                poll_interval=poll_interval,
                start_block=start_block,
                symbol=chain.symbol,
                # Tether's freezes on a TRON chain become labels as their blocks are solidified
                freeze_contracts=(USDT_TRC20,) if chain.family is Family.TRON else (),
            )
            for chain, source in zip(chains, sources, strict=True)
        ]
        risk = InvestigatorRisk(app.investigator)
        tasks = [
            watch_chains(app.db, feeds, stop_event, risk=risk, clock=clock, labels=app.investigator.labels),
            Escalator(app.db, clock).run_escalations(stop_event),
        ]
        if backends:
            notifier = Notifier(app.db, backends, clock=clock, lease=lease or timedelta(minutes=5))
            tasks.append(notifier.run(stop_event))
        ops_chat = parse_ops_chat(app.settings.ops_chat)
        if ops_chat is not None:
            policy = OpsPolicy(
                *ops_chat,
                app.settings.ops_lag_blocks,
                app.settings.ops_failed_messages,
                stale_after=app.settings.node_stale_after,
            )
            tasks.append(OpsMonitor(app.db, policy, clock).run(stop_event))
        await asyncio.gather(*tasks)
    finally:
        for source in sources:
            await source.aclose()


def watched_chains(names: Sequence[str], rpc_urls: Sequence[str]) -> list[ChainConfig]:
    """The chains to follow: the named ones (with `--rpc-url` for a single one), else every configured chain
    that has an RPC URL."""
    if rpc_urls:
        if len(names) != 1:
            raise ChainConfigError("--rpc-url needs exactly one --chain.")
        return [adhoc_chain(names[0], tuple(rpc_urls), get_settings().chain_variables())]
    configured = load_chains(get_settings().chain_variables())
    if names:
        chosen = [get_chain(name, configured) for name in names]
        for chain in chosen:
            chain.require_rpc()
        return chosen
    return [chain for chain in configured.values() if chain.rpc_urls]


@app.command("watch")
def watch(
    chain: list[str] = typer.Option(
        [], "--chain", "-c", help="chain to follow (repeatable; default: all with an RPC URL)"
    ),
    rpc_url: list[str] = typer.Option([], "--rpc-url", help="RPC URL for the single --chain (overrides config)"),
    from_block: str | None = typer.Option(None, "--from-block", help="where to start when the chain has no cursor"),
    poll: str = typer.Option(str(DEFAULT_POLL), "--poll", help="seconds between head polls (0.1–3600)"),
    deliver: bool = typer.Option(
        True,
        "--deliver/--no-deliver",
        help="deliver alerts from here (console, or the configured Telegram bot or Slack app)",
    ),
    lease: str = typer.Option(
        "300", "--lease", help="seconds a claimed message stays reserved if this process dies mid-send (1–86400)"
    ),
) -> None:
    """Follow the chains and raise alerts on watched addresses (stop with Ctrl-C)."""
    try:
        # Numbers through the chat grammar: ASCII digits, bounded, no exponents.
        start_block = None if from_block is None else whole_number(from_block, 0, MAX_BLOCK)
        poll_seconds = decimal_number(poll, 0.1, 3600)
        lease_seconds = decimal_number(lease, 1, 86400)
        chains = watched_chains(chain, rpc_url)
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if not chains:
        typer.echo(
            "error: no chain has an RPC URL; set CHAINS and <NAME>_RPC_URL, or use --chain and --rpc-url", err=True
        )
        raise typer.Exit(2)
    platform = get_settings().chosen_platform
    backends: dict[str, Backend] = {}
    the_app = open_app()
    telegram = None
    if deliver and platform == "console":
        backends = {"console": ConsoleBackend(the_app.bot), "cli": ConsoleBackend(the_app.bot)}
    elif deliver and platform in ("telegram", "slack"):
        # Send only (no polling, no Slack server: `chainsleuth run` may be answering commands with the same tokens).
        from bot.backends.telegram import TelegramBackend
        from bot.platforms import sending_backend

        try:
            backend = sending_backend(platform, the_app)
        except SystemExit:
            the_app.close()
            raise
        if isinstance(backend, TelegramBackend):
            telegram = backend
        backends = {platform: backend}
    elif platform != "console":
        typer.echo(f"alerts for {platform} are queued in the store and posted by `chainsleuth run`")
    names = ", ".join(f"{c.name} ({c.confirmations} confirmations)" for c in chains)
    typer.echo(f"watching {names}; Ctrl-C stops")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        if telegram is not None:
            await telegram.application.initialize()
        try:
            await run_watch(
                the_app,
                chains,
                stop,
                backends=backends,
                poll_interval=poll_seconds,
                start_block=start_block,
                lease=timedelta(seconds=lease_seconds),
            )
        finally:
            if telegram is not None:
                await telegram.application.shutdown()

    try:
        asyncio.run(main())
    except (UserError, SourceError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        the_app.close()
