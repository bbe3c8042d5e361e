"""Warning episodes kept up to date as readings arrive (twin.analysis.watch) are those a full evaluation gives.

After every batch of a sequence (new readings, late ones before a warning, corrections,
readings flagged to be ignored, readings of parameters nobody warns on that only move the
end of the period), the kept episodes must equal :func:`twin.analysis.alerts.evaluate` over the
readings as they stand, and, on the demo twin after the mine-leak scenario,
:func:`twin.analysis.response.warnings` over the store.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import twin
from twin.analysis import alerts, scenarios
from twin.analysis.response import warnings, watch
from twin.analysis.simulate import SIMULATED_FLAG
from twin.analysis.watch import Watch
from twin.ops.readings import store_rows
from twin_web import create_app

from .webauth import authorised
from .webauth import token as make_token

STATIONS = pd.DataFrame({"id": ["S1", "S2"], "water_body": ["river", "lake"], "target_class": [2, 3]})
ESCALATION = pd.DataFrame({"station": ["S1", "S2"], "intake_hours": [3.0, np.nan], "jurisdiction_hours": [np.nan, 20]})
T0 = pd.Timestamp("2026-07-10T00:00Z")
# values around the classes' limits and the policy's multiples, per parameter (mg/L, pH units, NTU, °C)
VALUES = {
    "NH3-N": [0.1, 0.4, 0.9, 1.4, 1.9, 2.6, 4.5],
    "TP": [0.01, 0.04, 0.09, 0.25, 0.45, 1.2],
    "DO": [9.0, 6.5, 4.0, 2.5, 1.0],
    "pH": [7.5, 8.8, 9.4, 5.5],
    "turbidity": [5.0, 40.0, 80.0, 160.0],
    "water_temperature": [12.0, 18.0],  # not warned on: it only moves the end of the period
}
EMPTY_REJECTED = pd.DataFrame(columns=["line_no", "raw", "reason"])


def current(events: list[dict]) -> pd.DataFrame:
    """The readings as they stand after ``events``: the last one given for each (station, parameter, time)."""
    df = pd.DataFrame(events, columns=["station", "parameter", "time", "value", "flag"])
    return df.drop_duplicates(["station", "parameter", "time"], keep="last").reset_index(drop=True)


@st.composite
def histories(draw):
    """Readings in batches: mostly in time order, some late, some repeated with another value or flag."""
    events = []
    for station in ("S1", "S2"):
        for parameter in draw(st.lists(st.sampled_from(list(VALUES)), min_size=1, max_size=3, unique=True)):
            steps = draw(st.lists(st.sampled_from([1, 1, 1, 2, 7, 14]), min_size=1, max_size=40))  # 2-hour steps
            hours = np.cumsum(steps) * 2
            for h in hours:
                value = draw(st.sampled_from(VALUES[parameter]))
                flag = draw(st.sampled_from(["", "", "", "S", "F"]))  # F: the default policy ignores it
                events.append({"station": station, "parameter": parameter, "time": T0 + pd.Timedelta(hours=int(h))})
                events[-1].update(value=value, flag=flag)
    events.sort(key=lambda e: e["time"])
    # some readings come late, some are corrected later
    n = len(events)
    for i in draw(st.lists(st.integers(0, n - 1), max_size=6)):
        j = draw(st.integers(i, n - 1))
        events.insert(j, events.pop(i))
    for i in draw(st.lists(st.integers(0, n - 1), max_size=6)):
        again = dict(events[i])
        again["value"] = draw(st.sampled_from(VALUES[again["parameter"]]))
        again["flag"] = draw(st.sampled_from(["", "F"]))
        events.insert(draw(st.integers(i + 1, len(events))), again)
    cuts = sorted(draw(st.lists(st.integers(1, max(1, len(events) - 1)), max_size=8, unique=True)))
    return [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)]) if b > a]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_kept_episodes_are_those_of_a_full_evaluation_after_every_batch(batches):
    w = Watch(STATIONS, escalation=ESCALATION)
    seen: list[dict] = []
    for batch in batches:
        w.add(pd.DataFrame(batch))
        seen += batch
        full = alerts.evaluate(current(seen), STATIONS, escalation=ESCALATION)
        pd.testing.assert_frame_equal(w.episodes(), full)


def test_a_late_reading_and_a_correction_change_closed_episodes():
    """A reading before the last quiet point makes the series evaluated from its start again."""
    t = pd.date_range(T0, periods=12, freq="2h")
    values = [0.2, 0.2, 5.0, 5.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2]
    w = Watch(STATIONS)
    w.add(pd.DataFrame({"station": "S1", "parameter": "NH3-N", "time": t, "value": values}))
    assert w.episodes()[["level_name", "end_reason"]].values.tolist() == [["red", "cleared"]]
    # the red reading is corrected down, and a late high one comes between two quiet readings
    late = pd.DataFrame(
        {
            "station": "S1",
            "parameter": "NH3-N",
            "time": [t[3], t[8] + pd.Timedelta(hours=1)],
            "value": [0.3, 5.5],
        }
    )
    assert w.add(late) == {("S1", "NH3-N")}
    ep = w.episodes()
    assert ep["start"].tolist() == [t[2], t[8] + pd.Timedelta(hours=1)]
    first = pd.DataFrame({"station": "S1", "parameter": "NH3-N", "time": t, "value": values})
    events = [*first.assign(flag="").to_dict("records"), *late.assign(flag="").to_dict("records")]
    pd.testing.assert_frame_equal(ep, alerts.evaluate(current(events), STATIONS))


def test_a_late_reading_in_the_gap_that_expired_a_warning_keeps_it_open():
    """A warning expired by a 32-hour gap, another opened by the reading after it: a reading in the gap joins them.

    Also after the series resumed from that second warning's start (a reading after it came first).
    """
    t = [T0 + pd.Timedelta(hours=h) for h in (0, 2, 4, 36, 38)]
    first = pd.DataFrame({"station": "S1", "parameter": "NH3-N", "time": t, "value": [0.1, 1.4, 1.4, 1.4, 1.4]})

    def one(hours: int, value: float) -> pd.DataFrame:
        return pd.DataFrame(
            {"station": ["S1"], "parameter": ["NH3-N"], "time": [T0 + pd.Timedelta(hours=hours)]}
        ).assign(value=value)

    for steps in ([one(20, 0.1)], [one(40, 1.4), one(20, 0.1)]):
        w = Watch(STATIONS)
        w.add(first)
        assert w.episodes()["end_reason"].tolist() == ["expired", None]
        for rows in steps:
            w.add(rows)
        events = [*first.assign(flag="").to_dict("records")]
        events += [r for rows in steps for r in rows.assign(flag="").to_dict("records")]
        pd.testing.assert_frame_equal(w.episodes(), alerts.evaluate(current(events), STATIONS))
        assert len(w.episodes()) == 1


def test_the_end_of_the_period_expires_an_open_warning_of_a_silent_station():
    """Readings of another station move the period's end; the silent station's open warning expires."""
    t = pd.date_range(T0, periods=3, freq="2h")
    w = Watch(STATIONS)
    w.add(pd.DataFrame({"station": "S1", "parameter": "NH3-N", "time": t, "value": [0.2, 5.0, 5.2]}))
    assert w.episodes()["end"].isna().all()
    later = T0 + pd.Timedelta(hours=40)
    changed = w.add(pd.DataFrame({"station": ["S2"], "parameter": ["water_temperature"], "time": [later], "value": 9}))
    assert changed == {("S1", "NH3-N")}  # re-evaluated though it got no reading
    ep = w.episodes()
    assert ep["end_reason"].tolist() == ["expired"] and ep["end"].tolist() == [t[-1] + pd.Timedelta(hours=24)]


def test_a_reading_of_an_unknown_station_is_refused_with_its_name():
    w = Watch(STATIONS)
    with pytest.raises(alerts.AlertInputError, match="GHOST"):
        w.add(pd.DataFrame({"station": ["GHOST"], "parameter": ["pH"], "time": [T0], "value": [7.0]}))


# -- on the demo twin ------------------------------------------------------------------------------
@pytest.fixture
def scenario_basin(demo_dir, tmp_path):
    shutil.copytree(demo_dir, tmp_path / "cevennes")
    basin = twin.open(str(tmp_path / "cevennes"))
    truth = scenarios.run(basin.model, basin.store, "mine-leak", folder=basin.path, seed=1)
    return basin, truth


def leak_rows(basin, start: pd.Timestamp, hours: int) -> pd.DataFrame:
    """Readings of a second mine leak 2 hours after ``start``: As, Pb, Cd at every station, 2-hourly."""
    times = pd.date_range(start, periods=hours // 2, freq="2h")
    mine = basin.sites.set_index("id").loc["MINE-MOISSAC"]
    rows, _ = scenarios.release_signal(
        basin, int(mine["reach_id"]), float(mine["measure_m"]), start + pd.Timedelta(hours=2), {"As": 40.0}, times
    )
    rows["value"] = rows["value"] + 0.002
    return rows.assign(unit="mg/L", flag=SIMULATED_FLAG, tz_offset_min=0, line_no=np.arange(len(rows)) + 1)


def test_the_store_watch_follows_ingests_as_a_full_evaluation_does(scenario_basin):
    basin, truth = scenario_basin
    live = watch(basin.model, basin.store)
    pd.testing.assert_frame_equal(live.episodes(), warnings(basin.model, basin.store, plans=False))
    before = len(live.episodes())
    start = pd.Timestamp(truth["window"][1]) + pd.Timedelta(hours=2)
    leak = leak_rows(basin, start, 48)
    hours = [start + pd.Timedelta(hours=h) for h in (0, 12, 24, 48)]
    steps = [leak[(leak["time"] >= a) & (leak["time"] < b)] for a, b in zip(hours, hours[1:])]
    at_stetienne = leak[leak["station"] == "GM-STETIENNE"]
    peak = leak.loc[[at_stetienne["value"].idxmax()]]
    last_two = at_stetienne.sort_values("time").iloc[-2:]
    steps += [
        # a correction of the peak (the episode's peak value changes)
        peak.assign(value=peak["value"] / 2),
        # a late reading between the last two (quiet) ones, high enough for a warning of its own
        last_two.iloc[[0]].assign(time=last_two["time"].iloc[0] + pd.Timedelta(hours=1), value=0.5),
        # the corrected peak flagged as faulty (the policy ignores flag F)
        peak.assign(value=peak["value"] / 2, flag="F"),
    ]
    shown = [live.episodes()]
    for rows in steps:
        report = store_rows(basin.store, rows, EMPTY_REJECTED, source="test", fmt="test")
        assert report.stored == len(rows)
        pd.testing.assert_frame_equal(live.episodes(), warnings(basin.model, basin.store, plans=False))
        shown.append(live.episodes())
    assert len(shown[3]) > before  # the second leak raised warnings
    assert not shown[4].equals(shown[3]) and not shown[5].equals(shown[4]) and not shown[6].equals(shown[5])
    with basin.store.connect() as conn:
        assert live.state == conn.execute(sa.text("SELECT MAX(id) FROM readings")).scalar()


def test_a_refresh_evaluates_again_only_the_series_its_readings_touch(scenario_basin):
    basin, truth = scenario_basin
    live = watch(basin.model, basin.store)
    live.episodes()
    assert live.refresh() == set()  # nothing stored since
    at = pd.Timestamp(truth["window"][1]) - pd.Timedelta(hours=1)  # before the period's end: it stays
    one = pd.DataFrame(
        {"station": ["GD-ANDUZE"], "time": [at], "parameter": ["As"], "value": [0.004], "unit": ["mg/L"]}
    ).assign(flag=SIMULATED_FLAG, tz_offset_min=0, line_no=1)
    store_rows(basin.store, one, EMPTY_REJECTED, source="test", fmt="test")
    assert live.refresh() == {("GD-ANDUZE", "As")}


def test_the_viewer_shows_a_warning_an_ingest_raised_at_the_next_request(scenario_basin):
    basin, truth = scenario_basin
    client = authorised(create_app(basin.path, testing=True).test_client(), make_token(basin.path))
    url = "/api/collections/warnings/items?limit=1000"
    before = {f["id"] for f in client.get(url).get_json()["features"]}
    start = pd.Timestamp(truth["window"][1]) + pd.Timedelta(hours=2)
    store_rows(basin.store, leak_rows(basin, start, 24), EMPTY_REJECTED, source="test", fmt="test")
    after = {f["id"] for f in client.get(url).get_json()["features"]}
    new = after - before
    assert new and all(i.split(".")[1] == "As" and i.split(".")[2] >= f"{start:%Y%m%d}" for i in new)
    series = client.get("/api/slices/stations/GM-STETIENNE?parameter=As").get_json()
    assert any(p["id"] in new for p in series["warnings"])


# -- on PostgreSQL: a transaction that commits after one with higher reading ids ---------------------
def test_on_postgres_a_commit_with_lower_ids_than_one_already_read_is_not_missed(
    make_saved_valley, monkeypatch, postgres_database
):
    monkeypatch.setenv("TWIN_DATABASE_URL", postgres_database)
    basin = make_saved_valley({"UP": (10, "station"), "LOW": (35, "station")})
    live = watch(basin.model, basin.store)
    t = pd.date_range(T0, periods=4, freq="2h")

    def rows(station: str, values: list[float]) -> pd.DataFrame:
        return pd.DataFrame({"station": station, "time": t[: len(values)], "parameter": "NH3-N"}).assign(
            value=values, unit="mg/L", flag="", tz_offset_min=0, line_no=1
        )

    store_rows(basin.store, rows("LOW", [0.2]), EMPTY_REJECTED, source="a", fmt="test")
    slow = basin.store.connect()
    tx = slow.begin()  # a writer that takes its reading ids now and commits last
    ds = slow.execute(
        sa.text("INSERT INTO datastreams (station_id, parameter, unit) VALUES ('UP', 'NH3-N', 'mg/L') RETURNING id")
    ).scalar_one()
    batch = slow.execute(
        sa.text("INSERT INTO batches (source, format, started) VALUES ('slow', 'test', 0) RETURNING id")
    ).scalar_one()
    for k, v in enumerate([0.2, 5.0, 5.1]):
        slow.execute(
            sa.text(
                "INSERT INTO readings (datastream_id, time, tz_offset_min, value, flag, version, batch_id, current) "
                "VALUES (:ds, :t, 0, :v, '', 1, :b, 1)"
            ),
            {"ds": ds, "t": int(t[k].timestamp()), "v": v, "b": batch},
        )
    store_rows(basin.store, rows("LOW", [0.2, 0.3]), EMPTY_REJECTED, source="b", fmt="test")  # higher ids
    assert live.episodes().empty
    tx.commit()
    slow.close()
    ep = live.episodes()
    assert ep["station"].tolist() == ["UP"] and ep["level_name"].tolist() == ["red"]
    pd.testing.assert_frame_equal(ep, warnings(basin.model, basin.store, plans=False))
    basin.store.dispose()


def test_may_warn_is_false_only_where_no_rule_can_hold():
    policy = alerts.load_policy()
    # NH3-N at target class III (limit 1.0): 0.2 and 0.9 are within it, 1.2 is blue, 5.0 red
    may = alerts.may_warn("NH3-N", np.array([0.2, 0.9, 1.2, 5.0]), 3, "river", policy)
    assert may.tolist() == [False, False, True, True]
    # per value targets and water bodies: TP 0.08 is class II in a river, worse than III in a lake
    may = alerts.may_warn("TP", np.array([0.08, 0.08]), np.array([2, 3]), np.array(["river", "lake"]), policy)
    assert may.tolist() == [False, True]
    rise_only = alerts.parse_policy(
        {
            "name": "rise",
            "hysteresis_readings": 1,
            "expiry_hours": 24,
            "levels": {"blue": [{"id": "r", "rise_per_hour": 1}]},
        }
    )
    assert alerts.may_warn("NH3-N", np.array([0.2, 0.2]), 3, "river", rise_only).all()
