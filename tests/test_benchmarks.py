"""The benchmark scripts still run (on a tiny grid) and print what they promise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    """Run a benchmark script; on failure, say what it wrote on stderr."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, f"{script} exited {out.returncode}:\n{out.stderr[-4000:]}"
    return out


def test_build_benchmark_prints_one_json_line_per_tool(tmp_path):
    out = run("build.py", "--size", "200", "--tools", "twin,pyflwdir", "--workdir", str(tmp_path))
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    by_tool = {rec.get("tool"): rec for rec in lines if "tool" in rec}
    assert {"twin", "twin+save", "pyflwdir"} <= set(by_tool)
    for rec in by_tool.values():
        assert rec["cells"] == 200 * 200
        assert rec["wall_s"] > 0 and rec["peak_mem_mb"] > 0
    summary = lines[-1]
    assert summary["summary"] is True
    assert summary["twin_speedup_vs_pyflwdir"] > 0


def test_readings_benchmark_prints_its_measures(tmp_path):
    out = run("readings.py", "--rows", "2000", "--values", "100000", "--stations", "3")
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    measures = [rec["measure"] for rec in lines]
    assert measures == ["ingest", "ingest_again", "classify_values", "classify_samples", "year_view", "year_view"]
    assert lines[0]["stored"] == 2000 and lines[1]["duplicates"] == 2000
    assert lines[-1]["dims"] == {"station": 3, "time": 2190}


def test_analyses_benchmark_prints_its_measures():
    out = run("analyses.py", "--points", "5", "--stations", "2")
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [rec["measure"] for rec in lines] == ["downstream_trace", "plume", "warnings_year", "upstream_trace"]
    assert lines[-1]["true_rank"] == 1
