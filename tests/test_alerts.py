"""Four-level warnings: each rule of the policy on a hand-built series with a known answer."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import pytest
import yaml

from twin.analysis import alerts
from twin.analysis.alerts import AlertInputError, PolicyError, evaluate, levels_at, load_policy, parse_policy
from twin.errors import TwinError

T0 = pd.Timestamp("2026-07-01T00:00Z")
STATIONS = pd.DataFrame(
    {"id": ["up", "down", "lake"], "water_body": ["river", "river", "lake"], "target_class": [3, 3, 2]}
)


def series(values, hours=None, parameter="NH3-N", station="up", flags=None) -> pd.DataFrame:
    """Readings of one station's parameter, hourly unless ``hours`` (offsets from T0) are given."""
    hours = range(len(values)) if hours is None else hours
    df = pd.DataFrame(
        {
            "station": station,
            "parameter": parameter,
            "time": [T0 + pd.Timedelta(hours=h) for h in hours],
            "value": [float(v) for v in values],
        }
    )
    if flags is not None:
        df["flag"] = flags
    return df


def at(h: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=h)


def default_dict() -> dict:
    return yaml.safe_load(resources.files("twin").joinpath("data", "warning_policy.yml").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------
# the policy
# ---------------------------------------------------------------------------
def test_default_policy_loads_and_says_it_is_ours():
    policy = load_policy()
    assert [len(getattr(policy.levels, name)) for name in alerts.LEVELS] == [1, 2, 3, 2]
    assert policy.hysteresis_readings == 3 and policy.expiry_hours == 24
    assert policy.escalation is not None and policy.escalation.window_hours == 12
    text = resources.files("twin").joinpath("data", "warning_policy.yml").read_text(encoding="utf-8")
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    assert "ours, not a national rule" in " ".join(header.lower().split())
    assert "ours, not a national rule" in " ".join(alerts.__doc__.lower().split())


def test_policy_from_a_path(tmp_path):
    data = default_dict()
    data["hysteresis_readings"] = 5
    path = tmp_path / "p.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert load_policy(path).hysteresis_readings == 5
    with pytest.raises(PolicyError, match="cannot be read"):
        load_policy(tmp_path / "missing.yml")


def test_unknown_key_is_named_with_its_place_and_the_allowed_keys():
    data = default_dict()
    data["levels"]["yellow"][0]["persistance"] = 3
    with pytest.raises(PolicyError, match=r"at 'levels\.yellow\.0': unknown key 'persistance'; allowed: .*persistence"):
        parse_policy(data)
    data = default_dict()
    data["expiry"] = 3
    with pytest.raises(PolicyError, match="unknown key 'expiry'"):
        parse_policy(data)


def test_unknown_level_is_named():
    data = default_dict()
    data["levels"]["purple"] = [{"id": "p", "worse_than_target": True}]
    with pytest.raises(PolicyError, match="unknown level 'purple'; levels are blue, yellow, orange, red") as err:
        parse_policy(data)
    assert isinstance(err.value, TwinError) and isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["levels"]["blue"].append({"id": "empty"}), "rule 'empty' has no condition"),
        (lambda d: d["levels"]["orange"].append({"id": "e", "escalate_from": "red"}), "must escalate from a lower"),
        (lambda d: d["levels"]["blue"].append({"id": "red-multiple-3", "class_at_least": 4}), "used twice"),
        (lambda d: d.update(parameters=["NH3-N", "conductivity"]), "'conductivity' has no GB 3838-2002 class and no"),
        (lambda d: d["limits"].update({"NH3-N": 2.0}), "'NH3-N' has GB 3838-2002 classes"),
        (lambda d: d["limits"].update({"murk": 2.0}), "unknown parameter 'murk'"),
        (lambda d: d["limits"].update({"turbidity": -1}), "turbidity must be a positive number in NTU"),
        (lambda d: d.update(hysteresis_readings=0), "hysteresis_readings"),
        (lambda d: d["levels"]["blue"][0].update(class_at_least=7), r"levels\.blue\.0\.class_at_least"),
    ],
)
def test_bad_policies_are_refused(change, message):
    data = default_dict()
    change(data)
    with pytest.raises(PolicyError, match=message):
        parse_policy(data)


