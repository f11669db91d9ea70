"""The Etherscan-compatible explorer source against a local server speaking Etherscan's API: paging, the
10,000-row window, the per-key rate limit, retries, and errors that say which call failed."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Sequence
from decimal import Decimal

import pytest

from bot.render.text import render_part
from storage.db import Database
from tests.support.explorer_server import (
    FakeExplorer,
    Fault,
    address,
    internal_row,
    native_row,
    observed_rate,
    token_row,
    tx_hash,
)
from tracing.chain.explorer import (
    ExplorerAction,
    ExplorerAuthError,
    ExplorerClient,
    ExplorerError,
    ExplorerRateLimit,
    ExplorerRateLimited,
    ExplorerResponseError,
)
from tracing.chain.transfer import TransferKind
from tracing.investigator import Investigator
from tracing.labels import Category, Label, LabelBook
from tracing.trace.coverage import INCOMPLETE_HISTORY
from tracing.trace.flows import FlowQuery, FlowRequest, Flows
from tracing.trace.model import Stop
from tracing.trace.params import Direction, TraceParams
from tracing.trace.sources import ExplorerSource, LayeredSource
from tracing.trace.walk import trace_funds

ME = address(0xA11CE)
USDT = address(0xDAC17)
FAST = 1000.0  # calls per second where the test is not about the rate limit


def client(explorer: FakeExplorer, *, rate: float = FAST, key: str | None = None, **kwargs: object) -> ExplorerClient:
    return ExplorerClient(
        explorer.url,
        api_key=explorer.key if key is None else key,
        chain_id=1,
        chain="eth",
        limiter=ExplorerRateLimit.per_second(rate),
        backoff=0.05,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_txlist_is_paged_until_a_short_page_and_mapped_to_native_transfers() -> None:
    rows = [native_row(100 + i // 3, i, ME, address(i + 1), 10**18 + i) for i in range(2345)]
    rows.append(native_row(900, 9001, address(7), ME, 0))  # a zero-value call: no transfer
    rows.append(native_row(901, 9002, ME, address(8), 5, is_error="1"))  # failed: nothing moved
    rows.append(native_row(902, 9003, ME, "", 7, contract=address(0xC0DE)))  # created a contract with value
    async with FakeExplorer(rows={"txlist": rows}) as explorer, client(explorer) as c:
        fetch = await c.normal_transactions(ME)
    assert [s.params["page"] for s in explorer.seen] == ["1", "2", "3"]
    assert {s.params["offset"] for s in explorer.seen} == {"1000"}
    assert all(s.params["chainid"] == "1" and s.params["sort"] == "asc" for s in explorer.seen)
    assert fetch.rows == 2348 and fetch.requests == 3 and fetch.complete and fetch.through_block is None
    assert len(fetch.transfers) == 2346
    first = fetch.transfers[0]
    assert first.kind is TransferKind.NATIVE and first.position == "tx" and first.source == "explorer"
    assert (first.from_addr, first.to_addr, first.value, first.token) == (ME, address(1), 10**18, None)
    assert first.timestamp == 1_600_000_000 + 100 * 12 and first.block_hash == "0x" + f"{100:064x}"
    creation = fetch.transfers[-1]
    assert creation.to_addr == address(0xC0DE) and creation.value == 7
    assert tx_hash(9001) not in {t.tx_hash for t in fetch.transfers}
    assert tx_hash(9002) not in {t.tx_hash for t in fetch.transfers}


async def test_the_10k_window_restarts_at_the_last_block_without_losing_or_repeating_rows() -> None:
    # 7 transfers per block: every 10,000-row window ends in the middle of a block.
    rows = [
        token_row(1000 + i // 7, i // 7, i % 7, ME if i % 2 else address(i), address(i) if i % 2 else ME, i, token=USDT)
        for i in range(25_000)
    ]
    async with FakeExplorer(rows={"tokentx": rows}) as explorer, client(explorer, page_size=2500) as c:
        fetch = await c.token_transfers(ME)
    assert fetch.complete and fetch.rows == 25_000
    assert len(fetch.transfers) == 25_000
    assert len({t.key for t in fetch.transfers}) == 25_000
    assert sorted(t.value for t in fetch.transfers) == list(range(25_000))
    starts = [int(s.params["startblock"]) for s in explorer.seen if s.params["page"] == "1"]
    second = 1000 + 9_999 // 7  # the block of row 9,999, cut by the first window
    third = 1000 + ((second - 1000) * 7 + 9_999) // 7  # the second window starts with that block's first row
    assert starts == [0, second, third]
    assert all(int(s.params["page"]) * int(s.params["offset"]) <= 10_000 for s in explorer.seen)
    usdt = fetch.transfers[0]
    assert usdt.kind is TransferKind.ERC20 and usdt.token == USDT and usdt.decimals == 6 and usdt.symbol == "USDT"
    assert usdt.position == "log:0"


async def test_a_block_with_more_rows_than_the_window_is_reported_as_incomplete() -> None:
    rows = [native_row(50, i, ME, address(i + 1), 1) for i in range(120)] + [native_row(51, 999, ME, address(2), 3)]
    async with (
        FakeExplorer(rows={"txlist": rows}, result_window=100) as explorer,
        client(explorer, page_size=50, result_window=100) as c,
    ):
        fetch = await c.normal_transactions(ME)
    assert not fetch.complete
    assert any("block 50 holds more than 100 rows" in note for note in fetch.notes)
    assert len(fetch.transfers) == 101  # the first window of block 50, then block 51
    assert int(explorer.seen[-1].params["startblock"]) == 51


async def test_max_rows_caps_the_history_and_says_where() -> None:
    rows = [native_row(10 + i, i, ME, address(1), 1) for i in range(500)]
    async with (
        FakeExplorer(rows={"txlist": rows}, result_window=100) as explorer,
        client(explorer, page_size=100, result_window=100, max_rows=150) as c,
    ):
        fetch = await c.normal_transactions(ME)
    assert not fetch.complete and fetch.through_block is not None
    assert fetch.through_block < 10 + 500
    assert all(t.block_number <= fetch.through_block for t in fetch.transfers)
    assert any("stopped after" in note and f"after {fetch.through_block}" in note for note in fetch.notes)


async def test_the_client_keeps_to_the_keys_rate_limit_across_clients() -> None:
    rows = {"txlist": [native_row(1, 1, ME, address(2), 1)]}
    key = f"key-{secrets.token_hex(4)}"
    async with FakeExplorer(rows=rows, key=key, server_rate_limit=3) as explorer:
        # Two clients, one key: the limiter is shared through the key, as the explorer counts per key.
        first = ExplorerClient(explorer.url, api_key=key, calls_per_second=3)
        second = ExplorerClient(explorer.url, api_key=key, calls_per_second=3)
        async with first, second:
            began = time.monotonic()
            await asyncio.gather(*(c.normal_transactions(ME) for c in (first, second) for _ in range(6)))
            elapsed = time.monotonic() - began
    assert len(explorer.seen) == 12
    assert explorer.rate_limit_answers == 0
    assert observed_rate(explorer.seen, window=0.9) <= 3  # 0.9 s, not 1 s: generous to the requests' jitter
    assert elapsed >= 3.0  # 12 calls at 3/s: the last one starts after at least 3 s


async def test_rate_limiter_never_admits_more_than_n_calls_in_any_window() -> None:
    now = [0.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    limiter = ExplorerRateLimit(3, 1.0, clock=lambda: now[0], sleep=fake_sleep)
    starts = []
    for step in itertools.islice(itertools.cycle([0.0, 0.1, 0.0, 0.7]), 20):
        now[0] += step
        wait = limiter.reserve()
        starts.append(now[0] + wait)
    for i in range(len(starts) - 3):
        assert starts[i + 3] - starts[i] >= 1.0 - 1e-9
    assert starts[:3] == [0.0, 0.1, 0.1]  # the first three go at once
    await limiter.acquire()
    assert slept and slept[-1] > 0


async def test_max_rate_limit_reached_is_retried_then_succeeds() -> None:
    rows = {"txlist": [native_row(5, 1, ME, address(2), 42)]}
    async with FakeExplorer(rows=rows) as explorer, client(explorer) as c:
        explorer.faults.extend([Fault("ratelimit"), Fault("ratelimit")])
        fetch = await c.normal_transactions(ME)
    assert [t.value for t in fetch.transfers] == [42]
    assert len(explorer.seen) == 3 and explorer.rate_limit_answers == 2


async def test_http_429_waits_as_long_as_retry_after_says() -> None:
    rows = {"txlist": [native_row(5, 1, ME, address(2), 42)]}
    async with FakeExplorer(rows=rows) as explorer, client(explorer) as c:
        explorer.faults.append(Fault("http", status=429, retry_after="1"))
        fetch = await c.normal_transactions(ME)
    assert [t.value for t in fetch.transfers] == [42]
    assert len(explorer.seen) == 2
    assert explorer.seen[1].at - explorer.seen[0].at >= 0.95  # backoff alone would be 0.05 s


async def test_server_errors_are_retried_then_succeed_or_fail_naming_the_call() -> None:
    rows = {"txlist": [native_row(5, 1, ME, address(2), 42)]}
    async with FakeExplorer(rows=rows) as explorer, client(explorer, max_retries=3) as c:
        explorer.faults.extend([Fault("http", status=500), Fault("http", status=502)])
        fetch = await c.normal_transactions(ME)
        assert [t.value for t in fetch.transfers] == [42]
        explorer.faults.extend(Fault("http", status=503) for _ in range(4))
        with pytest.raises(ExplorerError, match=r"txlist page 1 \(startblock 0\): HTTP 503 \(gave up after 3"):
            await c.normal_transactions(ME)


async def test_an_unreachable_explorer_fails_after_the_retries() -> None:
    async with FakeExplorer() as explorer:
        url = explorer.url  # the server is gone once the block ends: the port refuses connections
    c = ExplorerClient(url, api_key="k", limiter=ExplorerRateLimit.per_second(FAST), backoff=0.01, max_retries=2)
    async with c:
        with pytest.raises(ExplorerError, match=r"txlist page 1 \(startblock 0\): connection failed .*after 2"):
            await c.normal_transactions(ME)


async def test_an_invalid_api_key_is_a_clear_error_without_the_key() -> None:
    async with FakeExplorer(rows={"txlist": []}) as explorer, client(explorer, key="WRONGKEY123") as c:
        with pytest.raises(ExplorerAuthError, match="API key was refused") as raised:
            await c.normal_transactions(ME)
    assert "WRONGKEY123" not in str(raised.value)
    assert len(explorer.seen) == 1  # not retried


async def test_a_spent_daily_allowance_is_not_retried() -> None:
    async with FakeExplorer(rows={"txlist": []}) as explorer, client(explorer) as c:
        explorer.faults.append(Fault("daily"))
        with pytest.raises(ExplorerRateLimited, match="daily"):
            await c.normal_transactions(ME)
    assert len(explorer.seen) == 1


async def test_malformed_json_names_the_action_and_page() -> None:
    rows = {"txlist": [native_row(5 + i, i, ME, address(2), 1) for i in range(30)], "tokentx": []}
    async with FakeExplorer(rows=rows) as explorer, client(explorer, page_size=10) as c:
        explorer.faults.append(Fault("malformed", action="txlist", page=2))
        with pytest.raises(
            ExplorerResponseError, match=r"txlist page 2 \(startblock 0\): the answer is not valid JSON"
        ):
            await c.normal_transactions(ME)
        assert [s.params["page"] for s in explorer.seen] == ["1", "2"]  # not retried: a broken answer stays broken
        explorer.faults.append(Fault("malformed", action="txlist"))
        assert (await c.token_transfers(ME)).rows == 0  # a fault of another action leaves this one alone


async def test_no_transactions_found_is_an_empty_history() -> None:
    async with (
        FakeExplorer(rows={"txlist": [], "tokentx": [], "txlistinternal": []}) as explorer,
        client(explorer) as c,
    ):
        history = await c.transfers_of(ME)
    assert history.transfers == () and history.complete and history.requests == 3
    assert all("0 rows" in note for note in history.notes)


async def test_transfers_of_merges_all_three_actions_in_block_order() -> None:
    other = address(0xB0B)
    rows = {
        "txlist": [native_row(10, 1, ME, other, 100)],
        "tokentx": [
            token_row(11, 2, 4, other, ME, 0, token=USDT),  # zero-value token transfer: kept (poisoning is evidence)
            token_row(12, 3, None, ME, other, 5, token=USDT, symbol="X" * 40, decimals=""),
            token_row(12, 3, None, ME, other, 5, token=USDT, symbol="X" * 40, decimals=""),
        ],
        "txlistinternal": [
            internal_row(13, 4, "0_1", other, ME, 7),
            internal_row(13, 4, "0_2", other, ME, 8, is_error="1"),
            internal_row(13, 4, "0_3", other, ME, 9, kind="delegatecall"),
            internal_row(14, 5, "", other, ME, 10),
            internal_row(15, 6, "0", ME, "", 11, kind="create", contract=address(0xC0DE)),
        ],
    }
    async with FakeExplorer(rows=rows) as explorer, client(explorer) as c:
        history = await c.transfers_of(ME.upper().replace("0X", "0x"), start_block=5, end_block=20)
    assert history.address == ME and history.complete
    assert {s.params["startblock"] for s in explorer.seen} == {"5"}
    assert {s.params["endblock"] for s in explorer.seen} == {"20"}
    summary = [(t.block_number, t.kind, t.position, t.value) for t in history.transfers]
    assert summary == [
        (10, TransferKind.NATIVE, "tx", 100),
        (11, TransferKind.ERC20, "log:4", 0),
        (12, TransferKind.ERC20, "log:#1", 5),
        (12, TransferKind.ERC20, "log:#2", 5),
        (13, TransferKind.INTERNAL, "trace:0.1", 7),
        (14, TransferKind.INTERNAL, "trace:#1", 10),
        (15, TransferKind.INTERNAL, "trace:0", 11),
    ]
    no_decimals = history.transfers[2]
    assert no_decimals.decimals is None and no_decimals.symbol == "X" * 32
    assert history.transfers[-1].to_addr == address(0xC0DE)
    fetches = {f.action: f for f in history.fetches}
    assert fetches[ExplorerAction.TOKENTX].rows == 3 and fetches[ExplorerAction.TXLISTINTERNAL].rows == 5
    assert any("no logIndex" in note for note in history.notes)
    assert any("no traceId" in note for note in history.notes)


async def test_a_row_without_a_hash_is_a_response_error() -> None:
    bad = native_row(5, 1, ME, address(2), 1)
    del bad["hash"]
    async with FakeExplorer(rows={"txlist": [bad]}) as explorer, client(explorer) as c:
        with pytest.raises(ExplorerResponseError, match=r"txlist page 1 .*hash"):
            await c.normal_transactions(ME)


async def test_a_cut_explorer_history_is_stated_in_the_trace_and_risk_coverage(db: Database) -> None:
    """An address the index does not cover is traced from the explorer; when the explorer's history is cut (row
    cap), `/risk` and `/trace` say whose history and why: unknown is never reported as clean."""
    mixer = address(0x70)
    rows = [native_row(5, 10_000, ME, mixer, 10**18)]
    rows += [native_row(10 + i, i, ME, address(1 + i % 3), 1) for i in range(500)]
    history = {"txlist": rows, "tokentx": [], "txlistinternal": []}
    LabelBook(db).add(Label(address=mixer, category=Category.MIXER, name="Tornado.Cash", source="test"))
    async with (
        FakeExplorer(rows=history, result_window=100) as explorer,
        client(explorer, page_size=100, result_window=100, max_rows=150) as c,
    ):
        fetched = await c.transfers_of(ME)
        assert not fetched.complete and len(fetched.cuts) == 1 and "stopped after" in fetched.cuts[0]
        investigator = Investigator(db, explorers={"eth": c}, use_graph=False, check_interval=0)
        report = await investigator.risk(ME, "eth")
        traced = await investigator.trace(ME, "eth", TraceParams(hops=1))
        complete = await investigator.trace(mixer, "eth", TraceParams(direction=Direction.IN, hops=1))
    assert any(e.category is Category.MIXER and e.counterparty == mixer for e in report.exposures)
    (cut,) = [g for g in report.coverage.gaps if g.startswith(f"outgoing: {INCOMPLETE_HISTORY}: {ME}")]
    assert "explorer: txlist: stopped after" in cut and "(cap 150)" in cut and "were not fetched" in cut
    assert any(g.startswith(f"incoming: {INCOMPLETE_HISTORY}: {ME}") for g in report.coverage.gaps)
    assert f"{INCOMPLETE_HISTORY}: {ME}" in render_part(report)
    assert any(g.startswith(f"{INCOMPLETE_HISTORY}: {ME} (explorer: txlist: stopped") for g in traced.coverage.gaps)
    assert INCOMPLETE_HISTORY in render_part(traced)
    # the mixer's own history (one row) came through whole: no such gap for it
    assert not any(mixer in g and INCOMPLETE_HISTORY in g for g in complete.coverage.gaps)


async def test_a_history_cut_without_transfers_in_the_direction_is_still_reported() -> None:
    """The layered source keeps the explorer's answer when it cut the history, even with nothing to follow."""

    class Cut:
        transfers = ()
        complete = False
        cuts = ("tokentx: block 9 holds more than 10000 rows for this address; only the first 10000 were fetched",)

    class Client:
        async def transfers_of(self, address: str) -> Cut:
            return Cut()

    class Nothing:
        name = "local index"

        async def flows(self, chain: str, query: FlowQuery, requests: Sequence[FlowRequest]) -> list[Flows]:
            return [Flows(r.address, source=self.name) for r in requests]

    source = LayeredSource(Nothing(), ExplorerSource(Client()))
    result = await trace_funds(source, NoLabels(), ME, "eth", TraceParams())
    assert result.root_node.stop is Stop.NO_DATA
    assert result.coverage.gaps[0] == f"{INCOMPLETE_HISTORY}: {ME} (explorer: {Cut.cuts[0]})"


