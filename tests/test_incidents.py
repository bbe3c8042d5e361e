"""Incidents: recorded with their units, reach and downstream stations; coordinates converted on the way in."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import shapely
import yaml
from affine import Affine
from pyproj import Geod, Transformer

import twin
from twin.model.coords import wgs84_to_gcj02
from twin.ops.incidents import IncidentError, UnknownIncidentError

from . import synthetic
from .synthetic import cell_lonlat


@pytest.fixture
def basin(make_saved_valley):
    return make_saved_valley({"MID": (25, "station"), "LOW": (35, "intake")})


def test_a_spill_in_the_north_is_linked_to_its_unit_reach_and_the_stations_below(basin):
    lon, lat = cell_lonlat(8, 15)
    rec = basin.incidents.add("spill", "2026-07-10T06:00+08:00", (lon, lat), reporter="warden", case_id="C-1")
    assert rec["jurisdictions"] == {"region": ["N"]}
    assert rec["reach_id"] is not None
    assert [s["id"] for s in rec["downstream_stations"]] == ["MID", "LOW"]
    assert rec["downstream_stations"][0]["distance_km"] == pytest.approx((25 - 8) * 0.03, abs=0.031)
    assert rec["observed"] == "2026-07-09T22:00:00+00:00"
    assert rec["status"] == "open" and rec["events"][0]["note"] == "recorded"


def test_a_polygon_incident_touching_both_units_lists_both(basin):
    x0, y0 = synthetic.cell_xy(18, 5)
    x1, y1 = synthetic.cell_xy(22, 10)
    poly = shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    rec = basin.incidents.add("waste_dumping", "2026-07-10T06:00Z", poly.wkt, coord_system=synthetic.CRS)
    assert rec["jurisdictions"] == {"region": ["N", "S"]}
    assert shapely.from_wkt(rec["geometry"]).equals_exact(poly, 1e-6)


def test_list_filters_by_time_box_kind_and_unit_and_status_changes_are_kept(basin):
    n = basin.incidents.add("spill", "2026-07-10T06:00Z", cell_lonlat(8, 15))
    s = basin.incidents.add("fish_kill", "2026-07-12T06:00Z", cell_lonlat(36, 15))
    assert basin.incidents.list(kind="fish_kill")["id"].tolist() == [s["id"]]
    assert basin.incidents.list(start="2026-07-11T00:00Z")["id"].tolist() == [s["id"]]
    assert basin.incidents.list(end="2026-07-11T00:00Z")["id"].tolist() == [n["id"]]
    assert basin.incidents.list(jurisdiction="S")["id"].tolist() == [s["id"]]
    lon, lat = cell_lonlat(8, 15)
    assert basin.incidents.list(bbox=(lon - 0.001, lat - 0.001, lon + 0.001, lat + 0.001))["id"].tolist() == [n["id"]]
    basin.incidents.set_status(n["id"], "investigating", "team sent")
    closed = basin.incidents.close(n["id"], "source stopped")
    assert closed["status"] == "closed"
    assert [e["status"] for e in closed["events"]] == ["open", "investigating", "closed"]
    assert basin.incidents.list(status="open")["id"].tolist() == [s["id"]]


def test_bad_incidents_are_refused_with_the_reason(basin):
    lonlat = cell_lonlat(8, 15)
    with pytest.raises(twin.OutsideBasinError, match="outside the basin grid"):
        basin.incidents.add("spill", "2026-07-10T06:00Z", (4.5, 44.2))
    with pytest.raises(twin.CRSError, match="BD09"):
        basin.incidents.add("spill", "2026-07-10T06:00Z", lonlat, coord_system="BD09")
    with pytest.raises(IncidentError, match="no zone"):
        basin.incidents.add("spill", "2026-07-10T06:00", lonlat)
    with pytest.raises(IncidentError, match="unknown incident kind"):
        basin.incidents.add("meteor", "2026-07-10T06:00Z", lonlat)
    with pytest.raises(IncidentError, match="Point or a Polygon"):
        basin.incidents.add("spill", "2026-07-10T06:00Z", "LINESTRING (0 0, 1 1)")
    with pytest.raises(UnknownIncidentError):
        basin.incidents.get(42)
    assert basin.incidents.list().empty  # nothing half-recorded


def test_gcj02_coordinates_are_converted_on_the_way_in(tmp_path):
    # a small valley near Beijing, in UTM 50N, where web maps give GCJ-02 coordinates
    dem = synthetic.v_valley(101, 101)  # 3 km across: room for a web map's offset
    transform = Affine(30.0, 0, 440000.0, 0, -30.0, 4420000.0)
    synthetic.write_dem(tmp_path / "dem.tif", dem, crs="EPSG:32650", transform=transform)
    (tmp_path / "basin.yml").write_text(
        yaml.safe_dump(
            {
                "name": "beijing",
                "crs": "EPSG:32650",
                "parameters": {"stream_threshold_km2": 0.02},
                "sources": {"dem": {"role": "dem", "path": "dem.tif"}},
            }
        )
    )
    basin = twin.open(twin.BasinTwin.build(tmp_path / "basin.yml").save(tmp_path / "twin"))
    x, y = transform * (50.5, 60.5)
    lon, lat = Transformer.from_crs("EPSG:32650", "EPSG:4326", always_xy=True).transform(x, y)
    glon, glat = wgs84_to_gcj02(lon, lat)
    shift = Geod(ellps="WGS84").inv(lon, lat, glon, glat)[2]
    assert 200 < shift < 800  # what a web map's offset looks like
    rec = basin.incidents.add("spill", "2026-07-10T06:00+08:00", (glon, glat), coord_system="GCJ-02")
    p = shapely.from_wkt(rec["geometry"])
    assert abs(p.x - x) < 1.0 and abs(p.y - y) < 1.0  # back where it really is, within a metre
    naive = basin.incidents.add("spill", "2026-07-10T06:00+08:00", (glon, glat), coord_system="WGS84")
    assert shapely.from_wkt(naive["geometry"]).distance(p) == pytest.approx(shift, rel=0.01)


def test_cli_incident_round_trip(basin):
    lon, lat = cell_lonlat(8, 15)
    run = [sys.executable, "-m", "twin.cli", "incident"]
    out = subprocess.run(
        run
        + [
            "add",
            str(basin.path),
            "--kind",
            "spill",
            "--observed",
            "2026-07-10T06:00Z",
            "--lon",
            str(lon),
            "--lat",
            str(lat),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rid = json.loads(out.stdout)["id"]
    listed = json.loads(
        subprocess.run(
            run + ["list", str(basin.path), "--jurisdiction", "N"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert [f["properties"]["id"] for f in listed["features"]] == [rid]
    x, y = listed["features"][0]["geometry"]["coordinates"]
    assert (x, y) == pytest.approx((lon, lat), abs=1e-6)
    subprocess.run(run + ["close", str(basin.path), str(rid)], check=True, capture_output=True)
    shown = json.loads(
        subprocess.run(run + ["show", str(basin.path), str(rid)], capture_output=True, text=True, check=True).stdout
    )
    assert shown["status"] == "closed"
    bad = subprocess.run(run + ["show", str(basin.path), "999"], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("twin: error: no incident 999")
