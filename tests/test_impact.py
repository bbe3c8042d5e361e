"""The downstream report of a release: units, sections and sites reached, when and how badly."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from twin.analysis.impact import downstream_report

from .synthetic import cell_lonlat


@pytest.fixture
def basin(make_saved_valley):
    return make_saved_valley({"MID": (25, "station"), "LOW": (35, "intake")})


def test_a_release_in_the_north_reaches_the_south_then_the_station_then_the_intake(basin):
    lon, lat = cell_lonlat(8, 15)
    report = downstream_report(basin.model, lon, lat, "2026-08-01T06:00+02:00", mass_kg=50, parameter="NH3-N")
    entries = report["entries"]
    kinds = [(e["kind"], e["id"]) for e in entries]
    assert kinds[0] == ("jurisdiction", "N")
    assert kinds.index(("jurisdiction", "S")) < kinds.index(("station", "MID")) < kinds.index(("intake", "LOW"))
    t0 = pd.Timestamp("2026-08-01T04:00Z")
    reached = [e for e in entries if e["kind"] in ("section", "station", "intake")]
    for e in reached:
        assert t0 < e["earliest"] <= e["likely"] < e["passed"]
    assert [e["likely"] for e in reached] == sorted(e["likely"] for e in reached)
    # the plume spreads and is diluted on its way: the peak does not grow downstream
    peaks = [e["peak_mg_l"] for e in reached]
    assert all(a >= b - 1e-9 for a, b in zip(peaks, peaks[1:]))
    mid = next(e for e in entries if e["id"] == "MID")
    assert mid["class"] == 6 and mid["label"] == "劣V"  # 50 kg of ammonia in a small stream


def test_a_small_release_leaves_the_class_good(basin):
    lon, lat = cell_lonlat(8, 15)
    report = downstream_report(basin.model, lon, lat, "2026-08-01T04:00Z", mass_kg=1e-7, parameter="NH3-N")
    low = next(e for e in report["entries"] if e["id"] == "LOW")
    assert low["class"] == 1


def test_cli_trace_downstream(basin):
    lon, lat = cell_lonlat(8, 15)
    trace = [
        sys.executable,
        "-m",
        "twin.cli",
        "trace",
        str(basin.path),
        "--downstream",
        "--lon",
        str(lon),
        "--lat",
        str(lat),
        "--at",
    ]
    out = subprocess.run(trace + ["2026-08-01T04:00Z", "--mass", "20"], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    assert data["release"]["mass_kg"] == 20
    assert {e["id"] for e in data["entries"]} >= {"N", "S", "MID", "LOW"}
    bad = subprocess.run(trace + ["2026-08-01T04:00"], capture_output=True, text=True)
    assert bad.returncode == 1 and "has no zone" in bad.stderr
