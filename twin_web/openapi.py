"""The OpenAPI 3.0 description of the API, generated from a small route table (``/api/openapi.json``).

:data:`ROUTES` lists every route with its parameters (named in
:func:`parameters`) and what it answers; :func:`document` turns it into an
OpenAPI 3.0.3 document whose server is the one the request came to. A test
checks the document with ``openapi-spec-validator`` and that every route of
the app is in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, request

from twin_web.collections import COLLECTIONS
from twin_web.encoding import dumps
from twin_web.params import DEFAULT_LIMIT, MAX_LIMIT
from twin_web.slices import MAX_SERIES
from twin_web.tiles import LAYERS

bp = Blueprint("openapi", __name__, url_prefix="/api")

OPENAPI_TYPE = "application/vnd.oai.openapi+json;version=3.0"


@dataclass(frozen=True)
class Route:
    path: str  # OpenAPI template, e.g. /api/collections/{collectionId}
    operation: str
    summary: str
    tag: str
    parameters: tuple[str, ...] = ()
    media: str = "application/json"
    errors: tuple[int, ...] = (400, 500)
    method: str = "get"
    body: tuple[str, ...] = ()  # media types of the request body (POST)
    public: bool = False  # no bearer token needed (its own check, or none)


ROUTES: tuple[Route, ...] = (
    Route(
        "/",
        "getViewer",
        "The map viewer (an HTML page; Chinese by default, ?lang=en)",
        "Viewer",
        (),
        "text/html",
        (500,),
    ),
    Route("/api/index", "getRoot", "Links to the API and the tile layers", "Capabilities"),
    Route(
        "/api/",
        "getLandingPage",
        "Landing page: links to the API definition, conformance, data",
        "Capabilities",
        ("f",),
    ),
    Route("/api/conformance", "getConformance", "Conformance classes this API implements", "Capabilities", ("f",)),
    Route(
        "/api/openapi.json",
        "getOpenAPI",
        "This document",
        "Capabilities",
        (),
        "application/vnd.oai.openapi+json;version=3.0",
    ),
    Route("/api/collections", "getCollections", "The feature collections", "Data", ("f",)),
    Route(
        "/api/collections/{collectionId}",
        "describeCollection",
        "One collection: extent, links",
        "Data",
        ("collectionId", "f"),
        errors=(400, 404, 500),
    ),
    Route(
        "/api/collections/{collectionId}/items",
        "getFeatures",
        "A page of a collection's features (GeoJSON, CRS84)",
        "Data",
        ("collectionId", "bbox", "datetime", "limit", "offset", "f"),
        "application/geo+json",
        (400, 404, 500),
    ),
    Route(
        "/api/collections/{collectionId}/items/{featureId}",
        "getFeature",
        "One feature (a warning also carries its response plan)",
        "Data",
        ("collectionId", "featureId", "f"),
        "application/geo+json",
        (400, 404, 500),
    ),
    Route("/api/slices/", "getSlices", "The slices and their parameters", "Slices"),
    Route(
        "/api/slices/time",
        "getTimeSlice",
        "Every station at a time: value, GB 3838 class and warning level for a parameter",
        "Slices",
        ("at", "parameter", "max_age_hours"),
    ),
    Route(
        "/api/slices/profile", "getProfile", "Terrain profile along a line, from the DEM", "Slices", ("line", "samples")
    ),
    Route(
        "/api/slices/river",
        "getRiverProfile",
        "Longitudinal profile from a point to the outlet: elevation, and a release's concentration at a time",
        "Slices",
        (
            "lon",
            "lat",
            "samples",
            "mass_kg",
            "release_at",
            "at_optional",
            "parameter_optional",
            "duration_h",
            "decay_per_hour",
            "flow_ratio",
        ),
    ),
    Route(
        "/api/slices/stations/{stationId}",
        "getStationSeries",
        "A station's series of a parameter with its GB 3838 class bands and warning periods (those the user "
        "may see; absent otherwise): at most `limit` readings, the first of the window, and a `next` link "
        "when there are more",
        "Slices",
        ("stationId", "parameter", "start", "end", "series_limit"),
        errors=(400, 404, 500),
    ),
    Route(
        "/api/slices/downstream",
        "getDownstreamReport",
        "Downstream report and plume of a release: who is reached, when, how badly",
        "Slices",
        ("lon", "lat", "at", "mass_kg_required", "parameter_optional", "duration_h", "decay_per_hour", "flow_ratio"),
    ),
    Route(
        "/api/slices/upstream",
        "getUpstreamTrace",
        "Candidate sources of an anomaly at a station, best first, with the units each release crosses",
        "Slices",
        ("station", "parameter", "at", "window_hours", "flow_ratio", "top"),
    ),
    Route(
        "/api/viewer/",
        "getViewerSetup",
        "The viewer's set-up: extent, tile layers, levels, the parameters read and the time to open on",
        "Viewer",
    ),
    Route(
        "/api/viewer/times",
        "getReadingTimes",
        "Every time a parameter was read at the stations (the time slider's stops), with its warning periods",
        "Viewer",
        ("parameter",),
    ),
    Route(
        "/api/viewer/plume",
        "getPlumeOverTime",
        "A release's plume along the river downstream: concentration at sampled points, one row per time",
        "Viewer",
        (
            "lon",
            "lat",
            "release_at_required",
            "mass_kg_required",
            "parameter_optional",
            "duration_h",
            "decay_per_hour",
            "flow_ratio",
            "plume_samples",
            "step_minutes",
        ),
    ),
    Route(
        "/api/readings",
        "postReadings",
        "Post readings (station tokens, own stations only): a JSON batch, a tidy CSV or HJ 212 lines; "
        "answers the ingest report",
        "Readings",
        (),
        errors=(400, 401, 403, 413, 415, 429, 500),
        method="post",
        body=("application/json", "text/csv", "text/plain"),
    ),
    Route(
        "/api/cases/", "getCases", "The cases whose evidence the user may see", "Evidence", (), errors=(401, 403, 500)
    ),
    Route(
        "/api/cases/{caseId}/evidence",
        "getCaseEvidence",
        "A case's evidence records (the listing is logged)",
        "Evidence",
        ("caseId",),
        errors=(401, 403, 404, 500),
    ),
    Route(
        "/api/cases/{caseId}/evidence/{sha256}",
        "getEvidenceFile",
        "One evidence file, verified (the read is logged)",
        "Evidence",
        ("caseId", "sha256"),
        "application/octet-stream",
        (401, 403, 404, 409, 500),
    ),
    Route("/login", "getLogin", "The login page", "Access", (), "text/html", (500,), public=True),
    Route(
        "/login",
        "postLogin",
        "Log in (form: username, password, csrf_token); sets the session cookie",
        "Access",
        (),
        "text/html",
        (400, 401, 429, 500),
        method="post",
        body=("application/x-www-form-urlencoded",),
        public=True,
    ),
    Route(
        "/logout",
        "postLogout",
        "Log out (form: csrf_token)",
        "Access",
        (),
        "text/html",
        (400, 500),
        method="post",
        body=("application/x-www-form-urlencoded",),
        public=True,
    ),
    Route(
        "/hearing/{hearingId}",
        "getHearing",
        "The hearing view of a case's bundle (HTML; needs the signed link's exp and sig)",
        "Hearing",
        ("hearingId", "exp", "sig"),
        "text/html",
        (401, 403, 404, 500),
        public=True,
    ),
    Route(
        "/hearing/{hearingId}/data.json",
        "getHearingData",
        "The hearing's incident, timeline and evidence list",
        "Hearing",
        ("hearingId", "exp", "sig"),
        errors=(401, 403, 404, 500),
        public=True,
    ),
    Route(
        "/hearing/{hearingId}/overlays/{name}",
        "getHearingOverlay",
        "The bundle's map or 3D overlay",
        "Hearing",
        ("hearingId", "overlay", "exp", "sig"),
        "image/png",
        (401, 403, 404, 500),
        public=True,
    ),
    Route(
        "/hearing/{hearingId}/files/{sha256}",
        "getHearingFile",
        "One evidence file of the hearing's bundle, as stored (the page re-hashes it)",
        "Hearing",
        ("hearingId", "sha256", "exp", "sig"),
        "application/octet-stream",
        (401, 403, 404, 500),
        public=True,
    ),
    Route("/tiles/", "getTileLayers", "The raster tile layers", "Tiles"),
    Route(
        "/tiles/{layer}/tilejson.json",
        "getTileJSON",
        "TileJSON 3.0.0 of a layer",
        "Tiles",
        ("layer",),
        errors=(404, 500),
    ),
    Route(
        "/tiles/{layer}/{z}/{x}/{y}.png",
        "getTile",
        "A 256 x 256 PNG tile in Web Mercator (XYZ); terrain-rgb is Mapbox terrain-RGB",
        "Tiles",
        ("layer", "z", "x", "y"),
        "image/png",
        (304, 400, 404, 500),
    ),
)


def _q(name: str, description: str, schema: dict[str, Any], required: bool = False, **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "required": required, "schema": schema, **extra}


def _path(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "description": description, "required": True, "schema": schema}


def parameters() -> dict[str, dict[str, Any]]:
    """Every parameter of :data:`ROUTES` by its key."""
    from twin.ops.parameters import PARAMETERS

    number = {"type": "number"}
    time = {
        "type": "string",
        "format": "date-time",
        "description": "RFC 3339 with a zone, from 1970-01-01T00:00Z to ten years after now",
    }
    param_ids = {"type": "string", "enum": list(PARAMETERS)}
    return {
        "f": _q("f", "Output format; only JSON is served", {"type": "string", "enum": ["json", "geojson"]}),
        "collectionId": _path("collectionId", "A collection", {"type": "string", "enum": list(COLLECTIONS)}),
        "featureId": _path("featureId", "A feature's id in its collection", {"type": "string"}),
        "bbox": _q(
            "bbox",
            "minlon,minlat,maxlon,maxlat in CRS84 (or 6 numbers with heights)",
            {"type": "array", "items": number, "minItems": 4, "maxItems": 6},
            style="form",
            explode=False,
        ),
        "datetime": _q(
            "datetime",
            "An instant, a date, or an interval start/end (RFC 3339; '..' for an open end)",
            {"type": "string"},
        ),
        "limit": _q(
            "limit",
            f"Features per page; above {MAX_LIMIT} it is clamped to {MAX_LIMIT}",
            {"type": "integer", "minimum": 1, "default": DEFAULT_LIMIT},
        ),
        "offset": _q("offset", "Features to skip", {"type": "integer", "minimum": 0, "default": 0}),
        "at": _q("at", "A time with its zone", time, True),
        "at_optional": _q("at", "When to show the release's concentration (with mass_kg)", time),
        "release_at": _q("release_at", "When the release starts (with mass_kg)", time),
        "release_at_required": _q("release_at", "When the release starts", time, True),
        "plume_samples": _q(
            "samples", "Points along the river", {"type": "integer", "minimum": 2, "maximum": 2000, "default": 200}
        ),
        "step_minutes": _q(
            "step_minutes",
            "Minutes between the plume's times (default: its passage in about 200 steps)",
            {"type": "number", "minimum": 1, "maximum": 1440},
        ),
        "start": _q("start", "Start of the window", time),
        "series_limit": _q(
            "limit",
            f"Readings per page (the first of the window); at most {MAX_SERIES}. The answer's `next` link pages on",
            {"type": "integer", "minimum": 1, "maximum": MAX_SERIES, "default": MAX_SERIES},
        ),
        "end": _q("end", "End of the window", time),
        "parameter": _q("parameter", "A water-quality parameter", param_ids, True),
        "parameter_optional": _q("parameter", "The released substance's parameter (default NH3-N)", param_ids),
        "max_age_hours": _q(
            "max_age_hours", "Oldest reading used, hours before at", {"type": "number", "default": 24, "minimum": 0}
        ),
        "line": _q(
            "line",
            "The line's points lon,lat,lon,lat,... (WGS 84)",
            {"type": "array", "items": number, "minItems": 4},
            True,
            style="form",
            explode=False,
        ),
        "samples": _q("samples", "Samples along the line", {"type": "integer", "minimum": 2, "maximum": 5000}),
        "lon": _q("lon", "Longitude (WGS 84)", {"type": "number", "minimum": -180, "maximum": 180}, True),
        "lat": _q("lat", "Latitude (WGS 84)", {"type": "number", "minimum": -90, "maximum": 90}, True),
        "mass_kg": _q("mass_kg", "Mass released (kg)", {"type": "number", "exclusiveMinimum": True, "minimum": 0}),
        "mass_kg_required": _q(
            "mass_kg", "Mass released (kg)", {"type": "number", "exclusiveMinimum": True, "minimum": 0}, True
        ),
        "duration_h": _q("duration_h", "Release duration (h)", {"type": "number", "minimum": 0, "default": 0}),
        "decay_per_hour": _q(
            "decay_per_hour", "First-order decay rate (1/h)", {"type": "number", "minimum": 0, "default": 0}
        ),
        "flow_ratio": _q(
            "flow_ratio",
            "Discharge as a multiple of the mean annual discharge",
            {"type": "number", "exclusiveMinimum": True, "minimum": 0, "default": 1},
        ),
        "stationId": _path("stationId", "A station (site id)", {"type": "string"}),
        "station": _q("station", "The station where the anomaly was measured", {"type": "string"}, True),
        "window_hours": _q(
            "window_hours", "Travel-time window upstream (h)", {"type": "number", "minimum": 0, "default": 48}
        ),
        "top": _q("top", "Candidates returned", {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}),
        "layer": _path("layer", "A tile layer", {"type": "string", "enum": list(LAYERS)}),
        "z": _path("z", "Zoom level", {"type": "integer", "minimum": 0}),
        "x": _path("x", "Tile column (0 .. 2^z - 1)", {"type": "integer", "minimum": 0}),
        "y": _path("y", "Tile row (0 .. 2^z - 1, from the north)", {"type": "integer", "minimum": 0}),
        "caseId": _path("caseId", "A case id", {"type": "string", "maxLength": 64}),
        "sha256": _path("sha256", "An evidence file's SHA-256", {"type": "string", "pattern": "^[0-9a-f]{64}$"}),
        "hearingId": _path("hearingId", "A hearing", {"type": "string", "maxLength": 32}),
        "overlay": _path("name", "An overlay", {"type": "string", "enum": ["map.png", "scene.png"]}),
        "exp": _q("exp", "The signed link's expiry (seconds since 1970, UTC)", {"type": "string"}),
        "sig": _q("sig", "The signed link's HMAC-SHA256 (hex)", {"type": "string"}),
    }


ERRORS = {
    304: "Not modified (If-None-Match names the tile's ETag)",
    400: "A bad parameter; the body names it",
    401: "No valid credentials (a bearer token, the session cookie or a hearing's signed link)",
    403: "The user's role or jurisdictions do not allow it",
    404: "Not found",
    409: "The stored file was altered",
    413: "The request body is too large",
    415: "A body of a type not read here",
    429: "Too many requests; Retry-After says when to try again",
    500: "Server error",
}

BODY_SCHEMAS: dict[str, dict[str, Any]] = {
    "application/json": {
        "schema": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["station", "time", "parameter", "value", "unit"],
                "properties": {
                    "station": {"type": "string"},
                    "time": {"type": "string", "format": "date-time"},
                    "parameter": {"type": "string"},
                    "value": {"type": "number"},
                    "unit": {"type": "string"},
                    "flag": {"type": "string"},
                },
            },
        }
    },
    "text/csv": {"schema": {"type": "string"}},
    "text/plain": {"schema": {"type": "string"}},
    "application/x-www-form-urlencoded": {
        "schema": {
            "type": "object",
            "properties": {
                "username": {"type": "string"},
                "password": {"type": "string"},
                "csrf_token": {"type": "string"},
            },
        }
    },
}


def document(server: str = "/") -> dict[str, Any]:
    """The OpenAPI 3.0.3 document (``server``: the base URL of the service)."""
    params = parameters()
    paths: dict[str, Any] = {}
    for r in ROUTES:
        if r.media == "image/png":
            ok: dict[str, Any] = {"image/png": {"schema": {"type": "string", "format": "binary"}}}
        elif r.media == "text/html":
            ok = {"text/html": {"schema": {"type": "string"}}}
        else:
            ok = {r.media: {"schema": {"type": "object"}}}
        responses: dict[str, Any] = {"200": {"description": "OK", "content": ok}}
        for code in r.errors:
            if code == 304:
                responses["304"] = {"description": ERRORS[304]}
            else:
                responses[str(code)] = {"$ref": f"#/components/responses/E{code}"}
        op: dict[str, Any] = {
            "operationId": r.operation,
            "summary": r.summary,
            "tags": [r.tag],
            "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in r.parameters],
            "responses": responses,
        }
        if r.body:
            op["requestBody"] = {"required": True, "content": {m: BODY_SCHEMAS[m] for m in r.body}}
        if r.public:
            op["security"] = []
        elif "401" not in responses:
            responses["401"] = {"$ref": "#/components/responses/E401"}
            responses["403"] = {"$ref": "#/components/responses/E403"}
        if r.media == "text/html" and r.method == "post":
            responses["302"] = {"description": "Done: on to the page asked for"}
        paths.setdefault(r.path, {})[r.method] = op
    exception = {
        "type": "object",
        "required": ["code"],
        "properties": {
            "code": {"type": "string"},
            "description": {"type": "string"},
            "status": {"type": "integer"},
            "parameter": {"type": "string"},
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "basin twin API",
            "version": "1.0.0",
            "description": "OGC API - Features (Core) over the twin's reaches, cross-boundary sections, "
            "jurisdictions, stations, sites, incidents and warnings; slices of the twin; XYZ raster tiles.",
        },
        "servers": [{"url": server.rstrip("/") or "/"}],
        "tags": [{"name": t} for t in dict.fromkeys(r.tag for r in ROUTES)],
        "paths": paths,
        "components": {
            "parameters": params,
            "schemas": {"exception": exception},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API token (`twin users token`)"}
            },
            "responses": {
                f"E{code}": {
                    "description": ERRORS[code],
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}},
                }
                for code in ERRORS
                if code != 304
            },
        },
        "security": [{"bearer": []}],
    }


@bp.get("/openapi.json", endpoint="document")
def document_route() -> Response:
    return Response(dumps(document(request.host_url)), mimetype=OPENAPI_TYPE)
