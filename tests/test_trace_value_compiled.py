"""The compiled value-aware walk (`tracing.trace._walk.value_walk`, lazy `ValueParts` results) gives the trace of the
Python value walk (`tracing.trace.value_graph`, itself checked against the reference ledger in `tracing.trace.value`)
on random graphs shaped like laundering: peel chains, swaps in one transaction, dust, cycles, overdrafts, fan-outs,
several assets with and without USD prices, under all three taint models, both directions.

Same followed transfers and addresses, the same traced amount on each (exact: both walks use integers), the same
cuts, dust summary and coverage statement, the same taint read by a risk report. USD reaches the compiled walk as
raw thresholds per (token, day), exact as well; the dust summary's USD is summed per (token, day) first, so it may
differ from the per-transfer sum in the last of Decimal's 28 digits (compared to 1e-18 USD)."""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal

import pytest

from tests.test_trace_walk import SnapshotCache, varied_labels
from tracing.chain.amounts import TransferPrices, Valuation
from tracing.chain.prices import PriceTable, price_key
from tracing.chain.transfer import Transfer, TransferKind
from tracing.labels import Category, Label
from tracing.risk.exposure import merged_coverage, report_from_traces
from tracing.trace import compiled
from tracing.trace.compiled import ValueParts
from tracing.trace.flows import NATIVE_DECIMALS, Asset
from tracing.trace.graph import TransferGraph
from tracing.trace.model import Trace
from tracing.trace.params import Direction, TraceParams
from tracing.trace.sources import GraphSource
from tracing.trace.taint import TaintModel
from tracing.trace.value import FollowedBy, PegPrices
from tracing.trace.walk import trace_funds

if not compiled.available() and os.environ.get("CHAINSLEUTH_REQUIRE_COMPILED_WALK"):
    raise RuntimeError("tracing.trace._walk is not built, and CHAINSLEUTH_REQUIRE_COMPILED_WALK is set (CI)")
pytestmark = pytest.mark.skipif(
    not compiled.available(), reason="tracing.trace._walk is not built (no C compiler at install): Python walk only"
)

DAY = 86_400
USDA = ("0x" + "aa" * 20, 6, "USDA")  # priced every day at $1
TKB = ("0x" + "bb" * 20, 18, "TKB")  # priced on some days only
TKC = ("0x" + "cc" * 20, None, None)  # never priced, no decimals
TOKENS = [USDA, TKB, TKC]


def addr(n: int) -> str:
    return "0x" + f"{n:040x}"


class Prices:
    """USD per raw unit by (asset, day): ETH and TKB on some days, USDA always, TKC never."""

    def __init__(self, rng: random.Random) -> None:
        self.eth = {day: Decimal(rng.choice([1500, 2000, "2500.5"])) for day in range(12) if rng.random() < 0.7}
        self.tkb = {day: Decimal(rng.choice(["0.5", 3, "1.25"])) for day in range(12) if rng.random() < 0.5}

    def usd(self, asset: Asset, decimals: int | None, symbol: str | None, timestamp: int, raw: int) -> Decimal | None:
        day = timestamp // DAY
        if asset is None:
            price = self.eth.get(day)
            return None if price is None else price * raw / 10**NATIVE_DECIMALS
        if asset == USDA[0]:
            return Decimal(raw).scaleb(-6)
        if asset == TKB[0]:
            price = self.tkb.get(day)
            return None if price is None else price * raw / 10**18
        return None


class Labels:
    def __init__(self, labels: Mapping[str, Sequence[Label]]) -> None:
        self.labels = labels

    def for_addresses(self, addresses: Sequence[str], chain: str | None = None) -> dict[str, list[Label]]:
        return {a: list(self.labels[a]) for a in addresses if a in self.labels}


