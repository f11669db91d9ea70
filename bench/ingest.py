"""Ingest: blocks from a real node (anvil) into the transfer index through `tracing.chain.indexer.Indexer`.

anvil runs with --no-mining; each block is built from one JSON-RPC batch of `eth_sendTransaction`s from the ten dev
accounts — half native sends, half ERC-20 `transfer`s of the test token (tests/contracts/TestToken.sol) — and
`evm_mine`. The same blocks are then indexed into a fresh SQLite store and a fresh PostgreSQL database (several
runs each), against the baseline of fetching and decoding them as the indexer does (`fetch_range`, the same
`RpcSource` and settings) without storing. The notes give the CPU per block of anvil and of the bench process,
which the other work on the machine moves much less than the rates.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.common import Figure, log, median
from storage import open_database
from tests.support.anvil import AnvilNode, anvil_available
from tests.support.contracts import contract_from_receipt, send_deploy
from tracing import BLOCKS_PER_REQUEST, CONCURRENCY, Indexer, RpcSource, TransferIndex, adhoc_chain, fetch_range

GOAL_SQLITE = 150.0  # blocks/s
CHAIN = "anvil"
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def build_blocks(node: AnvilNode, n_blocks: int, txs: int, seed: int = 1) -> tuple[int, int, int]:
    """Mine `n_blocks` blocks of `txs` transfers each; returns (first block, last block, transfers sent)."""
    rpc = node.rpc
    rng = random.Random(seed)
    accounts = rpc.accounts()[:10]
    deployer = accounts[0]
    deploy_tx = send_deploy(rpc, "TestToken", "Bench Token", "BT", 18, sender=deployer)
    rpc.mine()
    token = contract_from_receipt(rpc, "TestToken", rpc.wait_receipt(deploy_tx))
    rpc.batch([("eth_sendTransaction", [mint]) for mint in _mints(token, accounts)])
    rpc.mine()
    first = rpc.block_number() + 1
    sent = 0
    for _ in range(n_blocks):
        calls = []
        for i in range(txs):
            sender = accounts[i % len(accounts)]
            to = "0x" + rng.getrandbits(160).to_bytes(20, "big").hex()
            if i % 2:
                tx = {"from": sender, "to": to, "value": hex(rng.randrange(1, 10**18)), "gas": hex(21_000)}
            else:
                data = token.encode("transfer", to, rng.randrange(1, 10**18))
                tx = {"from": sender, "to": token.address, "data": data, "gas": hex(90_000)}
            calls.append(("eth_sendTransaction", [tx]))
        rpc.batch(calls)
        rpc.mine()
        sent += txs
    last = rpc.block_number()
    return first, last, sent


def _mints(token: object, accounts: list[str]) -> Iterator[dict[str, str]]:
    for account in accounts:
        data = token.encode("mint", account, 10**30)  # type: ignore[attr-defined]
        yield {"from": accounts[0], "to": token.address, "data": data, "gas": hex(120_000)}  # type: ignore[attr-defined]


async def _fetch_only(url: str, first: int, last: int) -> int:
    """The baseline: the blocks fetched and decoded as `Indexer` does (`fetch_range`, same settings), not stored."""
    source = RpcSource(adhoc_chain(CHAIN, (url,), env={}))
    try:
        await source.connect()
        blocks, error = await fetch_range(
            source, first, last, concurrency=CONCURRENCY, blocks_per_request=BLOCKS_PER_REQUEST
        )
        if error is not None:
            raise error
        return sum(len(b.transfers) for b in blocks)
    finally:
        await source.aclose()


async def _index(db_url: str, url: str, first: int, last: int) -> tuple[float, int]:
    db = open_database(db_url)
    source = RpcSource(adhoc_chain(CHAIN, (url,), env={}))
    try:
        await source.connect()
        indexer = Indexer(TransferIndex(db), source, CHAIN)
        began = time.perf_counter()
        await indexer.run(first, last)
        seconds = time.perf_counter() - began
        stored = TransferIndex(db).count()
        return seconds, stored
    finally:
        await source.aclose()
        db.dispose()


@contextmanager
def fresh_postgres(base: str) -> Iterator[str]:
    url = make_url(base)
    name = f"cs_bench_{secrets.token_hex(4)}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(n_blocks: int, txs: int, runs: int, postgres: bool) -> list[Figure]:
    if not anvil_available():
        return [Figure("ingest", "—", "not measured yet (anvil not installed)", "", "", "", "—")]
    log(f"ingest: building {n_blocks} blocks × {txs} transactions on anvil")
    with AnvilNode(no_mining=True) as node:
        began = time.perf_counter()
        first, last, sent = build_blocks(node, n_blocks, txs)
        build_s = time.perf_counter() - began
        blocks = last - first + 1
        fetch, sqlite, pg = [], [], []
        cpu: dict[str, list[tuple[float, float]]] = {"fetch": [], "sqlite": [], "pg": []}
        transfers = 0
        for r in range(runs):
            t0, used = time.perf_counter(), _cpu(node.pid)
            transfers = asyncio.run(_fetch_only(node.url, first, last))
            fetch.append(blocks / (time.perf_counter() - t0))
            cpu["fetch"].append(_per_block(used, _cpu(node.pid), blocks))
            with tempfile.TemporaryDirectory() as tmp:
                used = _cpu(node.pid)
                seconds, stored = asyncio.run(_index(f"sqlite:///{Path(tmp) / 'i.sqlite3'}", node.url, first, last))
                cpu["sqlite"].append(_per_block(used, _cpu(node.pid), blocks))
            sqlite.append(blocks / seconds)
            if postgres:
                try:
                    with fresh_postgres(os.environ.get("BENCH_DATABASE_URL", PG_DEFAULT)) as pg_url:
                        used = _cpu(node.pid)
                        seconds, stored = asyncio.run(_index(pg_url, node.url, first, last))
                        cpu["pg"].append(_per_block(used, _cpu(node.pid), blocks))
                    pg.append(blocks / seconds)
                except Exception as exc:  # no server: say so in the report
                    log(f"ingest: PostgreSQL run {r + 1} skipped: {exc}")
                    postgres = False
            log(
                f"ingest run {r + 1}: fetch {fetch[-1]:.0f}/s, SQLite {sqlite[-1]:.0f}/s"
                + (f", PG {pg[-1]:.0f}/s" if pg else "")
            )
    size = f"{blocks} blocks × {txs} txs ({transfers:,} transfers, half ERC-20); {runs} runs"
    baseline = f"fetch + decode only: {median(fetch):,.0f} blocks/s (slowest run {min(fetch):,.0f})"
    figures = [
        Figure(
            "ingest into SQLite (`Indexer`, anvil RPC)",
            size,
            f"{median(sqlite):,.0f} blocks/s",
            f"slowest run {min(sqlite):,.0f} blocks/s",
            baseline,
            f"≥ {GOAL_SQLITE:g} blocks/s",
            _verdict(median(sqlite)),
            [
                f"Building the {blocks} blocks on anvil took {build_s:.0f} s (not part of the figure).",
                _cpu_note(cpu),
            ],
        )
    ]
    figures.append(
        Figure(
            "ingest into PostgreSQL (same blocks)",
            size,
            f"{median(pg):,.0f} blocks/s" if pg else "not measured yet (no PostgreSQL server)",
            f"slowest run {min(pg):,.0f} blocks/s" if pg else "",
            baseline,
            "figure only (no goal)",
            "—",
        )
    )
    return figures


def _cpu(anvil_pid: int | None) -> tuple[float, float]:
    """CPU seconds used so far by anvil (from /proc; 0 where there is none) and by this process (all threads)."""
    anvil = 0.0
    if anvil_pid is not None:
        try:
            fields = Path(f"/proc/{anvil_pid}/stat").read_text().rsplit(")", 1)[1].split()
            anvil = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            pass
    return anvil, time.process_time()


def _per_block(before: tuple[float, float], after: tuple[float, float], blocks: int) -> tuple[float, float]:
    """Milliseconds of CPU per block: anvil's, the bench process's."""
    return 1000 * (after[0] - before[0]) / blocks, 1000 * (after[1] - before[1]) / blocks


def _cpu_note(cpu: dict[str, list[tuple[float, float]]]) -> str:
    """The CPU each side used per block (medians over the runs): unlike the rates, not much moved by whatever
    else the machine runs at the time."""
    parts = []
    for key, what in (("fetch", "fetch + decode only"), ("sqlite", "into SQLite"), ("pg", "into PostgreSQL")):
        if cpu[key]:
            anvil = median([a for a, _ in cpu[key]])
            bench = median([b for _, b in cpu[key]])
            parts.append(f"{what}: anvil {anvil:.1f} ms, bench process {bench:.1f} ms")
    return "CPU per block (median of runs; the PostgreSQL server's own not counted): " + "; ".join(parts) + "."


def _verdict(value: float) -> str:
    if value >= GOAL_SQLITE:
        return f"met ({value / GOAL_SQLITE:.1f}× the goal)"
    return f"missed (by {GOAL_SQLITE / value:.1f}×)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ingest-blocks", type=int, default=200)
    parser.add_argument("--ingest-txs", type=int, default=100)
    parser.add_argument("--no-ingest-postgres", dest="ingest_postgres", action="store_false")


def from_args(args: argparse.Namespace) -> list[Figure]:
    return run(args.ingest_blocks, args.ingest_txs, args.runs_slow, args.ingest_postgres)
