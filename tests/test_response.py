"""Warnings on a twin: escalation from the network, response plans per jurisdiction, issued and acknowledged."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from twin.analysis import response

HEADER = "station,time,parameter,value,unit,flag\n"


@pytest.fixture
def basin(make_saved_valley, tmp_path):
    b = make_saved_valley({"UP": (10, "station"), "LOW": (35, "intake")})
    # NH3-N at UP: class II, then 1.8 mg/L twice (class V: multiple 0.8 over class III's 1.0) and back
    values = [0.3, 0.4, 1.8, 1.8, 0.4, 0.3, 0.3, 0.3]
    rows = [f"UP,2026-08-01T{2 * k:02d}:00:00Z,NH3-N,{v},mg/L,N" for k, v in enumerate(values)]
    (tmp_path / "r.csv").write_text(HEADER + "\n".join(rows) + "\n")
    b.readings.ingest(tmp_path / "r.csv")
    return b


def test_an_orange_warning_near_an_intake_downstream_escalates_to_red(basin):
    table = response.escalation_table(basin.model).set_index("station")
    assert table.loc["UP", "intake_hours"] < 12  # LOW is an intake a few hundred metres below
    assert table.loc["UP", "jurisdiction_hours"] < table.loc["UP", "intake_hours"]  # N → S first
    episodes = basin.alerts(start="2026-08-01T00:00Z", end="2026-08-02T00:00Z")
    assert len(episodes) == 1
    ep = episodes.iloc[0]
    assert (ep["station"], ep["parameter"], ep["level_name"]) == ("UP", "NH3-N", "red")
    assert ep["rule"] == "red-escalation" and "intake" in ep["escalation"]
    assert ep["start"] == pd.Timestamp("2026-08-01T04:00Z")


def test_the_response_plan_names_each_unit_downstream_with_arrival_times_and_actions(basin):
    ep = basin.alerts(at="2026-08-01T07:00Z").iloc[0]
    plan = {p["code"]: p for p in ep["plan"]}
    assert set(plan) == {"N", "S"}
    assert plan["N"]["earliest_h"] == 0 and plan["S"]["earliest_h"] > 0
    assert plan["S"]["likely_h"] >= plan["S"]["earliest_h"]
    assert [s["id"] for s in plan["S"]["sites"]] == ["LOW"]
    assert plan["S"]["sections"][0]["from"] == "North" and plan["S"]["sections"][0]["to"] == "South"
    assert "Close the drinking-water intakes" in plan["S"]["action"]  # the red text of our policy
    assert pd.Timestamp(plan["S"]["earliest"]) > ep["start"]


def test_no_warning_before_the_spike(basin):
    assert basin.alerts(at="2026-08-01T03:00Z").empty


def test_warnings_are_recorded_once_and_acknowledged(basin):
    run = [sys.executable, "-m", "twin.cli", "alerts", str(basin.path)]
    window = ["--from", "2026-08-01T00:00Z", "--to", "2026-08-02T00:00Z"]
    first = json.loads(subprocess.run(run + window + ["--record"], capture_output=True, text=True, check=True).stdout)
    again = json.loads(subprocess.run(run + window + ["--record"], capture_output=True, text=True, check=True).stdout)
    assert [w["id"] for w in first] == [w["id"] for w in again]  # the same episode, not a new warning
    wid = first[0]["id"]
    ack = json.loads(
        subprocess.run(
            run + ["--ack", str(wid), "--by", "duty officer"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert ack["acknowledged_by"] == "duty officer"
    issued = json.loads(subprocess.run(run + ["--issued"], capture_output=True, text=True, check=True).stdout)
    assert issued[0]["level_name"] == "red" and issued[0]["detail"]["plan"][0]["code"] == "N"
    bad = subprocess.run(run + ["--ack", "999", "--by", "x"], capture_output=True, text=True)
    assert bad.returncode == 1 and "no warning 999" in bad.stderr
