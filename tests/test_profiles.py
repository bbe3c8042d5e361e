"""Profiles on the synthetic V-valley (known answers), the grids Dataset, and the matplotlib helpers.

The V-valley (41 x 31 cells of 30 m, tests/synthetic.py) has elevation
``|col - 15| * 2 + (40 - row) + 100``; its river runs down the middle column from
row 4 to the outlet at row 40 (reach 1), then 15 m to the grid's southern edge
(reach 4). Units: North above row 20, South below.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from pyproj import CRS

from twin.analysis import plume, profiles, quality
from twin.errors import TwinError
from twin.model.loaders import Grid
from twin.model.terrain import Terrain
from twin.scene import plots

from . import synthetic

START_ROW = 5
STATION_ROW = 30


def valley_elevation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The V-valley's elevation at points, from its formula (NaN off the grid)."""
    col = np.floor((np.asarray(x) - synthetic.ORIGIN[0]) / synthetic.CELL)
    row = np.floor((synthetic.ORIGIN[1] - np.asarray(y)) / synthetic.CELL)
    z = np.abs(col - 15) * 2 + (40 - row) + 100.0
    return np.where((row >= 0) & (row < 41) & (col >= 0) & (col < 31), z, np.nan)


@pytest.fixture
def terrain() -> Terrain:
    dem = synthetic.v_valley(41, 31)
    return Terrain(Grid(dem.shape, synthetic.TRANSFORM, CRS.from_user_input(synthetic.CRS)), dem, dem.copy())


@pytest.fixture
def valley(make_saved_valley):
    return make_saved_valley({"S30": (STATION_ROW, "station")})


# -- the DEM at points and along a line ----------------------------------------------------------


def test_elevation_at_cell_centres_and_outside(terrain):
    rows, cols = np.array([0, 5, 40, 20]), np.array([0, 15, 30, 7])
    x, y = synthetic.TRANSFORM * (cols + 0.5, rows + 0.5)
    assert profiles.elevation_at(terrain, x, y).tolist() == terrain.dem[rows, cols].tolist() == [170, 135, 130, 136]
    off = profiles.elevation_at(terrain, [x[0] - 31, x[0], np.nan], [y[0], y[0] + 31, y[0]])
    assert np.isnan(off).all()


def test_terrain_profile_across_the_valley(terrain):
    x0, y = synthetic.cell_xy(10, 0)
    x1, _ = synthetic.cell_xy(10, 30)
    df = profiles.terrain_profile(terrain, [(x0, y), (x1, y)], samples=31, crs=synthetic.CRS)
    assert list(df.columns) == ["distance_m", "x", "y", "lon", "lat", "elevation_m"]
    assert np.allclose(df["distance_m"], np.arange(31) * 30.0)
    assert df["elevation_m"].tolist() == [abs(c - 15) * 2 + 30 + 100.0 for c in range(31)]  # the V
    lon, lat = synthetic.cell_lonlat(10, 30)
    assert df["lon"].iloc[-1] == pytest.approx(lon, abs=1e-9) and df["lat"].iloc[-1] == pytest.approx(lat, abs=1e-9)


def test_terrain_profile_from_lon_lat_with_several_vertices(terrain):
    corners = [synthetic.cell_lonlat(r, c) for r, c in ((0, 15), (20, 15), (20, 25))]
    df = profiles.terrain_profile(terrain, corners, samples=31)
    assert df["distance_m"].iloc[-1] == pytest.approx(20 * 30 + 10 * 30, abs=0.01)
    assert df["x"].iloc[0] == pytest.approx(synthetic.cell_xy(0, 15)[0], abs=1e-6)
    assert np.array_equal(df["elevation_m"], valley_elevation(df["x"], df["y"]))
    on_floor = df["distance_m"] <= 600 + 1e-6  # down the valley floor first: 1 m per row
    assert np.allclose(df.loc[on_floor, "elevation_m"], 140 - np.floor(df.loc[on_floor, "distance_m"] / 30 + 0.5))


def test_terrain_profile_leaving_the_grid_has_no_elevation_outside(terrain):
    x, y = synthetic.cell_xy(10, 15)
    df = profiles.terrain_profile(terrain, [(x, y), (x + 2000, y)], samples=11, crs=synthetic.CRS)
    inside = df["x"] < synthetic.ORIGIN[0] + 31 * synthetic.CELL
    assert df.loc[inside, "elevation_m"].notna().all() and df.loc[~inside, "elevation_m"].isna().all()
    assert inside.any() and (~inside).any()


