"""OGC API – Features, Part 1: Core, over the twin's collections (blueprint ``features``, under ``/api``).

Routes (declared with their parameters and answers; :mod:`twin_web.openapi` describes them)::

    /api/index                                   links to the API and the tile layers
    /api/                                        landing page
    /api/conformance                             conformance classes
    /api/collections                             the collections (:mod:`web.collections`)
    /api/collections/<id>                        one collection
    /api/collections/<id>/items                  a page of its features (GeoJSON, CRS84)
    /api/collections/<id>/items/<featureId>      one feature

``items`` takes ``bbox`` (minlon,minlat,maxlon,maxlat in CRS84, or 6 numbers),
``datetime`` (an instant, a date or an interval ``start/end`` with ``..`` for an
open end), ``limit`` and ``offset``. ``limit`` defaults to 100; a limit above
10000 is clamped to 10000, as the standard says (the response's
``numberReturned`` and ``next`` link show the page that was served); a limit
below 1 is refused. Collections without time (reaches, sections,
jurisdictions, stations, sites) accept a well-formed ``datetime`` and ignore it.
Any other query parameter is refused with 400 (``f=json`` is accepted), as
/req/core/query-param-unknown requires. ``f`` is the only format negotiation there is:
the library declares it as a parameter (json or geojson); any other value is a 400.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import shapely
from flask import Response, current_app, request, url_for
from flask_openapi3 import APIBlueprint
from pydantic import Field

from twin_web import params, schemas
from twin_web.auth import collection_action, scope
from twin_web.collections import COLLECTIONS, CRS84, GREGORIAN, Collection, FeatureTable, features, scope_keys
from twin_web.encoding import dumps
from twin_web.errors import NotFoundError, ParameterError
from twin_web.openapi import responds, tag
from twin_web.state import TwinState

bp = APIBlueprint("features", __name__, url_prefix="/api")

GEOJSON = "application/geo+json"
JSON = "application/json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]


def state() -> TwinState:
    return current_app.extensions["twin"]


def _bad_format(f: str) -> ParameterError:
    return ParameterError("f", f"format {f[:20]!r} is not served; this API speaks json (GeoJSON for features)")


def _no_collection(collection_id: str) -> NotFoundError:
    return NotFoundError(
        f"no collection {collection_id[:60]!r}; collections: {', '.join(COLLECTIONS)}", parameter="collectionId"
    )


Format = Annotated[
    Literal["json", "geojson"] | None,
    params.Choice("Output format; only JSON is served (GeoJSON for features)", ("json", "geojson"), _bad_format),
]


class FormatQuery(params.Query):
    """``f`` only: the format, which may only say JSON."""

    f: Format = None


class ItemsQuery(params.Query):
    """A page of a collection's features, filtered by box and time."""

    f: Format = None
    bbox: Annotated[
        shapely.Geometry | None,
        params.Custom(
            "minlon,minlat,maxlon,maxlat in CRS84 (or 6 numbers with heights); west > east crosses the antimeridian",
            lambda args, name: params.bbox(args),
            type="array",
            items={"type": "number"},
            minItems=4,
            maxItems=6,
        ),
    ] = None
    datetime: Annotated[
        params.Interval | None,
        params.Custom(
            "An instant, a date, or an interval start/end (RFC 3339; '..' for an open end)",
            params.interval,
            type="string",
        ),
    ] = None
    limit: Annotated[
        int, params.Integer(f"Features per page; above {params.MAX_LIMIT} it is clamped to {params.MAX_LIMIT}", lo=1)
    ] = params.DEFAULT_LIMIT
    offset: Annotated[int, params.Integer("Features to skip", lo=0)] = 0


class CollectionPath(params.Path):
    collection_id: Annotated[str, params.Choice("A collection", COLLECTIONS, _no_collection)] = Field(
        alias="collectionId"
    )


class FeaturePath(CollectionPath):
    feature_id: Annotated[str, params.Text("A feature's id in its collection")] = Field(alias="featureId")


def _link(href: str, rel: str, type_: str = JSON, title: str | None = None) -> dict[str, str]:
    out = {"href": href, "rel": rel, "type": type_}
    if title:
        out["title"] = title
    return out


