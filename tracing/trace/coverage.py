"""What an analysis covered, and what it did not: the coverage every trace and report carries."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Coverage:
    """What the analysis looked at, and what it did not."""

    chains: tuple[str, ...]
    sources: tuple[str, ...]
    traced: bool
    hop_budget: int = 0
    index_range: str = ""
    label_sets: tuple[str, ...] = ()
    cuts: tuple[str, ...] = ()
    gaps: tuple[str, ...] = ()
    taint_model: str = ""
    """How exposure amounts were computed (`haircut` or `poison`), when traced."""
    transfers: int = 0
    """Transfers the traces followed."""
