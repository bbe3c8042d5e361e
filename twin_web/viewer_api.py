"""What the map viewer needs beyond the features and slices: its set-up, the slider's times, a plume over time.

Routes (blueprint ``viewer_api``, under ``/api/viewer``)::

    /api/viewer/           the viewer's set-up: title, extent, tile layers, jurisdiction levels,
                           the parameters read at the stations (count, first and last time),
                           the parameter and time to open on, whether the readings are simulated,
                           and what the user may read (``may``: the actions of their role)
    /api/viewer/times      every time a parameter was read at the stations (the time slider's
                           stops), with that parameter's warning periods the user may see
                           (``warnings`` is absent when their role may not read warnings)
    /api/viewer/plume      a release's plume along the river at many times: concentration at
                           points sampled along the path downstream, one row per time

Times in and out are ISO 8601 (UTC out); coordinates WGS 84. A bad or missing
parameter is a 400 naming it (:mod:`twin_web.params`), as in :mod:`twin_web.slices`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import pandas as pd
from flask import current_app, url_for
from flask_openapi3 import APIBlueprint

from twin.ops.parameters import PARAMETERS
from twin_web import params, schemas
from twin_web.auth import scope
from twin_web.collections import episodes
from twin_web.errors import ParameterError
from twin_web.openapi import responds, tag
from twin_web.slices import NoQuery, Parameter
from twin_web.state import TwinState
from twin_web.tiles import LAYERS

if TYPE_CHECKING:
    from twin.basin import BasinTwin

bp = APIBlueprint("viewer_api", __name__, url_prefix="/api/viewer")

#: points sampled along the river for a plume (default, most)
PLUME_SAMPLES, MAX_PLUME_SAMPLES = 200, 2000
#: time steps of a plume: the default step spreads the plume's passage over about this many; the most
PLUME_STEPS, MAX_PLUME_STEPS = 200, 2000
#: concentrations below this (mg/L) are sent as 0: a plume's far tails, which no one can measure
PLUME_FLOOR_MG_L = 1e-6


def state() -> TwinState:
    return current_app.extensions["twin"]


class TimesQuery(params.Query):
    parameter: Parameter


class PlumeQuery(params.Query):
    lon: params.Lon
    lat: params.Lat
    release_at: Annotated[pd.Timestamp, params.Time("When the release starts")]
    mass_kg: Annotated[float, params.Number("Mass released (kg)", lo=0, lo_open=True, hi=1e9)]
    parameter: Annotated[str, params.Parameter("The released substance's parameter (default NH3-N)")] = "NH3-N"
    duration_h: params.DurationH = 0.0
    decay_per_hour: params.DecayPerHour = 0.0
    flow_ratio: params.FlowRatio = 1.0
    samples: Annotated[int, params.Integer("Points along the river", lo=2, hi=MAX_PLUME_SAMPLES)] = PLUME_SAMPLES
    step_minutes: Annotated[
        float | None,
        params.Number(
            f"Minutes between the plume's times (default: its passage in about {PLUME_STEPS} steps)", lo=1, hi=24 * 60
        ),
    ] = None


def _station_ids(basin: BasinTwin) -> list[str]:
    return [str(s) for s in basin.sites.loc[basin.sites["kind"] == "station", "id"]]


def reading_summary(st: TwinState) -> pd.DataFrame:
    """:func:`twin.analysis.slices.reading_summary` of the twin's stations, cached per state of the store."""
    from twin.analysis.slices import reading_summary as summary

    key = (st.manifest_hash, st.fingerprint())
    return st.memo("viewer:readings", key, lambda: summary(st.store, _station_ids(st.basin)))


@bp.get("/", operation_id="getViewerSetup", tags=tag("Viewer"), responses=responds(schemas.ViewerConfig, 400, 500))
def config(query: NoQuery) -> Any:
    """The viewer's set-up: extent, tile layers, levels, the parameters read and the time to open on."""
    from twin.analysis import quality
    from twin.analysis.history import parameter_to_show

    st = state()
    m = st.manifest
    summary = m.get("summary", {})
    west, south, east, north = summary.get("bounds_wgs84") or [-180.0, -85.0, 180.0, 85.0]
    readings = reading_summary(st)
    rule = scope()
    seen = rule.warnings(episodes(st)) if rule.may("warnings.read") else pd.DataFrame()  # only those they may see
    default = parameter_to_show(readings["parameter"].tolist(), seen, quality.parameters())
    rows = readings.to_dict("records")
    last = next((pd.Timestamp(r["last"]).isoformat() for r in rows if r["parameter"] == default), None)
    return {
        "title": m.get("title") or m.get("name"),
        "name": m.get("name"),
        "bounds": [west, south, east, north],
        "center": [(west + east) / 2, (south + north) / 2],
        "elevation_m": summary.get("elevation_m"),
        "levels": list(st.basin.jurisdictions.levels),
        "tiles": {
            name: {"title": layer.title, "tilejson": url_for("tiles.layer_tilejson", layer=name)}
            for name, layer in LAYERS.items()
        },
        "parameters": [
            {
                "id": str(r["parameter"]),
                "long_name": PARAMETERS[str(r["parameter"])].long_name,
                "name_zh": PARAMETERS[str(r["parameter"])].name_zh,
                "unit": PARAMETERS[str(r["parameter"])].unit,
                "classified": r["parameter"] in quality.parameters(),
                "readings": int(r["count"]),
                "first": pd.Timestamp(r["first"]).isoformat(),
                "last": pd.Timestamp(r["last"]).isoformat(),
            }
            for r in rows
        ],
        "default": {"parameter": default, "at": last},
        "simulated": bool(readings["simulated"].any()),
        "may": scope().permissions(),  # what the page may ask for, so it can say "not permitted"
        "class_source": quality.SOURCE,
        "units": {"time": "UTC", "bounds": "WGS 84 degrees", "elevation_m": "m"},
    }


