"""Training scenarios on the real basin: simulated readings and incidents with a known answer.

``twin scenario DIR NAME --seed N`` writes, into the twin's operations store,
background readings at every station (diurnal temperature and oxygen cycles,
noise, a few gaps; flag ``S`` = simulated) for the scenario's days, the
pollution a release causes at the stations downstream (:mod:`twin.analysis.plume`), and
the incident someone reports; the true answer (where, when, how much) is saved
beside it as ``scenarios/<name>-<seed>.json`` in the twin folder, for checking a
trainee's (or the tracer's) answer.

Scenarios (all illustrative, on the demo basin's real rivers):

``mine-leak``
    Arsenic, lead and cadmium from an old mine's drainage in Lozère, on the
    Gardon upstream of Saint-Étienne-Vallée-Française, reaching Gard.
``sand-mining``
    Illegal dredging on the Gardon d'Alès in Lozère, a few kilometres above the boundary:
    a burst of turbidity each working day (08:00-17:00 local), and the riverbed
    it leaves lowered, saved as a DEM difference (``sand-mining-<seed>-dem-difference.tif``:
    new minus old elevation, metres, on the twin's grid; 0 where unchanged).
``waste-dumping``
    Leachate (COD and ammonia) washed by rain out of an old dump on a tributary of
    the Gardon d'Alès near Le Collet-de-Dèze (Lozère), reaching Gard.
``cross-boundary-spill``
    An ammonia release upstream of the Lozère–Gard boundary on the Gardon d'Alès.

Release points are picked on the network by the scenario: a registered source
(the mine, the dump) upstream of the named station when the twin has one, else a
seeded point 2-12 km up the river, so they exist on any build of the demo twin.

Assumptions, named: discharge is the mean annual discharge throughout (the rain of
``waste-dumping`` washes the leachate out but its flood is not modelled); sediment
settles at a first-order rate and turbidity is suspended sediment / 1.5 (NTU per
mg/L; the ratio varies by river, 1-2 is typical); a burst is released at a steady
rate over its hours. The riverbed change is confined to the river cells within 250 m
of the dredging point.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from twin.analysis import plume
from twin.analysis.simulate import SIMULATED_FLAG
from twin.errors import TwinError
from twin.ops.incidents import Incidents
from twin.ops.parameters import PARAMETERS
from twin.ops.readings import store_rows

if TYPE_CHECKING:
    from twin.model.model import Model


class ScenarioError(TwinError, ValueError):
    """An unknown scenario, or a twin it cannot run on."""


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    above_station: str  # the release is picked upstream of this station
    releases: dict[str, float]  # parameter → kg per release (per burst)
    background: dict[str, tuple[float, float]]  # parameter → (level, noise sd), in the reading's unit
    incident_kind: str
    incident_at_station: str  # where the incident is reported (as the plume passes)
    source_kinds: tuple[str, ...] = ()  # registered sites the release comes from, when the twin has one
    tributaries: bool = False  # look for the registered source on tributaries too, not just the main river
    duration_h: float = 0.0  # each release lasts this long (0: instantaneous)
    bursts: int = 1  # releases on consecutive days
    work_hours: tuple[int, int] | None = None  # bursts start at this local hour (UTC+1 here) ...
    decay_per_hour: float = 0.0  # first-order loss (sediment settling)
    per_mg_l: dict[str, float] = field(default_factory=dict)  # reading per mg/L released (turbidity: NTU)
    riverbed: bool = False  # the release lowers the riverbed (a DEM difference is saved)
    departement: str | None = None  # an unregistered release is picked on reaches of this département


SCENARIOS = {
    "mine-leak": Scenario(
        "mine-leak",
        "arsenic and heavy metals from an old mine's drainage in Lozère reaching Gard",
        "GM-STETIENNE",
        {"As": 40.0, "Pb": 25.0, "Cd": 1.5},
        {"As": (0.002, 0.0003), "Pb": (0.002, 0.0003), "Cd": (0.0002, 0.00003)},
        "fish_kill",
        "GM-MIALET",
        ("mine",),
    ),
    "sand-mining": Scenario(
        "sand-mining",
        "turbidity bursts below illegal dredging on the Gardon d'Alès in Lozère, reaching Gard",
        "GA-STCECILE",
        {"turbidity": 12000.0},  # kg of fine sediment per working day
        {"turbidity": (4.0, 1.0)},
        "sand_mining",
        "GA-STCECILE",
        bursts=3,
        duration_h=9.0,
        work_hours=(8, 17),
        decay_per_hour=0.05,
        per_mg_l={"turbidity": 1 / 1.5},
        riverbed=True,
        departement="48",
    ),
    "waste-dumping": Scenario(
        "waste-dumping",
        "leachate washed by rain out of an old dump on a tributary in Lozère, reaching Gard",
        "GA-COLLET",
        {"COD": 3000.0, "NH3-N": 400.0},
        {"COD": (10.0, 1.0), "NH3-N": (0.1, 0.02)},
        "waste_dumping",
        "GA-STCECILE",
        ("dump",),
        tributaries=True,
        duration_h=6.0,
    ),
    "cross-boundary-spill": Scenario(
        "cross-boundary-spill",
        "an ammonia release upstream of the Lozère–Gard boundary on the Gardon d'Alès",
        "GA-COLLET",
        {"NH3-N": 300.0},
        {"NH3-N": (0.05, 0.01)},
        "spill",
        "GA-STCECILE",
    ),
}


def _background(
    station_ids: list[str], times: pd.DatetimeIndex, rng: np.random.Generator, extra: dict[str, tuple[float, float]]
) -> pd.DataFrame:
    hour = times.hour.to_numpy() / 24.0
    frames = []
    for sid in station_ids:
        temp = 19 + 2.0 * np.sin(2 * np.pi * (hour - 0.4)) + rng.normal(0, 0.2, len(times))
        do = (14.6 - 0.39 * temp + 0.007 * temp**2) * (0.95 + 0.04 * np.sin(2 * np.pi * (hour - 0.35)))
        series = {
            "water_temperature": temp,
            "DO": do + rng.normal(0, 0.1, len(times)),
            "pH": 7.8 + 0.1 * np.sin(2 * np.pi * (hour - 0.4)) + rng.normal(0, 0.03, len(times)),
        }
        for p, (level, sd) in extra.items():
            series[p] = np.abs(level + rng.normal(0, sd, len(times)))
        keep = rng.random(len(times)) > 0.03  # a few readings lost, as real stations lose them
        for p, v in series.items():
            frames.append(
                pd.DataFrame(
                    {
                        "station": sid,
                        "time": times[keep],
                        "parameter": p,
                        "value": np.round(v[keep], 6),
                        "unit": PARAMETERS[p].unit,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def release_signal(
    model: Model,
    reach: int,
    measure_m: float,
    release_at: pd.Timestamp | list[pd.Timestamp],
    releases: dict[str, float],
    times: pd.DatetimeIndex,
    *,
    duration_h: float = 0.0,
    decay_per_hour: float = 0.0,
    per_mg_l: dict[str, float] | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """What releases add at every station of the twin, and when the first one's peak passes each.

    ``release_at`` is one start time or several (the same release repeated, e.g. a
    burst each working day); each release puts ``releases[parameter]`` kg into the river
    over ``duration_h`` hours. Returns tidy rows (station, time, parameter, value: mg/L,
    times ``per_mg_l[parameter]`` when given; 0 at stations never reached) for every
    station, parameter released and time, and the peak arrival of the first release
    (ISO 8601, UTC) at each station downstream.
    """
    starts = [release_at] if isinstance(release_at, pd.Timestamp) else list(release_at)
    scale = per_mg_l or {}
    watch = model.sites[model.sites["kind"] == "station"][["id", "reach_id", "measure_m"]]
    frames, arrivals = [], {}
    for param, kg in releases.items():
        total = {str(sid): np.zeros(len(times)) for sid in watch["id"]}
        for n, at in enumerate(starts):
            ds = plume.simulate(
                model.network.reaches,
                reach,
                measure_m,
                at,
                mass_kg=kg,
                duration_s=duration_h * 3600.0,
                decay_per_hour=decay_per_hour,
                substance=param,
                sites=watch,
                times=times,
            )
            for k, sid in enumerate(ds["site"].values):
                total[str(sid)] += ds["site_concentration"].values[k] * scale.get(param, 1.0)
                if n == 0:
                    arrivals[str(sid)] = pd.Timestamp(ds["site_peak_time"].values[k].item(), tz="UTC").isoformat()
        for sid, conc in total.items():
            frames.append(pd.DataFrame({"station": sid, "time": times, "parameter": param, "value": np.round(conc, 6)}))
    return pd.concat(frames, ignore_index=True), arrivals


def _source(model: Model, sc: Scenario, rng: np.random.Generator) -> tuple[int, float]:
    """Where the scenario's release is: (reach id, measure in metres from the reach's upstream end)."""
    sites = model.sites.set_index("id", drop=False)
    if sc.above_station not in sites.index:
        raise ScenarioError(f"scenario {sc.name} needs station {sc.above_station} (the demo twin has it)")
    st = sites.loc[sc.above_station]
    loc = model.network.locate_cell(st.geometry.x, st.geometry.y, int(st["reach_id"]))
    if sc.source_kinds:
        up = model.network.upstream(loc, max_km=15, mainstem=not sc.tributaries)
        sources = model.sites[model.sites["kind"].isin(sc.source_kinds) & model.sites["reach_id"].isin(up["reach_id"])]
        if len(sources):  # a registered source above the station (the old mine, the dump): the release is there
            src = sources.iloc[int(rng.integers(len(sources)))]
            return int(src["reach_id"]), float(src["measure_m"])
    upstream = model.network.upstream(loc, max_km=12, mainstem=True)
    choices = upstream[(upstream["from_km"] > 2) & (upstream["reach_id"] != loc.reach_id)]
    if sc.departement is not None:
        choices = choices[choices["departement"].astype(str) == sc.departement]
    if choices.empty:
        where = f" in département {sc.departement}" if sc.departement else ""
        raise ScenarioError(f"no reach 2-12 km above {sc.above_station}{where} to release from")
    reach = int(choices.iloc[int(rng.integers(len(choices)))]["reach_id"])
    return reach, float(model.network.reaches.at[reach, "length_m"]) * float(rng.uniform(0.2, 0.8))


def _release_times(sc: Scenario, t_start: pd.Timestamp, rng: np.random.Generator) -> list[pd.Timestamp]:
    if sc.work_hours is None:
        first = t_start + pd.Timedelta(hours=float(rng.uniform(36, 60)))
    else:  # a working day's start, local time (UTC+1 in the Cévennes' winter; the scenario ignores summer time)
        first = t_start.normalize() + pd.Timedelta(days=int(rng.integers(1, 3)), hours=sc.work_hours[0] - 1)
    return [first + pd.Timedelta(days=d) for d in range(sc.bursts)]


def _riverbed(model: Model, reach: int, measure_m: float, rng: np.random.Generator, path: Path) -> dict:
    """Lower the river cells within 250 m of the dredging point by 1-3 m; save new − old as a GeoTIFF."""
    import rasterio

    grid = model.terrain.grid
    x, y = model.network.reaches.at[reach, "geometry"].interpolate(measure_m).coords[0]
    rows, cols = np.nonzero(model.drainage.reach == reach)
    xs, ys = grid.xy(rows, cols)
    near = np.hypot(xs - x, ys - y) <= 250.0
    if not near.any():  # a short reach: its cell nearest the point
        near[np.argmin(np.hypot(xs - x, ys - y))] = True
    diff = np.zeros(grid.shape, dtype="float32")
    diff[rows[near], cols[near]] = -rng.uniform(1.0, 3.0, int(near.sum()))
    profile = {
        "driver": "GTiff",
        "width": grid.shape[1],
        "height": grid.shape[0],
        "count": 1,
        "dtype": "float32",
        "crs": grid.crs.to_wkt(),
        "transform": grid.transform,
        "compress": "deflate",
        "predictor": 3,
    }
    path.parent.mkdir(exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with rasterio.open(partial, "w", **profile) as dst:
        dst.write(diff, 1)
        dst.update_tags(1, units="m", description="new minus old riverbed elevation (simulated dredging)")
    partial.replace(path)
    return {
        "dem_difference": path.name,
        "cells_changed": int(near.sum()),
        "volume_removed_m3": round(float(-diff.sum() * grid.cell_area), 1),
        "max_lowering_m": round(float(-diff.min()), 2),
    }


def run(
    model: Model,
    store: sa.Engine,
    name: str,
    seed: int = 0,
    start: Any = "2026-09-01T00:00Z",
    days: int = 6,
    folder: Path | None = None,
) -> dict:
    """Run a scenario on a model: readings and the incident go into ``store``; returns the true answer.

    ``folder`` is the twin folder: the true answer is written under its ``scenarios/`` (and a
    scenario that changes the riverbed needs it for its DEM difference).
    """
    if name not in SCENARIOS:
        raise ScenarioError(f"unknown scenario {name!r}; scenarios: {sorted(SCENARIOS)}")
    sc = SCENARIOS[name]
    rng = np.random.default_rng(seed)
    reach, measure = _source(model, sc, rng)
    t_start = pd.Timestamp(start).tz_convert("UTC")
    starts = _release_times(sc, t_start, rng)
    times = pd.date_range(t_start, t_start + pd.Timedelta(days=days), freq="2h", inclusive="left")
    if starts[-1] >= times[-1]:
        raise ScenarioError(f"scenario {name} needs more than {days} days; give --days {days + sc.bursts + 2}")
    stations = model.sites[model.sites["kind"] == "station"]
    rows = _background(stations["id"].tolist(), times, rng, sc.background)
    signal, arrivals = release_signal(
        model,
        reach,
        measure,
        starts,
        sc.releases,
        times,
        duration_h=sc.duration_h,
        decay_per_hour=sc.decay_per_hour,
        per_mg_l=sc.per_mg_l,
    )
    peaks = signal.groupby(["parameter", "station"])["value"].max()
    rows = rows.merge(signal, on=["station", "time", "parameter"], how="left", suffixes=("", "_release"))
    rows["value"] = rows["value"] + rows.pop("value_release").fillna(0.0)
    rows["flag"] = SIMULATED_FLAG
    rows["tz_offset_min"] = 0
    rows["line_no"] = np.arange(len(rows)) + 1
    folder = Path(folder) / "scenarios" if folder is not None else None
    riverbed = None
    if sc.riverbed:  # before the readings, so a failure here leaves the store as it was
        if folder is None:
            raise ScenarioError(f"scenario {name} saves a DEM difference: save the twin to a folder first")
        riverbed = _riverbed(model, reach, measure, rng, folder / f"{name}-{seed}-dem-difference.tif")
    report = store_rows(
        store,
        rows,
        pd.DataFrame(columns=["line_no", "raw", "reason"]),
        source=f"scenario {name} seed {seed}",
        fmt="scenario",
    )
    x, y = model.network.reaches.at[reach, "geometry"].interpolate(measure).coords[0]
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(model.crs, "EPSG:4326", always_xy=True).transform(x, y)
    seen = model.sites.set_index("id").loc[sc.incident_at_station]
    incident = Incidents(model, store).add(
        sc.incident_kind,
        arrivals.get(sc.incident_at_station, starts[0].isoformat()),
        (float(seen["lon"]), float(seen["lat"])),
        reporter="simulated (training scenario)",
        description=f"[SIMULATED] {sc.description}",
        case_id=f"SCENARIO-{name}-{seed}",
    )
    source: dict[str, Any] = {
        "reach_id": reach,
        "measure_m": round(measure, 1),
        "lon": round(lon, 6),
        "lat": round(lat, 6),
        "time": starts[0].isoformat(),
        "mass_kg": sc.releases,
        "duration_h": sc.duration_h,
    }
    if sc.bursts > 1:
        source["times"] = [t.isoformat() for t in starts]
    registered = model.sites[
        (model.sites["reach_id"] == reach) & np.isclose(model.sites["measure_m"].astype(float), measure)
    ]
    if len(registered):
        source["site"] = str(registered["id"].iloc[0])
    truth = {
        "scenario": name,
        "seed": seed,
        "simulated": True,
        "description": sc.description,
        "source": source,
        "peak_arrivals": arrivals,
        "peak_values": {p: {str(k): round(float(v), 6) for k, v in peaks[p].items() if v > 0} for p in sc.releases},
        "readings_stored": report.stored,
        "incident_id": incident["id"],
        "window": [times[0].isoformat(), times[-1].isoformat()],
    }
    if riverbed is not None:
        truth["riverbed"] = riverbed
    if folder is not None:
        folder.mkdir(exist_ok=True)
        (folder / f"{name}-{seed}.json").write_text(json.dumps(truth, indent=2, ensure_ascii=False), encoding="utf-8")
    return truth
