"""Amounts as an investigator reads them: units with the symbol and the USD value on the transfer's day.

`amount_text` is the one wording every reply, file and picture uses: "4.98 USDC ($4.98)", "1.5 ETH (no USD
price)", "4977122 raw units of token 0xA0b8… (no USD price)". `Valuation` is what turns (asset, raw value,
timestamp) of one chain into that: token metadata and the daily price table, loaded once per answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from tracing.chain.address import canonical, checksum
from tracing.chain.prices import (
    DAY,
    EMPTY,
    RENAMED,
    STABLE_KEYS,
    PriceTable,
    day_of,
    native_decimals,
    native_price_key,
    price_key,
)
from tracing.chain.tokens import TokenInfo, listed_token
from tracing.chain.transfer import format_amount

NO_USD = "no USD price"
NATIVE_DECIMALS = 18


def usd_text(usd: Decimal) -> str:
    """`$4.98`, `$12,345`, `<$0.01`."""
    if usd == 0:
        return "$0"
    if abs(usd) < Decimal("0.01"):
        return "<$0.01"
    if abs(usd) >= 1000:
        return f"${usd:,.0f}"
    return f"${usd:,.2f}"


def amount_text(
    value: int,
    token: str | None,
    decimals: int | None,
    symbol: str | None,
    usd: Decimal | None,
    *,
    native_symbol: str = "ETH",
    usd_partial: bool = False,
) -> str:
    """One amount in units and USD. `usd` None: no price (or unknown decimals); `usd_partial`: `usd` covers only
    the transfers that had a price on their day, so it is a lower bound and says so."""
    if token is None:
        units = format_amount(value, decimals if decimals is not None else NATIVE_DECIMALS, symbol or native_symbol)
    elif decimals is None or symbol is None:
        units = format_amount(value, decimals, symbol) + f" of token {checksum(token)}"
    else:
        units = format_amount(value, decimals, symbol)
    if usd is None:
        return f"{units} ({NO_USD})"
    if usd_partial:
        return f"{units} (at least {usd_text(usd)}; {NO_USD} on some days)"
    return f"{units} ({usd_text(usd)})"


@dataclass
class UsdSum:
    """USD summed over transfers of one asset: `usd` of the priced ones, and whether some had no price."""

    usd: Decimal | None = None
    unpriced: bool = False

    def add(self, usd: Decimal | None) -> None:
        if usd is None:
            self.unpriced = True
        else:
            self.usd = usd if self.usd is None else self.usd + usd

    @property
    def partial(self) -> bool:
        return self.unpriced and self.usd is not None


@dataclass(frozen=True)
class Valuation:
    """Units and USD for one chain's assets: token metadata (`tokens`, by lower-case address) over what the
    transfers carried, and the daily price table. Build it once per answer (`Investigator.valuation`)."""

    chain: str
    tokens: Mapping[str, TokenInfo] = field(default_factory=dict)
    prices: PriceTable = EMPTY
    native_symbol: str = ""
    _per_raw: dict[tuple[str | None, int | None, int], Decimal | None] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def native(self) -> str:
        return self.native_symbol or native_price_key(self.chain)

    def meta(
        self, token: str | None, decimals: int | None = None, symbol: str | None = None
    ) -> tuple[int | None, str | None]:
        """(decimals, symbol) of an asset: the native coin's, else what the transfer said, completed from the
        token metadata."""
        if token is None:
            return native_decimals(self.chain), self.native
        info = self.tokens.get(canonical(token)) or listed_token(self.chain, token)
        if info is not None:
            decimals = decimals if decimals is not None else info.decimals
            symbol = symbol or info.symbol
        return decimals, symbol

    def unit_price(self, token: str | None, timestamp: int) -> Decimal | None:
        """USD per whole unit of the asset on the transfer's UTC day."""
        return self.prices.price(price_key(self.chain, token), day_of(timestamp))

    def usd(self, token: str | None, value: int, timestamp: int, decimals: int | None = None) -> Decimal | None:
        """The USD value of `value` raw units at the transfer's time; None without a price or known decimals."""
        decimals, _ = self.meta(token, decimals)
        if decimals is None:
            return None
        price = self.unit_price(token, timestamp)
        if price is None:
            return None
        return Decimal(value).scaleb(-decimals) * price

    def per_raw(self, token: str | None, decimals: int | None, day: int) -> Decimal | None:
        """USD per raw unit of the asset on a UTC day (looked up once per asset, decimals and day)."""
        key = (token, decimals, day)
        if key not in self._per_raw:
            self._per_raw[key] = self.usd(token, 1, day * DAY, decimals)
        return self._per_raw[key]

    def text(
        self,
        token: str | None,
        value: int,
        usd: Decimal | None,
        *,
        decimals: int | None = None,
        symbol: str | None = None,
        usd_partial: bool = False,
    ) -> str:
        decimals, symbol = self.meta(token, decimals, symbol)
        return amount_text(value, token, decimals, symbol, usd, native_symbol=self.native, usd_partial=usd_partial)

    def lookup(self) -> UsdLookup:
        """The fast per-transfer USD lookup over this valuation (for the trace walk)."""
        return UsdLookup(self)

    def transfer_prices(self) -> TransferPrices:
        """The per-transfer USD the value-aware walk asks for its dust floor (see `TransferPrices`)."""
        return TransferPrices(self)

    def unknown_tokens(self, tokens: Mapping[str | None, tuple[int | None, str | None]]) -> list[str]:
        """Tokens among `tokens` (asset → (decimals, symbol) from the transfers) still without symbol or
        decimals."""
        return [
            t for t, (decimals, symbol) in tokens.items() if t is not None and None in self.meta(t, decimals, symbol)
        ]


