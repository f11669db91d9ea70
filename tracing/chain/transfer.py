"""The `Transfer` domain object: one movement of value, native, ERC-20 or internal; and `Direction`, which way value
moves relative to an address (the one direction enum of trace, risk and monitor)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from tracing.errors import InvalidArgument


class Direction(StrEnum):
    """Which way value moves relative to an address: OUT (sent by it) or IN (received). SELF is a transfer from an
    address to itself, which only a watch alert records; a trace or an exposure is always OUT or IN. The values are
    stored (alert rows) and shown (JSON, `--direction`), so they never change."""

    OUT = "out"
    IN = "in"
    SELF = "self"

    @classmethod
    def ways(cls) -> tuple[Direction, Direction]:
        """The two directions a trace can take."""
        return (cls.OUT, cls.IN)

    @classmethod
    def parse(cls, text: str) -> Direction:
        """A direction to trace: out (forward) or in (backward)."""
        value = text.strip().lower()
        aliases = {"out": cls.OUT, "forward": cls.OUT, "in": cls.IN, "backward": cls.IN, "back": cls.IN}
        if value not in aliases:
            raise InvalidArgument(f"“{text[:20]}” is not one of the directions; use out or in.")
        return aliases[value]

    @property
    def adjective(self) -> str:
        """How reports word it: outgoing, incoming (or self)."""
        return {"out": "outgoing", "in": "incoming"}.get(self.value, self.value)

    @property
    def opposite(self) -> Direction:
        return {Direction.OUT: Direction.IN, Direction.IN: Direction.OUT}.get(self, self)


class TransferKind(StrEnum):
    NATIVE = "native"
    ERC20 = "erc20"
    INTERNAL = "internal"
    UTXO = "utxo"
    """A bitcoin transaction's value from an input address to an output address (`tracing.chain.utxo_transfers`)."""


@dataclass(frozen=True, slots=True)
class Transfer:
    """A value movement.

    `position` makes a transfer unique within its transaction: `tx` for the transaction's own value,
    `log:<index>` for an ERC-20 `Transfer` log, `trace:<a.b.c>` for an internal call at that trace address.
    `token` is None for native and internal (native-coin) transfers. `value` is the raw integer (wei, or token
    base units); `decimals`/`symbol` are filled when known.
    """

    chain: str
    block_number: int
    block_hash: str
    timestamp: int
    tx_hash: str
    kind: TransferKind
    position: str
    from_addr: str
    to_addr: str
    value: int
    token: str | None = None
    decimals: int | None = None
    symbol: str | None = None
    source: str = "rpc"

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.chain, self.tx_hash, self.kind.value, self.position)

    @property
    def asset(self) -> str:
        """A display key for the asset: the native symbol placeholder `native` or the token address."""
        return self.token or "native"

    def amount(self, native_decimals: int = 18) -> Decimal | None:
        """Human amount when the decimals are known."""
        decimals = native_decimals if self.token is None else self.decimals
        if decimals is None:
            return None
        return Decimal(self.value).scaleb(-decimals)


def format_amount(value: int, decimals: int | None, symbol: str | None) -> str:
    """`1.5 ETH`, `1,234.56 USDT`, `0.000000004269 ETH`, or `12345 raw units of 0x…` when decimals are unknown."""
    if decimals is None:
        return f"{value} raw units" + (f" {symbol}" if symbol else "")
    amount = Decimal(value).scaleb(-decimals)
    if amount == 0:
        text = "0"
    elif abs(amount) >= 1000:
        text = f"{amount:,.2f}"
    elif abs(amount) >= 1:
        text = f"{amount:,.4f}".rstrip("0").rstrip(".")
    else:
        text = f"{amount:.8f}".rstrip("0").rstrip(".")
        if text in ("0", "-0"):  # below 1e-8: every digit, as a plain decimal (never 4.269E-9)
            text = f"{amount.normalize():f}"
    return f"{text} {symbol}" if symbol else text
