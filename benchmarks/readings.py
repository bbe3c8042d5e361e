"""Readings: bulk ingest, classification and the xarray view, timed; one JSON line per measure.

Measures, on a fresh SQLite store (WAL) in a temporary twin folder:

``ingest``
    ``Readings.ingest`` of a tidy CSV of ``--rows`` rows (default one million):
    parsing, checks, unit conversion and the versioned insert, in one batch.
``classify``
    ``quality.classify_values`` and ``classify_samples`` over ``--values``
    values (default 100 million, in chunks of 10 million).
``year_view``
    ``Readings.to_xarray`` of one year of 4-hourly readings for ``--stations``
    stations (default 500) × 8 parameters, read back from the store.

Goals (issue 3): ingest ≥ 200,000 rows/s, classification ≥ 20 million values/s,
the year view in under 2 s.

Usage::

    python benchmarks/readings.py [--rows 1000000] [--values 100000000] [--stations 500]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PARAMS = [
    ("DO", "mg/L"),
    ("CODMn", "mg/L"),
    ("NH3-N", "mg/L"),
    ("TP", "mg/L"),
    ("TN", "mg/L"),
    ("pH", "1"),
    ("water_temperature", "°C"),
    ("conductivity", "µS/cm"),
]


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def make_store(folder: Path, n_stations: int):
    """A small synthetic twin saved in ``folder`` with ``n_stations`` stations registered off-network."""
    import yaml

    import twin
    from tests import synthetic

    folder.mkdir(parents=True)
    synthetic.write_dem(folder / "dem.tif", synthetic.v_valley(41, 31))
    (folder / "basin.yml").write_text(
        yaml.safe_dump(
            {
                "name": "bench",
                "crs": synthetic.CRS,
                "parameters": {"stream_threshold_km2": 0.02},
                "sources": {"dem": {"role": "dem", "path": "dem.tif"}},
            }
        )
    )
    basin = twin.open(twin.BasinTwin.build(folder / "basin.yml").save(folder / "twin"))
    ids = [f"S{k:04d}" for k in range(n_stations)]
    basin.readings.register_stations(pd.DataFrame({"id": ids, "name": ids}))
    return basin, ids


def tidy_frame(ids: list[str], times: pd.DatetimeIndex, rng: np.random.Generator) -> pd.DataFrame:
    n = len(ids) * len(times) * len(PARAMS)
    st = np.repeat(np.array(ids), len(times) * len(PARAMS))
    tt = np.tile(np.repeat(times.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy(), len(PARAMS)), len(ids))
    pp = np.tile(np.array([p for p, _ in PARAMS]), len(ids) * len(times))
    uu = np.tile(np.array([u for _, u in PARAMS]), len(ids) * len(times))
    return pd.DataFrame(
        {"station": st, "time": tt, "parameter": pp, "value": rng.uniform(0.01, 9, n).round(3), "unit": uu, "flag": "N"}
    )


def bench_ingest(rows: int, folder: Path) -> None:
    rng = np.random.default_rng(0)
    n_st = 50
    steps = int(np.ceil(rows / (n_st * len(PARAMS))))
    basin, ids = make_store(folder / "ingest", n_st)
    df = tidy_frame(ids, pd.date_range("2025-01-01", periods=steps, freq="4h", tz="UTC"), rng).iloc[:rows]
    path = folder / "ingest.csv"
    df.to_csv(path, index=False)
    t0 = time.perf_counter()
    report = basin.readings.ingest(path)
    wall = time.perf_counter() - t0
    emit(
        {
            "measure": "ingest",
            "format": "tidy",
            "rows": rows,
            "stored": report.stored,
            "wall_s": round(wall, 3),
            "rows_per_s": round(rows / wall),
            "goal_rows_per_s": 200_000,
            "goal_met": rows / wall >= 200_000,
        }
    )
    t0 = time.perf_counter()
    again = basin.readings.ingest(path)
    wall = time.perf_counter() - t0
    emit(
        {
            "measure": "ingest_again",
            "rows": rows,
            "duplicates": again.duplicates,
            "wall_s": round(wall, 3),
            "rows_per_s": round(rows / wall),
        }
    )


def bench_classify(values: int) -> None:
    from twin.analysis import quality

    rng = np.random.default_rng(1)
    chunk = min(values, 10_000_000)
    v = rng.uniform(0, 0.5, chunk)
    done, t0 = 0, time.perf_counter()
    while done < values:
        quality.classify_values("TP", v)
        done += chunk
    wall = time.perf_counter() - t0
    emit(
        {
            "measure": "classify_values",
            "values": done,
            "wall_s": round(wall, 3),
            "values_per_s": round(done / wall),
            "goal_values_per_s": 20_000_000,
            "goal_met": done / wall >= 20_000_000,
        }
    )
    rows = chunk // 8
    wide = pd.DataFrame({p: rng.uniform(0.01, 9, rows) for p, _ in PARAMS})
    done, t0 = 0, time.perf_counter()
    while done < values:
        quality.classify_samples(wide)
        done += rows * 8
    wall = time.perf_counter() - t0
    emit(
        {
            "measure": "classify_samples",
            "values": done,
            "wall_s": round(wall, 3),
            "values_per_s": round(done / wall),
            "goal_values_per_s": 20_000_000,
            "goal_met": done / wall >= 20_000_000,
        }
    )


def bench_year_view(n_stations: int, folder: Path) -> None:
    rng = np.random.default_rng(2)
    basin, ids = make_store(folder / "year", n_stations)
    times = pd.date_range("2025-01-01", "2025-12-31 20:00", freq="4h", tz="UTC")
    df = tidy_frame(ids, times, rng)
    path = folder / "year.csv"
    df.to_csv(path, index=False)
    t0 = time.perf_counter()
    basin.readings.ingest(path)
    load = time.perf_counter() - t0
    for call in ("first", "again"):  # the first call of a process also imports pyarrow and the ADBC driver
        t0 = time.perf_counter()
        ds = basin.readings.to_xarray()
        wall = time.perf_counter() - t0
        emit(
            {
                "measure": "year_view",
                "call": call,
                "stations": n_stations,
                "times": len(times),
                "parameters": len(PARAMS),
                "readings": len(df),
                "ingest_s": round(load, 1),
                "wall_s": round(wall, 3),
                "dims": dict(ds.sizes),
                "goal_s": 2.0,
                "goal_met": wall < 2.0,
            }
        )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--values", type=int, default=100_000_000)
    ap.add_argument("--stations", type=int, default=500)
    ap.add_argument("--only", default="ingest,classify,year_view")
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if "ingest" in only:
            bench_ingest(args.rows, folder)
        if "classify" in only:
            bench_classify(args.values)
        if "year_view" in only:
            bench_year_view(args.stations, folder)


if __name__ == "__main__":
    main()
