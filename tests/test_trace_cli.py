"""`chainsleuth demo`, `chainsleuth risk` and `chainsleuth trace` as an operator runs them (in-process)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from storage.db import open_database
from tests.support.cli import run_cli
from tests.support.pictures import SvgPicture
from tests.test_trace_commands import store_eth_prices
from tracing.chain.demo import RONIN_EXPLOITER, RONIN_INTERMEDIARY
from tracing.risk.outputs import dot_available


@pytest.fixture
def cli_env(tmp_path: Path, prepared_database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "SLACK_", "CHAINS", "ETH_"))}
    env.update({"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": prepared_database_url, "DEMO_DATA": "false"})
    return env


def test_demo_risk_and_trace_from_the_command_line(cli_env: dict[str, str], tmp_path: Path) -> None:
    loaded = run_cli(["demo"], cli_env)
    assert loaded.returncode == 0, loaded.stderr
    assert "436 transfers loaded" in loaded.stdout
    again = run_cli(["demo", "--reset"], cli_env)
    assert "436 transfers loaded (436 removed first)" in again.stdout

    risk = run_cli(["risk", RONIN_EXPLOITER, "--json", "--hops", "2"], cli_env)
    assert risk.returncode == 0, risk.stderr
    report = json.loads(risk.stdout)
    assert report["level"] == "severe" and report["sanctioned"] is True and report["score"] == 100
    sanctions = [e for e in report["exposures"] if e["category"] == "sanctions"]
    assert len(sanctions) == 7 and all(e["hops"] == 1 and e["path"][0].startswith("dune:") for e in sanctions)
    assert all(e["amount"][0]["value"].isdigit() and 0 < e["share"] < 1 for e in sanctions)
    assert report["coverage"]["hop_budget"] == 2 and "demo" in report["coverage"]["index_range"]

    traced = run_cli(["trace", RONIN_INTERMEDIARY, "--json", "--hops", "2"], cli_env)
    assert traced.returncode == 0, traced.stderr
    data = json.loads(traced.stdout)
    assert data["direction"] == "out" and data["nodes"][0]["address"] == RONIN_INTERMEDIARY
    assert all({"address", "hop", "labels", "terminal"} <= set(n) for n in data["nodes"])
    assert all({"from", "to", "tx_hash", "block", "token", "value"} <= set(e) for e in data["edges"])
    assert len(data["edges"]) > 5 and all(e["value"].isdigit() for e in data["edges"])

    text = run_cli(
        ["trace", RONIN_INTERMEDIARY, "--direction", "in", "--model", "poison", "--since", "2022-03-01"], cli_env
    )
    assert "Incoming trace" in text.stdout and "Sanctions: Lazarus Group" in text.stdout

    csv_file, png_file, svg_file = tmp_path / "edges.csv", tmp_path / "flow.png", tmp_path / "flow.svg"
    pictures = ["--png", str(png_file), "--svg", str(svg_file)]
    files = ["--csv", str(csv_file)] + (pictures if dot_available() else [])
    written = run_cli(["trace", RONIN_EXPLOITER, "--hops", "1", *files], cli_env)
    assert written.returncode == 0, written.stderr
    rows = list(csv.DictReader(io.StringIO(csv_file.read_text())))
    assert len(rows) == 30 and {r["source"] for r in rows} == {"demo"}  # 37 transactions out, 7 without ETH
    if dot_available():
        assert png_file.read_bytes().startswith(b"\x89PNG")
        assert "<svg" in svg_file.read_text() and "Legend" in svg_file.read_text()


def test_command_line_input_errors(cli_env: dict[str, str]) -> None:
    bad_address = run_cli(["risk", "0x1234"], cli_env)
    assert bad_address.returncode == 1 and "40 hex digits" in bad_address.stderr
    bad_hops = run_cli(["trace", RONIN_EXPLOITER, "--hops", "11"], cli_env)
    assert bad_hops.returncode == 1 and "11 is out of range (1–10)" in bad_hops.stderr  # the chat grammar's words
    bad_direction = run_cli(["trace", RONIN_EXPLOITER, "--direction", "up"], cli_env)
    assert bad_direction.returncode == 1 and "use out or in" in bad_direction.stderr
    bad_time = run_cli(["trace", RONIN_EXPLOITER, "--since", "soon"], cli_env)
    assert bad_time.returncode == 1 and "not a date" in bad_time.stderr


def test_value_flags_from_the_command_line(cli_env: dict[str, str]) -> None:
    assert run_cli(["demo"], cli_env).returncode == 0
    db = open_database(cli_env["DATABASE_URL"])
    try:
        store_eth_prices(db)
    finally:
        db.dispose()
    folder = Path(cli_env["DATA_DIR"]).parent
    table, picture = folder / "compared.csv", folder / "compared.svg"
    compared = run_cli(
        ["trace", RONIN_EXPLOITER, "--model", "compare", "--dust", "$1000", "--through", "exchange"]
        + ["--csv", str(table)]
        + (["--svg", str(picture)] if dot_available() else []),
        cli_env,
    )
    assert compared.returncode == 0, compared.stderr
    assert "models compared: haircut, poison, fifo" in compared.stdout
    assert f"wrote {table}" in compared.stdout
    header = table.read_text().splitlines()[0].split(",")
    assert {"followed_by", "haircut_taint_usd", "poison_taint_usd", "fifo_taint_usd"} <= set(header)
    if dot_available():
        drawn = SvgPicture(picture.read_bytes())
        assert "taint models compared (haircut, poison, fifo)" in drawn.title[0] and drawn.addresses
    assert "through exchange; dust floor: $1,000 on the transfer's day" in compared.stdout
    assert all(f"• {model}: " in compared.stdout for model in ("haircut", "poison", "fifo"))
    minimum = run_cli(["trace", RONIN_EXPLOITER, "--min-value", "$1000", "--model", "fifo"], cli_env)
    assert minimum.returncode == 0, minimum.stderr
    assert "fifo taint" in minimum.stdout and "min value $1,000 on the transfer's day" in minimum.stdout
    refused = run_cli(["trace", RONIN_EXPLOITER, "--model", "compare", "--json"], cli_env)
    assert refused.returncode != 0 and "--json takes one model" in refused.stderr + refused.stdout
