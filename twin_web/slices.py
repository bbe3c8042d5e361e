"""Slices: the twin cut at a time, along a line, along a river; a station's series; traces (JSON with units).

Routes (blueprint ``slices``, under ``/api/slices``)::

    /api/slices/                        what slices there are
    /api/slices/time                    every station at a time: value, GB 3838 class, warning level
    /api/slices/profile                 terrain profile along a line, sampled from the DEM
    /api/slices/river                   longitudinal profile from a point to the outlet (elevation,
                                        and the concentration of a release at a time)
    /api/slices/stations/<station>      a station's series with GB 3838 class bands and warning periods
    /api/slices/downstream              downstream report and plume of a release
    /api/slices/upstream                candidate sources of an anomaly at a station

Each route is declared once: its query parameters as a :class:`twin_web.params.Query`
model, its answer as a model of :mod:`twin_web.schemas`; the OpenAPI document shows both.
The analyses are :mod:`twin.analysis` functions (slices, crossings, history, profiles,
impact, tracing); a view parses, calls them and serialises.

Coordinates in and out are WGS 84 longitude/latitude; times ISO 8601 with a
zone (UTC out), within :data:`twin_web.params.EARLIEST` .. now + :data:`twin_web.params.AHEAD`.
Every response says its units. A bad or missing parameter is a 400 whose ``parameter``
names it; an unknown station in the path is a 404.

A station's series gives at most ``limit`` readings (default and most :data:`MAX_SERIES`),
the first ones of the window; when there are more, ``next`` is the link to the following
page. Warning fields (a time slice's ``warning_level`` and ``warning``, a series'
``warnings``) are present only for the stations whose warnings the user may see
(:class:`twin.access.Scope`): absent means not permitted, not "no warning".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import pandas as pd
from flask import current_app, request, url_for
from flask_openapi3 import APIBlueprint
from pydantic import Field, model_validator
from pyproj import Transformer

from twin.analysis import quality
from twin.ops.parameters import PARAMETERS
from twin_web import params, schemas
from twin_web.auth import scope
from twin_web.collections import episodes
from twin_web.errors import NotFoundError, ParameterError
from twin_web.openapi import responds, tag
from twin_web.state import TwinState

if TYPE_CHECKING:
    from twin.basin import BasinTwin
    from twin.model.network import Location

bp = APIBlueprint("slices", __name__, url_prefix="/api/slices")

MAX_SAMPLES = 5000
MAX_VERTICES = 500
#: readings of a station series per request (its ``limit``); past it, the answer's ``next`` link pages on
MAX_SERIES = 10_000


def state() -> TwinState:
    return current_app.extensions["twin"]


def _to_wgs84(basin: BasinTwin) -> Transformer:
    return Transformer.from_crs(basin.crs, "EPSG:4326", always_xy=True)


def _locate(basin: BasinTwin, lon: float, lat: float) -> Location:
    """The point snapped to its river; off the basin or far from any river is a bad ``lon,lat``."""
    from twin.errors import OutsideBasinError, SnapError

    params.near(lon, lat, state().manifest.get("summary", {}).get("bounds_wgs84"))
    try:
        return basin.locate(lon, lat)
    except (OutsideBasinError, SnapError) as err:
        raise ParameterError("lon,lat", str(err)) from None


def _round(values: Any, digits: int) -> list[float | None]:
    return [None if not np.isfinite(v) else round(float(v), digits) for v in np.asarray(values, dtype=float)]


def _site(basin: BasinTwin, station: str, name: str = "station", path: bool = False) -> pd.Series:
    sites = basin.sites.set_index("id", drop=False)
    if station not in sites.index:
        message = f"no station {station[:60]!r}; stations: {', '.join(map(str, sites['id']))}"
        if path:
            raise NotFoundError(message, parameter=name)
        raise ParameterError(name, message)
    return sites.loc[station]


# -- the parameters ------------------------------------------------------------------------------


def _line(args: Mapping[str, str], name: str = "line") -> list[tuple[float, float]]:
    raw = params.text(args, "line", required=True)
    assert raw is not None
    parts = raw.split(",")
    if len(parts) < 4 or len(parts) % 2:
        raise ParameterError("line", "give at least two points as lon,lat,lon,lat,...")
    values = []
    for v in parts:
        x = params.number({"line": v.strip()}, "line")
        assert x is not None
        values.append(x)
    pts = list(zip(values[0::2], values[1::2]))
    if len(pts) > MAX_VERTICES:
        raise ParameterError("line", f"{len(pts)} points; at most {MAX_VERTICES}")
    if not all(-180 <= x <= 180 and -90 <= y <= 90 for x, y in pts):
        raise ParameterError("line", "longitudes must lie in -180..180 and latitudes in -90..90")
    return pts


At = Annotated[pd.Timestamp, params.Time("A time with its zone")]
Parameter = Annotated[str, params.Parameter("A water-quality parameter")]
Released = Annotated[str, params.Parameter("The released substance's parameter (default NH3-N)")]
#: what a release's mass is required with, on the river slice
RELEASE_PARTS = ("release_at", "at", "parameter", "duration_h", "decay_per_hour")
KG = " (the mass released, kg)"


class NoQuery(params.Query):
    """No query parameter."""


class TimeQuery(params.Query):
    at: At
    parameter: Parameter
    max_age_hours: Annotated[
        float, params.Number("Oldest reading used, hours before at", lo=0, lo_open=True, hi=24 * 366)
    ] = 24.0


class ProfileQuery(params.Query):
    line: Annotated[
        list[tuple[float, float]],
        params.Custom(
            "The line's points lon,lat,lon,lat,... (WGS 84)",
            _line,
            type="array",
            items={"type": "number"},
            minItems=4,
            maxItems=2 * MAX_VERTICES,
        ),
    ]
    samples: Annotated[int, params.Integer("Samples along the line", lo=2, hi=MAX_SAMPLES)] = 256


class RiverQuery(params.Query):
    """A river's profile; with ``mass_kg``, a release's concentration along it at a time."""

    lon: params.Lon
    lat: params.Lat
    samples: Annotated[int, params.Integer("Points along the river", lo=2, hi=MAX_SAMPLES)] = 200
    mass_kg: Annotated[
        float | None,
        params.Number(
            "Mass released (kg); with it, the concentration at `at`",
            lo=0,
            lo_open=True,
            hi=1e9,
            required_with=RELEASE_PARTS,
            why=KG,
        ),
    ] = None
    parameter: Released = "NH3-N"
    duration_h: params.DurationH = 0.0
    decay_per_hour: params.DecayPerHour = 0.0
    flow_ratio: params.FlowRatio = 1.0
    release_at: Annotated[
        pd.Timestamp | None, params.Time("When the release starts (with mass_kg)", required_if="mass_kg")
    ] = None
    at: Annotated[
        pd.Timestamp | None,
        params.Time("When to show the release's concentration (with mass_kg)", required_if="mass_kg"),
    ] = None


class SeriesQuery(params.Query):
    parameter: Parameter
    start: Annotated[pd.Timestamp | None, params.Time("Start of the window")] = None
    end: Annotated[pd.Timestamp | None, params.Time("End of the window")] = None
    limit: Annotated[
        int,
        params.Integer(
            f"Readings per page (the first of the window); at most {MAX_SERIES}. The answer's `next` link pages on",
            lo=1,
            hi=MAX_SERIES,
        ),
    ] = MAX_SERIES

    @model_validator(mode="after")
    def _ordered(self) -> SeriesQuery:
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ParameterError("end", f"{self.end.isoformat()} is before start {self.start.isoformat()}")
        return self


class StationPath(params.Path):
    station_id: Annotated[str, params.Text("A station (site id)")] = Field(alias="stationId")


class DownstreamQuery(params.Query):
    lon: params.Lon
    lat: params.Lat
    at: Annotated[pd.Timestamp, params.Time("When the release starts")]
    mass_kg: Annotated[float, params.Number("Mass released (kg)", lo=0, lo_open=True, hi=1e9, why=KG)]
    parameter: Released = "NH3-N"
    duration_h: params.DurationH = 0.0
    decay_per_hour: params.DecayPerHour = 0.0
    flow_ratio: params.FlowRatio = 1.0


class UpstreamQuery(params.Query):
    station: Annotated[str, params.Text("The station where the anomaly was measured")]
    parameter: Parameter
    at: At
    window_hours: Annotated[float, params.Number("Travel-time window upstream (h)", lo=0, lo_open=True, hi=24 * 14)] = (
        48.0
    )
    flow_ratio: params.FlowRatio = 1.0
    top: Annotated[int, params.Integer("Candidates returned", lo=1, hi=100)] = 10


# -- index --------------------------------------------------------------------------------------

SLICES = {
    "time": ("every station at a time: value, GB 3838 class and warning level", "at, parameter[, max_age_hours]"),
    "profile": ("terrain profile along a line", "line=lon,lat,lon,lat,...[, samples]"),
    "river": (
        "longitudinal profile from a point to the outlet, with a release's concentration at a time",
        "lon, lat[, samples][, mass_kg, release_at, at, parameter, duration_h, decay_per_hour, flow_ratio]",
    ),
    "stations/<station>": (
        f"a station's series with class bands and warning periods, at most {MAX_SERIES} readings a page",
        "parameter[, start, end, limit]",
    ),
    "downstream": (
        "downstream report and plume of a release",
        "lon, lat, at, mass_kg[, parameter, duration_h, decay_per_hour, flow_ratio]",
    ),
    "upstream": (
        "candidate sources of an anomaly at a station",
        "station, parameter, at[, window_hours, flow_ratio, top]",
    ),
}


@bp.get("/", operation_id="getSlices", tags=tag("Slices"), responses=responds(schemas.Slices, 400, 500))
def index(query: NoQuery) -> Any:
    """The slices and their parameters."""
    root = url_for("slices.index", _external=True)
    return {
        "slices": [
            {"name": name, "href": root + name, "description": d, "parameters": p} for name, (d, p) in SLICES.items()
        ]
    }


# -- the twin at a time -------------------------------------------------------------------------


@bp.get("/time", operation_id="getTimeSlice", tags=tag("Slices"), responses=responds(schemas.TimeSlice, 400, 500))
def at_time(query: TimeQuery) -> Any:
    """Every station at a time: value, GB 3838 class and warning level for a parameter."""
    from twin.analysis.slices import state_at

    at, p, age = query.at, query.parameter, query.max_age_hours
    st = state()
    rule = scope()
    seen = rule.warnings(episodes(st)) if rule.may("warnings.read") else pd.DataFrame()  # only those they may see
    now = state_at(st.basin.sites, st.store, p, at, max_age_hours=age, episodes=seen)
    out = [
        rule.slice_row(
            {
                "id": s["id"],
                "name": s["name"],
                "lon": round(float(s["lon"]), 6),
                "lat": round(float(s["lat"]), 6),
                "water_body": s["water_body"],
                "target_class": int(s["target_class"]),
                "time": None if pd.isna(s["time"]) else s["time"].isoformat(),
                "value": None if not np.isfinite(s["value"]) else float(s["value"]),
                "class": int(s["class"]) or None,
                "label": s["label"],
                "exceeds": bool(s["exceeds"]),
                "warning_level": int(s["warning_level"]),
                "warning": s["warning"],
            }
        )
        for s in now.drop(columns="geometry").to_dict("records")
    ]
    return {
        "at": at.isoformat(),
        "parameter": p,
        "units": {"value": PARAMETERS[p].unit, "time": "UTC"},
        "max_age_hours": age,
        "classified": p in quality.parameters(),
        "stations": out,
    }


# -- along a line -------------------------------------------------------------------------------


@bp.get("/profile", operation_id="getProfile", tags=tag("Slices"), responses=responds(schemas.TerrainProfile, 400, 500))
def profile(query: ProfileQuery) -> Any:
    """Terrain profile along a line, from the DEM.

    ``line`` is one comma-separated list of numbers (an array in the form style, not exploded).
    """
    pts, n = query.line, query.samples
    from twin.analysis.profiles import ProfileError, terrain_profile

    try:
        df = terrain_profile(state().basin.terrain, pts, samples=n)
    except ProfileError as err:
        raise ParameterError("line", str(err)) from None
    return {
        "line": [[x, y] for x, y in pts],
        "units": {"distance": "m", "elevation": "m", "coordinates": "WGS 84 degrees"},
        "length_m": round(float(df["distance_m"].iloc[-1]), 2),
        "source": "measured DEM of the twin (nearest cell); null outside the data",
        "distance_m": _round(df["distance_m"], 2),
        "elevation_m": _round(df["elevation_m"], 2),
        "lon": _round(df["lon"], 6),
        "lat": _round(df["lat"], 6),
    }


# -- along a river ------------------------------------------------------------------------------


@bp.get(
    "/river", operation_id="getRiverProfile", tags=tag("Slices"), responses=responds(schemas.RiverProfile, 400, 500)
)
def river(query: RiverQuery) -> Any:
    """Longitudinal profile from a point to the outlet: elevation, and a release's concentration at a time."""
    from twin.analysis import profiles
    from twin.analysis.slices import river_at

    lon0, lat0, n, flow_ratio = query.lon, query.lat, query.samples, query.flow_ratio
    release_at, at = query.release_at, query.at
    release: dict[str, Any] | None = None
    if query.mass_kg is not None:
        release = {
            "mass_kg": query.mass_kg,
            "parameter": query.parameter,
            "duration_s": query.duration_h * 3600.0,
            "decay_per_hour": query.decay_per_hour,
            "flow_ratio": flow_ratio,
        }
    basin = state().basin
    start = _locate(basin, lon0, lat0)
    path, sections, sites = basin.downstream(lon0, lat0, flow_ratio=flow_ratio)
    df = profiles.sample_river(basin.model, start, path, n)
    total_km = float(df["distance_km"].iloc[-1])
    out: dict[str, Any] = {
        "start": {
            "lon": lon0,
            "lat": lat0,
            "reach_id": start.reach_id,
            "snap_distance_m": round(start.snap_distance_m, 1),
        },
        "units": {
            "distance": "km",
            "elevation": "m",
            "concentration": "mg/L",
            "hours": "h after a release at the start",
        },
        "length_km": round(total_km, 3),
        "flow_ratio": flow_ratio,
        "distance_km": _round(df["distance_km"], 4),
        "reach_id": [int(r) for r in df["reach_id"]],
        "lon": _round(df["lon"], 6),
        "lat": _round(df["lat"], 6),
        "elevation_m": _round(df["elevation_m"], 2),
        "conditioned_elevation_m": _round(df["conditioned_elevation_m"], 2),
        "sections": [
            {
                "section_id": int(s.section_id),
                "level": s.level,
                "from": s.from_name,
                "to": s.to_name,
                "distance_km": round(float(s.distance_km), 3),
                "peak_h": round(float(s.peak_h), 2),
            }
            for s in sections.itertuples()
        ],
        "sites": [
            {
                "id": s.id,
                "name": s.name,
                "kind": s.kind,
                "distance_km": round(float(s.distance_km), 3),
                "peak_h": round(float(s.peak_h), 2),
            }
            for s in sites.itertuples()
        ],
    }
    if release is not None:
        assert release_at is not None and at is not None
        df = river_at(
            df,
            basin.network.reaches,
            start,
            release_at,
            at,
            mass_kg=release["mass_kg"],
            parameter=release["parameter"],
            duration_h=query.duration_h,
            decay_per_hour=release["decay_per_hour"],
            flow_ratio=flow_ratio,
        )
        out["release"] = {
            **release,
            "release_at": release_at.isoformat(),
            "at": at.isoformat(),
            "units": {"mass_kg": "kg", "duration_s": "s", "decay_per_hour": "1/h", "value": "mg/L"},
        }
        out["concentration_mg_l"] = _round(df["concentration_mg_l"], 9)
        out["peak_time"] = [None if pd.isna(t) else t.isoformat() for t in df["peak_time"]]
    return out


