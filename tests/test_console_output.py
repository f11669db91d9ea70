"""Console output that keeps things: attachments written under DATA_DIR/exports with their path printed,
`chainsleuth transfers` in time order with plain decimals, and invisible characters revealed on every renderer."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path

from bot.app import App
from bot.backends.console import ConsoleBackend
from bot.backends.testing import TestBackend
from bot.messages import Reply, Text
from bot.render.slack_blocks import render_blocks
from bot.render.telegram_html import render_html
from bot.render.text import render_text
from storage.db import Database
from tests.support.cli import run_cli
from tests.support.pictures import SvgPicture
from tests.test_cli import env_for
from tests.test_trace import addr
from tests.test_trace_commands import disagreeing
from tests.test_trace_compare_outputs import box_name
from tracing.chain.index import TransferIndex
from tracing.chain.transfer import Transfer, TransferKind

LAZARUS = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"
SUBJECT = "0x" + "c3" * 20
OTHER = "0x" + "d4" * 20
OVERRIDE = "Binance\u202e6 tohvaW\u200b"


async def test_the_console_writes_attachments_under_exports_and_prints_their_path(app: App) -> None:
    out = io.StringIO()
    console = ConsoleBackend(app.bot, stdin=io.StringIO(f"/trace {LAZARUS} --hops 1\n"), stdout=out)
    await console.serve()
    exports = app.settings.data_dir / "exports"
    saved = sorted(exports.iterdir())
    assert any(p.name.endswith(".csv") for p in saved)
    for path in saved:
        assert str(path.resolve()) in out.getvalue() and path.stat().st_size > 0
    assert "[attachment" not in out.getvalue()
    csv = next(p for p in saved if p.name.endswith(".csv"))
    assert csv.read_text().startswith("chain,") or "," in csv.read_text().splitlines()[0]


async def test_the_console_writes_the_compare_picture_and_csv_and_prints_their_paths(app: App) -> None:
    disagreeing(app.db)
    out = io.StringIO()
    console = ConsoleBackend(app.bot, stdin=io.StringIO(f"/trace {addr(1)} --model compare\n"), stdout=out)
    await console.serve()
    text = out.getvalue()
    assert "models compared: haircut, poison, fifo" in text and "Where they disagree (1 address):" in text
    saved = {p.suffix: p for p in (app.settings.data_dir / "exports").iterdir()}
    assert set(saved) == {".png", ".svg", ".csv"}
    for path in saved.values():
        assert f"compare-{addr(1)[:10]}-out-3h" in path.name and str(path.resolve()) in text
    assert saved[".png"].read_bytes().startswith(b"\x89PNG")
    drawn = SvgPicture(saved[".svg"].read_bytes())
    assert len(drawn.addresses) == 4 and "models disagree" in drawn.box_with(box_name(3)).text
    rows = saved[".csv"].read_text().splitlines()
    assert len(rows) == 4 and rows[0].startswith("hop,from,to,") and "poison_taint" in rows[0]


def test_say_writes_attachments_too(tmp_path: Path, prepared_database_url: str) -> None:
    result = run_cli(["say", f"/trace {LAZARUS} --hops 1"], env_for(tmp_path, prepared_database_url))
    assert result.returncode == 0, result.stderr
    exports = tmp_path / "data" / "exports"
    assert [p for p in exports.iterdir() if str(p.resolve()) in result.stdout]


def _transfer(block: int, timestamp: int, value: int, tx: str) -> Transfer:
    return Transfer("eth", block, "", timestamp, tx, TransferKind.NATIVE, "tx", OTHER, SUBJECT, value, None, 18, "ETH")


def test_transfers_are_listed_oldest_first_with_plain_decimals(db: Database, tmp_path: Path, database_url: str) -> None:
    TransferIndex(db).add(
        [
            _transfer(0, 1_700_000_300, 4_269_000_000, "0x" + "01" * 32),  # no block number (an import)
            _transfer(18_000_000, 1_700_000_100, 10**18, "0x" + "ff" * 32),
            _transfer(18_000_001, 1_700_000_200, 25 * 10**17, "0x" + "00" * 32),
        ]
    )
    result = run_cli(["transfers", SUBJECT], env_for(tmp_path, database_url))
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("eth ")]
    assert [line.split()[2] for line in lines] == ["18000000", "18000001", "?"]
    assert "1 ETH" in lines[0] and "2.5 ETH" in lines[1] and "0.000000004269 ETH" in lines[2]
    assert "E-" not in result.stdout
    listed = json.loads(run_cli(["transfers", SUBJECT, "--json"], env_for(tmp_path, database_url)).stdout)
    assert [t["timestamp"] for t in listed] == [1_700_000_100, 1_700_000_200, 1_700_000_300]


def test_invisible_characters_are_revealed_on_every_renderer() -> None:
    reply = Reply((Text(f"label {OVERRIDE}"),))
    for shown in (
        render_text(reply),
        "".join(render_html(reply)),
        json.dumps(render_blocks(reply).blocks, ensure_ascii=False) + render_blocks(reply).text,
    ):
        assert "\u202e" not in shown and "\u200b" not in shown
        assert "U+202E" in shown and "U+200B" in shown


async def test_a_label_name_with_a_bidi_override_is_shown_revealed(bot: TestBackend) -> None:
    saved = await bot.say(f"/label {SUBJECT} exchange {OVERRIDE}")
    assert not saved.is_error, saved.text
    listed = await bot.say(f"/labels {SUBJECT}")
    assert "Binance[U+202E]6 tohvaW[U+200B]" in listed.text and "\u202e" not in listed.text
    refused = await bot.say("/risk 0x12\u202e34")
    assert refused.is_error and "\u202e" not in refused.text


def test_a_failed_telegram_start_is_one_json_line(tmp_path: Path, prepared_database_url: str) -> None:
    with socket.socket() as probe:  # a port nobody listens on: the Bot API cannot be reached
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = env_for(tmp_path, prepared_database_url) | {
        "TELEGRAM_BOT_TOKEN": "123456789:" + "A" * 35,
        "TELEGRAM_BASE_URL": f"http://127.0.0.1:{port}/bot",
        "LOG_JSON": "true",
    }
    result = run_cli(["run", "--platform", "telegram"], env)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [json.loads(line) for line in lines if '"level": "error"' in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert errors[0]["message"].startswith("cannot start the telegram front end: cannot reach the Bot API")
    assert "A" * 35 not in result.stderr