# ---------------------------------------------------------------------------
# the rules, default policy (NH3-N class III limit 1.0 mg/L; class IV 1.5, V 2.0)
# ---------------------------------------------------------------------------
def test_level_crossing_raises_blue_at_once_and_clears_after_three_readings_below():
    ep = evaluate(series([0.8, 1.2, 0.9, 0.9, 0.9, 0.9]), STATIONS)
    assert len(ep) == 1
    e = ep.iloc[0]
    assert (e.level, e.level_name, e.rule) == (1, "blue", "blue-above-target")
    assert e.start == at(1) and e.end == at(4) and e.end_reason == "cleared"
    assert e.trigger == [(at(1), 1.2)]
    assert e.peak_value == 1.2 and e.peak_multiple == pytest.approx(0.2)
    assert e.changes == [(at(1), 1, "blue-above-target"), (at(4), 0, "hysteresis")]


def test_no_warning_within_the_target_class():
    assert evaluate(series([0.5, 0.9, 1.0]), STATIONS).empty  # 1.0 is on the class III limit


def test_a_single_spike_does_not_raise_yellow_when_persistence_is_two():
    ep = evaluate(series([1.2, 1.6, 1.2, 1.2]), STATIONS)  # 1.6: multiple 0.6, one reading
    assert ep["level_name"].tolist() == ["blue"]

    ep = evaluate(series([1.2, 1.6, 1.6]), STATIONS)
    e = ep.iloc[0]
    assert (e.level_name, e.rule) == ("yellow", "yellow-multiple-0.5")
    assert e.trigger == [(at(1), 1.6), (at(2), 1.6)]  # both readings that persisted
    assert e.changes == [(at(0), 1, "blue-above-target"), (at(2), 2, "yellow-multiple-0.5")]


def test_hysteresis_keeps_the_level_until_three_readings_below_it():
    values = [1.6, 1.6, 1.2, 1.6, 1.6, 1.2, 1.2, 1.2, 0.5, 0.5, 0.5]
    ep = evaluate(series(values), STATIONS)
    assert len(ep) == 1
    e = ep.iloc[0]
    assert e.changes == [
        (at(0), 1, "blue-above-target"),
        (at(1), 2, "yellow-multiple-0.5"),
        # readings 2, 3 are blue (one 1.6 is no yellow) but 1.6 twice at 4 resets the count; 5, 6, 7 lower it
        (at(7), 1, "hysteresis"),
        (at(10), 0, "hysteresis"),
    ]
    assert e.level_name == "yellow" and e.end == at(10)
    levels = [levels_at(ep, at(h))["level"].get("up", 0) for h in range(12)]
    assert levels == [1, 2, 2, 2, 2, 2, 2, 1, 1, 1, 0, 0]


def test_hysteresis_lowers_to_the_highest_level_of_the_readings_below():
    # orange at 1 (multiple 1.1 twice); then yellow (1.6 after 2.1: multiple >= 0.5 twice), blue, blue
    ep = evaluate(series([2.1, 2.1, 1.6, 1.2, 1.2, 1.2]), STATIONS)
    assert ep.iloc[0].changes == [
        (at(0), 1, "blue-above-target"),
        (at(1), 3, "orange-multiple-1"),
        (at(4), 2, "hysteresis"),
    ]
    assert pd.isna(ep.iloc[0].end)  # still yellow-held at the last reading (two readings below)


def test_expiry_ends_an_episode_without_data():
    ep = evaluate(series([1.2, 1.2, 1.2, 1.2], hours=[0, 1, 30, 31]), STATIONS)
    assert len(ep) == 2
    first, second = ep.iloc[0], ep.iloc[1]
    assert first.end == at(1 + 24) and first.end_reason == "expired"
    assert first.changes[-1] == (at(25), 0, "expiry")
    assert second.start == at(30) and pd.isna(second.end) and second.end_reason is None
    assert levels_at(ep, at(20))["level"].tolist() == [1]
    assert levels_at(ep, at(26)).empty


def test_expiry_at_the_end_of_the_period():
    readings = series([1.2, 1.2])
    assert pd.isna(evaluate(readings, STATIONS).iloc[0].end)
    ep = evaluate(readings, STATIONS, until=at(48))
    assert ep.iloc[0].end == at(25) and ep.iloc[0].end_reason == "expired"
    # another station still reporting sets the end of the period too
    other = series([0.5] * 40, station="down")
    ep = evaluate(pd.concat([readings, other]), STATIONS)
    assert ep.iloc[0].end_reason == "expired"


