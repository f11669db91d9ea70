"""Which bitcoin heuristics a trace applies (`Heuristics`), parsed from `--heuristics change,coinjoin,peel,cluster`
(or `none`, `default`, `all`), with the names a result shows.

Every heuristic is a guess about ownership, so an analyst must see which ones shaped an answer and be able to turn
each off: change detection (which output went back to the payer), CoinJoin detection (a mixer stop), peel chains
(followed along the change) and common-input-ownership clustering (off unless asked: it merges addresses into one
owner, which is a claim the analyst should choose to make).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tracing.errors import InvalidArgument


class Heuristic(StrEnum):
    CHANGE = "change"
    COINJOIN = "coinjoin"
    PEEL = "peel"
    CLUSTER = "cluster"

    @property
    def display(self) -> str:
        return _TITLES[self]


_TITLES = {
    Heuristic.CHANGE: "change-output detection",
    Heuristic.COINJOIN: "CoinJoin detection (a mixer stop)",
    Heuristic.PEEL: "peel chains followed along the change",
    Heuristic.CLUSTER: "common-input-ownership clustering (never across a CoinJoin)",
}

DEFAULT_ON = frozenset({Heuristic.CHANGE, Heuristic.COINJOIN, Heuristic.PEEL})
"""On unless the analyst says otherwise; clustering is asked for (`--heuristics default,cluster`)."""


@dataclass(frozen=True, slots=True)
class Heuristics:
    """The heuristics that are on. `Heuristics()` is the default set (change, coinjoin, peel)."""

    on: frozenset[Heuristic] = DEFAULT_ON

    @property
    def change(self) -> bool:
        return Heuristic.CHANGE in self.on

    @property
    def coinjoin(self) -> bool:
        return Heuristic.COINJOIN in self.on

    @property
    def peel(self) -> bool:
        return Heuristic.PEEL in self.on

    @property
    def cluster(self) -> bool:
        return Heuristic.CLUSTER in self.on

    @property
    def names(self) -> tuple[str, ...]:
        """The names of those on, in a fixed order (`change`, `coinjoin`, `peel`, `cluster`)."""
        return tuple(h.value for h in Heuristic if h in self.on)

    def words(self) -> str:
        """`change, coinjoin, peel (off: cluster)` or `none (off: change, coinjoin, peel, cluster)`."""
        off = [h.value for h in Heuristic if h not in self.on]
        return (", ".join(self.names) or "none") + (f" (off: {', '.join(off)})" if off else "")

    @classmethod
    def parse(cls, text: str) -> Heuristics:
        """`change,coinjoin,peel,cluster` (any of them, comma-separated), `none`, `default` or `all`; `default`
        combines with names (`default,cluster`). Raises InvalidArgument, in one sentence, for anything else."""
        words = [w.strip().lower() for w in text.split(",")]
        if not text.strip() or any(not w for w in words):
            raise InvalidArgument(
                "--heuristics takes names separated by commas: change, coinjoin, peel, cluster, or none, default, all."
            )
        if "none" in words:
            if len(words) > 1:
                raise InvalidArgument("--heuristics none cannot be combined with other names.")
            return cls(frozenset())
        on: set[Heuristic] = set()
        for word in words:
            if word == "default":
                on |= DEFAULT_ON
            elif word == "all":
                on |= set(Heuristic)
            else:
                try:
                    on.add(Heuristic(word))
                except ValueError:
                    raise InvalidArgument(
                        f"Unknown heuristic “{word[:30]}”; use change, coinjoin, peel, cluster, none, default or all."
                    ) from None
        return cls(frozenset(on))


DEFAULT_HEURISTICS = Heuristics()
