"""Which chains a command may name: only the configured ones (`CHAINS`), the same rule for /risk, /trace and /watch."""

from __future__ import annotations

from bot.core import Context
from tracing import get_chain, load_chains


def configured_chain(ctx: Context, given: str | None) -> str:
    """The configured chain `given` names (the default chain when None), or UnknownChain naming the configured ones.

    Without this a report on a chain nobody configured reads like a finding ("SEVERE … on foo") although no data
    of that chain was ever looked at."""
    return get_chain(given or ctx.settings.default_chain, load_chains()).name
