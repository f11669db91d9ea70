"""TronGrid's v1 account API as a source (issue 14), against the local server that answers as TronGrid documents
(`tests/support/tron_server.py`): paging with the `fingerprint` cursor, the `TRON-PRO-API-KEY` header, the frequency
limit and its suspension, 429/503 retries, error bodies, and rows that move no TRX or TRC-20."""

from __future__ import annotations

import pytest

from tests.support.tron_server import Fault, OtherRow, Trc20Transfer, TronServer, TrxTransfer
from tracing.chain.explorer import ExplorerAuthError, ExplorerRateLimit, ExplorerRateLimited, ExplorerResponseError
from tracing.chain.transfer import TransferKind
from tracing.chain.trongrid import KEY_HEADER, TronGridClient
from tracing.errors import InvalidAddress

ALICE = "TLCuBEirVzB6V4menLZKw1jfBTFMZbuKq7"
BOB = "TJmmqjb1DK9TTZbQXzRQ2AuA94z4gKAPFh"
CAROL = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"  # any valid T… address serves as a party here
T0 = 1_700_000_000_000


def tx(n: int) -> str:
    return f"{n:064x}"


def ledger(trc20: int, trx: int) -> list[Trc20Transfer | TrxTransfer | OtherRow]:
    """`trc20` USDT payments alice → bob (odd ones bob → alice), `trx` TRX payments alice → bob, one internal and
    one TRC-10 row of alice."""
    rows: list[Trc20Transfer | TrxTransfer | OtherRow] = []
    for i in range(trc20):
        src, dst = (ALICE, BOB) if i % 2 == 0 else (BOB, ALICE)
        rows.append(Trc20Transfer(tx(i + 1), 1_000 + i, T0 + i * 3_000, src, dst, (i + 1) * 10**6))
    for i in range(trx):
        rows.append(TrxTransfer(tx(10_000 + i), 5_000 + i, T0 + 10**7 + i * 3_000, ALICE, BOB, 5 * 10**6))
    rows.append(OtherRow(tx(20_000), 9_000, T0 + 2 * 10**7, ALICE, "internal"))
    rows.append(OtherRow(tx(20_001), 9_001, T0 + 2 * 10**7 + 3_000, ALICE, "TransferAssetContract"))
    return rows


def client(server: TronServer, **kwargs: object) -> TronGridClient:
    options: dict[str, object] = {"api_key": server.key, "backoff": 0.01, "limiter": ExplorerRateLimit(1_000)}
    options.update(kwargs)
    return TronGridClient(server.url, **options)  # type: ignore[arg-type]


async def test_a_long_history_comes_whole_over_fingerprint_pages() -> None:
    async with TronServer(ledger=ledger(trc20=450, trx=3), require_key=True) as server:
        async with client(server) as grid:
            history = await grid.transfers_of(ALICE)
        assert server.requests_to("trc20") == 3 and server.requests_to("transactions") == 2  # 450 = 200+200+50
        assert all(q["limit"] == "200" and q["order_by"] == "block_timestamp,asc" for _t, _p, q in server.grid_requests)
        assert all(q["only_confirmed"] == "true" for _t, _p, q in server.grid_requests)
    tokens = [t for t in history.transfers if t.kind is TransferKind.ERC20]
    assert len(tokens) == 450 and history.complete and history.requests == 5
    assert [t.value for t in tokens] == [(i + 1) * 10**6 for i in range(450)]  # oldest first, none twice
    first = tokens[0]
    assert (first.from_addr, first.to_addr, first.symbol, first.decimals, first.token) == (ALICE, BOB, "USDT", 6, CAROL)
    assert first.tx_hash == "0x" + tx(1) and first.position == "log:#1" and first.source == "trongrid"
    # alice sent the even ones, so their transactions (TriggerSmartContract) give their blocks; bob's do not
    assert first.block_number == 1_000 and tokens[1].block_number == 0
    trx = [t for t in history.transfers if t.kind is TransferKind.NATIVE]
    assert len(trx) == 3 and {(t.from_addr, t.to_addr, t.value, t.symbol) for t in trx} == {
        (ALICE, BOB, 5 * 10**6, "TRX")
    }
    notes = " | ".join(history.notes)
    assert "1 internal-transaction row(s) not used" in notes and "TransferAssetContract 1" in notes
    assert "225 TRC-20 transfer(s) without a block number" in notes


