"""Loaders: every DEM, vector and site format the catalog accepts gives the same twin.

DEMs: GeoTIFF, SRTM ``.hgt``, ESRI ASCII grid, a mosaic of tiles, a DEM in
lon/lat reprojected to UTM. Vectors: GeoJSON, GeoPackage, Shapefile. Sites:
CSV (lon/lat or projected x/y with a declared CRS) and GeoJSON points.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
import yaml
from affine import Affine
from pyproj import Geod, Transformer

import twin
from twin.errors import CatalogError, CRSError, SourceError
from twin.model.loaders import load_sites, load_vectors
from twin.model.mosaic import load_dem

from . import synthetic
from .synthetic import cell_lonlat, cell_xy

GEOD = Geod(ellps="WGS84")


def edit_catalog(path: Path, change) -> Path:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))
    return path


def assert_same_drainage(a: twin.BasinTwin, b: twin.BasinTwin) -> None:
    assert a.terrain.grid.shape == b.terrain.grid.shape
    assert a.terrain.grid.transform == b.terrain.grid.transform
    np.testing.assert_array_equal(a.drainage.d8, b.drainage.d8)
    np.testing.assert_array_equal(a.drainage.reach, b.drainage.reach)
    assert len(a.network) == len(b.network)


# ---------------------------------------------------------------------------
# DEM formats
# ---------------------------------------------------------------------------
def test_geotiff_read_as_is(tmp_path):
    dem = synthetic.with_holes()
    path = synthetic.write_dem(tmp_path / "dem.tif", dem)
    elev = load_dem([path])
    assert elev.grid.crs.to_epsg() == 32631
    assert elev.grid.transform == synthetic.TRANSFORM
    assert elev.grid.shape == dem.shape
    assert elev.grid.cell_area == 900.0
    assert elev.values.dtype == np.float32
    np.testing.assert_array_equal(elev.values, dem)  # -9999 nodata came back as NaN
    assert np.isnan(elev.values).sum() == 25


def test_declared_nodata_used_when_file_has_none(tmp_path):
    dem = synthetic.v_valley()
    dem[0, 0] = -1.0
    path = tmp_path / "dem.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=dem.shape[1],
        height=dem.shape[0],
        count=1,
        dtype="float32",
        crs=synthetic.CRS,
        transform=synthetic.TRANSFORM,
    ) as dst:
        dst.write(dem, 1)
    assert not np.isnan(load_dem([path]).values).any()
    elev = load_dem([path], nodata=-1.0)
    assert np.isnan(elev.values[0, 0]) and np.isnan(elev.values).sum() == 1


def _write_hgt(folder: Path, void: bool = True) -> tuple[Path, np.ndarray]:
    """A 1201 x 1201 SRTM3 tile (3 arc-second, int16) for N44E003: lon 3-4, lat 44-45."""
    n = 1201
    rows, cols = np.mgrid[0:n, 0:n]
    z = (300 + (n - 1 - rows) // 2 + np.abs(cols - 600) // 3).astype("int16")  # 300..1100 m, a valley at lon 3.5
    if void:
        z[100:110, 200:210] = -32768  # an SRTM void
    step = 1 / 1200
    transform = Affine(step, 0, 3 - step / 2, 0, -step, 45 + step / 2)  # cell centres on whole degrees
    path = folder / "N44E003.hgt"
    with rasterio.open(
        path,
        "w",
        driver="SRTMHGT",
        width=n,
        height=n,
        count=1,
        dtype="int16",
        crs="EPSG:4326",
        transform=transform,
        nodata=-32768,
    ) as dst:
        dst.write(z, 1)
    return path, z


def test_srtm_hgt_tile(tmp_path):
    path, z = _write_hgt(tmp_path)
    assert path.stat().st_size == 1201 * 1201 * 2  # a real .hgt: raw big-endian int16, no header
    with rasterio.open(path) as src:
        assert src.driver == "SRTMHGT"
        assert src.crs.to_epsg() == 4326
        assert src.dtypes[0] == "int16"
    elev = load_dem([path])
    g = elev.grid
    assert g.crs.to_epsg() == 32631  # lon 3.5 lies in UTM zone 31N
    # cell size: 3 arc-seconds of longitude at the tile's centre latitude (44.5 N), to the metre
    along_parallel = GEOD.inv(3.5, 44.5, 3.5 + 3 / 3600, 44.5)[2]
    assert abs(g.transform.a) == pytest.approx(along_parallel, abs=1.0)
    assert -g.transform.e == g.transform.a
    # the grid covers the tile: its corners, in UTM, lie inside the reprojected bounds (give or take a cell)
    to_utm = Transformer.from_crs("EPSG:4326", g.crs, always_xy=True)
    cx, cy = to_utm.transform([3.0, 4.0, 3.0, 4.0], [44.0, 44.0, 45.0, 45.0])
    x0, y0, x1, y1 = g.bounds
    cell = g.transform.a
    assert x0 - cell <= min(cx) and max(cx) <= x1 + cell
    assert y0 - cell <= min(cy) and max(cy) <= y1 + cell
    valid = elev.values[np.isfinite(elev.values)]
    assert valid.min() >= z[z > -32768].min() - 1 and valid.max() <= z.max() + 1
    assert valid.min() < 320 and valid.max() > 1000
    assert not (valid < 0).any()  # the void was not read as -32768 m
    # the void is NaN in the reprojected grid, at its place (lon ~3.17, lat ~44.9)
    lon_v, lat_v = 3 + 205 / 1200, 45 - 105 / 1200
    vx, vy = to_utm.transform(lon_v, lat_v)
    r, c = g.rowcol(vx, vy)
    assert np.isnan(elev.values[int(r), int(c)])


def test_srtm_hgt_end_to_end(tmp_path):
    """A catalog on an .hgt tile (coarsened with resolution_m to stay fast) builds without a declared CRS."""
    _write_hgt(tmp_path, void=False)
    cat = tmp_path / "basin.yml"
    cat.write_text(
        yaml.safe_dump(
            {
                "name": "hgt",
                "parameters": {"resolution_m": 1000, "stream_threshold_km2": 20},
                "sources": {"dem": {"role": "dem", "format": "SRTMHGT", "path": "N44E003.hgt"}},
            }
        )
    )
    basin = twin.BasinTwin.build(cat)
    assert basin.crs.to_epsg() == 32631
    assert basin.terrain.grid.transform.a == 1000
    nrow, ncol = basin.terrain.grid.shape
    assert 111 <= nrow <= 114  # 1 degree of latitude is ~111 km
    assert 79 <= ncol <= 83  # 1 degree of longitude at 44-45 N is ~79-80 km
    assert len(basin.network) > 0


def test_esri_ascii_grid_needs_a_declared_crs(tmp_path, make_catalog):
    dem = synthetic.v_valley()
    asc = synthetic.write_dem(tmp_path / "dem.asc", dem, crs=None, driver="AAIGrid")
    assert not asc.with_suffix(".prj").exists()
    assert asc.read_text().startswith("ncols")
    with pytest.raises(CRSError, match=r"dem\.asc' has no CRS; declare it in the catalog"):
        load_dem([asc])
    elev = load_dem([asc], declared_crs="EPSG:32631")
    assert elev.grid.transform == synthetic.TRANSFORM
    np.testing.assert_array_equal(elev.values, dem)

    # end to end: the same twin as from the GeoTIFF, once the catalog declares the CRS
    ref_cat = make_catalog(dem, units=None)
    (ref_cat.parent / "dem.asc").write_bytes(asc.read_bytes())
    asc_cat = ref_cat.parent / "asc.yml"
    asc_cat.write_text(ref_cat.read_text())
    edit_catalog(asc_cat, lambda c: c["sources"]["dem"].update(path="dem.asc", format="AAIGrid"))
    with pytest.raises(CRSError, match="declare it in the catalog"):
        twin.BasinTwin.build(asc_cat)
    edit_catalog(asc_cat, lambda c: c["sources"]["dem"].update(crs="EPSG:32631"))
    assert_same_drainage(twin.BasinTwin.build(asc_cat), twin.BasinTwin.build(ref_cat))


def _cut_tiles(folder: Path, dem: np.ndarray, row_cuts: list[int], col_cuts: list[int]) -> list[Path]:
    tiles = []
    rb = [0, *row_cuts, dem.shape[0]]
    cb = [0, *col_cuts, dem.shape[1]]
    for r0, r1 in zip(rb[:-1], rb[1:]):
        for c0, c1 in zip(cb[:-1], cb[1:]):
            p = folder / f"tile_r{r0}_c{c0}.tif"
            synthetic.write_dem(p, dem[r0:r1, c0:c1], transform=synthetic.TRANSFORM * Affine.translation(c0, r0))
            tiles.append(p)
    return tiles


@pytest.mark.parametrize(
    "rows, cols",
    [([20], []), ([], [15]), ([20], [15]), ([13, 27], [])],
    ids=["2-tiles-ns", "2-tiles-ew", "4-tiles", "3-tiles"],
)
def test_mosaic_equals_the_file_it_was_cut_from(rows, cols, tmp_path):
    dem = synthetic.with_holes()
    full = synthetic.write_dem(tmp_path / "full.tif", dem)
    tiles = _cut_tiles(tmp_path, dem, rows, cols)
    assert 2 <= len(tiles) <= 4
    a = load_dem([full])
    for order in (tiles, tiles[::-1]):
        b = load_dem(order)
        assert b.grid.shape == a.grid.shape
        assert b.grid.transform == a.grid.transform
        assert b.grid.crs == a.grid.crs
        np.testing.assert_array_equal(b.values, a.values)


def test_mosaic_catalog_end_to_end(tmp_path, make_catalog):
    dem = synthetic.v_valley()
    ref_cat = make_catalog(dem)
    _cut_tiles(ref_cat.parent, dem, [20], [15])
    mosaic_cat = ref_cat.parent / "mosaic.yml"
    mosaic_cat.write_text(ref_cat.read_text())

    def use_tiles(c: dict) -> None:
        c["sources"]["dem"].pop("path")
        c["sources"]["dem"]["paths"] = ["tile_r0_c0.tif", "tile_r0_c15.tif", "tile_r20_c0.tif", "tile_r20_c15.tif"]

    edit_catalog(mosaic_cat, use_tiles)
    a, b = twin.BasinTwin.build(ref_cat), twin.BasinTwin.build(mosaic_cat)
    assert_same_drainage(a, b)
    assert len(b.jurisdictions.sections) == len(a.jurisdictions.sections) == 1
    files = next(s["files"] for s in b.sources if s["name"] == "dem")
    assert [f["path"] for f in files] == ["tile_r0_c0.tif", "tile_r0_c15.tif", "tile_r20_c0.tif", "tile_r20_c15.tif"]


def test_overlapping_tiles_first_wins(tmp_path):
    dem = synthetic.v_valley()
    t0 = synthetic.write_dem(tmp_path / "a.tif", dem[:25])
    t1 = synthetic.write_dem(
        tmp_path / "b.tif", dem[15:] + 1000, transform=synthetic.TRANSFORM * Affine.translation(0, 15)
    )
    elev = load_dem([t0, t1])
    assert elev.grid.shape == dem.shape
    np.testing.assert_array_equal(elev.values[:25], dem[:25])
    np.testing.assert_array_equal(elev.values[25:], dem[25:] + 1000)


def _write_lonlat_dem(path: Path, n: int = 120) -> np.ndarray:
    """1 arc-second cells, lon 3.000-3.033, lat 44.217-44.250: a valley draining south."""
    rows, cols = np.mgrid[0:n, 0:n]
    z = (100 + (n - rows) * 0.5 + np.abs(cols - n // 2) * 0.7).astype("float32")
    synthetic.write_dem(path, z, crs="EPSG:4326", transform=Affine(1 / 3600, 0, 3.0, 0, -1 / 3600, 44.25))
    return z


def test_wgs84_dem_reprojected_to_utm(tmp_path):
    z = _write_lonlat_dem(tmp_path / "dem.tif")
    cat = tmp_path / "basin.yml"
    cat.write_text(
        yaml.safe_dump(
            {
                "name": "ll",
                "parameters": {"stream_threshold_km2": 0.05},
                "sources": {"dem": {"role": "dem", "path": "dem.tif"}},
            }
        )
    )  # no working crs
    basin = twin.BasinTwin.build(cat)
    g = basin.terrain.grid
    assert basin.crs.to_epsg() == 32631  # the UTM zone of lon 3.0x
    assert basin.info()["crs"] == "EPSG:32631"
    lat_c = 44.25 - 60 / 3600
    one_arcsec_ew = GEOD.inv(3.0, lat_c, 3.0 + 1 / 3600, lat_c)[2]  # ~22.2 m at 44.2 N
    assert g.transform.a == round(one_arcsec_ew)
    assert g.transform.a == -g.transform.e
    # the grid covers the 120 x 120 arc-second square: ~2.66 km east-west, ~3.7 km north-south
    x0, y0, x1, y1 = g.bounds
    assert x1 - x0 == pytest.approx(120 * one_arcsec_ew, rel=0.02)
    assert y1 - y0 == pytest.approx(GEOD.inv(3.0, 44.25 - 120 / 3600, 3.0, 44.25)[2], rel=0.02)
    assert x0 == pytest.approx(500000, abs=g.transform.a)  # lon 3.0 is zone 31's central meridian
    valid = basin.terrain.dem[np.isfinite(basin.terrain.dem)]
    assert valid.min() >= z.min() - 0.01 and valid.max() <= z.max() + 0.01
    # the river runs down the middle (lon 3 + 60 arc-seconds) and leaves at the south edge
    bi = basin.info()
    assert bi["outlets"] == 1
    outlet = basin.network.reaches[basin.network.reaches["next_down"] == 0].geometry.iloc[0]
    lon_end, lat_end = Transformer.from_crs(g.crs, "EPSG:4326", always_xy=True).transform(*outlet.coords[-1])
    assert lon_end == pytest.approx(3 + 60 / 3600, abs=3 / 3600)
    assert lat_end == pytest.approx(44.25 - 120 / 3600, abs=3 / 3600)


def test_declared_working_crs_and_resolution(tmp_path):
    _write_lonlat_dem(tmp_path / "dem.tif")
    elev = load_dem([tmp_path / "dem.tif"], target_crs="EPSG:2154", resolution=50)
    assert elev.grid.crs.to_epsg() == 2154
    assert elev.grid.transform.a == 50 == -elev.grid.transform.e


def test_working_crs_must_be_metric(tmp_path):
    _write_lonlat_dem(tmp_path / "dem.tif")
    with pytest.raises(CRSError, match="not a projected CRS in metres"):
        load_dem([tmp_path / "dem.tif"], target_crs="EPSG:4326")


# ---------------------------------------------------------------------------
# Vectors
# ---------------------------------------------------------------------------
def _units_in(fmt: str, catalog: Path, crs: str = synthetic.CRS) -> Path:
    """Rewrite the fixture's units.geojson in another format (and CRS); point the catalog at it."""
    folder = catalog.parent
    units = gpd.read_file(folder / "units.geojson").to_crs(crs)
    name = {"GeoJSON": "units2.geojson", "GPKG": "units.gpkg", "ESRI Shapefile": "units.shp"}[fmt]
    units.to_file(folder / name, driver=fmt)
    new = folder / f"{fmt.replace(' ', '_')}-{crs.replace(':', '')}.yml"
    new.write_text(catalog.read_text())
    edit_catalog(new, lambda c: c["sources"]["regions"].update(path=name, format=fmt, crs=crs))
    return new


