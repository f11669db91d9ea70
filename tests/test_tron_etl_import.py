"""`chainsleuth import transfers DIR --chain tron` reads tronetl's CSV exports (c0mm4nd/tronetl, SCHEMA.md: the
ethereum-etl columns, T… addresses, TRON's status words): TRX transfers and TRC-20 transfers with T… addresses,
failed and TRC-10 transactions skipped with their reason, hashes stored with `0x` as TRON's /jsonrpc gives them. The
files are written here from the schema (no tronetl export could be obtained)."""

from __future__ import annotations

import os
from pathlib import Path

from storage import open_database
from tests.support.cli import run_cli
from tracing.chain.address import tron_to_hex
from tracing.chain.index import TransferIndex
from tracing.chain.transfer import TransferKind

ALICE = "TLCuBEirVzB6V4menLZKw1jfBTFMZbuKq7"
BOB = "TJmmqjb1DK9TTZbQXzRQ2AuA94z4gKAPFh"
USDT = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
BLOCK_HASH = "0000000003a0b1c2" + "ab" * 24


def write(folder: Path, name: str, rows: list[list[str]]) -> None:
    (folder / name).write_text("\n".join(",".join(row) for row in rows) + "\n", encoding="utf-8")


def test_tronetl_exports_import_on_a_tron_chain(tmp_path: Path, prepared_database_url: str) -> None:
    export = tmp_path / "tronetl"
    export.mkdir()
    write(
        export,
        "blocks.csv",
        [
            ["number", "hash", "parent_hash", "timestamp", "transaction_count"],
            ["60800450", BLOCK_HASH, "00" * 32, "1704067200000", "3"],
        ],
    )
    header = ["hash", "block_hash", "block_number", "transaction_index", "from_address", "to_address", "value",
              "block_timestamp", "transaction_type", "status"]  # fmt: skip
    write(
        export,
        "transactions.csv",
        [
            header,
            [
                "aa" * 32,
                BLOCK_HASH,
                "60800450",
                "0",
                ALICE,
                BOB,
                "7000000",
                "1704067200",
                "TransferContract",
                "SUCCESS",
            ],
            ["bb" * 32, BLOCK_HASH, "60800450", "1", ALICE, USDT, "5", "1704067200", "TriggerSmartContract", "REVERT"],
            ["cc" * 32, BLOCK_HASH, "60800450", "2", ALICE, BOB, "9", "1704067200", "TransferAssetContract", "SUCCESS"],
            [
                "dd" * 32,
                BLOCK_HASH,
                "60800450",
                "3",
                "0x" + "ab" * 20,
                BOB,
                "1",
                "1704067200",
                "TransferContract",
                "SUCCESS",
            ],
        ],
    )
    write(
        export,
        "token_transfers.csv",
        [
            ["block_number", "transaction_hash", "log_index", "token_address", "from_address", "to_address", "value"],
            ["60800450", "ee" * 32, "0", USDT, BOB, ALICE, "25000000"],
            ["60800450", "ff" * 32, "1", "41" + tron_to_hex(USDT)[2:], ALICE, BOB, "1000000"],
        ],
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAINS", "TRON_"))}
    env.update({"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": prepared_database_url, "DEMO_DATA": "false"})
    env["CHAINS"] = "eth,tron"
    done = run_cli(["import", "transfers", str(export), "--chain", "tron"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "failed transaction (status REVERT)" in done.stdout
    assert "TransferAssetContract transaction (only TRX transfers are covered on TRON)" in done.stdout
    assert "from_address '0xabab" in done.stdout and "is not a TRON address" in done.stdout
    db = open_database(prepared_database_url)
    try:
        stored = sorted(TransferIndex(db).for_address(BOB, "tron"), key=lambda t: t.tx_hash)
    finally:
        db.dispose()
    assert [(t.kind, t.tx_hash, t.from_addr, t.to_addr, t.value, t.token) for t in stored] == [
        (TransferKind.NATIVE, "0x" + "aa" * 32, ALICE, BOB, 7_000_000, None),
        (TransferKind.ERC20, "0x" + "ee" * 32, BOB, ALICE, 25_000_000, USDT),
        (TransferKind.ERC20, "0x" + "ff" * 32, ALICE, BOB, 1_000_000, USDT),
    ]
    assert {t.timestamp for t in stored} == {1_704_067_200}  # the blocks' milliseconds read as such
    assert {t.block_hash for t in stored} == {"0x" + BLOCK_HASH}
