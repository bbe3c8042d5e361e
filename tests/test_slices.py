"""Slices of the basin, called as a notebook does: tables in, tables out, no web server and no twin folder.

Known answers on small tables and on the synthetic V-valley (a river flowing south from the
"North" unit into the "South" one, :mod:`tests.synthetic`); the same analyses over HTTP are
in ``tests/test_web_slices.py``.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from twin.analysis import crossings, history, quality, slices
from twin.model.network import Location

T0 = pd.Timestamp("2026-09-03T00:00Z")
HEADER = "station,time,parameter,value,unit,flag\n"


def hours(h: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=h)


@pytest.fixture
def sites() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "id": ["UP", "MID", "LAKE", "INTAKE"],
            "name": ["Upper", "Middle", "Lake", "Intake"],
            "kind": ["station", "station", "station", "intake"],
            "water_body": ["river", "river", "lake", "river"],
            "target_class": [2, 3, 3, 2],
        },
        geometry=[shapely.Point(3.9, 44.2), shapely.Point(3.95, 44.1), shapely.Point(4.0, 44.0), shapely.Point(4, 44)],
        crs="EPSG:4326",
    )


def episode(station: str, parameter: str, start: float, end: float | None, changes: list[tuple[float, int]]) -> dict:
    top = max(level for _, level in changes)
    return {
        "station": station,
        "parameter": parameter,
        "level": top,
        "level_name": ["none", "blue", "yellow", "orange", "red"][top],
        "start": hours(start),
        "end": pd.NaT if end is None else hours(end),
        "end_reason": None if end is None else "cleared",
        "peak_value": 1.0,
        "rule": "level",
        "changes": [(hours(t), level, "level") for t, level in changes],
    }


@pytest.fixture
def episodes() -> pd.DataFrame:
    rows = [
        episode("UP", "TP", 2, 10, [(2, 2), (4, 4), (8, 1)]),
        episode("MID", "TP", 6, None, [(6, 3)]),
        episode("MID", "NH3-N", 1, 3, [(1, 4)]),
    ]
    out = pd.DataFrame(rows)
    out["end"] = pd.to_datetime(out["end"], utc=True)
    return out


# -- the basin at a time --------------------------------------------------------------------------


def test_the_state_at_a_time_classes_the_latest_usable_reading_of_each_station(sites, episodes):
    readings = pd.DataFrame(
        {
            "station": ["UP", "UP", "UP", "MID", "LAKE", "INTAKE"],
            "parameter": ["TP"] * 6,
            "time": [hours(1), hours(4), hours(4.5), hours(-30), hours(3), hours(4)],
            "value": [0.05, 0.15, 9.0, 0.01, 0.15, 0.5],
            "flag": ["N", "N", "D", "N", "N", "N"],  # D: a faulty analyser, not used
        }
    )
    now = slices.state_at(sites, readings, "TP", hours(5), episodes=episodes)
    assert now["id"].tolist() == ["UP", "MID", "LAKE"]  # stations only, in the sites' order
    up, mid, lake = now.to_dict("records")
    assert up["value"] == 0.15 and up["time"] == hours(4)  # 9.0 at 4:30 is flagged D
    assert (up["class"], up["label"], up["exceeds"]) == (3, "III", True)  # TP 0.15 in a river: III, target II
    assert np.isnan(mid["value"]) and pd.isna(mid["time"]) and mid["class"] == 0 and not mid["exceeds"]  # 29 h old
    assert (lake["class"], lake["label"]) == (5, "V")  # the same 0.15 in a lake is class V
    assert (up["warning_level"], up["warning"]) == (4, "red")  # raised to red at 4:00, lowered at 8:00
    assert (mid["warning_level"], mid["warning"]) == (0, None)  # its TP episode starts at 6:00
    assert (up["lon"], up["lat"]) == pytest.approx((3.9, 44.2))
    later = slices.state_at(sites, readings, "TP", hours(9), max_age_hours=48, episodes=episodes)
    assert later.set_index("id")["warning_level"].to_dict() == {"UP": 1, "MID": 3, "LAKE": 0}
    assert later.set_index("id").loc["MID", "value"] == 0.01  # within 48 h
    blind = slices.state_at(sites, readings, "TP", hours(5))  # without the episodes, no warning is shown
    assert set(blind["warning_level"]) == {0} and set(blind["warning"]) == {None}


def test_a_parameter_without_classes_is_shown_unclassified(sites):
    readings = pd.DataFrame({"station": ["UP"], "parameter": ["water_temperature"], "time": [hours(1)], "value": [18]})
    now = slices.state_at(sites, readings, "water_temperature", hours(2)).set_index("id")
    assert now.loc["UP", "value"] == 18 and now.loc["UP", "class"] == 0 and now.loc["UP", "label"] == ""


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda s, r: slices.state_at(s, r, "TP", "2026-09-03T05:00"), "no time zone"),
        (lambda s, r: slices.state_at(s, r, "Kr", hours(1)), "unknown parameter 'Kr'"),
        (lambda s, r: slices.state_at(s, r, "TP", hours(1), max_age_hours=0), "max_age_hours=0"),
    ],
)
def test_a_slice_that_cannot_be_cut_says_why(sites, call, says):
    empty = pd.DataFrame(columns=["station", "parameter", "time", "value"])
    with pytest.raises(slices.SliceError, match=says) as info:
        call(sites, empty)
    assert isinstance(info.value, ValueError)


def test_the_state_at_a_time_reads_the_store(make_saved_valley, tmp_path):
    basin = make_saved_valley({"UP": (10, "station"), "LOW": (35, "station")})
    rows = ["UP,2026-09-03T00:00:00Z,NH3-N,0.4,mg/L,N", "UP,2026-09-03T02:00:00Z,NH3-N,1.8,mg/L,N"]
    rows += ["LOW,2026-09-03T01:00:00Z,NH3-N,0.1,mg/L,N"]
    (tmp_path / "r.csv").write_text(HEADER + "\n".join(rows) + "\n")
    basin.readings.ingest(tmp_path / "r.csv")
    now = slices.state_at(basin.sites, basin.store, "NH3-N", "2026-09-03T03:00Z").set_index("id")
    assert now.loc["UP", "value"] == 1.8 and now.loc["UP", "class"] == 5
    assert now.loc["LOW", "value"] == 0.1 and now.loc["LOW", "class"] == 1
    summary = slices.reading_summary(basin.store, ["UP", "LOW"]).set_index("parameter")
    assert summary.loc["NH3-N", "count"] == 3 and not summary.loc["NH3-N", "simulated"]
    assert summary.loc["NH3-N", "first"] == T0 and summary.loc["NH3-N", "last"] == hours(2)
    assert slices.reading_times(basin.store, ["UP"], "NH3-N").tolist() == [T0, hours(2)]
    assert slices.reading_times(basin.store, [], "NH3-N").empty and slices.reading_summary(basin.store, []).empty


# -- class bands ----------------------------------------------------------------------------------


def test_class_bands_are_the_standards_limits_as_ranges():
    assert quality.class_ranges("TP") == [(1, -np.inf, 0.02), (2, 0.02, 0.1), (3, 0.1, 0.2), (4, 0.2, 0.3)] + [
        (5, 0.3, 0.4),
        (6, 0.4, np.inf),
    ]
    assert quality.class_ranges("TP", "reservoir")[1] == (2, 0.01, 0.025)
    do = [(b["class"], b["lower"], b["upper"], b["inclusive"]) for b in quality.class_bands("DO")]
    assert do[0] == (1, 7.5, None, "lower") and do[-1] == (6, None, 2.0, "lower")
    ph = [(b["class"], b["lower"], b["upper"], b["inclusive"]) for b in quality.class_bands("pH")]
    assert ph == [(1, 6.0, 9.0, "both"), (6, None, 6.0, "neither"), (6, 9.0, None, "neither")]
    assert [b["label"] for b in quality.class_bands("Hg")] == ["I", "III", "IV", "劣V"]  # classes sharing a limit
    assert quality.class_bands("water_temperature") == []
    with pytest.raises(quality.QualityError, match="TN"):
        quality.class_bands("TN", "river")  # limited in lakes and reservoirs only


@pytest.mark.parametrize("parameter", quality.parameters())
def test_every_value_falls_in_the_band_of_its_class(parameter):
    for water_body in ("river", "lake"):
        try:
            bands = quality.class_bands(parameter, water_body)
        except quality.QualityError:
            continue
        edges = sorted({b[k] for b in bands for k in ("lower", "upper") if b[k] is not None})
        probes = np.array(edges + [e * 0.999 for e in edges] + [e * 1.001 for e in edges] + [0.0, 1e6])
        classes = quality.classify_values(parameter, probes, water_body)
        for v, c in zip(probes, classes):
            inside = [
                b["class"]
                for b in bands
                if (b["lower"] is None or v > b["lower"] or (v == b["lower"] and b["inclusive"] in ("lower", "both")))
                and (b["upper"] is None or v < b["upper"] or (v == b["upper"] and b["inclusive"] in ("upper", "both")))
            ]
            assert inside == [c], (parameter, water_body, v)


# -- a release along the river, at a time and over time ------------------------------------------

REACHES = pd.DataFrame(
    {
        "reach_id": [1, 2, 3],
        "next_down": [2, 3, 0],
        "length_m": [2000.0, 3000.0, 4000.0],
        "slope": [0.01, 0.005, 0.002],
        "upstream_area_km2": [10.0, 30.0, 60.0],
        "qa_m3s": [0.2, 0.6, 1.2],
    }
).set_index("reach_id", drop=False)


def points_along(n: int = 19) -> pd.DataFrame:
    """Points every 500 m from the top of reach 1 to the bottom of reach 3."""
    d = np.linspace(0.0, 9000.0, n)
    starts = np.array([0.0, 2000.0, 5000.0])
    k = np.clip(np.searchsorted(starts, d, side="right") - 1, 0, 2)
    return pd.DataFrame({"reach_id": k + 1, "measure_m": d - starts[k], "distance_km": d / 1000.0})


def test_plume_times_span_the_passage_in_whole_minutes():
    times, step = slices.plume_times(T0, 100.0)
    assert step == 30.0 and len(times) == 202 and times[0] == T0 and times[-1] == hours(100.5)
    times, step = slices.plume_times(T0, 0.5)
    assert step == 5.0 and len(times) == 8  # never finer than 5 minutes by default
    times, step = slices.plume_times(T0, 2.0, 7.5)
    assert step == 7.5 and times[1] - times[0] == pd.Timedelta(minutes=7.5)
    with pytest.raises(slices.SliceError, match=r"1 min gives 6002 steps .* at most 2000 \(use at least 4\)"):
        slices.plume_times(T0, 100.0, 1.0)


def test_a_plume_over_time_travels_down_and_keeps_its_mass():
    points = points_along()
    ds = slices.plume_over_time(REACHES, Location(1, 500.0, 0, 0, 0), points, T0, mass_kg=10.0, parameter="NH3-N")
    conc = ds["concentration_mg_l"].to_numpy()
    assert (
        conc.shape == (ds.sizes["time"], 19) and ds["distance_km"].to_numpy().tolist() == points["distance_km"].tolist()
    )
    assert np.isnan(conc[:, 0]).all() and np.isnan(ds["peak_mg_l"].to_numpy()[0])  # above the release
    assert np.allclose(conc[0, 2:], 0.0)  # nothing has travelled yet
    peak_at = [int(np.nanargmax(conc[k])) for k in range(1, conc.shape[0]) if np.nanmax(conc[k]) > 1e-6]
    assert peak_at == sorted(peak_at) and peak_at[-1] == 18  # the peak moves downstream to the last point
    peaks = ds["peak_mg_l"].to_numpy()[2:]  # below the release point
    assert np.all(np.diff(peaks) < 0)  # spread and diluted on the way
    assert np.nanmax(conc) == pytest.approx(np.nanmax(ds["peak_mg_l"].to_numpy()))
    # the mass passing the last point: concentration × discharge over time
    from twin.analysis.plume import travel_times

    q = travel_times(REACHES, 1, 500.0)["discharge_m3s"].iloc[-1]
    step_s = ds.attrs["step_minutes"] * 60.0
    assert np.nansum(conc[:, -1]) * step_s * q / 1000.0 == pytest.approx(10.0, rel=0.02)
    assert ds.attrs["step_minutes"] >= 5 and ds.attrs["velocity"] and ds.attrs["dispersion"]


def test_the_river_at_a_time_holds_the_release_where_the_plume_is():
    profile = points_along()
    one = slices.plume_over_time(REACHES, Location(1, 500.0, 0, 0, 0), profile, T0, mass_kg=10.0)
    k = 40  # a time of the grid
    at = T0 + pd.Timedelta(minutes=one.attrs["step_minutes"] * k)
    out = slices.river_at(profile, REACHES, Location(1, 500.0, 0, 0, 0), T0, at, mass_kg=10.0)
    assert np.isnan(out["concentration_mg_l"].iloc[0])  # above the release
    assert out["concentration_mg_l"].to_numpy()[1:] == pytest.approx(one["concentration_mg_l"].to_numpy()[k, 1:])
    assert out["peak_time"].iloc[1:].is_monotonic_increasing


# -- the route of a trace -------------------------------------------------------------------------


@pytest.fixture
def valley(make_saved_valley):
    return make_saved_valley({"UP": (10, "station"), "LOW": (35, "station")})


def test_a_release_in_the_north_crosses_into_the_south_on_its_way_to_a_station_there(valley):
    sites = valley.sites.set_index("id")
    up, low = sites.loc["UP"], sites.loc["LOW"]
    net, units = valley.network, valley.jurisdictions
    x, y = up.geometry.x, up.geometry.y
    assert crossings.units_crossed(
        net, units, int(up.reach_id), float(up.measure_m), x, y, low.reach_id, low.measure_m
    ) == [
        "North",
        "South",
    ]
    # to a station in its own unit; to one upstream of it (not on its way): only where it starts
    assert crossings.units_crossed(net, units, int(up.reach_id), 0.0, x, y, up.reach_id, up.measure_m) == ["North"]
    lx, ly = low.geometry.x, low.geometry.y
    assert crossings.units_crossed(net, units, int(low.reach_id), float(low.measure_m), lx, ly, up.reach_id, 0.0) == [
        "South"
    ]
    candidates = pd.DataFrame({"candidate": ["UP"], "reach_id": [int(up.reach_id)], "measure_m": [float(up.measure_m)]})
    placed = crossings.place_candidates(candidates, net, units, low, valley.crs).iloc[0]
    assert placed["route"] == ["North", "South"] and placed["jurisdictions"]["region"]["name"] == "North"
    wgs = valley.sites.to_crs("EPSG:4326").set_index("id").loc["UP"].geometry
    assert (placed["lon"], placed["lat"]) == pytest.approx((wgs.x, wgs.y), abs=1e-3)  # UP sits on its river


# -- warnings over the whole history --------------------------------------------------------------


def test_warning_periods_are_cut_by_station_parameter_and_window(episodes, sites):
    assert history.periods(episodes, station="MID")["parameter"].tolist() == ["NH3-N", "TP"]  # by start
    assert history.periods(episodes, parameter="TP", start=hours(11))["station"].tolist() == ["MID"]  # still open
    assert history.periods(episodes, parameter="TP", end=hours(5))["station"].tolist() == ["UP"]
    assert history.periods(episodes, station="UP", parameter="NH3-N").empty
    assert history.periods(episodes.iloc[0:0]).columns.tolist() == history.PERIOD_COLUMNS
    ids = history.periods(episodes)["id"].tolist()
    assert ids == ["MID.NH3-N.20260903T0100Z", "UP.TP.20260903T0200Z", "MID.TP.20260903T0600Z"]
    features = history.episode_features(episodes, sites)
    assert features["id"].tolist() == [
        history.warning_id(s, p, t) for s, p, t in episodes[["station", "parameter", "start"]].values
    ]
    assert features["station_name"].tolist() == ["Upper", "Middle", "Middle"]
    assert features.geometry.iloc[1].equals(sites.geometry.iloc[1])


def test_the_parameter_to_show_is_that_of_the_latest_warning(episodes):
    assert history.parameter_to_show(["NH3-N", "TP"], episodes) == "TP"  # MID's TP started last
    assert history.parameter_to_show(["NH3-N"], episodes) == "NH3-N"
    nothing = episodes.iloc[0:0]
    assert history.parameter_to_show(["water_temperature", "DO"], nothing, quality.parameters()) == "DO"
    assert history.parameter_to_show(["water_temperature"], nothing, quality.parameters()) == "water_temperature"
    assert history.parameter_to_show([], episodes) is None


def test_the_history_of_warnings_follows_the_store(make_saved_valley, tmp_path):
    from twin.analysis.response import escalation_table, warnings

    basin = make_saved_valley({"UP": (10, "station"), "LOW": (35, "intake")})
    live = history.watch(basin.store, basin.sites, escalation_table(basin.model))
    assert live.episodes().empty
    values = [0.3, 0.4, 1.8, 1.8, 0.4, 0.3, 0.3, 0.3]
    rows = [f"UP,2026-08-01T{2 * k:02d}:00:00Z,NH3-N,{v},mg/L,N" for k, v in enumerate(values)]
    (tmp_path / "r.csv").write_text(HEADER + "\n".join(rows) + "\n")
    basin.readings.ingest(tmp_path / "r.csv")
    pd.testing.assert_frame_equal(live.episodes(), warnings(basin.model, basin.store, plans=False))
    assert live.episodes()["level_name"].tolist() == ["red"]  # orange near an intake, escalated