@pytest.mark.parametrize("fmt", ["GeoJSON", "GPKG", "ESRI Shapefile"])
@pytest.mark.parametrize("crs", ["EPSG:32631", "EPSG:4326", "EPSG:2154"])
def test_same_units_from_every_vector_format(fmt, crs, make_catalog):
    ref_cat = make_catalog(synthetic.v_valley())
    ref = twin.BasinTwin.build(ref_cat)
    other = twin.BasinTwin.build(_units_in(fmt, ref_cat, crs))
    a, b = ref.jurisdictions, other.jurisdictions
    assert b.levels == a.levels == ["region"]
    assert b.units[["code", "name", "level"]].to_dict("records") == [
        {"code": "N", "name": "North", "level": "region"},
        {"code": "S", "name": "South", "level": "region"},
    ]
    assert b.units.crs == ref.crs
    for ga, gb in zip(a.units.geometry, b.units.geometry):
        assert ga.hausdorff_distance(gb) < (0.01 if crs == "EPSG:32631" else 0.5)  # metres
    cols = ["reach_id", "level", "from_code", "to_code"]
    assert (
        b.sections[cols].to_dict("records")
        == a.sections[cols].to_dict("records")
        == [{"reach_id": a.sections["reach_id"].iloc[0], "level": "region", "from_code": "N", "to_code": "S"}]
    )
    assert b.sections["measure_m"].tolist() == pytest.approx(a.sections["measure_m"].tolist())