def _visible(c: Collection) -> np.ndarray | None:
    """Which features of a scoped collection (incidents, warnings) the user may see (None: all, unscoped).

    The scope rule (:class:`twin.access.Scope`) decides; the others are left out of pages,
    of the collection's extent, and are 404 one by one, as if they did not exist.
    """
    if c.id == "warnings":
        return scope().warning_mask(scope_keys(state(), c))
    if c.id == "incidents":
        keys = scope_keys(state(), c)
        return scope().incident_mask([k[0] for k in keys], [k[1] for k in keys])
    return None


def _readable(c: Collection) -> bool:
    return scope().may(collection_action(c.id))


@bp.get("/index", operation_id="getRoot", tags=tag("Capabilities"), responses=responds(schemas.Index, 500))
def index() -> Any:
    """Links to the API and the tile layers."""
    m = state().manifest
    return {
        "title": m.get("title") or m.get("name"),
        "links": [
            {"rel": "service", "href": url_for("features.landing", _external=True), "title": "OGC API"},
            {"rel": "tiles", "href": url_for("tiles.index", _external=True), "title": "raster tiles"},
        ],
    }


@bp.get("/", operation_id="getLandingPage", tags=tag("Capabilities"), responses=responds(schemas.Landing, 400, 500))
def landing(query: FormatQuery) -> Any:
    """Landing page: links to the API definition, conformance, data."""
    m = state().manifest
    return {
        "title": f"{m.get('title') or m.get('name')}: basin twin API",
        "description": "OGC API - Features over the river network, jurisdictions, sites, incidents and warnings "
        "of the twin, with raster tiles and slices. Readings of the demo basin are simulated.",
        "links": [
            _link(url_for("features.landing", _external=True), "self", title="this document"),
            _link(url_for("openapi.document", _external=True), "service-desc", OPENAPI, "the API definition"),
            _link(url_for("features.conformance", _external=True), "conformance", title="conformance classes"),
            _link(url_for("features.collections", _external=True), "data", title="feature collections"),
            _link(url_for("slices.index", _external=True), "slices", title="the twin cut at a time, a line, a river"),
            _link(url_for("tiles.index", _external=True), "tiles", title="raster tile layers (TileJSON)"),
        ],
    }


@bp.get(
    "/conformance",
    operation_id="getConformance",
    tags=tag("Capabilities"),
    responses=responds(schemas.Conformance, 400, 500),
)
def conformance(query: FormatQuery) -> Any:
    """Conformance classes this API implements."""
    return {"conformsTo": CONFORMANCE}


def _describe(c: Collection, tab: FeatureTable) -> dict[str, Any]:
    """A collection's description; its extent spans only the features the user may see."""
    items = url_for("features.items", collectionId=c.id, _external=True)
    mask = _visible(c)
    chosen = None if mask is None else np.flatnonzero(mask)
    extent: dict[str, Any] = {}
    bounds = tab.spatial_extent(chosen)
    if bounds is not None:
        extent["spatial"] = {"bbox": [[round(v, 6) for v in bounds]], "crs": CRS84}
    else:  # nothing (visible): the twin's own extent, which says nothing of the features
        b = state().manifest.get("summary", {}).get("bounds_wgs84")
        if b:
            extent["spatial"] = {"bbox": [b], "crs": CRS84}
    if c.time is not None:
        interval = tab.temporal_extent(chosen) or [None, None]
        extent["temporal"] = {"interval": [interval], "trs": GREGORIAN}
    return {
        "id": c.id,
        "title": c.title,
        "description": c.description,
        "itemType": "feature",
        "crs": [CRS84],
        "extent": extent,
        "links": [
            _link(url_for("features.collection", collectionId=c.id, _external=True), "self"),
            _link(items, "items", GEOJSON, f"the {c.id}"),
        ],
    }


@bp.get(
    "/collections", operation_id="getCollections", tags=tag("Data"), responses=responds(schemas.Collections, 400, 500)
)
def collections(query: FormatQuery) -> Any:
    """The feature collections (those the user's role may read)."""
    st = state()
    return {
        "links": [_link(url_for("features.collections", _external=True), "self")],
        "collections": [_describe(c, features(st, c)) for c in COLLECTIONS.values() if _readable(c)],
    }


