"""The benchmark at toy size: the in-memory trace, networkx and the recursive CTE must find the same addresses
(timings are measured by `python -m bench`, never asserted here)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("numpy")
pytest.importorskip("networkx")

from bench.trace_risk import markdown, parse, run  # noqa: E402


def test_the_three_methods_agree_and_the_report_is_written(tmp_path: Path) -> None:
    args = parse(
        [
            "--edges", "20000", "--addresses", "6000", "--hubs", "20", "--roots", "40", "--baseline-roots", "40",
            "--cte-roots", "40", "--cte-edges", "20000", "--risk-roots", "10", "--store-sample", "3000",
            "--runs", "1", "--out", str(tmp_path / "BENCH.md"),
        ]
    )  # fmt: skip
    results = run(args)
    same_nx = int(results.agreement["networkx"].split("/")[0])
    assert same_nx >= 38, results.agreement
    contained = int(results.agreement["cte"].split(", ")[1].split("/")[0])
    assert contained == 40, results.agreement  # every address we reach, the CTE (all time-respecting walks) reaches
    text = markdown(results)
    assert "| 3-hop trace following the graph, in-memory graph (20,000 transfers)" in text and "## Machine" in text
    assert "| 3-hop value-aware trace, the default" in text
    assert results.timings["risk"].samples == 10