def test_geojson_without_crs_member_is_lonlat(make_catalog, tmp_path):
    """RFC 7946: a GeoJSON without "crs" is WGS 84 lon/lat; the loader says so."""
    cat = make_catalog(synthetic.v_valley())
    units = gpd.read_file(cat.parent / "units.geojson").to_crs("EPSG:4326")
    (cat.parent / "units.geojson").write_text(units.to_json())
    assert "crs" not in json.loads((cat.parent / "units.geojson").read_text())
    df = load_vectors([cat.parent / "units.geojson"])
    assert df.crs.to_epsg() == 4326
    edit_catalog(cat, lambda c: c["sources"]["regions"].pop("crs"))
    assert len(twin.BasinTwin.build(cat).jurisdictions.sections) == 1


def test_several_files_for_one_level(make_catalog):
    """``paths:`` concatenates files, even in different formats and CRSs."""
    cat = make_catalog(synthetic.v_valley())
    folder = cat.parent
    units = gpd.read_file(folder / "units.geojson")
    units.iloc[[0]].to_file(folder / "north.gpkg", driver="GPKG")
    units.iloc[[1]].to_crs("EPSG:4326").to_file(folder / "south.geojson", driver="GeoJSON")
    df = load_vectors([folder / "north.gpkg", folder / "south.geojson"])
    assert df["code"].tolist() == ["N", "S"]
    assert df.crs.to_epsg() == 32631

    def two_files(c: dict) -> None:
        c["sources"]["regions"].pop("path")
        c["sources"]["regions"].pop("crs")
        c["sources"]["regions"]["paths"] = ["north.gpkg", "south.geojson"]

    edit_catalog(cat, two_files)
    basin = twin.BasinTwin.build(cat)
    assert sorted(basin.jurisdictions.units["code"]) == ["N", "S"]
    assert len(basin.jurisdictions.sections) == 1


