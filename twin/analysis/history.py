"""Warning episodes over the whole history of the store: kept up to date, placed at their stations, cut by time.

:func:`twin.analysis.alerts.evaluate` decides episodes from readings;
:class:`twin.analysis.watch.StoreWatch` keeps them up to date as readings arrive. This
module gives what a viewer, a feature service or a notebook reads of them:

* :func:`watch`: the episodes over every reading of a store, from the parts of the
  model they need (the sites table and the escalation table), kept up to date;
* :func:`warning_id`: the stable id of an episode (``<station>.<parameter>.<start>``);
* :func:`episode_features`: the episodes as point features at their stations;
* :func:`periods`: the episodes of a station, a parameter or both that overlap a
  time window, with their ids;
* :func:`parameter_to_show`: the parameter whose warning matters most now.

Nothing here decides who may see an episode: pass the episodes a user may see
(:meth:`twin.access.Scope.warnings`) and the answer holds only those.

Examples
--------
>>> from twin.analysis import history                                          # doctest: +SKIP
>>> from twin.analysis.response import escalation_table                        # doctest: +SKIP
>>> live = history.watch(basin.store, basin.sites, escalation_table(basin.model))  # doctest: +SKIP
>>> history.periods(live.episodes(), station="GM-MIALET", parameter="As")       # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd

from twin.analysis import alerts
from twin.ops.parameters import PARAMETERS

if TYPE_CHECKING:
    import sqlalchemy as sa

    from twin.analysis.watch import StoreWatch

#: the columns of :func:`periods`, after the episode's own
PERIOD_COLUMNS = ["id", "station", "parameter", "level", "level_name", "start", "end", "end_reason", "peak_value"]


def warning_id(station: str, parameter: str, start: Any) -> str:
    """The id of a warning episode: ``<station>.<parameter>.<start as YYYYMMDDTHHMMZ, UTC>``.

    Examples
    --------
    >>> warning_id("GM-MIALET", "As", "2026-09-03T16:00+02:00")
    'GM-MIALET.As.20260903T1400Z'
    """
    return f"{station}.{parameter}.{pd.Timestamp(start).tz_convert('UTC'):%Y%m%dT%H%MZ}"


def stations_table(sites: pd.DataFrame) -> pd.DataFrame:
    """What the warning rules need of every site: ``id``, ``water_body``, ``target_class``."""
    return pd.DataFrame({"id": sites["id"], "water_body": sites["water_body"], "target_class": sites["target_class"]})


def watch(
    engine: sa.Engine,
    sites: pd.DataFrame,
    escalation: pd.DataFrame | None = None,
    policy: alerts.Policy | None = None,
) -> StoreWatch:
    """The warning episodes over every reading of a store, kept up to date (no response plans).

    Each call of the result's ``episodes()`` reads only what was stored since the last
    and evaluates again only the series it touched (:mod:`twin.analysis.watch`), so a
    server can show the warnings while stations post readings.

    Parameters
    ----------
    engine:
        The operations store (:mod:`twin.ops.store`).
    sites:
        The sites table (``id``, ``water_body``, ``target_class``); readings of other
        stations are left out.
    escalation:
        Hours from each station to the first intake and first top-level boundary
        downstream (:func:`twin.analysis.response.escalation_table`); None: no escalation.
    policy:
        The warning policy (default :func:`twin.analysis.alerts.load_policy`).

    Returns
    -------
    twin.analysis.watch.StoreWatch
        ``.episodes()`` is the table of :func:`twin.analysis.alerts.evaluate`.
    """
    from twin.analysis.watch import StoreWatch

    return StoreWatch(engine, stations_table(sites), policy or alerts.load_policy(), escalation)


def episode_features(episodes: pd.DataFrame, sites: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The episodes as point features at their stations, in the episodes' order.

    Parameters
    ----------
    episodes:
        A table of :func:`twin.analysis.alerts.evaluate` (or the rows of it a user may see).
    sites:
        The sites table with ``id``, ``name`` and point geometry.

    Returns
    -------
    geopandas.GeoDataFrame
        The episodes' columns plus ``id`` (:func:`warning_id`) and ``station_name``, on the
        station's point, in the sites' CRS.
    """
    if episodes.empty:
        return gpd.GeoDataFrame({"id": pd.Series([], dtype=object)}, geometry=[], crs=sites.crs)
    by_id = sites.set_index("id")
    at = by_id.loc[episodes["station"]]
    ids = [warning_id(s, p, t) for s, p, t in zip(episodes["station"], episodes["parameter"], episodes["start"])]
    props = episodes.assign(station_name=at["name"].to_numpy())
    out = gpd.GeoDataFrame(props, geometry=at.geometry.to_numpy(), crs=sites.crs)
    out.insert(0, "id", ids)
    return out


