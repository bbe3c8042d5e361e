"""PostgreSQL's binary COPY from numpy columns, for bulk readings (issue 13).

:func:`copy_in` writes columns into a table with ``COPY ... FROM STDIN (FORMAT binary)``
on the caller's psycopg connection, so in the caller's transaction. The rows go through
psycopg's ``Copy.write_row`` with the column types given up front (its C dumpers make
the binary rows). A numpy encoder of our own was tried and measured against it in
``benchmarks/readings.py`` (``copy_peer``): a million readings took the same time either
way (0.37-0.40 s on 2 cores; the server's insert is the cost), so the library's is used.

Reads go the other way through ADBC's PostgreSQL driver (binary COPY into Arrow, in
C++): :func:`twin.ops.readings.read_postgres`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

#: the PostgreSQL types :func:`copy_in` takes
TYPES = ("int2", "int4", "int8", "float8", "text")


def copy_in(dbapi_conn: Any, table: str, columns: Mapping[str, tuple[np.ndarray, str]]) -> int:
    """COPY ``columns`` (name -> (values, one of :data:`TYPES`)) into ``table`` on a psycopg connection.

    Returns the rows written. No NULLs: the readings' columns are NOT NULL.
    """
    names = list(columns)
    if not names or not len(columns[names[0]][0]):
        return 0
    unknown = {kind for _, kind in columns.values()} - set(TYPES)
    if unknown:
        raise ValueError(f"copy_in takes the types {TYPES}, not {sorted(unknown)}")
    values = [np.asarray(v).tolist() for v, _ in columns.values()]
    sql = f"COPY {table} ({', '.join(names)}) FROM STDIN (FORMAT binary)"
    with dbapi_conn.cursor() as cur, cur.copy(sql) as cp:
        cp.set_types([kind for _, kind in columns.values()])
        for row in zip(*values):
            cp.write_row(row)
    return len(values[0])
