"""TRON end to end on both chat platforms' recording servers (Telegram's Bot API, Slack's Web API with signed slash
commands), with CHAINS including tron, the bundled labels and Tether's freezes, and no TRON chain data: `/risk` on an
OFAC-listed TRON address is severe with its SDN entity and source; on a frozen address it reports the freeze with
its block, date, transaction and source; on a lifted one, history; and each says that no TRON node was read."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import App
from bot.backends.testing import TestBackend
from storage.settings import Settings
from tests.support.chat_harness import running
from tests.support.slack_server import ApiCall, FakeSlack
from tests.support.telegram_server import FakeTelegram
from tests.test_slack import CHANNEL, Slack
from tests.test_telegram import Telegram
from tracing.chain import tron_from_hex
from tracing.labels import FreezeEvent, FreezeKind, record_freezes

GARANTEX = "TFwjPScaJRCbSWVAywE1S1WgaUgSnyYUbD"  # OFAC SDN: GARANTEX EUROPE OU (TRX), profile 36025
# Synthetic addresses and transactions: the freezes below are test events, not real Tether actions.
FROZEN = tron_from_hex("0x" + "5e" * 20)
LIFTED = tron_from_hex("0x" + "6f" * 20)
FREEZE_TX, BURN_TX, LIFT_TX = ("ab" * 32, "cd" * 32, "ef" * 32)
FROZEN_AT = 1_714_564_803  # 2024-05-01 12:00:03 UTC
NO_NODE = "No RPC URL or explorer is configured for chain tron (set TRON_RPC_URL)"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        demo_data=False,
        chains="eth,tron",
        allowed_chats=["telegram:-1001234", f"slack:{CHANNEL}"],
    )


@pytest.fixture
def freezes(app: App) -> None:
    record_freezes(
        app.investigator.labels,
        [
            FreezeEvent(FROZEN, FreezeKind.ADDED, 61_234_567, FREEZE_TX, FROZEN_AT),
            FreezeEvent(FROZEN, FreezeKind.DESTROYED, 61_234_999, BURN_TX, FROZEN_AT + 3600, amount=1_500_000_000),
            FreezeEvent(LIFTED, FreezeKind.ADDED, 60_000_000, FREEZE_TX, FROZEN_AT - 86400, log_index=1),
            FreezeEvent(LIFTED, FreezeKind.REMOVED, 62_000_000, LIFT_TX, FROZEN_AT + 30 * 86400),
        ],
    )


@pytest.fixture
async def telegram(app: App, freezes: None) -> AsyncIterator[Telegram]:
    async with running(FakeTelegram(), lambda server: Telegram(server, app)) as harness:
        yield harness


@pytest.fixture
async def slack(app: App, freezes: None) -> AsyncIterator[Slack]:
    async with running(FakeSlack(), lambda server: Slack(server, app)) as harness:
        yield harness


async def test_a_team_label_on_a_tron_address_is_found_on_tron(bot: TestBackend) -> None:
    saved = await bot.say(f'/label {LIFTED} scam "Fake USDT airdrop"')
    assert not saved.is_error, saved.text
    report = await bot.say(f"/risk {LIFTED}")
    assert "Scam/phishing: Fake USDT airdrop — team:" in report.text and "chain tron" in report.text
    assert "HIGH risk" in report.text.split("\n")[0]


async def telegram_text(telegram: Telegram, command: str) -> str:
    calls = await telegram.say(command)
    assert all(c.params["parse_mode"] == "HTML" for c in calls)
    return "\n".join(str(c.params["text"]) for c in calls)


async def test_telegram_risk_on_tron_addresses(telegram: Telegram) -> None:
    ofac = await telegram_text(telegram, f"/risk {GARANTEX}")
    assert ofac.startswith(f"<b>🔴 SEVERE risk (100/100) — SANCTIONED — {GARANTEX} on tron</b>")
    assert "GARANTEX EUROPE OU GARANTEX EUROPE OÜ — ofac-sdn" in ofac and "chain tron" in ofac
    assert '<a href="https://sanctionssearch.ofac.treas.gov/Details.aspx?id=36025">' in ofac
    assert NO_NODE in ofac

    frozen = await telegram_text(telegram, f"/risk {FROZEN}")
    assert frozen.startswith(f"<b>🟠 HIGH risk (85/100) — FROZEN — {FROZEN} on tron</b>")
    assert "Frozen by Tether (USDT-TRC20) — tether-blacklist" in frozen
    assert f"frozen at block 61,234,567 on 2024-05-01 12:00:03 UTC, tx {FREEZE_TX}" in frozen
    assert "DestroyedBlackFunds of 1,500 USDT at block 61,234,999" in frozen
    assert f'<a href="https://tronscan.org/#/transaction/{FREEZE_TX}">' in frozen
    assert "a strong signal, rated at least high" in frozen and NO_NODE in frozen

    lifted = await telegram_text(telegram, f"/risk {LIFTED}")
    first_line = lifted.split("\n")[0]
    assert "FROZEN" not in first_line and "HIGH" not in first_line
    assert f"lifted at block 62,000,000 on 2024-05-31 12:00:03 UTC, tx {LIFT_TX}" in lifted
    assert "history, not a current freeze" in lifted and "LIFTED 2024-05-31" in lifted


def slack_text(call: ApiCall) -> str:
    """Every block of a Slack message as one string, the characters as sent (not JSON-escaped)."""
    return json.dumps(call.params["blocks"], ensure_ascii=False)


async def test_slack_risk_on_tron_addresses(slack: Slack) -> None:
    ofac = await slack.ask(f"risk {GARANTEX}")
    header = next(b for b in ofac.params["blocks"] if b["type"] == "header")
    assert header["text"]["text"] == f"🔴 SEVERE risk (100/100) — SANCTIONED — {GARANTEX} on tron"
    text = slack_text(ofac)
    assert "GARANTEX EUROPE OU GARANTEX EUROPE OÜ — ofac-sdn" in text and "chain tron" in text
    assert "<https://sanctionssearch.ofac.treas.gov/Details.aspx?id=36025" in text
    assert NO_NODE in text

    frozen = await slack.ask(f"risk {FROZEN}")
    header = next(b for b in frozen.params["blocks"] if b["type"] == "header")
    assert header["text"]["text"] == f"🟠 HIGH risk (85/100) — FROZEN — {FROZEN} on tron"
    text = slack_text(frozen)
    assert "Frozen by Tether (USDT-TRC20) — tether-blacklist" in text
    assert f"frozen at block 61,234,567 on 2024-05-01 12:00:03 UTC, tx {FREEZE_TX}" in text
    assert f"<https://tronscan.org/#/transaction/{FREEZE_TX}" in text
    assert "rated at least high" in text and NO_NODE in text

    lifted = await slack.ask(f"risk {LIFTED}")
    header = next(b for b in lifted.params["blocks"] if b["type"] == "header")
    assert "FROZEN" not in header["text"]["text"]
    assert "history, not a current freeze" in slack_text(lifted)
