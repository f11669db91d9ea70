"""One trace under every taint model, side by side (`--model compare`): what each model reached, and the addresses
where they disagree, with the traced amount each model found there."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from tracing.trace.flows import Asset
from tracing.trace.model import Trace
from tracing.trace.params import TraceParams
from tracing.trace.sources import LabelLookup, TransferSource
from tracing.trace.taint import TaintModel
from tracing.trace.value import UsdPrices
from tracing.trace.walk import trace_funds

MODELS = (TaintModel.HAIRCUT, TaintModel.POISON, TaintModel.FIFO)


@dataclass(frozen=True)
class Disagreement:
    """An address some models reach and others do not (`reached_by`), or reach with different traced amounts."""

    address: str
    reached_by: tuple[TaintModel, ...]
    hops: Mapping[TaintModel, int]
    received: Mapping[TaintModel, Mapping[Asset, int]]
    """The traced amount it received under each model that reached it, per asset."""


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
    """Addresses not reached by every model, nearest first."""

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
    for address in sorted(frozenset.union(*reached.values()) - everyone):
        by = tuple(model for model in MODELS if address in reached[model])
        hops = {model: node.hop for model in by if (node := traces[model].node(address)) is not None}
        received = {model: dict(traces[model].taint.received.get(address, {})) for model in by}
        found.append(Disagreement(address, by, hops, received))
    found.sort(key=lambda d: (min(d.hops.values(), default=0), d.address))
    return ModelComparison(root, chain, params, traces, reached, tuple(found))
