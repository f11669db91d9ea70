"""Traces over the store: time order, services as terminals, fan-out and busy-address cuts, filters, and the same
answer from the in-memory graph as from SQL (on SQLite and PostgreSQL)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from storage.db import Database
from tracing.chain.index import TransferIndex
from tracing.chain.transfer import Transfer, TransferKind
from tracing.errors import InvalidArgument, SourceError
from tracing.investigator import Investigator
from tracing.labels import Category, Label, LabelBook, LabelSet
from tracing.trace.cache import GraphCache
from tracing.trace.flows import FlowQuery, FlowRequest, select_flows
from tracing.trace.graph import TransferGraph
from tracing.trace.label_cache import LabelCache
from tracing.trace.model import Stop, Trace
from tracing.trace.params import Direction, TraceParams
from tracing.trace.sources import ExplorerSource, GraphSource, IndexSource, LayeredSource
from tracing.trace.walk import trace_funds

ETH = 10**18
USDT = "0xdac17f958d2ee523a2206206994597c13d831ec7"


def addr(n: int) -> str:
    return "0x" + f"{n:040x}"


_counter = iter(range(1, 10**9))


def tx(
    frm: int, to: int, eth: float, ts: int, *, token: str | None = None, decimals: int | None = None, chain: str = "eth"
) -> Transfer:
    n = next(_counter)
    value = int(Decimal(str(eth)).scaleb(decimals if token and decimals else 18))
    return Transfer(
        chain=chain,
        block_number=ts // 12,
        block_hash="0x" + "00" * 32,
        timestamp=ts,
        tx_hash="0x" + f"{n:064x}",
        kind=TransferKind.ERC20 if token else TransferKind.NATIVE,
        position=f"log:{n % 7}" if token else "tx",
        from_addr=addr(frm),
        to_addr=addr(to),
        value=value,
        token=token,
        decimals=decimals,
        symbol="USDT" if token else None,
    )


def label(n: int, category: Category, name: str) -> Label:
    return Label(address=addr(n), category=category, name=name, source="test-tagpack")


async def both(db: Database, root: int, params: TraceParams) -> tuple[Trace, Trace]:
    """The same trace over the in-memory graph and over SQL; asserts they agree and returns both."""
    graph = GraphCache(db, check_interval=0).load("eth")
    fast = await trace_funds(GraphSource(graph), LabelCache(db, check_interval=0), addr(root), "eth", params)
    slow = await trace_funds(IndexSource(TransferIndex(db)), LabelBook(db), addr(root), "eth", params)
    assert shape(fast) == shape(slow)
    return fast, slow


def shape(t: Trace) -> tuple[object, ...]:
    return (
        tuple((n.address, n.hop, n.terminal, n.stop, n.reached_at, n.degree) for n in t.nodes),
        tuple((e.from_addr, e.to_addr, e.tx_hash, e.value, e.hop) for e in t.edges),
        tuple(t.cuts),
        t.taint.edges,
        tuple(t.followed_by(e) for e in t.edges),
    )


def hops_of(t: Trace) -> dict[str, int]:
    return {n.address: n.hop for n in t.nodes}


async def test_forward_trace_follows_money_in_time_order(db: Database) -> None:
    TransferIndex(db).add(
        [
            tx(1, 2, 10, 1_000),  # root → 2 at t=1000
            tx(2, 3, 9, 1_100),  # after arrival: followed
            tx(2, 4, 5, 900),  # before the funds arrived: not followed
            tx(3, 5, 8, 1_050),  # before 3 received (1100): not followed
            tx(3, 6, 8, 1_200),
        ]
    )
    fast, _ = await both(db, 1, TraceParams(hops=3))
    assert hops_of(fast) == {addr(1): 0, addr(2): 1, addr(3): 2, addr(6): 3}
    assert fast.node(addr(3)).reached_at == 1_100  # type: ignore[union-attr]
    untimed, _ = await both(db, 1, TraceParams(hops=3, follow_time=False))
    assert {addr(4), addr(5)} <= set(hops_of(untimed))


async def test_backward_trace_follows_incoming_before_departure(db: Database) -> None:
    TransferIndex(db).add(
        [
            tx(2, 1, 10, 1_000),  # 2 → root
            tx(3, 2, 6, 900),  # funded 2 before it paid the root: followed
            tx(4, 2, 6, 1_100),  # after: not a source of those funds
            tx(5, 3, 6, 800),
        ]
    )
    fast, _ = await both(db, 1, TraceParams(Direction.IN, hops=3))
    assert hops_of(fast) == {addr(1): 0, addr(2): 1, addr(3): 2, addr(5): 3}
    assert fast.path_to(addr(5))[0].to_addr == addr(1)
    assert [e.from_addr for e in fast.path_to(addr(5))] == [addr(2), addr(3), addr(5)]


async def test_trace_stops_at_services_and_records_them_as_terminals(db: Database) -> None:
    TransferIndex(db).add(
        [
            tx(1, 2, 10, 100),
            tx(2, 50, 4, 200),
            tx(2, 51, 5, 210),
            tx(50, 7, 3, 300),
            tx(51, 8, 3, 300),
            tx(2, 52, 1, 220),
        ]
    )
    book = LabelBook(db)
    book.add(label(50, Category.EXCHANGE, "Binance 14"))
    book.add(label(51, Category.MIXER, "Tornado.Cash: Router"))
    book.add(label(52, Category.SCAM, "Fake_Phishing6178"))
    fast, _ = await both(db, 1, TraceParams(hops=4))
    terminals = {n.address: n.categories for n in fast.terminals}
    assert terminals == {addr(50): (Category.EXCHANGE,), addr(51): (Category.MIXER,)}
    assert addr(7) not in hops_of(fast) and addr(8) not in hops_of(fast)
    assert fast.node(addr(50)).stop is Stop.SERVICE  # type: ignore[union-attr]
    scam = fast.node(addr(52))
    assert scam is not None and not scam.terminal and scam.categories == (Category.SCAM,)
    # a labelled service as the root is still traced from
    from_exchange, _ = await both(db, 50, TraceParams(hops=2))
    assert addr(7) in hops_of(from_exchange)


async def test_fan_out_keeps_the_largest_flows_and_says_what_it_cut(db: Database) -> None:
    TransferIndex(db).add([tx(1, 100 + i, i + 1, 100 + i) for i in range(30)])
    fast, _ = await both(db, 1, TraceParams(hops=1, fanout=5))
    assert sorted(hops_of(fast)) == sorted([addr(1)] + [addr(100 + i) for i in range(25, 30)])
    (cut,) = fast.cuts
    assert (cut.address, cut.reason, cut.kept, cut.dropped) == (addr(1), "fan-out", 5, 25)
    assert "25 counterparties of 1 address(es) not followed" in fast.coverage.cuts[0]


async def test_busy_addresses_are_not_expanded(db: Database) -> None:
    hot = 900
    TransferIndex(db).add([tx(1, hot, 5, 100)] + [tx(hot, 2000 + i, 1, 200 + i) for i in range(40)])
    fast, _ = await both(db, 1, TraceParams(hops=3, hub_degree=30))
    busy = fast.node(addr(hot))
    assert busy is not None and busy.stop is Stop.BUSY and busy.degree == 40
    assert len(fast.nodes) == 2
    assert any("busy addresses" in c for c in fast.coverage.cuts)
    # the root itself is always expanded, busy or not
    from_hot, _ = await both(db, hot, TraceParams(hops=1, hub_degree=30))
    assert len(from_hot.nodes) == 41


async def test_value_token_and_time_filters(db: Database) -> None:
    TransferIndex(db).add(
        [
            tx(1, 2, 0.5, 100),
            tx(1, 3, 2, 200),
            tx(1, 4, 1500, 300, token=USDT, decimals=6),
            tx(1, 5, 20, 400, token=USDT, decimals=6),
            tx(1, 6, 0, 500),  # zero value moves nothing: never followed
        ]
    )
    # following the graph (value-aware, the 20 USDT would be dust: see test_trace_value.py)
    everything, _ = await both(db, 1, TraceParams(follow_value=False, hops=1))
    assert set(hops_of(everything)) == {addr(i) for i in range(1, 6)}
    big, _ = await both(db, 1, TraceParams(follow_value=False, hops=1, min_value=Decimal("1")))
    assert set(hops_of(big)) == {addr(1), addr(3), addr(4), addr(5)}  # 1 ETH and 1 USDT thresholds
    usdt, _ = await both(db, 1, TraceParams(follow_value=False, hops=1, token=USDT, min_value=Decimal("100")))
    assert set(hops_of(usdt)) == {addr(1), addr(4)}
    native, _ = await both(db, 1, TraceParams(follow_value=False, hops=1, token="native"))
    assert set(hops_of(native)) == {addr(1), addr(2), addr(3)}
    window, _ = await both(db, 1, TraceParams(follow_value=False, hops=1, since=200, until=300))
    assert set(hops_of(window)) == {addr(1), addr(3), addr(4)}


def test_trace_parameters_are_validated() -> None:
    with pytest.raises(InvalidArgument, match="between 1 and 10"):
        TraceParams(hops=11)
    with pytest.raises(InvalidArgument, match="between 1 and 10"):
        TraceParams(hops=0)
    with pytest.raises(InvalidArgument, match="after --until"):
        TraceParams(since=10, until=5)
    with pytest.raises(InvalidArgument):
        Direction.parse("sideways")


async def test_node_budget_stops_expansion_and_is_reported(db: Database) -> None:
    rows = [tx(1, 10 + i, 5, 100) for i in range(40)]
    rows += [tx(10 + i, 1000 + 10 * i + j, 1, 200) for i in range(40) for j in range(5)]
    TransferIndex(db).add(rows)
    fast, _ = await both(db, 1, TraceParams(hops=3, max_nodes=60))
    assert len(fast.nodes) < 60 + 16 * 5  # one batch of expansions may overshoot the budget a little
    assert any(n.stop is Stop.NODE_BUDGET for n in fast.nodes)
    assert any("node budget" in c for c in fast.coverage.cuts)


async def test_graph_and_sql_agree_on_random_traffic(db: Database) -> None:
    rng = random.Random(7)
    rows = []
    for _ in range(1500):
        a, b = rng.randrange(120), rng.randrange(120)
        token = USDT if rng.random() < 0.3 else None
        rows.append(
            tx(
                a,
                b,
                round(rng.uniform(0.01, 50), 3),
                rng.randrange(1, 5000),
                token=token,
                decimals=6 if token else None,
            )
        )
    TransferIndex(db).add(rows)
    book = LabelBook(db)
    for n in (3, 17, 44):
        book.add(label(n, Category.EXCHANGE, f"Exchange {n}"))
    book.add(label(60, Category.MIXER, "Mixer"))
    for root in (1, 2, 5, 9):
        for direction in Direction.ways():
            fast, slow = await both(db, root, TraceParams(direction, hops=3, fanout=6, hub_degree=40))
            assert len(fast.nodes) > 1
            assert fast.compare_models() == slow.compare_models()


async def test_graph_refreshes_on_new_transfers_and_reloads_after_a_reorg(db: Database) -> None:
    index = TransferIndex(db)
    index.add([tx(1, 2, 1, 100)])
    investigator = Investigator(db, check_interval=0)
    first = await investigator.trace(addr(1), params=TraceParams(hops=2))
    assert set(hops_of(first)) == {addr(1), addr(2)}
    index.add([tx(2, 3, 1, 200)])
    second = await investigator.trace(addr(1), params=TraceParams(hops=2))
    assert set(hops_of(second)) == {addr(1), addr(2), addr(3)}
    graph = investigator.graphs.get("eth")
    assert graph is not None and graph.pending >= 1  # appended, not rebuilt
    index.delete_from_block("eth", 200 // 12)  # a reorg drops the newest block …
    index.add([tx(2, 4, 1, 200)])  # … and its replacement arrives
    third = await investigator.trace(addr(1), params=TraceParams(hops=2))
    assert set(hops_of(third)) == {addr(1), addr(2), addr(4)}


class FakeExplorer:
    """Stands in for `tracing.chain.explorer.ExplorerClient`: an async `transfers_of` with `.transfers`."""

    def __init__(self, history: dict[str, Sequence[Transfer]], fail: set[str] | None = None) -> None:
        self.history = history
        self.fail = fail or set()
        self.asked: list[str] = []

    async def transfers_of(self, address: str) -> object:
        self.asked.append(address)
        if address in self.fail:
            raise SourceError(f"explorer for {address[:8]} rate limited")

        class History:
            transfers = tuple(self.history.get(address, ()))

        return History()


async def test_explorer_fills_in_addresses_the_index_does_not_cover(db: Database) -> None:
    first = tx(1, 2, 10, 100)  # the same transfer in the index and at the explorer: the same tx hash
    TransferIndex(db).add([first, tx(1, 3, 10, 100)])
    explorer = FakeExplorer({addr(2): [first, tx(2, 7, 9, 150)]}, fail={addr(3)})
    source = LayeredSource(IndexSource(TransferIndex(db)), ExplorerSource(explorer))
    result = await trace_funds(source, LabelBook(db), addr(1), "eth", TraceParams(hops=2))
    assert hops_of(result)[addr(7)] == 2
    assert addr(1) not in explorer.asked  # the index covers the root
    assert result.node(addr(3)).stop is Stop.ERROR  # type: ignore[union-attr]
    assert any("rate limited" in gap for gap in result.coverage.gaps)
    assert "explorer" in result.coverage.sources


def test_select_flows_and_graph_flows_rank_counterparties_per_asset() -> None:
    transfers = [
        tx(1, 2, 100, 10),
        tx(1, 3, 50, 11),
        tx(1, 4, 5000, 12, token=USDT, decimals=6),
        tx(1, 5, 10, 13, token=USDT, decimals=6),
    ]
    query = FlowQuery(fanout=2)
    request = FlowRequest(addr(1))
    reference = select_flows(addr(1), transfers, request, query, len(transfers), "test")
    # the biggest ETH and the biggest USDT recipient, never raw ETH wei against raw USDT units
    assert {t.to_addr for t in reference.transfers} == {addr(2), addr(4)}
    graph = TransferGraph.from_transfers("eth", transfers)
    fast = graph.flows(request, query, "test")
    assert [t.tx_hash for t in fast.transfers] == [t.tx_hash for t in reference.transfers]
    assert fast.totals == reference.totals == {None: 150 * ETH, USDT: 5010 * 10**6}


def test_label_cache_sees_labels_changed_in_place(db: Database) -> None:
    """A delisting or a corrected name updates a label row in place (same id, same count): the cache that traces and
    reports read must still notice, or a delisted address would stay "sanctioned" until a restart."""
    book = LabelBook(db)
    cache = LabelCache(db, check_interval=0)
    listed = Label(addr(77), Category.SANCTIONS, "OFAC SDN: Example", "ofac")
    book.add(listed)
    book.add(Label(addr(78), Category.MIXER, "Example pool", "tornado"))  # newer: it holds max(id), max(created_at)
    assert [lb.active for lb in cache.for_address(addr(77))] == [True]
    before = cache.fingerprint()
    listed_at = datetime(2024, 1, 2, tzinfo=UTC)  # an import that keeps the row's original creation time
    book.add(replace(listed, delisted_on=date(2025, 3, 21), created_at=listed_at))
    assert cache.fingerprint() != before
    assert [lb.delisted_on for lb in cache.for_address(addr(77))] == [date(2025, 3, 21)]
    investigator = Investigator(db, check_interval=0)
    book.replace_set(LabelSet("ofac", "2024-09", "", ""), [listed])
    assert investigator.label_sets() == ("ofac (2024-09)",)
    book.replace_set(LabelSet("ofac", "2025-01", "", ""), [listed])  # the set's cached name follows a new import
    assert investigator.label_sets() == ("ofac (2025-01)",)
