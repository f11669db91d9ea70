"""`chainsleuth db upgrade`: apply the store's migrations."""

from __future__ import annotations

import typer

from bot.cli.base import app
from storage import get_settings, open_database, redact_url

db_app = typer.Typer(help="The store: migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade() -> None:
    """Create or migrate the schema to the newest version."""
    url = get_settings().effective_database_url
    database = open_database(url)
    database.dispose()
    typer.echo(f"store at {redact_url(url)} is up to date")