def periods(
    episodes: pd.DataFrame,
    *,
    station: str | None = None,
    parameter: str | None = None,
    start: Any = None,
    end: Any = None,
) -> pd.DataFrame:
    """The episodes of a station and/or a parameter that overlap ``[start, end]``, earliest first.

    An episode still open (no ``end``) overlaps every window after its start.

    Parameters
    ----------
    episodes:
        A table of :func:`twin.analysis.alerts.evaluate`.
    station, parameter:
        Keep only this station's, this parameter's episodes (None: every one).
    start, end:
        The window, with zones (None: open).

    Returns
    -------
    pandas.DataFrame
        :data:`PERIOD_COLUMNS` (``id`` is :func:`warning_id`), then the episode's other
        columns (``rule``, ``changes``...), a fresh index.

    Examples
    --------
    >>> t = pd.Timestamp("2026-09-03T12:00Z")
    >>> ep = pd.DataFrame({"station": ["A", "A"], "parameter": ["As", "As"], "level": [2, 4],
    ...     "level_name": ["yellow", "red"], "start": [t, t + pd.Timedelta(days=2)],
    ...     "end": [t + pd.Timedelta(hours=6), pd.NaT], "end_reason": ["below", None], "peak_value": [0.2, 0.9]})
    >>> periods(ep, station="A", start=t + pd.Timedelta(hours=7))["level_name"].tolist()
    ['red']
    >>> periods(ep, parameter="As", end=t + pd.Timedelta(hours=1))["id"].tolist()
    ['A.As.20260903T1200Z']
    """
    if episodes.empty:
        return pd.DataFrame(columns=PERIOD_COLUMNS)
    keep = pd.Series(True, index=episodes.index)
    if station is not None:
        keep &= episodes["station"] == station
    if parameter is not None:
        keep &= episodes["parameter"] == parameter
    starts = pd.to_datetime(episodes["start"], utc=True)
    ends = pd.to_datetime(episodes["end"], utc=True)
    if end is not None:
        keep &= starts <= pd.Timestamp(end)
    if start is not None:
        keep &= ends.isna() | (ends >= pd.Timestamp(start))
    out = episodes[keep].sort_values("start", kind="stable").reset_index(drop=True)
    ids = [warning_id(str(s), str(p), t) for s, p, t in zip(out["station"], out["parameter"], out["start"])]
    out.insert(0, "id", pd.Series(ids, index=out.index, dtype=object))
    return out[PERIOD_COLUMNS + [c for c in out.columns if c not in PERIOD_COLUMNS]]


def parameter_to_show(read: Sequence[str], episodes: pd.DataFrame, classified: Sequence[str] = ()) -> str | None:
    """The parameter to open a view of the basin on: that of the latest, highest warning; else the first classified.

    Parameters
    ----------
    read:
        The parameters read at the stations (in :data:`twin.ops.parameters.PARAMETERS` order).
    episodes:
        The warning episodes to weigh (those the user may see).
    classified:
        The parameters that have classes (:func:`twin.analysis.quality.parameters`).

    Returns
    -------
    str or None
        Among the parameters read: the one whose episode started last (the higher level,
        then the parameter's order, between two that started together); without any such
        episode, the first classified parameter read, else the first read; None if
        nothing was read.
    """
    read = list(read)
    if not read:
        return None
    ep = episodes[episodes["parameter"].isin(read)] if len(episodes) else episodes
    if len(ep):
        order = {p: k for k, p in enumerate(PARAMETERS)}
        ranked = ep.assign(_o=ep["parameter"].map(order)).sort_values(
            ["start", "level", "_o"], ascending=[False, False, True]
        )
        return str(ranked["parameter"].iloc[0])
    shown = [p for p in read if p in set(classified)]
    return shown[0] if shown else read[0]