class UsdLookup:
    """USD of raw amounts for hot loops (the trace walk's dust floor): per asset, a dict day → USD per raw unit,
    built once from the price table on first use of that asset; floats, no query per transfer.

    `decimals` given by the caller (what the transfer carried) win; else the token metadata, then the bundled list.
    """

    def __init__(self, valuation: Valuation) -> None:
        self.valuation = valuation
        self._per_raw: dict[tuple[str | None, int | None], tuple[dict[int, float], float | None]] = {}

    def per_raw(self, token: str | None, decimals: int | None = None) -> tuple[dict[int, float], float | None]:
        """(day → USD per raw unit, the USD per raw unit on days without a stored price: the peg or None)."""
        cached = self._per_raw.get((token, decimals))
        if cached is not None:
            return cached
        if token is not None and decimals is None:
            decimals = self.valuation.meta(token)[0]
            if decimals is None:
                listed = listed_token(self.valuation.chain, token)
                decimals = listed.decimals if listed is not None else None
        if token is None:
            decimals = native_decimals(self.valuation.chain)
        if decimals is None:
            found: tuple[dict[int, float], float | None] = ({}, None)
        else:
            key = price_key(self.valuation.chain, token)
            scale = 10.0**-decimals
            days = {day: usd * scale for day, usd in self.valuation.prices.daily(key).items()}
            if key in RENAMED:
                for day, usd in self.valuation.prices.daily(RENAMED[key]).items():
                    days.setdefault(day, usd * scale)
            found = (days, scale if key in STABLE_KEYS else None)
        self._per_raw[(token, decimals)] = found
        return found

    def usd(self, token: str | None, value: int, timestamp: int, decimals: int | None = None) -> float | None:
        """USD of `value` raw units on the transfer's UTC day, or None when no price (or no decimals) exists."""
        days, default = self.per_raw(token, decimals)
        per_raw = days.get(timestamp // 86_400, default)
        return None if per_raw is None else value * per_raw


class TransferPrices:
    """`usd(asset, decimals, symbol, timestamp, raw)`: USD of one transfer on its UTC day, as the value-aware walk
    asks it (the shape of `tracing.trace.value.UsdPrices`): stored prices by (asset, day) loaded once, stablecoins
    at their peg by contract address (never by symbol: anyone can name a token USDC), None where no price exists.
    `symbol` is not used for pricing."""

    def __init__(self, valuation: Valuation) -> None:
        self.valuation = valuation

    def usd(
        self, asset: str | None, decimals: int | None, symbol: str | None, timestamp: int, raw: int
    ) -> Decimal | None:
        per_raw = self.valuation.per_raw(asset, decimals, day_of(timestamp))
        return None if per_raw is None else per_raw * raw

    def never_priced(self, asset: str | None) -> bool:
        """Whether `usd` is None for the asset on every day (the compiled walk then stops asking day by day)."""
        return self.valuation.prices.never(price_key(self.valuation.chain, asset))
