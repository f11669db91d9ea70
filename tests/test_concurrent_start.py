"""Several processes starting at once on one fresh PostgreSQL database: migrations and bundled labels are
applied once, in turn, and every process starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage.db import open_database
from tests.support.databases import fresh_postgres_database
from tracing.labels import LabelBook

START = """
import sys
from storage.settings import Settings
from bot.app import build_app
app = build_app(Settings(_env_file=None, demo_data=False), database_url=sys.argv[1])
print("started", flush=True)
app.close()
"""


@pytest.mark.postgres
def test_four_processes_start_together_on_a_fresh_database(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo), "DATA_DIR": str(tmp_path)}
    with fresh_postgres_database() as url:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", START, url], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for _ in range(4)
        ]
        outcomes = [p.communicate(timeout=120) for p in procs]
        for proc, (out, err) in zip(procs, outcomes, strict=True):
            assert proc.returncode == 0, err.decode()[-2000:]
            assert out.decode().strip() == "started"
        db = open_database(url)
        try:
            counts = LabelBook(db).counts()
        finally:
            db.dispose()
        assert counts[("ofac-sdn", "sanctions")] == 795  # EVM, TRON and bitcoin
