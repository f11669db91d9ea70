"""Risk on a real chain: after indexing an anvil scenario, an account that took part has a traced report, and a
fresh anvil account that never moved funds is "unknown" — never clean."""

from __future__ import annotations

import secrets

import pytest

from bot.app import App
from bot.backends.testing import TestBackend
from tests.support.anvil import AnvilNode, build_scenario
from tests.support.fixtures import anvil  # noqa: F401
from tracing.chain.config import ChainConfig
from tracing.chain.index import TransferIndex
from tracing.chain.indexer import Indexer
from tracing.chain.rpc import RpcSource
from tracing.risk.report import Level


async def test_fresh_anvil_account_is_unknown_and_a_scenario_account_is_traced(
    anvil: AnvilNode,  # noqa: F811
    app: App,
    bot: TestBackend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario = build_scenario(anvil)
    async with RpcSource(ChainConfig("anv", None, "ETH", (anvil.url,))) as source:
        await source.connect()
        report = await Indexer(TransferIndex(app.db), source, "anv").run(scenario.first_block, scenario.last_block)
    assert report.transfers_added == len(scenario.expected)

    fresh = "0x" + secrets.token_hex(20)
    anvil.rpc.set_balance(fresh, 5 * 10**18)  # a funded account that never moved anything
    assert anvil.rpc.get_balance(fresh, "latest") == 5 * 10**18
    unknown = await app.investigator.risk(fresh, "anv")
    assert unknown.level is Level.UNKNOWN and not unknown.exposures
    monkeypatch.setenv("ANV_RPC_URL", anvil.url)
    app.settings.chains = "eth,anv"  # the chat refuses chains that are not configured
    reply = await bot.say(f"/risk {fresh} --chain anv")
    assert "UNKNOWN" in reply.text and "clean" not in reply.text.lower().replace("not clean", "")

    sender = scenario.accounts["alice"]
    traced = await app.investigator.risk(sender, "anv")
    assert traced.coverage.traced and "anv" in traced.coverage.chains
