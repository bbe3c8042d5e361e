"""Slices of the demo twin after the mine-leak scenario: at a time, along a line and a river, traces."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

from twin_web import create_app

from .test_web_api import scenario_twin
from .webauth import authorised
from .webauth import token as make_token


@pytest.fixture(scope="module")
def scenario(demo_dir, tmp_path_factory):
    return scenario_twin(demo_dir, tmp_path_factory.mktemp("web-slices") / "cevennes")


@pytest.fixture(scope="module")
def client(scenario):
    return authorised(create_app(scenario[0].path, testing=True).test_client(), make_token(scenario[0].path))


def get(client, url: str) -> dict:
    resp = client.get(url)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def dem_at(basin, lon: list[float], lat: list[float]) -> np.ndarray:
    x, y = Transformer.from_crs("EPSG:4326", basin.crs, always_xy=True).transform(lon, lat)
    t = basin.terrain.grid.transform
    return basin.terrain.dem[((np.asarray(y) - t.f) // t.e).astype(int), ((np.asarray(x) - t.c) // t.a).astype(int)]


def test_the_twin_at_a_time_shows_the_plume_at_mialet(client, scenario):
    basin, truth = scenario
    peak = pd.Timestamp(truth["peak_arrivals"]["GM-MIALET"]).floor("2h")  # readings every 2 hours
    data = get(client, f"/api/slices/time?at={peak:%Y-%m-%dT%H:%MZ}&parameter=As")
    assert data["units"]["value"] == "mg/L" and data["parameter"] == "As"
    by_id = {s["id"]: s for s in data["stations"]}
    assert set(by_id) == set(basin.sites.loc[basin.sites["kind"] == "station", "id"])
    mialet = by_id["GM-MIALET"]
    assert mialet["value"] > 0.1 and mialet["class"] == 6 and mialet["label"] == "劣V" and mialet["exceeds"]
    assert mialet["warning"] == "red" and mialet["warning_level"] == 4
    collet = by_id["GA-COLLET"]  # on the other river: untouched
    assert collet["class"] == 1 and collet["warning"] is None and collet["value"] < 0.01
    before = get(client, "/api/slices/time?at=2026-09-02T00:00Z&parameter=As")
    assert {s["class"] for s in before["stations"]} == {1} and {s["warning"] for s in before["stations"]} == {None}


def test_a_terrain_profile_samples_the_dem(client, scenario):
    basin, _ = scenario
    data = get(client, "/api/slices/profile?line=3.7,44.1,3.8,44.15,3.9,44.2&samples=101")
    assert data["units"] == {"distance": "m", "elevation": "m", "coordinates": "WGS 84 degrees"}
    assert len(data["distance_m"]) == len(data["elevation_m"]) == 101
    assert data["distance_m"][0] == 0 and data["distance_m"][-1] == pytest.approx(data["length_m"], abs=0.01)
    assert np.all(np.diff(data["distance_m"]) > 0)
    assert data["lon"][0] == pytest.approx(3.7) and data["lat"][-1] == pytest.approx(44.2)
    assert np.array_equal(data["elevation_m"], dem_at(basin, data["lon"], data["lat"]))
    x, y = Transformer.from_crs("EPSG:4326", basin.crs, always_xy=True).transform([3.7, 3.8, 3.9], [44.1, 44.15, 44.2])
    assert data["length_m"] == pytest.approx(np.hypot(np.diff(x), np.diff(y)).sum(), rel=1e-6)


def test_a_profile_leaving_the_basin_has_no_elevation_outside(client):
    data = get(client, "/api/slices/profile?line=3.3,44.2,3.8,44.2&samples=50")
    assert data["elevation_m"][0] is None and data["elevation_m"][-1] is not None


def test_the_river_profile_carries_the_release_down_to_mialet(client, scenario):
    basin, truth = scenario
    src = truth["source"]
    at = truth["peak_arrivals"]["GM-MIALET"]
    q = (
        f"lon={src['lon']}&lat={src['lat']}&samples=400&mass_kg={src['mass_kg']['As']}&parameter=As"
        f"&release_at={src['time'].replace('+00:00', 'Z')}&at={at.replace('+00:00', 'Z')}"
    )
    data = get(client, "/api/slices/river?" + q)
    assert data["start"]["reach_id"] == src["reach_id"]
    d = np.array(data["distance_km"])
    assert d[0] == 0 and np.all(np.diff(d) > 0) and d[-1] == pytest.approx(data["length_km"], abs=1e-3)
    # reaches in flow order, from the source to the outlet
    path = basin.network.downstream_ids(src["reach_id"])
    seen = list(dict.fromkeys(data["reach_id"]))
    assert seen[0] == src["reach_id"] and [r for r in path if r in seen] == seen
    assert np.all(np.diff(data["conditioned_elevation_m"]) <= 1e-6)  # water runs downhill
    assert data["elevation_m"][-1] < data["elevation_m"][0]
    sites = {s["id"]: s["distance_km"] for s in data["sites"]}
    assert list(sites)[:3] == ["MINE-MOISSAC", "GM-STETIENNE", "GM-MIALET"]
    conc = np.array([np.nan if c is None else c for c in data["concentration_mg_l"]])
    assert data["release"]["units"]["value"] == "mg/L"
    assert d[np.nanargmax(conc)] == pytest.approx(sites["GM-MIALET"], abs=2.0)  # the peak is at Mialet then
    assert [s["to"] for s in data["sections"] if s["level"] == "departement"] == ["Gard"]


def test_a_station_series_has_its_class_bands_and_warning_periods(client, scenario):
    basin, truth = scenario
    data = get(client, "/api/slices/stations/GM-MIALET?parameter=As")
    stored = basin.readings.query(stations=["GM-MIALET"], parameters=["As"])
    assert len(data["time"]) == len(data["value"]) == len(data["class"]) == len(stored)
    assert data["units"]["value"] == "mg/L" and data["station"]["target_class"] == 2
    bands = [(b["class"], b["lower"], b["upper"]) for b in data["class_bands"]]
    assert bands == [(1, None, 0.05), (4, 0.05, 0.1), (6, 0.1, None)]  # GB 3838: As 0.05 for I-III, 0.1 for IV-V
    for v, c in zip(data["value"], data["class"]):
        band = next(
            b
            for b in data["class_bands"]
            if (b["lower"] is None or v > b["lower"]) and (b["upper"] is None or v <= b["upper"])
        )
        assert band["class"] == c
    assert max(data["class"]) == 6
    red = [w for w in data["warnings"] if w["level_name"] == "red"]
    assert len(red) == 1
    assert abs(pd.Timestamp(red[0]["start"]) - pd.Timestamp(truth["peak_arrivals"]["GM-MIALET"])) <= pd.Timedelta(
        hours=2
    )
    window = get(client, "/api/slices/stations/GM-MIALET?parameter=As&start=2026-09-01T00:00Z&end=2026-09-02T00:00Z")
    assert window["warnings"] == [] and max(window["class"]) == 1 and len(window["time"]) <= 13


def test_class_bands_follow_each_kind_of_limit(client):
    do = get(client, "/api/slices/stations/GM-MIALET?parameter=DO")["class_bands"]
    assert [(b["class"], b["lower"], b["upper"]) for b in do] == [
        (1, 7.5, None),
        (2, 6.0, 7.5),
        (3, 5.0, 6.0),
        (4, 3.0, 5.0),
        (5, 2.0, 3.0),
        (6, None, 2.0),
    ]
    ph = get(client, "/api/slices/stations/GM-MIALET?parameter=pH")["class_bands"]
    assert [(b["class"], b["lower"], b["upper"]) for b in ph] == [(1, 6.0, 9.0), (6, None, 6.0), (6, 9.0, None)]
    temp = get(client, "/api/slices/stations/GM-MIALET?parameter=water_temperature")
    assert temp["class_bands"] == [] and set(temp["class"]) == {None} and temp["units"]["value"] == "°C"


def test_the_downstream_report_names_lozere_then_gard(client, scenario):
    _, truth = scenario
    src = truth["source"]
    data = get(
        client,
        f"/api/slices/downstream?lon={src['lon']}&lat={src['lat']}&at={src['time'].replace('+00:00', 'Z')}"
        f"&mass_kg={src['mass_kg']['As']}&parameter=As",
    )
    deps = [e["name"] for e in data["entries"] if e["kind"] == "jurisdiction" and e["level"] == "departement"]
    assert deps == ["Lozère", "Gard"]
    peaks = {e["id"]: e["peak_mg_l"] for e in data["entries"] if e["kind"] == "station"}
    assert peaks["GM-STETIENNE"] > peaks["GM-MIALET"] > peaks["GD-ANDUZE"] > 0.1  # diluted on the way
    likely = {e["id"]: e["likely"] for e in data["entries"] if e["kind"] == "station"}
    for sid in ("GM-STETIENNE", "GM-MIALET", "GD-ANDUZE"):  # the report's arrivals are the scenario's
        assert abs(pd.Timestamp(likely[sid]) - pd.Timestamp(truth["peak_arrivals"][sid])) < pd.Timedelta(minutes=1)
    plume = data["plume"]["reaches"]
    assert len(plume["reach_id"]) == len(plume["peak_mg_l"]) and plume["reach_id"][0] == src["reach_id"]
    path = data["path"]["features"]
    assert path and all(f["geometry"]["type"] == "LineString" for f in path)
    assert path[0]["properties"]["reach_id"] == src["reach_id"] and path[0]["properties"]["peak_mg_l"] > 0


def test_the_upstream_trace_names_lozere_then_gard(client, scenario):
    _, truth = scenario
    seen = pd.Timestamp(truth["peak_arrivals"]["GM-MIALET"]) + pd.Timedelta(hours=8)
    data = get(
        client, f"/api/slices/upstream?station=GM-MIALET&parameter=As&at={seen.isoformat().replace('+00:00', 'Z')}"
    )
    assert data["station"]["jurisdictions"]["departement"]["name"] == "Gard"
    best = data["candidates"][0]
    assert best["route"] == ["Lozère", "Gard"]
    assert best["jurisdictions"]["departement"]["name"] == "Lozère"
    mine = next(c for c in data["candidates"] if c["candidate"] == "MINE-MOISSAC")
    assert mine["consistent"] and mine["route"] == ["Lozère", "Gard"]
    assert mine["mass_kg"] == pytest.approx(truth["source"]["mass_kg"]["As"], rel=0.1)
    assert (mine["lon"], mine["lat"]) == pytest.approx((truth["source"]["lon"], truth["source"]["lat"]), abs=1e-3)
    ranks = [c["rank"] for c in data["candidates"]]
    assert ranks[0] == 1 and ranks == sorted(ranks)


@pytest.mark.parametrize(
    ("url", "parameter"),
    [
        ("/api/slices/time", "at"),
        ("/api/slices/time?at=2026-09-03T14:00Z", "parameter"),
        ("/api/slices/time?at=2026-09-03T14:00Z&parameter=Kr", "parameter"),
        ("/api/slices/time?at=tomorrow&parameter=As", "at"),
        ("/api/slices/time?at=2026-09-03T14:00&parameter=As", "at"),
        ("/api/slices/time?at=2026-09-03T14:00Z&parameter=As&max_age_hours=-1", "max_age_hours"),
        ("/api/slices/time?at=2026-09-03T14:00Z&parameter=As&colour=red", "colour"),
        ("/api/slices/profile", "line"),
        ("/api/slices/profile?line=3.7,44.1", "line"),
        ("/api/slices/profile?line=3.7,44.1,3.8", "line"),
        ("/api/slices/profile?line=3.7,44.1,3.7,44.1", "line"),
        ("/api/slices/profile?line=a,b,c,d", "line"),
        ("/api/slices/profile?line=200,44.1,3.8,44.2", "line"),
        ("/api/slices/profile?line=3.7,44.1,3.8,44.2&samples=100000", "samples"),
        ("/api/slices/profile?line=3.7,44.1,3.8,44.2&samples=1", "samples"),
        ("/api/slices/river?lon=3.8", "lat"),
        ("/api/slices/river?lon=0&lat=0", "lon,lat"),
        ("/api/slices/river?lon=3.93609&lat=44.11709&release_at=2026-09-03T00:00Z", "mass_kg"),
        ("/api/slices/river?lon=3.93609&lat=44.11709&mass_kg=40&at=2026-09-03T00:00Z", "release_at"),
        ("/api/slices/river?lon=3.93609&lat=44.11709&mass_kg=-1", "mass_kg"),
        ("/api/slices/river?lon=3.93609&lat=44.11709&samples=abc", "samples"),
        ("/api/slices/stations/GM-MIALET", "parameter"),
        ("/api/slices/stations/GM-MIALET?parameter=As&start=2026-09-05T00:00Z&end=2026-09-01T00:00Z", "end"),
        ("/api/slices/downstream?lon=3.9&lat=44.1&at=2026-09-03T00:00Z", "mass_kg"),
        ("/api/slices/downstream?lon=3.9&lat=44.1&at=now&mass_kg=1", "at"),
        ("/api/slices/downstream?lon=3.9&lat=44.1&at=2026-09-03T00:00Z&mass_kg=1&flow_ratio=0", "flow_ratio"),
        ("/api/slices/downstream?lon=3.9&lat=44.1&at=2026-09-03T00:00Z&mass_kg=1&decay_per_hour=nan", "decay_per_hour"),
        ("/api/slices/downstream?lon=3.9&lat=44.1&at=2026-09-03T00:00Z&mass_kg=inf", "mass_kg"),
        ("/api/slices/upstream?parameter=As&at=2026-09-03T22:00Z", "station"),
        ("/api/slices/upstream?station=NOPE&parameter=As&at=2026-09-03T22:00Z", "station"),
        ("/api/slices/upstream?station=..%2f..%2ftwin.json&parameter=As&at=2026-09-03T22:00Z", "station"),
        ("/api/slices/upstream?station=GM-MIALET&parameter=As&at=2026-09-03T22:00Z&window_hours=0", "window_hours"),
        ("/api/slices/upstream?station=GM-MIALET&parameter=As&at=2026-09-03T22:00Z&top=0", "top"),
        ("/api/slices/upstream?station=GM-MIALET&parameter=As&at=2020-01-01T00:00Z", None),  # nothing to trace
    ],
)
def test_bad_slice_parameters_get_a_400_naming_them(client, url, parameter):
    resp = client.get(url)
    assert resp.status_code == 400, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["code"] == "InvalidParameterValue" and body["description"]
    assert body.get("parameter") == parameter


@pytest.mark.parametrize(
    "url",
    [
        "/api/slices/stations/NOPE?parameter=As",
        "/api/slices/stations/%2e%2e?parameter=As",
        "/api/slices/stations/..%2f..%2ftwin.json?parameter=As",
        "/api/slices/nothing",
    ],
)
def test_unknown_stations_and_slices_are_404(client, url):
    resp = client.get(url)
    assert resp.status_code == 404 and resp.get_json()["status"] == 404
