"""The ``twin`` command line on a synthetic basin: build, info, catchment, downstream.

The basin is the V-valley of :mod:`tests.synthetic` (41 x 31 cells of 30 m in
EPSG:32631, origin x=500000 y=4900000, a river down the middle column flowing
south), split by the ``halves`` units into "N" (rows 0-19) and "S" (rows 20-40),
with one intake on the river at row 30.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from click.testing import CliRunner
from pyproj import Transformer
from shapely.geometry import shape

import twin
from twin.cli import cli

from . import synthetic
from .synthetic import cell_lonlat, cell_xy

NROW, NCOL, MID, SPLIT = 41, 31, 15, 20
CELL_KM2 = synthetic.CELL**2 / 1e6
TO_UTM = Transformer.from_crs("EPSG:4326", synthetic.CRS, always_xy=True)
INTAKE_ROW = 30


def to_utm(geojson_geometry: dict):
    return shapely.transform(shape(geojson_geometry), lambda xy: np.column_stack(TO_UTM.transform(xy[:, 0], xy[:, 1])))


def run(*args: str, ok: bool = True):
    result = CliRunner().invoke(cli, [str(a) for a in args], prog_name="twin")
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
        assert "Traceback" not in result.stderr
    return result


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def catalog(make_catalog):
    lon, lat = cell_lonlat(INTAKE_ROW, MID)
    return make_catalog(
        synthetic.v_valley(NROW, NCOL),
        split_row=SPLIT,
        sites=[{"id": "IN1", "name": "Village intake", "kind": "intake", "lon": lon, "lat": lat}],
    )


@pytest.fixture
def twin_dir(catalog, tmp_path):
    out = tmp_path / "twins" / "valley"
    run("build", catalog, "-o", out, "--quiet")
    return out


# ---------------------------------------------------------------------------
# help
# ---------------------------------------------------------------------------
def test_help_lists_the_commands():
    result = run("--help")
    listed = [line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert {"build", "catchment", "downstream", "info", "ingest", "readings", "stations"} <= set(listed)
    for command in listed:
        assert "Usage: twin " + command in run(command, "--help").stdout


def test_version():
    assert run("--version").stdout.strip().endswith(twin.__version__)


# ---------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------
def test_build_prints_a_summary_and_writes_the_folder(catalog, tmp_path):
    out = tmp_path / "twins" / "valley"
    result = run("build", catalog, "-o", out, "--quiet")
    summary = json.loads(result.stdout)
    assert summary["twin"] == str(out)
    assert summary["cells"] == NROW * NCOL
    assert summary["sections"] == {"region": 1}
    assert summary["reaches"] >= 1
    assert result.stderr == ""  # --quiet: no progress bar
    assert sorted(p.name for p in out.parent.iterdir()) == ["valley"]  # no temp folder left beside it
    assert {"twin.json", "vectors.gpkg", "terrain", "drainage"} <= {p.name for p in out.iterdir()}


def test_manifest_lists_every_output_with_its_sha256(twin_dir):
    manifest = json.loads((twin_dir / "twin.json").read_text())
    listed = {o["path"]: o for o in manifest["outputs"]}
    on_disk = {p.relative_to(twin_dir).as_posix() for p in twin_dir.rglob("*") if p.is_file()} - {"twin.json"}
    assert set(listed) == on_disk
    assert len(listed) == len(manifest["outputs"])  # no path listed twice
    assert {"terrain/elevation.tif", "drainage/d8.tif", "drainage/reach.tif", "vectors.gpkg"} <= on_disk
    for rel, entry in listed.items():
        assert entry["sha256"] == sha256(twin_dir / rel), rel
        assert entry["bytes"] == (twin_dir / rel).stat().st_size
    assert manifest["name"] == "synthetic"
    assert manifest["crs_name"] == "EPSG:32631"
    assert manifest["shape"] == [NROW, NCOL]


def test_manifest_lists_the_sources_with_their_sha256(twin_dir, catalog):
    manifest = json.loads((twin_dir / "twin.json").read_text())
    sources = {s["name"]: s for s in manifest["sources"]}
    assert {n: s["role"] for n, s in sources.items()} == {"dem": "dem", "regions": "jurisdictions", "stations": "sites"}
    expected = {"dem": "dem.tif", "regions": "units.geojson", "stations": "sites.csv"}
    for name, filename in expected.items():
        [entry] = sources[name]["files"]
        assert entry["path"] == filename
        assert entry["sha256"] == sha256(catalog.parent / filename)
        assert entry["bytes"] == (catalog.parent / filename).stat().st_size
    assert manifest["catalog"]["sources"]["dem"]["path"] == "dem.tif"
    assert manifest["parameters"]["stream_threshold_km2"] == 0.02
    assert manifest["software"]["twin"] == twin.__version__


def test_overwrite_replaces_an_existing_twin(catalog, twin_dir, make_catalog):
    before = json.loads((twin_dir / "twin.json").read_text())
    other = make_catalog(synthetic.v_valley(NROW, NCOL), name="other", units=None)
    result = run("build", other, "-o", twin_dir, "--overwrite", "--quiet")
    assert json.loads(result.stdout)["sections"] == {}
    after = json.loads((twin_dir / "twin.json").read_text())
    assert before["name"] == "synthetic" and after["name"] == "other"
    assert sorted(p.name for p in twin_dir.parent.iterdir()) == ["valley"]  # old copy and temp folder gone


# ---------------------------------------------------------------------------
# info
# ---------------------------------------------------------------------------
def test_info_prints_the_summary_as_json(twin_dir):
    data = json.loads(run("info", twin_dir).stdout)
    for key in (
        "crs",
        "bounds",
        "cells",
        "reaches",
        "stream_length_km",
        "jurisdictions_crossed",
        "cross_boundary_sections",
        "sites",
    ):
        assert key in data, key
    x0, y0 = synthetic.ORIGIN
    assert data["crs"] == "EPSG:32631"
    assert data["bounds"] == [x0, y0 - NROW * 30, x0 + NCOL * 30, y0]
    assert data["cells"] == NROW * NCOL
    assert data["cell_size_m"] == 30
    basin = twin.open(str(twin_dir))
    assert data["reaches"] == len(basin.network) >= 1
    assert data["stream_length_km"] == pytest.approx(basin.network.reaches["length_m"].sum() / 1000, abs=0.05)
    # the main river alone runs the height of the grid
    assert data["stream_length_km"] >= (NROW - 5) * 0.03
    assert data["jurisdictions_crossed"] == {"region": ["N North", "S South"]}
    assert data["cross_boundary_sections"] == {"region": 1}
    assert [s["from"] for s in data["top_level_sections"]] == ["N North"]
    assert [s["to"] for s in data["top_level_sections"]] == ["S South"]
    [site] = data["sites"]
    assert (site["id"], site["name"], site["kind"]) == ("IN1", "Village intake", "intake")
    # the intake at row 30 drains every cell of the triangle above it: more than half the valley
    assert NROW * NCOL * CELL_KM2 / 2 < site["upstream_area_km2"] < NROW * NCOL * CELL_KM2


def test_info_summary_is_human_readable(twin_dir):
    text = run("info", twin_dir, "--summary").stdout
    assert "synthetic" in text
    assert "41 x 31 = 1,271 cells of 30 m, EPSG:32631" in text
    assert "1 cross-boundary sections" in text
    assert "N North -> S South" in text
    assert "IN1" in text and "intake" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_info_verify_passes_on_an_untouched_twin(twin_dir):
    data = json.loads(run("info", twin_dir, "--verify").stdout)
    assert data["verified"] is True


@pytest.mark.parametrize("rel", ["drainage/strahler.tif", "vectors.gpkg", "terrain/elevation.tif"])
def test_info_verify_fails_after_tampering(twin_dir, rel):
    target = twin_dir / rel
    with open(target, "ab") as f:  # still a readable file, but not the one that was built
        f.write(b"\0")
    assert run("info", twin_dir).exit_code == 0  # plain info does not re-hash
    result = run("info", twin_dir, "--verify", ok=False)
    assert result.exit_code == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("twin: error: ")
    assert "1 output(s) changed since the build" in line and rel in line and "rebuild it" in line


# ---------------------------------------------------------------------------
# catchment
# ---------------------------------------------------------------------------
def _catchment(twin_dir, row, col, *extra):
    lon, lat = cell_lonlat(row, col)
    return json.loads(run("catchment", twin_dir, "--lon", repr(lon), "--lat", repr(lat), *extra).stdout)


def _in_wgs84_near_the_grid(coords: np.ndarray) -> None:
    lon0, lat0 = synthetic.TO_LONLAT.transform(synthetic.ORIGIN[0], synthetic.ORIGIN[1] - NROW * 30)
    lon1, lat1 = synthetic.TO_LONLAT.transform(synthetic.ORIGIN[0] + NCOL * 30, synthetic.ORIGIN[1])
    assert (coords[:, 0] >= lon0 - 1e-6).all() and (coords[:, 0] <= lon1 + 1e-6).all()
    assert (coords[:, 1] >= lat0 - 1e-6).all() and (coords[:, 1] <= lat1 + 1e-6).all()
    assert coords[:, 0].min() > 2.99 and coords[:, 0].max() < 3.02  # lon, not easting
    assert coords[:, 1].min() > 44.2 and coords[:, 1].max() < 44.3  # lat, not northing


def test_catchment_of_the_outlet_is_the_whole_valley(twin_dir):
    f = _catchment(twin_dir, NROW - 1, MID)
    assert f["type"] == "Feature"
    assert f["geometry"]["type"] in ("Polygon", "MultiPolygon")
    props = f["properties"]
    assert props["kind"] == "catchment"
    assert props["cells"] == NROW * NCOL  # one outlet: every cell drains to it
    assert props["area_km2"] == pytest.approx(props["cells"] * CELL_KM2)
    assert props["region"] == "S"
    assert (props["outlet_x"], props["outlet_y"]) == cell_xy(NROW - 1, MID)
    coords = np.array(shapely.get_coordinates(shape(f["geometry"])))
    _in_wgs84_near_the_grid(coords)
    poly = to_utm(f["geometry"])
    assert poly.area / 1e6 == pytest.approx(props["area_km2"], rel=1e-6)
    assert poly.bounds == pytest.approx((500000, 4900000 - NROW * 30, 500000 + NCOL * 30, 4900000), abs=0.01)


def test_catchment_of_a_point_up_the_river(twin_dir):
    row = SPLIT
    f = _catchment(twin_dir, row, MID)
    props = f["properties"]
    assert 0 < props["cells"] < NROW * NCOL
    assert props["area_km2"] == pytest.approx(props["cells"] * CELL_KM2)
    poly = to_utm(f["geometry"])
    assert poly.area / 1e6 == pytest.approx(props["area_km2"], rel=1e-6)
    # nothing below the point drains to it
    assert poly.bounds[1] >= cell_xy(row, MID)[1] - 15 - 1e-6
    assert poly.contains(shapely.Point(cell_xy(0, MID)))  # the head of the valley does
    assert props["region"] == "S"
    # the same answer as the library
    lon, lat = cell_lonlat(row, MID)
    lib = twin.open(str(twin_dir)).catchment(lon, lat)
    assert int(lib["cells"].iloc[0]) == props["cells"]


def test_catchment_no_snap_on_a_hillside(twin_dir):
    snapped = _catchment(twin_dir, 10, 5)["properties"]
    own = _catchment(twin_dir, 10, 5, "--no-snap")["properties"]
    assert own["cells"] < snapped["cells"]  # the hillside cell alone drains little
    assert own["cells"] >= 1
    assert own["area_km2"] == pytest.approx(own["cells"] * CELL_KM2)
    assert (own["outlet_x"], own["outlet_y"]) == cell_xy(10, 5)
    assert own["region"] == "N"


# ---------------------------------------------------------------------------
# downstream
# ---------------------------------------------------------------------------
def _downstream(twin_dir, row, col, *extra):
    lon, lat = cell_lonlat(row, col)
    return json.loads(run("downstream", twin_dir, "--lon", repr(lon), "--lat", repr(lat), *extra).stdout)


def _by_kind(fc: dict, kind: str) -> list[dict]:
    return [f for f in fc["features"] if f["properties"]["kind"] == kind]


def _check_reaches(fc: dict) -> list[dict]:
    reaches = _by_kind(fc, "reach")
    assert reaches
    km = [(f["properties"]["from_km"], f["properties"]["to_km"]) for f in reaches]
    assert km[0][0] == 0
    assert all(a < b for a, b in km)  # every piece has a length
    assert all(b0 == pytest.approx(a1) for (_, b0), (a1, _) in zip(km[:-1], km[1:]))  # contiguous, in flow order
    assert [a for a, _ in km] == sorted(a for a, _ in km)
    assert fc["properties"]["length_km"] == pytest.approx(km[-1][1], abs=1e-3)
    for f in reaches:
        assert f["geometry"]["type"] == "LineString"
        _in_wgs84_near_the_grid(np.array(f["geometry"]["coordinates"]))
        piece = to_utm(f["geometry"])
        p = f["properties"]
        assert piece.length / 1000 == pytest.approx(p["to_km"] - p["from_km"], abs=1e-3)
    # the path runs south, from the start to the outlet (or the limit)
    ys = [to_utm(f["geometry"]).coords[0][1] for f in reaches]
    assert ys == sorted(ys, reverse=True)
    return reaches


def test_downstream_crosses_from_north_to_south(twin_dir):
    start_row = 5
    fc = _downstream(twin_dir, start_row, MID)
    assert fc["type"] == "FeatureCollection"
    reaches = _check_reaches(fc)
    first = to_utm(reaches[0]["geometry"]).coords[0]
    assert first == pytest.approx(cell_xy(start_row, MID), abs=0.01)  # starts at the point, on the river
    last = to_utm(reaches[-1]["geometry"]).coords[-1]
    assert last[1] == pytest.approx(cell_xy(NROW - 1, MID)[1], abs=30)  # ends at the outlet
    assert fc["properties"]["length_km"] == pytest.approx((NROW - 1 - start_row) * 0.03, abs=0.031)

    [section] = _by_kind(fc, "section")
    s = section["properties"]
    assert (s["from_code"], s["to_code"], s["level"]) == ("N", "S", "region")
    assert (s["from_name"], s["to_name"]) == ("North", "South")
    assert s["distance_km"] == pytest.approx((SPLIT - start_row) * 0.03, abs=0.031)
    sx, sy = to_utm(section["geometry"]).coords[0]
    assert sx == pytest.approx(cell_xy(0, MID)[0])
    assert abs(sy - (synthetic.ORIGIN[1] - SPLIT * 30)) <= 30  # on the boundary, within a cell
    assert fc["properties"]["sections"] == 1

    [site] = _by_kind(fc, "site")
    p = site["properties"]
    assert (p["id"], p["site_kind"], p["region"]) == ("IN1", "intake", "S")
    assert p["distance_km"] == pytest.approx((INTAKE_ROW - start_row) * 0.03, abs=0.031)
    assert s["distance_km"] < p["distance_km"] < fc["properties"]["length_km"]
    assert fc["properties"]["sites"] == 1


@pytest.mark.parametrize("max_km, sections, sites", [(0.3, 0, 0), (0.6, 1, 0), (0.9, 1, 1), (50, 1, 1)])
def test_downstream_max_km(twin_dir, max_km, sections, sites):
    start_row = 5
    fc = _downstream(twin_dir, start_row, MID, "--max-km", str(max_km))
    reaches = _check_reaches(fc)
    full = (NROW - 1 - start_row) * 0.03
    assert fc["properties"]["length_km"] <= max_km + 1e-9
    assert fc["properties"]["length_km"] == pytest.approx(min(max_km, full), abs=0.031)
    total = sum(to_utm(f["geometry"]).length for f in reaches) / 1000
    assert total <= max_km + 1e-6
    assert len(_by_kind(fc, "section")) == fc["properties"]["sections"] == sections
    assert len(_by_kind(fc, "site")) == fc["properties"]["sites"] == sites
    for f in _by_kind(fc, "section") + _by_kind(fc, "site"):
        assert f["properties"]["distance_km"] <= max_km


def test_downstream_from_the_south_crosses_nothing(twin_dir):
    fc = _downstream(twin_dir, SPLIT + 3, MID)
    _check_reaches(fc)
    assert _by_kind(fc, "section") == [] and fc["properties"]["sections"] == 0
    assert [f["properties"]["id"] for f in _by_kind(fc, "site")] == ["IN1"]


def test_downstream_from_a_hillside_point_snaps_to_the_river(twin_dir):
    lon, lat = cell_lonlat(8, MID - 3)
    fc = json.loads(run("downstream", twin_dir, "--lon", repr(lon), "--lat", repr(lat)).stdout)
    assert fc["properties"]["start"] == [lon, lat]
    reaches = _check_reaches(fc)
    x, _ = to_utm(reaches[0]["geometry"]).coords[0]
    assert x == pytest.approx(cell_xy(0, MID)[0], abs=0.01)  # on the valley floor
    assert len(_by_kind(fc, "section")) == 1