@pytest.mark.parametrize(
    ("line", "samples", "message"),
    [
        ([(500100.0, 4899000.0), (500100.0, 4899000.0)], 10, "all the same"),
        ([(500100.0, 4899000.0)], 10, "two or more"),
        ([(500100.0, 4899000.0), (500400.0, 4899000.0)], 1, "samples=1"),
        ([(500100.0, 4899000.0), (500400.0, 4899000.0)], 2.5, "whole number"),
    ],
)
def test_bad_lines_and_samples_are_profile_errors(terrain, line, samples, message):
    with pytest.raises(profiles.ProfileError, match=message) as err:
        profiles.terrain_profile(terrain, line, samples=samples, crs=synthetic.CRS)
    assert isinstance(err.value, TwinError) and isinstance(err.value, ValueError)


# -- along the river -----------------------------------------------------------------------------


def test_river_profile_runs_down_the_valley_floor_to_the_outlet(valley):
    lon, lat = synthetic.cell_lonlat(START_ROW, 15)
    df = profiles.river_profile(valley.model, lon, lat, samples=72)
    assert list(df.columns) == [
        "distance_km",
        "reach_id",
        "measure_m",
        "x",
        "y",
        "lon",
        "lat",
        "elevation_m",
        "conditioned_elevation_m",
    ]
    # from the centre of row 5 to that of row 40 (1050 m), then 15 m to the grid's edge
    assert df["distance_km"].iloc[0] == 0 and df["distance_km"].iloc[-1] == pytest.approx(1.065)
    assert np.allclose(np.diff(df["distance_km"]), 1.065 / 71)
    assert set(df["reach_id"]) == {1, 4} and df["reach_id"].is_monotonic_increasing
    x_mid, y_start = synthetic.cell_xy(START_ROW, 15)
    assert np.allclose(df["x"], x_mid) and np.allclose(df["y"], y_start - df["distance_km"] * 1000)
    on_reach_1 = df["reach_id"] == 1
    assert np.allclose(df.loc[on_reach_1, "measure_m"], 30 + df.loc[on_reach_1, "distance_km"] * 1000)
    inside = df["y"] > synthetic.ORIGIN[1] - 41 * synthetic.CELL  # the last sample is on the grid's edge
    assert inside.sum() == len(df) - 1
    assert df["elevation_m"].iloc[0] == 135.0
    assert np.array_equal(df.loc[inside, "elevation_m"], valley_elevation(df["x"], df["y"])[inside])
    assert np.array_equal(df["conditioned_elevation_m"], df["elevation_m"], equal_nan=True)  # no pits to fill
    assert np.all(np.diff(df.loc[inside, "conditioned_elevation_m"]) <= 0)  # water runs downhill


def release(valley, row: int):
    """A 1 kg release on the valley floor at ``row`` (reach 1), at 08:00 UTC."""
    return plume.simulate(valley.network.reaches, 1, (row - 4) * synthetic.CELL, "2026-07-10T08:00Z", mass_kg=1.0)


def test_the_concentration_along_the_river_is_the_plume_models(valley):
    ds = release(valley, START_ROW)
    at = pd.Timestamp("2026-07-10T08:30Z")
    lon, lat = synthetic.cell_lonlat(START_ROW, 15)
    df = profiles.river_profile(valley.model, lon, lat, samples=72, plume=ds, at=at)
    assert {"concentration_mg_l", "peak_time"} <= set(df.columns)
    assert str(df["peak_time"].dtype) == "datetime64[ns, UTC]"
    # at the station (750 m down, sample 50) it is what the model gives the station at that time
    station = valley.sites.set_index("id").loc[["S30"]].reset_index()[["id", "reach_id", "measure_m"]]
    direct = plume.simulate(
        valley.network.reaches, 1, 30.0, "2026-07-10T08:00Z", mass_kg=1.0, sites=station, times=pd.DatetimeIndex([at])
    )
    assert df["distance_km"].iloc[50] == pytest.approx(0.750)
    assert df["concentration_mg_l"].iloc[50] == pytest.approx(float(direct["site_concentration"][0, 0]), rel=1e-9)
    assert df["peak_time"].iloc[50] == pd.Timestamp(direct["site_peak_time"].values[0], tz="UTC")
    # the cloud is where the peak velocity has carried it in 30 minutes
    vp = float(valley.network.velocities([1])[0][0])
    peak_km = df["distance_km"].iloc[int(np.nanargmax(df["concentration_mg_l"]))]
    assert peak_km * 1000 == pytest.approx(vp * 1800, abs=2 * 15.0)


