"""The benchmark scripts still run (on tiny inputs), print the fields benchmarks/README.md reads, and measure the right thing.

The README's tables are filled from these JSON lines: each line must carry the fields its measure
documents (:data:`FIELDS`), and the figures derived from others (rates, bytes per cell, speed ratios,
whether a goal is met) must agree with them. The build benchmark's twin, saved by its child
process, must be the twin an in-memory build of the same DEM gives: a benchmark of another result
would measure nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import twin

ROOT = Path(__file__).resolve().parent.parent
SIZE = 200

#: The fields of each kind of line, from benchmarks/README.md and the docstrings of the scripts it points to
FIELDS = {
    # build.py ("What is measured" and "How" in its docstring; the README's wall s, peak MB, bytes/cell, compile_s)
    "twin": {"tool", "version", "step", "cells", "size", "import_s", "compile_s", "wall_s", "cpu_s", "peak_mem_mb",
             "baseline_mem_mb", "bytes_per_cell", "step_bytes_per_cell", "peak_scope"},
    "twin+save": {"tool", "version", "step", "cells", "size", "compile_s", "wall_s", "cpu_s", "peak_mem_mb",
                  "baseline_mem_mb", "bytes_per_cell", "step_bytes_per_cell", "output_mb"},
    "twin-tiled": {"tool", "version", "step", "cells", "size", "import_s", "compile_s", "wall_s", "cpu_s",
                   "peak_mem_mb", "baseline_mem_mb", "bytes_per_cell", "step_bytes_per_cell", "stages", "tile_size",
                   "workers", "worker_peak_mem_mb", "reaches"},
    "pyflwdir": {"tool", "version", "step", "cells", "size", "import_s", "compile_s", "wall_s", "cpu_s",
                 "peak_mem_mb", "baseline_mem_mb", "bytes_per_cell", "step_bytes_per_cell", "stages", "n_streams"},
    "summary": {"summary", "size", "cells", "twin_bytes_per_cell", "twin_step_bytes_per_cell",
                "twin_speedup_vs_pyflwdir", "twin_speedup_vs_richdem", "twin_speedup_vs_pysheds",
                "tiled_speedup_vs_pyflwdir", "tiled_speedup_vs_richdem", "tiled_worker_peak_mem_mb", "goals",
                "all_checked_goals_met", "goals_unchecked"},
    # readings.py (the README's rows/s, values/s and year-view seconds, first read and again)
    "ingest": {"measure", "rows", "stored", "wall_s", "rows_per_s", "goal_rows_per_s", "goal_met"},
    "ingest_again": {"measure", "rows", "duplicates", "wall_s", "rows_per_s"},
    "classify_values": {"measure", "values", "wall_s", "values_per_s", "goal_values_per_s", "goal_met"},
    "classify_samples": {"measure", "values", "wall_s", "values_per_s", "goal_values_per_s", "goal_met"},
    "year_view": {"measure", "call", "stations", "times", "parameters", "readings", "wall_s", "dims", "goal_s",
                  "goal_met"},
    # analyses.py (median and p95 ms; plume reaches, sites and seconds; episodes; rank and release-time error)
    "downstream_trace": {"measure", "points", "median_ms", "p95_ms", "goal_p95_ms", "goal_met"},
    "plume": {"measure", "hours", "reaches", "sites", "wall_s", "goal_s", "goal_met"},
    "warnings_year": {"measure", "stations", "readings", "episodes", "wall_s", "goal_s", "goal_met"},
    "upstream_trace": {"measure", "candidates", "true_rank", "release_time_error_min", "wall_s", "goal_s",
                       "goal_met"},
}  # fmt: skip
#: the goal of each measure: the figure, the goal's field, and whether the goal is an upper bound
GOALS = {
    "ingest": ("rows_per_s", "goal_rows_per_s", False),
    "classify_values": ("values_per_s", "goal_values_per_s", False),
    "classify_samples": ("values_per_s", "goal_values_per_s", False),
    "year_view": ("wall_s", "goal_s", True),
    "downstream_trace": ("p95_ms", "goal_p95_ms", True),
    "plume": ("wall_s", "goal_s", True),
    "warnings_year": ("wall_s", "goal_s", True),
    "upstream_trace": ("wall_s", "goal_s", True),
}


def run(script: str, *args: str) -> list[dict]:
    """Run a benchmark script and read its JSON lines; on failure, say what it wrote on stderr."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, f"{script} exited {out.returncode}:\n{out.stderr[-4000:]}"
    return [json.loads(line) for line in out.stdout.splitlines()]


