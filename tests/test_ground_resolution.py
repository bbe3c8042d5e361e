"""A reprojected DEM keeps its ground resolution (issue 14).

The working cell of a DEM that must be reprojected is the ground size of one of its
pixels at the DEM's centre, measured in the working CRS: a 41 m Web Mercator pixel at
34° N is 34 m on the ground and gives 34 m cells, not 41 m ones; a 1 arc-second pixel
gives its east-west side (the smaller); a DEM already in the working CRS is read as it is.
Expected sizes here come from geodesic distances (pyproj.Geod), not from the code's own
transform of the pixel into the working CRS.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import CRS, Geod, Transformer

import twin
from twin.errors import CRSError
from twin.model.cluster import SerialRunner
from twin.model.loaders import NEGLIGIBLE_DISTORTION, ground_cell, round_resolution, utm_crs_for
from twin.model.mosaic import load_dem, open_dem, read_whole

from . import synthetic
from .conftest import DEMO_CATALOG

GEOD = Geod(ellps="WGS84")
TO_MERC = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
FROM_MERC = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)

LON, LAT = 135.5, 34.0  # Osaka; UTM zone 53N (central meridian 135° E)


def valley(n: int) -> np.ndarray:
    """A valley draining south down its middle column (metres)."""
    rows, cols = np.mgrid[0:n, 0:n]
    return (100 + (n - rows) * 0.5 + np.abs(cols - n // 2) * 0.7).astype("float32")


def mercator_transform(pixel: float, n: int, lon: float = LON, lat: float = LAT) -> Affine:
    """An n x n Web Mercator grid of ``pixel`` metre (map) cells centred on lon, lat."""
    x, y = TO_MERC.transform(lon, lat)
    return Affine(pixel, 0, x - n / 2 * pixel, 0, -pixel, y + n / 2 * pixel)


def write_mercator(path: Path, n: int = 90, pixel: float = 41.0) -> Path:
    return synthetic.write_dem(path, valley(n), crs="EPSG:3857", transform=mercator_transform(pixel, n))


def footprint_km2(transform: Affine, n: int, to_lonlat: Transformer) -> float:
    """Ground area (geodesic, WGS 84) of an n x n grid's outline."""
    t = np.linspace(0, n, 200)
    cols = np.concatenate([t, np.full_like(t, n), t[::-1], np.zeros_like(t)])
    rows = np.concatenate([np.zeros_like(t), t, np.full_like(t, n), t[::-1]])
    x, y = transform * (cols, rows)
    lon, lat = to_lonlat.transform(x, y)
    return abs(GEOD.polygon_area_perimeter(lon, lat)[0]) / 1e6


def geodesic_sides(to_lonlat: Transformer, cx: float, cy: float, hx: float, hy: float) -> tuple[float, float]:
    """East-west and north-south geodesic lengths of the pixel of half-sides hx, hy centred on cx, cy."""
    lon, lat = to_lonlat.transform([cx - hx, cx + hx, cx, cx], [cy, cy, cy - hy, cy + hy])
    return GEOD.inv(lon[0], lat[0], lon[1], lat[1])[2], GEOD.inv(lon[2], lat[2], lon[3], lat[3])[2]


def valid_km2(elev) -> float:
    return float(np.isfinite(elev.values).sum()) * elev.grid.cell_area / 1e6


