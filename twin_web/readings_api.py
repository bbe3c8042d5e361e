"""``POST /api/readings``: a station posts its readings over HTTP, through the same ingest path as ``twin ingest``.

The body, by its Content-Type:

* ``application/json``: a list of readings (or ``{"readings": [...]}``), each
  ``{"station", "time", "parameter", "value", "unit", "flag"?}`` with the time's zone;
* ``text/csv``: a tidy CSV (``station,time,parameter,value,unit,flag``);
* ``text/plain`` or ``application/x-hj212``: HJ 212-2017 messages, one per line.

It is written to a temporary file and parsed by the parsers of :mod:`twin.ops.ingest`,
then stored by :func:`twin.ops.readings.store_rows` (checks, duplicates, corrections and
rejections as for a file). A station account may post only its own station(s): a body
naming another is refused whole (403, naming it), before anything is stored. The answer
is the ingest report, with the rejected lines and their reasons.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from flask import current_app, request
from flask_openapi3 import APIBlueprint

from twin.access import ForbiddenError, Resource, can
from twin_web import schemas
from twin_web.auth import TooManyRequestsError, current_user
from twin_web.errors import ApiError
from twin_web.openapi import responds, tag

bp = APIBlueprint("readings_api", __name__, url_prefix="/api")

FIELDS = ("station", "time", "parameter", "value", "unit", "flag")
MAX_REJECTED_SHOWN = 200


def _format() -> str:
    kind = (request.mimetype or "").lower()
    if kind == "application/json":
        return "json"
    if kind in ("text/csv", "application/csv"):
        return "tidy"
    if kind in ("text/plain", "application/x-hj212"):
        return "hj212"
    raise ApiError(
        f"Content-Type {kind or 'none'!r} is not read here; send application/json, text/csv or "
        "text/plain (HJ 212 lines)",
        parameter="Content-Type",
        status=415,
    )


def json_to_tidy(body: bytes) -> str:
    """A JSON batch as tidy CSV text (the ingest parsers then check every row as for a file)."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise ApiError(f"the body is not JSON ({err})", parameter="body") from None
    if isinstance(data, dict):
        data = data.get("readings")
    if not isinstance(data, list):
        raise ApiError('send a list of readings, or {"readings": [...]}', parameter="body")
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(FIELDS)
    for k, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise ApiError(f"reading {k} is not an object with {list(FIELDS)}", parameter="body")
        row = []
        for f in FIELDS:
            v = rec.get(f, "")
            if isinstance(v, dict | list):
                raise ApiError(f"reading {k}: {f} must be a string or a number", parameter="body")
            row.append("" if v is None else str(v))
        w.writerow(row)
    return out.getvalue()


def _parse(fmt: str, body: bytes) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    from twin.ops import ingest

    with tempfile.TemporaryDirectory(prefix="twin-post-") as tmp:
        path = Path(tmp) / ("batch.csv" if fmt != "hj212" else "batch.hj212")
        if fmt == "json":
            path.write_text(json_to_tidy(body), encoding="utf-8")
            fmt = "tidy"
        else:
            path.write_bytes(body)
        if fmt == "tidy":
            rows, rej = ingest.parse_tidy(path)
        else:
            rows, rej = ingest.parse_hj212(path)
    return rows, rej, fmt


BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Reading"}}},
        "text/csv": {"schema": {"type": "string", "description": "A tidy CSV: " + ",".join(FIELDS)}},
        "text/plain": {"schema": {"type": "string", "description": "HJ 212-2017 messages, one per line"}},
    },
}


@bp.post(
    "/readings",
    operation_id="postReadings",
    tags=tag("Readings"),
    responses=responds(schemas.IngestAnswer, 400, 401, 403, 413, 415, 429, 500),
    openapi_extensions={"requestBody": BODY},
)
def post() -> Any:
    """Post readings (station tokens, own stations only): a JSON batch, a tidy CSV or HJ 212 lines; answers the ingest report.

    The body is read by the view, by its Content-Type, through the ingest parsers (which
    check every row and report the rejected ones); the library only describes it.
    """
    from twin.ops.readings import store_rows

    user = current_user()
    assert user is not None
    wait = current_app.extensions["twin_limits"].take("ingest", f"user:{user.id}")  # shared by every process
    if wait:
        raise TooManyRequestsError(f"too many ingests; wait {int(wait) + 1} s", wait)
    fmt = _format()
    body = request.get_data(cache=False)
    if not body.strip():
        raise ApiError("the body is empty; send readings", parameter="body")
    rows, rej, fmt = _parse(fmt, body)
    stations = sorted({str(s) for s in rows["station"].dropna().unique()}) if "station" in rows else []
    others = [s for s in stations if not can(user, "readings.post", Resource(station=s))]
    if others:
        raise ForbiddenError(
            f"{user.name} may post readings for {sorted(user.stations) or 'no station'} only, "
            f"not for station {others[0]!r}" + (f" (and {len(others) - 1} more)" if len(others) > 1 else "")
        )
    engine = current_app.extensions["twin"].access.engine
    sha = hashlib.sha256(body).hexdigest()
    report = store_rows(engine, rows, rej, source=f"http:{user.name}", fmt=fmt, sha256=sha)
    out = report.to_dict()
    shown = report.rejected.head(MAX_REJECTED_SHOWN)
    out["rejected_rows"] = [
        {"line": None if pd.isna(n) else int(n), "reason": str(r)}
        for n, r in zip(pd.to_numeric(shown["line_no"], errors="coerce"), shown["reason"])
    ]
    return out, 200