# -- a station's series -------------------------------------------------------------------------


@bp.get(
    "/stations/<stationId>",
    operation_id="getStationSeries",
    tags=tag("Slices"),
    responses=responds(schemas.StationSeries, 400, 404, 500),
)
def station_series(path: StationPath, query: SeriesQuery) -> Any:
    """A station's series of a parameter with its GB 3838 class bands and warning periods.

    The warning periods are those the user may see (``warnings`` is absent otherwise); at
    most ``limit`` readings, the first of the window, and a ``next`` link when there are more.
    """
    from twin.ops import readings

    st = state()
    station_id = path.station_id
    site = _site(st.basin, station_id, "station", path=True)
    p, start, end, limit = query.parameter, query.start, query.end, query.limit
    rows = readings.query(st.store, [station_id], [p], start, end, usable_only=True, limit=limit + 1)
    more = len(rows) > limit
    rows = rows.iloc[:limit]
    wb = str(site.get("water_body") or "river")
    values = rows["value"].to_numpy(dtype=float)
    klass = quality.classify_values(p, values, wb) if p in quality.parameters() else np.zeros(len(values), "int8")
    out: dict[str, Any] = {
        "station": {
            "id": station_id,
            "name": site["name"],
            "kind": site["kind"],
            "water_body": wb,
            "target_class": int(site["target_class"]) if pd.notna(site.get("target_class")) else None,
        },
        "parameter": p,
        "units": {"value": PARAMETERS[p].unit, "time": "UTC"},
        "long_name": PARAMETERS[p].long_name,
        "time": [t.isoformat() for t in rows["time"]],
        "value": _round(values, 6),
        "flag": rows["flag"].astype(str).tolist(),
        "class": [int(c) or None for c in klass],
        "class_bands": quality.class_bands(p, "river" if wb == "river" else "lake"),
        "class_source": quality.SOURCE,
        "limit": limit,
    }
    if more:  # the next page starts one second after this one's last reading (times are whole seconds)
        following = (rows["time"].iloc[-1] + pd.Timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        query_args = {k: v for k, v in request.args.items() if k != "start"} | {"start": following}
        out["next"] = url_for("slices.station_series", stationId=station_id, _external=True, **query_args)
    if scope().sees_warnings_at(station_id):  # absent, not empty, when the user may not see them
        out["warnings"] = _periods(st, station_id, p, start, end)
    return out


def _periods(st: TwinState, station_id: str, p: str, start: Any, end: Any) -> list[dict[str, Any]]:
    """The warning periods of a station and parameter that overlap [start, end]."""
    from twin.analysis.history import periods

    return [
        {
            "id": e["id"],
            "level": int(e["level"]),
            "level_name": e["level_name"],
            "start": pd.Timestamp(e["start"]).isoformat(),
            "end": None if pd.isna(e["end"]) else pd.Timestamp(e["end"]).isoformat(),
            "end_reason": e["end_reason"],
            "peak_value": float(e["peak_value"]),
            "rule": e["rule"],
            "changes": [[pd.Timestamp(t).isoformat(), int(lv), r] for t, lv, r in e["changes"]],
        }
        for e in periods(episodes(st), station=station_id, parameter=p, start=start, end=end).to_dict("records")
    ]


# -- downstream and upstream --------------------------------------------------------------------


def _features(gdf: Any) -> list[dict[str, Any]]:
    import json

    if gdf.empty:
        return []
    return json.loads(gdf.to_crs("EPSG:4326").to_json(na="null", drop_id=True))["features"]


@bp.get(
    "/downstream",
    operation_id="getDownstreamReport",
    tags=tag("Slices"),
    responses=responds(schemas.DownstreamReport, 400, 500),
)
def downstream(query: DownstreamQuery) -> Any:
    """Downstream report and plume of a release: who is reached, when, how badly."""
    from twin.analysis.impact import downstream_report

    lon, lat, at = query.lon, query.lat, query.at
    release: dict[str, Any] = {
        "mass_kg": query.mass_kg,
        "parameter": query.parameter,
        "duration_s": query.duration_h * 3600.0,
        "decay_per_hour": query.decay_per_hour,
        "flow_ratio": query.flow_ratio,
    }
    basin = state().basin
    _locate(basin, lon, lat)
    report = downstream_report(
        basin.model,
        lon,
        lat,
        at,
        release["mass_kg"],
        release["parameter"],
        duration_s=release["duration_s"],
        decay_per_hour=release["decay_per_hour"],
        flow_ratio=release["flow_ratio"],
    )
    ds = report["plume"]
    peak_by_reach = dict(zip(ds["reach"].to_numpy().tolist(), ds["reach_peak_concentration"].to_numpy().tolist()))
    path, _, _ = basin.downstream(lon, lat, flow_ratio=release["flow_ratio"])
    path = path[["reach_id", "from_km", "to_km", "earliest_h", "peak_h", "geometry"]].copy()
    path["peak_mg_l"] = [peak_by_reach.get(int(r)) for r in path["reach_id"]]

    def times(name: str) -> list[str]:
        return [t.isoformat() for t in pd.to_datetime(ds[name].to_numpy(), utc=True)]

    return {
        "release": report["release"],
        "units": {"distance_km": "km", "peak_mg_l": "mg/L", "times": "UTC", "discharge_m3s": "m3/s"},
        "entries": report["entries"],
        "plume": {
            "reaches": {
                "reach_id": [int(r) for r in ds["reach"].to_numpy()],
                "distance_km": _round(ds["reach_distance_km"].to_numpy(), 3),
                "discharge_m3s": _round(ds["reach_discharge"].to_numpy(), 4),
                "peak_mg_l": _round(ds["reach_peak_concentration"].to_numpy(), 9),
                "leading_time": times("reach_leading_time"),
                "peak_time": times("reach_peak_time"),
                "trailing_time": times("reach_trailing_time"),
            },
            "sites": {
                "id": [str(s) for s in ds["site"].to_numpy()],
                "distance_km": _round(ds["site_distance_km"].to_numpy(), 3),
                "peak_mg_l": _round(ds["site_peak_concentration"].to_numpy(), 9),
                "peak_time": times("site_peak_time"),
            },
            "model": {k: ds.attrs[k] for k in ("velocity", "dispersion")},
        },
        "path": {"type": "FeatureCollection", "features": _features(path)},
    }


@bp.get(
    "/upstream",
    operation_id="getUpstreamTrace",
    tags=tag("Slices"),
    responses=responds(schemas.UpstreamTrace, 400, 500),
)
def upstream(query: UpstreamQuery) -> Any:
    """Candidate sources of an anomaly at a station, best first, with the units each release crosses."""
    from twin.analysis.crossings import place_candidates
    from twin.analysis.tracing import trace_upstream

    station_id, p, at = query.station, query.parameter, query.at
    window, flow_ratio, top = query.window_hours, query.flow_ratio, query.top
    st = state()
    basin = st.basin
    site = _site(basin, station_id)
    ranked = trace_upstream(basin.model, basin.store, station_id, p, at, window_hours=window, flow_ratio=flow_ratio, top=top)
    placed = place_candidates(ranked, basin.network, basin.jurisdictions, site, basin.crs)
    candidates = [
        c
        | {
            "lon": round(float(c["lon"]), 6),
            "lat": round(float(c["lat"]), 6),
            "release_time": pd.Timestamp(c["release_time"]).isoformat(),
        }
        for c in placed.to_dict("records")
    ]
    to_wgs = _to_wgs84(basin)
    sx, sy = site.geometry.x, site.geometry.y
    slon, slat = to_wgs.transform(sx, sy)
    return {
        "station": {
            "id": station_id,
            "name": site["name"],
            "lon": round(float(slon), 6),
            "lat": round(float(slat), 6),
            "jurisdictions": basin.jurisdictions.at(sx, sy),
        },
        "parameter": p,
        "at": at.isoformat(),
        "window_hours": window,
        "flow_ratio": flow_ratio,
        "units": {
            "mass_kg": "kg",
            "duration_h": "h",
            "score": "share of the observed excess explained (at most 1)",
            "times": "UTC",
        },
        "method": "each candidate upstream within the window tried as the source of a release "
        "(twin.analysis.tracing.trace_upstream); route: top-level units crossed from the candidate to the station",
        "candidates": candidates,
    }
