"""Analyses on the demo twin, timed; one JSON line per measure.

``downstream_trace``
    ``BasinTwin.downstream`` (path, sections, sites with arrival times) from
    ``--points`` random points of the basin: median and p95 milliseconds.
``plume``
    ``plume.simulate`` of a 72-hour release from the top of the Gardon de Mialet,
    hourly, at every reach and site downstream.
``warnings_year``
    ``alerts.evaluate`` over a year of 4-hourly readings (8 parameters) for
    ``--stations`` stations.
``upstream_trace``
    ``tracing.trace_upstream`` for one anomaly at Mialet (after a simulated release).

Goals (issue 4): trace p95 < 20 ms, plume < 1 s, year of warnings < 5 s, upstream trace < 2 s.

Usage::

    python benchmarks/analyses.py [--points 1000] [--stations 500]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def bench_downstream(basin, n: int) -> None:
    from pyproj import Transformer

    from twin.errors import TwinError

    rng = np.random.default_rng(0)
    g = basin.terrain.grid
    x0, y0, x1, y1 = g.bounds
    to_ll = Transformer.from_crs(g.crs, "EPSG:4326", always_xy=True)
    basin.downstream(3.84482, 44.15832)  # warm caches
    times, skipped = [], 0
    while len(times) < n:
        lon, lat = to_ll.transform(rng.uniform(x0, x1), rng.uniform(y0, y1))
        t = time.perf_counter()
        try:
            basin.downstream(lon, lat)
        except TwinError:  # far from any river: not a trace
            skipped += 1
            continue
        times.append((time.perf_counter() - t) * 1000)
    p95 = float(np.percentile(times, 95))
    emit(
        {
            "measure": "downstream_trace",
            "points": n,
            "skipped_off_river": skipped,
            "median_ms": round(float(np.median(times)), 2),
            "p95_ms": round(p95, 2),
            "goal_p95_ms": 20,
            "goal_met": p95 < 20,
        }
    )


def bench_plume(basin) -> None:
    from twin.analysis import plume

    loc = basin.locate(3.84482, 44.15832)
    sites = basin.sites[["id", "reach_id", "measure_m"]]
    times = pd.date_range("2026-08-01", periods=73, freq="1h", tz="UTC")
    t = time.perf_counter()
    ds = plume.simulate(
        basin.network.reaches, loc.reach_id, loc.measure_m, times[0], mass_kg=500, times=times, sites=sites
    )
    wall = time.perf_counter() - t
    emit(
        {
            "measure": "plume",
            "hours": 72,
            "reaches": int(ds.sizes["reach"]),
            "sites": int(ds.sizes["site"]),
            "wall_s": round(wall, 3),
            "goal_s": 1.0,
            "goal_met": wall < 1.0,
        }
    )


def bench_warnings(n_stations: int) -> None:
    from twin.analysis import alerts
    from twin.analysis.simulate import simulate_year

    ids = [f"S{k:04d}" for k in range(n_stations)]
    long = simulate_year(ids, 2025)
    long["time"] = pd.to_datetime(long["time"], utc=True)
    stations = pd.DataFrame({"id": ids, "water_body": "river", "target_class": 2})
    t = time.perf_counter()
    episodes = alerts.evaluate(long, stations)
    wall = time.perf_counter() - t
    emit(
        {
            "measure": "warnings_year",
            "stations": n_stations,
            "readings": len(long),
            "episodes": len(episodes),
            "wall_s": round(wall, 3),
            "goal_s": 5.0,
            "goal_met": wall < 5.0,
        }
    )


def bench_upstream(basin) -> None:
    from twin.analysis.scenarios import release_signal
    from twin.analysis.tracing import trace_upstream

    sites = basin.sites.set_index("id")
    st = sites.loc["GM-STETIENNE"]
    loc = basin.network.locate_cell(st.geometry.x, st.geometry.y, int(st["reach_id"]))
    main = basin.network.upstream(loc, max_km=15, mainstem=True)
    true_reach = int(main[main["from_km"] > 3].iloc[0]["reach_id"])  # on the river, 3 km or more above the station
    grid = pd.date_range("2026-08-30", "2026-09-04", freq="2h", tz="UTC")
    rows, _ = release_signal(
        basin,
        true_reach,
        0.4 * float(basin.network.reaches.at[true_reach, "length_m"]),  # inside the reach, not at a confluence
        pd.Timestamp("2026-09-01T02:00Z"),
        {"As": 200.0},
        grid,
    )
    noise = np.random.default_rng(0).normal(0.0, 0.0003, len(rows))  # as the scenarios' background
    rows = rows.assign(
        value=np.abs(0.002 + noise) + rows["value"],
        unit="mg/L",
        flag="S",
        time=rows["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    path = Path(basin.path) / "as.csv"
    rows.to_csv(path, index=False)
    basin.readings.ingest(path)
    t = time.perf_counter()
    ranked = trace_upstream(basin.model, basin.store, "GM-MIALET", "As", "2026-09-02T12:00Z")
    wall = time.perf_counter() - t
    truth = ranked[ranked["reach_id"] == true_reach]
    emit(
        {
            "measure": "upstream_trace",
            "candidates": int(ranked["rank"].max()),
            "true_rank": int(truth["rank"].iloc[0]) if len(truth) else None,
            "sharing_rank": int((ranked["rank"] == truth["rank"].iloc[0]).sum()) if len(truth) else None,
            "release_time_error_min": round(
                abs(truth["release_time"].iloc[0] - pd.Timestamp("2026-09-01T02:00Z")).total_seconds() / 60, 1
            )
            if len(truth)
            else None,
            "wall_s": round(wall, 3),
            "goal_s": 2.0,
            "goal_met": wall < 2.0,
        }
    )


def main(argv: list[str] | None = None) -> None:
    import twin

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--stations", type=int, default=500)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cevennes"
        twin.BasinTwin.build(ROOT / "data" / "cevennes" / "basin.yml").save(folder)
        basin = twin.open(str(folder))
        bench_downstream(basin, args.points)
        bench_plume(basin)
        bench_warnings(args.stations)
        bench_upstream(basin)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