def test_rate_of_rise_raises_orange_before_any_multiple():
    # +0.55 mg/L in one hour is 0.55 of the class III limit per hour; multiple 0.45 only
    ep = evaluate(series([0.9, 1.45]), STATIONS)
    e = ep.iloc[0]
    assert (e.level_name, e.rule) == ("orange", "orange-fast-rise")
    assert e.trigger == [(at(0), 0.9), (at(1), 1.45)]
    # the same rise over two hours is 0.275 per hour: blue only
    assert evaluate(series([0.9, 1.45], hours=[0, 2]), STATIONS)["level_name"].tolist() == ["blue"]


def test_do_falling_is_a_rise():
    # DO class III is >= 5 mg/L; 6 -> 3.4 in an hour falls 0.52 of the limit per hour, class IV
    ep = evaluate(series([6.0, 3.4], parameter="DO"), STATIONS)
    e = ep.iloc[0]
    assert (e.level_name, e.rule, e.peak_value) == ("orange", "orange-fast-rise", 3.4)
    assert np.isnan(e.peak_multiple)  # DO has no exceedance multiple
    # DO rising fast from a bad class is not worse, only still below target: blue
    assert evaluate(series([3.4, 4.9], parameter="DO"), STATIONS)["level_name"].tolist() == ["blue"]
    # DO below 2 mg/L (劣V) twice
    ep = evaluate(series([1.5, 1.8], hours=[0, 6], parameter="DO"), STATIONS)
    assert (ep.iloc[0].rule, ep.iloc[0].peak_value) == ("orange-worse-than-V", 1.5)


def test_ph_outside_6_to_9_twice_is_orange():
    ep = evaluate(series([9.6, 9.4], hours=[0, 4], parameter="pH"), STATIONS)
    assert (ep.iloc[0].level_name, ep.iloc[0].peak_value) == ("orange", 9.6)


def test_gross_exceedance_is_red_at_once():
    ep = evaluate(series([0.8, 4.2]), STATIONS)  # multiple 3.2
    assert (ep.iloc[0].level_name, ep.iloc[0].rule) == ("red", "red-multiple-3")
    assert ep.iloc[0].peak_multiple == pytest.approx(3.2)


def test_lake_station_uses_lake_limits_and_its_own_target():
    # TP 0.04 is class III in a lake (II in a river); the lake's target is II
    ep = evaluate(series([0.04], parameter="TP", station="lake"), STATIONS)
    assert ep["level_name"].tolist() == ["blue"]
    assert evaluate(series([0.04], parameter="TP", station="up"), STATIONS).empty


# ---------------------------------------------------------------------------
# escalation
# ---------------------------------------------------------------------------
ORANGE = [1.8, 2.1, 2.1, 2.1]  # multiple 1.1 from the second reading: yellow at hour 1, orange at hour 2


def test_escalation_to_an_intake_raises_orange_to_red():
    reach = pd.DataFrame({"station": ["up"], "intake_hours": [3.0], "jurisdiction_hours": [np.nan]})
    ep = evaluate(series(ORANGE), STATIONS, escalation=reach)
    e = ep.iloc[0]
    assert (e.level_name, e.rule, e.escalation) == ("red", "red-escalation", "intake in 3 h")
    # orange and its escalation hold at the same reading: one change, straight to red
    assert e.changes == [
        (at(0), 1, "blue-above-target"),
        (at(1), 2, "yellow-multiple-0.5"),
        (at(2), 4, "red-escalation"),
    ]
    assert e.trigger == [(at(2), 2.1)]
    assert levels_at(ep, at(3))["level_name"].tolist() == ["red"]


def test_an_escalated_warning_is_lowered_and_cleared_when_the_readings_fall():
    near = pd.DataFrame({"station": ["up"], "intake_hours": [3.0]})
    ep = evaluate(series([*ORANGE, 0.9, 0.9, 0.9, 0.9]), STATIONS, escalation=near)
    e = ep.iloc[0]
    assert (e.level_name, e.rule) == ("red", "red-escalation")
    assert e.end == at(len(ORANGE) + 2) and e.end_reason == "cleared"  # the third reading below
    assert e.changes[-1] == (at(len(ORANGE) + 2), 0, "hysteresis")


def test_no_escalation_beyond_the_window_or_without_input():
    far = pd.DataFrame({"station": ["up"], "intake_hours": [20.0], "jurisdiction_hours": [14.0]})
    assert evaluate(series(ORANGE), STATIONS, escalation=far)["level_name"].tolist() == ["orange"]
    assert evaluate(series(ORANGE), STATIONS)["level_name"].tolist() == ["orange"]
    # a blue warning near an intake is not escalated: red escalates from orange only
    near = pd.DataFrame({"station": ["up"], "intake_hours": [1.0]})
    assert evaluate(series([1.2, 1.2]), STATIONS, escalation=near)["level_name"].tolist() == ["blue"]


