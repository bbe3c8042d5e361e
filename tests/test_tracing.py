"""Upstream tracing on the real demo network: the true source of a simulated release ranks first."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import twin
from twin.analysis.scenarios import release_signal
from twin.analysis.tracing import TraceError, trace_upstream


@pytest.fixture(scope="module")
def spilled(demo_dir, tmp_path_factory):
    """A copy of the demo twin with arsenic readings at every station after a 200 kg release in Lozère."""
    folder = tmp_path_factory.mktemp("trace") / "cevennes"
    shutil.copytree(demo_dir, folder)
    basin = twin.open(str(folder))
    sites = basin.sites.set_index("id")
    st = sites.loc["GM-STETIENNE"]
    loc = basin.network.locate_cell(st.geometry.x, st.geometry.y, int(st["reach_id"]))
    main = basin.network.upstream(loc, max_km=15, mainstem=True)
    true_reach = int(main[main["from_km"] > 3].iloc[0]["reach_id"])  # on the river, 3 km or more above the station
    release = pd.Timestamp("2026-09-01T02:00Z")
    grid = pd.date_range("2026-08-30", "2026-09-04", freq="2h", tz="UTC")
    measure = 0.4 * float(basin.network.reaches.at[true_reach, "length_m"])
    rows, _ = release_signal(basin, true_reach, measure, release, {"As": 200.0}, grid)
    noise = np.random.default_rng(5).normal(0, 0.0002, len(rows))
    rows = rows.assign(
        value=(0.002 + rows["value"] + noise).round(6),
        unit="mg/L",
        flag="S",
        time=rows["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    path = folder / "as.csv"
    rows.to_csv(path, index=False)
    basin.readings.ingest(path)
    return basin, true_reach, release, measure


def test_the_true_source_ranks_first_with_its_place_time_and_mass(spilled):
    basin, true_reach, release, measure = spilled
    ranked = trace_upstream(basin.model, basin.store, "GM-MIALET", "As", "2026-09-02T12:00Z", window_hours=48)
    [best] = ranked[(ranked["rank"] == 1) & (ranked["reach_id"] == true_reach)].to_dict("records")
    assert best["measure_m"] == pytest.approx(measure, abs=300)
    assert abs(best["release_time"] - release) <= pd.Timedelta(minutes=30)
    assert best["mass_kg"] == pytest.approx(200, rel=0.1)
    assert best["duration_h"] == 0 and best["score"] > 0.95
    # candidates that explain the readings equally well come first, registered sources first
    # within each group, then by score
    assert ranked["consistent"].is_monotonic_decreasing
    for (consistent, _), group in ranked.groupby(["consistent", "registered"]):
        assert group["score"].is_monotonic_decreasing
        # those the readings cannot tell apart share a rank; the others have one each
        assert group["rank"].nunique() == (1 if consistent else len(group))


def test_candidates_below_a_clean_upstream_station_score_lower(spilled):
    basin, true_reach, _, _ = spilled
    ranked = trace_upstream(basin.model, basin.store, "GM-MIALET", "As", "2026-09-02T12:00Z", window_hours=48, top=200)
    st = basin.sites.set_index("id").loc["GM-STETIENNE"]
    below = ranked[
        ~ranked["reach_id"].isin(
            basin.network.upstream(basin.network.locate_cell(st.geometry.x, st.geometry.y, int(st["reach_id"])))[
                "reach_id"
            ]
        )
    ]
    assert len(below) and below["score"].max() < ranked["score"].iloc[0]


def test_bad_anomalies_are_refused(spilled):
    basin, _, _, _ = spilled
    with pytest.raises(TraceError, match="not a site"):
        trace_upstream(basin.model, basin.store, "NOPE", "As", "2026-09-02T12:00Z")
    with pytest.raises(TraceError, match="no zone"):
        trace_upstream(basin.model, basin.store, "GM-MIALET", "As", "2026-09-02T12:00")
    with pytest.raises(TraceError, match="no Hg readings"):
        trace_upstream(basin.model, basin.store, "GM-MIALET", "Hg", "2026-09-02T12:00Z")
    with pytest.raises(TraceError, match="durations_h must be hours >= 0"):
        trace_upstream(basin.model, basin.store, "GM-MIALET", "As", "2026-09-02T12:00Z", durations_h=[-1.0])


def test_cli_trace_upstream(spilled):
    basin, true_reach, _, _ = spilled
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "twin.cli",
            "trace",
            str(basin.path),
            "--upstream",
            "--station",
            "GM-MIALET",
            "--param",
            "As",
            "--at",
            "2026-09-02T12:00Z",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(out.stdout)
    assert data["candidates"][0]["rank"] == 1 and data["candidates"][0]["score"] > 0.95
