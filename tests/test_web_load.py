"""The load test still runs: 10 clients for 5 seconds against ``twin serve``, idle then while an ingest runs.

No request may fail, and what the feed ingested must be what the server shows afterwards:
the warnings it raised are those a full evaluation of the store gives.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

import twin
from twin.analysis.response import warnings

from .test_web_api import scenario_twin

ROOT = Path(__file__).resolve().parent.parent
KINDS = {"tile", "time", "profile", "station", "river", "features", "all"}


def test_ten_clients_get_no_error_idle_and_while_an_ingest_runs(demo_dir, tmp_path):
    basin, _ = scenario_twin(demo_dir, tmp_path / "cevennes")
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "web_load.py"), "--seconds", "5", "--clients", "10", "--ingest"]
        + ["--twin", str(basin.path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [rec["kind"] for rec in lines if rec["mode"] == "warmup"] == ["warmup"]
    for mode in ("idle", "ingest"):
        by_kind = {rec["kind"]: rec for rec in lines if rec["mode"] == mode and rec["kind"] != "ingest"}
        assert set(by_kind) == KINDS
        total = by_kind["all"]
        assert total["requests"] > 20 and total["errors"] == 0
        assert total["requests"] == sum(rec["requests"] for kind, rec in by_kind.items() if kind != "all")
        assert total["p50_ms"] <= total["p95_ms"] <= total["p99_ms"] <= total["max_ms"]
    (fed,) = [rec for rec in lines if rec["kind"] == "ingest"]
    assert fed["batches"] >= 3 and fed["rows_stored"] > 0 and fed["rows_rejected"] == 0
    # the readings are in the store, and the warnings the server showed are those of a full evaluation
    start = pd.Timestamp(fed["fed_from"])
    stored = twin.open(str(basin.path)).readings.query(start=start)
    assert stored["time"].max() >= pd.Timestamp(fed["fed_to"]) - pd.Timedelta(hours=6)
    reopened = twin.open(str(basin.path))
    full = warnings(reopened.model, reopened.store, plans=False)
    raised = full[full["start"] >= start]
    assert len(raised) > 0 and set(raised["parameter"]) <= {"As", "Pb", "Cd"}  # the feed's leak
    assert fed["warnings_from_ingest"] == len(raised)
