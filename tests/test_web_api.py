"""OGC API – Features over the demo twin after the mine-leak scenario, read with OWSLib from a live server.

The server is waitress on a free loopback port in a thread (:class:`web.server.Server`);
the same app also answers Flask's test client.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
import requests
import shapely
from click.testing import CliRunner
from openapi_spec_validator import validate
from owslib.ogcapi.features import Features

import twin
from twin.analysis import scenarios
from twin.analysis.response import warnings
from twin.cli import cli
from twin_web import create_app
from twin_web.server import Server

from .webauth import authorised, bearer
from .webauth import token as make_token

ROOT = Path(__file__).resolve().parent.parent


def scenario_twin(demo_dir: Path, folder: Path) -> tuple[twin.BasinTwin, dict]:
    """A copy of the demo twin with the mine-leak scenario's readings, incident and warnings."""
    shutil.copytree(demo_dir, folder)
    basin = twin.open(str(folder))
    return basin, scenarios.run(basin.model, basin.store, "mine-leak", folder=basin.path, seed=1)


@pytest.fixture(scope="module")
def scenario(demo_dir, tmp_path_factory):
    return scenario_twin(demo_dir, tmp_path_factory.mktemp("web-api") / "cevennes")


@pytest.fixture(scope="module")
def app(scenario):
    return create_app(scenario[0].path, testing=True)


@pytest.fixture(scope="module")
def api_token(scenario):
    """An admin's API token: every endpoint needs a user."""
    return make_token(scenario[0].path)


@pytest.fixture(scope="module")
def client(app, api_token):
    return authorised(app.test_client(), api_token)


@pytest.fixture(scope="module")
def server(app):
    with Server(app, threads=4) as s:
        yield s


@pytest.fixture(scope="module")
def ogc(server, api_token):
    return Features(server.url + "api/", headers=bearer(api_token))


def expected_counts(basin: twin.BasinTwin) -> dict[str, int]:
    return {
        "reaches": len(basin.network.reaches),
        "sections": len(basin.jurisdictions.sections),
        "jurisdictions": len(basin.jurisdictions.units),
        "stations": int((basin.sites["kind"] == "station").sum()),
        "sites": len(basin.sites),
        "incidents": 1,
        "warnings": len(warnings(basin.model, basin.store, plans=False)),
    }


