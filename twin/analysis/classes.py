"""The GB 3838-2002 class of the stations, from the readings of the operations store.

:mod:`twin.analysis.quality` classifies values and samples; this module gives it the
samples of a store: each station at a time (:func:`classify`), or every sample of a
window (:func:`classify_history`). Both take the :class:`twin.ops.readings.Readings` of
the store, and classify only usable readings (:func:`twin.ops.flags.usable`): a reading
flagged faulty, in maintenance or calibration... is skipped. A below-detection reading
is classified at its limit: the class of the limit is the worst the true value can have
(for DO, a lower bound, the best).

Examples
--------
>>> from twin.analysis.classes import classify                  # doctest: +SKIP
>>> classify(basin.readings, at="2026-07-11T12:00Z")[["station", "label", "deciding"]]   # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from twin.analysis import quality
from twin.ops.errors import IngestError

if TYPE_CHECKING:
    from twin.ops.readings import Readings


def _classes(wide: pd.DataFrame, info: pd.DataFrame) -> pd.DataFrame:
    return quality.classify_samples(
        wide, water_body=info["water_body"].fillna("river"), target_class=info["target_class"].fillna(3).astype(int)
    )


def classify(
    readings: Readings, at: Any = None, max_age_hours: float = 24.0, stations: list[str] | None = None
) -> pd.DataFrame:
    """GB 3838-2002 class of every station at a time, from its latest readings.

    For each station, each parameter's last usable reading at or before ``at`` (default
    now) counts if it is at most ``max_age_hours`` old; a station's unusable last
    reading of a parameter gives way to its last usable one. Rows: station, name,
    water body, target class, time of the newest reading used, ``class`` (1-6, 0 =
    nothing classifiable), ``label`` (I..V, 劣V), ``deciding`` parameters, ``exceeds``
    (worse than the target class), and per parameter the value, its class and its
    exceedance multiple.

    Raises
    ------
    IngestError
        ``at`` has no time zone.
    """
    end = pd.Timestamp(at) if at is not None else pd.Timestamp.now(tz="UTC")
    if end.tzinfo is None:
        raise IngestError(f"time {at!r} has no zone; give it with an offset or Z (e.g. 2026-07-10T08:00Z)")
    long = readings.query(stations, None, end - pd.Timedelta(hours=max_age_hours), end, usable_only=True)
    if long.empty:
        return pd.DataFrame(columns=["station", "name", "class", "label", "deciding", "exceeds"])
    last = long.sort_values("time").groupby(["station", "parameter"]).last()
    wide = last["value"].unstack("parameter")
    when = last["time"].groupby(level="station").max()
    info = readings.stations().reindex(wide.index)
    out = pd.concat(
        [
            info[["name", "water_body", "target_class"]],
            when.rename("time"),
            _classes(wide, info),
            wide.add_suffix("_value"),
        ],
        axis=1,
    )
    out["label"] = quality.label(out["class"].to_numpy())
    return out.reset_index(names="station")


def classify_history(
    readings: Readings, start: Any = None, end: Any = None, stations: list[str] | None = None
) -> pd.DataFrame:
    """The class of every sample (station and time) in a window; columns as in :func:`classify`.

    Usable readings only, below-detection readings at their limit, as in :func:`classify`.
    """
    long = readings.query(stations, None, start, end, usable_only=True)
    if long.empty:
        return pd.DataFrame(columns=["station", "time", "class", "label", "deciding", "exceeds"])
    wide = long.pivot_table(index=["station", "time"], columns="parameter", values="value", aggfunc="last")
    info = readings.stations().reindex(wide.index.get_level_values("station"))
    info.index = wide.index
    out = pd.concat(
        [info[["name", "water_body", "target_class"]], _classes(wide, info), wide.add_suffix("_value")], axis=1
    )
    out["label"] = quality.label(out["class"].to_numpy())
    return out.reset_index()
