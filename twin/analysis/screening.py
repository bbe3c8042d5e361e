"""Warnings over a long period of a large network: screened in the database, then evaluated exactly (issue 13).

:func:`twin.analysis.alerts.evaluate` over a year of a national network (3,600 stations
× 9 parameters every 4 hours, 7×10^7 readings) would first move every reading out of
the database. Most of them cannot start or feed a warning: every rule of a policy but
an escalation needs its reading to be worse than something (the target class, a class,
a multiple of a limit), and :func:`twin.analysis.alerts.may_warn` tells which values
are. :func:`warnings_over` therefore

1. asks the database for the envelope of each series in buckets of time (a week by
   default): the lowest and highest usable value and their count
   (:func:`twin.ops.readings.envelopes`, one ``GROUP BY``);
2. marks the buckets whose lowest or highest value may warn. Badness grows one way
   with the value (up for concentrations, down for DO) or both ways from the middle
   (pH), so if any value of a bucket may warn, one of its two extremes does;
3. widens each run of marked buckets by neighbouring buckets until it holds at least
   :func:`context` readings on each side (or reaches the end of the period), and
   joins runs that meet;
4. reads only the readings in those windows (:func:`twin.ops.readings.in_windows`) and
   runs :func:`twin.analysis.alerts.evaluate` on them with the period's end.

Why the result is the same as evaluating every reading: outside the windows no rule
holds, and every window begins with ``context`` readings where none holds, so each
window begins at level 0 with no run of conditions under way and no rise to carry
(a rise counts only where the other conditions hold). Each window ends with
``context`` such readings too, at least twice ``hysteresis_readings``: after the last
reading where a rule may hold, an episode steps down at most twice (first to the
highest level of its last ``hysteresis_readings`` readings, which may still include
that one, then to 0), each step after at most ``hysteresis_readings`` readings. So an
episode raised in a window is cleared (or has expired) by the window's end, as in the
full evaluation, and the gap between two windows of a series finds it at level 0.
A policy with a rule that needs nothing but a rise (``may_warn`` is then True
everywhere) makes every bucket a window: still exact, only not faster.
``tests/test_screening.py`` checks the equality on random series.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from twin.analysis import alerts
from twin.ops import readings as _readings

Time = str | pd.Timestamp

#: the default bucket of the envelopes: a week (42 readings of a 4-hourly station)
BUCKET_S = 7 * 86400


def context(policy: alerts.Policy) -> int:
    """How many readings where no rule holds a window keeps before and after its marked buckets."""
    return max(alerts.lookback(policy), 2 * policy.hysteresis_readings) + 1


def marked(env: pd.DataFrame, stations: pd.DataFrame, policy: alerts.Policy) -> np.ndarray:
    """Which envelope rows (:func:`twin.ops.readings.envelopes`) hold a value that may warn."""
    info = stations.set_index(stations["id"].astype(str))
    out = np.zeros(len(env), dtype=bool)
    for parameter, idx in env.groupby("parameter").indices.items():
        sub = env.iloc[idx]
        target = info["target_class"].reindex(sub["station"]).to_numpy(dtype=np.int64)
        body = info["water_body"].reindex(sub["station"]).to_numpy(dtype=object)
        low = alerts.may_warn(str(parameter), sub["vmin"].to_numpy(), target, body, policy)
        high = alerts.may_warn(str(parameter), sub["vmax"].to_numpy(), target, body, policy)
        out[idx] = low | high
    return out


def windows(env: pd.DataFrame, mark: np.ndarray, need: int, start: Time, end: Time, bucket_s: int) -> pd.DataFrame:
    """The time windows to read: each run of marked buckets of a series, widened to ``need`` readings each side.

    Returns ``station``, ``parameter``, ``start``, ``end`` (tz-aware, both included).
    """
    t0, t1 = pd.Timestamp(start), pd.Timestamp(end)
    rows: list[tuple[str, str, int, int]] = []
    series = env.assign(mark=mark).sort_values(["station", "parameter", "bucket"])
    for (station, parameter), s in series.groupby(["station", "parameter"], sort=False):
        m = s["mark"].to_numpy()
        if not m.any():
            continue
        bucket, n = s["bucket"].to_numpy(), s["n"].to_numpy()
        before = np.r_[0, np.cumsum(n)]  # readings in buckets[:k]
        spans: list[list[int]] = []
        for k in np.flatnonzero(m).tolist():
            lo = k
            while lo > 0 and before[k] - before[lo] < need:  # buckets lo..k-1 before the marked one
                lo -= 1
            hi = k
            while hi < len(n) - 1 and before[hi + 1] - before[k + 1] < need:  # buckets k+1..hi after it
                hi += 1
            if spans and lo <= spans[-1][1] + 1:
                spans[-1][1] = max(spans[-1][1], hi)
            else:
                spans.append([lo, hi])
        rows += [(str(station), str(parameter), int(bucket[lo]), int(bucket[hi])) for lo, hi in spans]
    out = pd.DataFrame(rows, columns=["station", "parameter", "first", "last"])
    step = pd.Timedelta(seconds=bucket_s)
    out["start"] = [max(t0, t0 + int(b) * step) for b in out["first"]]
    out["end"] = [min(t1, t0 + (int(b) + 1) * step - pd.Timedelta(seconds=1)) for b in out["last"]]
    return out[["station", "parameter", "start", "end"]]


def warnings_over(
    engine: sa.Engine,
    stations: pd.DataFrame,
    start: Time,
    end: Time,
    policy: alerts.Policy | None = None,
    escalation: Any = None,
    bucket_s: int = BUCKET_S,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The warning episodes of ``start`` to ``end`` (tz-aware, both included) over a store, screened (module docstring).

    Parameters
    ----------
    engine:
        The operations store.
    stations:
        ``id``, ``water_body``, ``target_class`` of the stations to warn on; readings of
        other stations are left out.
    policy, escalation:
        As for :func:`twin.analysis.alerts.evaluate`.

    Returns
    -------
    episodes, counts
        The table of :func:`twin.analysis.alerts.evaluate` over every usable reading of
        the period with ``until=end``; and what the screening did: ``buckets``,
        ``marked`` buckets, ``windows``, ``read`` readings, ``readings`` in the period.
    """
    policy = alerts.load_policy() if policy is None else policy
    ignore = set(policy.ignore_flags)
    env = _readings.envelopes(engine, start, end, bucket_s, ignore)
    total = int(env["n"].sum())
    env = env[env["parameter"].isin(policy.watched()) & env["station"].isin(stations["id"].astype(str))]
    mark = marked(env, stations, policy)
    wins = windows(env, mark, context(policy), start, end, bucket_s)
    rows = _readings.in_windows(engine, wins, ignore)
    episodes = alerts.evaluate(rows, stations, policy, escalation, until=pd.Timestamp(end))
    counts = {
        "buckets": len(env),
        "marked": int(mark.sum()),
        "windows": len(wins),
        "read": len(rows),
        "readings": total,
    }
    return episodes, counts
