"""`chainsleuth risk`, `chainsleuth trace` and `chainsleuth demo`: investigations from the command line, as text,
JSON, CSV or a PNG flow graph.

`risk` and `trace` take their address and options through the chat commands' grammar (`/risk`, `/trace`), so
the same input is accepted or refused, with the same sentence, in chat and here; only the output options
(`--json`, `--csv`, `--png`) are the command line's own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from bot.app import App
from bot.cli.base import app, open_app
from bot.core import one_line
from bot.grammar import Syntax, parse_words
from bot.handlers.risk import SPEC as RISK
from bot.handlers.risk import RiskArgs
from bot.handlers.trace import SPEC as TRACE
from bot.handlers.trace import TraceArgs
from bot.render.text import render_part
from tracing import (
    DEFAULT_HOPS,
    RONIN_EXPLOITER,
    PictureUnavailable,
    UserError,
    chain_for_address,
    comparison_csv,
    comparison_png,
    comparison_svg,
    load_chains,
    load_demo,
    remove_demo,
    risk_json,
    to_json_text,
    trace_csv,
    trace_json,
    trace_png,
    trace_svg,
)

_GRAMMAR = {"allow_extra_args": True, "ignore_unknown_options": True}
"""The command line hands every word it does not know itself to the chat grammar."""


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _grammar_help(spec: Syntax, summary: str) -> str:
    lines = [f"{param.name.upper()}: {param.help}" for param in spec.params]
    lines += [f"--{flag.name} {flag.metavar}: {flag.help}" for flag in spec.flags if not flag.boolean]
    return "\n\n".join([summary, f"Arguments and options as in chat: {spec.usage.removeprefix('/')}", *lines])


def _parse(spec: Syntax, words: list[str]) -> Any:
    """The words through the same grammar and checks as the chat command; its sentence on a refusal."""
    try:
        return parse_words(spec, words)
    except UserError as exc:
        raise _fail(one_line(str(exc))) from exc


def _configured_chain(the_app: App, given: str | None, address: str) -> str:
    """`--chain` names a configured chain (as in chat; else the address's family picks one, else the default
    chain), or the command stops with the configured ones named."""
    try:
        chains = load_chains(the_app.settings.chain_variables())
        return chain_for_address(address, given, the_app.settings.default_chain, chains).name
    except UserError as exc:
        raise _fail(str(exc)) from exc


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise _fail(f"cannot write {path}: {exc.strerror or exc}.") from exc


@app.command(
    context_settings=_GRAMMAR,
    help=_grammar_help(
        RISK, "Risk report of an address: labels, exposure with evidence paths, score and level, reasons, coverage."
    ),
)
def risk(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    args: RiskArgs = _parse(RISK, ctx.args)
    the_app = open_app()
    try:
        chain = _configured_chain(the_app, args.chain, args.address)
        report = asyncio.run(the_app.investigator.risk(args.address, chain, hops=args.hops or DEFAULT_HOPS))
        typer.echo(to_json_text(risk_json(report)) if as_json else render_part(report), nl=not as_json)
    finally:
        the_app.close()


@app.command(
    context_settings=_GRAMMAR,
    help=_grammar_help(TRACE, "Follow funds forward or backward from an address, hop by hop, in time order."),
)
def trace(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="print the trace as JSON"),
    csv_file: Path | None = typer.Option(None, "--csv", help="write one CSV row per transfer to FILE"),
    png_file: Path | None = typer.Option(None, "--png", help="write the flow graph picture to FILE.png (Graphviz)"),
    svg_file: Path | None = typer.Option(None, "--svg", help="write the same picture as SVG to FILE.svg (Graphviz)"),
) -> None:
    args: TraceArgs = _parse(TRACE, ctx.args)
    try:
        params = args.params()
    except UserError as exc:
        raise _fail(str(exc)) from exc
    if png_file is not None and png_file.suffix.lower() != ".png":
        raise _fail(f"--png writes a PNG picture; give a file name ending in .png, not “{png_file.name[:40]}”.")
    if args.compare and as_json:
        raise _fail(
            "--model compare prints the models side by side; --json takes one model (--csv, --png and --svg write "
            "the comparison's files)."
        )
    the_app = open_app()
    try:
        chain = _configured_chain(the_app, args.chain, args.address)
        if args.compare:
            comparison = asyncio.run(the_app.investigator.compare(args.address, chain, params))
            _write_files(csv_file, png_file, svg_file, comparison_csv, comparison_png, comparison_svg, comparison)
            written = [str(p) for p in (csv_file, png_file, svg_file) if p is not None]
            typer.echo(render_part(comparison) + (f"\n\nwrote {', '.join(written)}" if written else ""))
            return
        result = asyncio.run(the_app.investigator.trace(args.address, chain, params))
        _write_files(csv_file, png_file, svg_file, trace_csv, trace_png, trace_svg, result)
        if as_json:
            typer.echo(to_json_text(trace_json(result)), nl=False)
        elif csv_file is None and png_file is None and svg_file is None:
            typer.echo(render_part(result))
        else:
            written = [str(p) for p in (csv_file, png_file, svg_file) if p is not None]
            typer.echo(f"{len(result.nodes) - 1} addresses, {len(result.edges)} transfers; wrote {', '.join(written)}")
    finally:
        the_app.close()


def _write_files(
    csv_file: Path | None,
    png_file: Path | None,
    svg_file: Path | None,
    table: Callable[[Any], str],
    png: Callable[[Any], bytes],
    svg: Callable[[Any], bytes],
    subject: object,
) -> None:
    """Write the CSV and the pictures asked for (a missing Graphviz ends the command with status 3)."""
    if csv_file is not None:
        _write(csv_file, table(subject).encode("utf-8"))
    for path, draw in ((png_file, png), (svg_file, svg)):
        if path is None:
            continue
        try:
            picture = draw(subject)
        except PictureUnavailable as exc:
            raise _fail(str(exc), 3) from exc
        _write(path, picture)


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
