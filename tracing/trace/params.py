"""What a trace asks: its direction, hop budget, taint model, filters and limits (`TraceParams`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from tracing.errors import InvalidArgument
from tracing.labels.book import SERVICES, Category
from tracing.trace.flows import FlowQuery
from tracing.trace.taint import TaintModel

DEFAULT_HOPS = 3
MAX_HOPS = 10


class TraceDirection(StrEnum):
    OUT = "out"
    IN = "in"

    @classmethod
    def parse(cls, text: str) -> TraceDirection:
        value = text.strip().lower()
        aliases = {"out": cls.OUT, "forward": cls.OUT, "in": cls.IN, "backward": cls.IN, "back": cls.IN}
        if value not in aliases:
            raise InvalidArgument(f"“{text[:20]}” is not a direction; use out or in.")
        return aliases[value]


@dataclass(frozen=True, slots=True)
class TraceParams:
    """How to trace. `fanout`: counterparties followed per address (largest flows first); `max_nodes`: addresses
    in the whole trace (about: a batch of addresses being expanded may overshoot a little); `hub_degree`: an
    address with more transfers than this in the direction is a busy service and is not expanded; `stop_at`: label
    categories where the trace stops (services: funds entering them lose their identity)."""

    direction: TraceDirection = TraceDirection.OUT
    hops: int = DEFAULT_HOPS
    model: TaintModel = TaintModel.HAIRCUT
    min_value: Decimal | None = None
    token: str | None = None
    since: int | None = None
    until: int | None = None
    follow_time: bool = True
    fanout: int = 100
    max_nodes: int = 2_000
    scan_limit: int = 50_000
    hub_degree: int = 1_000
    stop_at: frozenset[Category] = SERVICES

    def __post_init__(self) -> None:
        if not 1 <= self.hops <= MAX_HOPS:
            raise InvalidArgument(f"Hops must be between 1 and {MAX_HOPS}; got {self.hops}.")
        if self.fanout < 1 or self.max_nodes < 1 or self.scan_limit < 1:
            raise InvalidArgument("Fan-out, node budget and scan limit must be at least 1.")
        if self.since is not None and self.until is not None and self.since > self.until:
            raise InvalidArgument("--since is after --until.")

    def query(self) -> FlowQuery:
        return FlowQuery(
            direction=self.direction.value,
            token=self.token,
            min_value=self.min_value,
            fanout=self.fanout,
            scan_limit=self.scan_limit,
            hub_degree=self.hub_degree,
        )