# ---------------------------------------------------------------------------
# Web Mercator
# ---------------------------------------------------------------------------
def test_a_41_m_mercator_dem_at_34_north_gets_34_m_cells(tmp_path, caplog):
    path = write_mercator(tmp_path / "merc.tif")
    x, y = TO_MERC.transform(LON, LAT)
    east, north = geodesic_sides(FROM_MERC, x, y, 20.5, 20.5)
    assert 33.8 < min(east, north) < 34.1  # 41 m x cos(34°): the known answer
    with caplog.at_level(logging.INFO, logger="twin.model.mosaic"):
        elev = load_dem([path])
    g = elev.grid
    assert g.crs.to_epsg() == 32653
    assert g.transform.a == 34.0 == -g.transform.e == round(min(east, north))
    # the log says which cell was chosen and why
    assert "working cells of 34 m in EPSG:32653" in caplog.text
    assert "a source pixel of 41 x 41 metre is 34.0" in caplog.text and "lat 34.0000" in caplog.text

    # the old rule (the pixel taken as metres) is what resolution_m=41 now asks for
    old = load_dem([path], resolution=41)
    assert old.grid.transform.a == 41
    ratio = np.isfinite(elev.values).sum() / np.isfinite(old.values).sum()
    assert ratio == pytest.approx((41 / 34) ** 2, rel=0.03)  # ~1.45 times as many cells
    # with the same ground area either way: that of the DEM's footprint
    area = footprint_km2(mercator_transform(41.0, 90), 90, FROM_MERC)
    assert area == pytest.approx((90 * 41 * math.cos(math.radians(LAT))) ** 2 / 1e6, rel=0.01)
    assert valid_km2(elev) == pytest.approx(area, rel=0.02)
    assert valid_km2(old) == pytest.approx(area, rel=0.02)


def test_resolution_m_still_overrides(tmp_path, caplog):
    path = write_mercator(tmp_path / "merc.tif", n=30)
    with caplog.at_level(logging.INFO, logger="twin.model.mosaic"):
        src = open_dem(path, resolution=50)
    assert src.grid.transform.a == 50
    assert "working cells of 50 m, as asked (parameters.resolution_m)" in caplog.text


def _catalog(folder: Path, dem: str, parameters: dict | None = None) -> Path:
    cat = folder / "basin.yml"
    cat.write_text(
        yaml.safe_dump(
            {
                "name": "merc",
                "parameters": {"stream_threshold_km2": 0.1, **(parameters or {})},
                "sources": {"dem": {"role": "dem", "path": dem}},
            }
        )
    )
    return cat


def test_a_mercator_twin_has_34_m_cells_in_memory_and_in_tiles(tmp_path):
    write_mercator(tmp_path / "merc.tif")
    cat = _catalog(tmp_path, "merc.tif")
    whole = twin.BasinTwin.build(cat, tile_size=None)
    tiled = twin.BasinTwin.build(cat, tile_size=32, runner=SerialRunner(), workdir=tmp_path / "work")
    info = whole.info()
    assert info["cell_size_m"] == 34.0 and info["crs"] == "EPSG:32653"
    assert tiled.terrain.grid == whole.terrain.grid
    assert np.array_equal(tiled.terrain.dem, whole.terrain.dem, equal_nan=True)
    assert np.array_equal(tiled.drainage.d8, whole.drainage.d8)
    area = footprint_km2(mercator_transform(41.0, 90), 90, FROM_MERC)
    assert info["valid_cells"] * 34.0**2 / 1e6 == pytest.approx(area, rel=0.02)
    # the twin at the old cell size has ~(34/41)^2 as many cells over the same area
    coarse = twin.BasinTwin.build(_catalog(tmp_path, "merc.tif", {"resolution_m": 41}), tile_size=None).info()
    assert coarse["cell_size_m"] == 41.0
    assert info["valid_cells"] / coarse["valid_cells"] == pytest.approx((41 / 34) ** 2, rel=0.03)
    assert coarse["valid_cells"] * 41.0**2 / 1e6 == pytest.approx(area, rel=0.02)
    # the river still runs down the middle to the south edge, on either grid
    assert info["outlets"] == coarse["outlets"] == 1


def test_mercator_tiles_give_the_grid_and_values_of_the_file_they_were_cut_from(tmp_path):
    n = 90
    z = valley(n)
    t = mercator_transform(41.0, n)
    big = synthetic.write_dem(tmp_path / "merc.tif", z, crs="EPSG:3857", transform=t)
    folder = tmp_path / "tiles"
    folder.mkdir()
    for r0, r1 in ((0, 40), (40, n)):
        for c0, c1 in ((0, 55), (55, n)):
            synthetic.write_dem(
                folder / f"t_{r0:02d}_{c0:02d}.tif",
                z[r0:r1, c0:c1],
                crs="EPSG:3857",
                transform=t * Affine.translation(c0, r0),
            )
    one, tiles = open_dem(big), open_dem(folder)
    assert tiles.grid == one.grid and one.grid.transform.a == 34.0
    np.testing.assert_array_equal(read_whole(tiles).values, read_whole(one).values)


