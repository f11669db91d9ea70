"""`chainsleuth prices import FILE…` and `prices list`: daily USD prices in the store, so amounts carry their USD value.

The work is in `tracing.chain.prices`; this module reports per file how many days were stored per asset and which
rows were bad, as file:line: reason. Exits 1 when nothing could be imported.
"""

from __future__ import annotations

from pathlib import Path

import typer

from bot.cli.base import app, open_app
from tracing import PriceBook, PriceImport, import_price_csv

prices_app = typer.Typer(
    help="Daily USD prices: import them from CSV files, list what is stored.", no_args_is_help=True
)
app.add_typer(prices_app, name="prices")


@prices_app.command("import")
def import_prices(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="CSV files"),
    asset: str | None = typer.Option(
        None,
        "--asset",
        "-a",
        help="the asset of every row (ETH, BTC, or chain:0xTOKEN) when the file has no asset column",
    ),
    source: str | None = typer.Option(None, "--source", help="where the prices come from [default: the file name]"),
    errors_shown: int = typer.Option(5, "--errors", min=0, help="bad rows shown per file"),
) -> None:
    """Import daily USD prices: a CSV with a date (YYYY-MM-DD or unix time), an asset (a coin symbol such as ETH,
    or chain:0xTOKEN for a token by contract address) and the USD price of one whole unit on that UTC day."""
    the_app = open_app()
    try:
        results = [import_price_csv(the_app.db, path, asset=asset, source=source) for path in files]
    finally:
        the_app.close()
    for result in results:
        _report(result, errors_shown)
    stored = sum(r.stored_total for r in results)
    typer.echo(f"total: {stored} daily prices stored from {len(results)} files")
    if not stored:
        typer.echo("error: nothing could be imported", err=True)
        raise typer.Exit(1)


@prices_app.command("list")
def list_prices() -> None:
    """The stored daily prices per asset: how many days, from when to when, from which source."""
    the_app = open_app()
    try:
        rows = PriceBook(the_app.db).summary()
    finally:
        the_app.close()
    if not rows:
        typer.echo("No prices stored: stablecoins count at $1, everything else says “no USD price”.")
        typer.echo("Import daily prices with `chainsleuth prices import FILE` or set PRICE_API_URL (see README).")
        return
    for asset, days, first, last, sources in rows:
        typer.echo(f"{asset}: {days:,} day{'' if days == 1 else 's'}, {first} … {last} ({sources})")


def _report(result: PriceImport, errors_shown: int) -> None:
    if result.file_error:
        typer.echo(f"error: {result.file_error}", err=True)
        return
    assets = ", ".join(f"{key}: {count}" for key, count in sorted(result.stored.items())) or "nothing"
    typer.echo(f"{result.path}: {result.rows_read} rows, stored {assets}; {len(result.errors)} bad rows")
    for error in result.errors[:errors_shown]:
        typer.echo(f"  {error}")
    if len(result.errors) > errors_shown:
        typer.echo(f"  … and {len(result.errors) - errors_shown} more bad rows")