def kind(record: dict) -> str:
    return "summary" if record.get("summary") else record.get("tool") or record["measure"]


def check_fields(lines: list[dict]) -> None:
    for rec in lines:
        missing = FIELDS[kind(rec)] - set(rec)
        assert not missing, f"{kind(rec)} line lacks {sorted(missing)}: {rec}"
        assert "error" not in rec and "skipped" not in rec, rec


def check_goal(rec: dict) -> None:
    """``goal_met`` says what the figure says (unless the figure, rounded, is within 1 % of the goal)."""
    figure, goal, upper = GOALS[rec["measure"]]
    value, bound = rec[figure], rec[goal]
    if abs(value - bound) > 0.01 * bound:
        assert rec["goal_met"] is (value < bound if upper else value >= bound), rec


def check_rate(count: int, wall_s: float, rate: float) -> None:
    """``rate`` is ``count`` over the wall time that ``wall_s`` (rounded to the millisecond) stands for."""
    assert count / (wall_s + 0.0005) - 1 <= rate <= count / max(wall_s - 0.0005, 1e-9) + 1, (count, wall_s, rate)


def test_build_benchmark_prints_its_figures_and_builds_the_same_twin_as_in_memory(tmp_path):
    lines = run(
        "build.py", "--size", str(SIZE), "--tools", "twin,twin-tiled,pyflwdir", "--workdir", str(tmp_path),
        "--tile-size", "32", "--workers", "2",
    )  # fmt: skip
    check_fields(lines)
    by_tool = {rec["tool"]: rec for rec in lines if "tool" in rec}
    assert list(by_tool) == ["twin", "twin+save", "twin-tiled", "pyflwdir"]
    tiled = by_tool["twin-tiled"]
    assert tiled["tile_size"] == 32 and tiled["workers"] == 2
    assert len(tiled["worker_peak_mem_mb"]) == 2 and all(m > 50 for m in tiled["worker_peak_mem_mb"])
    for rec in by_tool.values():
        assert rec["cells"] == SIZE * SIZE and rec["size"] == SIZE
        assert rec["wall_s"] > 0 and rec["cpu_s"] >= 0 and rec["compile_s"] > 0
        assert rec["bytes_per_cell"] == pytest.approx(rec["peak_mem_mb"] * 2**20 / rec["cells"], rel=2e-3)
        assert 0 <= rec["step_bytes_per_cell"] <= rec["bytes_per_cell"]
        assert rec["baseline_mem_mb"] <= rec["peak_mem_mb"]
    assert set(by_tool["pyflwdir"]["stages"]) == {"read", "from_dem", "upstream_area", "streams"}
    summary = lines[-1]
    assert summary["summary"] is True and summary["cells"] == SIZE * SIZE
    ratio = by_tool["pyflwdir"]["wall_s"] / by_tool["twin"]["wall_s"]
    assert summary["twin_speedup_vs_pyflwdir"] == pytest.approx(ratio, abs=0.01)
    assert summary["twin_speedup_vs_richdem"] is None and summary["twin_speedup_vs_pysheds"] is None
    twin_peak = max(by_tool["twin"]["bytes_per_cell"], by_tool["twin+save"]["bytes_per_cell"])
    assert summary["twin_bytes_per_cell"] == twin_peak
    goals = summary["goals"]
    assert goals["twin_peak_lt_60_bytes_per_cell"] is (twin_peak < 60)
    assert goals["twin_2x_faster_than_pyflwdir"] is (summary["twin_speedup_vs_pyflwdir"] >= 2)
    assert goals["twin_build_le_richdem"] is None and goals["tiled_le_0.6_of_richdem_time"] is None
    assert summary["goals_unchecked"] == ["twin_build_le_richdem", "tiled_le_0.6_of_richdem_time"]
    tiled_ratio = by_tool["pyflwdir"]["wall_s"] / tiled["wall_s"]
    assert summary["tiled_speedup_vs_pyflwdir"] == pytest.approx(tiled_ratio, abs=0.01)
    assert goals["tiled_3x_faster_than_pyflwdir"] is (summary["tiled_speedup_vs_pyflwdir"] >= 3)
    assert summary["all_checked_goals_met"] is all(v for v in goals.values() if v is not None)

    # what was timed is the twin a user gets from the same DEM
    saved = twin.BasinTwin.open(tmp_path / f"twin-n{SIZE}")
    built = twin.BasinTwin.build(tmp_path / f"synthetic-n{SIZE}-s0" / "basin.yml")
    np.testing.assert_array_equal(saved.drainage.d8, built.drainage.d8)
    np.testing.assert_array_equal(saved.drainage.upstream_cells, built.drainage.upstream_cells)
    np.testing.assert_array_equal(saved.drainage.reach, built.drainage.reach)
    cols = ["reach_id", "next_down", "length_m", "slope", "upstream_area_km2", "strahler"]
    assert len(built.network.reaches) > 1
    assert tiled["reaches"] == len(built.network.reaches)  # the tiled build found the same reaches
    pd.testing.assert_frame_equal(
        saved.network.reaches[cols].reset_index(drop=True),
        built.network.reaches[cols].reset_index(drop=True),
        check_dtype=False,
    )
    assert saved.info() == built.info()
    assert by_tool["twin+save"]["output_mb"] == pytest.approx(
        sum(f.stat().st_size for f in saved.path.rglob("*") if f.is_file() and f.name != "ops.sqlite") / 2**20,
        abs=0.06,
    )


