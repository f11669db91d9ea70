"""Column types the domain needs and SQL dialects disagree on.

`Uint256` keeps raw token amounts exact: NUMERIC(78,0) on PostgreSQL, a decimal string on SQLite (whose
INTEGER is 64-bit and whose NUMERIC silently becomes a float past that).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Integer, Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL ids may outgrow 32 bits.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Uint256(TypeDecorator[int]):
    impl = String(78)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(78, 0))
        return dialect.type_descriptor(String(78))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        number = int(value)
        if number < 0 or number >= 1 << 256:
            raise ValueError(f"value out of uint256 range: {number}")
        return Decimal(number) if dialect.name == "postgresql" else str(number)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return int(value)
