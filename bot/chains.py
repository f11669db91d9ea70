"""Which chains a command may name (only the configured ones, the same rule for /risk, /trace and /watch), and
whether anything follows a chain for /watch's alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.context import Context
from tracing import chain_for_address, get_chain, load_chains, watch_status

QUIET_WATCHER = timedelta(minutes=15)
"""A watcher whose cursor has not moved for this long is reported as possibly not running."""


def configured_chain(ctx: Context, given: str | None, address: str | None = None) -> str:
    """The configured chain `given` names (else the one `address`'s family picks: `T…` → tron, bitcoin → btc;
    else the default chain), or UnknownChain naming the configured ones; an address of another family than the
    chain's is refused in one sentence.

    Without this a report on a chain nobody configured reads like a finding ("SEVERE … on foo") although no data
    of that chain was ever looked at."""
    chains = load_chains(ctx.settings.chain_variables())
    if address is not None:
        return chain_for_address(address, given, ctx.settings.default_chain, chains).name
    return get_chain(given or ctx.settings.default_chain, chains).name


def watcher_gap(ctx: Context, chain: str, now: datetime | None = None) -> str | None:
    """Why alerts for `chain` may not come (no RPC URL, no watcher ever, a watcher gone quiet), or None."""
    config = get_chain(chain, load_chains(ctx.settings.chain_variables()))
    if not config.rpc_urls:
        return (
            f"No watcher follows {chain}: {config.env_prefix}_RPC_URL is not set, so no alert can come until it is "
            "set and `chainsleuth run` or `chainsleuth watch` runs."
        )
    status = next((s for s in watch_status(ctx.db) if s.chain == chain), None)
    if status is None:
        return (
            f"No watcher has followed {chain} yet: alerts come only while `chainsleuth run` or `chainsleuth watch` "
            "runs with its RPC URL."
        )
    moved = status.updated_at if status.updated_at.tzinfo else status.updated_at.replace(tzinfo=UTC)
    quiet = (now or datetime.now(UTC)) - moved
    if quiet > QUIET_WATCHER:
        return (
            f"The {chain} watcher has not moved since {moved:%Y-%m-%d %H:%M} UTC ({_age(quiet)}): alerts come only "
            "while it runs (see /status)."
        )
    return None


def _age(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"