@bp.get("/times", operation_id="getReadingTimes", tags=tag("Viewer"), responses=responds(schemas.ViewerTimes, 400, 500))
def times(query: TimesQuery) -> Any:
    """Every time a parameter was read at the stations (the time slider's stops), with its warning periods."""
    from twin.analysis.history import periods
    from twin.analysis.slices import reading_times

    p = query.parameter
    st = state()

    def compute() -> list[str]:
        return [t.isoformat() for t in reading_times(st.store, _station_ids(st.basin), p)]

    stops = st.memo(f"viewer:times:{p}", (st.manifest_hash, st.fingerprint()), compute)
    out: dict[str, Any] = {"parameter": p, "units": {"time": "UTC"}, "time": stops}
    rule = scope()
    if not rule.may("warnings.read"):
        return out
    out["warnings"] = [
        {
            "id": e["id"],
            "station": e["station"],
            "level": int(e["level"]),
            "level_name": e["level_name"],
            "start": pd.Timestamp(e["start"]).isoformat(),
            "end": None if pd.isna(e["end"]) else pd.Timestamp(e["end"]).isoformat(),
        }
        for e in periods(rule.warnings(episodes(st)), parameter=p).to_dict("records")
    ]
    return out


# -- a plume over time ---------------------------------------------------------------------------


def _samples(basin: BasinTwin, lon: float, lat: float, n: int, flow_ratio: float) -> tuple[Any, pd.DataFrame]:
    """The release point snapped to its river, and ``n`` points evenly along the path to the outlet.

    The points: ``id`` (their order), ``reach_id``, ``measure_m`` (on the reach), ``distance_km``
    from the release, ``lon``, ``lat``.
    """
    from twin.analysis.profiles import ProfileError, sample_river
    from twin.errors import OutsideBasinError, SnapError

    params.near(lon, lat, state().manifest.get("summary", {}).get("bounds_wgs84"))
    try:
        start = basin.locate(lon, lat)
        path, _, _ = basin.downstream(lon, lat, flow_ratio=flow_ratio)
        river = sample_river(basin.model, start, path, n)
    except (OutsideBasinError, SnapError, ProfileError) as err:
        raise ParameterError("lon,lat", str(err)) from None
    points = river[["reach_id", "measure_m", "distance_km", "lon", "lat"]].copy()
    points.insert(0, "id", [str(i) for i in range(n)])
    return start, points


def _rounded(values: np.ndarray) -> list[float | None]:
    """Four significant digits, the far tails as 0, NaN as null (a plume's values span ten decades)."""
    out: list[float | None] = []
    for v in np.asarray(values, dtype=float).tolist():
        if not math.isfinite(v):
            out.append(None)
        elif abs(v) < PLUME_FLOOR_MG_L:
            out.append(0.0)
        else:
            out.append(float(f"{v:.4g}"))
    return out


@bp.get(
    "/plume",
    endpoint="plume_over_time",
    operation_id="getPlumeOverTime",
    tags=tag("Viewer"),
    responses=responds(schemas.PlumeOverTime, 400, 500),
)
def plume(query: PlumeQuery) -> Any:
    """A release's plume along the river downstream: concentration at sampled points, one row per time."""
    from twin.analysis import quality
    from twin.analysis.slices import SliceError, plume_over_time

    lon, lat, release_at, mass, p = query.lon, query.lat, query.release_at, query.mass_kg, query.parameter
    duration_h, decay, flow_ratio = query.duration_h, query.decay_per_hour, query.flow_ratio
    n, step = query.samples, query.step_minutes
    basin = state().basin
    start, points = _samples(basin, lon, lat, n, flow_ratio)
    try:
        ds = plume_over_time(
            basin.network.reaches,
            start,
            points,
            release_at,
            mass_kg=mass,
            parameter=p,
            duration_h=duration_h,
            decay_per_hour=decay,
            flow_ratio=flow_ratio,
            step_minutes=step,
            steps=PLUME_STEPS,
            max_steps=MAX_PLUME_STEPS,
        )
    except SliceError as err:
        raise ParameterError("step_minutes", str(err)) from None
    conc = ds["concentration_mg_l"].to_numpy()
    stamps = pd.DatetimeIndex(ds["time"].to_numpy()).tz_localize("UTC")
    return {
        "start": {
            "lon": lon,
            "lat": lat,
            "reach_id": start.reach_id,
            "snap_distance_m": round(start.snap_distance_m, 1),
        },
        "release": {
            "release_at": release_at.isoformat(),
            "mass_kg": mass,
            "parameter": p,
            "duration_h": duration_h,
            "decay_per_hour": decay,
            "flow_ratio": flow_ratio,
        },
        "units": {
            "concentration": "mg/L",
            "distance": "km",
            "time": "UTC",
            "step_minutes": "min",
        },
        "model": {k: ds.attrs[k] for k in ("velocity", "dispersion")},
        "step_minutes": ds.attrs["step_minutes"],
        "time": [t.isoformat() for t in stamps],
        "lon": [round(float(v), 6) for v in points["lon"]],
        "lat": [round(float(v), 6) for v in points["lat"]],
        "distance_km": [round(float(v), 4) for v in points["distance_km"]],
        "reach_id": [int(r) for r in points["reach_id"]],
        "concentration_mg_l": [_rounded(row) for row in conc],
        "peak_mg_l": _rounded(ds["peak_mg_l"].to_numpy()),
        "classified": p in quality.parameters(),
        "class_bands": quality.class_bands(p, "river"),
    }