def test_readings_benchmark_prints_its_measures(tmp_path):
    rows, values, stations = 2000, 100_000, 3
    lines = run("readings.py", "--rows", str(rows), "--values", str(values), "--stations", str(stations))
    check_fields(lines)
    assert [kind(rec) for rec in lines] == [
        "ingest",
        "ingest_again",
        "classify_values",
        "classify_samples",
        "year_view",
        "year_view",
    ]
    ingest, again, by_value, by_sample, first, second = lines
    assert ingest["stored"] == rows and again["duplicates"] == rows
    for rec in (ingest, again):
        check_rate(rows, rec["wall_s"], rec["rows_per_s"])
    for rec in (by_value, by_sample):
        assert rec["values"] == values
        check_rate(values, rec["wall_s"], rec["values_per_s"])
    assert [first["call"], second["call"]] == ["first", "again"]
    for rec in (first, second):
        assert rec["dims"] == {"station": stations, "time": 2190}
        assert rec["readings"] == stations * rec["times"] * rec["parameters"] == stations * 2190 * 8
    for rec in lines:
        if rec["measure"] in GOALS:
            check_goal(rec)


def test_analyses_benchmark_prints_its_measures():
    lines = run("analyses.py", "--points", "5", "--stations", "2")
    check_fields(lines)
    assert [kind(rec) for rec in lines] == ["downstream_trace", "plume", "warnings_year", "upstream_trace"]
    trace, plume, warnings, upstream = lines
    assert trace["points"] == 5 and 0 < trace["median_ms"] <= trace["p95_ms"]
    assert plume["hours"] == 72 and plume["reaches"] > 0 and plume["sites"] > 0
    assert warnings["stations"] == 2 and warnings["readings"] > 0
    assert upstream["true_rank"] == 1 and upstream["candidates"] >= 1
    for rec in lines:
        check_goal(rec)
