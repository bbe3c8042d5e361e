"""Training scenarios on the real basin: simulated readings and incidents with a known answer.

``twin scenario DIR NAME --seed N`` writes, into the twin's operations store,
background readings at every station (diurnal temperature and oxygen cycles,
noise, a few gaps; flag ``S`` = simulated) for the scenario's days, the
pollution a release causes at the stations downstream (:mod:`twin.plume`), and
the incident someone reports; the true answer (where, when, how much) is saved
beside it as ``scenarios/<name>-<seed>.json`` in the twin folder, for checking a
trainee's (or the tracer's) answer.

Scenarios (all illustrative, on the demo basin's real rivers):

``mine-leak``
    Arsenic, lead and cadmium from an old mine's drainage in Lozère, on the
    Gardon upstream of Saint-Étienne-Vallée-Française, reaching Gard.
``cross-boundary-spill``
    An ammonia release upstream of the Lozère–Gard boundary on the Gardon d'Alès.

Release points are picked on the network by the scenario (a seeded choice among
the reaches a few kilometres above the named station), so they exist on any
build of the demo twin.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import plume
from .errors import TwinError
from .readings import store_rows
from .simulate import SIMULATED_FLAG

if TYPE_CHECKING:
    from .basin import BasinTwin


class ScenarioError(TwinError, ValueError):
    """An unknown scenario, or a twin it cannot run on."""


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    above_station: str  # the release is picked a few km above this station
    releases: dict[str, float]  # parameter → kg
    background: dict[str, tuple[float, float]]  # parameter → (level, noise sd), mg/L
    incident_kind: str
    incident_at_station: str  # where the incident is reported (as the plume passes)
    source_kinds: tuple[str, ...] = ()  # registered sites the release comes from, when the twin has one


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
            "water_temperature": (temp, "°C"),
            "DO": (do + rng.normal(0, 0.1, len(times)), "mg/L"),
            "pH": (7.8 + 0.1 * np.sin(2 * np.pi * (hour - 0.4)) + rng.normal(0, 0.03, len(times)), "1"),
        }
        for p, (level, sd) in extra.items():
            series[p] = (np.abs(level + rng.normal(0, sd, len(times))), "mg/L")
        keep = rng.random(len(times)) > 0.03  # a few readings lost, as real stations lose them
        for p, (v, unit) in series.items():
            frames.append(
                pd.DataFrame(
                    {"station": sid, "time": times[keep], "parameter": p, "value": np.round(v[keep], 6), "unit": unit}
                )
            )
    return pd.concat(frames, ignore_index=True)


def release_signal(
    basin: BasinTwin,
    reach: int,
    measure_m: float,
    release_at: pd.Timestamp,
    releases: dict[str, float],
    times: pd.DatetimeIndex,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """What a release adds at every station of the twin, and when its peak passes each one reached.

    Returns tidy rows (station, time, parameter, value in mg/L; 0 at stations it never
    reaches) for every station, parameter released and time, and the peak arrival
    (ISO 8601, UTC) at each station downstream.
    """
    watch = basin.sites[basin.sites["kind"] == "station"][["id", "reach_id", "measure_m"]]
    frames, arrivals = [], {}
    for param, kg in releases.items():
        ds = plume.simulate(
            basin.network.reaches, reach, measure_m, release_at, mass_kg=kg, substance=param, sites=watch, times=times
        )
        reached = {str(s): k for k, s in enumerate(ds["site"].values)}
        for sid in watch["id"]:
            k = reached.get(str(sid))
            conc = ds["site_concentration"].values[k] if k is not None else np.zeros(len(times))
            frames.append(pd.DataFrame({"station": sid, "time": times, "parameter": param, "value": np.round(conc, 6)}))
            if k is not None:
                arrivals[str(sid)] = pd.Timestamp(ds["site_peak_time"].values[k].item(), tz="UTC").isoformat()
    return pd.concat(frames, ignore_index=True), arrivals


def run(basin: BasinTwin, name: str, seed: int = 0, start: Any = "2026-09-01T00:00Z", days: int = 6) -> dict:
    """Run a scenario on a twin: readings and the incident go into its store; returns the true answer."""
    if name not in SCENARIOS:
        raise ScenarioError(f"unknown scenario {name!r}; scenarios: {sorted(SCENARIOS)}")
    sc = SCENARIOS[name]
    rng = np.random.default_rng(seed)
    sites = basin.sites.set_index("id", drop=False)
    if sc.above_station not in sites.index:
        raise ScenarioError(f"scenario {name} needs station {sc.above_station} (the demo twin has it)")
    st = sites.loc[sc.above_station]
    loc = basin.network.locate_cell(st.geometry.x, st.geometry.y, int(st["reach_id"]))
    upstream = basin.network.upstream(loc, max_km=12, mainstem=True)
    sources = basin.sites[
        basin.sites["kind"].isin(sc.source_kinds) & basin.sites["reach_id"].isin(upstream["reach_id"])
    ]
    if len(sources):  # a registered source above the station (e.g. the old mine): the release is there
        src = sources.iloc[int(rng.integers(len(sources)))]
        reach, measure = int(src["reach_id"]), float(src["measure_m"])
    else:  # else a seeded point 2-12 km up the river
        choices = upstream[(upstream["from_km"] > 2) & (upstream["reach_id"] != loc.reach_id)]
        if choices.empty:
            raise ScenarioError(f"no reach 2-12 km above {sc.above_station} to release from")
        reach = int(choices.iloc[int(rng.integers(len(choices)))]["reach_id"])
        measure = float(basin.network.reaches.at[reach, "length_m"]) * float(rng.uniform(0.2, 0.8))
    t_start = pd.Timestamp(start).tz_convert("UTC")
    release_at = t_start + pd.Timedelta(hours=float(rng.uniform(36, 60)))
    times = pd.date_range(t_start, t_start + pd.Timedelta(days=days), freq="2h", inclusive="left")
    stations = basin.sites[basin.sites["kind"] == "station"]
    rows = _background(stations["id"].tolist(), times, rng, sc.background)
    signal, arrivals = release_signal(basin, reach, measure, release_at, sc.releases, times)
    rows = rows.merge(signal, on=["station", "time", "parameter"], how="left", suffixes=("", "_release"))
    rows["value"] = rows["value"] + rows.pop("value_release").fillna(0.0)
    rows["flag"] = SIMULATED_FLAG
    rows["tz_offset_min"] = 0
    rows["line_no"] = np.arange(len(rows)) + 1
    report = store_rows(
        basin.store,
        rows,
        pd.DataFrame(columns=["line_no", "raw", "reason"]),
        source=f"scenario {name} seed {seed}",
        fmt="scenario",
    )
    x, y = basin.network.reaches.at[reach, "geometry"].interpolate(measure).coords[0]
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(basin.crs, "EPSG:4326", always_xy=True).transform(x, y)
    seen = sites.loc[sc.incident_at_station]
    incident = basin.incidents.add(
        sc.incident_kind,
        arrivals.get(sc.incident_at_station, release_at.isoformat()),
        (float(seen["lon"]), float(seen["lat"])),
        reporter="simulated (training scenario)",
        description=f"[SIMULATED] {sc.description}",
        case_id=f"SCENARIO-{name}-{seed}",
    )
    truth = {
        "scenario": name,
        "seed": seed,
        "simulated": True,
        "description": sc.description,
        "source": {
            "reach_id": reach,
            "measure_m": round(measure, 1),
            "lon": round(lon, 6),
            "lat": round(lat, 6),
            "time": release_at.isoformat(),
            "mass_kg": sc.releases,
        },
        "peak_arrivals": arrivals,
        "readings_stored": report.stored,
        "incident_id": incident["id"],
        "window": [times[0].isoformat(), times[-1].isoformat()],
    }
    if basin.path is not None:
        folder = Path(basin.path) / "scenarios"
        folder.mkdir(exist_ok=True)
        (folder / f"{name}-{seed}.json").write_text(json.dumps(truth, indent=2, ensure_ascii=False), encoding="utf-8")
    return truth
