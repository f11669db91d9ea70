"""The `chainsleuth` CLI as an operator runs it: a fresh data directory, commands run in-process (`run_cli`),
and the installed entry point as a real subprocess on an empty store (`run_cli_process`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from storage.audit import AuditLog
from storage.db import open_database
from tests.support.cli import run_cli, run_cli_process

LAZARUS = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"


def env_for(tmp_path: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "SLACK_", "CHAINS", "ETH_"))}
    env.update({"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": database_url, "DEMO_DATA": "false"})
    return env


@pytest.fixture
def cli_env(tmp_path: Path, prepared_database_url: str) -> dict[str, str]:
    """A store a first start has already prepared (schema, bundled labels)."""
    return env_for(tmp_path, prepared_database_url)


@pytest.fixture
def fresh_cli_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    """An empty store: the command's own start creates the schema and loads the bundled labels."""
    return env_for(tmp_path, database_url)


def test_say_risk_on_a_sanctioned_address(fresh_cli_env: dict[str, str]) -> None:
    result = run_cli_process(["say", f"/risk {LAZARUS}"], fresh_cli_env)
    assert result.returncode == 0, result.stderr
    assert "SANCTIONED" in result.stdout and "Lazarus Group" in result.stdout and "ofac-sdn" in result.stdout


def test_say_bad_input_exits_two_with_a_clear_error_and_an_audit_row(cli_env: dict[str, str]) -> None:
    bad = ["/risk 0x1234", f"/risk {LAZARUS[:-1]}7", "/risk garbage!!"]
    for text in bad:
        result = run_cli(["say", text], cli_env)
        assert result.returncode == 2  # refused (1 is a failure on our side)
        assert result.stdout.startswith("Error: "), result.stdout
    db = open_database(cli_env["DATABASE_URL"])
    try:
        entries = AuditLog(db).recent(10)
    finally:
        db.dispose()
    assert len(entries) == 3
    assert all(e.outcome == "error" and e.platform == "cli" for e in entries)


def test_console_answers_risk_from_stdin(cli_env: dict[str, str]) -> None:
    result = run_cli(["run", "--platform", "console"], cli_env, stdin=f"/risk {LAZARUS}\n/quit\n")
    assert result.returncode == 0, result.stderr
    assert "Type /help" in result.stdout
    assert "SANCTIONED" in result.stdout and "Lazarus Group" in result.stdout


def test_labels_list_and_stats(cli_env: dict[str, str]) -> None:
    listed = run_cli(["labels", "list", LAZARUS], cli_env)
    assert "Lazarus Group" in listed.stdout and "ofac-sdn" in listed.stdout
    stats = run_cli(["labels", "stats"], cli_env)
    assert "ofac-sdn" in stats.stdout and "sanctions" in stats.stdout


def test_labels_import_reloads_an_ofac_list(cli_env: dict[str, str], tmp_path: Path) -> None:
    newer = tmp_path / "sdn.csv"
    newer.write_text(
        "asset,address,sdn_profile_id,sdn_primary_name,party_type,programs,entity_first_listed\n"
        "ETH,0x2222222222222222222222222222222222222222,1,Test Entity,Entity,CYBER2,2026-01-01\n"
        "XBT,1BoatSLRHtKNngkdXEeobR76b53LETtpyT,1,Test Entity,Entity,CYBER2,2026-01-01\n"
    )
    result = run_cli(["labels", "import", str(newer), "--format", "ofac"], cli_env)
    assert result.returncode == 0, result.stderr
    assert "2 labels from ofac-sdn" in result.stdout and "1 bitcoin addresses" in result.stdout  # XBT: bitcoin
    listed = run_cli(["say", "/risk 0x2222222222222222222222222222222222222222"], cli_env)
    assert "Test Entity" in listed.stdout and "SANCTIONED" in listed.stdout
    broken = tmp_path / "broken.csv"
    broken.write_text("asset,address\nETH,0x2222222222222222222222222222222222222222\n")
    result = run_cli(["labels", "import", str(broken), "--format", "ofac"], cli_env)
    assert result.returncode == 1 and "missing column" in result.stderr


def test_db_upgrade(fresh_cli_env: dict[str, str]) -> None:
    result = run_cli(["db", "upgrade"], fresh_cli_env)
    assert result.returncode == 0 and "up to date" in result.stdout
