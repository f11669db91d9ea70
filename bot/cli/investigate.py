"""`chainsleuth risk`, `chainsleuth trace` and `chainsleuth demo`: investigations from the command line, as text,
JSON, CSV or a PNG flow graph."""

from __future__ import annotations

import asyncio
from decimal import Decimal, InvalidOperation
from pathlib import Path

import typer

from bot.cli.base import app, open_app
from bot.commands import time_arg
from bot.render.text import render_part
from tracing import (
    DEFAULT_HOPS,
    MAX_HOPS,
    RONIN_EXPLOITER,
    PictureUnavailable,
    TaintModel,
    TraceDirection,
    TraceParams,
    UserError,
    chain_arg,
    load_demo,
    parse_address,
    remove_demo,
    risk_json,
    to_json_text,
    trace_csv,
    trace_json,
    trace_png,
    trace_svg,
)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@app.command()
def risk(
    address: str = typer.Argument(..., metavar="ADDRESS", help="an EVM address (0x…)"),
    chain: str | None = typer.Option(None, "--chain", help="chain name (default: DEFAULT_CHAIN)"),
    hops: int = typer.Option(DEFAULT_HOPS, "--hops", min=1, max=MAX_HOPS, help="hops of exposure to look at"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Risk report of an address: labels, exposure with evidence paths, score and level, reasons, coverage."""
    try:
        canonical = parse_address(address)
        chain_name = chain_arg(chain) if chain else None
    except UserError as exc:
        raise _fail(str(exc)) from exc
    the_app = open_app()
    try:
        report = asyncio.run(the_app.investigator.risk(canonical, chain_name, hops=hops))
        typer.echo(to_json_text(risk_json(report)) if as_json else render_part(report), nl=not as_json)
    finally:
        the_app.close()


@app.command()
def trace(
    address: str = typer.Argument(..., metavar="ADDRESS", help="an EVM address (0x…)"),
    chain: str | None = typer.Option(None, "--chain", help="chain name (default: DEFAULT_CHAIN)"),
    direction: str = typer.Option("out", "--direction", help="out: where the funds went; in: where they came from"),
    hops: int = typer.Option(DEFAULT_HOPS, "--hops", min=1, max=MAX_HOPS, help="how many hops to follow"),
    model: str = typer.Option("haircut", "--model", help="taint model for amounts: haircut or poison"),
    min_value: str | None = typer.Option(None, "--min-value", help="ignore transfers below this amount (ETH/token)"),
    token: str | None = typer.Option(None, "--token", help="follow only this token (address, or native)"),
    since: str | None = typer.Option(None, "--since", help="only transfers at or after DATE (YYYY-MM-DD) or UNIX"),
    until: str | None = typer.Option(None, "--until", help="only transfers at or before DATE or UNIX"),
    as_json: bool = typer.Option(False, "--json", help="print the trace as JSON"),
    csv_file: Path | None = typer.Option(None, "--csv", help="write one CSV row per transfer to FILE"),
    png_file: Path | None = typer.Option(None, "--png", help="write the flow graph picture to FILE (needs Graphviz)"),
    svg_file: Path | None = typer.Option(None, "--svg", help="write the same picture as SVG to FILE (needs Graphviz)"),
) -> None:
    """Follow funds forward or backward from an address, hop by hop, in time order."""
    try:
        canonical = parse_address(address)
        chain_name = chain_arg(chain) if chain else None
        wanted_token = None if token is None else "native" if token.lower() == "native" else parse_address(token)
        params = TraceParams(
            direction=TraceDirection.parse(direction),
            hops=hops,
            model=TaintModel.parse(model),
            min_value=_decimal(min_value),
            token=wanted_token,
            since=time_arg(since) if since else None,
            until=time_arg(until) if until else None,
        )
    except UserError as exc:
        raise _fail(str(exc)) from exc
    the_app = open_app()
    try:
        result = asyncio.run(the_app.investigator.trace(canonical, chain_name, params))
        if csv_file is not None:
            csv_file.write_text(trace_csv(result), encoding="utf-8")
        for picture_file, draw in ((png_file, trace_png), (svg_file, trace_svg)):
            if picture_file is not None:
                try:
                    picture_file.write_bytes(draw(result))
                except PictureUnavailable as exc:
                    raise _fail(str(exc), 3) from exc
        if as_json:
            typer.echo(to_json_text(trace_json(result)), nl=False)
        elif csv_file is None and png_file is None and svg_file is None:
            typer.echo(render_part(result))
        else:
            written = [str(p) for p in (csv_file, png_file, svg_file) if p is not None]
            typer.echo(f"{len(result.nodes) - 1} addresses, {len(result.edges)} transfers; wrote {', '.join(written)}")
    finally:
        the_app.close()


def _decimal(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise UserError(f"“{text[:30]}” is not an amount.") from None
    if value < 0:
        raise UserError("--min-value must not be negative.")
    return value


@app.command()
def demo(
    reset: bool = typer.Option(False, "--reset", help="delete the demo transfers and load them again"),
    remove: bool = typer.Option(False, "--remove", help="delete the demo transfers (they stay away on restart)"),
) -> None:
    """Load the demo data set (the Ronin bridge hack's ETH flows around the Lazarus wallets)."""
    the_app = open_app()
    try:
        if remove:
            typer.echo(f"removed {remove_demo(the_app.db)} demo transfers")
            return
        done = load_demo(the_app.db, reset=reset)
        typer.echo(
            f"demo data: {done.added} transfers loaded"
            + (f" ({done.removed} removed first)" if reset else "")
            + f". Try: chainsleuth risk {RONIN_EXPLOITER}"
        )
    finally:
        the_app.close()
