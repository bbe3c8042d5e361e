"""Profiles: the DEM sampled along a line, and along the river from a point to the outlet.

- :func:`terrain_profile`: a cross-section of the terrain along a polyline.
- :func:`river_profile`: the longitudinal profile of the river from a point down to
  the outlet: distance, measured and conditioned elevation, reach ids, and (with a
  plume) the concentration of a release at a time.
- :func:`sample_river` and :func:`assign_concentration`: the two steps of
  :func:`river_profile`, for a caller that has the downstream path already (the web
  slices, which also serve the path's sections and sites).
- :func:`elevation_at`: the kernel under both, on arrays of points.

Elevations are those of the cell holding each sample (nearest cell, no
interpolation), so a profile shows the DEM's own values; samples outside the
grid or on nodata are NaN. The measured elevation has the DEM's pits and the
bumps of SRTM over the valley floor; the conditioned elevation (depressions
filled, :mod:`twin.model.terrain`) never rises downstream along the flow path, which is
the profile water follows.

Examples
--------
>>> import twin
>>> from twin import profiles
>>> basin = twin.open("twins/cevennes")                                      # doctest: +SKIP
>>> df = profiles.river_profile(model, 3.7721, 44.1623)                      # doctest: +SKIP
>>> df[["distance_km", "elevation_m", "conditioned_elevation_m"]].iloc[-1]   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from twin.errors import TwinError

if TYPE_CHECKING:
    import geopandas as gpd
    import xarray as xr

    from twin.model.model import Model
    from twin.model.network import Location
    from twin.model.terrain import Terrain

MAX_SAMPLES = 100_000


class ProfileError(TwinError, ValueError):
    """A profile that cannot be drawn: a line of no length, too few or too many samples, a time without zone."""


def _check_samples(samples: int) -> int:
    if isinstance(samples, bool) or not isinstance(samples, int | np.integer) or not 2 <= samples <= MAX_SAMPLES:
        raise ProfileError(f"samples={samples!r}: give a whole number from 2 to {MAX_SAMPLES}")
    return int(samples)


def elevation_at(terrain: Terrain, x: Any, y: Any, conditioned: bool = False) -> np.ndarray:
    """Elevation (m) of the cells holding points given in the twin's CRS; NaN outside the grid or the data.

    Parameters
    ----------
    terrain:
        The twin's terrain (``model.terrain``).
    x, y:
        Coordinates in the twin's CRS (scalars or arrays of the same length).
    conditioned:
        Sample the conditioned elevation (depressions filled) instead of the measured one.
    """
    g = terrain.grid
    t = g.transform
    xs, ys = np.atleast_1d(np.asarray(x, dtype=float)), np.atleast_1d(np.asarray(y, dtype=float))
    finite = np.isfinite(xs) & np.isfinite(ys)
    col = np.floor((np.where(finite, xs, t.c) - t.c) / t.a).astype(np.int64)
    row = np.floor((np.where(finite, ys, t.f) - t.f) / t.e).astype(np.int64)
    inside = finite & (row >= 0) & (row < g.shape[0]) & (col >= 0) & (col < g.shape[1])
    dem = terrain.conditioned if conditioned else terrain.dem
    out = np.full(row.shape, np.nan)
    out[inside] = dem[row[inside], col[inside]]
    return out


def _to_wgs84(crs: Any) -> Transformer:
    return Transformer.from_crs(crs, "EPSG:4326", always_xy=True)


def terrain_profile(
    terrain: Terrain,
    line: Sequence[tuple[float, float]] | shapely.LineString,
    samples: int = 256,
    crs: Any = "EPSG:4326",
) -> pd.DataFrame:
    """The measured DEM sampled at ``samples`` points evenly spaced along a polyline.

    Parameters
    ----------
    terrain:
        The twin's terrain (``model.terrain``).
    line:
        Two or more (x, y) vertices in ``crs``, or a shapely LineString.
    samples:
        Number of points, the first at the line's start and the last at its end.
    crs:
        CRS of the vertices (default longitude/latitude); the line is straight in the twin's CRS.

    Returns
    -------
    pandas.DataFrame
        ``distance_m`` along the line from its start, ``x`` and ``y`` (twin CRS), ``lon`` and
        ``lat`` (WGS 84), ``elevation_m`` (NaN outside the grid or the data).

    Raises
    ------
    ProfileError
        Fewer than two vertices, a line of no length, a bad number of samples.

    Examples
    --------
    >>> df = terrain_profile(model.terrain, [(3.80, 44.17), (3.88, 44.13)])   # doctest: +SKIP
    >>> df.plot(x="distance_m", y="elevation_m")                             # doctest: +SKIP
    """
    n = _check_samples(samples)
    pts = np.asarray(line.coords if isinstance(line, shapely.LineString) else line, dtype=float)
    if pts.ndim != 2 or pts.shape[0] < 2 or pts.shape[1] != 2:
        raise ProfileError(f"a line needs two or more (x, y) vertices; got an array of shape {pts.shape}")
    grid_crs = terrain.grid.crs
    if CRS.from_user_input(crs) != CRS.from_user_input(grid_crs):
        xs, ys = Transformer.from_crs(crs, grid_crs, always_xy=True).transform(pts[:, 0], pts[:, 1])
        pts = np.column_stack([xs, ys])
    geom = shapely.LineString(pts)
    if not geom.length > 0:
        raise ProfileError("the points are all the same; give a line of some length")
    d = np.linspace(0.0, geom.length, n)
    at = shapely.line_interpolate_point(geom, d)
    sx, sy = shapely.get_x(at), shapely.get_y(at)
    lon, lat = _to_wgs84(grid_crs).transform(sx, sy)
    return pd.DataFrame(
        {
            "distance_m": d,
            "x": sx,
            "y": sy,
            "lon": lon,
            "lat": lat,
            "elevation_m": elevation_at(terrain, sx, sy),
        }
    )


def sample_river(model: Model, start: Location, path: gpd.GeoDataFrame, samples: int = 200) -> pd.DataFrame:
    """Points evenly spaced along a downstream path, with their elevations.

    Parameters
    ----------
    basin:
        The twin.
    start:
        Where the path starts (:meth:`twin.model.model.Model.locate`).
    path:
        The path from ``start`` (:meth:`twin.model.model.Model.downstream`), reach pieces in flow order.
    samples:
        Number of points, the first at the start and the last at the path's end.

    Returns
    -------
    pandas.DataFrame
        ``distance_km`` along the river from the start, ``reach_id`` and ``measure_m`` (the
        point on the network), ``x``/``y`` (twin CRS), ``lon``/``lat`` (WGS 84),
        ``elevation_m`` and ``conditioned_elevation_m``.
    """
    n = _check_samples(samples)
    if path.empty:
        raise ProfileError(f"the downstream path from reach {start.reach_id} is empty; nothing to sample")
    from_m = path["from_km"].to_numpy() * 1000.0
    to_m = path["to_km"].to_numpy() * 1000.0
    d = np.linspace(0.0, float(to_m[-1]), n)
    k = np.clip(np.searchsorted(to_m, d, side="left"), 0, len(path) - 1)
    offset = np.clip(d - from_m[k], 0.0, None)
    pts = shapely.line_interpolate_point(path.geometry.to_numpy()[k], offset)
    sx, sy = shapely.get_x(pts), shapely.get_y(pts)
    reach_ids = path["reach_id"].to_numpy()[k]
    lengths = model.network.reaches.loc[reach_ids, "length_m"].to_numpy()
    # only the first piece starts inside its reach, at the start's measure
    measure = np.minimum(np.where(k == 0, start.measure_m, 0.0) + offset, lengths)
    lon, lat = _to_wgs84(model.crs).transform(sx, sy)
    return pd.DataFrame(
        {
            "distance_km": d / 1000.0,
            "reach_id": reach_ids.astype(np.int64),
            "measure_m": measure,
            "x": sx,
            "y": sy,
            "lon": lon,
            "lat": lat,
            "elevation_m": elevation_at(model.terrain, sx, sy),
            "conditioned_elevation_m": elevation_at(model.terrain, sx, sy, conditioned=True),
        }
    )


def assign_concentration(profile: pd.DataFrame, reaches: pd.DataFrame, plume: xr.Dataset, at: Any) -> pd.DataFrame:
    """A new profile with the concentration of a release at a time at each of its points.

    The release is the one a :func:`twin.analysis.plume.simulate` Dataset describes (its
    attributes: start reach and measure, time, mass, duration, decay, flow ratio); the
    concentration is computed by the same model at the profile's points, exactly, not
    interpolated between reaches. Points upstream of the release, off its path or past
    the plume's last reach are NaN.

    Parameters
    ----------
    profile:
        Points with ``reach_id`` and ``measure_m`` (from :func:`sample_river`).
    reaches:
        The reach table (``model.network.reaches``).
    plume:
        A :func:`twin.analysis.plume.simulate` Dataset.
    at:
        The time (with zone).

    Returns
    -------
    pandas.DataFrame
        ``profile`` plus ``concentration_mg_l`` and ``peak_time`` (UTC; when the
        peak passes the point).
    """
    from twin.analysis import plume as plumes

    when = pd.Timestamp(at)
    if when.tzinfo is None:
        raise ProfileError(f"time {at!r} has no zone; give it with an offset or Z (e.g. 2026-09-03T10:00Z)")
    a = plume.attrs
    try:
        release = {k: a[k] for k in ("start_reach", "start_measure_m", "start_time", "mass_kg")}
    except KeyError as err:
        raise ProfileError(
            f"the plume Dataset has no attribute {err}; give the Dataset twin.analysis.plume.simulate returns"
        ) from None
    points = pd.DataFrame(
        {
            "id": np.arange(len(profile)).astype(str),
            "reach_id": profile["reach_id"].to_numpy(),
            "measure_m": profile["measure_m"].to_numpy(),
        }
    )
    ds = plumes.simulate(
        reaches,
        int(release["start_reach"]),
        float(release["start_measure_m"]),
        release["start_time"],
        mass_kg=float(release["mass_kg"]),
        duration_s=float(a.get("duration_s", 0.0)),
        decay_per_hour=float(a.get("decay_per_hour", 0.0)),
        substance=str(a.get("substance", "")),
        flow_ratio=float(a.get("flow_ratio", 1.0)),
        times=pd.DatetimeIndex([when]),
        sites=points,
    )
    # the plume's own extent (a simulation bounded by max_km ends there)
    reach_end = float(plume["reach_distance_km"].max()) if plume.sizes.get("reach") else -np.inf
    inside = ds["site_distance_km"].to_numpy() <= reach_end + 1e-6
    index = ds["site"].to_numpy().astype(int)[inside]
    conc = np.full(len(profile), np.nan)
    conc[index] = ds["site_concentration"].to_numpy()[inside, 0]
    peak = pd.Series(pd.NaT, index=profile.index, dtype="datetime64[ns, UTC]")
    peak.iloc[index] = pd.to_datetime(ds["site_peak_time"].to_numpy()[inside], utc=True)
    return profile.assign(concentration_mg_l=conc, peak_time=peak)


def river_profile(
    model: Model,
    x: float,
    y: float,
    *,
    crs: Any = "EPSG:4326",
    samples: int = 200,
    flow_ratio: float = 1.0,
    plume: xr.Dataset | None = None,
    at: Any = None,
) -> pd.DataFrame:
    """The longitudinal profile of the river from a point down to the outlet.

    The point is snapped to the river it drains to (:meth:`twin.model.model.Model.locate`);
    the profile follows the main stem below it (:meth:`twin.model.model.Model.downstream`).

    Parameters
    ----------
    basin:
        The twin.
    x, y, crs:
        The start (default longitude/latitude).
    samples:
        Number of points, evenly spaced from the start to the outlet.
    flow_ratio:
        Discharge over mean annual discharge, for the path's travel times.
    plume, at:
        A :func:`twin.analysis.plume.simulate` Dataset and a time (with zone): adds the
        concentration of its release at that time (see :func:`assign_concentration`).

    Returns
    -------
    pandas.DataFrame
        As :func:`sample_river` (``distance_km``, ``reach_id``, ``measure_m``, ``x``, ``y``,
        ``lon``, ``lat``, ``elevation_m``, ``conditioned_elevation_m``), plus
        ``concentration_mg_l`` and ``peak_time`` with a plume.

    Raises
    ------
    OutsideBasinError, SnapError
        The point is off the basin or far from any river.
    ProfileError
        A plume without a time, a time without zone, a bad number of samples.

    Examples
    --------
    >>> df = river_profile(model, 3.7721, 44.1623)                               # doctest: +SKIP
    >>> df = river_profile(model, 3.7721, 44.1623, plume=ds, at="2026-09-03T10:00Z")  # doctest: +SKIP
    """
    if plume is not None and at is None:
        raise ProfileError("a plume's concentration is taken at a time: give at= as well")
    _check_samples(samples)
    start = model.locate(x, y, crs)
    path, _, _ = model.downstream(x, y, crs, flow_ratio=flow_ratio)
    profile = sample_river(model, start, path, samples)
    if plume is not None:
        profile = assign_concentration(profile, model.network.reaches, plume, at)
    return profile
