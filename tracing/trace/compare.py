"""One trace under every taint model, side by side (`--model compare`): what each model reached, and the addresses
where they disagree, with the traced amount each model found there."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from tracing.trace.flows import Asset
from tracing.trace.model import Trace
from tracing.trace.params import TraceParams
from tracing.trace.sources import LabelLookup, TransferSource
from tracing.trace.taint import TaintModel
from tracing.trace.value import UsdPrices
from tracing.trace.walk import trace_funds

MODELS = (TaintModel.HAIRCUT, TaintModel.POISON, TaintModel.FIFO)
AMOUNT_GAP = 2
"""Models that all reach an address disagree on it when, in some asset, one traced more than this many times what
another did (or something where another traced none of it)."""


@dataclass(frozen=True)
class Disagreement:
    """An address some models reach and others do not (`reached_by`), or reach with different traced amounts."""

    address: str
    reached_by: tuple[TaintModel, ...]
    hops: Mapping[TaintModel, int]
    received: Mapping[TaintModel, Mapping[Asset, int]]
    """The traced amount it received under each model that reached it, per asset."""

    @property
    def on_amount(self) -> bool:
        """Every model reached it, but with traced amounts more than `AMOUNT_GAP` times apart."""
        return len(self.reached_by) == len(MODELS)


@dataclass(frozen=True)
class ModelComparison:
    """The same trace (root, direction, hops, filters) under each taint model."""

    root: str
    chain: str
    params: TraceParams
    traces: Mapping[TaintModel, Trace]
    reached: Mapping[TaintModel, frozenset[str]]
    """Per model, the addresses reached (the root left out)."""
    disagreements: tuple[Disagreement, ...]
    """Addresses not reached by every model, nearest first; then those every model reached with traced amounts more
    than `AMOUNT_GAP` times apart, nearest first."""

    @property
    def amount_gap(self) -> int:
        """How far apart (a factor) the models' traced amounts at an address must be to disagree on it."""
        return AMOUNT_GAP

    @property
    def agreed(self) -> frozenset[str]:
        """Addresses every model reached."""
        sets = list(self.reached.values())
        return frozenset.intersection(*sets) if sets else frozenset()


async def compare_models(
    source: TransferSource,
    labels: LabelLookup,
    root: str,
    chain: str,
    params: TraceParams | None = None,
    prices: UsdPrices | None = None,
    *,
    with_roots: Sequence[str] = (),
) -> ModelComparison:
    """Trace from `root` once per taint model (haircut, poison, fifo) with `params` otherwise unchanged."""
    params = params or TraceParams()
    traces = {
        model: await trace_funds(
            source, labels, root, chain, replace(params, model=model), prices, with_roots=with_roots
        )
        for model in MODELS
    }
    reached = {model: frozenset(n.address for n in trace.nodes[1:]) for model, trace in traces.items()}
    everyone = frozenset.intersection(*reached.values())
    found: list[Disagreement] = []
    for address in sorted(frozenset.union(*reached.values())):
        by = tuple(model for model in MODELS if address in reached[model])
        received = {model: dict(traces[model].taint.received.get(address, {})) for model in by}
        if address in everyone and not _amounts_apart(received.values()):
            continue
        hops = {model: node.hop for model in by if (node := traces[model].node(address)) is not None}
        found.append(Disagreement(address, by, hops, received))
    found.sort(key=lambda d: (d.on_amount, min(d.hops.values(), default=0), d.address))
    return ModelComparison(root, chain, params, traces, reached, tuple(found))


def _amounts_apart(amounts: Iterable[Mapping[Asset, int]]) -> bool:
    """Whether, in some asset, one model traced more than `AMOUNT_GAP` times what another did."""
    found = list(amounts)
    for asset in {asset for by_asset in found for asset in by_asset}:
        values = [by_asset.get(asset, 0) for by_asset in found]
        if max(values) > AMOUNT_GAP * min(values):
            return True
    return False