# ---------------------------------------------------------------------------
# Geographic (lon/lat) DEMs
# ---------------------------------------------------------------------------
def test_a_1_arcsecond_dem_at_34_north_gets_its_east_west_side(tmp_path):
    n = 120
    s = 1 / 3600
    t = Affine(s, 0, LON - n / 2 * s, 0, -s, LAT + n / 2 * s)
    path = synthetic.write_dem(tmp_path / "ll.tif", valley(n), crs="EPSG:4326", transform=t)
    east = GEOD.inv(LON - s / 2, LAT, LON + s / 2, LAT)[2]
    north = GEOD.inv(LON, LAT - s / 2, LON, LAT + s / 2)[2]
    assert east == pytest.approx(25.6, abs=0.1) and north == pytest.approx(30.8, abs=0.1)
    elev = load_dem([path])
    assert elev.grid.crs.to_epsg() == 32653
    assert elev.grid.transform.a == round(east) == 26.0  # the smaller side, not 31 m nor their mean (28 m)
    ll = Transformer.from_crs("EPSG:4326", "EPSG:4326", always_xy=True)
    assert valid_km2(elev) == pytest.approx(footprint_km2(t, n, ll), rel=0.02)


# ---------------------------------------------------------------------------
# Projected DEMs
# ---------------------------------------------------------------------------
def test_a_dem_in_the_working_crs_is_read_as_it_is(tmp_path):
    dem = synthetic.random_terrain(40, 30, seed=3)
    path = synthetic.write_dem(tmp_path / "utm.tif", dem)
    src = open_dem(path)
    assert src.warp is None and src.grid.transform == synthetic.TRANSFORM
    np.testing.assert_array_equal(read_whole(src).values, dem)
    # the demo's UTM DEM too (its catalog names its own zone): no resampling, its own 30 m grid
    cat = yaml.safe_load(DEMO_CATALOG.read_text())
    dem_path = DEMO_CATALOG.parent / cat["sources"]["dem"]["path"]
    demo = open_dem(dem_path, target_crs=cat["crs"])
    with rasterio.open(dem_path) as f:
        assert demo.warp is None and demo.grid.transform == f.transform and demo.grid.shape == f.shape


@pytest.mark.parametrize("pixel", [30.0, 12.5])
def test_a_utm_dem_reprojected_to_lambert_93_keeps_its_cell_size(pixel, tmp_path):
    x0, y0 = synthetic.ORIGIN
    dem = synthetic.random_terrain(40, 40, seed=4)
    path = synthetic.write_dem(
        tmp_path / "utm.tif", dem, transform=Affine(pixel, 0, x0, 0, -pixel, y0)
    )  # UTM 31N, in the Cévennes
    src = open_dem(path, target_crs="EPSG:2154")
    assert src.warp is not None and src.grid.crs.to_epsg() == 2154
    assert src.grid.transform.a == pixel  # not 13 m for 12.5 m: Lambert-93 scales it by < 0.1 %


def test_a_dem_in_us_feet_gets_its_pixel_in_metres(tmp_path):
    feet = CRS.from_epsg(2227)  # California zone 3, US survey feet
    x, y = Transformer.from_crs("EPSG:4326", feet, always_xy=True).transform(-122.0, 37.5)
    n = 40
    t = Affine(100, 0, x - n / 2 * 100, 0, -100, y + n / 2 * 100)
    path = synthetic.write_dem(tmp_path / "ft.tif", valley(n), crs="EPSG:2227", transform=t)
    src = open_dem(path)
    assert src.grid.crs.to_epsg() == 32610
    assert src.grid.transform.a == pytest.approx(30.48006, abs=1e-5)  # 100 US survey feet, not 100 m


