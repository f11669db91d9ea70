"""/trace and /watch with the value-aware flags through the chat grammar (push a command, pop the reply): the taint
models compared on the Ronin exploiter, the dust floor and USD minimum with stored ETH prices, going on through a
kind of service, and the same flags from the command line."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from bot.app import App
from bot.backends.testing import TestBackend
from tracing.chain.demo import RONIN_EXPLOITER, load_demo
from tracing.chain.prices import PriceBook, day_of
from tracing.trace.compare import MODELS
from tracing.trace.params import TraceParams

ETH_USD = Decimal(3000)


def store_eth_prices(app: App, usd: Decimal = ETH_USD) -> None:
    """A flat ETH price on every day of the demo data (March to May 2022)."""
    first = date(2022, 3, 1)
    days = [day_of(int((first + timedelta(days=d)).strftime("%s")) + 43_200) for d in range(92)]
    PriceBook(app.db).store([("ETH", day, usd) for day in days], "test")


async def test_compare_lists_the_three_models_and_where_they_disagree(bot: TestBackend, app: App) -> None:
    load_demo(app.db)
    store_eth_prices(app)
    reply = await bot.say(f"/trace {RONIN_EXPLOITER} --model compare --hops 3")
    text = reply.text
    for model in MODELS:
        assert f"• {model.value}: " in text, text
    assert "models compared: haircut, poison, fifo" in text
    assert "Filters: dust floor $100" in text and "follow rule: value-aware" in text
    comparison = await app.investigator.compare(RONIN_EXPLOITER, None, TraceParams(hops=3))
    if comparison.disagreements:
        assert "Where they disagree" in text
        first = comparison.disagreements[0]
        assert f"reached by {', '.join(m.value for m in first.reached_by)} only" in text
    else:
        assert "The models reach the same addresses." in text
    assert "ETH ($" in text, text  # traced amounts in units and USD