def test_landing_page_and_conformance_through_owslib(ogc, server, api_token):
    rels = {link["rel"]: link for link in ogc.links}
    assert {"self", "service-desc", "conformance", "data"} <= set(rels)
    assert rels["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    conforms = ogc.conformance()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conforms
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conforms
    assert (
        requests.get(server.url + "api/conformance", headers=bearer(api_token), timeout=30).headers["Server"]
        == "waitress"
    )


def test_every_collection_holds_what_the_twin_holds(ogc, scenario):
    basin, _ = scenario
    counts = expected_counts(basin)
    assert counts["warnings"] >= 3  # the scenario raises warnings at three stations
    assert ogc.feature_collections() == list(counts)
    for cid, n in counts.items():
        meta = ogc.collection(cid)
        assert meta["itemType"] == "feature" and meta["crs"] == ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"]
        page = ogc.collection_items(cid, limit=10000)
        assert page["numberMatched"] == n and page["numberReturned"] == n == len(page["features"]), cid
        assert len({f["id"] for f in page["features"]}) == n
    assert ogc.collection("warnings")["extent"]["temporal"]["interval"][0][0].startswith("2026-09-0")


def test_features_are_geojson_in_lon_lat(ogc, scenario):
    basin, _ = scenario
    mine = ogc.collection_item("sites", "MINE-MOISSAC")
    assert mine["type"] == "Feature" and mine["properties"]["kind"] == "mine"
    lon, lat = mine["geometry"]["coordinates"]
    expected = basin.sites.set_index("id").loc[["MINE-MOISSAC"]].to_crs("EPSG:4326").geometry.iloc[0]
    assert (lon, lat) == pytest.approx((expected.x, expected.y), abs=1e-6)
    reach = ogc.collection_item("reaches", "1")
    assert reach["geometry"]["type"] == "LineString" and reach["properties"]["reach_id"] == 1
    gard = ogc.collection_item("jurisdictions", "departement-30")
    assert gard["properties"]["name"] == "Gard" and gard["geometry"]["type"] in ("Polygon", "MultiPolygon")
    incident = ogc.collection_items("incidents")["features"][0]
    assert incident["properties"]["kind"] == "fish_kill"
    assert incident["properties"]["description"].startswith("[SIMULATED]")


def test_paging_visits_every_reach_exactly_once(server, scenario, api_token):
    basin, _ = scenario
    url = server.url + "api/collections/reaches/items?limit=50"
    seen: list[str] = []
    pages = 0
    while url:
        page = requests.get(url, headers=bearer(api_token), timeout=30).json()
        links = {link["rel"]: link["href"] for link in page["links"]}
        assert page["numberReturned"] == len(page["features"]) <= 50
        assert page["numberMatched"] == len(basin.network.reaches)
        assert ("prev" in links) == (pages > 0)
        seen += [f["id"] for f in page["features"]]
        url = links.get("next")
        pages += 1
    assert pages == -(-len(basin.network.reaches) // 50)
    assert sorted(seen, key=int) == [str(r) for r in basin.network.reaches["reach_id"]]


def test_bbox_keeps_the_features_that_touch_the_box(ogc, scenario):
    basin, _ = scenario
    box = (3.75, 44.1, 3.9, 44.2)
    page = ogc.collection_items("reaches", bbox=list(box), limit=1000)
    expected = basin.network.reaches.to_crs("OGC:CRS84")
    expected = expected[expected.intersects(shapely.box(*box))]
    assert 0 < page["numberMatched"] < len(basin.network.reaches)
    assert {int(f["id"]) for f in page["features"]} == set(expected["reach_id"])
    stations = ogc.collection_items("stations", bbox=[3.9, 44.1, 3.95, 44.13])
    sites = basin.sites[basin.sites["kind"] == "station"].to_crs("OGC:CRS84")
    inside = sites[sites.intersects(shapely.box(3.9, 44.1, 3.95, 44.13))]["id"].tolist()
    assert "GM-MIALET" in inside and [f["id"] for f in stations["features"]] == inside


def test_datetime_selects_incidents_and_warnings_by_time(ogc, scenario):
    basin, truth = scenario
    everything = expected_counts(basin)["warnings"]
    assert ogc.collection_items("warnings", datetime_="2026-08-01T00:00Z/2026-08-31T00:00Z")["numberMatched"] == 0
    assert ogc.collection_items("warnings", datetime_="2026-09-01/..")["numberMatched"] == everything
    arsenic_at_mialet = truth["peak_arrivals"]["GM-MIALET"]
    at = ogc.collection_items("warnings", datetime_=arsenic_at_mialet, limit=100)["features"]
    assert "GM-MIALET" in {f["properties"]["station"] for f in at}
    assert all(f["properties"]["start"] <= arsenic_at_mialet for f in at)
    assert ogc.collection_items("incidents", datetime_="../2026-09-02T00:00Z")["numberMatched"] == 0
    assert ogc.collection_items("incidents", datetime_="2026-09-01/2026-09-07")["numberMatched"] == 1
    # collections without time accept a datetime and ignore it
    assert ogc.collection_items("sites", datetime_="2020-01-01")["numberMatched"] == len(basin.sites)


def test_a_warning_comes_with_its_response_plan(client):
    page = client.get("/api/collections/warnings/items?limit=100").get_json()
    red = next(f for f in page["features"] if f["properties"]["station"] == "GM-STETIENNE")
    one = client.get(f"/api/collections/warnings/items/{red['id']}")
    assert one.mimetype == "application/geo+json"
    plan = one.get_json()["properties"]["plan"]
    assert [p["name"] for p in plan if p["level"] == "departement"] == ["Lozère", "Gard"]
    assert red["properties"]["level_name"] == "red"


def test_a_huge_limit_is_clamped_to_10000(client, scenario):
    basin, _ = scenario
    page = client.get("/api/collections/reaches/items?offset=1&limit=" + "9" * 100).get_json()
    assert page["numberReturned"] == len(basin.network.reaches) - 1
    prev = next(link["href"] for link in page["links"] if link["rel"] == "prev")
    assert "limit=10000" in prev and "offset=0" in prev


def test_the_openapi_document_validates_and_describes_every_route(client, ogc, app):
    doc = client.get("/api/openapi.json")
    assert doc.mimetype == "application/vnd.oai.openapi+json"
    spec = doc.get_json()
    validate(spec)
    assert ogc.api()["paths"] == spec["paths"]
    templated = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule) for rule in app.url_map.iter_rules()}
    described = {re.sub(r"{\w+}", "{}", p) for p in spec["paths"]}
    for rule in templated - {"/static/{filename}"}:
        assert re.sub(r"{\w+}", "{}", rule) in described, rule


