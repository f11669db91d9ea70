"""`/risk` on bitcoin addresses end to end, through the Slack and Telegram recording servers: an OFAC-listed
address is SEVERE with its SDN entity and source, a ransomware payment address HIGH with its family and sources, and
without a bitcoin data source the reply says the answer is from labels only — never clean."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.backends.testing import TestBackend
from storage.settings import Settings
from tests.test_slack import Slack, slack  # noqa: F401
from tests.test_telegram import Telegram, telegram  # noqa: F401

GARANTEX = "3Lpoy53K625zVeE47ZasiG5jGkAxJ27kh1"  # OFAC XBT: GARANTEX EUROPE OU (CYBER4; RUSSIA-EO14024)
NETWALKER = "1C7FeXMf18mGrcF59DJTkmxnRfkKeG1KFZ"  # Showing the Receipts + GraphSense ransomwhere: Netwalker (Mailto)
UNKNOWN = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"  # the genesis block's, unlabelled here
NO_SOURCE = "No bitcoin data source is configured for chain btc (set BTC_RPC_URL"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("BTC_RPC_URL", "BTC_ESPLORA_URL", "BTC_EXPLORER_URL", "BTC_NETWORK"):
        monkeypatch.delenv(name, raising=False)
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        demo_data=False,
        chains="eth,btc",
        allowed_chats=["slack:C0ALLOWED", "telegram:-1001234"],
    )


async def test_risk_over_slack(slack: Slack) -> None:  # noqa: F811
    sanctioned = await slack.ask(f"risk {GARANTEX}")
    header = next(b for b in sanctioned.params["blocks"] if b["type"] == "header")
    assert "SEVERE" in header["text"]["text"] and "SANCTIONED" in header["text"]["text"]
    text = json.dumps(sanctioned.params["blocks"], ensure_ascii=False)
    assert "GARANTEX EUROPE OU" in text and "ofac-sdn" in text and "RUSSIA-EO14024" in text
    assert "https://sanctionssearch.ofac.treas.gov/Details.aspx?id=36025" in text
    assert NO_SOURCE in text and "labels only" in text
    ransom = await slack.ask(f"risk {NETWALKER}")
    header = next(b for b in ransom.params["blocks"] if b["type"] == "header")
    assert "HIGH" in header["text"]["text"] and "SANCTIONED" not in header["text"]["text"]
    text = json.dumps(ransom.params["blocks"], ensure_ascii=False)
    assert "Netwalker (Mailto)" in text and "tagpack:ransomwhere-tag-pack" in text and "https://ransomwhe.re/" in text
    assert "ransomware-receipts" in text and "https://arxiv.org/abs/2408.15420" in text
    assert NO_SOURCE in text


async def test_risk_over_telegram(telegram: Telegram) -> None:  # noqa: F811
    sanctioned = "\n".join(c.params["text"] for c in await telegram.say(f"/risk {GARANTEX}"))
    assert "SEVERE" in sanctioned and "SANCTIONED" in sanctioned
    assert "GARANTEX EUROPE OU" in sanctioned and "ofac-sdn" in sanctioned and "CYBER4" in sanctioned
    assert '<a href="https://sanctionssearch.ofac.treas.gov/Details.aspx?id=36025"' in sanctioned
    assert NO_SOURCE in sanctioned
    ransom = "\n".join(c.params["text"] for c in await telegram.say(f"/risk {NETWALKER}"))
    assert "HIGH" in ransom and "SANCTIONED" not in ransom
    assert "Netwalker (Mailto)" in ransom and "tagpack:ransomwhere-tag-pack" in ransom
    assert '<a href="https://ransomwhe.re/"' in ransom and "ransomware-receipts" in ransom


async def test_an_unlabelled_bitcoin_address_without_data_is_unknown_not_clean(bot: TestBackend) -> None:
    reply = (await bot.say(f"/risk {UNKNOWN}")).text
    assert "UNKNOWN" in reply and "Unknown is not clean" in reply and NO_SOURCE in reply and "labels only" in reply


async def test_a_bitcoin_trace_without_data_says_what_it_could_not_see(bot: TestBackend) -> None:
    reply = (await bot.say(f"/trace {NETWALKER} --heuristics default,cluster")).text
    assert "bitcoin heuristics: change, coinjoin, peel, cluster" in reply and NO_SOURCE in reply
    assert "the local index only" in reply
    assert "heuristic cluster: no stored transaction of the traced addresses, so nothing to cluster" in reply
