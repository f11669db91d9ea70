"""`chainsleuth index` (fill the local transfer index from a chain's RPC node) and `chainsleuth transfers ADDRESS`
(what the index holds for an address). The work is in `tracing.chain.indexer`; this module parses, reports, renders."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text

from bot.cli.base import app, setup_logging
from storage import Database, StoreError, get_settings, open_database
from tracing import (
    USDT_TRC20,
    ChainConfig,
    ContractLogs,
    CoreRpcSource,
    Family,
    FreezeScan,
    Indexer,
    IndexReport,
    LabelBook,
    SourceError,
    Transfer,
    TransferIndex,
    UserError,
    UtxoStore,
    adhoc_chain,
    chain_arg,
    checksum,
    format_amount,
    get_chain,
    load_chains,
    parse_address,
    record_freeze_logs,
    retro_alert_hook,
    rpc_source,
    show_tx,
)


class _Speed(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} blocks/s" if speed else "")


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _open_store() -> Database:
    settings = get_settings()
    setup_logging(settings)
    try:
        return open_database(settings.effective_database_url)
    except StoreError as exc:
        raise _fail(str(exc), 2) from exc


def _chain_config(name: str, rpc_urls: list[str]) -> ChainConfig:
    if rpc_urls:
        return adhoc_chain(name, tuple(rpc_urls), get_settings().chain_variables())
    config = get_chain(name, load_chains(get_settings().chain_variables()))
    config.require_rpc()
    return config


def _block_arg(text: str, option: str) -> int | None:
    """A block number (decimal or 0x-hex), or None for `latest`."""
    raw = text.strip()
    if raw.lower() == "latest":
        return None
    if not re.fullmatch(r"[0-9]{1,16}|0[xX][0-9a-fA-F]{1,14}", raw, re.ASCII):
        if raw.startswith("-") and raw[1:].isascii() and raw[1:].isdigit():
            raise UserError(f"{option} must not be negative.")
        raise UserError(f"{option} must be a block number or latest, not “{text[:30]}”.")
    return int(raw, 16) if raw[:2].lower() == "0x" else int(raw)


@app.command("index")
def index_command(
    chain: str = typer.Option("", "--chain", "-c", help="chain name (default: DEFAULT_CHAIN)"),
    rpc_url: list[str] = typer.Option(
        [], "--rpc-url", help="RPC URL(s) to use instead of <NAME>_RPC_URL; the chain need not be configured"
    ),
    from_block: str = typer.Option(..., "--from-block", help="first block to index"),
    to_block: str = typer.Option(
        "latest", "--to-block", help="last block, or latest (the head minus <NAME>_CONFIRMATIONS)"
    ),
    batch_size: int = typer.Option(100, "--batch-size", min=1, help="blocks fetched and written together"),
    concurrency: int = typer.Option(8, "--concurrency", min=1, help="blocks fetched at the same time"),
    timeout: float = typer.Option(30.0, "--timeout", min=0.1, help="seconds to wait for one RPC answer"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar on stderr"),
) -> None:
    """Index the transfers of a block range into the local store (resumable; ranges already done are skipped)."""
    try:
        name = chain_arg(chain or get_settings().default_chain)
        config = _chain_config(name, [u for url in rpc_url for u in url.split(",") if u.strip()])
        first = _block_arg(from_block, "--from-block")
        if first is None:
            raise UserError("--from-block must be a block number.")
        last = _block_arg(to_block, "--to-block")
    except UserError as exc:
        raise _fail(str(exc)) from exc
    db = _open_store()
    freezes = _FreezeTally(db) if config.family is Family.TRON else None
    report: IndexReport | None = None
    try:
        report = asyncio.run(_index(db, config, first, last, batch_size, concurrency, timeout, progress, freezes))
    except (SourceError, UserError) as exc:
        raise _fail(str(exc)) from exc
    except KeyboardInterrupt:
        raise _fail(
            "interrupted; the blocks done so far are stored, run the same command again to resume", 130
        ) from None
    finally:
        if freezes is not None and report is None:  # stopped (or nothing to do): the freezes recorded so far
            freezes.print()
        db.dispose()
    if report is not None:
        _print_report(report, config.family)
        if freezes is not None:
            freezes.print()


class _FreezeTally:
    """On a TRON chain, Tether's freezes among the USDT contract's logs the indexer hands over (the same read as
    the blocks' transfers) become labels batch by batch, with their alerts and the freeze cursor; this sums them."""

    def __init__(self, db: Database) -> None:
        self.book = LabelBook(db, hooks=[retro_alert_hook(db)])  # a new freeze of a checked address alerts
        self.scan: FreezeScan | None = None
        self.blocks = 0

    def __call__(self, logs: ContractLogs) -> None:
        self.scan = record_freeze_logs(self.book, logs, USDT_TRC20, scan=self.scan)
        self.blocks += logs.last - logs.first + 1

    def print(self) -> None:
        if self.scan is None:
            return
        span = self.scan.last - self.scan.first + 1
        skipped = f" ({span - self.blocks} of them indexed before: `labels tether-freezes --from-block` reads those)"
        typer.echo(self.scan.words() + (skipped if self.blocks < span else ""))
        for note in self.scan.notes:
            typer.echo(f"note: {note}", err=True)


async def _index(
    db: Database,
    config: ChainConfig,
    first: int,
    last: int | None,
    batch_size: int,
    concurrency: int,
    rpc_timeout: float,
    show_progress: bool,
    freezes: Callable[[ContractLogs], None] | None = None,
) -> IndexReport | None:
    bitcoin = config.family is Family.BTC
    opened = (
        CoreRpcSource(config, timeout=rpc_timeout, store=UtxoStore(db))
        if bitcoin
        else rpc_source(config, timeout=rpc_timeout)
    )
    async with opened as source:
        chain_id = await source.connect()
        head = await source.head()
        if last is None:
            last = head - config.confirmations
        elif last > head:
            raise UserError(f"Block {last} is beyond the head of {config.name} ({head}).")
        if last < first:
            typer.echo(
                f"{config.name}: nothing to index: the last block asked for ({last}) is before --from-block {first}"
                + (f" (head {head}, {config.confirmations} confirmations)" if config.confirmations else "")
            )
            return None
        indexer = Indexer(
            TransferIndex(db),
            source,
            config.name,
            chain_id=chain_id,
            batch_size=batch_size,
            concurrency=concurrency,
            watched_contracts=(USDT_TRC20,) if freezes is not None else (),
            on_logs=freezes,
        )
        if not show_progress:
            report = await indexer.run(first, last)
        else:
            report = await _run_with_progress(indexer, config.name, first, last)
        untyped = getattr(source, "untyped_blocks", 0)
        if untyped:
            typer.echo(
                f"warning: {untyped} block(s) hold TRX amounts that were not checked against their transactions' "
                f"types (set {config.env_prefix}_API_URL, TronGrid or a full node's HTTP API): TRON's /jsonrpc shows a "
                "TRC-10 transfer or a staking operation like a TRX transfer",
                err=True,
            )
        return report


async def _run_with_progress(indexer: Indexer, name: str, first: int, last: int) -> IndexReport:
    columns = (
        TextColumn(f"{name} blocks"),
        BarColumn(),
        MofNCompleteColumn(),
        _Speed(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("index", total=last - first + 1)
        return await indexer.run(first, last, progress=lambda n: bar.advance(task, n))


def _print_report(r: IndexReport, family: Family = Family.EVM) -> None:
    if not r.blocks_indexed:
        typer.echo(f"{r.chain}: blocks {r.first}-{r.last} were already indexed; nothing to do")
        return
    if r.internal == ("utxo",):
        typer.echo(
            f"{r.chain}: blocks {r.first}-{r.last}: {r.blocks_indexed} indexed, {r.blocks_skipped} already indexed; "
            f"{r.transfers_seen} transfers, {r.transfers_added} new (bitcoin transactions stored with their inputs "
            f"and outputs; transfers by proportional allocation, fees and change are not transfers); "
            f"{r.seconds:.1f}s ({r.blocks_per_second:.0f} blocks/s)"
        )
        for note in r.notes:
            typer.echo(f"note: {note}", err=True)
        return
    internal = ", ".join(r.internal)
    typer.echo(
        f"{r.chain}: blocks {r.first}-{r.last}: {r.blocks_indexed} indexed, {r.blocks_skipped} already indexed; "
        f"{r.transfers_seen} transfers, {r.transfers_added} new; internal transfers from {internal}; "
        f"{r.seconds:.1f}s ({r.blocks_per_second:.0f} blocks/s)"
    )
    if family is Family.TRON:
        typer.echo(
            "note: TRON's /jsonrpc has no trace methods: internal TRX transfers (TRX paid out by contracts) are NOT "
            "in the index; nor are TRC-10 transfers",
            err=True,
        )
    elif "unavailable" in r.internal:
        typer.echo(
            "warning: the node offers neither debug_traceBlockByNumber nor trace_block for some blocks: their "
            "internal (contract-to-address) transfers are NOT in the index",
            err=True,
        )
    details = []
    if r.failed_txs:
        details.append(f"{r.failed_txs} failed transaction(s) moved nothing")
    if r.skipped_logs:
        details.append(f"{r.skipped_logs} non-standard Transfer log(s) skipped")
    if r.skipped_frames:
        details.append(f"{r.skipped_frames} unreadable trace frame(s) skipped")
    if r.unknown_status:
        details.append(f"{r.unknown_status} transaction(s) without status or trace counted as successful")
    if details:
        typer.echo("; ".join(details))
    for note in r.notes:
        typer.echo(f"note: {note}", err=True)


@app.command("transfers")
def transfers_command(
    address: str = typer.Argument(..., help="an address (EVM 0x…, TRON T…)"),
    chain: str = typer.Option("", "--chain", "-c", help="only this chain"),
    as_json: bool = typer.Option(False, "--json", help="a JSON list (raw integer values as decimal strings)"),
    limit: int = typer.Option(1000, "--limit", min=0, help="at most this many, oldest first (0: all)"),
) -> None:
    """The transfers the local index holds to or from an address."""
    try:
        canonical = parse_address(address)
        chain_name = chain_arg(chain) if chain else None
    except UserError as exc:
        raise _fail(str(exc)) from exc
    db = _open_store()
    try:
        index = TransferIndex(db)
        found = index.for_address(canonical, chain_name, limit=limit or None)
        ranges = index.ranges(chain_name) if not found and not as_json else []
    finally:
        db.dispose()
    if as_json:
        typer.echo(json.dumps([transfer_json(t) for t in found], indent=2))
        return
    where = f" on {chain_name}" if chain_name else ""
    if not found:
        typer.echo(f"No transfers of {checksum(canonical)}{where} in the index.")
        if ranges:
            covered = ", ".join(f"{r.chain} {r.from_block}-{r.to_block}" for r in ranges[:10])
            typer.echo(f"Indexed block ranges: {covered}.")
        else:
            typer.echo("Nothing is indexed yet: run `chainsleuth index --chain NAME --from-block A`.")
        return
    symbols = {name: c.symbol for name, c in load_chains(get_settings().chain_variables()).items()}
    typer.echo(f"{len(found)} transfer(s) of {checksum(canonical)}{where} in the index, oldest first:")
    for t in found:
        typer.echo(_transfer_line(t, canonical, symbols))
    if limit and len(found) == limit:
        typer.echo(f"(first {limit} shown; use --limit 0 for all)")


def transfer_json(t: Transfer) -> dict[str, object]:
    return {
        "chain": t.chain,
        "block": t.block_number,
        "timestamp": t.timestamp,
        "tx_hash": show_tx(t.tx_hash, t.from_addr),
        "position": t.position,
        "kind": t.kind.value,
        "token": t.token,
        "symbol": t.symbol,
        "decimals": t.decimals,
        "from": t.from_addr,
        "to": t.to_addr,
        "value": str(t.value),
    }


def _transfer_line(t: Transfer, subject: str, symbols: dict[str, str]) -> str:
    when = datetime.fromtimestamp(t.timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
    if t.token is None:
        amount = format_amount(t.value, t.decimals or 18, t.symbol or symbols.get(t.chain, "native"))
    else:
        amount = format_amount(t.value, t.decimals, t.symbol or checksum(t.token))
    direction = "out" if t.from_addr == subject else "in "
    other = checksum(t.to_addr if t.from_addr == subject else t.from_addr)
    arrow = "→" if direction == "out" else "←"
    block = f"block {t.block_number}" if t.block_number else "block ?"  # 0: the source gave no block number
    tx = show_tx(t.tx_hash, t.from_addr)  # a TRON transaction id as Tronscan shows it
    return f"{t.chain} {block} {when} {direction} {t.kind.value:<8} {amount} {arrow} {other}  tx {tx}"