def test_no_concentration_upstream_of_the_release(valley):
    ds = release(valley, 20)  # 450 m below the profile's start
    lon, lat = synthetic.cell_lonlat(START_ROW, 15)
    df = profiles.river_profile(valley.model, lon, lat, samples=72, plume=ds, at="2026-07-10T08:20Z")
    above = df["distance_km"] < 0.450 - 1e-9
    below = df["distance_km"] > 0.450 + 1e-9
    assert df.loc[above, "concentration_mg_l"].isna().all() and df.loc[above, "peak_time"].isna().all()
    assert df.loc[below, "concentration_mg_l"].notna().all() and (df.loc[below, "concentration_mg_l"] >= 0).all()
    assert df.loc[below, "concentration_mg_l"].max() > 0


def test_a_plume_needs_a_time_with_a_zone(valley):
    ds = release(valley, START_ROW)
    lon, lat = synthetic.cell_lonlat(START_ROW, 15)
    with pytest.raises(profiles.ProfileError, match="at a time"):
        profiles.river_profile(valley.model, lon, lat, plume=ds)
    with pytest.raises(profiles.ProfileError, match="no zone"):
        profiles.river_profile(valley.model, lon, lat, plume=ds, at="2026-07-10T08:30")
    with pytest.raises(profiles.ProfileError, match="simulate"):
        profiles.river_profile(valley.model, lon, lat, plume=ds.drop_attrs(), at="2026-07-10T08:30Z")


# -- the grids Dataset ------------------------------------------------------------------------------


def test_grids_are_one_dataset_on_the_twin_grid_with_its_crs(valley):
    ds = valley.grids()
    assert list(ds.data_vars) == ["elevation", "conditioned", "upstream_area", "strahler", "subbasin"]
    assert ds.rio.crs == CRS.from_user_input(synthetic.CRS)
    assert ds.rio.transform() == synthetic.TRANSFORM
    assert np.allclose(ds["x"], synthetic.ORIGIN[0] + (np.arange(31) + 0.5) * 30)
    assert np.allclose(ds["y"], synthetic.ORIGIN[1] - (np.arange(41) + 0.5) * 30)
    assert np.array_equal(ds["elevation"], synthetic.v_valley(41, 31))
    assert ds["upstream_area"].attrs["units"] == "km2"
    x_out, y_out = synthetic.cell_xy(40, 15)
    outlet = float(ds["upstream_area"].sel(x=x_out, y=y_out))
    assert outlet == pytest.approx(41 * 31 * 900 / 1e6)  # everything drains to the outlet
    assert (ds["strahler"].isel(x=15, y=slice(4, 41)) >= 1).all() and int(ds["strahler"].isel(x=0, y=0)) == 0
    with pytest.raises(ValueError, match="read-only"):  # a view of the twin's own grid, which nobody may write
        ds["elevation"][0, 0] = -1.0
    assert valley.terrain.dem[0, 0] == 170.0


# -- plots ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameter", "water_body", "expected"),
    [
        ("As", "river", [(1, -np.inf, 0.05), (4, 0.05, 0.1), (6, 0.1, np.inf)]),
        ("DO", "river", [(1, 7.5, np.inf), (2, 6, 7.5), (3, 5, 6), (4, 3, 5), (5, 2, 3), (6, -np.inf, 2)]),
        ("pH", "lake", [(1, 6, 9), (6, -np.inf, 6), (6, 9, np.inf)]),  # by class, then lower bound
        ("COD", "river", [(1, -np.inf, 15), (3, 15, 20), (4, 20, 30), (5, 30, 40), (6, 40, np.inf)]),
        (
            "TP",
            "reservoir",
            [(1, -np.inf, 0.01), (2, 0.01, 0.025), (3, 0.025, 0.05), (4, 0.05, 0.1), (5, 0.1, 0.2), (6, 0.2, np.inf)],
        ),
    ],
)
def test_bands_are_the_gb3838_ranges(parameter, water_body, expected):
    assert plots.bands(parameter, water_body) == expected