# ---------------------------------------------------------------------------
# The rule, over latitudes
# ---------------------------------------------------------------------------
def _rounding_bound(size: float) -> float:
    return 0.5 if size >= 9.5 else 0.05


@settings(max_examples=60, deadline=None)
@given(
    lat=st.floats(-70, 70),
    lon=st.floats(-179, 179),
    pixel=st.floats(15, 200),
)
def test_a_mercator_pixel_gives_its_ground_size_at_any_latitude(lat, lon, pixel):
    n = 50
    t = mercator_transform(pixel, n, lon, lat)
    x, y = TO_MERC.transform(lon, lat)
    cell = ground_cell(
        t,
        (x - n / 2 * pixel, y - n / 2 * pixel, x + n / 2 * pixel, y + n / 2 * pixel),
        CRS(3857),
        utm_crs_for(lon, lat),
    )
    east, north = geodesic_sides(FROM_MERC, x, y, pixel / 2, pixel / 2)
    # in UTM metres, which are ground metres to within the zone's scale (0.9996 to ~1.001)
    assert cell.east_m == pytest.approx(east, rel=0.0015)
    assert cell.north_m == pytest.approx(north, rel=0.0015)
    side = min(east, north)
    assert side == pytest.approx(pixel * math.cos(math.radians(lat)), rel=0.01)  # 1/cos(lat) stretch
    if abs(min(cell.east_m, cell.north_m) - pixel) <= NEGLIGIBLE_DISTORTION * pixel:
        assert cell.resolution == pixel  # near the equator, where Mercator hardly stretches: kept as is
    else:
        assert abs(cell.resolution - side) <= _rounding_bound(side) + 0.0015 * side


@settings(max_examples=60, deadline=None)
@given(lat=st.floats(-70, 70), lon=st.floats(-179, 179), arcsec=st.floats(0.5, 30))
def test_a_lonlat_pixel_gives_its_smaller_ground_side_at_any_latitude(lat, lon, arcsec):
    s = arcsec / 3600
    n = 50
    t = Affine(s, 0, lon - n / 2 * s, 0, -s, lat + n / 2 * s)
    bounds = (lon - n / 2 * s, lat - n / 2 * s, lon + n / 2 * s, lat + n / 2 * s)
    cell = ground_cell(t, bounds, CRS(4326), utm_crs_for(lon, lat))
    east = GEOD.inv(lon - s / 2, lat, lon + s / 2, lat)[2]
    north = GEOD.inv(lon, lat - s / 2, lon, lat + s / 2)[2]
    assert cell.east_m == pytest.approx(east, rel=0.0015) and cell.north_m == pytest.approx(north, rel=0.0015)
    side = min(east, north)  # east-west but within ~4.7° of the equator, where the ellipsoid's flattening wins
    assert abs(cell.resolution - side) <= _rounding_bound(side) + 0.0015 * side


# ---------------------------------------------------------------------------
# Rounding, and bad input
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "size, want",
    [(33.87, 34.0), (25.58, 26.0), (123.4, 123.0), (9.96, 10.0), (2.345, 2.3), (0.5, 0.5), (0.0437, 0.044)],
)
def test_round_resolution_known_answers(size, want):
    assert round_resolution(size) == want


@given(st.floats(0.01, 10_000))
def test_round_resolution_keeps_two_significant_figures(size):
    r = round_resolution(size)
    assert abs(r - size) <= 0.0501 * size and abs(r - size) <= 0.5


def test_a_dem_off_the_globe_is_a_clear_error(tmp_path):
    s = 1 / 3600
    t = Affine(s, 0, LON, 0, -s, 96.0)  # latitude 96°: a broken georeference
    with pytest.raises(
        CRSError, match=r"cannot be placed in the working CRS EPSG:32653 .*check the DEM's georeferencing"
    ):
        ground_cell(t, (LON, 95.9, LON + 0.1, 96.0), CRS(4326), CRS(32653), "DEM 'x.tif'")
