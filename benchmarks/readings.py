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

With ``--postgres``, the readings of a national network instead (issue 13), on a
PostgreSQL server (``--postgres-url``, or a throwaway cluster started for the run, with
more memory than the tests' and the same lack of durability: ``fsync`` and
``synchronous_commit`` off, which the JSON lines say):

``pg_load``
    ``--national-stations`` (3,600) stations × 9 parameters every 4 hours for ``--years``
    (2; the issue's 5 years, 3.5×10^8 readings, take about 65 GB with their indexes,
    more than the benchmark machine's free disk), then ``--series-years`` (5) years of
    ``--history-stations`` (36) of them; stored month by month with ``Readings.store``
    by ``--writers`` (2) writers at once, each a share of the stations (checks, versioning, one
    binary COPY per batch into the readings partitioned by year); readings/s over the
    whole load and of the COPY alone. Goal ≥ 500,000 readings/s.
``pg_year_view``
    ``Readings.to_xarray`` of the last year for 500 stations. Goal < 2 s.
``pg_series``
    ``Readings.to_xarray`` of one station's whole series (``--series-years``). Goal < 2 s.
``pg_warnings``
    ``screening.warnings_over`` of the last year for every station. Goal < 30 s.

Usage::

    python benchmarks/readings.py [--rows 1000000] [--values 100000000] [--stations 500]
    python benchmarks/readings.py --postgres [--national-stations 3600] [--years 2] [--postgres-url URL]
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


NATIONAL_PARAMS = [*PARAMS, ("turbidity", "NTU")]
#: a clean and a bad value of each parameter in its canonical unit (bad: worse than class V, or past the limit)
CLEAN_BAD = {
    "DO": (8.0, 1.2),
    "CODMn": (2.5, 18.0),
    "NH3-N": (0.2, 3.5),
    "TP": (0.05, 0.8),
    "TN": (0.4, 3.0),
    "pH": (7.6, 9.8),
    "water_temperature": (15.0, 15.0),
    "conductivity": (400.0, 400.0),
    "turbidity": (8.0, 150.0),
}
PG_SETTINGS = {
    "shared_buffers": "'4GB'",
    "max_wal_size": "'8GB'",
    "checkpoint_timeout": "'30min'",
    "work_mem": "'256MB'",
    "maintenance_work_mem": "'1GB'",
    "wal_level": "minimal",
    "max_wal_senders": "0",
}


def national_month(ids: np.ndarray, lakes: np.ndarray, month: pd.Timestamp, rng: np.random.Generator) -> pd.DataFrame:
    """A month of 4-hourly readings of every station and parameter: mostly clean, with a few bursts of pollution.

    Clean values are of class I-II (TP in a lake a third of a river's); each series-month
    has a 3 % chance of a burst of 1-12 bad readings (worse than class V), so about a
    third of the series warn at least once a year.
    """
    times = pd.date_range(month, month + pd.offsets.MonthBegin(1), freq="4h", tz="UTC", inclusive="left")
    n_t, n_s = len(times), len(ids)
    frames = []
    for parameter, unit in NATIONAL_PARAMS:
        clean, bad = CLEAN_BAD[parameter]
        level = np.where(lakes, clean / 3, clean)[:, None] if parameter == "TP" else clean
        if parameter == "pH":  # pH is not a concentration: it moves by a few tenths around its level
            values = level + rng.uniform(-0.6, 0.6, (n_s, n_t))
        else:
            values = level * rng.uniform(0.8, 1.2, (n_s, n_t))
        burst = np.flatnonzero(rng.random(n_s) < 0.03)
        for s in burst.tolist():
            at, size = int(rng.integers(0, n_t)), int(rng.integers(1, 13))
            values[s, at : at + size] = bad * rng.uniform(0.9, 1.1)
        frames.append(
            pd.DataFrame(
                {
                    "station": np.repeat(ids, n_t),
                    "time": np.tile(times, n_s),
                    "parameter": parameter,
                    "value": values.ravel().round(4),
                    "unit": unit,
                    "flag": "N",
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def bench_postgres(
    url: str, n_stations: int, years: int, writers: int, durability: str, series_years: int, history_stations: int
) -> None:
    import sqlalchemy as sa

    from twin.analysis import screening
    from twin.ops import pgcopy, readings, store

    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("DROP DATABASE IF EXISTS twin_bench_national")
        conn.exec_driver_sql("CREATE DATABASE twin_bench_national")
    admin.dispose()
    db_url = sa.make_url(url).set(database="twin_bench_national").render_as_string(hide_password=False)
    engine = store.connect(db_url)
    r = readings.Readings(engine)
    rng = np.random.default_rng(7)
    ids = np.array([f"CN{k:04d}" for k in range(n_stations)], dtype=object)
    targets = rng.integers(2, 5, n_stations)
    bodies = np.where(rng.random(n_stations) < 0.1, "lake", "river")
    r.register_stations(pd.DataFrame({"id": ids, "name": ids, "target_class": targets, "water_body": bodies}))
    copy_wall = [0.0]
    copy_in = pgcopy.copy_in

    def timed_copy(*args, **kwargs):
        t = time.perf_counter()
        try:
            return copy_in(*args, **kwargs)
        finally:
            copy_wall[0] += time.perf_counter() - t

    pgcopy.copy_in = timed_copy  # type: ignore[assignment]
    this_month = pd.Timestamp.now(tz="UTC").normalize().replace(day=1)
    months = list(pd.date_range(end=this_month - pd.DateOffset(months=1), periods=12 * years, freq="MS"))
    from concurrent.futures import ThreadPoolExecutor

    groups = [np.arange(k, n_stations, writers) for k in range(writers)]

    def load(task: tuple[int, int]) -> tuple[int, float, float]:
        m, g = task
        t0 = time.perf_counter()
        frame = national_month(ids[groups[g]], bodies[groups[g]] == "lake", months[m], np.random.default_rng([m, g]))
        made = time.perf_counter() - t0
        report = r.store(frame, source=f"national-{months[m]:%Y-%m}-{g}")
        return report.stored, made, time.perf_counter() - t0 - made

    t0 = time.perf_counter()
    with ThreadPoolExecutor(writers) as pool:
        done = list(pool.map(load, [(m, g) for m in range(len(months)) for g in range(writers)]))
    load_wall = time.perf_counter() - t0
    stored = sum(d[0] for d in done)
    made = sum(d[1] for d in done) / writers
    store_wall = load_wall - made
    pgcopy.copy_in = copy_in  # type: ignore[assignment]
    # the earlier years of a few stations, for a long series (the store of every station's years may not fit the disk)
    history = list(
        pd.date_range(end=months[0] - pd.DateOffset(months=1), periods=12 * (series_years - years), freq="MS")
    )
    few = np.arange(min(history_stations, n_stations))
    for k, month in enumerate(history):
        frame = national_month(ids[few], bodies[few] == "lake", month, np.random.default_rng([k, 99]))
        r.store(frame, source=f"history-{month:%Y-%m}")
    with engine.connect() as conn:
        size = conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one()
        parts = conn.exec_driver_sql(
            "SELECT COUNT(*) FROM pg_inherits WHERE inhparent = 'readings'::regclass"
        ).scalar_one()
    emit(
        {
            "measure": "pg_load",
            "stations": n_stations,
            "parameters": len(NATIONAL_PARAMS),
            "months": len(months),
            "readings": stored,
            "writers": writers,
            "wall_s": round(load_wall, 1),
            "generate_s": round(made, 1),
            "store_s": round(store_wall, 1),
            "readings_per_s": round(stored / store_wall),
            "copy_s_per_writer": round(copy_wall[0] / writers, 1),
            "copy_readings_per_s": round(stored / (copy_wall[0] / writers)),
            "database_gb": round(size / 2**30, 2),
            "partitions": parts,
            "durability": durability,
            "goal_readings_per_s": 500_000,
            "goal_met": stored / store_wall >= 500_000,
        }
    )
    year_end = months[-1] + pd.offsets.MonthBegin(1) - pd.Timedelta(seconds=1)
    year_start = months[-12]
    some = sorted(rng.choice(ids, min(500, n_stations), replace=False).tolist())
    for call in ("first", "again"):
        t0 = time.perf_counter()
        ds = r.to_xarray(stations=some, start=year_start, end=year_end)
        wall = time.perf_counter() - t0
        emit(
            {
                "measure": "pg_year_view",
                "call": call,
                "dims": dict(ds.sizes),
                "readings": int(sum(int(ds[v].notnull().sum()) for v in ds.data_vars)),
                "wall_s": round(wall, 3),
                "goal_s": 2.0,
                "goal_met": wall < 2.0,
            }
        )
    t0 = time.perf_counter()
    one = r.to_xarray(stations=[str(ids[len(few) // 2])])
    wall = time.perf_counter() - t0
    emit(
        {
            "measure": "pg_series",
            "station": str(ids[len(few) // 2]),
            "dims": dict(one.sizes),
            "readings": int(sum(int(one[v].notnull().sum()) for v in one.data_vars)),
            "years": max(years, series_years),
            "wall_s": round(wall, 3),
            "goal_s": 2.0,
            "goal_met": wall < 2.0,
        }
    )
    st = pd.DataFrame({"id": ids, "water_body": bodies, "target_class": targets})
    t0 = time.perf_counter()
    episodes, counts = screening.warnings_over(engine, st, year_start, year_end)
    wall = time.perf_counter() - t0
    emit(
        {
            "measure": "pg_warnings",
            "stations": n_stations,
            "start": str(year_start),
            "end": str(year_end),
            "episodes": len(episodes),
            "by_level": {str(k): int(v) for k, v in episodes["level_name"].value_counts().items()},
            **counts,
            "wall_s": round(wall, 1),
            "goal_s": 30.0,
            "goal_met": wall < 30.0,
        }
    )
    engine.dispose()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--values", type=int, default=100_000_000)
    ap.add_argument("--stations", type=int, default=500)
    ap.add_argument("--only", default="ingest,classify,year_view")
    ap.add_argument("--postgres", action="store_true", help="the national-network measures on PostgreSQL")
    ap.add_argument("--postgres-url", help="a server where the run may create a database (default: a throwaway one)")
    ap.add_argument("--national-stations", type=int, default=3600)
    ap.add_argument("--years", type=int, default=2)
    ap.add_argument("--series-years", type=int, default=5, help="years of the long series of a few stations")
    ap.add_argument("--history-stations", type=int, default=36, help="stations given --series-years of readings")
    ap.add_argument("--writers", type=int, default=2, help="concurrent writers, each a share of the stations")
    args = ap.parse_args(argv)
    if args.postgres:
        if args.postgres_url:
            bench_postgres(
                args.postgres_url,
                args.national_stations,
                args.years,
                args.writers,
                "as the server is set",
                args.series_years,
                args.history_stations,
            )
            return
        from tests import pg_cluster

        with pg_cluster.running(PG_SETTINGS) as cluster:
            bench_postgres(
                cluster.url,
                args.national_stations,
                args.years,
                args.writers,
                "off: fsync, synchronous_commit",
                args.series_years,
                args.history_stations,
            )
        return
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
