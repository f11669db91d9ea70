"""/trace and /watch with the value-aware flags through the chat grammar (push a command, pop the reply): the taint
models compared (on the Ronin exploiter and where they disagree), the dust floor, going on through a kind of
service, the USD minimum with stored ETH prices, a watch's USD minimum at match time, and the same flags from the
command line."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from bot.app import App
from bot.backends.testing import TestBackend
from storage.db import Database
from tests.support.fake_chain import FakeChain, move
from tests.test_prices import transfer
from tests.test_trace import addr, label
from tracing.chain.demo import RONIN_EXPLOITER, load_demo
from tracing.chain.index import TransferIndex
from tracing.chain.prices import PriceBook, day_of
from tracing.chain.transfer import Transfer, TransferKind
from tracing.labels import Category, LabelBook
from tracing.monitor.alerts import AlertBook, AlertKind
from tracing.monitor.clock import ManualClock
from tracing.monitor.watcher import ChainFeed, LabelRisk, Watcher
from tracing.trace.compare import MODELS
from tracing.trace.params import TraceParams

ETH = 10**18
ETH_USD = Decimal(3000)
WHEN = int(datetime(2022, 1, 3, 12, tzinfo=UTC).timestamp())
DAY = 86_400


def store_eth_prices(db: Database, first: date = date(2022, 3, 1), days: int = 220) -> None:
    """A flat ETH price on every day from `first` on (the demo data: March to September 2022)."""
    start = datetime(first.year, first.month, first.day, 12, tzinfo=UTC)
    when = [day_of(int((start + timedelta(days=d)).timestamp())) for d in range(days)]
    PriceBook(db).store([("ETH", day, ETH_USD) for day in when], "test")


def tx(frm: int, to: int, value: int, ts: int, *, token: str | None = None) -> Transfer:
    """A transfer with its token's metadata (an 18-decimal token "ODD" without a price)."""
    plain = transfer(frm, to, value, token=token, ts=ts)
    return replace(plain, decimals=18, symbol="ODD") if token else plain


def disagreeing(db: Database) -> None:
    """Address 2 holds 10 ETH of its own before the traced 10 ETH arrive, then, the next day, sends 10 to 3 and
    later 10 to 4: first in, first out says 3 got 2's own money; haircut and poison say both carry traced funds
    (over a day after the receipt, the 10 to 3 is not taken as the receipt passed on: `PassThrough`)."""
    TransferIndex(db).add(
        [
            tx(9, 2, 10 * ETH, WHEN - 100),
            tx(1, 2, 10 * ETH, WHEN),
            tx(2, 3, 10 * ETH, WHEN + DAY + 100),
            tx(2, 4, 10 * ETH, WHEN + DAY + 200),
        ]
    )
    store_eth_prices(db, date(2022, 1, 1), 10)


async def test_the_pass_through_can_be_turned_off_and_only_for_haircut(bot: TestBackend, app: App) -> None:
    load_demo(app.db)
    reply = await bot.say(f"/trace {RONIN_EXPLOITER} --hops 2 --no-pass-through")
    assert "no pass-through (no link by matching amounts)" in reply.text
    assert "no pass-through: every transfer carries its balance's share" in reply.text  # the coverage's rule
    assert "no pass-through" not in (await bot.say(f"/trace {RONIN_EXPLOITER} --hops 2")).text
    refused = await bot.say(f"/trace {RONIN_EXPLOITER} --model fifo --no-pass-through")
    assert refused.text == (
        "Error: --no-pass-through applies to haircut (the default model): poison and FIFO never match amounts."
    )


async def test_compare_on_the_ronin_exploiter_lists_the_three_models(bot: TestBackend, app: App) -> None:
    load_demo(app.db)
    store_eth_prices(app.db)
    reply = await bot.say(f"/trace {RONIN_EXPLOITER} --model compare --hops 3")
    text = reply.text
    for model in MODELS:
        assert f"• {model.value}: " in text, text
    assert "models compared: haircut, poison, fifo" in text and "dust floor: $100 on the transfer's day" in text
    assert "follow rule: value-aware" in text and "traced to where the trace ended:" in text
    assert " ETH ($" in text  # traced amounts in units and USD on their days
    comparison = await app.investigator.compare(RONIN_EXPLOITER, None, TraceParams(hops=3))
    assert f"Reached by every model: {len(comparison.agreed)} addresses." in text
    assert bool(comparison.disagreements) == ("Where they disagree" in text)


