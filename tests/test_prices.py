"""Amounts an investigator can read: token symbol and decimals (bundled list, contracts over RPC, cached), daily USD
prices (imported, stablecoin peg, a CoinGecko-compatible API whose answers are cached), and every amount of a reply,
CSV and JSON in units and USD on its transfer's day, or "no USD price"."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from bot.app import App
from bot.backends.testing import TestBackend
from storage.db import Database
from tests.conftest import shared_data
from tests.support.anvil import AnvilNode
from tests.support.contracts import deploy
from tests.support.fixtures import anvil  # noqa: F401
from tests.support.price_server import FakePriceApi
from tests.test_cli import run_cli
from tests.test_trace import addr, label
from tracing.chain.amounts import Valuation, amount_text
from tracing.chain.config import ChainConfig
from tracing.chain.index import TransferIndex
from tracing.chain.prices import PriceApi, PriceBook, day_of, import_price_csv
from tracing.chain.rpc import RpcSource
from tracing.chain.tokens import TokenBook, TokenInfo, listed_token
from tracing.chain.transfer import Transfer, TransferKind
from tracing.labels import Category, LabelBook
from tracing.risk.outputs import trace_csv, trace_dot, trace_json

WHEN = 1641211200  # 2022-01-03 12:00 UTC
DAY = day_of(WHEN)
USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
ETH = 10**18

_n = iter(range(1, 10**6))


def transfer(frm: int, to: int, value: int, *, token: str | None = None, ts: int = WHEN) -> Transfer:
    """A transfer as an import without token metadata stores it: no symbol, no decimals."""
    n = next(_n)
    return Transfer(
        chain="eth",
        block_number=ts // 12,
        block_hash="0x" + "00" * 32,
        timestamp=ts,
        tx_hash="0x" + f"{n:064x}",
        kind=TransferKind.ERC20 if token else TransferKind.NATIVE,
        position=f"log:{n}" if token else "tx",
        from_addr=addr(frm),
        to_addr=addr(to),
        value=value,
        token=token,
    )


# --- token metadata ---------------------------------------------------------------------------------------------


def test_the_bundled_token_list_gives_symbol_and_decimals_by_chain_and_address() -> None:
    assert listed_token("eth", USDC.upper().replace("0X", "0x")) == TokenInfo(USDC, "USDC", 6, "token list")
    assert listed_token("eth", "0x2260fac5e5542a773aa44fbcfedf7c193bc2c599") == TokenInfo(
        "0x2260fac5e5542a773aa44fbcfedf7c193bc2c599", "WBTC", 8, "token list"
    )
    assert listed_token("polygon", "0xc2132d05d31c914a87c6611c10748aeb04b58e8f").decimals == 6  # type: ignore[union-attr]
    assert listed_token("base", USDC) is None  # an address is a token of one chain only
    assert listed_token("eth", "0x" + "e" * 40) is None  # the list's native-ETH placeholder is not a token


async def test_token_metadata_is_read_from_the_contract_on_anvil_and_cached(
    anvil: AnvilNode,  # noqa: F811
    db: Database,
) -> None:
    deployer = anvil.accounts()[0]
    gold = deploy(anvil.rpc, "TestToken", "Gold", "GLD", 4, sender=deployer)
    nobody = "0x" + "5a" * 20  # no contract: answers neither symbol() nor decimals()
    async with RpcSource(ChainConfig("anv", None, "ETH", (anvil.url,))) as source:
        found = await TokenBook(db).resolve("anv", [gold.address, nobody], source)
    assert found[gold.address] == TokenInfo(gold.address, "GLD", 4, "rpc")
    assert not found[nobody].known

    again = await TokenBook(db).resolve("anv", [gold.address.upper().replace("0X", "0x"), nobody], reader=None)
    assert again[gold.address] == TokenInfo(gold.address, "GLD", 4, "store")  # from the store, no RPC
    assert again[nobody] == TokenInfo(nobody, None, None, "store")  # asked once: the empty answer is kept


# --- prices -----------------------------------------------------------------------------------------------------


def test_stablecoins_count_at_their_peg_unless_a_price_is_stored(db: Database) -> None:
    book = PriceBook(db)
    pegged = Valuation("eth", {}, book.table())
    assert pegged.usd(USDC, 4_977_122, WHEN, 6) == Decimal("4.977122")
    assert pegged.text(USDC, 4_977_122, pegged.usd(USDC, 4_977_122, WHEN, 6), decimals=6, symbol="USDC") == (
        "4.9771 USDC ($4.98)"
    )
    fake = "0x" + "ab" * 20  # a token called USDC at another address is not USDC
    assert pegged.usd(fake, 4_977_122, WHEN, 6) is None
    assert pegged.usd(None, ETH, WHEN) is None  # ETH has no price stored: none is guessed

    book.store([("USDC", DAY, Decimal("0.87"))], "test")  # a depeg day recorded in the store wins over the peg
    depegged = Valuation("eth", {}, book.table())
    assert depegged.usd(USDC, 4_977_122, WHEN, 6) == Decimal("4.977122") * Decimal("0.87")
    assert depegged.usd(USDC, 4_977_122, WHEN + 86_400, 6) == Decimal("4.977122")  # the next day: peg again


def test_the_walk_lookup_values_transfers_from_dicts_loaded_once(db: Database) -> None:
    book = PriceBook(db)
    book.store([("ETH", DAY, Decimal("3761.38")), ("POL", DAY, Decimal("0.5")), ("MATIC", DAY + 1, Decimal("2"))], "t")
    lookup = Valuation("eth", {}, book.table()).lookup()
    assert lookup.usd(None, 3 * ETH // 2, WHEN) == pytest.approx(1.5 * 3761.38)
    assert lookup.usd(None, ETH, WHEN + 86_400) is None  # no price that day
    assert lookup.usd(USDC, 4_977_122, WHEN) == pytest.approx(
        4.977122
    )  # decimals from the token list, the peg for the price
    assert lookup.usd("0x" + "ab" * 20, 10**6, WHEN) is None  # unknown token: no decimals, no price
    walk = Valuation("eth", {}, book.table()).transfer_prices()  # the shape the value-aware walk asks
    assert walk.usd(USDC, None, "USDC", WHEN, 4_977_122) == Decimal("4.977122")
    assert walk.usd("0x" + "ab" * 20, 6, "USDC", WHEN, 10**6) is None  # named USDC, but not USDC's contract
    assert walk.usd(None, 18, "ETH", WHEN, 3 * ETH // 2) == Decimal("1.5") * Decimal("3761.38")
    polygon = Valuation("polygon", {}, book.table()).lookup()
    assert polygon.usd(None, ETH, WHEN) == pytest.approx(0.5)
    assert polygon.usd(None, ETH, WHEN + 86_400) == pytest.approx(2.0)  # POL, then MATIC


def test_amount_wording_with_and_without_a_usd_price() -> None:
    assert amount_text(3 * ETH // 2, None, 18, None, None) == "1.5 ETH (no USD price)"
    assert amount_text(3 * ETH // 2, None, 18, None, Decimal("5642.07")) == "1.5 ETH ($5,642)"
    assert amount_text(10**6, USDC, 6, "USDC", Decimal("0.004")) == "1 USDC (<$0.01)"
    assert amount_text(2 * ETH, None, 18, None, Decimal("3000"), usd_partial=True) == (
        "2 ETH (at least $3,000; no USD price on some days)"
    )
    assert amount_text(4_977_122, "0x" + "ab" * 20, None, None, None) == (
        "4977122 raw units of token 0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB (no USD price)"
    )


def test_prices_import_stores_daily_prices_and_reports_bad_rows_with_file_and_line(
    db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(
        "date,asset,usd\n"
        "2022-01-03,ETH,3761.38\n"
        "2022-01-04,eth,3794.05\n"
        "2022-13-01,ETH,1\n"
        "2022-01-05,,3000\n"
        "2022-01-06,ETH,abc\n"
        "2022-01-07,ETH,-5\n"
        f"2022-01-03,eth:{USDC.upper().replace('0X', '0x')},0.9997\n",
        encoding="utf-8",
    )
    result = import_price_csv(db, path)
    assert result.rows_read == 7 and result.stored == {"ETH": 2, f"eth:{USDC}": 1}
    assert result.errors == [
        f"{path}:4: “2022-13-01” is not a date (YYYY-MM-DD or a unix time)",
        f"{path}:5: “” is not SYMBOL or chain:0xTOKEN",
        f"{path}:6: “abc” is not a USD price",
        f"{path}:7: “-5” is not a positive USD price",
    ]
    table = PriceBook(db).table()
    assert table.price("ETH", DAY) == Decimal("3761.38") and table.price("ETH", DAY + 1) == Decimal("3794.05")
    assert table.price("ETH", DAY + 2) is None  # no price that day, and none borrowed from the days around it
    assert import_price_csv(db, path).stored_total == 3  # again: the same days replaced, not duplicated
    assert len(PriceBook(db).table().prices) == 3


def test_the_shared_daily_eth_prices_value_a_transfer_on_its_day(db: Database) -> None:
    path = shared_data("prices-daily", "ETH_usd_daily.csv")  # tests only: chainsleuth ships no price table
    result = import_price_csv(db, path, asset="ETH")
    assert result.stored == {"ETH": 1559} and not result.errors
    valuation = Valuation("eth", {}, PriceBook(db).table())
    usd = valuation.usd(None, 3 * ETH // 2, WHEN)
    assert usd == Decimal("1.5") * Decimal("3761.38037109375")
    assert valuation.text(None, 3 * ETH // 2, usd) == "1.5 ETH ($5,642)"


def test_prices_import_command(tmp_path: Path, database_url: str) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "SLACK_", "CHAINS", "ETH_", "PRICE_"))}
    env.update({"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": database_url, "DEMO_DATA": "false"})
    good = tmp_path / "eth.csv"
    good.write_text("date,close_usd\n2022-01-03,3761.38\n2022-01-04,not a price\n", encoding="utf-8")
    result = run_cli(["prices", "import", str(good), "--asset", "ETH"], env)
    assert result.returncode == 0, result.stderr
    assert f"{good}: 2 rows, stored ETH: 1; 1 bad rows" in result.stdout
    assert f"{good}:3: “not a price” is not a USD price" in result.stdout
    listed = run_cli(["prices", "list"], env)
    assert listed.returncode == 0 and "ETH: 1 day, 2022-01-03 … 2022-01-03 (import:eth.csv)" in listed.stdout
    bad = tmp_path / "nothing.csv"
    bad.write_text("when,what\n1,2\n", encoding="utf-8")
    result = run_cli(["prices", "import", str(bad)], env)
    assert result.returncode == 1 and f"{bad}:1: expected a header with date, asset and usd columns" in result.stderr


async def test_the_price_api_is_asked_once_per_asset_and_day_and_its_answers_are_stored(db: Database) -> None:
    token_path = f"ethereum/contract/{USDC}"
    served = {"ethereum": {date(2022, 1, 3): Decimal("3761.38")}, token_path: {date(2022, 1, 3): Decimal("0.9997")}}
    async with FakePriceApi(served, key="secret") as server:
        book = PriceBook(db, PriceApi(server.url, api_key="secret"))
        table = await book.fill({"ETH": {DAY, DAY + 1}, f"eth:{USDC}": {DAY}})
        assert table.price("ETH", DAY) == Decimal("3761.38") and table.price(f"eth:{USDC}", DAY) == Decimal("0.9997")
        assert table.price("ETH", DAY + 1) is None  # the API had no price that day: none, and that is remembered
        assert server.seen == ["ethereum", token_path]
        await book.fill({"ETH": {DAY, DAY + 1}})
        assert server.seen == ["ethereum", token_path]  # stored: not asked again
        await PriceBook(db, PriceApi(server.url, api_key="secret")).fill({"ETH": {DAY}})
        assert server.seen == ["ethereum", token_path]  # another process reads the store too

        far_apart = await PriceApi(server.url, api_key="secret").daily("ETH", [DAY, DAY + 1000])
        assert far_apart == {DAY: Decimal("3761.38")} and server.seen[-2:] == ["ethereum", "ethereum"]  # 2 windows

        wrong = PriceBook(db, PriceApi(server.url, api_key="wrong"))
        assert (await wrong.fill({"BTC": {DAY}})).price("BTC", DAY) is None  # refused: no price, nothing stored
        assert ("BTC", DAY) not in wrong.table().missing  # so it is asked again once the key is fixed


def test_the_price_api_is_configured_from_settings() -> None:
    from storage.settings import Settings
    from tracing.chain.prices import price_api_from_settings

    assert price_api_from_settings(Settings(_env_file=None)) is None  # type: ignore[call-arg]
    api = price_api_from_settings(
        Settings(_env_file=None, price_api_url="http://127.0.0.1:9/api/v3/", price_api_ids="POL=pol-x, FOO=foo")  # type: ignore[call-arg]
    )
    assert api is not None and api.base_url == "http://127.0.0.1:9/api/v3"
    assert api.coin_path("POL") == "/coins/pol-x" and api.coin_path("FOO") == "/coins/foo"
    assert api.coin_path("ETH") == "/coins/ethereum" and api.coin_path("NOPE") is None
    assert api.coin_path("polygon:0x" + "ab" * 20) == "/coins/polygon-pos/contract/0x" + "ab" * 20


# --- amounts in replies and files -------------------------------------------------------------------------------


async def test_risk_reply_shows_units_symbol_and_usd_on_the_transfer_day(bot: TestBackend, app: App) -> None:
    TransferIndex(app.db).add(
        [transfer(1, 51, 4_977_122, token=USDC), transfer(1, 51, 3 * ETH // 2), transfer(9, 1, 2 * ETH)]
    )
    LabelBook(app.db).add(label(51, Category.MIXER, "Tornado.Cash: Router"))
    PriceBook(app.db).store([("ETH", DAY, Decimal("3761.38"))], "test")
    reply = await bot.say(f"/risk {addr(1)}")
    assert "1.5 ETH ($5,642) + 4.9771 USDC ($4.98) to Tornado.Cash: Router" in reply.text, reply.text
    assert "raw units" not in reply.text
    report = await app.investigator.risk(addr(1))
    assert [a.text() for a in report.volume] == ["1.5 ETH ($5,642)", "4.9771 USDC ($4.98)"]
    assert [a.text() for a in report.volume_in] == ["2 ETH ($7,523)"]


async def test_no_usd_price_is_said_and_an_unknown_token_is_named_once(bot: TestBackend, app: App) -> None:
    odd = "0x" + "ab" * 20
    TransferIndex(app.db).add([transfer(1, 51, 3 * ETH // 2), transfer(1, 51, 4_977_122, token=odd)])
    LabelBook(app.db).add(label(51, Category.MIXER, "Tornado.Cash: Router"))
    reply = await bot.say(f"/risk {addr(1)}")
    assert "1.5 ETH (no USD price)" in reply.text
    assert "4977122 raw units of token 0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB (no USD price)" in reply.text
    assert reply.text.count("No symbol or decimals found for token 0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB") == 1
    assert "$" not in reply.text


async def test_trace_csv_and_json_carry_the_usd_of_each_transfer(app: App) -> None:
    TransferIndex(app.db).add([transfer(1, 2, 4_977_122, token=USDC), transfer(1, 3, ETH)])
    trace = await app.investigator.trace(addr(1))
    rows = {row["to"]: row for row in csv.DictReader(io.StringIO(trace_csv(trace)))}
    assert rows[addr(2)]["symbol"] == "USDC" and rows[addr(2)]["decimals"] == "6"  # from the token list
    assert rows[addr(2)]["usd"] == "4.98" and rows[addr(2)]["taint_usd"] == "4.98"
    assert rows[addr(3)]["usd"] == "no USD price"
    data = json.loads(json.dumps(trace_json(trace)))
    by_to = {edge["to"]: edge for edge in data["edges"]}
    assert by_to[addr(2)]["usd"] == "4.98" and by_to[addr(3)]["usd"] is None


async def test_trace_reply_and_picture_show_units_and_usd(bot: TestBackend, app: App) -> None:
    TransferIndex(app.db).add([transfer(1, 51, 4_977_122, token=USDC), transfer(1, 51, ETH)])
    LabelBook(app.db).add(label(51, Category.MIXER, "Tornado.Cash: Router"))
    reply = await bot.say(f"/trace {addr(1)}")
    assert "hop 1: 1 ETH (no USD price) + 4.9771 USDC ($4.98)" in reply.text, reply.text
    dot = trace_dot(await app.investigator.trace(addr(1)))
    assert "4.9771 USDC ($4.98)" in dot and "1 ETH (no USD price)" in dot


async def test_usd_of_a_compact_graph_trace_equals_the_reference_on_random_transfers(db: Database) -> None:
    """The compiled walk's trace values received funds without being materialised; the pure-Python trace over SQL
    is the reference: same amounts and the same USD, transfer by transfer on its day, under both models."""
    import random

    from tracing.trace.cache import GraphCache
    from tracing.trace.label_cache import LabelCache
    from tracing.trace.params import Direction, TraceParams
    from tracing.trace.sources import GraphSource, IndexSource
    from tracing.trace.taint import TaintModel
    from tracing.trace.usd import received_with_usd, usd_moved
    from tracing.trace.walk import trace_funds

    rng = random.Random(7)
    rows = []
    for _ in range(400):
        a, b = rng.randrange(1, 40), rng.randrange(1, 40)
        if a != b:
            token = USDC if rng.random() < 0.3 else None
            value = rng.randrange(1, 10**7) if token else rng.randrange(1, 10**19)
            rows.append(transfer(a, b, value, token=token, ts=WHEN + rng.randrange(0, 6 * 86_400)))
    TransferIndex(db).add(rows)
    LabelBook(db).add(label(7, Category.MIXER, "mixer"))
    book = PriceBook(db)
    book.store([("ETH", DAY + d, Decimal(3000 + 17 * d)) for d in (0, 1, 2, 4)], "test")  # day 3 and 5: none
    valuation = Valuation("eth", {}, book.table())
    graph = GraphCache(db, check_interval=0).load("eth")
    for direction in (Direction.OUT, Direction.IN):
        for model in (TaintModel.HAIRCUT, TaintModel.POISON):
            params = TraceParams(direction, 3, model=model, follow_value=False)  # the compiled walk (graph)
            fast = await trace_funds(GraphSource(graph), LabelCache(db, check_interval=0), addr(1), "eth", params)
            slow = await trace_funds(IndexSource(TransferIndex(db)), LabelBook(db), addr(1), "eth", params)
            fast, slow = fast.replace(valuation=valuation), slow.replace(valuation=valuation)
            reached = [node.address for node in slow.nodes[1:]]
            got_amounts, got_usd = received_with_usd(fast, model, reached)
            want_amounts, want_usd = received_with_usd(slow, model, reached)
            assert fast._edges is None  # still compact: nothing materialised to value it
            assert {a: dict(v) for a, v in got_amounts.items() if v} == {
                a: dict(v) for a, v in slow.taint_under(model).received.items() if a in reached and v
            }
            assert {a: dict(v) for a, v in got_amounts.items()} == {a: dict(v) for a, v in want_amounts.items()}
            assert got_usd == want_usd and any(s.partial for v in got_usd.values() for s in v.values())
            assert usd_moved(fast) == usd_moved(slow)


async def test_risk_with_a_price_api_asks_only_for_the_days_it_values(db: Database) -> None:
    from tracing.investigator import Investigator

    TransferIndex(db).add([transfer(1, 51, 3 * ETH // 2), transfer(1, 2, ETH, ts=WHEN + 5 * 86_400)])
    TransferIndex(db).add([transfer(2, 3, ETH, ts=WHEN + 9 * 86_400)])  # unlabelled further on: not valued
    LabelBook(db).add(label(51, Category.MIXER, "Tornado.Cash: Router"))
    async with FakePriceApi({"ethereum": {date(2022, 1, 3): Decimal("3761.38")}}) as server:
        api = PriceApi(server.url)
        report = await Investigator(db, check_interval=0, price_api=api).risk(addr(1))
        (mixer,) = [e for e in report.exposures if e.category is Category.MIXER]
        assert mixer.amounts[0].text() == "1.5 ETH ($5,642)"
        assert report.volume[0].text() == "2.5 ETH (at least $5,642; no USD price on some days)"
        assert api.calls == 1  # days 0 and 5 in one window; day 9 (past an unlabelled address) not asked
        stored = PriceBook(db).table()
        assert stored.price("ETH", DAY) == Decimal("3761.38") and ("ETH", DAY + 5) in stored.missing
        assert ("ETH", DAY + 9) not in stored.missing
