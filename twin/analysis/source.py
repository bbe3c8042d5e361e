"""Where an analysis reads readings from: the operations store, or a table already in hand.

Analyses that need readings (warnings, tracing, scenes at a time) take either an SQLAlchemy
engine of the operations store or a DataFrame in the long form of
:func:`twin.ops.readings.query` (columns ``station``, ``parameter``, ``time`` (UTC),
``value``, and optionally ``flag``), so a notebook can run them on readings it made or
loaded itself, without a twin folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa

from twin.errors import TwinError
from twin.ops.flags import usable
from twin.ops.readings import query

REQUIRED = ("station", "parameter", "time", "value")


class ReadingsTableError(TwinError, ValueError):
    """A table of readings without the columns an analysis needs."""


def readings_frame(
    readings: sa.Engine | pd.DataFrame,
    parameters: Sequence[str] | None = None,
    start: Any = None,
    end: Any = None,
    usable_only: bool = False,
    stations: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Readings in the long form, filtered like :func:`twin.ops.readings.query` (``start`` <= time <= ``end``).

    Raises
    ------
    ReadingsTableError
        A DataFrame lacks one of ``station``, ``parameter``, ``time``, ``value``, or its times have no zone.
    """
    if isinstance(readings, sa.Engine):
        return query(
            readings,
            list(stations) if stations is not None else None,
            list(parameters) if parameters is not None else None,
            start,
            end,
            usable_only=usable_only,
        )
    missing = [c for c in REQUIRED if c not in readings.columns]
    if missing:
        raise ReadingsTableError(
            f"the readings table lacks the column(s) {missing}; give station, parameter, time (UTC) and value"
        )
    df = readings
    times = pd.to_datetime(df["time"])
    if times.dt.tz is None:
        raise ReadingsTableError(
            "the readings' times have no zone; give them in UTC (e.g. pd.to_datetime(..., utc=True))"
        )
    keep = pd.Series(True, index=df.index)
    if parameters is not None:
        keep &= df["parameter"].isin(list(parameters))
    if stations is not None:
        keep &= df["station"].astype(str).isin([str(s) for s in stations])
    if start is not None:
        keep &= times >= pd.Timestamp(start)
    if end is not None:
        keep &= times <= pd.Timestamp(end)
    if usable_only and "flag" in df.columns:
        keep &= usable(df["flag"])
    out = df.loc[keep].assign(time=times[keep].dt.tz_convert("UTC"))
    return out.sort_values("time", kind="stable").reset_index(drop=True)  # time order, as query gives
