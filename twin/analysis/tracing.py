"""Upstream source tracing: which reach or registered site could have caused what stations measured.

Given an anomaly — a parameter at a station around a time — every candidate
upstream within the travel-time window is tried as the source:

* candidates are the middles of the reaches upstream of the station
  (with their tributaries) whose peak travel time to the station is at most
  ``window_hours``, and the registered sites there (outfalls, mines, dumps);
* for a candidate, the model of :mod:`twin.analysis.plume` gives each station downstream
  of it a response per kilogram released (``unit_response / Q``); stations not
  downstream of it get none;
* the observed *excess* at each station is its readings minus its baseline (the
  median of its readings before the window); for every release time on a grid
  the best mass is the least-squares one (never negative), and the candidate's
  score is how much of the observed excess the release explains (1 − SSE/SST,
  over every station with readings of the parameter);
* candidates are ranked by that score, except that every candidate whose misfit
  is within what the noise allows of the best one (``consistent``: ΔSSE ≤ 6 σ², σ² the
  readings' variance about their baseline before the window) comes first, and
  among those the registered sources (``registered``) first: timing alone cannot
  tell apart points on one river with no station between them, and a known
  source is the likelier. Consistent candidates of one kind share their rank (the
  readings cannot tell them apart; they are listed by score); the others have a
  rank each. The estimated place, release time, duration and mass come with each.

Assumptions: one release, instantaneous or spread evenly over a few hours; the
discharge a fixed multiple of the mean annual discharge; baselines steady over the
window; a substance's decay, when it has one, known to the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pyproj import Transformer
from scipy.optimize import minimize_scalar

from twin.analysis import plume
from twin.analysis.source import readings_frame
from twin.errors import TwinError

if TYPE_CHECKING:
    from twin.model.model import Model

SOURCE_KINDS = ("outfall", "mine", "dump")


class TraceError(TwinError, ValueError):
    """An anomaly that cannot be traced (no readings, unknown station)."""


def _candidates(model: Model, station: pd.Series, window_hours: float, flow_ratio: float) -> pd.DataFrame:
    loc = model.network.locate_cell(*_xy(model, station), int(station["reach_id"]))
    up = model.network.upstream(loc, max_hours=window_hours, flow_ratio=flow_ratio)
    reaches = model.network.reaches
    rows = [
        {
            "candidate": f"reach {int(r)}",
            "kind": "reach",
            "reach_id": int(r),
            # the middle of the reach (of its part above the station, for the station's own reach)
            "measure_m": (float(reaches.at[int(r), "length_m"]) if int(r) != loc.reach_id else loc.measure_m) / 2,
        }
        for r in up["reach_id"].unique()
    ]
    sites = model.sites
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


def _xy(model: Model, station: pd.Series) -> tuple[float, float]:
    g = station.get("geometry")
    return (float(g.x), float(g.y)) if g is not None else model.to_twin_xy(station["lon"], station["lat"])


def trace_upstream(
    model: Model,
    readings: sa.Engine | pd.DataFrame,
    station_id: str,
    parameter: str,
    at: Any,
    *,
    window_hours: float = 48.0,
    flow_ratio: float = 1.0,
    step_minutes: float = 30.0,
    durations_h: Sequence[float] = (0.0, 1.0, 3.0, 6.0, 9.0, 12.0),
    decay_per_hour: float = 0.0,
    refine_reaches: int = 10,
    top: int = 10,
) -> pd.DataFrame:
    """Candidate sources of an anomaly at a station, best first.

    ``readings`` is the operations store or a table of readings (columns station, parameter,
    time, value and optionally flag, as :func:`twin.ops.readings.query` gives): a notebook
    can trace on a model and a DataFrame without a twin folder.

    Each candidate is tried as a release spread evenly over each of ``durations_h``
    (0: instantaneous), starting at every ``step_minutes`` of the window, refined to
    2 minutes around the best; ``decay_per_hour`` is the substance's first-order loss
    (e.g. settling of sediment), 0 for a conservative one. A reach candidate starts
    at the middle of the reach; the ``refine_reaches`` best are then tried every tenth
    of their length and placed where they fit best (``measure_m``).

    Returns a DataFrame: candidate, kind (reach or site kind), reach_id, measure_m, lon, lat, score
    (share of the observed excess explained, ≤ 1), release_time (the start),
    duration_h, mass_kg, consistent, registered, rank.
    """
    if not durations_h or any(not (d >= 0 and np.isfinite(d)) for d in durations_h):
        raise TraceError(f"durations_h must be hours >= 0 (at least one), got {list(durations_h)}")
    durations_s = [float(d) * 3600.0 for d in durations_h]
    t_at = pd.Timestamp(at)
    if t_at.tzinfo is None:
        raise TraceError(f"time {at!r} has no zone; give it with an offset or Z")
    sites = model.sites.set_index("id", drop=False)
    if station_id not in sites.index:
        raise TraceError(f"station {station_id!r} is not a site of this twin; stations: {sites.index.tolist()}")
    t0 = t_at - pd.Timedelta(hours=window_hours)
    # only usable readings (twin.ops.flags): a faulty analyser's spike is no evidence of a release
    history = readings_frame(readings, [parameter], t0 - pd.Timedelta(hours=window_hours), t_at, usable_only=True)
    if history.empty:
        raise TraceError(f"no {parameter} readings up to {t_at.isoformat()}; nothing to trace")
    obs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    quiet: list[np.ndarray] = []  # deviations from the baseline before the window: the noise
    for sid, g in history.groupby("station"):
        if sid not in sites.index:
            continue
        before = g[g["time"] < t0]["value"]
        base = float(before.median()) if len(before) else float(g["value"].min())
        quiet.append(before.to_numpy() - base)
        inside = g[g["time"] >= t0]
        if len(inside):
            secs = (inside["time"] - t0).dt.total_seconds().to_numpy()
            obs[str(sid)] = (secs, np.clip(inside["value"].to_numpy() - base, 0, None))
    if station_id not in obs:
        raise TraceError(f"station {station_id} has no {parameter} readings in the {window_hours:g} h before {at}")
    cands = _candidates(model, sites.loc[station_id], window_hours, flow_ratio)
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
    decay_per_s = decay_per_hour / 3600.0
    network = pd.DataFrame(model.network.reaches.drop(columns="geometry"))  # the walk needs no geometry

    def fit(reached: dict[str, tuple[float, float, float]], times_s: np.ndarray, duration_s: float):
        """Best mass and misfit of a release starting at each of ``times_s`` (s from the window start)."""
        cols = []  # response per kg at every observation, for every release time: (n_release, n_obs)
        for sid, (secs, _) in obs.items():
            r = reached.get(sid)
            if r is not None:
                peak_s, var_s2, q = r
                since = secs[None, :] - times_s[:, None]
                u = plume.unit_response(
                    since.ravel(),
                    np.array([peak_s]),
                    np.array([var_s2]),
                    duration_s=duration_s,
                    decay_per_s=decay_per_s,
                )[0].reshape(since.shape)
                cols.append(u * 1000.0 / q)  # kg/m³ → mg/L
            else:
                cols.append(np.zeros((len(times_s), len(secs))))
        resp = np.concatenate(cols, axis=1)
        denom = (resp**2).sum(axis=1)
        m = np.clip(np.where(denom > 0, (resp @ y_all) / np.where(denom > 0, denom, 1), 0.0), 0, None)
        return m, ((y_all[None, :] - m[:, None] * resp) ** 2).sum(axis=1)

    from_top: dict[int, tuple[float, float, list[str], np.ndarray]] = {}

    def reached_from(reach_id: int, measure_m: float) -> dict[str, tuple[float, float, float]]:
        """(peak s, variance s², discharge) at each watched station below a point: those from the
        reach's top, less the part of the reach above the point."""
        if reach_id not in from_top:
            tt = plume.travel_times(network, reach_id, 0.0, flow_ratio=flow_ratio, sites=watched)
            first = tt.iloc[0]  # the reach itself: its velocity and dispersion hold down to its end
            at = tt[tt["kind"] == "site"]
            table = np.column_stack(
                [at["distance_km"] * 1000.0, at["peak_hours"] * 3600.0, at["variance_s2"], at["discharge_m3s"]]
            ).astype(float)
            from_top[reach_id] = (
                float(first["velocity_ms"]),
                float(first["dispersion_m2s"]),
                at["id"].astype(str).tolist(),
                table,
            )
        vp, k, ids, table = from_top[reach_id]
        out = {}
        for sid, (dist_m, peak_s, var_s2, q) in zip(ids, table):
            if dist_m - measure_m > 0:  # below the point
                out[sid] = (peak_s - measure_m / vp, var_s2 - 2 * k * measure_m / vp**3, q)
        return out

    def best_release(
        reach_id: int,
        measure_m: float,
        durations: Sequence[float] = durations_s,
        near: float | None = None,
        polish: bool = True,
    ) -> dict[str, float]:
        """The release at a point that best reproduces the readings: sse, start (s), duration (s), mass.

        Starts are tried every ``step_minutes`` over the window, then every 2 minutes and
        every 10 seconds around the best (or every 10 s within 10 minutes of ``near``),
        then (``polish``) to the second: sharp peaks read every few hours need it, a
        minute off changes a reading on a flank by percents.
        """
        reached = reached_from(reach_id, measure_m)
        if near is None:
            best = {"sse": np.inf, "start": 0.0, "duration": 0.0}
            for d_s in durations:
                _, sse = fit(reached, releases - d_s / 2, d_s)  # the grid is of the release's middle
                k = int(np.argmin(sse))
                if sse[k] < best["sse"]:
                    best = {"sse": float(sse[k]), "start": float(releases[k] - d_s / 2), "duration": d_s}
            d_s = best["duration"]
            fine = best["start"] + np.arange(-step_minutes, step_minutes + 1e-9, 2.0) * 60.0
            fine = fine[int(np.argmin(fit(reached, fine, d_s)[1]))] + np.arange(-120.0, 120.1, 10.0)
        else:  # a point near one already fitted: starts every 10 s within 10 minutes of its start
            d_s = durations[0]
            fine = near + np.arange(-600.0, 600.1, 10.0)
        fmass, fsse = fit(reached, fine, d_s)
        j = int(np.argmin(fsse))
        if not polish:
            return {"sse": float(fsse[j]), "start": float(fine[j]), "duration": d_s, "mass": float(fmass[j])}
        res = minimize_scalar(
            lambda ts: float(fit(reached, np.array([ts]), d_s)[1][0]),
            bounds=(fine[j] - 10.0, fine[j] + 10.0),
            method="bounded",
            options={"xatol": 1.0},
        )
        mass, sse = fit(reached, np.array([res.x]), d_s)
        return {"sse": float(sse[0]), "start": float(res.x), "duration": d_s, "mass": float(mass[0])}

    # Every candidate at its place (a reach's middle); then the 3 × refine_reaches reaches that
    # fit best there at every tenth of their length (with the release duration that fitted best
    # at the middle); then, for the refine_reaches that fit best, the best point within a tenth of
    # their best tenth (every hundredth, then Brent's method). Registered sources and those best
    # reaches have their start polished to the second.
    fits = [
        best_release(int(c["reach_id"]), float(c["measure_m"]), polish=c["kind"] != "reach")
        for c in cands.to_dict("records")
    ]
    frac_of = np.full(len(cands), 0.5)
    spans = cands["measure_m"].to_numpy(float) * 2  # the reach, or its part above the station
    is_reach = (cands["kind"] == "reach").to_numpy()
    order = np.argsort([f["sse"] for f in fits])
    for i in order[is_reach[order]][: 3 * refine_reaches]:
        for frac in np.arange(0.05, 1.0, 0.1):
            f = best_release(int(cands.iloc[i]["reach_id"]), frac * spans[i], [fits[i]["duration"]], polish=False)
            if f["sse"] < fits[i]["sse"]:
                fits[i], frac_of[i] = f, float(frac)
    order = np.argsort([f["sse"] for f in fits])
    for i in order[is_reach[order]][:refine_reaches]:
        rid, span, d = int(cands.iloc[i]["reach_id"]), spans[i], [fits[i]["duration"]]
        reached_from(rid, 0.0)
        per_frac = span / from_top[rid][0]  # s of travel per share of the reach: the start moves with the place

        def near_fit(
            x: float, f: dict, x0: float, rid: int = rid, span: float = span, d: list = d, per_frac: float = per_frac
        ) -> dict:
            return best_release(rid, x * span, d, near=f["start"] + (x - x0) * per_frac, polish=False)

        f0, x0 = fits[i], frac_of[i]
        f, frac = min(
            ((near_fit(x, f0, x0), float(x)) for x in np.clip(x0 + np.arange(-0.1, 0.101, 0.01), 0.0, 1.0)),
            key=lambda fit_frac: fit_frac[0]["sse"],
        )
        res = minimize_scalar(
            lambda x, f=f, frac=frac: near_fit(x, f, frac)["sse"],
            bounds=(max(frac - 0.01, 0.0), min(frac + 0.01, 1.0)),
            method="bounded",
            options={"xatol": 2e-4},
        )
        for x in (float(res.x), frac):
            polished = best_release(rid, x * span, d, near=f["start"] + (x - frac) * per_frac)
            if polished["sse"] <= fits[i]["sse"]:
                fits[i], frac_of[i] = polished, x
    cands["measure_m"] = np.where(is_reach, frac_of * spans, cands["measure_m"].to_numpy(float))
    out = [
        {
            **c,
            "sse": fc["sse"],
            "score": 1.0 - fc["sse"] / sst,
            "release_time": t0 + pd.Timedelta(seconds=fc["start"]),
            "duration_h": fc["duration"] / 3600.0,
            "mass_kg": fc["mass"],
        }
        for c, fc in zip(cands.to_dict("records"), fits)
    ]
    ranked = pd.DataFrame(out)
    # Candidates whose misfit is within what noise allows of the best one explain the readings
    # equally well (a likelihood-ratio test, ΔSSE / σ² ≤ 6, the 95 % point of χ² with 2 degrees
    # of freedom: the best may have two free parameters more than a registered source, its
    # place on the reach and its duration; σ² is the readings' variance about their baseline
    # before the window, or SSE_best / n without such readings). Among those, a registered
    # source (outfall, mine, dump) is likelier than an arbitrary reach.
    best = float(ranked["sse"].min())
    noise = np.concatenate(quiet)
    var = float(np.mean(noise**2)) if len(noise) >= 10 else best / max(len(y_all), 1)
    ranked["consistent"] = ranked["sse"] - best <= 6.0 * var + 1e-18
    ranked["registered"] = ranked["kind"] != "reach"
    ranked = ranked.sort_values(["consistent", "registered", "score"], ascending=False).reset_index(drop=True)
    # consistent candidates of one kind (registered or not) share a rank: the readings cannot tell them apart
    position = np.arange(1, len(ranked) + 1)
    key = ranked["registered"].astype(str).where(ranked["consistent"], "#" + pd.Series(position).astype(str))
    ranked["rank"] = pd.Series(position).groupby(key.to_numpy()).transform("min").to_numpy()
    geometry = model.network.reaches.set_index("reach_id")["geometry"]
    xy = [geometry[r].interpolate(m).coords[0] for r, m in zip(ranked["reach_id"], ranked["measure_m"])]
    to_ll = Transformer.from_crs(model.crs, "EPSG:4326", always_xy=True)
    ranked["lon"], ranked["lat"] = to_ll.transform([p[0] for p in xy], [p[1] for p in xy])
    return ranked.drop(columns=["sse"]).head(top)


