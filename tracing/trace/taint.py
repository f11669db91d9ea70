"""Taint models: how much of the traced funds each address and transfer of a trace carries.

- `poison` (reachability): every address the funds reach is fully tainted, and every transfer it makes onward
  carries its whole value. Simple and conservative; it overstates amounts past the first hop.
- `fifo` (first in, first out, Clayton's case): an address's onward transfers, in time order, carry what it
  received tainted until that is spent (per asset; an asset it did not receive is counted as under haircut).
- `haircut` (value-proportional): an address passes taint on in proportion to value. Its taint fraction is the
  tainted amount it received divided by what it moved on in the trace window (capped at 1); each onward transfer
  carries that fraction of its value. Per asset: the fraction is the largest ratio over the assets it both received
  tainted and moved on; when it moved on none of the assets it received (a swap), it counts as fully tainted.

Amounts stay exact raw integers (fractions, no floats). Only edges that go one hop further from the root carry
taint, so a cycle or a second path at the same depth never counts the same funds twice. Backward traces use the
same rules with the flow reversed: "tainted" then means "attributable to that source".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from tracing.trace.flows import Asset


class TaintModel(StrEnum):
    POISON = "poison"
    HAIRCUT = "haircut"
    FIFO = "fifo"

    @classmethod
    def parse(cls, text: str) -> TaintModel:
        from tracing.errors import InvalidArgument

        try:
            return cls(text.strip().lower())
        except ValueError:
            raise InvalidArgument(f"“{text[:20]}” is not a taint model; use haircut, poison or fifo.") from None


class TaintStep(NamedTuple):
    """One transfer seen from the trace: `near` is the end closer to the root, `far` the end one hop further."""

    near: str
    far: str
    asset: Asset
    value: int
    hop: int


@dataclass(frozen=True)
class Taint:
    model: TaintModel
    edges: tuple[int, ...]
    """Raw amount carried by each step, in the step's asset, aligned with the steps given to `compute_taint`."""
    received: Mapping[str, Mapping[Asset, int]] = field(default_factory=dict)
    """Tainted amount each address received, per asset."""
    fraction: Mapping[str, float] = field(default_factory=dict)
    """The share of what each address moved on that counts as tainted (1.0 under poison)."""

    def amounts(self, address: str) -> dict[Asset, int]:
        return dict(self.received.get(address, {}))


def compute_taint(
    model: TaintModel,
    root: str,
    hops: Mapping[str, int],
    totals: Mapping[str, Mapping[Asset, int]],
    steps: Sequence[TaintStep],
) -> Taint:
    """Propagate taint from `root` (fraction 1) outward, hop by hop.

    `hops`: the hop of every address in the trace; `totals`: per expanded address, what it moved in the trace
    direction within its window, per asset (used by haircut only). Fractions are kept as exact (numerator,
    denominator) pairs of integers.
    """
    carried, received, fraction = _propagate(model, root, hops, totals, steps)
    return Taint(
        model=model,
        edges=tuple(carried),
        received={address: dict(amounts) for address, amounts in received.items()},
        fraction={address: num / den for address, (num, den) in fraction.items()},
    )


def received_amounts(
    model: TaintModel,
    root: Hashable,
    hops: Mapping[Any, int],
    totals: Mapping[Any, Mapping[Any, int]],
    steps: Sequence[tuple[Any, Any, Any, int, int]],
) -> dict[Any, dict[Any, int]]:
    """`compute_taint(...).received` alone, for steps given as plain (near, far, asset, value, hop) tuples over any
    keys (node ids, token ids): what a risk report reads, without the per-step amounts."""
    _, received, _ = _propagate(model, root, hops, totals, steps)
    return received  # fresh dicts, not shared with anything


def carried_amounts(
    model: TaintModel,
    root: Hashable,
    hops: Mapping[Any, int],
    totals: Mapping[Any, Mapping[Any, int]],
    steps: Sequence[tuple[Any, Any, Any, int, int]],
) -> list[int]:
    """`compute_taint(...).edges` alone, for plain (near, far, asset, value, hop) steps over any keys: the raw amount
    each step carries (what USD valuation per transfer day reads)."""
    carried, _, _ = _propagate(model, root, hops, totals, steps)
    return carried


def _propagate(
    model: TaintModel,
    root: Any,
    hops: Mapping[Any, int],
    totals: Mapping[Any, Mapping[Any, int]],
    steps: Sequence[tuple[Any, Any, Any, int, int]],
) -> tuple[list[int], dict[Any, dict[Any, int]], dict[Any, tuple[int, int]]]:
    poison, fifo = model is TaintModel.POISON, model is TaintModel.FIFO
    left: dict[Any, dict[Any, int]] = {}
    fraction: dict[Any, tuple[int, int]] = {root: (1, 1)}
    received: dict[Any, dict[Any, int]] = {}
    carried = [0] * len(steps)
    by_hop: dict[int, list[int]] = defaultdict(list)
    for index, (near, far, _, _, hop) in enumerate(steps):
        if hops.get(near) == hop - 1 and hops.get(far) == hop:
            by_hop[hop].append(index)
    for hop in sorted(by_hop):
        reached: set[Any] = set()
        for index in by_hop[hop]:
            near, far, asset, value, _ = steps[index]
            share = fraction.get(near)
            if share is None or not share[0]:
                continue
            held = left.get(near, {}).get(asset) if fifo and near != root else None
            if held is not None:  # first in, first out: the earliest transfers take what it received first
                amount = min(value, held)
                left[near][asset] = held - amount
            else:
                amount = value if poison else value * share[0] // share[1]
            carried[index] = amount
            mine = received.get(far)
            if mine is None:
                received[far] = {asset: amount}
            else:
                mine[asset] = mine.get(asset, 0) + amount
            reached.add(far)
        for address in reached:
            fraction[address] = _fraction(poison, received[address], totals.get(address, {}))
            if fifo:
                left[address] = dict(received[address])
    return carried, received, fraction


def _fraction(poison: bool, received: Mapping[Any, int], moved: Mapping[Any, int]) -> tuple[int, int]:
    if not any(received.values()):
        return (0, 1)
    if poison:
        return (1, 1)
    best: tuple[int, int] | None = None
    for asset, amount in received.items():
        total = moved.get(asset, 0)
        if total > 0 and (best is None or amount * best[1] > best[0] * total):
            best = (amount, total)
    if best is None or best[0] >= best[1]:
        return (1, 1)
    return best
