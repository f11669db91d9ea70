"""`chainsleuth import transfers FILE… [--chain NAME]`: ethereum-etl CSV exports into the local transfer index.

The work is in `tracing.chain.etl_import`; this module reports per file what was added, skipped (and why) and which
rows were bad, with file:line. Exits 1 when nothing could be imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import typer

from bot.cli.base import app, open_app
from tracing import (
    WELL_KNOWN,
    EtlFileKind,
    EtlFileResult,
    EtlImportResult,
    Family,
    UserError,
    chain_arg,
    import_etl_files,
    load_chains,
)

import_app = typer.Typer(help="Import chain data from files.", no_args_is_help=True)
app.add_typer(import_app, name="import")


@import_app.command("transfers")
def import_transfers(
    files: list[Path] = typer.Argument(
        ...,
        exists=True,
        dir_okay=True,
        readable=True,
        help="ethereum-etl CSV files (transactions, token_transfers, traces, blocks) or directories of them; "
        "tronetl's for a TRON chain",
    ),
    chain: str | None = typer.Option(None, "--chain", "-c", help="the files' chain [default: DEFAULT_CHAIN]"),
    errors_shown: int = typer.Option(5, "--errors", min=0, help="row errors shown per file"),
) -> None:
    """Import transfers from ethereum-etl exports; blocks.csv supplies block times the other files lack."""
    the_app = open_app()
    try:
        try:
            name = chain_arg(chain or the_app.settings.default_chain)
        except UserError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        result = import_etl_files(the_app.db, files, name, family=_family_of(name, the_app.settings.chain_variables()))
    finally:
        the_app.close()
    for file in result.files:
        _report_file(file, errors_shown)
    typer.echo(_summary(result))
    if result.imported_nothing:
        typer.echo("error: nothing could be imported", err=True)
        raise typer.Exit(1)


def _report_file(file: EtlFileResult, errors_shown: int) -> None:
    if file.file_error:
        typer.echo(f"error: {file.file_error}", err=True)
        return
    if file.kind is None:
        typer.echo(f"{file.path}: {'; '.join(file.notes) or 'nothing to import'}")
        return
    if file.kind is EtlFileKind.BLOCKS:
        line = f"{file.path}: blocks: {file.rows_read} rows, {file.blocks} block times"
    else:
        skipped = sum(file.skipped.values())
        reasons = "; ".join(f"{reason}: {count}" for reason, count in file.skipped.items())
        line = (
            f"{file.path}: {file.kind}: {file.rows_read} rows, {file.transfers_added} transfers added, "
            f"{file.already_present} already present, {skipped} skipped" + (f" ({reasons})" if reasons else "")
        )
    typer.echo(f"{line}, {file.error_count} bad rows")
    for note in file.notes:
        typer.echo(f"  note: {note}")
    for error in file.errors[:errors_shown]:
        typer.echo(f"  {error}")
    if file.error_count > errors_shown:
        typer.echo(f"  … and {file.error_count - errors_shown} more bad rows")


def _summary(result: EtlImportResult) -> str:
    return (
        f"total: {result.rows_read} rows from {len(result.files)} files into chain {result.chain}: "
        f"{result.transfers_added} transfers added, {result.error_count} bad rows, "
        f"{result.seconds:.1f}s ({result.rows_per_second:,.0f} rows/s)"
    )


def _family_of(name: str, env: Mapping[str, str]) -> Family:
    """The family of the chain the files belong to: its configuration, else its well-known name, else EVM."""
    try:
        configured = load_chains(env).get(name)
    except UserError:
        configured = None
    if configured is not None:
        return configured.family
    known = WELL_KNOWN.get(name)
    return known.family if known is not None else Family.EVM
