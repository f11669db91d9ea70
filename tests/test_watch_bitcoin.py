"""Watching bitcoin addresses (issue 15): the net value a transaction moves to or from a watched address, and the
watcher following a real regtest node (tests/support/bitcoind.py) through a payment, a one-block reorg that drops
it (same height, so only the tip check sees it), its return in a later block, confirmations and a restart; a
reorg whose new branch holds the payment too; a chain that got shorter; a block whose spent outputs are unknown;
and /watch with a bitcoin address."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import select

from bot.app import App, build_app
from bot.backends.testing import TestBackend
from bot.render.alerts import AlertCard
from storage.db import Database
from storage.ops_models import IncidentRow, OutboxMessage
from storage.settings import Settings
from tests.support.bitcoind import BitcoinNode
from tests.support.fixtures import bitcoin_node  # noqa: F401
from tracing.chain.address import Family
from tracing.chain.btc_rpc import CoreRpcSource
from tracing.chain.config import ChainConfig, load_chains
from tracing.chain.mappers import BlockCoverage, BlockTransfers, InternalSource
from tracing.chain.rpc import ChainIdMismatch
from tracing.chain.transfer import Direction, TransferKind
from tracing.chain.utxo import Outpoint, TxInput, TxOutput, UtxoTx
from tracing.chain.utxo_mappers import UtxoBlock
from tracing.errors import SourceError
from tracing.monitor.alerts import Alert, AlertBook, AlertStatus
from tracing.monitor.clock import ManualClock
from tracing.monitor.utxo_watch import net_match, utxo_matches
from tracing.monitor.watch import COINBASE, WatchBook, WatchMatcher, needs_risk
from tracing.monitor.watcher import ChainFeed, Step, Watcher

BTC = 100_000_000
W = "mvqWXdcsr5JFTvQg6tJ5Jju14ZfNBUmwCe"
X = "mohkJ4MSojCdzESThvQnbHHxGXrtMFxcbz"
Y = "mtj7nwXmouetKHLthdH5SKLbMxV2e1JAfA"
CHAT = "-1001"


def regtest_chain(node: BitcoinNode, confirmations: int = 2) -> ChainConfig:
    return ChainConfig(
        "btcreg", None, "BTC", (node.url,), confirmations=confirmations, decimals=8, family=Family.BTC,
        network="regtest",
    )  # fmt: skip


def block_of(*txs: UtxoTx) -> UtxoBlock:
    return UtxoBlock("btcreg", 7, "ab" * 32, "cd" * 32, 1_700_000_000, txs)


def tx(inputs: list[tuple[str | None, int]], outputs: list[tuple[str | None, int]]) -> UtxoTx:
    return UtxoTx(
        "btcreg",
        "ef" * 32,
        tuple(TxInput(Outpoint("01" * 32, k), address, value) for k, (address, value) in enumerate(inputs)),
        tuple(TxOutput(n, value, address, "pubkeyhash") for n, (address, value) in enumerate(outputs)),
    )


# -- what a transaction does to a watched address -----------------------------------------------------------


def test_a_payment_is_received_from_the_largest_payer_with_the_others_counted() -> None:
    match = net_match(tx([(X, 2 * BTC), (Y, 5 * BTC)], [(W, 6 * BTC), (X, BTC - 1000)]), W, block_of())
    assert match is not None
    assert match.direction is Direction.IN and match.transfer.value == 6 * BTC
    assert (match.transfer.from_addr, match.transfer.to_addr) == (Y, W)
    assert match.counterparties == (Y, X)
    assert match.transfer.amount() == Decimal(6) and match.transfer.symbol == "BTC"


def test_a_spend_with_change_is_sent_net_of_the_change_fee_included() -> None:
    match = net_match(tx([(W, 10 * BTC)], [(X, 3 * BTC), (W, 7 * BTC - 500)]), W, block_of())
    assert match is not None
    assert match.direction is Direction.OUT and match.transfer.value == 3 * BTC + 500
    assert (match.transfer.from_addr, match.transfer.to_addr) == (W, X)


def test_paying_itself_back_in_full_is_a_move_to_itself_and_untouched_addresses_do_not_match() -> None:
    match = net_match(tx([(W, BTC), (X, BTC)], [(W, BTC), (Y, BTC - 300)]), W, block_of())
    assert match is not None and match.direction is Direction.SELF and match.transfer.value == BTC
    consolidation = net_match(tx([(W, BTC), (W, 2 * BTC)], [(W, 3 * BTC - 400)]), W, block_of())
    assert consolidation is not None and consolidation.direction is Direction.SELF
    assert consolidation.transfer.value == 3 * BTC - 400 and consolidation.transfer.to_addr == W
    assert net_match(tx([(X, BTC)], [(Y, BTC)]), W, block_of()) is None


def test_mined_coins_come_from_the_coinbase_which_has_no_risk_to_ask() -> None:
    coinbase = UtxoTx("btcreg", "aa" * 32, (TxInput(None),), (TxOutput(0, 50 * BTC, W, "pubkeyhash"),))
    match = net_match(coinbase, W, block_of())
    assert match is not None and match.direction is Direction.IN and match.transfer.from_addr == COINBASE
    assert needs_risk(match.transfer, W) is None


def test_only_watched_addresses_of_the_chain_match_one_match_per_transaction() -> None:
    matcher = WatchMatcher()
    matcher.add("btcreg", W)
    matcher.add("btc", X)  # another chain
    block = block_of(tx([(W, 2 * BTC)], [(X, BTC), (W, BTC - 100)]), tx([(X, BTC)], [(Y, BTC)]))
    [match] = utxo_matches(matcher, block)
    assert match.address == W and match.direction is Direction.OUT and match.transfer.position == "net"
    assert match.transfer.kind is TransferKind.UTXO and match.transfer.block_number == 7


# -- following a regtest node -------------------------------------------------------------------------------


def alerts(db: Database) -> list[Alert]:
    return AlertBook(db).all(chain="btcreg")


async def test_a_payment_alerts_once_is_reorged_out_comes_back_and_confirms(
    db: Database,
    bitcoin_node: BitcoinNode,  # noqa: F811
) -> None:
    node = bitcoin_node
    watched = node.rpc("getnewaddress")
    WatchBook(db).watch(
        chain="btcreg", address=watched, platform="telegram", chat=CHAT, channel=True, created_by="telegram:7"
    )
    clock = ManualClock()
    source = CoreRpcSource(regtest_chain(node), backoff=0.01)
    try:
        await source.connect()
        assert source.network == "regtest"
        feed = ChainFeed("btcreg", source, confirmations=2, start_block=node.rpc("getblockcount"))
        watcher = Watcher(db, feed, clock=clock)
        txid = node.rpc("sendtoaddress", watched, Decimal("1.25"))
        node.wait_journal()
        [mined] = node.mine(1)
        assert await watcher.catch_up() == 2
        [alert] = alerts(db)
        assert (alert.tx_hash, alert.block_hash, alert.block_number) == (txid, mined, 102)
        assert alert.direction is Direction.IN and alert.value == 125_000_000 and alert.decimals == 8
        assert alert.symbol == "BTC" and alert.status is AlertStatus.PROVISIONAL and alert.counterparty
        assert alert.incident_id is not None

        # The block is replaced by one of the same height without the payment: the node keeps the payment in its
        # mempool, so its fee is lowered below the mining minimum for the replacement to leave it out.
        node.rpc("prioritisetransaction", txid, 0, -BTC)
        node.rpc("invalidateblock", mined)
        node.wait_journal(0)
        [replacement] = node.mine(1)
        assert txid not in node.rpc("getblock", replacement, 1)["tx"]
        assert await watcher.step() is Step.REORG
        assert await watcher.catch_up() == 1
        [alert] = alerts(db)
        assert alert.status is AlertStatus.REORGED_OUT and watcher.cursor() == (102, replacement)

        # A restarted watcher picks up at the stored cursor; the payment is mined again and its alert comes back.
        watcher = Watcher(db, feed, clock=clock)
        node.rpc("prioritisetransaction", txid, 0, BTC)
        node.wait_journal()
        [again] = node.mine(1)
        assert await watcher.catch_up() == 1
        [back] = alerts(db)
        assert back.id == alert.id and back.status is AlertStatus.PROVISIONAL
        assert (back.block_number, back.block_hash) == (103, again)

        node.mine(2)
        assert await watcher.catch_up() == 2
        [confirmed] = alerts(db)
        assert confirmed.status is AlertStatus.CONFIRMED
    finally:
        await source.aclose()
    with db.session() as session:
        assert len(session.scalars(select(IncidentRow)).all()) == 1
        posts = [m.kind for m in session.scalars(select(OutboxMessage)) if m.alert_id == alert.id]
    assert posts.count("alert") == 1 and posts.count("alert_edit") == 3  # reorged out, back, confirmed


async def test_a_payment_in_both_branches_of_a_reorg_stays_one_alert_on_the_new_block(
    db: Database,
    bitcoin_node: BitcoinNode,  # noqa: F811
) -> None:
    node = bitcoin_node
    watched = node.rpc("getnewaddress")
    WatchBook(db).watch(
        chain="btcreg", address=watched, platform="slack", chat="C1", channel=True, created_by="slack:U1"
    )
    source = CoreRpcSource(regtest_chain(node), backoff=0.01)
    try:
        watcher = Watcher(db, ChainFeed("btcreg", source, start_block=node.rpc("getblockcount")), clock=ManualClock())
        txid = node.rpc("sendtoaddress", watched, Decimal("0.5"))
        node.wait_journal()
        [first] = node.mine(1)
        await watcher.catch_up()
        node.rpc("invalidateblock", first)  # the ordinary bitcoin reorg: the competing branch mined it too
        node.wait_journal()
        other = node.mine(2)
        assert txid in node.rpc("getblock", other[0], 1)["tx"]
        await watcher.catch_up()
    finally:
        await source.aclose()
    [alert] = alerts(db)
    assert (alert.status, alert.block_hash, alert.block_number) == (AlertStatus.PROVISIONAL, other[0], 102)
    with db.session() as session:
        kinds = [m.kind for m in session.scalars(select(OutboxMessage)) if m.alert_id == alert.id]
    assert kinds == ["alert", "alert_edit", "alert_edit"]  # posted once; reorged out, then back in block 102


async def test_a_chain_that_got_shorter_reorgs_out_the_alert_before_any_new_block(
    db: Database,
    bitcoin_node: BitcoinNode,  # noqa: F811
) -> None:
    node = bitcoin_node
    watched = node.rpc("getnewaddress")
    WatchBook(db).watch(chain="btcreg", address=watched, platform="slack", chat="C1", channel=True, created_by="s:U1")
    source = CoreRpcSource(regtest_chain(node), backoff=0.01)
    try:
        watcher = Watcher(db, ChainFeed("btcreg", source, start_block=node.rpc("getblockcount")), clock=ManualClock())
        node.rpc("sendtoaddress", watched, Decimal("0.1"))
        node.wait_journal()
        [tip] = node.mine(1)
        await watcher.catch_up()
        node.rpc("invalidateblock", tip)
        assert node.rpc("getblockcount") == 101
        assert await watcher.step() is Step.REORG
        assert await watcher.step() is Step.IDLE
    finally:
        await source.aclose()
    [alert] = alerts(db)
    assert alert.status is AlertStatus.REORGED_OUT and watcher.cursor() == (101, node.rpc("getbestblockhash"))


async def test_a_spend_from_the_watched_address_alerts_what_it_sent(
    db: Database,
    bitcoin_node: BitcoinNode,  # noqa: F811
) -> None:
    node = bitcoin_node
    watched, payee = node.rpc("getnewaddress"), node.rpc("getnewaddress")
    funding = node.rpc("sendtoaddress", watched, Decimal("3"))
    node.wait_journal()
    node.mine(1)
    vout = next(o["n"] for o in node.rpc("getrawtransaction", funding, 1)["vout"] if o["value"] == Decimal("3"))
    raw = node.rpc(
        "createrawtransaction",
        [{"txid": funding, "vout": vout}],
        {payee: 1, watched: 1.9999},
    )
    spend = node.rpc("sendrawtransaction", node.rpc("signrawtransaction", raw)["hex"])
    WatchBook(db).watch(
        chain="btcreg", address=watched, platform="telegram", chat=CHAT, channel=True, created_by="telegram:7"
    )
    source = CoreRpcSource(regtest_chain(node), backoff=0.01)
    try:
        start = node.rpc("getblockcount") + 1
        node.wait_journal()
        node.mine(1)
        watcher = Watcher(db, ChainFeed("btcreg", source, confirmations=2, start_block=start), clock=ManualClock())
        assert await watcher.catch_up() == 1
    finally:
        await source.aclose()
    [alert] = alerts(db)
    assert alert.tx_hash == spend and alert.direction is Direction.OUT and alert.counterparty == payee
    assert alert.value == 100_010_000  # 1 BTC paid and the 0.0001 BTC fee
    assert f"Sent 1.0001 BTC (no USD price) to {payee} (bitcoin transaction)" in str(AlertCard(alert, None))
    crowd = replace(alert, details={"counterparties": [payee, W, X], "counterparty_count": 3})
    assert f"to {payee} and 2 other addresses (bitcoin transaction)" in str(AlertCard(crowd, None))


async def test_a_node_of_another_network_is_refused(bitcoin_node: BitcoinNode) -> None:  # noqa: F811
    mainnet = ChainConfig("btc", None, "BTC", (bitcoin_node.url,), decimals=8, family=Family.BTC, network="main")
    source = CoreRpcSource(mainnet, backoff=0.01)
    try:
        with pytest.raises(ChainIdMismatch, match="regtest.*BTC_NETWORK"):
            await source.connect()
    finally:
        await source.aclose()


# -- /watch with a bitcoin address --------------------------------------------------------------------------


@pytest.fixture
def btc_app(tmp_path: Path, prepared_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    """A deployment with one regtest chain `btcreg` (CHAINS=eth,btcreg; BTCREG_FAMILY=btc; no RPC URL yet)."""
    monkeypatch.setenv("BTCREG_FAMILY", "btc")
    monkeypatch.setenv("BTCREG_NETWORK", "regtest")
    monkeypatch.delenv("BTCREG_RPC_URL", raising=False)
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", demo_data=False, chains="eth,btcreg")  # type: ignore[call-arg]
    the_app = build_app(settings, database_url=prepared_database_url)
    yield the_app
    the_app.close()


async def test_watch_takes_the_bitcoin_chain_from_the_address_and_says_when_nothing_follows_it(
    btc_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    console = TestBackend(btc_app.bot)
    unset = await console.say(f"/watch {W} --channel")
    assert f"Now watching {W} on btcreg" in unset.text
    assert "BTCREG_RPC_URL is not set, so no alert can come" in unset.text
    assert load_chains(btc_app.settings.chain_variables())["btcreg"].confirmations == 6  # bitcoin's depth
    monkeypatch.setenv("BTCREG_RPC_URL", "http://127.0.0.1:1")
    never = await console.say(f"/watch {W} --channel --min 0.5")
    assert "No watcher has followed btcreg yet" in never.text and "at least 0.5" in never.text
    [watch] = WatchBook(btc_app.db).for_chats("console", [console.chat_id])
    assert (watch.chain, watch.address, watch.min_amount) == ("btcreg", W, Decimal("0.5"))
    mainnet = await console.say("/watch 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2")
    assert "No bitcoin (mainnet) chain is configured" in mainnet.text


class OneBlock:
    """A bitcoin source whose block 8 has a transaction whose spent output the node could not give (no -txindex)."""

    def __init__(self) -> None:
        blind = tx([(W, BTC)], [(X, BTC)])
        blind = UtxoTx(blind.chain, blind.txid, (TxInput(Outpoint("02" * 32, 0)),), blind.outputs)
        self.blocks = {
            n: BlockTransfers(
                "btcreg", n, f"{n:064x}", f"{n - 1:064x}", 1_700_000_000, 1, (),
                BlockCoverage(internal=InternalSource.UTXO), utxo_txs=(blind,) if n == 8 else (),
            )
            for n in (7, 8)
        }  # fmt: skip

    async def head(self) -> int:
        return 8

    async def fetch_block(self, number: int, *, token_meta: bool = True) -> BlockTransfers:
        return self.blocks[number]


async def test_a_block_with_an_unknown_spent_output_is_retried_not_passed_over(db: Database) -> None:
    WatchBook(db).watch(chain="btcreg", address=W, platform="telegram", chat=CHAT, channel=True, created_by="t:7")
    watcher = Watcher(db, ChainFeed("btcreg", OneBlock(), start_block=7), clock=ManualClock())
    assert await watcher.step() is Step.BLOCK
    with pytest.raises(SourceError, match=r"block 8: 1 spent output\(s\) could not be read.*-txindex"):
        await watcher.step()
    assert watcher.cursor() == (7, f"{7:064x}")