@bp.get(
    "/collections/<collectionId>",
    operation_id="describeCollection",
    tags=tag("Data"),
    responses=responds(schemas.CollectionInfo, 400, 404, 500),
)
def collection(path: CollectionPath, query: FormatQuery) -> Any:
    """One collection: extent, links."""
    c = COLLECTIONS[path.collection_id]
    return _describe(c, features(state(), c))


def _geojson(text: str, status: int = 200) -> Response:
    return Response(text, status=status, mimetype=GEOJSON)


def _page_url(collection_id: str, offset: int, limit: int) -> str:
    args = {k: v for k, v in request.args.items() if k not in ("offset", "limit")}
    args.update(offset=str(offset), limit=str(limit))
    return url_for("features.items", collectionId=collection_id, _external=True) + "?" + urlencode(args)


@bp.get(
    "/collections/<collectionId>/items",
    operation_id="getFeatures",
    tags=tag("Data"),
    responses=responds(schemas.FeatureCollection, 400, 404, 500, media=GEOJSON),
)
def items(path: CollectionPath, query: ItemsQuery) -> Response:
    """A page of a collection's features (GeoJSON, CRS84).

    The answer is ``application/geo+json`` (its schema: a GeoJSON FeatureCollection with
    OGC API's numberMatched, numberReturned, timeStamp and links), written from the
    features' stored JSON text, not through a model.
    """
    c = COLLECTIONS[path.collection_id]
    page = params.Paging(min(query.limit, params.MAX_LIMIT), query.offset)
    tab = features(state(), c)
    chosen = tab.select(query.bbox, query.datetime)
    mask = _visible(c)
    if mask is not None:
        chosen = chosen[mask[chosen]]
    shown = chosen[page.offset : page.offset + page.limit]
    links = [_link(request.url, "self", GEOJSON, "this page")]
    if page.offset + page.limit < len(chosen):
        links.append(_link(_page_url(c.id, page.offset + page.limit, page.limit), "next", GEOJSON, "next page"))
    if page.offset > 0:
        links.append(
            _link(_page_url(c.id, max(0, page.offset - page.limit), page.limit), "prev", GEOJSON, "previous page")
        )
    links.append(_link(url_for("features.collection", collectionId=c.id, _external=True), "collection"))
    tail = {
        "numberMatched": len(chosen),
        "numberReturned": len(shown),
        "timeStamp": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        "links": links,
    }
    body = '{"type":"FeatureCollection","features":[' + ",".join(tab.texts[k] for k in shown) + "]," + dumps(tail)[1:]
    return _geojson(body)


@bp.get(
    "/collections/<collectionId>/items/<featureId>",
    operation_id="getFeature",
    tags=tag("Data"),
    responses=responds(schemas.Feature, 400, 404, 500, media=GEOJSON),
)
def item(path: FeaturePath, query: FormatQuery) -> Response:
    """One feature (a warning also carries its response plan).

    The answer is ``application/geo+json``: a GeoJSON Feature with its links.
    """
    import json

    c = COLLECTIONS[path.collection_id]
    feature_id = path.feature_id
    tab = features(state(), c)
    k = tab.index.get(feature_id)
    mask = _visible(c)
    if k is None or (mask is not None and not mask[k]):
        raise NotFoundError(f"no feature {feature_id[:60]!r} in collection {c.id}", parameter="featureId")
    feature = json.loads(tab.texts[k])
    if c.id == "warnings":
        feature["properties"]["plan"] = _plan(feature["properties"])
    feature["links"] = [
        _link(url_for("features.item", collectionId=c.id, featureId=feature_id, _external=True), "self", GEOJSON),
        _link(url_for("features.collection", collectionId=c.id, _external=True), "collection"),
    ]
    return _geojson(dumps(feature))


def _plan(props: dict[str, Any]) -> list[dict[str, Any]]:
    """The response plan of a warning: what each jurisdiction downstream must do, and when."""
    from twin.analysis.response import response_plan

    return response_plan(state().basin.model, props["station"], int(props["level"]), since=props["start"])