class NoLabels:
    def for_addresses(self, addresses: Sequence[str], chain: str | None = None) -> dict[str, list[Label]]:
        return {}


async def test_the_value_aware_walk_reads_only_the_addresses_the_traced_money_reached(db: Database) -> None:
    """Through the explorer with no local index, the value-aware trace reads the history of the root and of the
    addresses the traced funds were followed to, no other: dust the root and its recipients paid out is not
    followed and so never read, and the address at the hop budget is reached but not read. The graph walk (before
    issue #12) reads every address it follows, dust recipients included."""
    hop1, hop2, hop3 = address(0xA1), address(0xB2), address(0xC3)
    dusted, dusted_too, elsewhere, funder = address(0xD4), address(0xE5), address(0xF6), address(0xF0)
    ether = 10**18
    rows = [
        native_row(10, 1, funder, ME, 100 * ether),
        native_row(20, 2, ME, hop1, 10 * ether),
        native_row(20, 3, ME, dusted, ether // 100),  # 0.01 ETH: under the floor
        native_row(30, 4, hop1, hop2, 99 * ether // 10),
        native_row(30, 5, hop1, dusted_too, ether // 20),
        native_row(40, 6, hop2, hop3, 9 * ether),
        native_row(50, 7, dusted, elsewhere, ether // 100),
        native_row(50, 8, dusted_too, elsewhere, ether // 20),
        native_row(60, 9, hop3, elsewhere, 9 * ether),
    ]
    floor = (("native", Decimal("0.5")),)
    async with FakeExplorer(rows={"txlist": rows, "tokentx": [], "txlistinternal": []}) as explorer:
        fetched: dict[bool, set[str]] = {}
        traces = {}
        for follow in (True, False):
            explorer.seen.clear()
            async with client(explorer) as c:  # a fresh explorer cache per walk
                investigator = Investigator(db, explorers={"eth": c}, check_interval=0)
                params = TraceParams(hops=3, dust_units=floor, follow_value=follow)
                traces[follow] = await investigator.trace(ME, "eth", params)
            fetched[follow] = explorer.addresses_asked()
    value = traces[True]
    assert value.value_aware and value.coverage.sources == ("explorer",)
    money = {value.near_far(edge)[1] for edge in value.edges if value.carried(edge)}
    assert money == {hop1, hop2, hop3}
    assert fetched[True] <= money | {ME}
    assert fetched[True] == {ME, hop1, hop2}  # hop3 is at the hop budget: reached, not read
    assert {dusted, dusted_too} <= fetched[False]  # the graph walk read the dust recipients too
    assert not {dusted, dusted_too} & {n.address for n in value.nodes}
    assert len(explorer.seen) == 3 * len(fetched[False])  # three actions per address read


async def test_a_busy_address_is_not_read_past_what_shows_it_is_busy(db: Database) -> None:
    """An unlabelled router the traced funds reach has 1,000 transfers out: more than the trace expands
    (`hub_degree` 150 here). The explorer is asked for its history only until it shows more than 150 out (two pages
    of 100 of `txlist`), not its whole history (ten pages), and its 600 token transfers in stop being read as soon
    as `txlist` shows it busy; it is a busy stop all the same. The root, however busy, is read whole; so is an
    address with many transfers in but few out."""
    router, collector, user = address(0xB0), address(0xC0), address(0xD0)
    ether = 10**18
    rows = [native_row(10, 1, user, ME, 100 * ether), native_row(20, 2, ME, router, 10 * ether)]
    rows += [native_row(30 + i, 100 + i, router, address(0x1000 + i), ether // 10) for i in range(1_000)]
    rows += [native_row(30 + i, 2_000 + i, address(0x3000 + i), ME, ether // 100) for i in range(300)]
    rows += [native_row(21, 3, ME, collector, 20 * ether)]
    rows += [native_row(40 + i, 4_000 + i, address(0x5000 + i), collector, ether // 1000) for i in range(400)]
    rows += [native_row(2_000, 5, collector, user, 15 * ether)]
    tokens = [token_row(30 + i, 6_000 + i, 0, address(0x7000 + i), router, 10**6, token=USDT) for i in range(600)]
    params = TraceParams(hops=2, hub_degree=150, dust_units=(("native", Decimal("0.5")),))
    async with FakeExplorer(rows={"txlist": rows, "tokentx": tokens, "txlistinternal": []}) as explorer:
        async with client(explorer, page_size=100, result_window=1_000) as c:
            traced = await Investigator(db, explorers={"eth": c}, check_interval=0).trace(ME, "eth", params)

            def pages(who: str, action: str = "txlist") -> int:
                return sum(1 for s in explorer.requests_for(action) if s.params["address"].lower() == who)

            assert pages(router) == 2 and pages(router, "txlistinternal") == 1
            assert pages(router, "tokentx") <= 3  # of 6: stopped once txlist showed it busy
            assert pages(ME) == 4  # the root: 301 in, 2 out, read whole (four pages of txlist)
            assert pages(collector) == 5  # 400 in, 1 out: not busy going forward, read whole
            full = await c.transfers_of(router)  # asked plainly, the whole history
    nodes = {n.address: n for n in traced.nodes}
    assert nodes[router].stop is Stop.BUSY and nodes[router].degree == 199  # out of 1,000: as far as it was read
    assert nodes[collector].stop is Stop.EXPANDED and user in nodes
    assert full.complete and not full.busy and len(full.transfers) == 1_601
    assert any(c.address == router and c.reason == "busy" for c in traced.cuts)
