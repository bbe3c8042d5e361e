"""PostgreSQL's binary COPY from numpy columns, for bulk readings (issue 13).

:func:`copy_in` writes columns into a table with ``COPY ... FROM STDIN (FORMAT binary)``
on the caller's psycopg connection, so in the caller's transaction. The rows are made
by numpy as packed big-endian records, several million rows a second, where psycopg's
``Copy.write_row`` (the peer in ``benchmarks/readings.py``) makes about one million:
a text column (a flag, a qualifier) has few distinct values, so the rows are grouped
by them and each group is one fixed-width record type.

Reads go the other way through ADBC's PostgreSQL driver (binary COPY into Arrow, in
C++): :func:`twin.ops.readings.read_postgres`.

The format is PostgreSQL's documented binary COPY format: an 11-byte signature, a
32-bit flags field and a 32-bit header-extension length, then per row a 16-bit field
count and per field a 32-bit length and the value in network byte order, then -1 as a
16-bit trailer. NULLs are not written here: the readings' columns are NOT NULL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = SIGNATURE + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"

#: PostgreSQL type name -> numpy big-endian type of its binary form
FIXED = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "float4": ">f4", "float8": ">f8"}


def encode(columns: Mapping[str, tuple[np.ndarray, str]]) -> bytes:
    """The binary COPY bytes of ``columns``: name -> (values, PostgreSQL type: a :data:`FIXED` one or ``text``).

    Text columns are grouped by value (rows in a group share their text, so their records
    have one width); the order of the rows is therefore not kept, which COPY into a table
    does not need.
    """
    names = list(columns)
    n = len(next(iter(columns.values()))[0]) if names else 0
    text = [k for k in names if columns[k][1] == "text"]
    group = np.zeros(n, dtype=np.int64)
    labels: list[np.ndarray] = []
    for k in text:  # one integer code per row for its combination of texts
        codes, uniq = pd.factorize(np.asarray(columns[k][0], dtype=object))
        group = group * len(uniq) + codes
        labels.append(np.asarray(uniq, dtype=object))
    counts = np.bincount(group) if n else np.zeros(0, dtype=np.int64)
    by_group = np.argsort(group, kind="stable") if len(counts) > 1 else np.arange(n)
    bounds = np.r_[0, np.cumsum(counts)]
    parts = [HEADER]
    for g in np.flatnonzero(counts).tolist():
        rows = by_group[bounds[g] : bounds[g + 1]]
        combo = g
        fixed_text: dict[str, bytes] = {}
        for k, uniq in zip(reversed(text), reversed(labels)):
            combo, code = divmod(combo, len(uniq))
            fixed_text[k] = str(uniq[code]).encode("utf-8")
        fields: list[tuple[str, str]] = [("count", ">i2")]
        for k in names:
            fields.append((f"len_{k}", ">i4"))
            kind = columns[k][1]
            if kind == "text":
                if fixed_text[k]:
                    fields.append((k, f"S{len(fixed_text[k])}"))
            else:
                fields.append((k, FIXED[kind]))
        rec = np.empty(len(rows), dtype=np.dtype(fields))
        rec["count"] = len(names)
        for k in names:
            kind = columns[k][1]
            if kind == "text":
                rec[f"len_{k}"] = len(fixed_text[k])
                if fixed_text[k]:
                    rec[k] = fixed_text[k]
            else:
                rec[f"len_{k}"] = np.dtype(FIXED[kind]).itemsize
                rec[k] = np.asarray(columns[k][0])[rows]
        parts.append(rec.tobytes())
    parts.append(TRAILER)
    return b"".join(parts)


def copy_in(dbapi_conn: Any, table: str, columns: Mapping[str, tuple[np.ndarray, str]]) -> int:
    """COPY ``columns`` (see :func:`encode`) into ``table`` on a psycopg connection; returns the rows written."""
    n = len(next(iter(columns.values()))[0]) if columns else 0
    if not n:
        return 0
    data = encode(columns)
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT binary)"
    with dbapi_conn.cursor() as cur, cur.copy(sql) as cp:
        view = memoryview(data)
        step = 8 << 20
        for at in range(0, len(data), step):
            cp.write(view[at : at + step])
    return n
