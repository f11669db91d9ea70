"""Amount thresholds as people type them: `10`, `0.5` (in the moved asset's units) or `$500`, `500 USD` (US
dollars). The one parser of amounts a user gives (`/trace --min-value`, `/watch --min`, the command line).

Plain decimals only: ASCII digits, an optional point, at most `MAX_INTEGER_DIGITS` before it and
`MAX_FRACTION_DIGITS` after it (the most any token has). No exponents (`1E-999999999` would mean "any movement"),
no signs, no `nan`/`inf`, no other scripts' digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from tracing.errors import InvalidArgument

MAX_INTEGER_DIGITS = 30
MAX_FRACTION_DIGITS = 18

_PLAIN = re.compile(rf"[0-9]{{1,{MAX_INTEGER_DIGITS}}}(?:\.[0-9]{{1,{MAX_FRACTION_DIGITS}}})?")
_USD_PREFIX = re.compile(r"^(?:us)?\$\s*", re.IGNORECASE)
_USD_SUFFIX = re.compile(r"\s*usd$", re.IGNORECASE)


def foreign_digits(text: str) -> bool:
    """True when the text holds a digit-like character other than ASCII 0–9 (`²`, `٣`, `３`, `½`)."""
    return any(not c.isascii() and (c.isdigit() or c.isnumeric()) for c in text)


def refuse_foreign_digits(text: str) -> None:
    if foreign_digits(text):
        raise InvalidArgument(f"“{text[:20]}” has digits other than 0–9; write numbers with the ASCII digits 0–9.")


@dataclass(frozen=True, slots=True)
class Threshold:
    """A minimum amount: in the asset's own units (`units`) or in US dollars (`usd`); exactly one is set."""

    units: Decimal | None = None
    usd: Decimal | None = None

    def __post_init__(self) -> None:
        if (self.units is None) == (self.usd is None):
            raise ValueError("a threshold is in units or in USD, not both or neither")

    @property
    def is_usd(self) -> bool:
        return self.usd is not None

    def __str__(self) -> str:
        return f"${self.usd}" if self.usd is not None else str(self.units)


def parse_threshold(text: str, *, positive: bool = True) -> Threshold:
    """`10`, `0.5` → units; `$500`, `US$500`, `500 USD`, `500usd` → US dollars. `positive`: zero is refused."""
    raw = text.strip()
    refuse_foreign_digits(raw)
    number = _USD_SUFFIX.sub("", _USD_PREFIX.sub("", raw, count=1), count=1)
    usd = number != raw
    if not _PLAIN.fullmatch(number):
        raise InvalidArgument(
            f"“{raw[:30]}” is not an amount; write a plain decimal like 10 or 0.5 (or $500 for US dollars)."
        )
    value = Decimal(number)
    if positive and value == 0:
        raise InvalidArgument("The minimum must be a positive amount.")
    return Threshold(usd=value) if usd else Threshold(units=value)