def test_vector_file_without_features(tmp_path):
    empty = gpd.GeoDataFrame({"code": [], "name": []}, geometry=[], crs="EPSG:32631")
    empty.to_file(tmp_path / "empty.gpkg", driver="GPKG")
    with pytest.raises(SourceError, match=r"empty\.gpkg' holds no features"):
        load_vectors([tmp_path / "empty.gpkg"])


# ---------------------------------------------------------------------------
# Sites
# ---------------------------------------------------------------------------
ON_RIVER = [(30, 15, "s-south"), (8, 15, "s-north")]  # (row, col, id): cells of the valley floor


def _site_rows() -> list[dict]:
    out = []
    for r, c, sid in ON_RIVER:
        lon, lat = cell_lonlat(r, c)
        out.append({"id": sid, "name": f"Station {sid}", "lon": lon, "lat": lat})
    return out


def _placement(basin: twin.BasinTwin) -> list[tuple]:
    s = basin.sites.sort_values("id")
    return list(zip(s["id"], s["reach_id"], s["measure_m"].round(3), s["region"], s["kind"], s["target_class"]))


def test_sites_csv_lonlat(make_catalog):
    basin = twin.BasinTwin.build(make_catalog(synthetic.v_valley(), sites=_site_rows()))
    sites = basin.sites.set_index("id")
    assert sorted(sites.index) == ["s-north", "s-south"]
    assert sites.loc["s-south", "region"] == "S" and sites.loc["s-north", "region"] == "N"
    assert (sites["snap_distance_m"] < 1.0).all()  # given on the river, snapped where they are
    for r, c, sid in ON_RIVER:
        x, y = cell_xy(r, c)
        assert sites.loc[sid].geometry.distance(shapely.Point(x, y)) < 1.0
        assert sites.loc[sid, "kind"] == "station" and sites.loc[sid, "target_class"] == 3
    assert sites.loc["s-south", "upstream_area_km2"] > sites.loc["s-north", "upstream_area_km2"]


