"""Upstream source tracing: which reach or registered site could have caused what stations measured.

Given an anomaly — a parameter at a station around a time — every candidate
upstream within the travel-time window is tried as the source:

* candidates are the downstream ends of the reaches upstream of the station
  (with their tributaries) whose peak travel time to the station is at most
  ``window_hours``, and the registered sites there (outfalls, mines, dumps);
* for a candidate, the model of :mod:`twin.plume` gives each station downstream
  of it a response per kilogram released (``unit_response / Q``); stations not
  downstream of it get none;
* the observed *excess* at each station is its readings minus its baseline (the
  median of its readings before the window); for every release time on a grid
  the best mass is the least-squares one (never negative), and the candidate's
  score is how much of the observed excess the release explains (1 − SSE/SST,
  over every station with readings of the parameter);
* candidates are ranked by that score, except that every candidate whose misfit
  is within what the noise allows of the best one (``consistent``) comes first, and
  among those the registered sources (``registered``) first: timing alone cannot
  tell apart points on one river with no station between them, and a known
  source is the likelier. The estimated release time and mass come with each.

Assumptions: one instantaneous release, the discharge a fixed multiple of the
mean annual discharge, baselines steady over the window.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import plume
from .errors import TwinError
from .readings import query

if TYPE_CHECKING:
    from .basin import BasinTwin

SOURCE_KINDS = ("outfall", "mine", "dump")


class TraceError(TwinError, ValueError):
    """An anomaly that cannot be traced (no readings, unknown station)."""


def _candidates(basin: BasinTwin, station: pd.Series, window_hours: float, flow_ratio: float) -> pd.DataFrame:
    loc = basin.network.locate_cell(*_xy(basin, station), int(station["reach_id"]))
    up = basin.network.upstream(loc, max_hours=window_hours, flow_ratio=flow_ratio)
    reaches = basin.network.reaches
    rows = [
        {
            "candidate": f"reach {int(r)}",
            "kind": "reach",
            "reach_id": int(r),
            "measure_m": float(reaches.at[int(r), "length_m"]) if int(r) != loc.reach_id else loc.measure_m,
        }
        for r in up["reach_id"].unique()
    ]
    sites = basin.sites
    registered = sites[sites["kind"].isin(SOURCE_KINDS) & sites["reach_id"].isin(up["reach_id"])]
    rows += [
        {
            "candidate": str(s["id"]),
            "kind": str(s["kind"]),
            "reach_id": int(s["reach_id"]),
            "measure_m": float(s["measure_m"]),
        }
        for s in registered.to_dict("records")
    ]
    return pd.DataFrame(rows)


def _xy(basin: BasinTwin, station: pd.Series) -> tuple[float, float]:
    g = station.get("geometry")
    return (float(g.x), float(g.y)) if g is not None else basin.to_twin_xy(station["lon"], station["lat"])


def trace_upstream(
    basin: BasinTwin,
    station_id: str,
    parameter: str,
    at: Any,
    *,
    window_hours: float = 48.0,
    flow_ratio: float = 1.0,
    step_minutes: float = 30.0,
    top: int = 10,
) -> pd.DataFrame:
    """Candidate sources of an anomaly at a station, best first.

    Returns a DataFrame: candidate, kind (reach or site kind), reach_id, score
    (share of the observed excess explained, ≤ 1), release_time, mass_kg, rank.
    """
    t_at = pd.Timestamp(at)
    if t_at.tzinfo is None:
        raise TraceError(f"time {at!r} has no zone; give it with an offset or Z")
    sites = basin.sites.set_index("id", drop=False)
    if station_id not in sites.index:
        raise TraceError(f"station {station_id!r} is not a site of this twin; stations: {sites.index.tolist()}")
    t0 = t_at - pd.Timedelta(hours=window_hours)
    history = query(basin.store, None, [parameter], t0 - pd.Timedelta(hours=window_hours), t_at)
    if history.empty:
        raise TraceError(f"no {parameter} readings up to {t_at.isoformat()}; nothing to trace")
    obs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for sid, g in history.groupby("station"):
        if sid not in sites.index:
            continue
        before = g[g["time"] < t0]["value"]
        base = float(before.median()) if len(before) else float(g["value"].min())
        inside = g[g["time"] >= t0]
        if len(inside):
            secs = (inside["time"] - t0).dt.total_seconds().to_numpy()
            obs[str(sid)] = (secs, np.clip(inside["value"].to_numpy() - base, 0, None))
    if station_id not in obs:
        raise TraceError(f"station {station_id} has no {parameter} readings in the {window_hours:g} h before {at}")
    cands = _candidates(basin, sites.loc[station_id], window_hours, flow_ratio)
    watched = pd.DataFrame(
        {
            "id": list(obs),
            "reach_id": sites.loc[list(obs), "reach_id"].to_numpy(),
            "measure_m": sites.loc[list(obs), "measure_m"].to_numpy(),
        }
    )
    y_all = np.concatenate([v for _, v in obs.values()])
    sst = float((y_all**2).sum()) or 1.0
    releases = np.arange(-window_hours * 3600, window_hours * 3600 + 1, step_minutes * 60.0)
    out = []
    for c in cands.to_dict("records"):
        tt = plume.travel_times(
            basin.network.reaches, c["reach_id"], c["measure_m"], flow_ratio=flow_ratio, sites=watched
        )
        sections = tt[tt["kind"] == "site"]
        reached: dict[str, Any] = {str(r["id"]): r for r in sections.to_dict("records")}

        # response per kg at every observation, for every release time: shape (n_release, n_obs)
        def fit(times_s: np.ndarray, reached: dict[str, Any] = reached) -> tuple[np.ndarray, np.ndarray]:
            """Best mass and misfit of a release at each of ``times_s`` (s from the window start)."""
            cols = []
            for sid, (secs, _) in obs.items():
                r = reached.get(sid)
                if r is not None and float(r["distance_km"]) > 0:
                    since = secs[None, :] - times_s[:, None]
                    u = plume.unit_response(
                        since.ravel(), np.array([float(r["peak_hours"]) * 3600]), np.array([float(r["variance_s2"])])
                    )[0].reshape(since.shape)
                    cols.append(u * 1000.0 / float(r["discharge_m3s"]))  # kg/m³ → mg/L
                else:
                    cols.append(np.zeros((len(times_s), len(secs))))
            resp = np.concatenate(cols, axis=1)
            denom = (resp**2).sum(axis=1)
            m = np.clip(np.where(denom > 0, (resp @ y_all) / np.where(denom > 0, denom, 1), 0.0), 0, None)
            return m, ((y_all[None, :] - m[:, None] * resp) ** 2).sum(axis=1)

        mass, sse = fit(releases)
        k = int(np.argmin(sse))
        # refine the release time around the best grid step, every 2 minutes
        fine = releases[k] + np.arange(-step_minutes, step_minutes + 1e-9, 2.0) * 60.0
        fmass, fsse = fit(fine)
        j = int(np.argmin(fsse))
        releases_k, mass_k, sse_k = fine[j], fmass[j], fsse[j]
        c["sse"] = float(sse_k)
        out.append(
            {
                **c,
                "score": 1.0 - float(sse_k) / sst,
                "release_time": t0 + pd.Timedelta(seconds=float(releases_k)),
                "mass_kg": float(mass_k),
            }
        )
    ranked = pd.DataFrame(out)
    # Candidates whose misfit is within what noise allows of the best one explain the readings
    # equally well (a likelihood-ratio test: ΔSSE / σ² ≤ 4 with σ² ≈ SSE_best / n); among
    # those, a registered source (outfall, mine, dump) is likelier than an arbitrary reach.
    n = len(y_all)
    best = float(ranked["sse"].min())
    ranked["consistent"] = ranked["sse"] <= best * (1 + 4.0 / max(n, 1)) + 1e-18
    ranked["registered"] = ranked["kind"] != "reach"
    ranked = ranked.sort_values(["consistent", "registered", "score"], ascending=False).reset_index(drop=True)
    ranked["rank"] = np.arange(1, len(ranked) + 1)
    return ranked.drop(columns=["sse"]).head(top)
