"""Daily USD prices per asset: stored in the `price_daily` table, loaded once into a dict by (asset, day).

An asset's *price key* is a coin symbol for native coins and for tokens that stand for one (`ETH` for ETH and
WETH, `BTC` for WBTC, `USDC` for USDC on every chain it is listed for here), else `<chain>:<token address>`.
Tokens are matched by contract address only, never by symbol: anyone can deploy a token called "USDC".

Where prices come from: `chainsleuth prices import FILE` (CSV of date and USD price per asset), the stablecoins'
peg ($1 on a day without a stored price), and an optional CoinGecko-compatible price API (`PRICE_API_URL`) whose
answers are stored, a day it had no price for included, so each (asset, day) is asked once. chainsleuth ships no
price table. A day without a price has none: no interpolation, no nearest day.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from storage import Database, PriceRow, utcnow
from tracing.chain.address import canonical
from tracing.chain.config import WELL_KNOWN

log = logging.getLogger(__name__)

DAY = 86_400
PEG = Decimal(1)

# Stablecoins by chain and contract address: valued at $1 on a day without a stored price for their key.
STABLECOINS: dict[tuple[str, str], str] = {
    ("eth", "0xdac17f958d2ee523a2206206994597c13d831ec7"): "USDT",
    ("eth", "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"): "USDC",
    ("eth", "0x6b175474e89094c44da98b954eedeac495271d0f"): "DAI",
    ("eth", "0x0000000000085d4780b73119b644ae5ecd22b376"): "TUSD",
    ("eth", "0x4fabb145d64652a948d72533023f6e7a623c7c53"): "BUSD",
    ("eth", "0x1456688345527be1f37e9e627da0837d6f08c925"): "USDP",
    ("eth", "0x6c3ea9036406852006290770bedfcaba0e23a0e8"): "PYUSD",
    ("bsc", "0x55d398326f99059ff775485246999027b3197955"): "USDT",
    ("bsc", "0x8ac76a51cc950d9822d68b83fe1ad97b32cd580d"): "USDC",
    ("bsc", "0xe9e7cea3dedca5984780bafc599bd69add087d56"): "BUSD",
    ("bsc", "0x1af3f329e8be154074d8769d1ffa4ee058b1dbc3"): "DAI",
    ("polygon", "0xc2132d05d31c914a87c6611c10748aeb04b58e8f"): "USDT",
    ("polygon", "0x3c499c542cef5e3811e1192ce70d8cc03d5c3359"): "USDC",
    ("polygon", "0x2791bca1f2de4661ed88a30c99a7a9449aa84174"): "USDC",
    ("polygon", "0x8f3cf7ad23cd3cadbd9735aff958023239c6a063"): "DAI",
    ("polygon", "0x2e1ad108ff1d8c782fcbbb89aad783ac49586756"): "TUSD",
    ("arbitrum", "0xfd086bc7cd5c481dcc9c85ebe478a1c0b69fcbb9"): "USDT",
    ("arbitrum", "0xaf88d065e77c8cc2239327c5edb3a432268e5831"): "USDC",
    ("arbitrum", "0xff970a61a04b1ca14834a43f5de4533ebddb5cc8"): "USDC",
    ("arbitrum", "0xda10009cbd5d07dd0cecc66161fc93d7c9000da1"): "DAI",
    ("optimism", "0x94b008aa00579c1307b0ef2c499ad98a8ce58e58"): "USDT",
    ("optimism", "0x0b2c639c533813f4aa9d7837caf62653d097ff85"): "USDC",
    ("optimism", "0x7f5c764cbc14f9669b88837ca1490cca17c31607"): "USDC",
    ("optimism", "0xda10009cbd5d07dd0cecc66161fc93d7c9000da1"): "DAI",
    ("base", "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913"): "USDC",
    ("base", "0xfde4c96c8593536e31f229ea8f37b2ada2699bb2"): "USDT",
    ("base", "0x50c5725949a6f0c72e6c4a641f24049a917db0cb"): "DAI",
    ("tron", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"): "USDT",
    ("tron", "TEkxiTehnzSmSe2XqrBj4w32RUN966rdz8"): "USDC",
}
STABLE_KEYS = frozenset(STABLECOINS.values())

# Wrapped coins: one token is one coin, so they take the coin's price.
WRAPPED: dict[tuple[str, str], str] = {
    ("eth", "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"): "ETH",
    ("eth", "0x2260fac5e5542a773aa44fbcfedf7c193bc2c599"): "BTC",
    ("arbitrum", "0x82af49447d8a07e3bd95bd0d56f35241523fbab1"): "ETH",
    ("optimism", "0x4200000000000000000000000000000000000006"): "ETH",
    ("base", "0x4200000000000000000000000000000000000006"): "ETH",
    ("polygon", "0x7ceb23fd6bc0add59e62ac25578270cff1b9f619"): "ETH",
    ("polygon", "0x1bfd67037b42cf73acf2047067bd4f2c47d9bfd6"): "BTC",
    ("bsc", "0xbb4cdb9cbd36b01bd1cbaebf2de08d9173bc095c"): "BNB",
}

RENAMED: dict[str, str] = {"POL": "MATIC"}
"""A coin renamed 1:1 (Polygon's MATIC became POL in 2024): a day without a price under the new name takes the old."""


def day_of(timestamp: int) -> int:
    """The UTC day of a unix time, as days since 1970-01-01 (the key of every price lookup)."""
    return timestamp // DAY


def day_date(day: int) -> date:
    return date(1970, 1, 1) + timedelta(days=day)


def date_day(when: date) -> int:
    return (when - date(1970, 1, 1)).days


def native_price_key(chain: str) -> str:
    """The price key of a chain's native coin: its symbol (ETH on Ethereum and its rollups, BNB, POL, ...)."""
    known = WELL_KNOWN.get(chain)
    if known is not None:
        return known.symbol
    try:
        from tracing.chain.config import configured_chains

        configured = configured_chains().get(chain)
    except Exception:  # a broken chain variable is reported by the chain commands, not here
        configured = None
    return configured.symbol if configured is not None else "ETH"


def native_decimals(chain: str) -> int:
    """Decimals of a chain's native coin: 18 on EVM chains, 6 for TRX, 8 for BTC (by its well-known name or its
    configuration)."""
    known = WELL_KNOWN.get(chain)
    if known is not None:
        return known.decimals
    try:
        from tracing.chain.config import configured_chains

        configured = configured_chains().get(chain)
    except Exception:  # a broken chain variable is reported by the chain commands, not here
        configured = None
    return configured.decimals if configured is not None else 18


def price_key(chain: str, token: str | None) -> str:
    """The price key of an asset of a chain (`token` None: the native coin)."""
    if token is None:
        return native_price_key(chain)
    token = canonical(token)
    return STABLECOINS.get((chain, token)) or WRAPPED.get((chain, token)) or f"{chain}:{token}"


def parse_price_key(text: str) -> str:
    """A price key as typed: `eth` → `ETH`, `eth:0xA0b8…` → `eth:0xa0b8…`. ValueError when neither."""
    text = text.strip()
    if ":" in text:
        chain, _, address = text.partition(":")
        address = address.strip()
        if address[:1] == "T" and len(address) == 34 and address.isalnum():
            return f"{chain.strip().lower()}:{address}"  # a TRC-20 token (Base58 is case-sensitive)
        address = address.lower()
        if not chain.strip() or not address.startswith("0x") or len(address) != 42:
            raise ValueError(f"“{text[:60]}” is not SYMBOL or chain:0xTOKEN")
        return f"{chain.strip().lower()}:{address}"
    if not text or len(text) > 20 or not all(ch.isalnum() or ch in "._-" for ch in text):
        raise ValueError(f"“{text[:60]}” is not SYMBOL or chain:0xTOKEN")
    return text.upper()


@dataclass(frozen=True)
class PriceTable:
    """Every stored daily price, by (price key, day): what a trace or report reads, without a query per transfer.
    `missing` holds the (key, day) pairs a price API was asked for and had no price."""

    prices: Mapping[tuple[str, int], Decimal]
    missing: frozenset[tuple[str, int]] = frozenset()
    _floats: dict[str, dict[int, float]] = field(default_factory=dict, compare=False, repr=False)
    _keys: set[str] = field(default_factory=set, compare=False, repr=False)

    def never(self, key: str) -> bool:
        """Whether `price` is None for `key` on every day: nothing stored for it (nor its former key), no peg."""
        if self.prices and not self._keys:
            self._keys.update(k for k, _ in self.prices)
        return key not in STABLE_KEYS and key not in self._keys and RENAMED.get(key) not in self._keys

    def price(self, key: str, day: int) -> Decimal | None:
        """USD per whole unit of `key` on `day`: the stored price, else the peg for a stablecoin, else None."""
        found = self.prices.get((key, day))
        if found is None and key in RENAMED:
            found = self.prices.get((RENAMED[key], day))
        if found is None and key in STABLE_KEYS:
            return PEG
        return found

    def known(self, key: str, day: int) -> bool:
        """A price is stored, or the API was asked already (priced or not), or the key is a stablecoin."""
        return (key, day) in self.prices or (key, day) in self.missing or key in STABLE_KEYS

    def daily(self, key: str) -> dict[int, float]:
        """Day → USD per unit for one key, as floats (for hot loops: the trace walk's dust floor). Stablecoin days
        without a stored price are not in it: the caller applies `PEG` for keys in `STABLE_KEYS`."""
        found = self._floats.get(key)
        if found is None:
            found = {day: float(usd) for (k, day), usd in self.prices.items() if k == key}
            self._floats[key] = found
        return found


EMPTY = PriceTable({})


def usd_value(table: PriceTable, key: str, value: int, decimals: int | None, timestamp: int) -> Decimal | None:
    """The USD value of `value` raw units of `key` at a transfer's time; None without a price or decimals."""
    if decimals is None:
        return None
    price = table.price(key, day_of(timestamp))
    if price is None:
        return None
    return Decimal(value).scaleb(-decimals) * price


class PriceBook:
    """The stored prices of one store: the loaded table (reloaded when the table changes), imports, and the
    optional price API whose answers it stores."""

    def __init__(self, db: Database, api: PriceApi | None = None, *, check_interval: float = 0.0) -> None:
        """`check_interval`: seconds during which the loaded table is used without asking the store whether it
        changed (0: ask every time)."""
        self.db = db
        self.api = api
        self.check_interval = check_interval
        self._table: tuple[tuple[Any, ...], PriceTable] | None = None
        self._checked = 0.0

    def fingerprint(self) -> tuple[Any, ...]:
        with self.db.engine.connect() as conn:
            count, newest = conn.execute(text("SELECT count(*), max(fetched_at) FROM price_daily")).one()
        return (count, str(newest))

    def table(self) -> PriceTable:
        """Every stored price, loaded once and again only when rows were added or changed."""
        now = time.monotonic()
        if self._table is not None and now - self._checked < self.check_interval:
            return self._table[1]
        key = self.fingerprint()
        self._checked = now
        if self._table is not None and self._table[0] == key:
            return self._table[1]
        prices: dict[tuple[str, int], Decimal] = {}
        missing: set[tuple[str, int]] = set()
        with self.db.engine.connect() as conn:  # plain rows: tens of thousands load in a fraction of a second
            for asset, day, usd in conn.execute(text("SELECT asset, day, usd FROM price_daily")):
                key = (asset, date_day(_as_date(day)))
                if usd is None:
                    missing.add(key)
                else:
                    prices[key] = Decimal(usd)
        table = PriceTable(prices, frozenset(missing))
        self._table = (key, table)
        return table

    def summary(self) -> list[tuple[str, int, date, date, str]]:
        """Per price key: days with a price, first and last day, and the sources, for `chainsleuth prices list`."""
        query = text(
            "SELECT asset, count(*), min(day), max(day), min(source), max(source) FROM price_daily "
            "WHERE usd IS NOT NULL GROUP BY asset ORDER BY asset"
        )
        found = []
        with self.db.engine.connect() as conn:
            for asset, count, first, last, source_a, source_b in conn.execute(query):
                sources = source_a if source_a == source_b else f"{source_a} … {source_b}"
                found.append((asset, int(count), _as_date(first), _as_date(last), sources))
        return found

    def store(self, rows: Iterable[tuple[str, int, Decimal | None]], source: str) -> int:
        """Write (key, day, usd) rows, replacing what was stored for those days. Returns how many."""
        rows = list(rows)
        if not rows:
            return 0
        self._checked = 0.0  # what this process stores is read back at once
        now = utcnow()
        by_key: dict[str, dict[int, Decimal | None]] = {}
        for key, day, usd in rows:
            by_key.setdefault(key, {})[day] = usd
        written = 0
        with self.db.session() as session:
            for key, days in by_key.items():
                wanted = [day_date(d) for d in days]
                existing: dict[date, PriceRow] = {}
                for start in range(0, len(wanted), 500):  # bounded IN lists (SQLite caps bound parameters)
                    chunk = wanted[start : start + 500]
                    query = select(PriceRow).where(PriceRow.asset == key, col(PriceRow.day).in_(chunk))
                    existing.update((row.day, row) for row in session.exec(query))
                for day, usd in days.items():
                    text = None if usd is None else format(usd.normalize(), "f")
                    row = existing.get(day_date(day))
                    if row is None:
                        session.add(PriceRow(asset=key, day=day_date(day), usd=text, source=source, fetched_at=now))
                    elif row.usd != text or row.source != source:
                        row.usd, row.source, row.fetched_at = text, source, now
                        session.add(row)
                    written += 1
        return written

    async def fill(self, needs: Mapping[str, Iterable[int]]) -> PriceTable:
        """Ask the price API for the (key, day) pairs not yet known, store its answers (a day it has no price
        for too), and return the table. Without an API, or when it fails, the table as it is."""
        table = self.table()
        if self.api is None:
            return table
        asked = False
        for key, days in needs.items():
            wanted = sorted({d for d in days if not table.known(key, d)})
            if not wanted or self.api.coin_path(key) is None:
                continue
            try:
                found = await self.api.daily(key, wanted)
            except PriceApiError as exc:
                log.warning("price API: %s", exc)
                continue
            try:
                self.store(((key, day, found.get(day)) for day in wanted), self.api.source)
            except IntegrityError:  # another process stored the same days a moment ago
                pass
            asked = True
        return self.table() if asked else table


# --- CSV import ----------------------------------------------------------------------------------------------

_DATE_COLUMNS = ("date", "day", "time", "timestamp")
_ASSET_COLUMNS = ("asset", "symbol", "coin", "key")
_USD_COLUMNS = ("usd", "price_usd", "close_usd", "price", "close", "priceusd")


@dataclass
class PriceImport:
    """What one `prices import` did: rows read and stored per asset, and the bad rows as `file:line: reason`."""

    path: Path
    rows_read: int = 0
    stored: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    file_error: str = ""

    @property
    def stored_total(self) -> int:
        return sum(self.stored.values())


def import_price_csv(db: Database, path: Path, asset: str | None = None, source: str | None = None) -> PriceImport:
    """Read a CSV of daily USD prices and store them. Columns (header names, any case): a date (`date`, `day`;
    YYYY-MM-DD, or a unix time), an asset (`asset`, `symbol`; a coin symbol or `chain:0xTOKEN`) unless `asset` is
    given for the whole file, and the USD price of one whole unit (`usd`, `price_usd`, `close_usd`, `price`)."""
    result = PriceImport(path)
    fixed = None
    if asset is not None:
        try:
            fixed = parse_price_key(asset)
        except ValueError as exc:
            result.file_error = f"{path}: {exc}"
            return result
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        result.file_error = f"{path}: {exc.strerror or exc}"
        return result
    rows: list[tuple[str, int, Decimal | None]] = []
    with handle:
        reader = csv.reader(handle)
        header = [h.strip().lower() for h in next(reader, [])]
        date_at = _column(header, _DATE_COLUMNS)
        asset_at = _column(header, _ASSET_COLUMNS)
        usd_at = _column(header, _USD_COLUMNS)
        if date_at is None or usd_at is None or (asset_at is None and fixed is None):
            wanted = "date, asset and usd columns" if fixed is None else "date and usd columns"
            result.file_error = f"{path}:1: expected a header with {wanted}, got {', '.join(header) or 'nothing'}"
            return result
        for line, record in enumerate(reader, start=2):
            if not any(cell.strip() for cell in record):
                continue
            result.rows_read += 1
            try:
                rows.append(_price_row(record, date_at, asset_at, usd_at, fixed))
            except ValueError as exc:
                result.errors.append(f"{path}:{line}: {exc}")
    book = PriceBook(db)
    book.store(rows, source or f"import:{path.name}")
    for key, _, _ in rows:
        result.stored[key] = result.stored.get(key, 0) + 1
    return result


def _column(header: Sequence[str], names: Sequence[str]) -> int | None:
    for name in names:
        if name in header:
            return header.index(name)
    return None


def _price_row(
    record: Sequence[str], date_at: int, asset_at: int | None, usd_at: int, fixed: str | None
) -> tuple[str, int, Decimal]:
    def cell(index: int) -> str:
        if index >= len(record):
            raise ValueError("too few columns")
        return record[index].strip()

    key = fixed if fixed is not None else parse_price_key(cell(asset_at if asset_at is not None else 0))
    when = cell(date_at)
    if when.isdigit():
        day = day_of(int(when) // (1000 if len(when) > 11 else 1))
    else:
        try:
            day = date_day(date.fromisoformat(when[:10]))
        except ValueError:
            raise ValueError(f"“{when[:30]}” is not a date (YYYY-MM-DD or a unix time)") from None
    text = cell(usd_at).replace(",", "").lstrip("$")
    try:
        usd = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"“{text[:30]}” is not a USD price") from None
    if not usd.is_finite() or usd <= 0:
        raise ValueError(f"“{text[:30]}” is not a positive USD price")
    return key, day, usd


# --- price API (CoinGecko-compatible) ---------------------------------------------------------------------------

COIN_IDS: dict[str, str] = {
    "ETH": "ethereum",
    "BTC": "bitcoin",
    "BNB": "binancecoin",
    "POL": "polygon-ecosystem-token",
    "MATIC": "matic-network",
    "AVAX": "avalanche-2",
    "TRX": "tron",
    "USDT": "tether",
    "USDC": "usd-coin",
    "DAI": "dai",
    "TUSD": "true-usd",
    "BUSD": "binance-usd",
    "USDP": "paxos-standard",
    "PYUSD": "paypal-usd",
}
"""The API's coin id of each price key that is a coin symbol."""

PLATFORMS: dict[str, str] = {
    "eth": "ethereum",
    "bsc": "binance-smart-chain",
    "polygon": "polygon-pos",
    "arbitrum": "arbitrum-one",
    "optimism": "optimistic-ethereum",
    "base": "base",
    "tron": "tron",
}
"""The API's platform id of each chain, for token prices by contract address."""


WINDOW_DAYS = 90
"""Days one range request covers at most (CoinGecko gives hourly points up to 90 days, daily ones beyond)."""


class PriceApiError(Exception):
    """The price API did not answer usably (HTTP error, timeout, unexpected body)."""


class PriceApi:
    """A CoinGecko-compatible HTTP API: `/coins/{id}/market_chart/range` (or, for a token,
    `/coins/{platform}/contract/{address}/market_chart/range`) with `vs_currency=usd&from=&to=` in unix seconds.
    The day's price is the last point the API gives within that UTC day."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str = "",
        key_header: str = "x-cg-demo-api-key",
        coin_ids: Mapping[str, str] | None = None,
        timeout: float = 20.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.key_header = key_header
        self.coin_ids = {**COIN_IDS, **(coin_ids or {})}
        self.timeout = timeout
        self.transport = transport
        self.calls = 0
        self.source = f"api:{urlsplit(self.base_url).netloc or self.base_url}"[:64]

    def coin_path(self, key: str) -> str | None:
        """The API path of a price key's coin, or None when the API cannot price it."""
        if ":" in key:
            chain, _, address = key.partition(":")
            platform = PLATFORMS.get(chain)
            return f"/coins/{platform}/contract/{address}" if platform else None
        coin = self.coin_ids.get(key)
        return f"/coins/{coin}" if coin else None

    async def daily(self, key: str, days: Sequence[int]) -> dict[int, Decimal]:
        """USD prices of `key` for those days (days without a point are absent): one range request per window of
        at most `WINDOW_DAYS` days that holds some of them, so far-apart days do not fetch the years between."""
        found: dict[int, Decimal] = {}
        ordered = sorted(set(days))
        while ordered:
            first = ordered[0]
            window = [d for d in ordered if d < first + WINDOW_DAYS]
            ordered = ordered[len(window) :]
            found.update(await self._range(key, window))
        return found

    async def _range(self, key: str, days: Sequence[int]) -> dict[int, Decimal]:
        path = self.coin_path(key)
        if path is None or not days:
            return {}
        params = {"vs_currency": "usd", "from": str(min(days) * DAY), "to": str((max(days) + 1) * DAY)}
        headers = {self.key_header: self.api_key} if self.api_key else {}
        self.calls += 1
        try:
            async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport) as client:
                response = await client.get(f"{self.base_url}{path}/market_chart/range", params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise PriceApiError(f"{key}: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 404:
            return {}
        if response.status_code != 200:
            raise PriceApiError(f"{key}: HTTP {response.status_code}")
        try:
            points = response.json()["prices"]
            latest: dict[int, tuple[int, Decimal]] = {}
            for ms, usd in points:
                day, price = day_of(int(ms) // 1000), Decimal(str(usd))
                if price > 0 and (day not in latest or latest[day][0] <= int(ms)):
                    latest[day] = (int(ms), price)
        except (ValueError, KeyError, TypeError, InvalidOperation) as exc:
            raise PriceApiError(f"{key}: unexpected answer ({type(exc).__name__})") from exc
        wanted = set(days)
        return {day: price for day, (_, price) in latest.items() if day in wanted}


def price_api_from_settings(settings: Any) -> PriceApi | None:
    """The price API configured by `PRICE_API_URL` (None when unset)."""
    url = getattr(settings, "price_api_url", "")
    if not url:
        return None
    ids = {}
    for part in getattr(settings, "price_api_ids", []):
        symbol, _, coin = part.partition("=")
        if symbol.strip() and coin.strip():
            ids[symbol.strip().upper()] = coin.strip()
    return PriceApi(
        url,
        api_key=getattr(settings, "price_api_key", ""),
        key_header=getattr(settings, "price_api_key_header", "x-cg-demo-api-key"),
        coin_ids=ids,
    )


def _as_date(value: object) -> date:
    """A date column as read through a plain connection (SQLite gives text)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def utc_date(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).date().isoformat()
