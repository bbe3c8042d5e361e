"""Which jurisdictions a release crosses on its way down the river: the route of a trace.

- :func:`units_crossed`: the top-level units a release at a point of a reach passes
  through, in order, on its way to a station downstream (where it starts, then each
  unit it enters at a cross-boundary section).
- :func:`place_candidates`: the candidate sources of an upstream trace
  (:func:`twin.analysis.tracing.trace_upstream`) placed on the map: their point, the
  units holding it at every level, and their route to the station.

Both take the model's parts (the river :class:`~twin.model.network.Network` and the
:class:`~twin.model.jurisdictions.Jurisdictions`), not a twin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
from pyproj import Transformer

if TYPE_CHECKING:
    from twin.model.jurisdictions import Jurisdictions
    from twin.model.network import Network


def units_crossed(
    network: Network,
    jurisdictions: Jurisdictions,
    reach_id: int,
    measure_m: float,
    x: float,
    y: float,
    to_reach_id: int,
    to_measure_m: float,
) -> list[str]:
    """Names of the top-level units a release crosses from a point to a point downstream, in order.

    Parameters
    ----------
    network:
        The river network (reaches with ``next_down``).
    jurisdictions:
        The units and the cross-boundary sections (``reach_id``, ``measure_m``,
        ``level``, ``to_name``).
    reach_id, measure_m:
        Where the release enters the river (metres from the reach's upstream end).
    x, y:
        The release's point (the twin's CRS): its unit is the first name.
    to_reach_id, to_measure_m:
        The point downstream (a station's reach and measure).

    Returns
    -------
    list of str
        The unit holding the release (if any), then every unit entered at a section of
        the top level between the two points, consecutive repeats dropped. Only the
        first name when the second point is not downstream of the first; empty when
        the twin has no jurisdiction levels.
    """
    top = jurisdictions.levels[0] if jurisdictions.levels else None
    if top is None:
        return []
    here = jurisdictions.at(x, y).get(top)
    names = [str(here["name"])] if here else []
    path = network.downstream_ids(reach_id)
    end = int(to_reach_id)
    if end not in path:  # not downstream of the release
        return names
    path = path[: path.index(end) + 1]
    order = {r: k for k, r in enumerate(path)}
    sec = jurisdictions.sections
    sec = sec[(sec["level"] == top) & sec["reach_id"].isin(path)]
    on_first = sec["reach_id"].to_numpy() == reach_id
    on_last = sec["reach_id"].to_numpy() == end
    keep = (~on_first | (sec["measure_m"].to_numpy() >= measure_m)) & (
        ~on_last | (sec["measure_m"].to_numpy() <= float(to_measure_m))
    )
    sec = sec[keep]
    sec = sec.assign(_k=sec["reach_id"].map(order)).sort_values(["_k", "measure_m"])
    for name in sec["to_name"]:
        if name is not None and (not names or names[-1] != name):
            names.append(str(name))
    return names


def place_candidates(
    candidates: pd.DataFrame,
    network: Network,
    jurisdictions: Jurisdictions,
    station: pd.Series,
    crs: Any,
) -> pd.DataFrame:
    """Candidate sources placed on the map, with the units they lie in and their route to the station.

    Parameters
    ----------
    candidates:
        Candidates with ``reach_id`` and ``measure_m`` (the table of
        :func:`twin.analysis.tracing.trace_upstream`).
    network, jurisdictions:
        The model's river network and jurisdictions.
    station:
        The station the trace started from: its ``reach_id`` and ``measure_m``.
    crs:
        The CRS of the network's geometries.

    Returns
    -------
    pandas.DataFrame
        ``candidates`` with ``lon`` and ``lat`` (WGS 84) of the point on the reach,
        ``jurisdictions`` (the unit holding it at every level: ``{level: {code, name} or
        None}``) and ``route`` (:func:`units_crossed` from it to the station).
    """
    to_wgs84 = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    reaches = network.reaches
    lon, lat, units, routes = [], [], [], []
    for reach_id, measure_m in zip(candidates["reach_id"], candidates["measure_m"]):
        geom = reaches.at[int(reach_id), "geometry"]
        pt = geom.interpolate(min(float(measure_m), geom.length))
        x, y = to_wgs84.transform(pt.x, pt.y)
        lon.append(float(x))
        lat.append(float(y))
        here = jurisdictions.at(pt.x, pt.y)
        units.append({lv: here.get(lv) for lv in jurisdictions.levels})
        routes.append(
            units_crossed(
                network,
                jurisdictions,
                int(reach_id),
                float(measure_m),
                pt.x,
                pt.y,
                int(station["reach_id"]),
                float(station["measure_m"]),
            )
        )
    out = candidates.copy()
    out["lon"] = lon
    out["lat"] = lat
    out["jurisdictions"] = pd.Series(units, index=out.index, dtype=object)
    out["route"] = pd.Series(routes, index=out.index, dtype=object)
    return out
