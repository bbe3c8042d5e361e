"""The model built from synthetic catalogs: known answers for drainage, network, jurisdictions, sites."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import twin

from . import synthetic
from .synthetic import cell_lonlat


@pytest.fixture
def valley(make_catalog):
    """The V-valley (41 x 31) with units North (rows < 20) and South, and two sites on the floor."""
    n_lon, n_lat = cell_lonlat(10, 15)
    s_lon, s_lat = cell_lonlat(35, 15)
    cat = make_catalog(
        synthetic.v_valley(41, 31),
        split_row=20,
        sites=[
            {"id": "UP", "name": "Upper", "lon": n_lon, "lat": n_lat},
            {"id": "LOW", "name": "Lower", "kind": "intake", "lon": s_lon, "lat": s_lat},
        ],
    )
    return twin.BasinTwin.build(cat)


def test_v_valley_main_stem_is_the_floor(valley):
    grid = valley.terrain.grid
    assert grid.shape == (41, 31)
    assert valley.drainage.upstream_cells[40, 15] == 41 * 31
    area = valley.drainage.upstream_area.values
    assert area[40, 15] == pytest.approx(41 * 31 * 900 / 1e6)
    # the floor reach runs straight down the middle column to the outlet cell
    reaches = valley.network.reaches
    main = reaches.loc[int(valley.drainage.reach[30, 15])]
    assert reaches.loc[main["next_down"], "next_down"] == 0
    xs = np.array(main.geometry.coords)[:, 0]
    assert np.allclose(xs, synthetic.ORIGIN[0] + 15.5 * synthetic.CELL)
    assert main["length_m"] == pytest.approx((40 - 4) * synthetic.CELL)  # the river starts at row 4
    # 1 m drop per 30 m cell along the floor
    assert main["slope"] == pytest.approx(1 / 30, rel=1e-6)


def test_reach_table_is_consistent(valley):
    r = valley.network.reaches
    assert (r["next_down"].eq(0) | (r["next_down"] > r["reach_id"])).all()  # ids upstream-first
    assert set(r["next_down"]) - {0} <= set(r["reach_id"])
    assert (r["length_m"] > 0).all() and (r["slope"] > 0).all()
    # lines connect: each reach ends where the next one starts
    for rr in r[r["next_down"] > 0].itertuples():
        assert rr.geometry.coords[-1] == r.loc[rr.next_down].geometry.coords[0]
    # upstream area never decreases downstream
    down = r[r["next_down"] > 0]
    assert (r.loc[down["next_down"], "upstream_area_km2"].to_numpy() >= down["upstream_area_km2"].to_numpy()).all()
    assert np.allclose(r["qa_m3s"], r["upstream_area_km2"] * 1e6 * 0.5 / (365.25 * 86400))


def test_downstream_from_north_enters_south_with_a_section(valley):
    lon, lat = cell_lonlat(6, 15)
    path, sections, sites = valley.downstream(lon, lat)
    assert path["from_km"].is_monotonic_increasing
    # row 6 to the outlet cell (row 40), plus the outlet reach's half-cell stub
    assert path["to_km"].iloc[-1] == pytest.approx((40 - 6) * 0.03 + 0.015)
    assert sections[["level", "from_code", "to_code"]].values.tolist() == [["region", "N", "S"]]
    assert sections["distance_km"].iloc[0] == pytest.approx((20 - 6) * 0.03)  # the first South row is 20
    assert sites["id"].tolist() == ["UP", "LOW"]
    assert sites["distance_km"].is_monotonic_increasing
    # bounded by distance
    short, sec2, _ = valley.downstream(lon, lat, max_km=0.3)
    assert short["to_km"].iloc[-1] == pytest.approx(0.3)
    assert sum(g.length for g in short.geometry) == pytest.approx(300.0)
    assert sec2.empty


def test_upstream_navigation_and_linear_referencing(valley):
    lon, lat = cell_lonlat(30, 15)
    loc = valley.locate(lon, lat)
    main = valley.network.reach(loc.reach_id)
    # the point is 30 rows below the top of the floor reach: measure ≈ distance from the reach start
    start_row = (synthetic.ORIGIN[1] - main.geometry.coords[0][1]) / synthetic.CELL - 0.5
    assert loc.measure_m == pytest.approx((30 - start_row) * synthetic.CELL)
    up = valley.network.upstream(loc, max_km=0.5, mainstem=True)
    assert up["to_km"].max() == pytest.approx(0.5)
    allup = valley.network.upstream(loc)
    assert set(allup["reach_id"]) >= set(valley.network.upstream_ids(loc.reach_id))


def test_catchment_of_the_outlet_is_the_whole_basin(valley):
    lon, lat = cell_lonlat(40, 15)
    c = valley.catchment(lon, lat)
    assert c["cells"].iloc[0] == 41 * 31
    assert c.geometry.iloc[0].area == pytest.approx(41 * 31 * 900)
    # a point on a slope, unsnapped, has a tiny catchment; snapped, the river's
    lon2, lat2 = cell_lonlat(10, 3)
    own = valley.catchment(lon2, lat2, snap=False)
    snapped = valley.catchment(lon2, lat2)
    assert own["cells"].iloc[0] < snapped["cells"].iloc[0]


def test_upstream_area_shares_by_unit(valley):
    shares = valley.jurisdictions.shares
    outlet_reach = int(
        valley.network.reaches.loc[valley.network.reaches["next_down"] == 0, "upstream_area_km2"].idxmax()
    )
    at = shares[shares["reach_id"] == outlet_reach].set_index("code")
    # rows 0-19 are North (20 rows), 20-40 South (21 rows), whole width
    assert at.loc["N", "share"] == pytest.approx(20 / 41)
    assert at.loc["S", "share"] == pytest.approx(21 / 41)
    assert at["share"].sum() == pytest.approx(1.0)


def test_sites_are_snapped_with_their_units(valley):
    s = valley.sites.set_index("id")
    assert s.loc["UP", "region"] == "N" and s.loc["LOW", "region"] == "S"
    assert s.loc["LOW", "kind"] == "intake"
    assert (s["snap_distance_m"] < 1).all()


def test_saved_and_reopened_twin_is_the_same_model(valley, tmp_path):
    out = valley.save(tmp_path / "t")
    again = twin.BasinTwin.open(out)
    np.testing.assert_array_equal(again.terrain.dem, valley.terrain.dem)
    np.testing.assert_array_equal(again.terrain.conditioned, valley.terrain.conditioned)
    np.testing.assert_array_equal(again.drainage.d8, valley.drainage.d8)
    np.testing.assert_array_equal(again.drainage.upstream_cells, valley.drainage.upstream_cells)
    np.testing.assert_array_equal(again.drainage.reach, valley.drainage.reach)
    cols = ["reach_id", "next_down", "length_m", "slope", "upstream_area_km2", "strahler", "region"]
    pd.testing.assert_frame_equal(
        again.network.reaches[cols].reset_index(drop=True),
        valley.network.reaches[cols].reset_index(drop=True),
        check_dtype=False,
    )
    assert again.network.reaches.geometry.geom_equals_exact(valley.network.reaches.geometry, 1e-6).all()
    assert again.info() == valley.info()
    lon, lat = cell_lonlat(2, 15)
    a, b = again.downstream(lon, lat), valley.downstream(lon, lat)
    assert a[0]["reach_id"].tolist() == b[0]["reach_id"].tolist()
    assert a[1]["to_code"].tolist() == b[1]["to_code"].tolist()


def test_depression_conditioning_is_recorded(make_catalog):
    dem, (pr, pc) = synthetic.closed_depression(30, 30, depth=8.0)
    basin = twin.BasinTwin.build(make_catalog(dem, units=None))
    change = basin.terrain.change.values
    assert change[pr, pc] > 0
    assert (change >= 0).all()
    s = basin.terrain.conditioning_summary()
    assert s["cells_raised"] == int((change > 0).sum())
    assert s["max_raise_m"] == pytest.approx(float(change.max()))


def test_dataarrays_carry_crs_and_coordinates(valley):
    da = valley.terrain.elevation
    assert da.rio.crs.to_epsg() == 32631
    assert da.dims == ("y", "x")
    assert float(da.x[0]) == synthetic.ORIGIN[0] + 15.0
    assert da.attrs["units"] == "m"
    assert valley.drainage.upstream_area.attrs["units"] == "km2"


def test_library_does_not_load_flask_or_pyvista():
    import subprocess
    import sys

    code = "import sys, twin; print(any(m in sys.modules for m in ('flask', 'pyvista', 'vtk')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_jobson_velocity_known_value():
    from twin.model.transport import max_probable_velocity, peak_velocity

    # Gardon d'Anduze-sized river: 543 km2, 13.8 m3/s mean annual flow, slope 0.002 (worked by hand)
    vp = float(peak_velocity(543e6, 13.8, 13.8, 0.002))
    assert vp == pytest.approx(0.47, abs=0.02)
    assert float(max_probable_velocity(543e6, 13.8, 13.8, 0.002)) > vp
    # faster at higher flow
    assert float(peak_velocity(543e6, 13.8, 50.0, 0.002)) > vp


def test_reaches_have_velocities(valley):
    v = valley.network.reaches["velocity_ms"]
    assert (v > 0.094).all() and (v < 5).all()


def test_outlet_keeps_only_its_catchment(make_catalog):
    # two V-valleys side by side ("W"), each draining south to its own outlet
    left = synthetic.v_valley(41, 31)
    dem = np.concatenate([left, left], axis=1)
    lon, lat = cell_lonlat(40, 15)  # the left valley's outlet
    basin = twin.BasinTwin.build(make_catalog(dem, units=None, extra={"outlet": {"lon": lon, "lat": lat}}))
    assert basin.info()["valid_cells"] == 41 * 31
    assert basin.terrain.grid.shape[1] <= 32
    assert basin.drainage.upstream_cells.max() == 41 * 31
    assert (basin.network.reaches["next_down"] == 0).sum() == 1


def test_outlet_and_boundary_together_are_refused(make_catalog, tmp_path):
    bad = make_catalog(
        synthetic.v_valley(),
        units=None,
        extra={"outlet": {"lon": 3.0, "lat": 44.2}},
    )
    import yaml

    cat = yaml.safe_load(bad.read_text())
    cat["sources"]["edge"] = {"role": "boundary", "path": "dem.tif"}
    bad.write_text(yaml.safe_dump(cat))
    with pytest.raises(twin.CatalogError, match="either an 'outlet' or a source with role 'boundary'"):
        twin.load_catalog(bad)


def test_drainage_hands_over_to_pyflwdir(valley):
    flw = valley.drainage.to_pyflwdir()
    np.testing.assert_allclose(flw.upstream_area("km2"), valley.drainage.upstream_area.values, rtol=1e-5)


def test_travel_times_follow_jobson_and_bound_the_path(valley):
    lon, lat = cell_lonlat(6, 15)
    path, sections, sites = valley.downstream(lon, lat)
    first = path.iloc[0]
    # on the first piece the peak travels at the reach's Jobson peak velocity
    assert first["to_km"] * 1000 / (first["peak_h"] * 3600) == pytest.approx(first["velocity_ms"], rel=1e-6)
    assert (path["earliest_h"] < path["peak_h"]).all()  # Vmp > Vp
    assert path["leading_h"].iloc[-1] == pytest.approx(0.89 * path["peak_h"].iloc[-1])
    assert sites["peak_h"].is_monotonic_increasing and sections["peak_h"].iloc[0] > 0
    half = path["peak_h"].iloc[-1] / 2
    short, _, _ = valley.downstream(lon, lat, max_hours=half)
    assert short["peak_h"].iloc[-1] == pytest.approx(half)
    assert short["to_km"].iloc[-1] < path["to_km"].iloc[-1]
    # more water, faster
    fast, _, _ = valley.downstream(lon, lat, flow_ratio=4.0)
    assert fast["peak_h"].iloc[-1] < path["peak_h"].iloc[-1]


def test_upstream_bounded_by_travel_time(valley):
    loc = valley.locate(*cell_lonlat(38, 15))
    everything = valley.network.upstream(loc)
    assert (everything["to_h"] >= everything["from_h"]).all()
    limit = everything["to_h"].max() / 3
    near = valley.network.upstream(loc, max_hours=limit)
    assert near["to_h"].max() == pytest.approx(limit)
    assert near["to_km"].max() < everything["to_km"].max()
