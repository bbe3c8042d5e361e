"""Training scenarios on the demo basin, each run end to end from the CLI: the readings and
incident it writes, the warnings they raise (in downstream order, with response plans), the
downstream report of the true release, and the upstream trace finding the true source first."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import rasterio

import twin
from twin.analysis.impact import downstream_report
from twin.analysis.scenarios import SCENARIOS

# For each scenario: the seed, the parameter followed, the stations whose first warning on it
# must come in this (downstream) order, the station whose anomaly is traced upstream (hours
# after its peak), and the substance's decay the tracer is told (sediment settles).
CASES = {
    "mine-leak": {
        "seed": 1,
        "parameter": "As",
        "warned": ["GM-STETIENNE", "GM-MIALET", "GD-ANDUZE"],
        "trace_from": ("GM-MIALET", 8),
    },
    "sand-mining": {
        "seed": 1,
        "parameter": "turbidity",
        "warned": ["GA-COLLET", "GA-STCECILE"],
        "trace_from": ("GA-STCECILE", 4),
        "decay": 0.05,
    },
    "waste-dumping": {
        "seed": 1,
        "parameter": "NH3-N",
        "warned": ["GA-COLLET", "GA-STCECILE", "GA-GRANDCOMBE", "GA-ALES"],
        "trace_from": ("GA-STCECILE", 6),
    },
    "cross-boundary-spill": {
        "seed": 2,
        "parameter": "NH3-N",
        "warned": ["GA-COLLET", "GA-STCECILE", "GA-GRANDCOMBE", "GA-ALES"],
        "trace_from": ("GA-STCECILE", 6),
    },
}


def cli(*args: str) -> dict | list:
    out = subprocess.run([sys.executable, "-m", "twin.cli", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def run_scenario(demo_dir, tmp_path_factory):
    """Runs a scenario from the CLI on a copy of the demo twin, once per module."""
    done: dict[str, tuple] = {}

    def run(name: str) -> tuple:
        if name not in done:
            case = CASES[name]
            folder = tmp_path_factory.mktemp(name) / "cevennes"
            shutil.copytree(demo_dir, folder)
            truth = cli("scenario", str(folder), name, "--seed", str(case["seed"]))
            done[name] = (name, case, twin.open(str(folder)), truth)
        return done[name]

    return run


@pytest.fixture(params=list(CASES))
def scenario(request, run_scenario):
    return run_scenario(request.param)


def test_every_scenario_is_tested():
    assert set(CASES) == set(SCENARIOS)


def test_the_true_answer_is_saved_and_everything_is_labelled_simulated(scenario):
    name, case, basin, truth = scenario
    saved = json.loads((basin.path / "scenarios" / f"{name}-{case['seed']}.json").read_text(encoding="utf-8"))
    assert saved == truth and truth["simulated"] is True
    assert set(truth["source"]["mass_kg"]) == set(SCENARIOS[name].releases)
    flags = set(basin.readings.query(parameters=[case["parameter"], "DO"])["flag"])
    assert flags == {"S"}
    incident = basin.incidents.get(truth["incident_id"])
    assert incident["description"].startswith("[SIMULATED]")
    assert incident["case_id"] == f"SCENARIO-{name}-{case['seed']}"


def test_the_release_is_in_lozere_and_its_plume_reaches_gard(scenario):
    _, _, basin, truth = scenario
    reaches = basin.network.reaches.set_index("reach_id", drop=False)
    assert reaches.at[truth["source"]["reach_id"], "departement"] == "48"
    deps = basin.sites.set_index("id")["departement"]
    assert {deps[s] for s in truth["peak_arrivals"]} == {"48", "30"}


def test_warnings_fire_at_the_stations_in_downstream_order_with_response_plans(scenario):
    _, case, basin, truth = scenario
    episodes = cli("alerts", str(basin.path), "--from", truth["window"][0], "--to", truth["window"][1])
    mine = pd.DataFrame([e for e in episodes if e["parameter"] == case["parameter"]])
    mine["start"] = pd.to_datetime(mine["start"], utc=True)
    first = mine.sort_values("start").drop_duplicates("station")
    assert first["station"].tolist() == case["warned"]
    arrivals = {s: pd.Timestamp(t) for s, t in truth["peak_arrivals"].items()}
    assert sorted(case["warned"], key=arrivals.__getitem__) == case["warned"]  # the order of the plume
    release = pd.Timestamp(truth["source"]["time"])
    for r in first.itertuples():  # after the release, and by the time the peak has passed
        assert release < r.start <= arrivals[r.station] + pd.Timedelta(hours=2)
    # the first station's warning asks Lozère and Gard to act, Gard with its arrival time
    plan = first.iloc[0]["plan"]
    assert [p["name"] for p in plan if p["level"] == "departement"] == ["Lozère", "Gard"]
    gard = next(p for p in plan if p["name"] == "Gard")
    assert gard["likely_h"] > 0 and gard["action"] and gard["sections"]


def test_the_downstream_report_of_the_true_release_names_lozere_then_gard(scenario):
    _, case, basin, truth = scenario
    src = truth["source"]
    report = downstream_report(
        basin,
        src["lon"],
        src["lat"],
        src["time"],
        mass_kg=src["mass_kg"][case["parameter"]],
        parameter=case["parameter"],
        duration_s=src["duration_h"] * 3600,
    )
    deps = [e["name"] for e in report["entries"] if e["kind"] == "jurisdiction" and e["level"] == "departement"]
    assert deps[:2] == ["Lozère", "Gard"]
    stations = [e["name"] for e in report["entries"] if e["kind"] == "station"]
    assert stations  # the stations the plume passes are named


def test_the_upstream_trace_ranks_the_true_source_first(scenario):
    name, case, basin, truth = scenario
    station, hours = case["trace_from"]
    seen = pd.Timestamp(truth["peak_arrivals"][station]) + pd.Timedelta(hours=hours)
    args = ["trace", str(basin.path), "--upstream", "--station", station, "--param", case["parameter"]]
    out = cli(*args, "--at", seen.isoformat(), "--decay", str(case.get("decay", 0.0)))
    src = truth["source"]
    first = [c for c in out["candidates"] if c["rank"] == 1]
    if "site" in src:  # a registered source (the mine, the dump) is named, alone at rank 1
        assert [c["candidate"] for c in first] == [src["site"]]
    # else the reaches the readings cannot tell apart share rank 1: the true one is among them,
    # and they all lie within a few kilometres of it
    [best] = [c for c in first if c["reach_id"] == src["reach_id"]]
    x, y = basin.to_twin_xy(src["lon"], src["lat"])
    for c in first:
        cx, cy = basin.to_twin_xy(c["lon"], c["lat"])
        assert np.hypot(cx - x, cy - y) < 5000.0, f"{name}: {c['candidate']} shares rank 1 but lies far away"
    error = abs(pd.Timestamp(best["release_time"]) - pd.Timestamp(src["time"]))
    assert error <= pd.Timedelta(minutes=45), f"{name}: release time off by {error}"
    assert best["duration_h"] == pytest.approx(src["duration_h"], abs=1.5)
    # the mass in the reading's unit: kg for mg/L; kg × NTU per mg/L for turbidity
    expected = src["mass_kg"][case["parameter"]] * SCENARIOS[name].per_mg_l.get(case["parameter"], 1.0)
    assert best["mass_kg"] == pytest.approx(expected, rel=0.1)


def test_sand_mining_leaves_a_lowered_riverbed_as_a_dem_difference(run_scenario):
    _, _, basin, truth = run_scenario("sand-mining")
    bed = truth["riverbed"]
    with rasterio.open(basin.path / "scenarios" / bed["dem_difference"]) as src:
        diff = src.read(1)
        assert src.crs == basin.terrain.grid.crs and src.transform == basin.terrain.grid.transform
    changed = np.nonzero(diff)
    assert len(changed[0]) == bed["cells_changed"] > 0
    assert (diff[changed] < 0).all() and diff.min() >= -3.0
    assert (basin.drainage.reach[changed] == truth["source"]["reach_id"]).all()  # in the dredged reach only
    xs, ys = basin.terrain.grid.xy(*changed)
    x, y = basin.to_twin_xy(truth["source"]["lon"], truth["source"]["lat"])
    assert np.hypot(xs - x, ys - y).max() <= 250.0 + basin.terrain.grid.cell_area**0.5
    assert -diff.sum() * basin.terrain.grid.cell_area == pytest.approx(bed["volume_removed_m3"], rel=1e-3)


def test_unknown_scenario_is_refused(demo):
    from twin.analysis.scenarios import ScenarioError, run

    with pytest.raises(ScenarioError, match="unknown scenario"):
        run(demo.model, demo.store, "volcano", folder=demo.path)


def test_an_issued_warning_is_traced_to_the_mine(run_scenario):
    _, _, basin, truth = run_scenario("mine-leak")
    cli("alerts", str(basin.path), "--from", truth["window"][0], "--to", truth["window"][1], "--record")
    issued = cli("alerts", str(basin.path), "--issued")
    [warning] = [w for w in issued if w["station_id"] == "GM-MIALET" and w["parameter"] == "As"]
    out = cli("trace", str(basin.path), "--upstream", "--warning", str(warning["id"]))
    assert (out["station"], out["parameter"]) == ("GM-MIALET", "As")
    assert out["candidates"][0]["candidate"] == "MINE-MOISSAC" and out["candidates"][0]["rank"] == 1
    assert abs(pd.Timestamp(out["candidates"][0]["release_time"]) - pd.Timestamp(truth["source"]["time"])) <= (
        pd.Timedelta(minutes=45)
    )


def test_a_warning_recorded_while_active_is_traced_at_its_own_time(run_scenario, tmp_path):
    """Recorded mid-episode (end unknown), a warning is traced at the reading that raised it, not
    at the station's last reading days later; the trace by its id equals the trace by station and time."""
    _, _, basin, truth = run_scenario("mine-leak")
    folder = tmp_path / "cevennes"
    shutil.copytree(basin.path, folder)
    cli("alerts", str(folder), "--at", "2026-09-03T15:00Z", "--record")
    [warning] = [
        w for w in cli("alerts", str(folder), "--issued") if (w["station_id"], w["parameter"]) == ("GM-MIALET", "As")
    ]
    assert warning["end"] is None and warning["start"] == "2026-09-03T14:00:00+00:00"
    by_warning = cli("trace", str(folder), "--upstream", "--warning", str(warning["id"]))
    by_station = cli(
        "trace", str(folder), "--upstream", "--station", "GM-MIALET", "--param", "As", "--at", warning["start"]
    )
    assert pd.Timestamp(by_warning["at"]) == pd.Timestamp(warning["start"])
    assert by_warning["candidates"] == by_station["candidates"]
    best = by_warning["candidates"][0]
    assert (best["candidate"], best["rank"]) == ("MINE-MOISSAC", 1)
    assert best["mass_kg"] > 0.5 * truth["source"]["mass_kg"]["As"]
    assert abs(pd.Timestamp(best["release_time"]) - pd.Timestamp(truth["source"]["time"])) <= pd.Timedelta(minutes=45)