@pytest.mark.parametrize("parameter", [p for p in quality.parameters() if p != "pH"])
@pytest.mark.parametrize("water_body", ["river", "lake"])
def test_band_edges_are_the_limits_and_bands_classify_as_named(parameter, water_body):
    try:
        limits = {quality.limit(parameter, k, water_body) for k in range(1, 6)}
    except quality.QualityError:  # TN in a river: no limits, no bands
        with pytest.raises(quality.QualityError, match="no GB 3838-2002 limits"):
            plots.bands(parameter, water_body)
        return
    found = plots.bands(parameter, water_body)
    assert {e for _, a, b in found for e in (a, b) if np.isfinite(e)} == limits
    for klass, a, b in found:  # a value strictly inside each band is of the band's class
        inside = (a + b) / 2 if np.isfinite(a) and np.isfinite(b) else (b / 2 if np.isfinite(b) else a * 2)
        assert quality.classify_values(parameter, [inside], water_body)[0] == klass


def test_unknown_water_body_is_refused():
    with pytest.raises(quality.QualityError, match="unknown water body"):
        plots.bands("As", "sea")


@pytest.mark.parametrize("scale", ["linear", "log"])
def test_class_bands_shade_each_class_between_its_limits(scale):
    ax = Figure().subplots()
    ax.plot([0, 1, 2], [0.002, 0.9, 0.003])
    ax.set_yscale(scale)
    patches = plots.class_bands(ax, "As")
    bottom, top = ax.get_ylim()
    assert bottom < 0.002 and top > 0.9  # the data stay in view
    spans = [(p.get_y(), p.get_y() + p.get_height()) for p in patches]
    assert np.allclose(spans, [(bottom, 0.05), (0.05, 0.1), (0.1, top)], rtol=1e-12, atol=0)
    assert [p.get_facecolor()[:3] for p in patches] == [
        pytest.approx(tuple(int(plots.CLASS_COLOURS[k][i : i + 2], 16) / 255 for i in (1, 3, 5))) for k in (1, 4, 6)
    ]
    lines = sorted(ln.get_ydata()[0] for ln in ax.get_lines()[1:])
    assert lines == [0.05, 0.1]  # a dotted line at each limit
    assert [t.get_text() for t in ax.texts] == ["I", "IV", "worse than V"]


def test_class_bands_widen_the_axis_to_show_every_limit():
    ax = Figure().subplots()
    ax.plot([0, 1], [8.0, 9.0])  # DO, all class I
    plots.class_bands(ax, "DO")
    bottom, top = ax.get_ylim()
    assert bottom < 2.0 and top > 9.0


def test_profile_draws_elevations_concentration_and_marks(valley):
    lon, lat = synthetic.cell_lonlat(START_ROW, 15)
    df = profiles.river_profile(valley.model, lon, lat, samples=72)
    _, sections, sites = valley.downstream(lon, lat)
    ax = Figure().subplots()
    assert plots.profile(ax, df, sections=sections, sites=sites) is None
    measured, conditioned = ax.get_lines()[:2]
    assert np.array_equal(measured.get_xdata(), df["distance_km"])
    assert np.array_equal(measured.get_ydata(), df["elevation_m"], equal_nan=True)
    assert np.array_equal(conditioned.get_ydata(), df["conditioned_elevation_m"], equal_nan=True)
    assert len(sections) == 1  # North → South at row 20
    section = next(ln for ln in ax.get_lines() if ln.get_linestyle() == "--")
    assert section.get_xdata()[0] == pytest.approx(float(sections["distance_km"].iloc[0]))
    assert "North → South" in [t.get_text() for t in ax.texts] and "S30" in [t.get_text() for t in ax.texts]
    with_plume = profiles.assign_concentration(df, valley.network.reaches, release(valley, 5), "2026-07-10T08:30Z")
    ax = Figure().subplots()
    conc = plots.profile(ax, with_plume)
    assert conc is not None and conc.get_ylabel() == "concentration (mg/L)"
    assert np.array_equal(conc.get_lines()[0].get_ydata(), with_plume["concentration_mg_l"], equal_nan=True)


def test_plots_without_matplotlib_say_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    for call in (lambda: plots.subplots(), lambda: plots.class_bands(None, "As")):
        with pytest.raises(plots.PlotDependencyError, match="pip install matplotlib") as err:
            call()
        assert isinstance(err.value, TwinError) and isinstance(err.value, ImportError)


def test_importing_profiles_and_plots_does_not_load_matplotlib():
    code = "import sys, twin.scene.plots, twin.analysis.profiles; print([m for m in sys.modules if m.split('.')[0] == 'matplotlib'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
