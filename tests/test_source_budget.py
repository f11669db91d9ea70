"""A command that needs an unreachable block explorer answers within its budget (EXPLORER_BUDGET) and names the
explorer as failed in the report's coverage, instead of waiting out the client's retries and saying "sources: labels".
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from bot.app import build_app
from bot.backends.testing import TestBackend
from storage.db import Database
from storage.settings import Settings
from tests.support.fake_chain import FakeChain, move
from tests.support.hanging_server import HangingServer
from tracing.chain.config import ChainConfig
from tracing.chain.explorer import ExplorerClient
from tracing.chain.guard import GuardedExplorer, SourceUnreachable
from tracing.chain.index import TransferIndex
from tracing.chain.rpc import RpcSource
from tracing.chain.tokens import TokenBook
from tracing.chain.transfer import TransferKind
from tracing.investigator import Investigator

BUDGET = 1.0
ADDRESS = "0x" + "ab" * 20


def closed_port_url() -> str:
    """A loopback URL nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/api"


async def risk_reply(url: str, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, float]:
    monkeypatch.setenv("CHAINS", "eth")
    monkeypatch.setenv("ETH_EXPLORER_URL", url)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=tmp_path / "data", demo_data=False, explorer_budget=BUDGET
    )
    app = build_app(settings, database_url=database_url)
    try:
        # The first command of a process loads the label cache (~1 s here): done first, so that only the
        # explorer's share is timed.
        app.investigator.label_cache.for_addresses([ADDRESS], "eth")
        app.investigator.label_sets()
        started = time.monotonic()
        reply = await TestBackend(app.bot).say(f"/risk {ADDRESS}")
        return reply.text, time.monotonic() - started
    finally:
        app.close()


async def test_a_hanging_explorer_fails_risk_fast_and_is_named_in_coverage(
    tmp_path: Path, prepared_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hanging = HangingServer()
    async with hanging.running() as url:
        text, elapsed = await risk_reply(url + "/api", tmp_path, prepared_database_url, monkeypatch)
    assert hanging.connections >= 1
    assert elapsed < 3 * BUDGET, f"/risk took {elapsed:.1f}s with a {BUDGET}s explorer budget"
    port = url.rsplit(":", 1)[1]
    assert f"explorer 127.0.0.1:{port} FAILED (no answer within 1 s)" in text, text
    assert "source error at" in text  # the gap says which address the failed source was asked about


async def test_an_unreachable_explorer_fails_risk_fast_and_is_named_in_coverage(
    tmp_path: Path, prepared_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = closed_port_url()
    text, elapsed = await risk_reply(url, tmp_path, prepared_database_url, monkeypatch)
    assert elapsed < 3 * BUDGET, f"/risk took {elapsed:.1f}s with a {BUDGET}s explorer budget"
    assert "explorer 127.0.0.1:" in text and "FAILED" in text, text


class SlowExplorer:
    base_url = "https://explorer.example/api?apikey=SECRET"

    def __init__(self) -> None:
        self.calls = 0

    async def transfers_of(self, address: str) -> object:
        import asyncio

        self.calls += 1
        await asyncio.sleep(60)
        raise AssertionError("not reached")


async def test_a_guard_rests_a_source_after_it_timed_out_and_keeps_keys_out_of_its_name() -> None:
    now = [0.0]
    client = SlowExplorer()
    guard = GuardedExplorer(client, budget=0.05, down_for=60, clock=lambda: now[0])
    assert guard.name == "explorer explorer.example"
    with pytest.raises(SourceUnreachable, match="no answer within 0.05 s"):
        await guard.transfers_of(ADDRESS)
    now[0] = 30.0
    with pytest.raises(SourceUnreachable, match="not asked again"):
        await guard.transfers_of(ADDRESS)
    assert client.calls == 1 and guard.failed_since(30.0) is not None
    now[0] = 61.0
    with pytest.raises(SourceUnreachable, match="no answer within"):
        await guard.transfers_of(ADDRESS)
    assert client.calls == 2


async def test_a_hanging_rpc_node_does_not_hold_a_report_for_token_metadata(db: Database) -> None:
    """The RPC node reads symbol() and decimals() of tokens nothing else knows; hanging, it costs one budget and is
    named in the coverage, and the tokens are not cached as having no metadata."""
    chain = FakeChain()
    token = "0x" + "70" * 20
    chain.mine(move(ADDRESS, "0x" + "cd" * 20, 5 * 10**6, kind=TransferKind.ERC20, position="log:0", token=token))
    TransferIndex(db).add(t for block in chain.blocks for t in block.transfers)
    hanging = HangingServer()
    async with hanging.running() as url:
        source = RpcSource(ChainConfig("eth", 1, "ETH", (url,)), timeout=30.0)
        investigator = Investigator(db, token_readers={"eth": source}, use_graph=False, explorer_budget=BUDGET)
        try:
            started = time.monotonic()
            report = await investigator.risk(ADDRESS, "eth")
            elapsed = time.monotonic() - started
        finally:
            await source.client.aclose()
    assert hanging.connections >= 1
    assert elapsed < 3 * BUDGET, f"/risk took {elapsed:.1f}s with a {BUDGET}s budget"
    port = url.rsplit(":", 1)[1]
    assert f"rpc node http://127.0.0.1:{port} FAILED (no answer within 1 s)" in " ".join(report.coverage.sources)
    assert any("token metadata not read from the chain" in gap for gap in report.coverage.gaps)
    assert TokenBook(db).known("eth", {token}) == {}  # asked again next time, not remembered as blank


async def test_a_traced_report_names_the_explorer_that_failed_for_an_address_beyond_the_index(db: Database) -> None:
    chain = FakeChain()
    beyond = "0x" + "ef" * 20  # in no indexed transfer but this one: its onward flows are asked of the explorer
    chain.mine(move(ADDRESS, beyond))
    TransferIndex(db).add(t for block in chain.blocks for t in block.transfers)
    hanging = HangingServer()
    async with hanging.running() as url:
        client = ExplorerClient(url + "/api", chain="eth")
        investigator = Investigator(db, explorers={"eth": client}, use_graph=False, explorer_budget=BUDGET)
        try:
            started = time.monotonic()
            report = await investigator.risk(ADDRESS, "eth")
            elapsed = time.monotonic() - started
        finally:
            await client.aclose()
    assert elapsed < 3 * BUDGET, f"/risk took {elapsed:.1f}s with a {BUDGET}s budget"
    assert report.coverage.traced
    assert any(s.startswith("explorer 127.0.0.1:") and "FAILED" in s for s in report.coverage.sources)
    assert any(f"source error at {beyond}: explorer 127.0.0.1:" in gap for gap in report.coverage.gaps)
