"""Chain names as users type them (`eth`, `base`, ...): validated against a simple grammar here; whether the
chain is configured is checked where chain data is needed."""

from __future__ import annotations

import re

from tracing.errors import UnknownChain

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def chain_arg(text: str) -> str:
    name = text.strip().lower()
    if not _NAME.match(name):
        raise UnknownChain(f"“{text[:32]}” is not a chain name (letters, digits, - and _).")
    return name
