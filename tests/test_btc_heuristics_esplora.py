"""The bitcoin heuristics read the indexed transactions; over an address only Esplora knows, a trace says which of
the transactions it followed no heuristic could judge (unknown is never clean)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from storage.db import Database
from tests.support.btc_scenario import HeuristicsScenario, build_heuristics_scenario
from tests.support.esplora_server import EsploraServer
from tests.support.fixtures import regtest_node
from tracing.chain.transfer import Direction
from tracing.investigator import Investigator, configured_explorers
from tracing.trace.params import TraceParams


@pytest.fixture(scope="module")
def esplora() -> Iterator[tuple[HeuristicsScenario, EsploraServer]]:
    with regtest_node() as node:
        scenario = build_heuristics_scenario(node)
        with EsploraServer(node) as server:
            yield scenario, server


def test_transactions_read_from_esplora_are_named_as_unchecked(
    esplora: tuple[HeuristicsScenario, EsploraServer], db: Database
) -> None:
    s, server = esplora
    explorers = configured_explorers({"CHAINS": "btc", "BTC_NETWORK": "regtest", "BTC_ESPLORA_URL": server.url})
    investigator = Investigator(db, "btc", explorers=explorers, use_graph=False)
    trace = asyncio.run(investigator.trace(s.addresses["S0"], "btc", TraceParams(Direction.OUT, 2)))
    assert trace.edges  # Esplora gave the transfers
    [unchecked] = [f for f in trace.coverage.findings if f.startswith("unchecked:")]
    assert "not in the index (read from an explorer" in unchecked and "index the blocks to judge" in unchecked
    assert not any(f.startswith(("change:", "coinjoin: stopped")) for f in trace.coverage.findings)
