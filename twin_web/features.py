"""OGC API – Features, Part 1: Core, over the twin's collections (blueprint ``features``, under ``/api``).

Routes::

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
/req/core/query-param-unknown requires.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import numpy as np
import pandas as pd
from flask import Blueprint, Response, current_app, request, url_for

from twin_web import params
from twin_web.auth import collection_action, scope
from twin_web.collections import COLLECTIONS, CRS84, GREGORIAN, Collection, FeatureTable, features, scope_keys
from twin_web.encoding import dumps
from twin_web.errors import NotFoundError, ParameterError
from twin_web.state import TwinState

bp = Blueprint("features", __name__, url_prefix="/api")

GEOJSON = "application/geo+json"
JSON = "application/json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
ITEMS_PARAMS = ("bbox", "datetime", "limit", "offset", "f")


def state() -> TwinState:
    return current_app.extensions["twin"]


def _format() -> None:
    """Only JSON is served; ``f`` may say so."""
    f = request.args.get("f")
    if f is not None and f not in ("json", "geojson"):
        raise ParameterError("f", f"format {f[:20]!r} is not served; this API speaks json (GeoJSON for features)")


def _plain(allowed: tuple[str, ...] = ("f",)) -> None:
    params.check_known(request.args, allowed)
    _format()


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


def _collection(collection_id: str) -> Collection:
    c = COLLECTIONS.get(collection_id)
    if c is None:
        raise NotFoundError(
            f"no collection {collection_id[:60]!r}; collections: {', '.join(COLLECTIONS)}", parameter="collectionId"
        )
    return c


@bp.get("/")
def landing() -> Any:
    _plain()
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


@bp.get("/conformance")
def conformance() -> Any:
    _plain()
    return {"conformsTo": CONFORMANCE}


def _describe(c: Collection, tab: FeatureTable) -> dict[str, Any]:
    """A collection's description; its extent spans only the features the user may see."""
    items = url_for("features.items", collection_id=c.id, _external=True)
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
            _link(url_for("features.collection", collection_id=c.id, _external=True), "self"),
            _link(items, "items", GEOJSON, f"the {c.id}"),
        ],
    }


@bp.get("/collections")
def collections() -> Any:
    _plain()
    st = state()
    return {
        "links": [_link(url_for("features.collections", _external=True), "self")],
        "collections": [_describe(c, features(st, c)) for c in COLLECTIONS.values() if _readable(c)],
    }


@bp.get("/collections/<collection_id>")
def collection(collection_id: str) -> Any:
    c = _collection(collection_id)
    _plain()
    return _describe(c, features(state(), c))


def _geojson(text: str, status: int = 200) -> Response:
    return Response(text, status=status, mimetype=GEOJSON)


def _page_url(collection_id: str, offset: int, limit: int) -> str:
    args = {k: v for k, v in request.args.items() if k not in ("offset", "limit")}
    args.update(offset=str(offset), limit=str(limit))
    return url_for("features.items", collection_id=collection_id, _external=True) + "?" + urlencode(args)


@bp.get("/collections/<collection_id>/items")
def items(collection_id: str) -> Response:
    c = _collection(collection_id)
    params.check_known(request.args, ITEMS_PARAMS)
    _format()
    box = params.bbox(request.args)
    when = params.interval(request.args, "datetime")
    page = params.paging(request.args)
    tab = features(state(), c)
    chosen = tab.select(box, when)
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
    links.append(_link(url_for("features.collection", collection_id=c.id, _external=True), "collection"))
    tail = {
        "numberMatched": len(chosen),
        "numberReturned": len(shown),
        "timeStamp": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        "links": links,
    }
    body = '{"type":"FeatureCollection","features":[' + ",".join(tab.texts[k] for k in shown) + "]," + dumps(tail)[1:]
    return _geojson(body)


@bp.get("/collections/<collection_id>/items/<feature_id>")
def item(collection_id: str, feature_id: str) -> Response:
    import json

    c = _collection(collection_id)
    _plain()
    tab = features(state(), c)
    k = tab.index.get(feature_id)
    mask = _visible(c)
    if k is None or (mask is not None and not mask[k]):
        raise NotFoundError(f"no feature {feature_id[:60]!r} in collection {c.id}", parameter="featureId")
    feature = json.loads(tab.texts[k])
    if c.id == "warnings":
        feature["properties"]["plan"] = _plan(feature["properties"])
    feature["links"] = [
        _link(url_for("features.item", collection_id=c.id, feature_id=feature_id, _external=True), "self", GEOJSON),
        _link(url_for("features.collection", collection_id=c.id, _external=True), "collection"),
    ]
    return _geojson(dumps(feature))


def _plan(props: dict[str, Any]) -> list[dict[str, Any]]:
    """The response plan of a warning: what each jurisdiction downstream must do, and when."""
    from twin.analysis.response import response_plan

    return response_plan(state().basin.model, props["station"], int(props["level"]), since=props["start"])