async def test_compare_names_the_addresses_where_the_models_disagree(bot: TestBackend, app: App) -> None:
    disagreeing(app.db)
    text = (await bot.say(f"/trace {addr(1)} --model compare")).text
    assert "Where they disagree (1 address):" in text, text
    assert "reached by haircut, poison only" in text
    assert "haircut 5 ETH ($15,000); poison 10 ETH ($30,000)" in text
    assert "• fifo: 2 addresses reached" in text and "• haircut: 3 addresses reached" in text


async def test_a_higher_dust_floor_follows_less_and_sums_what_it_left(bot: TestBackend, app: App) -> None:
    load_demo(app.db)
    store_eth_prices(app.db)
    low = (await bot.say(f"/trace {RONIN_EXPLOITER} --direction in --dust $10")).text
    high = (await bot.say(f"/trace {RONIN_EXPLOITER} --direction in --dust $1000")).text
    reached = [int(t.split("Reached ")[1].split(" addresses")[0]) for t in (low, high)]
    assert reached[1] < reached[0], (low, high)
    assert "dust floor: $1,000 on the transfer's day" in high and "at least $1,000" in high
    cut = next(line for line in high.splitlines() if "under $1,000" in line)
    assert "not followed: $" in cut and cut.rstrip().endswith("in all"), cut


async def test_through_an_exchange_goes_on_and_says_identity_is_lost(bot: TestBackend, app: App) -> None:
    TransferIndex(app.db).add([tx(1, 2, 10 * ETH, WHEN), tx(2, 3, 10 * ETH, WHEN + 100)])
    store_eth_prices(app.db, date(2022, 1, 1), 10)
    LabelBook(app.db).add(label(2, Category.EXCHANGE, "Some Exchange: Hot Wallet"))
    stopped = (await bot.say(f"/trace {addr(1)}")).text
    assert "Reached 1 addresses" in stopped, stopped
    through = (await bot.say(f"/trace {addr(1)} --through exchange")).text
    assert "Reached 2 addresses" in through and "filters: stops at bridge, mixer, through exchange;" in through, through
    assert "went on through a service (exchange) as asked: identity lost at" in through


async def test_a_usd_minimum_uses_the_stored_eth_price_and_names_unpriced_assets(bot: TestBackend, app: App) -> None:
    odd = "0x" + "ab" * 20
    TransferIndex(app.db).add(
        [tx(1, 2, ETH, WHEN), tx(1, 3, ETH // 10, WHEN + 1), tx(1, 4, 5 * ETH, WHEN + 2, token=odd)]
    )
    store_eth_prices(app.db, date(2022, 1, 1), 10)
    text = (await bot.say(f"/trace {addr(1)} --min-value $1000 --dust $1")).text
    trace = await app.investigator.trace(addr(1), None, TraceParams(min_usd=Decimal(1000), dust_usd=Decimal(1)))
    assert {n.address for n in trace.nodes[1:]} == {addr(2), addr(4)}  # 1 ETH ($3,000) and the unpriced token
    assert "Reached 2 addresses" in text and "min value $1,000 on the transfer's day" in text
    assert f"no USD price on the day of some transfers of {odd}: the $1,000 minimum could not be applied" in text


async def test_watch_with_a_usd_minimum_alerts_above_it_and_says_when_there_is_no_price(
    bot: TestBackend, app: App
) -> None:
    watched, other, token = "0x" + "a1" * 20, "0x" + "b2" * 20, "0x" + "d4" * 20
    saved = await bot.say(f"/watch {watched} --min $500 --channel")
    assert "movements of at least $500" in saved.text, saved.text
    chain = FakeChain()
    block_day = day_of(1_700_000_000)
    PriceBook(app.db).store([("ETH", block_day, ETH_USD)], "test")
    chain.mine(move(watched, other, ETH // 10, tx=1))  # $300: under the minimum
    chain.mine(move(watched, other, ETH // 2, tx=2))  # $1,500
    chain.mine(move(other, watched, 10**6, tx=3, kind=TransferKind.ERC20, position="log:0", token=token, decimals=6))
    feed = ChainFeed("eth", chain, poll_interval=1, confirmations=0, start_block=1)
    await Watcher(app.db, feed, risk=LabelRisk(LabelBook(app.db)), clock=ManualClock()).catch_up()
    alerts = AlertBook(app.db).all()
    assert [(a.tx_hash[-1], a.kind) for a in alerts] == [("2", AlertKind.THRESHOLD), ("3", AlertKind.THRESHOLD)]
    assert "at least the minimum $500 ($1,500.00)" in alerts[0].reasons
    assert "no USD price that day to compare with the minimum $500" in alerts[1].reasons
