"""The load test still runs: 10 clients for 5 seconds against ``twin serve``, and no request fails."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .test_web_api import scenario_twin

ROOT = Path(__file__).resolve().parent.parent


def test_ten_clients_for_five_seconds_get_no_error(demo_dir, tmp_path):
    basin, _ = scenario_twin(demo_dir, tmp_path / "cevennes")
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "web_load.py"), "--seconds", "5", "--clients", "10"]
        + ["--twin", str(basin.path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert out.returncode == 0, out.stderr[-2000:]
    by_kind = {rec["kind"]: rec for rec in lines}
    assert set(by_kind) == {"tile", "time", "profile", "station", "river", "features", "all"}
    total = by_kind["all"]
    assert total["requests"] > 20 and total["errors"] == 0
    assert total["requests"] == sum(rec["requests"] for kind, rec in by_kind.items() if kind != "all")
    assert total["p50_ms"] <= total["p95_ms"]
