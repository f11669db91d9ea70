"""Importing ethereum-etl CSV exports: the project's own expected outputs as input, then the ways real files go
wrong (cut, huge values, bad addresses, missing columns), then the `chainsleuth import transfers` command."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from storage.db import Database, open_database
from tests.conftest import shared_data
from tests.support.cli import run_cli
from tracing.chain.etl_import import EtlFileKind, RowError, import_etl_files
from tracing.chain.index import TransferIndex
from tracing.chain.transfer import TransferKind

FIXTURES = "ethereum-etl-rpc-fixtures"
TOKEN_HEADER = "token_address,from_address,to_address,value,transaction_hash,log_index,block_number\n"
TX_HEADER = (
    "hash,nonce,block_hash,block_number,transaction_index,from_address,to_address,value,gas,gas_price,input,"
    "block_timestamp,max_fee_per_gas,max_priority_fee_per_gas,transaction_type,receipt_status\n"
)
A, B, TOKEN = "0x" + "a1" * 20, "0x" + "b2" * 20, "0x" + "c3" * 20


def fixture(*parts: str) -> Path:
    return shared_data(FIXTURES, *parts)


def tx_hash(n: int) -> str:
    return "0x" + f"{n:064x}"


def tx_line(n: int, value: int | str, *, src: str = A, dst: str = B, block: int = 100, status: str = "1") -> str:
    timestamp = 1_700_000_000 + block
    return f"{tx_hash(n)},{n},0x{block:064x},{block},0,{src},{dst},{value},21000,1,0x,{timestamp},,,0,{status}\n"


def test_real_exports_import_whatever_the_argument_order(db: Database) -> None:
    tokens = fixture("test_export_token_transfers_job", "block_with_transfers", "expected_token_transfers.csv")
    txs = fixture("test_export_blocks_job", "block_with_logs", "expected_transactions.csv")
    blocks = fixture("test_export_blocks_job", "block_with_logs", "expected_blocks.csv")
    # token_transfers.csv has no block times: they come from blocks.csv / transactions.csv, read first anyway.
    result = import_etl_files(db, [tokens, txs, blocks])
    by_kind = {f.kind: f for f in result.files}
    assert [f.path for f in result.files] == [tokens, txs, blocks]
    assert by_kind[EtlFileKind.BLOCKS].blocks == 1
    transactions = by_kind[EtlFileKind.TRANSACTIONS]
    assert (transactions.rows_read, transactions.transfers_added, dict(transactions.skipped)) == (
        4,
        2,
        {"zero value": 2},
    )
    assert transactions.error_count == 0
    assert any("does not end with a line break" in note for note in transactions.notes)  # the fixture lacks one
    token_file = by_kind[EtlFileKind.TOKEN_TRANSFERS]
    assert (token_file.rows_read, token_file.transfers_added, token_file.error_count) == (2, 2, 0)

    index = TransferIndex(db)
    (received,) = index.for_address("0xac4df82fe37ea2187bc8c011a23d743b4f39019a")
    assert received.kind is TransferKind.ERC20 and received.position == "log:0" and received.value == 100000
    assert received.token == "0xf4eced2f682ce333f96f2d8966c613ded8fc95dd" and received.source == "etl"
    assert received.timestamp == 1446561880
    assert received.block_hash == "0x246edb4b351d93c27926f4649bcf6c24366e2a7c7c718dc9158eea20c03bc6ae"
    (sent,) = index.for_address("0x2a65aca4d5fc5b5c859090a6c34d164135398226")
    assert (sent.kind, sent.position, sent.value, sent.block_number) == (
        TransferKind.NATIVE,
        "tx",
        1530219620000000000,
        483920,
    )
    assert sent.to_addr == "0x743b8aeedc163c0e3a0fe9f3910d146c48e70da8"

    again = import_etl_files(db, [tokens, txs, blocks])
    assert again.transfers_added == 0 and sum(f.already_present for f in again.files) == 4
    assert not again.imported_nothing


def test_a_post_shanghai_block_of_transactions(db: Database) -> None:
    path = fixture("test_export_blocks_job", "blocks_with_transactions_and_withdrawals", "expected_transactions.csv")
    (result,) = import_etl_files(db, [path]).files
    assert result.rows_read == 298 and result.error_count == 0
    assert result.transfers_added == 135 and result.skipped == {"zero value": 163}
    swap = [
        t
        for t in TransferIndex(db).for_address("0x64a018b23b4d7a077dffa6723462bc722861c5ad")
        if t.tx_hash == "0xec7cc4df1ff542793053335700f18d59c3f870e1e4820a42d558c76db832bd14"
    ]
    assert [(t.value, t.timestamp, t.to_addr) for t in swap] == [
        (7400000000000000000, 1683029999, "0xef1c6e67703c7bd7107eed8303fbe6ec2554bf6b")
    ]


def test_traces_keep_successful_internal_value_below_the_top_level(db: Database, tmp_path: Path) -> None:
    suicide = fixture("test_export_traces_job", "block_with_suicide", "expected_traces.csv")
    subtraces = fixture("test_export_traces_job", "block_with_subtraces", "expected_traces.csv")
    failed = fixture("test_export_traces_job", "block_with_error", "expected_traces.csv")
    blocks = tmp_path / "blocks.csv"
    blocks.write_text("number,timestamp\n1011973,1455404053\n1000000,1455404000\n1000895,1455420000\n")
    result = import_etl_files(db, [suicide, subtraces, failed, blocks])
    files = {f.path: f for f in result.files}
    assert files[blocks].kind is EtlFileKind.BLOCKS and files[blocks].blocks == 3
    assert files[suicide].transfers_added == 1
    assert files[suicide].skipped == {"top-level trace": 1, "reward trace": 1}
    assert files[subtraces].transfers_added == 0 and files[subtraces].skipped["callcode frame"] == 1
    assert files[failed].transfers_added == 0 and result.error_count == 0
    (refund,) = TransferIndex(db).for_address("0x474faa5018639791952fae334e2911700ac7fe9b", direction="out")
    assert (refund.kind, refund.position, refund.value) == (TransferKind.INTERNAL, "trace:0", 50000000000000000)
    assert refund.to_addr == "0x83973747eec131bf9a08ac64fb1a518e891bdf4b" and refund.timestamp == 1455404053


def test_rows_without_a_block_time_are_errors_with_file_and_line(db: Database) -> None:
    suicide = fixture("test_export_traces_job", "block_with_suicide", "expected_traces.csv")
    result = import_etl_files(db, [suicide])
    assert result.errors == [
        RowError(
            suicide,
            3,
            "no timestamp for block 1011973: import blocks.csv (or transactions.csv with block_timestamp) covering it",
        )
    ]
    assert result.imported_nothing


def test_block_times_already_in_the_index_are_used(db: Database, tmp_path: Path) -> None:
    txs = tmp_path / "transactions.csv"
    txs.write_text(TX_HEADER + tx_line(1, 5, block=700))
    tokens = tmp_path / "token_transfers.csv"
    tokens.write_text(TOKEN_HEADER + f"{TOKEN},{A},{B},9,{tx_hash(1)},3,700\n")
    assert import_etl_files(db, [txs]).transfers_added == 1
    (result,) = import_etl_files(db, [tokens]).files  # a later import, without blocks.csv
    assert result.transfers_added == 1 and result.error_count == 0
    (token,) = [t for t in TransferIndex(db).for_address(A) if t.kind is TransferKind.ERC20]
    assert token.timestamp == 1_700_000_700 and token.block_hash == "0x" + f"{700:064x}"


def test_a_truncated_file_keeps_its_whole_rows(db: Database, tmp_path: Path) -> None:
    source = fixture("test_export_blocks_job", "blocks_with_transactions_and_withdrawals", "expected_transactions.csv")
    text = source.read_text()
    lines = text.splitlines(keepends=True)
    cut = tmp_path / "transactions.csv"
    cut.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    (result,) = import_etl_files(db, [cut]).files
    assert result.rows_read == 298 and result.error_count == 1
    (error,) = result.errors
    assert error.line == 299 and "ends in the middle of this line" in error.reason
    assert result.transfers_added + sum(result.skipped.values()) == 297


def test_values_beyond_64_bits_are_exact_and_beyond_256_bits_are_errors(db: Database, tmp_path: Path) -> None:
    tokens = tmp_path / "token_transfers.csv"
    tokens.write_text(
        TOKEN_HEADER
        + f"{TOKEN},{A},{B},{2**255 + 1},{tx_hash(1)},0,100\n"
        + f"{TOKEN},{A},{B},{2**256},{tx_hash(1)},1,100\n"
        + f"{TOKEN},{A},{B},-5,{tx_hash(1)},2,100\n"
    )
    txs = tmp_path / "transactions.csv"
    txs.write_text(TX_HEADER + tx_line(1, 2**64 + 7))
    result = import_etl_files(db, [tokens, txs])
    assert [(e.line, e.reason) for e in result.errors] == [
        (3, f"value {str(2**256)[:20]}… does not fit in 256 bits"),
        (4, "value '-5' is not a non-negative integer"),
    ]
    values = sorted(t.value for t in TransferIndex(db).for_address(A))
    assert values == [2**64 + 7, 2**255 + 1]


def test_bad_rows_are_reported_and_good_rows_kept(db: Database, tmp_path: Path) -> None:
    txs = tmp_path / "transactions.csv"
    txs.write_text(
        TX_HEADER
        + tx_line(1, 10)
        + tx_line(2, 10, src="0x12")
        + tx_line(3, 10, dst="0x" + "zz" * 20)
        + tx_line(4, 10, status="0")  # failed: skipped, not an error
        + "0x1,2,3\n"
        + tx_line(5, 10).replace(f"{1_700_000_100}", "yesterday")
        + tx_line(6, 10)
    )
    (result,) = import_etl_files(db, [txs]).files
    assert result.rows_read == 7 and result.transfers_added == 2
    assert result.skipped == {"failed transaction (receipt_status 0)": 1}
    assert [(e.file, e.line, e.reason) for e in result.errors] == [
        (txs, 3, "from_address '0x12' is not an address"),
        (txs, 4, f"to_address '{'0x' + 'zz' * 20}' is not an address"),
        (txs, 6, "3 fields instead of 16"),
        (txs, 7, "block_timestamp 'yesterday' is not a unix timestamp"),
    ]
    assert str(result.errors[0]) == f"{txs}:3: from_address '0x12' is not an address"


def test_a_missing_column_refuses_that_file_only(db: Database, tmp_path: Path) -> None:
    broken = tmp_path / "transactions.csv"
    broken.write_text("hash,block_number,from_address,to_address\n" + f"{tx_hash(1)},1,{A},{B}\n")
    tokens = tmp_path / "token_transfers.csv"
    tokens.write_text(TOKEN_HEADER + f"{TOKEN},{A},{B},9,{tx_hash(1)},3,700\n")
    blocks = tmp_path / "blocks.csv"
    blocks.write_text("number,hash,timestamp\n700,,1700000000\n")
    strange = tmp_path / "notes.csv"
    strange.write_text("who,what\nme,that\n")
    result = import_etl_files(db, [broken, tokens, blocks, strange])
    files = {f.path: f for f in result.files}
    assert files[broken].file_error == f"{broken}: missing column(s) for transactions.csv: value"
    assert files[broken].rows_read == 0
    assert files[strange].file_error is not None and "not an ethereum-etl" in files[strange].file_error
    assert files[tokens].transfers_added == 1 and not result.imported_nothing


def test_blocks_csv_needs_only_number_and_timestamp(db: Database, tmp_path: Path) -> None:
    blocks = tmp_path / "my_blocks.csv"
    blocks.write_text("number,timestamp\n700,1700000000\n701,2023-11-14 22:13:32 UTC\nx,1\n")
    tokens = tmp_path / "token_transfers.csv"
    tokens.write_text(TOKEN_HEADER + f"{TOKEN},{A},{B},9,{tx_hash(1)},3,700\n{TOKEN},{B},{A},8,{tx_hash(2)},0,701\n")
    result = import_etl_files(db, [tokens, blocks])
    assert result.transfers_added == 2
    assert [(e.line, e.reason) for e in result.errors] == [(4, "number 'x' is not a non-negative integer")]
    times = {t.block_number: t.timestamp for t in TransferIndex(db).for_address(A)}
    assert times == {700: 1700000000, 701: 1700000012}


def test_a_directory_is_read_as_its_csv_files(db: Database, tmp_path: Path) -> None:
    tree = tmp_path / "export" / "transactions" / "start_block=00000000"
    tree.mkdir(parents=True)
    (tree / "transactions_00000000_00000099.csv").write_text(TX_HEADER + tx_line(1, 10) + tx_line(2, 20))
    (tmp_path / "export" / "README.txt").write_text("not a csv")
    result = import_etl_files(db, [tmp_path / "export"])
    assert [f.kind for f in result.files] == [EtlFileKind.TRANSACTIONS] and result.transfers_added == 2


def test_import_throughput_on_sqlite(tmp_path: Path) -> None:
    """Not a benchmark: a floor that catches a per-row query or a re-compiled statement (10x regressions)."""
    rows = 20_000
    lines = [TX_HEADER]
    lines.extend(tx_line(n, n % 3, src="0x" + f"{n % 997:040x}", block=100 + n // 50) for n in range(rows))
    path = tmp_path / "transactions.csv"
    path.write_text("".join(lines))
    db = open_database(f"sqlite:///{tmp_path / 'speed.sqlite3'}")
    try:
        result = import_etl_files(db, [path])
    finally:
        db.dispose()
    assert result.rows_read == rows and result.error_count == 0
    assert result.rows_per_second > 2_000, f"{result.rows_per_second:,.0f} rows/s"


# --- the command line ---------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, prepared_database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "SLACK_", "CHAINS", "ETH_"))}
    env.update({"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": prepared_database_url, "DEMO_DATA": "false"})
    return env


def test_cli_imports_files_and_reports_counts_and_bad_rows(cli_env: dict[str, str], tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    shutil.copytree(fixture("test_export_blocks_job", "block_with_logs"), exports)
    shutil.copy(
        fixture("test_export_token_transfers_job", "block_with_transfers", "expected_token_transfers.csv"),
        exports / "token_transfers.csv",
    )
    bad = tmp_path / "transactions.csv"
    bad.write_text(TX_HEADER + tx_line(1, 10) + tx_line(2, 10, src="0x12"))
    result = run_cli(["import", "transfers", str(exports), str(bad), "--chain", "eth"], cli_env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"{exports / 'token_transfers.csv'}: token_transfers: 2 rows, 2 transfers added" in out
    assert "expected_transactions.csv: transactions: 4 rows, 2 transfers added, 0 already present, 2 skipped" in out
    assert f"{bad}:3: from_address '0x12' is not an address" in out
    assert "5 transfers added" in out and "rows/s" in out

    db = open_database(cli_env["DATABASE_URL"])
    try:
        assert TransferIndex(db).count("eth") == 5
    finally:
        db.dispose()


def test_cli_exits_1_when_nothing_could_be_imported(cli_env: dict[str, str], tmp_path: Path) -> None:
    broken = tmp_path / "transactions.csv"
    broken.write_text("hash,block_number,from_address\n")
    result = run_cli(["import", "transfers", str(broken)], cli_env)
    assert result.returncode == 1
    assert f"{broken}: missing column(s) for transactions.csv: to_address, value" in result.stderr
    assert "nothing could be imported" in result.stderr
    bad_chain = run_cli(["import", "transfers", str(broken), "--chain", "Not A Chain!"], cli_env)
    assert bad_chain.returncode == 2 and "not a chain name" in bad_chain.stderr
