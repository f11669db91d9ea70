"""End to end on bitcoin (issue 15): a real regtest node, `run_watch` (the watcher and the notifier for real) and
the recording chat servers of tests/test_watch_e2e.py. A watched regtest address receives coins: the alert reaches
Telegram and Slack once each, in BTC with its USD on the day; the block is replaced by one without the payment
(`invalidateblock`, the payment's fee lowered below the mining minimum so the replacement leaves it out): the
alert is edited to "reorged out" on both."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal

import pytest

from bot.app import App, build_app
from bot.cli.watch import run_watch
from storage.settings import Settings
from tests.support.bitcoind import BitcoinNode
from tests.support.fixtures import bitcoin_node  # noqa: F401
from tests.support.slack_server import ApiCall
from tests.support.telegram_server import Call
from tests.test_watch_e2e import SLACK_CHAT, TG_CHAT, Chats, chats, text_of  # noqa: F401
from tracing.chain.config import load_chains
from tracing.chain.prices import PriceBook, day_of
from tracing.monitor.watch import WatchBook

BTC = 100_000_000


@pytest.fixture
def app(
    settings: Settings,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    bitcoin_node: BitcoinNode,  # noqa: F811
) -> Iterator[App]:
    """The app of a deployment that follows a regtest chain `btcreg` (CHAINS=btcreg, BTCREG_*)."""
    monkeypatch.setenv("BTCREG_FAMILY", "btc")
    monkeypatch.setenv("BTCREG_NETWORK", "regtest")
    monkeypatch.setenv("BTCREG_RPC_URL", bitcoin_node.url)
    the_app = build_app(settings.model_copy(update={"chains": "btcreg"}), database_url=database_url)
    yield the_app
    the_app.close()


async def test_a_regtest_payment_alerts_on_telegram_and_slack_and_a_reorg_edits_it_to_reorged_out(
    app: App,
    bitcoin_node: BitcoinNode,  # noqa: F811
    chats: Chats,  # noqa: F811
) -> None:
    node = bitcoin_node
    chain = load_chains(app.settings.chain_variables())["btcreg"]
    assert chain.confirmations == 6
    watched = node.rpc("getnewaddress")
    for platform, chat in (("telegram", TG_CHAT), ("slack", SLACK_CHAT)):
        WatchBook(app.db).watch(
            chain="btcreg", address=watched, platform=platform, chat=chat, channel=True, created_by=f"{platform}:1"
        )
    start = node.rpc("getblockcount")
    PriceBook(app.db).store([("BTC", day_of(node.rpc("getblockheader", node.rpc("getbestblockhash"))["time"]),
                              Decimal("40000"))], "test")  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_watch(app, [chain], stop, backends=chats.backends(), poll_interval=0.1, start_block=start)
    )
    try:
        txid = node.rpc("sendtoaddress", watched, Decimal("0.75"))
        node.wait_journal()
        [mined] = node.mine(1)
        [posted] = await chats.telegram.wait_for("sendMessage", lambda c: txid in text_of(c), within=60)
        [slack_post] = await chats.slack.wait_for("chat.postMessage", lambda c: txid in c.text, within=60)

        node.rpc("prioritisetransaction", txid, 0, -BTC)
        node.rpc("invalidateblock", mined)
        node.wait_journal(0)
        [replacement] = node.mine(1)
        assert txid not in node.rpc("getblock", replacement, 1)["tx"]

        def edits_post(call: Call) -> bool:
            return str(call.params.get("message_id")) == str(posted.result["message_id"])

        def edits_slack_post(call: ApiCall) -> bool:
            return call.params.get("ts") == slack_post.result["ts"] and "reorged out" in call.text

        [tg_edit] = await chats.telegram.wait_for(
            "editMessageText", lambda c: edits_post(c) and "reorged out" in text_of(c), within=60
        )
        [slack_edit] = await chats.slack.wait_for("chat.update", edits_slack_post, within=60)
        await asyncio.sleep(1.0)  # anything extra would show up now
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)

    received = "Received 0.75 BTC ($30,000) from"
    assert received in text_of(posted) and "(bitcoin transaction)" in text_of(posted)
    assert f"in block {start + 1}" in text_of(posted) and "provisional" in text_of(posted)
    assert received in slack_post.text and watched in slack_post.text
    assert str(posted.params["chat_id"]) == TG_CHAT and slack_post.params["channel"] == SLACK_CHAT
    assert txid in text_of(tg_edit) and txid in slack_edit.text
    assert len(chats.posts()) == 1 and len(chats.slack.sent("chat.postMessage")) == 1  # the reorg is an edit
