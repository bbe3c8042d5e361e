"""JSON out of numpy, pandas and shapely values: NaN becomes null, times ISO 8601.

Flask's default provider writes ``NaN`` (not JSON) for a missing float and
fails on numpy scalars; :class:`JSONProvider` cleans a value first with
:func:`clean`, so every response is strict JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import numpy as np
import pandas as pd
from flask.json.provider import DefaultJSONProvider


def clean(value: Any) -> Any:
    """A value made of dicts, lists, str, int, float (finite), bool and None only.

    Examples
    --------
    >>> clean({"a": np.float32(1.5), "b": float("nan"), "c": (np.int64(2),)})
    {'a': 1.5, 'b': None, 'c': [2]}
    """
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value
    if isinstance(value, np.ndarray):
        return [clean(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return clean(value.item())
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.isoformat()
    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, pd.Timedelta):
        return value.total_seconds()
    return str(value)


def dumps(value: Any) -> str:
    """Strict JSON text (UTF-8 kept as is) of a value after :func:`clean`."""
    return json.dumps(clean(value), ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON provider over :func:`clean`: strict JSON, Chinese and French names unescaped."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return dumps(obj)
