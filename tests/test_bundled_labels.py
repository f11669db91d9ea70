"""The bundled label sets in a fresh store, what `/labels` and `/risk` say about them through the test front end,
and `chainsleuth labels …` as an operator runs it (in-process), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from bot.backends.testing import TestBackend
from storage.db import Database, open_database
from tests.support.cli import run_cli
from tests.support.databases import Contents, StoreTemplates
from tracing.labels import LabelBook, LabelSet
from tracing.labels.bundled import BUNDLED, BUNDLED_PREFIX, ensure_bundled_labels

from .conftest import shared_data

LAZARUS = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"
ROUTER = "0xd90e2f925DA726b50C4Ed8D0Fb90Ad053324F31b"
POOL_10_ETH = "0x910Cbd523D972eb0a6f4cAe4618aD62622b39DbF"
MULTI_CHAIN_POOL = "0x1E34A77868E19A6647b1f2F47B51ed72dEDE95DD"
PHISHER = "0x80d7bb18521acbef32d7906502ebe94928690e93"  # Fake_Phishing1772 in Forta's Etherscan list
EXPECTED = {
    "ofac-sdn": 795,
    "tornado-cash": 93,
    "etherscan": 2_888,
    "forta": 7_469,
    "tagpack:ransomwhere-tag-pack": 7_457,
    "tagpack:blender-io": 45,
    "tagpack:sinbad-io": 2,
    "tagpack:mixing-services": 66,
    "tagpack:wasabi-fee-collector-addresses": 2,
    "tagpack:hydra-market": 117,
    "tagpack:ofac-tagpack": 20,  # its one ETH tag is left out
    "tagpack:fbi-identifies-cryptocurrency-funds-stolen-by-dprk": 6,
    "tagpack:known-cryptoservice-hacks": 608,
    "ransomware-receipts": 1_013,
}
EXAMPLE_PACK = Path(__file__).resolve().parent.parent / "examples" / "tagpack-example.yaml"


def _timed_first_load(book: LabelBook) -> tuple[dict[str, int], float]:
    started = time.perf_counter()
    loaded = ensure_bundled_labels(book)
    return loaded, time.perf_counter() - started


def test_first_run_loads_every_bundled_set_quickly(
    db: Database, store_templates: StoreTemplates, tmp_path: Path
) -> None:
    book = LabelBook(db)
    loaded, elapsed = _timed_first_load(book)
    assert loaded == EXPECTED
    # A load is well under a second; the budget is wall-clock time, and on a machine busy with the suite's other
    # workers one load can stall on the disk for seconds. A slow load is slow every time: take the best of three
    # first loads, each into a fresh store of the same kind.
    timings = [elapsed]
    kind = "sqlite" if db.url.startswith("sqlite") else "postgres"
    while min(timings) >= 5.0 and len(timings) < 3:
        folder = tmp_path / f"again-{len(timings)}"
        folder.mkdir()
        with store_templates.store(kind, Contents.MIGRATED, folder) as url:
            again = open_database(url)
            try:
                timings.append(_timed_first_load(LabelBook(again))[1])
            finally:
                again.dispose()
    assert min(timings) < 5.0, f"first-run label load took {', '.join(f'{t:.1f}s' for t in timings)}"
    assert {info.source: info.rows for info in book.sets()} == EXPECTED
    assert all(info.version.startswith(BUNDLED_PREFIX) for info in book.sets())
    assert ensure_bundled_labels(book) == {}  # nothing to do on the next start


def test_an_older_bundle_is_replaced_but_an_operator_import_is_kept(db: Database) -> None:
    book = LabelBook(db)
    ensure_bundled_labels(book)
    book.replace_set(LabelSet("ofac-sdn", "SDN 2026-01-15", "", ""), [])  # as `labels import` would
    book.replace_set(LabelSet("tornado-cash", BUNDLED_PREFIX + "an older bundle", "", ""), [])
    assert ensure_bundled_labels(book) == {"tornado-cash": 93}
    assert book.set_version("tornado-cash") == next(b.version for b in BUNDLED if b.source == "tornado-cash")
    assert book.set_version("ofac-sdn") == "SDN 2026-01-15"
    assert book.for_address(LAZARUS.lower()) and not any(
        lb.source == "ofac-sdn" for lb in book.for_address(LAZARUS.lower())
    )


async def test_labels_of_a_tornado_router_come_from_three_sets(bot: TestBackend) -> None:
    reply = await bot.say(f"/labels {ROUTER}")
    text = reply.text
    assert "Mixer: Tornado.Cash: Router — tornado-cash, confidence 100%" in text
    assert "Mixer: Tornado.Cash: Router — etherscan, confidence 90%" in text
    assert "Sanctions: Tornado Cash — ofac-sdn, confidence 100%, DELISTED 2025-03-21" in text


async def test_risk_of_a_tornado_pool_is_a_mixer_not_a_sanction(bot: TestBackend) -> None:
    reply = await bot.say(f"/risk {POOL_10_ETH}")
    text = reply.text
    assert "HIGH risk (80/100)" in text
    assert "SEVERE" not in text and "SANCTIONED" not in text
    assert "Mixer: Tornado.Cash: 10 ETH pool — tornado-cash" in text
    assert "Was labelled Sanctions “Tornado Cash” by ofac-sdn until 2025-03-21." in text


async def test_lazarus_stays_an_active_sanction_with_the_hack_tags(bot: TestBackend) -> None:
    reply = await bot.say(f"/risk {LAZARUS}")
    assert "SEVERE" in reply.text and "SANCTIONED" in reply.text
    labels = await bot.say(f"/labels {LAZARUS}")
    assert "Sanctions: Lazarus Group — ofac-sdn" in labels.text and "DELISTED" not in labels.text
    assert "Hack/exploit: Ronin Bridge Exploiter — etherscan" in labels.text


async def test_chain_flag_picks_the_pool_of_that_chain(bot: TestBackend) -> None:
    reply = await bot.say(f"/labels {MULTI_CHAIN_POOL} --chain bsc")
    assert "Tornado.Cash: 100 BNB pool" in reply.text and "xDAI" not in reply.text
    assert "DELISTED 2025-03-21" in reply.text  # OFAC labels hold on every chain


async def test_forta_phishing_address_is_a_scam(bot: TestBackend) -> None:
    reply = await bot.say(f"/risk {PHISHER}")
    assert "HIGH risk (60/100)" in reply.text
    assert "Scam/phishing: Fake_Phishing1772 — forta, confidence 80%" in reply.text


# --- the CLI, as an operator runs it --------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, prepared_database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "SLACK_", "CHAINS", "ETH_"))}
    env.update({"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": prepared_database_url, "DEMO_DATA": "false"})
    return env


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_cli(args, env)


def test_cli_imports_a_tagpack_rejects_a_bad_one_and_shows_stats(cli_env: dict[str, str], tmp_path: Path) -> None:
    result = cli(["labels", "import", str(EXAMPLE_PACK), "--format", "tagpack"], cli_env)
    assert result.returncode == 0, result.stderr
    assert "3 labels from tagpack:acme-fiu-drainer-watch [2025-07-31]" in result.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "# title: t\n# creator: c\n# source: https://s.example\n"
        "address,name,category,confidence\n0x12,a,scam,0.5\n0x2222222222222222222222222222222222222222,b,nope,2\n"
    )
    rejected = cli(["labels", "import", str(bad), "--format", "tagpack"], cli_env)
    assert rejected.returncode == 1
    assert "bad.csv: 2 problems, nothing imported" in rejected.stderr
    assert "line 5 (0x12…)" in rejected.stderr and "line 6 (0x222222222222…)" in rejected.stderr
    stats = cli(["labels", "stats"], cli_env)
    assert stats.returncode == 0, stats.stderr
    width = max(len(source) for source in [*EXPECTED, "tagpack:acme-fiu-drainer-watch"])
    for source, rows in EXPECTED.items():
        assert f"{source:<{width}} bundled  {rows:>7} labels" in stats.stdout
    assert f"{'tagpack:acme-fiu-drainer-watch':<{width}} imported {3:>7} labels" in stats.stdout
    assert "tagpack:t " not in stats.stdout
    assert "labels per category (20584 in all):" in stats.stdout
    assert "  sanctions        795  Sanctions" in stats.stdout
    listed = cli(["labels", "list", ROUTER], cli_env)
    assert listed.returncode == 0, listed.stderr
    for source in ("— tornado-cash,", "— etherscan,", "— ofac-sdn,"):
        assert source in listed.stdout


def test_cli_imports_scamsniffer_and_another_explorer(cli_env: dict[str, str]) -> None:
    folder = shared_data("scamsniffer-scam-database")
    bsc = shared_data("etherscan-labels-brianleect", "bscscan_combinedAllLabels.json")
    result = cli(["labels", "import", str(folder), "--format", "scamsniffer", "--version", "750005a"], cli_env)
    assert result.returncode == 0, result.stderr
    assert "2612 labels from scamsniffer [750005a]" in result.stdout
    result = cli(["labels", "import", str(bsc), "--format", "etherscan"], cli_env)
    assert result.returncode == 0, result.stderr
    assert "labels from bscscan" in result.stdout and "chain bsc" in result.stdout
    listed = cli(["labels", "list", "0x3da02e1f29bcbed185eca0d3299efd46e6e7e155"], cli_env)
    assert "Scam/phishing: ScamSniffer: phishing address (888neko.xyz +7 more) — scamsniffer" in listed.stdout


def test_cli_ofac_version_sets_the_list_date(cli_env: dict[str, str], tmp_path: Path) -> None:
    newer = tmp_path / "sdn.csv"
    newer.write_text(
        "asset,address,sdn_profile_id,sdn_primary_name,party_type,programs,entity_first_listed\n"
        "ETH,0x2222222222222222222222222222222222222222,1,Test Entity,Entity,CYBER2,2026-01-01\n"
    )
    result = cli(["labels", "import", str(newer), "--format", "ofac", "--version", "2026-01-15"], cli_env)
    assert result.returncode == 0, result.stderr
    assert "1 labels from ofac-sdn [2026-01-15]" in result.stdout
    risk = cli(["say", f"/risk {LAZARUS}"], cli_env)
    assert "SANCTIONED" not in risk.stdout
    assert "Was labelled Sanctions “Lazarus Group” by ofac-sdn until 2026-01-15." in risk.stdout
    refused = cli(["labels", "import", str(newer), "--format", "ofac", "--version", "bundled: x"], cli_env)
    assert refused.returncode == 2 and "must not start with" in refused.stderr