def test_every_answer_has_its_real_schema_in_the_document(client):
    """Generated from the routes' answer models: no JSON answer is a bare object any more."""
    spec = client.get("/api/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    bare = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            for media, content in op["responses"]["200"].get("content", {}).items():
                ref = content["schema"].get("$ref", "")
                if "json" in media and "openapi" not in media and ref.split("/")[-1] not in schemas:
                    bare.append(f"{method.upper()} {path} {media}")
    assert not bare, bare
    station = schemas["StationState"]["properties"]
    assert station["class"]["type"] == "integer" and station["class"]["nullable"] is True
    items = spec["paths"]["/api/collections/{collectionId}/items"]["get"]
    assert items["responses"]["200"]["content"]["application/geo+json"]["schema"]["$ref"].endswith("/FeatureCollection")
    assert {p["name"]: p["schema"].get("minimum") for p in items["parameters"]}["limit"] == 1
    time_slice = spec["paths"]["/api/slices/time"]["get"]
    at = next(p for p in time_slice["parameters"] if p["name"] == "at")
    assert at["required"] and at["schema"]["format"] == "date-time" and "1970" in at["schema"]["description"]
    assert spec["paths"]["/login"]["post"]["security"] == [] and "security" not in time_slice


@pytest.mark.parametrize(
    ("url", "status", "parameter"),
    [
        ("/api/collections/volcanoes", 404, "collectionId"),
        ("/api/collections/volcanoes/items", 404, "collectionId"),
        ("/api/collections/reaches/items/999999", 404, "featureId"),
        ("/api/collections/warnings/items/GM-MIALET.As.19990101T0000Z", 404, "featureId"),
        ("/api/collections/%2e%2e/items", 404, "collectionId"),
        ("/api/collections/..%2f..%2ftwin.json/items", 404, None),
        ("/api/collections/reaches/items/..%2f..%2ftwin.json", 404, None),
        ("/api/collections/reaches/items/%2e%2e", 404, "featureId"),
        ("/api/collections/reaches/items?bbox=1,2,3", 400, "bbox"),
        ("/api/collections/reaches/items?bbox=a,b,c,d", 400, "bbox"),
        ("/api/collections/reaches/items?bbox=nan,44,4,45", 400, "bbox"),
        ("/api/collections/reaches/items?bbox=3,45,4,44", 400, "bbox"),
        ("/api/collections/reaches/items?bbox=3,44,4,95", 400, "bbox"),
        ("/api/collections/reaches/items?bbox=1e999,44,4,45", 400, "bbox"),
        ("/api/collections/reaches/items?datetime=yesterday", 400, "datetime"),
        ("/api/collections/reaches/items?datetime=2026-13-45T00:00Z", 400, "datetime"),
        ("/api/collections/reaches/items?datetime=2026-09-03T00:00", 400, "datetime"),
        ("/api/collections/reaches/items?datetime=../..", 400, "datetime"),
        ("/api/collections/reaches/items?datetime=a/b/c", 400, "datetime"),
        ("/api/collections/reaches/items?datetime=2026-09-05/2026-09-01", 400, "datetime"),
        ("/api/collections/reaches/items?datetime=99999-01-01T00:00Z", 400, "datetime"),
        ("/api/collections/reaches/items?limit=0", 400, "limit"),
        ("/api/collections/reaches/items?limit=-5", 400, "limit"),
        ("/api/collections/reaches/items?limit=1.5", 400, "limit"),
        ("/api/collections/reaches/items?limit=" + "9" * 5000, 400, "limit"),
        ("/api/collections/reaches/items?offset=-1", 400, "offset"),
        ("/api/collections/reaches/items?f=html", 400, "f"),
        ("/api/collections/reaches/items?sortby=length_m", 400, "sortby"),
        ("/api/collections?bbox=1,2,3,4", 400, "bbox"),
        ("/api/nowhere", 404, None),
    ],
)
def test_bad_requests_get_a_json_4xx_naming_the_parameter(client, url, status, parameter):
    resp = client.get(url)
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["status"] == status and body["code"] and body["description"]
    assert body.get("parameter") == parameter


def test_other_methods_are_refused_with_json(client):
    resp = client.post("/api/collections")
    assert resp.status_code == 405 and resp.get_json()["code"] == "MethodNotAllowed"
    assert "GET" in resp.headers["Allow"]


def test_an_unexpected_error_is_logged_and_answered_as_json_500(demo_dir, caplog):
    app = create_app(demo_dir)

    @app.get("/boom")
    def boom():
        raise RuntimeError("a bug")

    with caplog.at_level(logging.ERROR):
        resp = authorised(app.test_client(), make_token(demo_dir)).get("/boom")
    assert resp.status_code == 500
    assert resp.get_json() == {
        "code": "ServerError",
        "description": "internal server error; the server log has the details",
        "status": 500,
    }
    assert any(r.exc_info and "a bug" in str(r.exc_info[1]) for r in caplog.records)


def test_twin_serve_runs_waitress_and_prints_its_url(scenario, api_token):
    basin, _ = scenario
    proc = subprocess.Popen(
        [sys.executable, "-m", "twin.cli", "serve", str(basin.path), "--port", "0", "--no-tile-cache"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = re.search(r" at (http://127\.0\.0\.1:\d+/)", line)
        assert url, line
        resp = requests.get(url.group(1) + "api/collections/stations/items", headers=bearer(api_token), timeout=60)
        assert resp.status_code == 200 and resp.headers["Server"] == "waitress"
        assert resp.json()["numberMatched"] == int((basin.sites["kind"] == "station").sum())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def test_twin_serve_refuses_a_folder_that_is_not_a_twin(tmp_path):
    result = CliRunner().invoke(cli, ["serve", str(tmp_path)], prog_name="twin")
    assert result.exit_code == 1
    assert "is not a twin folder" in result.output


def test_importing_the_library_and_its_cli_loads_no_web_framework():
    code = (
        "import sys, twin, twin.cli; print(json.dumps([m for m in ('flask', 'web', 'waitress') if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert json.loads(out.stdout) == []


def test_geojson_of_a_collection_reads_back_with_geopandas(server, scenario, api_token):
    basin, _ = scenario
    fc = requests.get(
        server.url + "api/collections/sections/items?limit=10000", headers=bearer(api_token), timeout=30
    ).json()
    gdf = gpd.GeoDataFrame.from_features(fc, crs="OGC:CRS84")
    assert len(gdf) == len(basin.jurisdictions.sections)
    assert set(gdf["level"]) == set(basin.jurisdictions.levels)


def test_gdal_reads_every_collection_through_its_oapif_driver(scenario, api_token):
    """GDAL's own OGC API - Features client (the ``OAPIF:`` driver, what ``ogrinfo OAPIF:URL`` uses), through
    pyogrio, against ``twin serve``. (Against the in-process test server, GDAL's reused keep-alive connection
    gets no answer to its second page: a harness matter, not the server's, which this test would not show.)"""
    import pyogrio

    basin, _ = scenario
    counts = expected_counts(basin)
    proc = subprocess.Popen(
        [sys.executable, "-m", "twin.cli", "serve", str(basin.path), "--port", "0", "--no-tile-cache"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": api_token, "GDAL_HTTP_TIMEOUT": "60"})
    try:
        assert proc.stdout is not None
        found = re.search(r" at (http://127\.0\.0\.1:\d+/)", proc.stdout.readline())
        assert found
        url = f"OAPIF:{found.group(1)}api/"
        assert [str(name) for name, _ in pyogrio.list_layers(url)] == list(counts)
        for name in ("reaches", "stations", "jurisdictions"):
            df = pyogrio.read_dataframe(url, layer=name)
            assert len(df) == counts[name], name
            assert df.crs is not None
        mine = basin.sites.set_index("id").loc[["MINE-MOISSAC"]].to_crs("EPSG:4326").geometry.iloc[0]
        box = (mine.x - 0.05, mine.y - 0.05, mine.x + 0.05, mine.y + 0.05)
        near = pyogrio.read_dataframe(url, layer="sites", bbox=box)
        assert "MINE-MOISSAC" in set(near["id"]) and len(near) < counts["sites"]
    finally:
        pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": None, "GDAL_HTTP_BEARER": None, "GDAL_HTTP_TIMEOUT": None})
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
