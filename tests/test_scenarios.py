"""Training scenarios on the demo basin: simulated readings, an incident and the true answer."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

import twin
from twin.impact import downstream_report


@pytest.fixture(scope="module")
def mine_leak(demo_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("scenario") / "cevennes"
    shutil.copytree(demo_dir, folder)
    out = subprocess.run(
        [sys.executable, "-m", "twin.cli", "scenario", str(folder), "mine-leak", "--seed", "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    return twin.open(str(folder)), json.loads(out.stdout)


def test_the_true_answer_is_saved_and_the_readings_are_labelled_simulated(mine_leak):
    basin, truth = mine_leak
    saved = json.loads((basin.path / "scenarios" / "mine-leak-1.json").read_text(encoding="utf-8"))
    assert saved == truth and truth["simulated"] is True
    assert set(truth["source"]["mass_kg"]) == {"As", "Pb", "Cd"}
    flags = set(basin.readings.query(parameters=["As", "DO"])["flag"])
    assert flags == {"S"}
    incident = basin.incidents.get(truth["incident_id"])
    assert incident["description"].startswith("[SIMULATED]") and incident["kind"] == "fish_kill"


def test_warnings_fire_at_the_stations_in_downstream_order(mine_leak):
    basin, truth = mine_leak
    episodes = basin.alerts(start=truth["window"][0], end=truth["window"][1])
    arsenic = episodes[episodes["parameter"] == "As"].sort_values("start")
    assert arsenic["station"].tolist() == ["GM-STETIENNE", "GM-MIALET", "GD-ANDUZE"]
    assert (arsenic["level_name"] == "red").all()
    # each fires within a reading or two of the plume's peak there
    for r in arsenic.itertuples():
        assert abs(r.start - pd.Timestamp(truth["peak_arrivals"][r.station])) <= pd.Timedelta(hours=4)


def test_the_downstream_report_of_the_true_release_names_lozere_then_gard(mine_leak):
    basin, truth = mine_leak
    src = truth["source"]
    report = downstream_report(basin, src["lon"], src["lat"], src["time"], mass_kg=src["mass_kg"]["As"], parameter="As")
    deps = [e["name"] for e in report["entries"] if e["kind"] == "jurisdiction" and e["level"] == "departement"]
    assert deps == ["Lozère", "Gard"]


def test_the_upstream_trace_from_the_fish_kill_finds_the_mine_first(mine_leak):
    from twin.tracing import trace_upstream

    basin, truth = mine_leak
    seen = pd.Timestamp(truth["peak_arrivals"]["GM-MIALET"]) + pd.Timedelta(hours=8)
    ranked = trace_upstream(basin, "GM-MIALET", "As", seen)
    best = ranked.iloc[0]
    assert best["candidate"] == "MINE-MOISSAC" and best["reach_id"] == truth["source"]["reach_id"]
    assert abs(best["release_time"] - pd.Timestamp(truth["source"]["time"])) <= pd.Timedelta(minutes=30)
    assert best["mass_kg"] == pytest.approx(truth["source"]["mass_kg"]["As"], rel=0.1)


def test_unknown_scenario_is_refused(demo):
    from twin.scenarios import ScenarioError, run

    with pytest.raises(ScenarioError, match="unknown scenario"):
        run(demo, "volcano")


def test_cross_boundary_spill_warns_in_lozere_then_gard(demo_dir, tmp_path):
    folder = tmp_path / "cevennes"
    shutil.copytree(demo_dir, folder)
    basin = twin.open(str(folder))
    from twin.scenarios import run

    truth = run(basin, "cross-boundary-spill", seed=2)
    episodes = basin.alerts(start=truth["window"][0], end=truth["window"][1])
    ammonia = episodes[episodes["parameter"] == "NH3-N"].sort_values("start")
    assert ammonia["station"].tolist()[:2] == ["GA-COLLET", "GA-STCECILE"]
    assert basin.sites.set_index("id").loc[["GA-COLLET", "GA-STCECILE"], "departement"].tolist() == ["48", "30"]
    src = truth["source"]
    report = downstream_report(basin, src["lon"], src["lat"], src["time"], mass_kg=src["mass_kg"]["NH3-N"])
    deps = [e["name"] for e in report["entries"] if e["kind"] == "jurisdiction" and e["level"] == "departement"]
    assert deps[:2] == ["Lozère", "Gard"]
