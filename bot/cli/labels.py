"""`chainsleuth labels import|list|stats|tether-freezes`."""

from __future__ import annotations

import asyncio
import inspect
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import cast

import typer

from bot.cli.base import app, open_app
from bot.render.objects import LabelListing
from bot.render.text import render_part
from storage import get_settings
from tracing import (
    BUNDLED_PREFIX,
    USDT_TRC20,
    Category,
    Family,
    LabelImport,
    Reader,
    SourceError,
    UserError,
    adhoc_chain,
    checksum,
    collect_freezes,
    freeze_cursor,
    get_chain,
    is_bundled,
    load_chains,
    load_formats,
    parse_address,
)

labels_app = typer.Typer(help="Address labels: import, list, stats, Tether freezes.", no_args_is_help=True)
app.add_typer(labels_app, name="labels")


@labels_app.command("import")
def import_labels(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=True, readable=True, help="label file(s)"),
    format: str = typer.Option(..., "--format", "-f", help="file format: " + ", ".join(sorted(load_formats()))),
    version: str | None = typer.Option(
        None, "--version", help="version to record for the set (for ofac: the list date, YYYY-MM-DD)"
    ),
) -> None:
    """Import (or re-import, replacing the older copy of that source) a label set."""
    readers = load_formats()
    reader = readers.get(format)
    if reader is None:
        typer.echo(f"error: unknown format {format!r}; known: {', '.join(sorted(readers))}", err=True)
        raise typer.Exit(2)
    if version is not None and is_bundled(version):
        typer.echo(f"error: --version must not start with {BUNDLED_PREFIX!r} (kept for the shipped sets)", err=True)
        raise typer.Exit(2)
    the_app = open_app()
    try:
        for path in files:
            try:
                result = _read(reader, path, version)
            except UserError as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(1) from exc
            result.save(the_app.investigator.labels)
            active = sum(1 for label in result.labels if label.active)
            note = f" ({'; '.join(result.notes)})" if result.notes else ""
            typer.echo(f"{path}: {active} labels from {result.label_set.source} [{result.label_set.version}]{note}")
    finally:
        the_app.close()


def _read(reader: Reader, path: Path, version: str | None) -> LabelImport:
    """Run a reader; `--version` goes to readers that take it (ofac reads the list date from it), else it only
    renames the set's version."""
    if version is None:
        return reader(path)
    if "version" in inspect.signature(reader).parameters:
        return cast(Callable[..., LabelImport], reader)(path, version=version)
    result = reader(path)
    return replace(result, label_set=replace(result.label_set, version=version))


@labels_app.command("tether-freezes")
def tether_freezes(
    chain: str = typer.Option("tron", "--chain", "-c", help="a TRON chain (CHAINS, with <NAME>_RPC_URL)"),
    rpc_url: list[str] = typer.Option([], "--rpc-url", help="JSON-RPC URL(s) instead of <NAME>_RPC_URL"),
    from_block: str = typer.Option(
        "", "--from-block", help="first block (default: after the last block read before, else required)"
    ),
    to_block: str = typer.Option("latest", "--to-block", help="last block, or latest"),
    contract: str = typer.Option(USDT_TRC20, "--contract", help="the USDT-TRC20 contract (T… or 41… hex)"),
    step: int = typer.Option(2000, "--step", min=1, help="blocks per eth_getLogs call"),
) -> None:
    """Read Tether's freezes (AddedBlackList, RemovedBlackList, DestroyedBlackFunds of the USDT contract) from a
    TRON node's /jsonrpc and record them as `frozen` labels (source tether-blacklist), history kept."""
    try:
        urls = tuple(u.strip() for url in rpc_url for u in url.split(",") if u.strip())
        variables = get_settings().chain_variables()
        config = adhoc_chain(chain, urls, variables) if urls else get_chain(chain, load_chains(variables))
        config.require_rpc()
        if config.family is not Family.TRON:
            raise UserError(f"Chain {config.name} is not a TRON chain (set {config.env_prefix}_FAMILY=tron).")
        token = parse_address(contract)
        if not token.startswith("T"):
            raise UserError("--contract must be a TRON address (T… or 41… hex).")
        last = _block(to_block, "--to-block")
        first = _block(from_block, "--from-block") if from_block.strip() else None
        if first is None and from_block.strip():
            raise UserError("--from-block must be a block number.")
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    the_app = open_app()
    try:
        book = the_app.investigator.labels
        try:
            if first is None:
                done = freeze_cursor(book, config.name, token)
                if done is None:
                    raise UserError("--from-block is needed: no freezes were read on this chain before.")
                first = done + 1
            scan = asyncio.run(
                collect_freezes(
                    book,
                    config.rpc_urls,
                    first,
                    last,
                    chain=config.name,
                    contract=token,
                    step=step,
                    chain_id=config.chain_id,
                )
            )
        except (UserError, SourceError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
        typer.echo(scan.words())
        for note in scan.notes:
            typer.echo(f"note: {note}", err=True)
    finally:
        the_app.close()


def _block(text: str, option: str) -> int | None:
    """A block number, or None for `latest`."""
    raw = text.strip()
    if raw.lower() == "latest":
        return None
    if not re.fullmatch(r"[0-9]{1,16}", raw, re.ASCII):
        raise UserError(f"{option} must be a block number or latest, not “{text[:30]}”.")
    return int(raw)


@labels_app.command("list")
def list_labels(address: str = typer.Argument(..., help="an address (EVM 0x…, TRON T…, bitcoin)")) -> None:
    """Every label of an address, with its source."""
    try:
        canonical = parse_address(address)
    except UserError as exc:
        typer.echo(f"error: {exc}")
        raise typer.Exit(0) from exc
    the_app = open_app()
    try:
        labels = asyncio.run(the_app.investigator.labels_of(canonical))
        typer.echo(render_part(LabelListing(canonical, None, tuple(labels))))
    finally:
        the_app.close()


@labels_app.command("stats")
def stats() -> None:
    """Label sets (bundled or imported) with their row counts, then counts per category and per set."""
    the_app = open_app()
    try:
        book = the_app.investigator.labels
        counts = book.counts()
        sets = book.sets()
        width = max([24, *(len(info.source) for info in sets)])
        typer.echo("label sets:")
        for info in sets:
            origin = "bundled " if is_bundled(info.version) else "imported"
            version = info.version.removeprefix(BUNDLED_PREFIX)
            typer.echo(f"  {info.source:<{width}} {origin} {info.rows:>7} labels  {version}  [{info.licence}]")
        per_category: dict[str, int] = defaultdict(int)
        for (_source, category), count in counts.items():
            per_category[category] += count
        typer.echo(f"labels per category ({sum(per_category.values())} in all):")
        for category in Category:
            if per_category.get(category.value):
                typer.echo(f"  {category.value:<12} {per_category[category.value]:>7}  {category.display}")
        typer.echo("labels per set and category:")
        for (source, category), count in sorted(counts.items()):
            typer.echo(f"  {source:<{width}} {category:<12} {count:>7}")
    finally:
        the_app.close()


__all__ = ["checksum"]