def test_escalation_callable_with_travel_times_that_change():
    def travel(station, time):
        # discharge rises at hour 3: the boundary comes within 12 h
        return {"jurisdiction": 8.0 if time >= at(3) else 30.0}

    ep = evaluate(series([*ORANGE, 2.1]), STATIONS, escalation=travel)
    e = ep.iloc[0]
    assert e.changes[-1] == (at(3), 4, "red-escalation") and e.escalation == "jurisdiction in 8 h"
    assert levels_at(ep, at(2))["level_name"].tolist() == ["orange"]


def test_escalation_table_needs_travel_hours():
    with pytest.raises(AlertInputError, match="intake_hours"):
        evaluate(series(ORANGE), STATIONS, escalation=pd.DataFrame({"station": ["up"], "hours": [1.0]}))


# ---------------------------------------------------------------------------
# inputs and the table of levels
# ---------------------------------------------------------------------------
def test_flagged_readings_are_not_evidence():
    readings = series([1.6, 1.6, 0.5], flags=["N", "D", "N"])  # the fault reading does not persist the spike
    assert evaluate(readings, STATIONS)["level_name"].tolist() == ["blue"]


def test_levels_at_takes_the_worst_parameter_per_station():
    readings = pd.concat(
        [series([1.2, 1.2, 1.2]), series([0.25, 0.25, 0.25], parameter="TP"), series([1.6, 1.6], station="down")]
    )
    ep = evaluate(readings, STATIONS)
    now = levels_at(ep, at(2))
    assert now.loc["up", "level_name"] == "blue"
    assert now.loc["down", "level_name"] == "yellow"
    assert list(now.index) == ["down", "up"]  # highest level first
    assert levels_at(ep, at(-1)).empty


def test_bad_inputs_are_named():
    naive = series([1.2]).assign(time=pd.Timestamp("2026-07-01"))
    with pytest.raises(AlertInputError, match="tz-aware"):
        evaluate(naive, STATIONS)
    with pytest.raises(AlertInputError, match="not in the stations table: nowhere"):
        evaluate(series([1.2], station="nowhere"), STATIONS)
    with pytest.raises(AlertInputError, match="no time zone"):
        levels_at(evaluate(series([1.2]), STATIONS), "2026-07-01T00:00")


def test_unclassified_parameters_and_empty_readings_give_no_episode():
    assert evaluate(series([35.0], parameter="water_temperature"), STATIONS).empty
    empty = evaluate(series([]), STATIONS)
    assert empty.empty and list(empty.columns) == alerts.EPISODE_COLUMNS


# ---------------------------------------------------------------------------
# parameters GB 3838 does not classify, through the policy's own limits (turbidity 50 NTU)
# ---------------------------------------------------------------------------
def test_turbidity_warns_against_the_policy_limit():
    four_hourly = [0, 4, 8, 12, 16, 20]  # a rise of 52 NTU in 4 h is 0.26 limits/h: not fast
    ep = evaluate(series([8, 60, 60, 8, 8, 8], hours=four_hourly, parameter="turbidity"), STATIONS)
    e = ep.iloc[0]
    assert (e.level_name, e.rule) == ("blue", "blue-above-target")  # multiple 0.2: above the limit only
    assert e.start == at(4) and e.end_reason == "cleared"

    ep = evaluate(series([8, 120, 130, 8, 8, 8], parameter="turbidity"), STATIONS)
    e = ep.iloc[0]  # a rise of 112 NTU in an hour (2.2 limits/h) is orange at once; 130 is multiple 1.6
    assert (e.level_name, e.peak_value) == ("orange", 130.0)
    assert e.peak_multiple == pytest.approx(1.6)

    ep = evaluate(series([8, 250], parameter="turbidity"), STATIONS)
    assert ep.iloc[0]["level_name"] == "red"  # multiple 4


def test_a_limit_for_turbidity_is_needed_to_warn_on_it():
    data = default_dict()
    del data["limits"]
    assert evaluate(series([8, 250, 250], parameter="turbidity"), STATIONS, parse_policy(data)).empty
    data = default_dict()
    data["levels"]["blue"] = [{"id": "class-IV", "class_at_least": 4}]
    policy = parse_policy(data)  # a class rule never holds for a parameter without classes
    assert evaluate(series([60, 60, 60], parameter="turbidity"), STATIONS, policy).empty
