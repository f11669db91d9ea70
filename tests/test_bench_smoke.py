"""Every `python -m bench` figure at a tiny size: proves each benchmark module runs and the report is written
(timings are never asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import alert_latency, cases, commands, explorer, fanout, ingest, watch_match
from bench.__main__ import MARKER, main
from tests.support.anvil import ANVIL_MISSING, anvil_available
from tests.support.cases import ground_truth_folder


def test_watch_matching_agrees_with_a_plain_set() -> None:
    figures = watch_match.run(5_000, 3, 100, 1)  # raises if the matcher and the plain set disagree
    assert [f.what for f in figures][0].startswith("watch matching")


def test_fanout_delivers_everything() -> None:
    (figure,) = fanout.run(40, 4, 1)  # raises if the outbox does not drain
    assert "40 alerts" in figure.size


@pytest.mark.skipif(not anvil_available(), reason=ANVIL_MISSING)
def test_ingest_indexes_blocks_from_anvil() -> None:
    figures = ingest.run(2, 6, 1, postgres=False)
    assert "blocks/s" in figures[0].median


@pytest.mark.skipif(not anvil_available(), reason=ANVIL_MISSING)
def test_alert_latency_reaches_the_recording_telegram_server() -> None:
    (figure,) = alert_latency.run(2, 0.1)  # raises if no alert reached the server
    assert figure.median.endswith(" s")


def test_slack_commands_are_answered() -> None:
    answer, ack = commands.run(2, 1, runs=2)  # raises if a run answered nothing
    assert "2 runs (4 answered, 0 failed)" in answer.size and ack.verdict == "met"


def test_main_keeps_the_trace_section_and_writes_the_system_figures(tmp_path: Path) -> None:
    out = tmp_path / "BENCH.md"
    out.write_text("# Benchmarks\n\ntrace figures kept\n", encoding="utf-8")
    assert main(["--quick", "--only", "watch,fanout", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\ntrace figures kept") and MARKER in text
    assert "watch matching" in text and "fan-out" in text and "Not measured yet" in text
    assert main(["--quick", "--only", "watch", "--out", str(out)]) == 0  # rewriting replaces, never appends
    assert out.read_text(encoding="utf-8").count(MARKER) == 1


def test_main_writes_the_case_section_once_and_keeps_the_others(tmp_path: Path) -> None:
    out = tmp_path / "BENCH.md"
    out.write_text(f"# Benchmarks\n\ntrace figures kept\n\n{MARKER}\n\nsystem figures kept\n", encoding="utf-8")
    for _ in range(2):  # rewriting replaces the case section, never appends
        assert main(["--quick", "--only", "cases", "--cases", "LIFI", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\ntrace figures kept") and "system figures kept" in text
    assert text.count(cases.MARKER) == 1 and text.index(MARKER) < text.index(cases.MARKER)
    assert "| LIFI |" in text or "absent" in text


def test_main_writes_the_explorer_section_between_the_system_figures_and_the_cases(tmp_path: Path) -> None:
    out = tmp_path / "BENCH.md"
    kept = f"# Benchmarks\n\ntrace figures kept\n\n{MARKER}\n\nsystem figures kept\n\n{cases.MARKER}\n\ncases kept\n"
    out.write_text(kept, encoding="utf-8")
    for _ in range(2):  # rewriting replaces the explorer section, never appends
        assert main(["--quick", "--only", "explorer", "--explorer-cases", "HB", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\ntrace figures kept") and "system figures kept" in text
    assert text.count(explorer.MARKER) == 1 and text.rstrip().endswith("cases kept")
    assert text.index(MARKER) < text.index(explorer.MARKER) < text.index(cases.MARKER)
    if ground_truth_folder() is None:
        assert "absent" in text
        return
    assert "| HB (" in text and "graph walk (before #12)" in text and "value-aware (after #12)" in text
    assert "were fetched: yes" in text and "were fetched: NO" not in text
