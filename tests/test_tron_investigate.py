"""/trace and /risk on TRON addresses (issue 14), the transfers read on demand from TronGrid (the local server of
`tests/support/tron_server.py`) because the index holds none: `T…` addresses throughout, USDT in units and USD, the
TRON gaps stated, and the cost of a 3-hop trace in TronGrid calls and seconds (printed, not asserted)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.backends.testing import TestBackend
from storage.settings import Settings
from tests.support.tron_server import Fault, Trc20Transfer, TronServer, TrxTransfer
from tracing.chain.transfer import Direction
from tracing.chain.tron import TRON_GAPS
from tracing.labels import Category, Label, LabelBook
from tracing.risk.outputs import risk_json, to_json_text, trace_json
from tracing.trace.params import TraceParams

USDT_UNIT = 10**6
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z, in ms as TronGrid writes it

# Real-looking, valid TRON addresses (checksums hold); their roles here are made up.
ROOT = "TLCuBEirVzB6V4menLZKw1jfBTFMZbuKq7"
SOURCE = "TJmmqjb1DK9TTZbQXzRQ2AuA94z4gKAPFh"
A = "TXLAQ63Xg1NAzckPwKHvzw7CSEmLMEqcdj"
B = "TNUC9Qb1rRpS5CbWLmNMxXBjyFoydXjWFR"
C = "TV6MuMXfmLbBqPZvBHdwFsDnQeVfnmiuSi"
D = "TYASr5UV6HEcXatwdFQfmLVUqQQQMUxHLS"


def flows() -> list[Trc20Transfer | TrxTransfer]:
    """source → root 10,000 USDT; root → A 6,000 and → B 3,000; A → C 5,900; C → D 5,800; root → B 40 TRX."""
    moves = [(SOURCE, ROOT, 10_000), (ROOT, A, 6_000), (ROOT, B, 3_000), (A, C, 5_900), (C, D, 5_800)]
    out: list[Trc20Transfer | TrxTransfer] = [
        Trc20Transfer(f"{i + 1:064x}", 60_000_000 + i, T0 + i * 3_600_000, src, dst, amount * USDT_UNIT)
        for i, (src, dst, amount) in enumerate(moves)
    ]
    out.append(TrxTransfer(f"{99:064x}", 60_000_010, T0 + 10 * 3_600_000, ROOT, B, 40 * USDT_UNIT))
    return out


@pytest.fixture
async def grid() -> AsyncIterator[TronServer]:
    async with TronServer(ledger=list(flows()), require_key=True) as server:
        yield server


@pytest.fixture
def tron_app(
    grid: TronServer, tmp_path: Path, prepared_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[App]:
    monkeypatch.setenv("TRON_API_URL", grid.url)
    monkeypatch.setenv("TRON_API_KEY", grid.key)
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", demo_data=False, chains="eth,tron")  # type: ignore[call-arg]
    the_app = build_app(settings, database_url=prepared_database_url)
    LabelBook(the_app.db).add(
        Label(address=D, category=Category.SANCTIONS, name="Test SDN on TRON", source="test", chain="tron")
    )
    yield the_app
    the_app.close()


async def test_trace_on_tron_follows_usdt_through_trongrid_with_t_addresses(tron_app: App, grid: TronServer) -> None:
    bot = TestBackend(tron_app.bot)
    reply = await bot.say(f"/trace {ROOT} --hops 3")
    text = reply.text
    assert f"from {ROOT} on tron" in text and "Reached 4 addresses through 5 transfers" in text, text
    assert "Test SDN on TRON" in text and "5,800.00 USDT ($5,800)" in text
    assert "sources: local index, trongrid" in text or "sources: trongrid, local index" in text
    for gap in TRON_GAPS:
        assert gap in text
    [csv] = [a for a in reply.reply.attachments if a.filename.endswith(".csv")]
    table = csv.content.decode()
    for address in (ROOT, A, B, C, D):
        assert address in table
    assert "USDT" in table and "tron" in table
    usdt_only = await bot.say(f"/trace {ROOT} --hops 1 --token TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t")
    assert "Reached 2 addresses" in usdt_only.text, usdt_only.text
    trx_only = await bot.say(f"/trace {ROOT} --hops 1 --token trx")
    assert "Reached 1 addresses through 1 transfers" in trx_only.text and "native coin only" in trx_only.text
    [trx_csv] = [a for a in trx_only.reply.attachments if a.filename.endswith(".csv")] if trx_only.reply else []
    assert B in trx_csv.content.decode() and A not in trx_csv.content.decode()
    assert grid.requests_to("trc20") >= 4  # root, A, B, C asked of TronGrid
    traced = await tron_app.investigator.trace(ROOT, "tron", TraceParams(Direction.OUT, 3))
    as_json = to_json_text(trace_json(traced))
    assert all(address in as_json for address in (ROOT, A, C, D)) and "TRC-10" in as_json
    # transaction ids as TRON shows them (64 hex, no 0x) in the CSV and the JSON
    c_to_d = f"{5:064x}"
    assert c_to_d in table and "0x" + c_to_d not in table
    edges = json.loads(as_json)["edges"]
    assert c_to_d in {edge["tx_hash"] for edge in edges} and not [e for e in edges if e["tx_hash"].startswith("0x")]


async def test_risk_on_tron_rates_the_path_to_a_sanctioned_address(tron_app: App) -> None:
    bot = TestBackend(tron_app.bot)
    reply = await bot.say(f"/risk {ROOT}")
    text = reply.text
    assert "Test SDN on TRON" in text and "USDT" in text, text
    assert "internal TRX transfers" in text
    report = await tron_app.investigator.risk(ROOT, "tron")
    assert set(TRON_GAPS) <= set(report.coverage.gaps)
    as_json = json.loads(to_json_text(risk_json(report)))
    assert as_json["address"] == ROOT and D in json.dumps(as_json) and "TRC-10" in json.dumps(as_json)
    path = f"{2:064x} → {4:064x} → {5:064x}"  # root → A → C → D, as Tronscan writes the ids
    assert path in text and "0x" + f"{2:064x}" not in text
    assert "0x" + f"{5:064x}" not in json.dumps(as_json) and f"{5:064x}" in json.dumps(as_json)


async def test_the_cost_of_a_3_hop_tron_trace(
    tmp_path: Path, prepared_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fan-out of 4 per address, 3 hops (1 + 4 + 16 + 64 addresses, 84 USDT transfers and their TRX fees
    elsewhere): every address's history is two TronGrid endpoints, asked through the default rate limit."""
    ledger: list[Trc20Transfer | TrxTransfer] = []
    from tracing.chain.address import tron_from_hex

    def addr(n: int) -> str:
        return tron_from_hex("0x" + f"{n:040x}")

    counter = 0
    frontier = [(addr(1), 1_000_000)]
    next_id = 2
    for _hop in range(3):
        following = []
        for holder, amount in frontier:
            for _k in range(4):
                counter += 1
                target = addr(next_id)
                next_id += 1
                share = amount // 4
                ledger.append(
                    Trc20Transfer(
                        f"{counter:064x}",
                        60_000_000 + counter,
                        T0 + counter * 60_000,
                        holder,
                        target,
                        share * USDT_UNIT,
                    )
                )
                following.append((target, share))
        frontier = following
    async with TronServer(ledger=list(ledger)) as server:
        monkeypatch.setenv("TRON_API_URL", server.url)
        monkeypatch.setenv("TRON_API_KEY", server.key)
        settings = Settings(_env_file=None, data_dir=tmp_path / "data", demo_data=False, chains="eth,tron")  # type: ignore[call-arg]
        app = build_app(settings, database_url=prepared_database_url)
        try:
            started = time.monotonic()
            trace = await app.investigator.trace(addr(1), "tron", TraceParams(Direction.OUT, 3))
            seconds = time.monotonic() - started
        finally:
            app.close()
        calls = len(server.grid_requests)
    reached = {n.address for n in trace.nodes} if hasattr(trace, "nodes") else set()
    print(
        json.dumps(
            {"tron_3_hop_trace": {"trongrid_calls": calls, "seconds": round(seconds, 2), "addresses": len(reached)}}
        )
    )
    assert calls >= 2 * (1 + 4 + 16)  # every address with outgoing funds was asked for both endpoints


async def test_a_trongrid_that_does_not_answer_is_named_failed_in_the_coverage(
    tmp_path: Path, prepared_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TronGrid answering 503 again and again: the trace answers within the budget and its coverage names TronGrid
    as FAILED, with the TRON gaps still stated; unknown is never clean."""
    async with TronServer(ledger=list(flows())) as server:
        server.faults.extend(Fault("503") for _ in range(50))
        monkeypatch.setenv("TRON_API_URL", server.url)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, data_dir=tmp_path / "data", demo_data=False, chains="eth,tron", explorer_budget=1.0
        )
        app = build_app(settings, database_url=prepared_database_url)
        try:
            started = time.monotonic()
            reply = await TestBackend(app.bot).say(f"/risk {ROOT}")
            took = time.monotonic() - started
        finally:
            app.close()
    assert took < 8
    text = reply.text
    assert "FAILED" in text and "TronGrid 127.0.0.1" in text, text
    assert "UNKNOWN risk" in text and "Unknown is not clean" in text
    assert TRON_GAPS[0] in text
