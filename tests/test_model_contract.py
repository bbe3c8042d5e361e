"""The Model under the facade: frozen, no copies, hashes checked on open, analyses without a twin folder."""

from __future__ import annotations

import dataclasses
import json
import tracemalloc

import numpy as np
import pandas as pd
import pytest

import twin
from twin.analysis.impact import downstream_report
from twin.analysis.source import ReadingsTableError, readings_frame
from twin.analysis.tracing import trace_upstream
from twin.model.build import build_model
from twin.model.model import Model

from . import synthetic
from .synthetic import cell_lonlat


@pytest.fixture
def catalog(make_catalog):
    """The V-valley (41 x 31), units North/South at row 20, a station upstream and one downstream."""
    rows = []
    for sid, row in {"UP": 10, "LOW": 35}.items():
        lon, lat = cell_lonlat(row, 15)
        rows.append({"id": sid, "name": sid.title(), "kind": "station", "lon": lon, "lat": lat})
    return make_catalog(synthetic.v_valley(41, 31), split_row=20, sites=rows)


@pytest.fixture
def model(catalog) -> Model:
    return build_model(catalog)


def test_a_model_is_frozen_and_its_grids_are_read_only(model):
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.name = "other"  # type: ignore[misc]
    for grid in (model.terrain.dem, model.terrain.conditioned, model.drainage.d8, model.drainage.upstream_cells):
        with pytest.raises(ValueError, match="read-only"):
            grid[0, 0] = 0
    with pytest.raises(ValueError, match="read-only"):
        model.grids()["elevation"].values[0, 0] = 0.0


def test_building_the_network_leaves_the_drainage_as_it_was(catalog):
    """The reach table reads the drainage's own derived arrays (computed once, read-only); it writes nothing."""
    from twin.model.network import build_reaches

    model = build_model(catalog)
    d = model.drainage
    before = {f.name: np.copy(getattr(d, f.name)) for f in dataclasses.fields(d)}
    params = model.catalog.parameters
    again = build_reaches(model.terrain, d, runoff_mm_per_year=params.runoff_mm_per_year, min_slope=params.min_slope)
    assert len(again) == len(model.network.reaches)
    for name, value in before.items():
        assert np.array_equal(getattr(d, name), value), name
    cells = d.reach_cells[0]
    assert d.reach_cells[0] is cells and not cells.flags.writeable  # computed once, and nobody may write it
    assert "_memo" not in {f.name for f in dataclasses.fields(d)}


def test_reading_the_elevation_copies_nothing(model):
    """``terrain.elevation`` wraps the model's array: no byte of the grid is copied (rioxarray's writes in place)."""
    dem = model.terrain.dem
    tracemalloc.start()
    try:
        da = model.terrain.elevation
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.shares_memory(da.values, dem)
    assert peak < 0.1 * dem.nbytes + 64_000, f"reading the elevation allocated {peak} bytes for a {dem.nbytes}-byte grid"
    assert da.rio.crs == model.crs


def test_saving_returns_the_folder_and_changes_nothing_of_the_twin(catalog, tmp_path):
    basin = twin.BasinTwin.build(catalog)
    out = basin.save(tmp_path / "t")
    assert out == (tmp_path / "t").absolute()
    assert basin.path is None and basin.manifest == {}
    with pytest.raises(twin.TwinFolderError, match="no operations store"):
        basin.store  # noqa: B018
    opened = twin.open(out)
    assert opened.path == out and opened.manifest["name"] == basin.name
    opened.manifest["name"] = "forged"  # a copy: the twin's own manifest is not touched
    assert opened.manifest["name"] == basin.name
    with pytest.raises(AttributeError):
        opened.model = basin.model  # type: ignore[misc]


@pytest.mark.parametrize("changed", ["drainage/d8.tif", "terrain/elevation.tif", "vectors.gpkg"])
def test_opening_a_twin_whose_output_changed_names_the_file(catalog, tmp_path, changed):
    out = twin.BasinTwin.build(catalog).save(tmp_path / "t")
    path = out / changed
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # one flipped byte at the end of the file
    path.write_bytes(bytes(data))
    with pytest.raises(twin.TwinFolderError, match=rf"{changed} changed since the build.*rebuild the twin"):
        twin.open(out)


def test_the_manifest_lists_every_file_the_open_checks(catalog, tmp_path):
    from twin.model.folder import READ

    out = twin.BasinTwin.build(catalog).save(tmp_path / "t")
    listed = {o["path"] for o in json.loads((out / "twin.json").read_text())["outputs"]}
    assert set(READ) <= listed


def test_a_downstream_report_and_an_upstream_trace_run_on_a_model_and_a_table(catalog, tmp_path):
    """No twin folder, no store: a Model and a DataFrame of readings are enough (a notebook's case),
    and the trace on the table is the trace on a store holding the same readings."""
    model = build_model(catalog)
    lon, lat = cell_lonlat(8, 15)
    report = downstream_report(model, lon, lat, "2026-07-10T06:00Z", mass_kg=5.0, parameter="As")
    stations = [e["id"] for e in report["entries"] if e["kind"] == "station"]
    assert stations == ["UP", "LOW"]  # in the order the release reaches them
    times = pd.date_range("2026-07-08T00:00Z", "2026-07-10T12:00Z", freq="30min")
    rows = []
    for sid, arrival in (("UP", "2026-07-10T06:30Z"), ("LOW", "2026-07-10T08:00Z")):
        pulse = np.exp(-(((times - pd.Timestamp(arrival)).total_seconds() / 1800.0) ** 2))
        rows += [
            {"station": sid, "parameter": "As", "time": t, "value": round(0.002 + 0.2 * p, 6)}
            for t, p in zip(times, pulse)
        ]
    readings = pd.DataFrame(rows)
    from_table = trace_upstream(model, readings, "LOW", "As", "2026-07-10T10:00Z", window_hours=12, top=5)
    assert len(from_table) >= 1 and from_table["score"].is_monotonic_decreasing

    basin = twin.open(twin.BasinTwin(model).save(tmp_path / "t"))
    csv = tmp_path / "as.csv"
    readings.assign(time=readings["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"), unit="mg/L").to_csv(csv, index=False)
    assert basin.readings.ingest(csv).stored == len(readings)
    from_store = trace_upstream(basin.model, basin.store, "LOW", "As", "2026-07-10T10:00Z", window_hours=12, top=5)
    pd.testing.assert_frame_equal(from_table, from_store)


def test_a_table_of_readings_without_zone_or_columns_is_refused_with_the_reason():
    with pytest.raises(ReadingsTableError, match=r"lacks the column\(s\) \['value'\]"):
        readings_frame(pd.DataFrame({"station": [], "parameter": [], "time": []}))
    naive = pd.DataFrame({"station": ["A"], "parameter": ["As"], "time": [pd.Timestamp("2026-07-10 06:00")], "value": [1.0]})
    with pytest.raises(ReadingsTableError, match="no zone"):
        readings_frame(naive)


def test_a_table_is_filtered_like_the_store(model):
    t = pd.Timestamp("2026-07-10T06:00Z")
    df = pd.DataFrame(
        {
            "station": ["A", "A", "B", "A"],
            "parameter": ["As", "As", "As", "pH"],
            "time": [t, t + pd.Timedelta(hours=2), t, t],
            "value": [1.0, 2.0, 3.0, 7.0],
            "flag": ["", "D", "", ""],
        }
    )
    got = readings_frame(df, ["As"], t, t + pd.Timedelta(hours=3), usable_only=True, stations=["A"])
    assert got["value"].tolist() == [1.0]  # B is another station, pH another parameter, D a faulty reading
