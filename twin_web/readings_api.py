"""``POST /api/readings``: a station posts its readings over HTTP, through the same ingest path as ``twin ingest``.

The body is parsed by the ingest format that reads its Content-Type (the registry
:data:`twin.ops.formats.FORMATS`), straight from the bytes received:

* ``application/json``: a list of readings (or ``{"readings": [...]}``), each
  ``{"station", "time", "parameter", "value", "unit", "flag"?}`` with the time's zone;
* ``text/csv``: a tidy CSV (``station,time,parameter,value,unit,flag``), or the CSV of the
  national automatic stations (recognised by its ``断面名称`` column);
* ``text/plain`` or ``application/x-hj212``: HJ 212-2017 messages, one per line;
* ``application/netcdf``: a NetCDF-CF timeSeries file;

and any type a format added to the registry reads. The rows are then stored by
:func:`twin.ops.readings.store_rows` (checks, duplicates, corrections and rejections as
for a file). A station account may post only its own station(s): a body naming another
is refused whole (403, naming it), before anything is stored. The answer is the ingest
report, with the rejected lines and their reasons.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd
from flask import current_app, request
from flask_openapi3 import APIBlueprint

from twin.access import ForbiddenError, Resource, can
from twin.ops.errors import IngestError
from twin.ops.formats import FORMATS, Format, Source
from twin.ops.readings import Readings, store_rows
from twin_web import schemas
from twin_web.auth import TooManyRequestsError, current_user
from twin_web.errors import ApiError
from twin_web.openapi import responds, tag

bp = APIBlueprint("readings_api", __name__, url_prefix="/api")

MAX_REJECTED_SHOWN = 200


def _format(readings: Readings, source: Source) -> Format:
    kind = (request.mimetype or "").lower()
    fmt = readings.formats.for_media_type(kind, source)
    if fmt is None:
        raise ApiError(
            f"Content-Type {kind or 'none'!r} is not read here; send one of {readings.formats.media_types()}",
            parameter="Content-Type",
            status=415,
        )
    return fmt


def _body() -> dict[str, Any]:
    """The request body's description, from the ingest registry: every Content-Type a format reads."""
    content: dict[str, Any] = {}
    for fmt in FORMATS.formats:
        for kind in fmt.MEDIA_TYPES:
            names = [f.NAME for f in FORMATS.formats if kind in f.MEDIA_TYPES]
            if kind == "application/json":
                schema: dict[str, Any] = {"type": "array", "items": {"$ref": "#/components/schemas/Reading"}}
            elif "netcdf" in kind:
                schema = {"type": "string", "format": "binary", "description": "a NetCDF-CF timeSeries file"}
            else:
                schema = {"type": "string", "description": f"read as {' or '.join(names)} (twin.ops.formats)"}
            content.setdefault(kind, {"schema": schema})
    return {"required": True, "content": content}


BODY = _body()


@bp.post(
    "/readings",
    operation_id="postReadings",
    tags=tag("Readings"),
    responses=responds(schemas.IngestAnswer, 400, 401, 403, 413, 415, 429, 500),
    openapi_extensions={"requestBody": BODY},
)
def post() -> Any:
    """Post readings (station tokens, own stations only), in any format of the ingest registry whose
    Content-Type it names (:mod:`twin.ops.formats`); answers the ingest report.

    The body is parsed as it came (no temporary file) by the format's parser, and every row is
    checked as for a file; the library only describes it.
    """
    user = current_user()
    assert user is not None
    wait = current_app.extensions["twin_limits"].take("ingest", f"user:{user.id}")  # shared by every process
    if wait:
        raise TooManyRequestsError(f"too many ingests; wait {int(wait) + 1} s", wait)
    engine = current_app.extensions["twin"].access.engine
    readings = Readings(engine)
    body = request.get_data(cache=False)
    source = Source.body(body)
    fmt = _format(readings, source)
    if not body.strip():
        raise ApiError("the body is empty; send readings", parameter="body")
    try:
        fmt, parsed = readings.parse(source, fmt.NAME)
    except IngestError as err:
        raise ApiError(str(err), parameter="body") from None
    rows = parsed.rows
    stations = sorted({str(s) for s in rows["station"].dropna().unique()}) if "station" in rows else []
    others = [s for s in stations if not can(user, "readings.post", Resource(station=s))]
    if others:
        raise ForbiddenError(
            f"{user.name} may post readings for {sorted(user.stations) or 'no station'} only, "
            f"not for station {others[0]!r}" + (f" (and {len(others) - 1} more)" if len(others) > 1 else "")
        )
    sha = hashlib.sha256(body).hexdigest()
    report = store_rows(engine, rows, parsed.rejected, source=f"http:{user.name}", fmt=fmt.NAME, sha256=sha)
    out = report.to_dict()
    shown = report.rejected.head(MAX_REJECTED_SHOWN)
    out["rejected_rows"] = [
        {"line": None if pd.isna(n) else int(n), "reason": str(r)}
        for n, r in zip(pd.to_numeric(shown["line_no"], errors="coerce"), shown["reason"])
    ]
    return out, 200
