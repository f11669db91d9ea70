"""Ingest: blocks from a real node (anvil) into the transfer index through `tracing.indexer.Indexer`.

anvil runs with --no-mining; each block is built from one JSON-RPC batch of `eth_sendTransaction`s from the ten dev
accounts — half native sends, half ERC-20 `transfer`s of the test token (tests/contracts/TestToken.sol) — and
`evm_mine`. The same blocks are then indexed into a fresh SQLite store and a fresh PostgreSQL database (several
runs each), against the baseline of fetching and decoding them with the same `RpcSource` without storing.
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
from storage.db import open_database
from tests.support.anvil import AnvilNode, anvil_available
from tests.support.contracts import contract_from_receipt, send_deploy
from tracing.chains import adhoc_chain
from tracing.index import TransferIndex
from tracing.indexer import Indexer
from tracing.rpc import RpcSource

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


async def _fetch_only(url: str, first: int, last: int, concurrency: int) -> int:
    source = RpcSource(adhoc_chain(CHAIN, (url,), env={}))
    await source.connect()
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int) -> int:
        async with gate:
            return len((await source.fetch_block(n)).transfers)

    try:
        return sum(await asyncio.gather(*(one(n) for n in range(first, last + 1))))
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
        transfers = 0
        for r in range(runs):
            t0 = time.perf_counter()
            transfers = asyncio.run(_fetch_only(node.url, first, last, 8))
            fetch.append(blocks / (time.perf_counter() - t0))
            with tempfile.TemporaryDirectory() as tmp:
                seconds, stored = asyncio.run(_index(f"sqlite:///{Path(tmp) / 'i.sqlite3'}", node.url, first, last))
            sqlite.append(blocks / seconds)
            if postgres:
                try:
                    with fresh_postgres(os.environ.get("BENCH_DATABASE_URL", PG_DEFAULT)) as pg_url:
                        seconds, stored = asyncio.run(_index(pg_url, node.url, first, last))
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
            [f"Building the {blocks} blocks on anvil took {build_s:.0f} s (not part of the figure)."],
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