def test_sites_csv_projected_xy(make_catalog):
    ref = twin.BasinTwin.build(make_catalog(synthetic.v_valley(), sites=_site_rows()))
    cat = make_catalog(synthetic.v_valley(), name="xy", sites=[])
    lines = ["code,label,x,y"] + [
        f"{sid},Station {sid},{cell_xy(r, c)[0]},{cell_xy(r, c)[1]}" for r, c, sid in ON_RIVER
    ]
    (cat.parent / "sites.csv").write_text("\n".join(lines) + "\n")
    edit_catalog(
        cat,
        lambda c: c["sources"]["stations"].update(
            crs="EPSG:32631", x_field="x", y_field="y", id_field="code", name_field="label"
        ),
    )
    assert _placement(twin.BasinTwin.build(cat)) == _placement(ref)


def test_sites_geojson_points(make_catalog):
    ref = twin.BasinTwin.build(make_catalog(synthetic.v_valley(), sites=_site_rows()))
    cat = make_catalog(synthetic.v_valley(), name="gj")
    rows = _site_rows()
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"id": s["id"], "name": s["name"]},
                "geometry": {"type": "Point", "coordinates": [s["lon"], s["lat"]]},
            }
            for s in rows
        ],
    }
    (cat.parent / "sites.geojson").write_text(json.dumps(fc))
    edit_catalog(cat, lambda c: c["sources"].update(stations={"role": "sites", "path": "sites.geojson"}))
    assert _placement(twin.BasinTwin.build(cat)) == _placement(ref)


