"""TRC-20 metadata and prices on TRON (issue 14): the bundled TRC-20 list by `T…` address (Base58 is case-sensitive:
never lower-cased), USDT-TRC20 at the $1 peg, and `tron:T…` price keys."""

from __future__ import annotations

import pytest

from tracing.chain.prices import STABLE_KEYS, parse_price_key, price_key
from tracing.chain.tokens import listed_token

USDT = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
BTT = "TAFjULxiVgT4qWk6UZwjqwZXTSaGaqnVp4"


def test_the_trc20_list_answers_by_t_address() -> None:
    usdt, btt = listed_token("tron", USDT), listed_token("tron", BTT)
    assert usdt is not None and (usdt.symbol, usdt.decimals) == ("USDT", 6)
    assert btt is not None and (btt.symbol, btt.decimals) == ("BTT", 18)
    assert listed_token("tron", USDT.lower()) is None  # another string, not another spelling
    assert listed_token("eth", USDT) is None


def test_usdt_on_tron_is_pegged_and_other_trc20_keys_keep_their_case() -> None:
    assert price_key("tron", USDT) == "USDT" and "USDT" in STABLE_KEYS
    assert price_key("tron", BTT) == f"tron:{BTT}"
    assert price_key("tron", None) == "TRX"
    assert parse_price_key(f"tron:{BTT}") == f"tron:{BTT}"
    with pytest.raises(ValueError):
        parse_price_key("tron:TNotAnAddress")
