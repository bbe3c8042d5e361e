"""A JSON batch: a list of readings, or ``{"readings": [...]}``, as a station posts it to ``POST /api/readings``.

Each reading is an object ``{"station", "time", "parameter", "value", "unit", "flag"?}``,
the time with its zone; a value may be a number or text (``"<0.01"``, ``"ND"``). The
batch is read as the tidy CSV it stands for (:mod:`twin.ops.formats.tidy`): the same
rows, the same rejections. A reading's ``line_no`` is its line in that CSV (the first
reading is line 2, after the header), so a batch reports the same lines whether it was
sent as JSON or as CSV. A body that is not such a list is refused whole.
"""

from __future__ import annotations

import json

import pandas as pd

from twin.ops.errors import IngestError
from twin.ops.formats import tidy
from twin.ops.formats.source import Context, Parsed, Source

NAME = "json"
MEDIA_TYPES: tuple[str, ...] = ("application/json",)


def sniff(name: str, head: bytes) -> bool:
    """A ``.json`` name, or text that opens a JSON list or object."""
    return name.lower().endswith(".json") or head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"[", b"{")


def parse(source: Source, *, context: Context) -> Parsed:
    """Rows of a JSON batch, as :func:`twin.ops.formats.tidy.parse_frame` makes them of a tidy CSV."""
    try:
        data = json.loads(source.read().decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as err:
        raise IngestError(f"'{source.name}' is not JSON ({err})") from None
    if isinstance(data, dict):
        data = data.get("readings")
    if not isinstance(data, list):
        raise IngestError(f"'{source.name}': send a list of readings, or {{\"readings\": [...]}}")
    columns: dict[str, list[str]] = {f: [] for f in tidy.COLUMNS}
    for k, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise IngestError(f"'{source.name}': reading {k} is not an object with {list(tidy.COLUMNS)}")
        for f in tidy.COLUMNS:
            v = rec.get(f, "")
            if isinstance(v, dict | list):
                raise IngestError(f"'{source.name}': reading {k}: {f} must be a string or a number")
            columns[f].append("" if v is None else str(v))
    return tidy.parse_frame(pd.DataFrame(columns, dtype=str), source.name)
