"""`chainsleuth labels import|list|stats`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from bot.cli.base import app, open_app
from bot.render.objects import LabelListing
from bot.render.text import render_part
from tracing.address import checksum, parse_address
from tracing.errors import UserError
from tracing.importers import load_formats

labels_app = typer.Typer(help="Address labels: import, list, stats.", no_args_is_help=True)
app.add_typer(labels_app, name="labels")


@labels_app.command("import")
def import_labels(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=True, readable=True, help="label file(s)"),
    format: str = typer.Option(..., "--format", "-f", help="file format: " + ", ".join(sorted(load_formats()))),
) -> None:
    """Import (or re-import, replacing the older copy of that source) a label set."""
    readers = load_formats()
    reader = readers.get(format)
    if reader is None:
        typer.echo(f"error: unknown format {format!r}; known: {', '.join(sorted(readers))}", err=True)
        raise typer.Exit(2)
    the_app = open_app()
    try:
        for path in files:
            try:
                result = reader(path)
            except UserError as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(1) from exc
            count = the_app.investigator.labels.replace_set(result.label_set, result.labels)
            note = f" ({'; '.join(result.notes)})" if result.notes else ""
            typer.echo(f"{path}: {count} labels from {result.label_set.source} [{result.label_set.version}]{note}")
    finally:
        the_app.close()


@labels_app.command("list")
def list_labels(address: str = typer.Argument(..., help="an EVM address")) -> None:
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
    """Label counts per source and category, and the loaded label sets."""
    the_app = open_app()
    try:
        book = the_app.investigator.labels
        typer.echo("label sets:")
        for info in book.sets():
            typer.echo(f"  {info.source:<24} {info.rows:>7} rows  {info.version}  [{info.licence}]")
        typer.echo("labels per source and category:")
        for (source, category), count in sorted(book.counts().items()):
            typer.echo(f"  {source:<24} {category:<12} {count:>7}")
    finally:
        the_app.close()


__all__ = ["checksum"]