def trace_warning(model: Model, store: sa.Engine, warning_id: int, **options: Any) -> tuple[dict, pd.DataFrame]:
    """Candidate sources of an issued warning (``twin alerts --record``), traced at the warning's own time.

    The warning's station and parameter are traced at the end of its episode when it has
    ended (the whole episode is seen), else at its start, the time of the reading that
    raised it: what is known of a warning still active when it was recorded. Readings
    after that (days of them, when the record was never updated) belong to no known
    episode and would move the window off the anomaly. Tracing the station and parameter
    at that time with :func:`trace_upstream` gives the same candidates.

    Returns the warning (as :func:`twin.analysis.response.issued_row` gives it, with ``traced_at``,
    the time traced) and :func:`trace_upstream`'s candidates; ``options`` are passed on.
    """
    from twin.analysis.response import issued_row
    from twin.ops.store import warnings_issued

    with store.connect() as conn:
        row = conn.execute(sa.select(warnings_issued).where(warnings_issued.c.id == int(warning_id))).mappings().first()
    if row is None:
        raise TraceError(f"no warning {warning_id}; list them with `twin alerts DIR --issued`")
    warning = issued_row(dict(row))
    at = pd.Timestamp(warning["end"] if warning["end"] is not None else warning["start"])
    warning["traced_at"] = at.isoformat()
    return warning, trace_upstream(model, store, warning["station_id"], warning["parameter"], at, **options)