def test_site_columns_kind_water_body_target_class(tmp_path):
    lon, lat = cell_lonlat(30, 15)
    (tmp_path / "s.csv").write_text(
        "id,name,kind,water_body,target_class,lon,lat\n"
        f"7,Intake,intake,river,2,{lon},{lat}\n"
        f"8,Lake outfall,,lake,,{lon},{lat}\n"
    )
    df = load_sites([tmp_path / "s.csv"], fmt="CSV", declared_crs="EPSG:4326")
    assert df["id"].tolist() == ["7", "8"]  # ids stay strings
    assert df["kind"].tolist() == ["intake", "station"]
    assert df["water_body"].tolist() == ["river", "lake"]
    assert df["target_class"].tolist() == [2, 3]
    assert df.crs.to_epsg() == 4326


@pytest.mark.parametrize(
    "column, value, says",
    [
        ("kind", "volcano", ["unknown site kind", "volcano", "station", "outfall"]),
        ("target_class", "7", ["target_class must be a whole number 1-5", "7"]),
        ("target_class", "2.5", ["target_class must be a whole number 1-5", "2.5"]),
        ("water_body", "sea", ["unknown water_body", "sea", "river", "lake"]),
    ],
)
def test_bad_site_attribute_is_a_catalog_error(column, value, says, make_catalog):
    rows = _site_rows()
    cat = make_catalog(synthetic.v_valley(), sites=rows)
    csv = cat.parent / "sites.csv"
    header, *lines = csv.read_text().splitlines()
    if column == "kind":
        lines[0] = lines[0].replace("station", value)
    else:
        header += f",{column}"
        lines = [lines[0] + f",{value}", *(line + "," for line in lines[1:])]
    csv.write_text("\n".join([header, *lines]) + "\n")
    with pytest.raises(CatalogError) as info:
        twin.BasinTwin.build(cat)
    assert isinstance(info.value, ValueError)
    msg = str(info.value)
    assert "sites 'stations'" in msg
    for s in says:
        assert s in msg


def test_site_csv_without_coordinates_column(tmp_path):
    (tmp_path / "s.csv").write_text("id,name,x,y\na,A,1,2\n")
    with pytest.raises(SourceError, match=r"no column 'lon'.*set x_field/y_field"):
        load_sites([tmp_path / "s.csv"], fmt="CSV", declared_crs="EPSG:4326")


def test_duplicate_site_ids(tmp_path):
    (tmp_path / "s.csv").write_text("id,name,lon,lat\na,A,3.0,44.2\na,B,3.0,44.2\n")
    with pytest.raises(SourceError, match=r"site ids \['a'\] appear more than once"):
        load_sites([tmp_path / "s.csv"], fmt="CSV", declared_crs="EPSG:4326")
