"""Reply parts that are about the bot itself rather than the domain (help, label listings)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tracing import Label


@dataclass(frozen=True, slots=True)
class HelpListing:
    commands: tuple[tuple[str, str], ...]
    role: str


@dataclass(frozen=True, slots=True)
class HelpTopic:
    usage: str
    summary: str
    params: Sequence[object]
    flags: Sequence[object]
    examples: Sequence[str]
    role: str


@dataclass(frozen=True, slots=True)
class LabelListing:
    address: str
    chain: str | None
    labels: tuple[Label, ...]
