"""Slices of the basin in time: every station at a time, a release along the river at a time and over time.

- :func:`state_at`: the state of the basin at a time ``t``: every station's latest
  reading of a parameter, its GB 3838-2002 class, whether it exceeds the station's
  target, and its warning level.
- :func:`river_at`: a release's concentration at a time at points sampled along the
  river (:func:`twin.analysis.profiles.sample_river`).
- :func:`plume_times` and :func:`plume_over_time`: the same at many times, on a grid of
  times that spans the plume's passage.
- :func:`reading_summary` and :func:`reading_times`: what the store holds to slice:
  per parameter, how many readings, from when to when; every time a parameter was read.

Each takes the parts it needs (the sites or reach table, the store or a table of
readings, the warning episodes), not a twin, so it runs in a notebook or a test without
a twin folder. Nothing here decides who may see what: give the warning episodes a user
may see (:meth:`twin.access.Scope.warnings`).

Examples
--------
>>> from twin.analysis import slices                                              # doctest: +SKIP
>>> now = slices.state_at(basin.sites, basin.store, "As", "2026-09-03T16:00Z")      # doctest: +SKIP
>>> now.loc[now["exceeds"], ["id", "value", "label"]]                               # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import sqlalchemy as sa
import xarray as xr
from pyproj import Transformer

from twin.analysis import alerts, quality
from twin.errors import TwinError
from twin.ops.parameters import PARAMETERS

if TYPE_CHECKING:
    from twin.model.network import Location

#: time steps of a plume over time: the default step spreads its passage over about this many; the most
PLUME_STEPS, MAX_PLUME_STEPS = 200, 2000
#: the shortest default step of a plume over time (minutes; a step is always whole minutes by default)
MIN_PLUME_STEP_MINUTES = 5

#: the columns of :func:`state_at`
STATE_COLUMNS = [
    "id",
    "name",
    "water_body",
    "target_class",
    "time",
    "value",
    "class",
    "label",
    "exceeds",
    "warning_level",
    "warning",
    "lon",
    "lat",
]


class SliceError(TwinError, ValueError):
    """A slice that cannot be cut: a time without zone, a parameter unknown, a time grid too fine."""


def _utc(t: Any, what: str) -> pd.Timestamp:
    when = pd.Timestamp(t)
    if when.tzinfo is None:
        raise SliceError(f"{what} {t!r} has no time zone; give one, e.g. '2026-09-03T16:00Z'")
    return when.tz_convert("UTC")


def _parameter(parameter: str) -> str:
    if parameter not in PARAMETERS:
        raise SliceError(f"unknown parameter {parameter!r}; known: {', '.join(PARAMETERS)}")
    return parameter


def _stations(sites: pd.DataFrame) -> pd.DataFrame:
    return sites[sites["kind"] == "station"].reset_index(drop=True)


def _lon_lat(gdf: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    if gdf.empty:
        return np.zeros(0), np.zeros(0)
    to_wgs84 = Transformer.from_crs(gdf.crs, "EPSG:4326", always_xy=True)
    lon, lat = to_wgs84.transform(gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy())
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


# -- the basin at a time --------------------------------------------------------------------------


def _window(readings: pd.DataFrame | sa.Engine, ids: list[str], parameter: str, start: pd.Timestamp, end: pd.Timestamp):
    """The usable readings of ``parameter`` at stations ``ids`` within ``[start, end]`` (store or table)."""
    from twin.analysis.source import readings_frame

    return readings_frame(readings, [parameter], start, end, usable_only=True, stations=ids)


def state_at(
    sites: gpd.GeoDataFrame,
    readings: pd.DataFrame | sa.Engine,
    parameter: str,
    at: Any,
    *,
    max_age_hours: float = 24.0,
    episodes: pd.DataFrame | None = None,
) -> gpd.GeoDataFrame:
    """The state of the basin at a time: every station's latest reading of a parameter, its class and warning.

    Parameters
    ----------
    sites:
        The sites table (``id``, ``name``, ``kind``, ``water_body``, ``target_class``,
        points); the rows of kind ``"station"`` are the answer's rows, in their order.
    readings:
        The operations store (an engine of :mod:`twin.ops.store`), or a long table of
        readings (``station``, ``parameter``, ``time``, ``value``, optional ``flag``).
        Only usable readings count (:func:`twin.ops.flags.usable`).
    parameter:
        A parameter id of :data:`twin.ops.parameters.PARAMETERS`.
    at:
        The time, with its zone.
    max_age_hours:
        The oldest reading used: a station whose latest reading is older has no value.
    episodes:
        Warning episodes (:func:`twin.analysis.alerts.evaluate`, or those a user may
        see); None: no warnings are weighed.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per station, columns :data:`STATE_COLUMNS` and the station's point:
        ``time`` and ``value`` of its latest reading within ``max_age_hours`` before
        ``at`` (NaT/NaN without one), ``class`` (1-6, 0: not classified), ``label``,
        ``exceeds`` (class worse than the target), ``warning_level`` (0-4) of this
        parameter's episodes active at ``at`` and ``warning`` (its name, None at 0),
        ``lon``/``lat`` (WGS 84).

    Raises
    ------
    SliceError
        A time without zone, an unknown parameter, a negative age.

    Examples
    --------
    >>> import shapely
    >>> sites = gpd.GeoDataFrame({"id": ["A", "B"], "name": ["Upper", "Lower"], "kind": "station",
    ...     "water_body": "river", "target_class": [2, 3]},
    ...     geometry=[shapely.Point(3.9, 44.1), shapely.Point(3.95, 44.05)], crs="EPSG:4326")
    >>> readings = pd.DataFrame({"station": ["A", "A", "B"], "parameter": "As", "value": [0.01, 0.2, 0.03],
    ...     "time": pd.to_datetime(["2026-09-03T10:00Z", "2026-09-03T14:00Z", "2026-09-01T00:00Z"])})
    >>> now = state_at(sites, readings, "As", "2026-09-03T16:00Z")
    >>> now[["id", "value", "class", "label", "exceeds"]].to_dict("records")[0]
    {'id': 'A', 'value': 0.2, 'class': 6, 'label': '劣V', 'exceeds': True}
    >>> bool(np.isnan(now["value"].iloc[1]))  # B's reading is older than 24 h
    True
    """
    p = _parameter(parameter)
    when = _utc(at, "at")
    if not max_age_hours > 0:
        raise SliceError(f"max_age_hours={max_age_hours!r}: give a number of hours above 0")
    stations = _stations(sites)
    ids = [str(s) for s in stations["id"]]
    rows = _window(readings, ids, p, when - pd.Timedelta(hours=max_age_hours), when)
    last = rows.sort_values("time").groupby("station").last() if len(rows) else rows.set_index("station")
    values = last["value"].reindex(stations["id"]).to_numpy(dtype=float)
    times = pd.to_datetime(last["time"].reindex(stations["id"]), utc=True).to_numpy()
    water_bodies = stations["water_body"].fillna("river").astype(str).to_numpy()
    classified = p in quality.parameters()
    klass = quality.classify_values(p, values, water_bodies) if classified else np.zeros(len(values), "int8")
    ep = episodes if episodes is not None else pd.DataFrame()
    ep = ep[ep["parameter"] == p] if len(ep) else ep
    levels = alerts.levels_at(ep, when)["level"] if len(ep) else pd.Series(dtype="int64")
    level = levels.reindex(stations["id"]).fillna(0).astype(int).to_numpy()
    lon, lat = _lon_lat(stations)
    target = stations["target_class"].astype(int).to_numpy()
    out = pd.DataFrame(
        {
            "id": stations["id"].to_numpy(),
            "name": stations["name"].to_numpy(),
            "water_body": stations["water_body"].to_numpy(),
            "target_class": target,
            "time": pd.DatetimeIndex(times, tz="UTC") if len(times) else pd.DatetimeIndex([], tz="UTC"),
            "value": values,
            "class": klass.astype(int),
            "label": [str(quality.label(int(c))) for c in klass],
            "exceeds": klass.astype(int) > target,
            "warning_level": level,
            "warning": pd.Series([alerts.LEVEL_NAMES[lv] if lv else None for lv in level], dtype=object),
            "lon": lon,
            "lat": lat,
        }
    )
    return gpd.GeoDataFrame(out, geometry=stations.geometry.to_numpy(), crs=sites.crs)


# -- a release along the river --------------------------------------------------------------------


def river_at(
    profile: pd.DataFrame,
    reaches: pd.DataFrame,
    start: Location,
    release_at: Any,
    at: Any,
    *,
    mass_kg: float,
    parameter: str = "",
    duration_h: float = 0.0,
    decay_per_hour: float = 0.0,
    flow_ratio: float = 1.0,
) -> pd.DataFrame:
    """A release's concentration at a time, at points along the river.

    Parameters
    ----------
    profile:
        Points along the river with ``reach_id`` and ``measure_m``
        (:func:`twin.analysis.profiles.sample_river`).
    reaches:
        The reach table (:attr:`twin.model.network.Network.reaches`).
    start:
        Where the release enters the river (``reach_id``, ``measure_m``).
    release_at, at:
        When the release starts, and when to look (both with zones).
    mass_kg, parameter, duration_h, decay_per_hour, flow_ratio:
        The release: mass (kg), substance, spread over ``duration_h`` hours (0:
        instantaneous), first-order decay (1/h), discharge over mean annual discharge.

    Returns
    -------
    pandas.DataFrame
        ``profile`` plus ``concentration_mg_l`` (NaN upstream of the release or past the
        plume) and ``peak_time`` (UTC), as :func:`twin.analysis.profiles.assign_concentration`.
    """
    from twin.analysis import plume
    from twin.analysis.profiles import assign_concentration

    when = _utc(at, "at")
    ds = plume.simulate(
        reaches,
        start.reach_id,
        start.measure_m,
        _utc(release_at, "release_at"),
        mass_kg=mass_kg,
        duration_s=duration_h * 3600.0,
        decay_per_hour=decay_per_hour,
        substance=parameter,
        flow_ratio=flow_ratio,
        times=pd.DatetimeIndex([when]),
    )
    return assign_concentration(profile, reaches, ds, when)


def plume_times(
    release_at: Any,
    passage_hours: float,
    step_minutes: float | None = None,
    *,
    steps: int = PLUME_STEPS,
    max_steps: int = MAX_PLUME_STEPS,
) -> tuple[pd.DatetimeIndex, float]:
    """The times at which to show a plume: from the release to the end of its passage, evenly spaced.

    Parameters
    ----------
    release_at:
        When the release starts (with its zone): the first time.
    passage_hours:
        Hours from the release until the plume's tail has passed the last point shown.
    step_minutes:
        Minutes between two times; None: whole minutes that spread the passage over about
        ``steps`` times, at least :data:`MIN_PLUME_STEP_MINUTES`.
    steps, max_steps:
        The default number of steps, and the most allowed.

    Returns
    -------
    (pandas.DatetimeIndex, float)
        The times (UTC; one step past the passage, so its end is shown) and the step (min).

    Raises
    ------
    SliceError
        The step gives more than ``max_steps`` times; the message says the smallest step allowed.

    Examples
    --------
    >>> times, step = plume_times("2026-09-03T00:00Z", 10.0)
    >>> step, len(times), times[-1].isoformat()
    (5.0, 122, '2026-09-03T10:05:00+00:00')
    """
    start = _utc(release_at, "release_at")
    if step_minutes is None:
        step_minutes = float(max(MIN_PLUME_STEP_MINUTES, math.ceil(passage_hours * 60.0 / steps)))
    count = int(math.floor(passage_hours * 60.0 / step_minutes)) + 2
    if count > max_steps:
        raise SliceError(
            f"{step_minutes:g} min gives {count} steps over the plume's {passage_hours:.1f} h; "
            f"at most {max_steps} (use at least {math.ceil(passage_hours * 60.0 / (max_steps - 2))})"
        )
    return pd.DatetimeIndex([start + pd.Timedelta(minutes=step_minutes * i) for i in range(count)]), step_minutes


def plume_over_time(
    reaches: pd.DataFrame,
    start: Location,
    points: pd.DataFrame,
    release_at: Any,
    *,
    mass_kg: float,
    parameter: str = "",
    duration_h: float = 0.0,
    decay_per_hour: float = 0.0,
    flow_ratio: float = 1.0,
    step_minutes: float | None = None,
    steps: int = PLUME_STEPS,
    max_steps: int = MAX_PLUME_STEPS,
) -> xr.Dataset:
    """A release's concentration at points along the river, over its whole passage.

    Parameters
    ----------
    reaches:
        The reach table (:attr:`twin.model.network.Network.reaches`).
    start:
        Where the release enters the river (``reach_id``, ``measure_m``).
    points:
        Points along the river: ``reach_id`` and ``measure_m``; other columns (``id``,
        ``distance_km``, ``lon``, ``lat``...) become coordinates of the ``point`` dimension.
    release_at:
        When the release starts (with zone).
    mass_kg, parameter, duration_h, decay_per_hour, flow_ratio:
        The release, as in :func:`river_at`.
    step_minutes, steps, max_steps:
        The time grid (:func:`plume_times`); its span is the passage of the plume's tail
        past the last point reached, plus the release's duration.

    Returns
    -------
    xarray.Dataset
        Dimensions ``time`` and ``point`` (in the points' order): ``concentration_mg_l``
        (time × point; NaN at a point the plume never reaches) and ``peak_mg_l`` (point;
        the highest over the times, NaN where never reached). Attributes: ``step_minutes``,
        ``passage_hours``, the release's, and the plume model's ``velocity`` and ``dispersion``.

    Raises
    ------
    SliceError
        A time grid finer than ``max_steps`` allows.
    """
    from twin.analysis import plume

    n = len(points)
    ids = [str(i) for i in range(n)]
    sites = pd.DataFrame(
        {"id": ids, "reach_id": points["reach_id"].to_numpy(), "measure_m": points["measure_m"].to_numpy()}
    )
    arrivals = plume.travel_times(reaches, start.reach_id, start.measure_m, flow_ratio=flow_ratio, sites=sites)
    passage_h = float(arrivals["trailing_hours"].max()) + duration_h
    stamps, step = plume_times(release_at, passage_h, step_minutes, steps=steps, max_steps=max_steps)
    ds = plume.simulate(
        reaches,
        start.reach_id,
        start.measure_m,
        stamps[0],
        mass_kg=mass_kg,
        duration_s=duration_h * 3600.0,
        decay_per_hour=decay_per_hour,
        substance=parameter,
        flow_ratio=flow_ratio,
        times=stamps,
        sites=sites,
    )
    row = {str(s): k for k, s in enumerate(ds["site"].to_numpy())}
    picked = np.array([row.get(i, -1) for i in ids], dtype=int)
    conc = np.full((len(stamps), n), np.nan)
    on = picked >= 0
    conc[:, on] = ds["site_concentration"].to_numpy()[picked[on]].T
    reached = np.isfinite(conc).any(axis=0)
    peak = np.full(n, np.nan)
    peak[reached] = np.nanmax(conc[:, reached], axis=0)
    coords: dict[str, Any] = {"time": stamps.tz_convert("UTC").tz_localize(None)}
    for name in points.columns:
        coords[name] = ("point", points[name].to_numpy())
    return xr.Dataset(
        {"concentration_mg_l": (("time", "point"), conc), "peak_mg_l": ("point", peak)},
        coords=coords,
        attrs={
            "step_minutes": step,
            "passage_hours": passage_h,
            "release_at": stamps[0].isoformat(),
            "mass_kg": mass_kg,
            "parameter": parameter,
            "duration_h": duration_h,
            "decay_per_hour": decay_per_hour,
            "flow_ratio": flow_ratio,
            "units": "mg/L",
            "velocity": ds.attrs["velocity"],
            "dispersion": ds.attrs["dispersion"],
        },
    )


# -- what there is to slice -----------------------------------------------------------------------


def reading_summary(engine: sa.Engine, stations: Sequence[str]) -> pd.DataFrame:
    """Per parameter read at some stations: how many readings, the first and last time, whether any is simulated.

    Current versions only, every flag.

    Parameters
    ----------
    engine:
        The operations store.
    stations:
        Station ids.

    Returns
    -------
    pandas.DataFrame
        ``parameter``, ``count``, ``first``, ``last`` (UTC) and ``simulated`` (any reading
        flagged :data:`twin.analysis.simulate.SIMULATED_FLAG`), in
        :data:`twin.ops.parameters.PARAMETERS` order.
    """
    from twin.analysis.simulate import SIMULATED_FLAG
    from twin.ops.store import datastreams, readings

    ids = list(stations)
    query = (
        sa.select(
            datastreams.c.parameter,
            sa.func.count(),
            sa.func.min(readings.c.time),
            sa.func.max(readings.c.time),
            sa.func.max(sa.case((readings.c.flag == SIMULATED_FLAG, 1), else_=0)),
        )
        .join(datastreams, datastreams.c.id == readings.c.datastream_id)
        .where(readings.c.current == 1, datastreams.c.station_id.in_(ids))
        .group_by(datastreams.c.parameter)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all() if ids else []
    out = pd.DataFrame(rows, columns=["parameter", "count", "first", "last", "simulated"])
    out["first"] = pd.to_datetime(out["first"].astype("int64"), unit="s", utc=True)
    out["last"] = pd.to_datetime(out["last"].astype("int64"), unit="s", utc=True)
    out["simulated"] = out["simulated"].astype(bool)
    order = {p: k for k, p in enumerate(PARAMETERS)}
    out = out[out["parameter"].isin(order)]
    return out.sort_values("parameter", key=lambda s: s.map(order)).reset_index(drop=True)


def reading_times(engine: sa.Engine, stations: Sequence[str], parameter: str) -> pd.DatetimeIndex:
    """Every time a parameter was read at some stations (current versions, every flag), in order, UTC."""
    from twin.ops.store import datastreams, readings

    ids = list(stations)
    if not ids:
        return pd.DatetimeIndex([], tz="UTC")
    query = (
        sa.select(readings.c.time)
        .distinct()
        .join(datastreams, datastreams.c.id == readings.c.datastream_id)
        .where(readings.c.current == 1, datastreams.c.parameter == parameter, datastreams.c.station_id.in_(ids))
        .order_by(readings.c.time)
    )
    with engine.connect() as conn:
        epochs = [int(t) for t in conn.execute(query).scalars()]
    return pd.DatetimeIndex(pd.to_datetime(epochs, unit="s", utc=True))