async def test_the_key_goes_in_its_header_and_a_wrong_one_is_refused_in_words() -> None:
    async with TronServer(ledger=ledger(trc20=1, trx=0), require_key=True) as server:
        async with client(server) as grid:
            assert grid._http.headers[KEY_HEADER] == server.key
            await grid.transfers_of(ALICE)
        async with client(server, api_key="wrong-key-123") as grid:
            with pytest.raises(ExplorerAuthError, match="ApiKey not exists; check TRON-PRO-API-KEY") as refused:
                await grid.transfers_of(ALICE)
            assert "wrong-key-123" not in str(refused.value)


async def test_the_frequency_limit_suspension_is_waited_out() -> None:
    """TronGrid's 403 "exceeds the frequency limit … suspended for 0.4s" on the first page: the client waits out
    the suspension it names (a request during it would be refused again) and goes on, the history complete."""
    async with TronServer(ledger=ledger(trc20=120, trx=0), penalty=0.4) as server:
        server.faults.append(Fault("suspend", "trc20"))
        async with client(server, page_size=50) as grid:
            history = await grid.transfers_of(ALICE)
        asked = [t for t, path, _q in server.grid_requests if path.endswith("/trc20")]
    assert len(asked) == 4 and asked[1] - asked[0] >= 0.4  # 3 pages, the first asked again after the suspension
    assert history.complete and len([t for t in history.transfers if t.kind is TransferKind.ERC20]) == 120


async def test_a_suspension_longer_than_allowed_fails_at_once_with_the_reason() -> None:
    async with TronServer(ledger=ledger(trc20=30, trx=0), frequency_limit=1, penalty=30) as server:
        async with client(server, page_size=10, max_retry_after=5) as grid:
            with pytest.raises(ExplorerRateLimited, match="asked to wait 30s"):
                await grid.transfers_of(ALICE)


async def test_429_and_503_are_retried_and_a_truncated_body_is_named() -> None:
    async with TronServer(ledger=ledger(trc20=3, trx=1)) as server:
        server.faults.extend([Fault("429", "trc20", retry_after="0"), Fault("503", "transactions")])
        async with client(server) as grid:
            history = await grid.transfers_of(ALICE)
        assert history.complete and len(history.transfers) == 4
        server.faults.append(Fault("truncated", "trc20"))
        async with client(server) as grid:
            with pytest.raises(ExplorerResponseError, match="not a JSON object"):
                await grid.transfers_of(ALICE)


async def test_only_tron_addresses_and_at_most_200_a_page() -> None:
    async with TronServer() as server:
        async with client(server) as grid:
            with pytest.raises(InvalidAddress):
                await grid.transfers_of("0x" + "ab" * 20)
            empty = await grid.transfers_of(BOB)
        assert empty.transfers == () and empty.complete
        with pytest.raises(ValueError):
            client(server, page_size=201)


async def test_a_history_past_the_row_cap_is_cut_and_says_where() -> None:
    async with TronServer(ledger=ledger(trc20=450, trx=0)) as server:
        async with client(server, max_rows=200) as grid:
            history = await grid.transfers_of(ALICE)
    assert not history.complete and len([t for t in history.transfers if t.kind is TransferKind.ERC20]) == 200
    assert (
        "TronGrid transactions/trc20: stopped after 200 rows (cap 200); later transfers of this address were not "
        "fetched"
    ) in history.cuts  # and /transactions (alice's 225 calls of the token) is cut the same way
    assert len(history.cuts) == 2