def random_graph(rng: random.Random) -> tuple[TransferGraph, Labels, int]:
    """Background traffic, then laundering shapes: peel chains, swaps, dust sprays, cycles, overdrafts, shortfalls
    (sends that outrun what an address received, spread over several transfers), diluted transfers (a small payment
    of the traced funds joining much money of the address's own that moves on: large, under 5 % traced)."""
    n = rng.choice([15, 40, 120])
    transfers: list[Transfer] = []

    def send(a: int, b: int, value: int, ts: int, token: tuple[str, int | None, str | None] | None = None,
             tx: str | None = None, position: str | None = None) -> None:  # fmt: skip
        i = len(transfers)
        transfers.append(
            Transfer(
                chain="eth", block_number=ts // 12, block_hash="", timestamp=ts,
                tx_hash=tx or f"0x{rng.getrandbits(256):064x}",
                kind=TransferKind.ERC20 if token else TransferKind.NATIVE,
                position=position or (f"log:{i % 7}" if token else rng.choice(["tx", "internal:0", "internal:1"])),
                from_addr=addr(a), to_addr=addr(b), value=value,
                token=token[0] if token else None, decimals=token[1] if token else None,
                symbol=token[2] if token else None, source=rng.choice(["rpc", "etl"]),
            )
        )  # fmt: skip

    def when() -> int:
        # few distinct times (ties in time, broken by tx hash, kind, position), over several days (prices per day)
        return rng.randrange(0, 10) * DAY + rng.choice([0, 3600, 7200, rng.randrange(0, DAY)])

    def amount(token: tuple[str, int | None, str | None] | None) -> int:
        scale = 10 ** (18 if token is None else (token[1] or 0))
        return max(1, int(scale * rng.choice([0.001, 0.01, 0.05, 0.2, 1, 3, 40, 800])))

    for _ in range(rng.choice([60, 250, 700])):  # background
        token = rng.choice(TOKENS) if rng.random() < 0.35 else None
        a, b = rng.randrange(n), rng.randrange(n)
        send(a, b, 0 if rng.random() < 0.01 else amount(token), when(), token)
    for _ in range(rng.randrange(1, 6)):  # peel chains: most goes on, a little peels off
        token = rng.choice([None, USDA])
        node, value, ts = rng.randrange(n), amount(token) * 10, when()
        for _ in range(rng.randrange(2, 6)):
            nxt, peel = rng.randrange(n), rng.randrange(n)
            send(node, nxt, value * 9 // 10, ts, token)
            send(node, peel, value // 10, ts + 60, token)
            node, value, ts = nxt, value * 9 // 10, ts + rng.choice([0, 600, DAY])
    for _ in range(rng.randrange(0, 6)):  # swaps: one asset in, another out, in one transaction
        who, pool = rng.randrange(n), rng.randrange(n)
        sold, bought = rng.sample([None, USDA, TKB, TKC], 2)
        tx, ts = f"0x{rng.getrandbits(256):064x}", when()
        send(who, pool, amount(sold), ts, sold, tx, "log:1" if sold else "tx")
        send(pool, who, amount(bought), ts, bought, tx, "log:2" if bought else "internal:0")
        send(who, rng.randrange(n), amount(bought), ts + rng.choice([0, 60, DAY]), bought)
    for _ in range(rng.randrange(0, 4)):  # dust sprays: many tiny transfers, some mostly traced
        who, ts = rng.randrange(n), when()
        for k in range(rng.randrange(3, 20)):
            send(who, rng.randrange(n), rng.choice([10**12, 10**15, 5 * 10**15]), ts + k, None)
    for _ in range(rng.randrange(0, 4)):  # cycles: funds come back, later (expanded again)
        a, b, c = rng.sample(range(n), 3)
        ts, value = when(), amount(None)
        send(a, b, value, ts)
        send(b, c, value, ts + 10)
        send(c, a, value, ts + 20)
        send(a, b, value // 2, ts + 30)
    for _ in range(rng.randrange(0, 4)):  # overdrafts: more goes out than the history shows came in
        a, ts = rng.randrange(n), when()
        send(rng.randrange(n), a, 10**17, ts)
        send(a, rng.randrange(n), 10**19, ts + 5)
    for _ in range(rng.randrange(0, 4)):  # shortfalls: sends outrun what it received, spread over later transfers
        a, ts = rng.randrange(n), when()
        token = rng.choice([None, None, USDA, TKC])
        value = amount(token) * 10
        send(rng.randrange(n), a, value, ts, token)
        for k in range(rng.randrange(2, 5)):
            to, part = rng.randrange(n), value * rng.choice([3, 6, 9]) // 10
            send(a, to, part, ts + rng.choice([0, 60 * (k + 1), DAY]), token)
        if rng.random() < 0.5:  # money in after the shortfall (it does not make the early transfers any less short)
            send(rng.randrange(n), a, value * 2, ts + 2 * DAY, token)
            send(a, rng.randrange(n), value, ts + 2 * DAY + 60, token)
    for _ in range(rng.randrange(0, 4)):  # pass-throughs: a receipt passed on whole or a little short, around a day
        a, ts = rng.randrange(n), when()
        token = rng.choice([None, USDA, TKC])
        own, value = amount(token) * rng.choice([1, 20]), amount(token)
        send(rng.randrange(n), a, own, ts - 60, token)
        for k in range(rng.randrange(1, 4)):
            send(rng.randrange(n), a, value, ts + k, token)
            short = value * rng.choice([1000, 995, 950, 949, 1001]) // 1000
            send(a, rng.randrange(n), short, ts + k + rng.choice([0, 60, DAY, DAY + 1, -1]), token)
    for _ in range(rng.randrange(0, 4)):  # diluted: a small payment joins much money of its own, which moves on
        a, ts = rng.randrange(n), when() + DAY
        token = rng.choice([None, None, USDA])
        own = amount(token) * rng.choice([100, 1000])
        send(rng.randrange(n), a, own, ts - rng.choice([60, DAY]), token)
        send(rng.randrange(n), a, own // rng.choice([10, 19, 21, 40, 500]), ts, token)
        send(a, rng.randrange(n), own * rng.choice([5, 9]) // 10, ts + rng.choice([0, 60, DAY]), token)
    if rng.random() < 0.3:  # beyond 64 bits
        send(rng.randrange(n), rng.randrange(n), rng.randrange(2**64, 2**100), when())
    labels: dict[str, list[Label]] = {}
    for node in rng.sample(range(n), max(1, n // 8)):
        category = rng.choice([Category.EXCHANGE, Category.MIXER, Category.SCAM, Category.HACK, Category.SANCTIONS])
        labels[addr(node)] = [Label(addr(node), category, f"{category.value} {node}", "test")]
    return TransferGraph.from_transfers("eth", transfers), Labels(labels), n


def random_params(rng: random.Random, model: TaintModel) -> TraceParams:
    return TraceParams(
        direction=rng.choice(Direction.ways()),
        hops=rng.choice([1, 2, 3, 3, 4]),
        model=model,
        min_value=rng.choice([None, None, None, Decimal("0.5"), Decimal("0.000001")]),
        min_usd=rng.choice([None, None, None, Decimal(50)]),
        token=rng.choice([None] * 6 + ["native", USDA[0]]),
        since=rng.choice([None, None, None, 2 * DAY]),
        until=rng.choice([None, None, None, 8 * DAY]),
        fanout=rng.choice([1, 3, 100, 100]),
        max_nodes=rng.choice([5, 25, 2000, 2000]),
        scan_limit=rng.choice([4, 50_000, 50_000]),
        hub_degree=rng.choice([8, 30, 1000, 1000]),
        through=rng.choice([frozenset(), frozenset({Category.MIXER})]),
        dust_usd=rng.choice([Decimal(100), Decimal(100), Decimal(10), None]),
        dust_units=rng.choice([(), (("native", Decimal("0.05")),), ((TKC[0], Decimal(5)), ("native", Decimal(1)))]),
        follow_share=rng.choice([Decimal("0.5"), Decimal("0.5"), Decimal("0.1"), Decimal(1)]),
        crumb_share=rng.choice([Decimal("0.0005"), Decimal("0.0005"), Decimal(0), Decimal("0.05")]),
        pass_through=rng.random() < 0.8,
    )


def everything(t: Trace) -> tuple[object, ...]:
    """What a reader of a value-aware trace sees: nodes, edges with the traced value each carries and why it was
    followed (the rule, the receipt it passes on), cuts, totals,
    parents, paths, taint under every model, the coverage statement (dust summary included), lazy accessors first."""
    lazy = (
        t.root_node,
        t.labelled,
        t.terminals,
        [t.path_to(n.address) for n in t.labelled],
        t.token_meta(),
        {model: dict(t.received_under(model)) for model in TaintModel},
        t.coverage,
    )
    nodes = t.nodes
    return (
        lazy,
        nodes,
        t.edges,
        [t.carried(edge) for edge in t.edges],
        [t.followed_by(edge) for edge in t.edges],
        [t.passes_on(edge) for edge in t.edges],
        sorted(t.cuts, key=repr),
        dict(t.totals),
        dict(t.parents),
        [t.path_to(n.address) for n in nodes],
        {model: (t.taint_under(model).edges, t.taint_under(model).received) for model in TaintModel},
    )


async def both(
    source: GraphSource,
    labels: Labels,
    root: str,
    params: TraceParams,
    prices: Prices,
    roots: Sequence[str] = (),
    chain: str = "eth",
) -> tuple[Trace, Trace]:
    fast = await trace_funds(source, labels, root, chain, params, prices, with_roots=roots)
    os.environ["CHAINSLEUTH_PURE_WALK"] = "1"
    try:
        reference = await trace_funds(source, labels, root, chain, params, prices, with_roots=roots)
    finally:
        del os.environ["CHAINSLEUTH_PURE_WALK"]
    return fast, reference


@pytest.mark.parametrize("model", list(TaintModel))
@pytest.mark.parametrize("seed", range(12))
async def test_compiled_value_walk_matches_the_python_value_walk(seed: int, model: TaintModel) -> None:
    rng = random.Random(seed * 7 + len(model.value))
    graph, labels, n = random_graph(rng)
    source, prices = GraphSource(graph), Prices(rng)
    for _ in range(10):
        params = random_params(rng, model)
        root = addr(rng.randrange(n))
        roots = [addr(rng.randrange(n))] if rng.random() < 0.15 else []
        fast, reference = await both(source, labels, root, params, prices, roots)
        in_graph = all(a in graph.ids for a in [root, *roots])
        assert isinstance(fast._parts, ValueParts) == in_graph  # compiled whenever the roots are in the graph
        assert reference._parts is None
        assert everything(fast) == everything(reference), (seed, params, root, roots)


async def test_the_random_graphs_exercise_every_reason_to_follow_and_the_pass_through() -> None:
    """The agreement above compares why each edge was followed; here, that the random graphs give every reason
    and pass-throughs, in the compiled walk, so that comparison is not of empty columns."""
    seen: Counter[object] = Counter()
    for seed in range(12):
        rng = random.Random(seed * 7 + len(TaintModel.HAIRCUT.value))
        graph, labels, n = random_graph(rng)
        source, prices = GraphSource(graph), Prices(rng)
        for _ in range(10):
            params = random_params(rng, TaintModel.HAIRCUT)
            trace = await trace_funds(source, labels, addr(rng.randrange(n)), "eth", params, prices)
            for edge in trace.edges:
                why = trace.followed_by(edge)
                if why is not None:
                    seen[why.by] += 1
                    seen["passes on"] += why.passes_on is not None
    assert all(seen[by] for by in FollowedBy), seen
    assert seen["passes on"], seen


async def test_the_dust_summary_agrees_and_is_in_the_coverage() -> None:
    # an address that received 100 ETH sends 200 small transfers: dust, summed in USD on their days
    rng = random.Random(3)
    transfers = [Transfer("eth", 1, "", DAY, "0x" + "01" * 32, TransferKind.NATIVE, "tx", addr(1), addr(2), 10**20)]
    for k in range(200):
        transfers.append(
            Transfer("eth", 2 + k, "", DAY * (1 + k % 3) + k, f"0x{rng.getrandbits(256):064x}", TransferKind.NATIVE,
                     "tx", addr(2), addr(100 + k), 10**15 * (1 + k % 5))
        )  # fmt: skip
    transfers.append(Transfer("eth", 999, "", 5 * DAY, "0x" + "02" * 32, TransferKind.NATIVE, "tx", addr(2), addr(3),
                              9 * 10**19))  # fmt: skip
    graph = TransferGraph.from_transfers("eth", transfers)
    prices = Prices(random.Random(0))
    prices.eth = {1: Decimal(2000), 2: Decimal("1999.99")}  # day 3: no price (dust summed in units)
    params = TraceParams(hops=2, dust_units=(("native", Decimal("0.05")),))
    fast, reference = await both(GraphSource(graph), Labels({}), addr(1), params, prices)
    assert isinstance(fast._parts, ValueParts)
    assert everything(fast) == everything(reference)
    dust = fast._parts.dust()
    assert dust.count == 200 and dust.priced == 134 and set(dust.unpriced) == {None}
    assert any("200 transfers carrying traced funds under $100" in line for line in fast.coverage.cuts)
    assert [n.address for n in fast.nodes] == [addr(1), addr(2), addr(3)]


def native(n: int, ts: int, a: int, b: int, eth: int | float) -> Transfer:
    return Transfer("eth", n, "", ts, f"0x{n:064x}", TransferKind.NATIVE, "tx", addr(a), addr(b), int(eth * 10**18))


@pytest.mark.parametrize("model", list(TaintModel))
async def test_money_an_address_lacks_was_there_from_the_start_under_haircut(model: TaintModel) -> None:
    # 10 ETH of the root reach 2, which sends 8 and 8 (6 more than it shows receiving): under haircut the 6 was
    # there from the start, clean, and each transfer carries 5 traced (before: 8, then 2); FIFO keeps its order
    # (8, then 2), poison does not count it
    graph = TransferGraph.from_transfers(
        "eth", [native(1, DAY, 1, 2, 10), native(2, DAY + 60, 2, 3, 8), native(3, DAY + 120, 2, 4, 8)]
    )
    params = TraceParams(hops=2, model=model, dust_usd=None)
    fast, reference = await both(GraphSource(graph), Labels({}), addr(1), params, Prices(random.Random(0)))
    assert isinstance(fast._parts, ValueParts)
    assert everything(fast) == everything(reference)
    carried = {edge.to_addr: fast.carried(edge) for edge in fast.edges}
    expected = {
        TaintModel.HAIRCUT: (5 * 10**18, 5 * 10**18),
        TaintModel.FIFO: (8 * 10**18, 2 * 10**18),
        TaintModel.POISON: (8 * 10**18, 8 * 10**18),
    }[model]
    assert (carried[addr(3)], carried[addr(4)]) == expected


@pytest.mark.parametrize("model", list(TaintModel))
async def test_a_diluted_transfer_is_not_followed_at_any_amount(model: TaintModel) -> None:
    # 2 holds 1,000 ETH of its own; 10 ETH of the root join them and 2 sends 900 ETH on: under haircut 8.9 ETH traced
    # ($17,800, far over 3x the $100 floor) but under 1 %: diluted, not followed (before: followed); FIFO sends its
    # own lot first (nothing traced), poison taints all 900
    graph = TransferGraph.from_transfers(
        "eth",
        [
            native(1, DAY - 60, 9, 2, 1000),
            native(2, DAY, 1, 2, 10),
            native(3, DAY + 60, 2, 3, 900),
            native(4, 2 * DAY, 1, 2, 30),
        ],
    )
    prices = Prices(random.Random(0))
    prices.eth = {1: Decimal(2000), 2: Decimal(2000)}
    params = TraceParams(hops=2, model=model)
    fast, reference = await both(GraphSource(graph), Labels({}), addr(1), params, prices)
    assert isinstance(fast._parts, ValueParts)
    assert everything(fast) == everything(reference)
    followed = {edge.to_addr for edge in fast.edges}
    assert (addr(3) in followed) == (model is TaintModel.POISON)  # poison: all of it is tainted, not diluted


@pytest.mark.parametrize(("chain", "scale"), [("tron", 10**6), ("btc", 10**8)])
async def test_the_native_coin_has_its_chain_s_decimals(chain: str, scale: int) -> None:
    # a floor of 0.05 in units of the native coin is 0.05 TRX (6 decimals) or 0.05 BTC (8), not 0.05 * 10**18 raw
    transfers = [
        Transfer(chain, 1, "", DAY, f"0x{1:064x}", TransferKind.NATIVE, "tx", addr(1), addr(2), 100 * scale),
        *(
            Transfer(chain, 2 + k, "", DAY + k, f"0x{2 + k:064x}", TransferKind.NATIVE, "tx", addr(2), addr(10 + k), v)
            for k, v in enumerate([scale // 10, scale // 100, 3 * scale // 100, 90 * scale])
        ),
    ]
    graph = TransferGraph.from_transfers(chain, transfers)
    params = TraceParams(hops=2, dust_usd=None, dust_units=(("native", Decimal("0.05")),), min_value=Decimal("0.02"))
    fast, reference = await both(GraphSource(graph), Labels({}), addr(1), params, Prices(random.Random(0)), (), chain)
    assert isinstance(fast._parts, ValueParts)
    assert everything(fast) == everything(reference)
    # 0.1 and 90 followed; 0.03 under the floor: dust; 0.01 under min_value: not looked at
    assert {edge.to_addr for edge in fast.edges} == {addr(2), addr(10), addr(13)}
    assert fast._parts.dust().unpriced == {None: 3 * scale // 100}
    assert fast._parts.dust().meta[None][0] == len(str(scale)) - 1


async def test_unbuilt_or_unsupported_graphs_run_the_python_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    base = dict(chain="eth", block_hash="", kind=TransferKind.NATIVE, position="tx", token=None, decimals=None)
    transfers = [
        Transfer(block_number=1, timestamp=1, tx_hash="0x" + "01" * 32, from_addr=addr(1), to_addr=addr(2),
                 value=5 * 10**18, **base),  # type: ignore[arg-type]
        Transfer(block_number=2, timestamp=2, tx_hash="dune:2", from_addr=addr(2), to_addr=addr(3),
                 value=5 * 10**18, **base),  # type: ignore[arg-type]
    ]  # fmt: skip
    other_ids = TransferGraph.from_transfers("eth", transfers)
    found = await trace_funds(GraphSource(other_ids), Labels({}), addr(1), "eth", TraceParams(hops=2))
    assert found._parts is None and [n.address for n in found.nodes] == [addr(1), addr(2), addr(3)]
    hashes = TransferGraph.from_transfers("eth", [transfers[0], replace(transfers[1], tx_hash="0x" + "02" * 32)])
    found = await trace_funds(GraphSource(hashes), Labels({}), addr(1), "eth", TraceParams(hops=2))
    assert isinstance(found._parts, ValueParts) and [n.address for n in found.nodes] == [addr(1), addr(2), addr(3)]
    monkeypatch.setattr(compiled, "_walk", None)
    monkeypatch.delenv("CHAINSLEUTH_REQUIRE_COMPILED_WALK", raising=False)
    found = await trace_funds(GraphSource(hashes), Labels({}), addr(1), "eth", TraceParams(hops=2))
    assert found._parts is None and [n.address for n in found.nodes] == [addr(1), addr(2), addr(3)]
    monkeypatch.setenv("CHAINSLEUTH_REQUIRE_COMPILED_WALK", "1")  # CI: a missing extension is an error
    with pytest.raises(RuntimeError, match="not built"):
        await trace_funds(GraphSource(hashes), Labels({}), addr(1), "eth", TraceParams(hops=2))


@pytest.mark.parametrize("seed", range(8))
async def test_node_marks_give_the_value_trace_and_report_of_the_label_lookups(seed: int) -> None:
    """Over a `LabelCache` the compiled value walk reads labels as node marks (no callback): the same traces and
    risk reports as the Python walk's look-ups (labels on other chains, delisted, several on one address)."""
    rng = random.Random(4000 + seed)
    graph, _, n = random_graph(rng)
    cache = SnapshotCache(varied_labels(rng, graph))
    source, prices = GraphSource(graph), Prices(rng)
    for _ in range(4):
        params = replace(random_params(rng, rng.choice(list(TaintModel))), token=None, max_nodes=2000)
        root = rng.choice(graph.addresses)
        reports = []
        for pure in (False, True):
            if pure:
                os.environ["CHAINSLEUTH_PURE_WALK"] = "1"
            try:
                out = await trace_funds(source, cache, root, "eth", replace(params, direction=Direction.OUT), prices)
                back = await trace_funds(source, cache, root, "eth", replace(params, direction=Direction.IN), prices)
            finally:
                os.environ.pop("CHAINSLEUTH_PURE_WALK", None)
            assert isinstance(out._parts, ValueParts) != pure and isinstance(back._parts, ValueParts) != pure
            report = report_from_traces(
                root, "eth", cache.for_address(root, "eth"), out, back, merged_coverage(out, back)
            )
            reports.append((report, everything(out), everything(back)))
        assert reports[0] == reports[1], (seed, params, root)


def test_prices_say_when_an_asset_has_no_price_on_any_day() -> None:
    # the compiled walk then stops asking day by day: this must never hide a price that exists
    usdc = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"  # USDC on Ethereum: at its peg
    table = PriceTable({(price_key("eth", None), 19_000): Decimal(2000)})
    stored = TransferPrices(Valuation("eth", {}, table))
    for prices in (stored, PegPrices("eth"), TransferPrices(Valuation("eth"))):
        for asset in (None, usdc, TKB[0]):
            days = [prices.usd(asset, 18 if asset != usdc else 6, None, day * DAY, 10**18) for day in (18_999, 19_000)]
            assert prices.never_priced(asset) == all(usd is None for usd in days), (prices, asset)
    assert not stored.never_priced(None) and stored.never_priced(TKB[0]) and not stored.never_priced(usdc)
