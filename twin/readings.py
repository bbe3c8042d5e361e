"""Sensor readings: idempotent ingest into the operations store, and views for researchers.

Every ingest format is parsed into one tidy table (:data:`TIDY_COLUMNS`): station
id, time (tz-aware), the source's UTC offset, parameter, value, unit, flag and the
line it came from. :func:`store_rows` then checks each row, converts units to the
parameter's canonical unit, and stores the batch in **one transaction**:

* a reading already stored with the same value and flag is a *duplicate* and is
  not stored again;
* a reading for a (station, parameter, time) already stored with another value is
  a *correction*: it is stored as the next version, the old one is kept;
* a row that fails a check is kept in ``rejected`` with its reason.

A process killed during ingest therefore leaves the store as it was before that
batch, and a batch reported as stored is entirely there.

Checks, each a reason a row is rejected: unknown station, unknown parameter, a
unit that cannot be converted, a value that is not a number, a negative
concentration (or conductivity, turbidity, algal density), pH outside 0–14,
a time that is missing or has no zone.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
import xarray as xr

from .catalog import sha256_file
from .errors import TwinError
from .parameters import _UNITS, PARAMETERS
from .store import BUSY_TIMEOUT_MS, batches, datastreams, rejected, stations

TIDY_COLUMNS = ["station", "time", "tz_offset_min", "parameter", "value", "unit", "flag", "line_no"]
NON_NEGATIVE_UNITS = {"mg/L", "µS/cm", "NTU", "cells/L"}


class IngestError(TwinError, ValueError):
    """A file cannot be ingested at all (unreadable, wrong format); single bad rows are rejected instead."""


@dataclass
class IngestReport:
    """What one ingest did: counts, and the rejected rows with their reasons."""

    batch_id: int
    source: str
    format: str
    stored: int = 0
    duplicates: int = 0
    corrections: int = 0
    rejected: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["line_no", "raw", "reason"]))

    def rejected_by_reason(self) -> dict[str, int]:
        """Rejected rows counted by reason, the detail after a colon left out."""
        if self.rejected.empty:
            return {}
        kinds = self.rejected["reason"].str.split(":").str[0]
        return {str(k): int(v) for k, v in kinds.value_counts().items()}

    def to_dict(self) -> dict:
        return {
            "batch": self.batch_id,
            "source": self.source,
            "format": self.format,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "corrections": self.corrections,
            "rejected": int(len(self.rejected)),
            "rejected_by_reason": self.rejected_by_reason(),
        }


Reason = Callable[[pd.DataFrame], "pd.Series | str"]


def _raw(bad: pd.DataFrame) -> np.ndarray:
    """The rejected rows' text: as parsed when the parser kept it, else rebuilt from the fields."""
    if "raw" in bad:
        return bad["raw"].fillna("").astype(str).to_numpy()
    cols = [c for c in ("station", "time", "parameter", "value", "unit", "flag") if c in bad]
    return bad[cols].astype(str).agg(",".join, axis=1).to_numpy() if len(bad) else np.array([], dtype=object)


def _reject(df: pd.DataFrame, mask: pd.Series, reason: Reason, out: list[pd.DataFrame]) -> pd.DataFrame:
    """Rows under ``mask`` moved to ``out`` with their reason (worked out for them only)."""
    if not mask.any():
        return df
    bad = df[mask]
    why = reason(bad)
    out.append(
        pd.DataFrame(
            {
                "line_no": bad["line_no"].to_numpy(),
                "raw": _raw(bad),
                "reason": why.to_numpy(dtype=object) if isinstance(why, pd.Series) else why,
            }
        )
    )
    return df[~mask]


def check_rows(rows: pd.DataFrame, known_stations: set[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Checked rows with values in canonical units, and the rejected ones with reasons."""
    df = rows
    out: list[pd.DataFrame] = []
    df = _reject(
        df,
        ~df["station"].isin(known_stations),
        lambda b: "unknown station: " + b["station"].astype(str) + " is not in the twin's station list",
        out,
    )
    df = _reject(
        df, ~df["parameter"].isin(PARAMETERS.keys()), lambda b: "unknown parameter: " + b["parameter"].astype(str), out
    )
    times = df["time"]
    if len(df) and not isinstance(times.dtype, pd.DatetimeTZDtype):
        times = pd.to_datetime(times, errors="coerce", utc=False)
        if getattr(times.dt, "tz", None) is None:
            df = _reject(df, times.notna(), lambda b: "time without zone: give an offset such as +08:00", out)
            times = times[times.isna()]
    df = _reject(df, times.isna(), lambda b: "missing or unreadable time", out)
    df = df.assign(time=times[times.notna()])
    value = pd.to_numeric(df["value"], errors="coerce")
    df = _reject(df, value.isna(), lambda b: "not a number: value " + b["value"].astype(str).str.slice(0, 40), out)
    df = df.assign(value=value[value.notna()].astype("float64"))
    # units: one conversion per (parameter, unit) pair
    factor = np.full(len(df), np.nan)
    canonical = np.full(len(df), "", dtype=object)
    if "unit" in df:
        codes, uniq = pd.factorize(df["unit"].fillna("").astype(str))
        unit_text = pd.Index(uniq).str.strip().to_numpy(dtype=object)[codes] if len(uniq) else np.full(len(df), "")
    else:
        unit_text = np.full(len(df), "")
    param = df["parameter"].to_numpy()
    for p, u in set(zip(param, unit_text)):
        target = _UNITS.get(u)
        if target is not None and target[0] == PARAMETERS[p].unit:
            idx = (param == p) & (unit_text == u)
            factor[idx] = target[1]
            canonical[idx] = target[0]
    bad_unit = pd.Series(np.isnan(factor), index=df.index)
    keep = ~bad_unit.to_numpy()
    df = _reject(
        df, bad_unit, lambda b: "unit not convertible: " + b["unit"].astype(str) + " for " + b["parameter"], out
    )
    df = df.assign(value=df["value"].to_numpy() * factor[keep], unit=canonical[keep])
    negative = df["unit"].isin(NON_NEGATIVE_UNITS) & (df["value"] < 0)
    df = _reject(df, negative, lambda b: "negative value: " + b["parameter"] + " " + b["value"].astype(str), out)
    ph = (df["parameter"] == "pH") & ((df["value"] < 0) | (df["value"] > 14))
    df = _reject(df, ph, lambda b: "pH outside 0-14: " + b["value"].astype(str), out)
    df = df.assign(flag=df["flag"].fillna("").astype(str).str.slice(0, 8) if "flag" in df else "")
    rej = pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=["line_no", "raw", "reason"])
    return df, rej


EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


def _epoch(times: pd.Series) -> np.ndarray:
    """Whole seconds since 1970 (UTC) of tz-aware times, whatever their resolution."""
    if not len(times):
        return np.zeros(0, "int64")
    return ((times.dt.tz_convert("UTC") - EPOCH) // pd.Timedelta(seconds=1)).to_numpy().astype("int64")


def _datastream_ids(conn: sa.Connection, pairs: pd.DataFrame) -> pd.Series:
    """Datastream id of each (station, parameter, unit) row, creating the missing streams."""
    have = pd.DataFrame(
        conn.execute(sa.select(datastreams.c.id, datastreams.c.station_id, datastreams.c.parameter)).all(),
        columns=["id", "station", "parameter"],
    )
    uniq = pairs[["station", "parameter", "unit"]].drop_duplicates()
    missing = uniq.merge(have, on=["station", "parameter"], how="left")
    missing = missing[missing["id"].isna()]
    if len(missing):
        conn.execute(
            datastreams.insert(),
            [{"station_id": r.station, "parameter": r.parameter, "unit": r.unit} for r in missing.itertuples()],
        )
        have = pd.DataFrame(
            conn.execute(sa.select(datastreams.c.id, datastreams.c.station_id, datastreams.c.parameter)).all(),
            columns=["id", "station", "parameter"],
        )
    return pairs.merge(have, on=["station", "parameter"], how="left")["id"].astype("int64")


def store_rows(
    engine: sa.Engine,
    rows: pd.DataFrame,
    parse_rejected: pd.DataFrame,
    *,
    source: str,
    fmt: str,
    sha256: str | None = None,
) -> IngestReport:
    """Check, convert and store tidy rows as one batch (see the module docstring)."""
    now = int(_time.time())
    with engine.begin() as conn:
        known = set(conn.execute(sa.select(stations.c.id)).scalars())
        good, rej = check_rows(rows, known)
        rej = pd.concat([parse_rejected, rej], ignore_index=True) if len(parse_rejected) else rej
        key = conn.execute(
            batches.insert().values(source=source, sha256=sha256, format=fmt, started=now)
        ).inserted_primary_key
        assert key is not None
        batch_id = int(key[0])
        report = IngestReport(int(batch_id), source, fmt, rejected=rej)
        if len(good):
            ds = _datastream_ids(conn, good).to_numpy()
            stage = pd.DataFrame(
                {
                    "ds": ds,
                    "time": _epoch(good["time"]),
                    "tz": good["tz_offset_min"].fillna(0).astype("int64").to_numpy(),
                    "value": good["value"].to_numpy(),
                    "flag": good["flag"].to_numpy(),
                }
            )
            # same reading twice in one file: stored once; the same key with another value: a later version
            before = len(stage)
            stage = stage.drop_duplicates(["ds", "time", "value", "flag"])
            report.duplicates += before - len(stage)
            stage["seq"] = stage.groupby(["ds", "time"]).cumcount()
            for seq in range(int(stage["seq"].max()) + 1):
                part = stage[stage["seq"] == seq]
                stored, dup, corr = _insert_versions(conn, part, batch_id)
                report.stored += stored
                report.duplicates += dup
                report.corrections += corr
        if len(rej):
            line_nos = pd.to_numeric(rej["line_no"], errors="coerce").to_numpy(dtype=float)
            conn.execute(
                rejected.insert(),
                [
                    {
                        "batch_id": batch_id,
                        "line_no": None if np.isnan(n) else int(n),
                        "raw": str(raw)[:300],
                        "reason": str(reason),
                    }
                    for n, raw, reason in zip(line_nos, rej["raw"], rej["reason"])
                ],
            )
        conn.execute(
            batches.update()
            .where(batches.c.id == batch_id)
            .values(
                finished=int(_time.time()),
                stored=report.stored,
                duplicates=report.duplicates,
                corrections=report.corrections,
                rejected=len(rej),
            )
        )
    return report


def _insert_versions(conn: sa.Connection, part: pd.DataFrame, batch_id: int) -> tuple[int, int, int]:
    """Insert staged rows as new readings or new versions; returns (stored, duplicates, corrections).

    Set-based, in the caller's transaction: the rows go to a temporary table; only
    if the store already holds readings in the batch's time span is each row
    compared with the current version of its (stream, time).
    """
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    columns = [
        part["ds"].tolist(),
        part["time"].tolist(),
        part["tz"].tolist(),
        part["value"].tolist(),
        part["flag"].tolist(),
    ]
    overlap = conn.execute(
        sa.text("SELECT COUNT(*) FROM readings WHERE time BETWEEN :a AND :b"),
        {"a": int(part["time"].min()), "b": int(part["time"].max())},
    ).scalar_one()
    conn.exec_driver_sql(
        "CREATE TEMPORARY TABLE IF NOT EXISTS staging (ds INTEGER, time BIGINT, tz SMALLINT, "
        "value DOUBLE PRECISION, flag VARCHAR(8), prev SMALLINT, same SMALLINT)"
    )
    conn.exec_driver_sql("DELETE FROM staging")
    conn.exec_driver_sql(
        f"INSERT INTO staging (ds, time, tz, value, flag) VALUES ({', '.join([mark] * 5)})", list(zip(*columns))
    )
    dup = corr = 0
    if overlap:  # compare each row with the current version of its (stream, time)
        conn.exec_driver_sql(
            "UPDATE staging SET prev = (SELECT MAX(r.version) FROM readings r "
            "WHERE r.datastream_id = staging.ds AND r.time = staging.time)"
        )
        conn.exec_driver_sql(
            "UPDATE staging SET same = 1 WHERE prev IS NOT NULL AND EXISTS (SELECT 1 FROM readings r "
            "WHERE r.datastream_id = staging.ds AND r.time = staging.time AND r.version = staging.prev "
            "AND r.value = staging.value AND r.flag = staging.flag)"
        )
        dup = conn.exec_driver_sql("SELECT COUNT(*) FROM staging WHERE same = 1").scalar_one()
        corr = conn.exec_driver_sql("SELECT COUNT(*) FROM staging WHERE prev IS NOT NULL AND same IS NULL").scalar_one()
        if corr:  # the versions being corrected stop being current (found through the unique key)
            conn.exec_driver_sql(
                "UPDATE readings SET current = 0 WHERE (datastream_id, time, version) IN "
                "(SELECT ds, time, prev FROM staging WHERE prev IS NOT NULL AND same IS NULL)"
            )
    res = conn.execute(
        sa.text(
            "INSERT INTO readings (datastream_id, time, tz_offset_min, value, flag, version, batch_id, current) "
            "SELECT ds, time, tz, value, flag, COALESCE(prev, 0) + 1, :batch, 1 FROM staging WHERE same IS NULL"
        ),
        {"batch": batch_id},
    )
    return int(res.rowcount), int(dup), int(corr)


# ---------------------------------------------------------------------------
# Views
# ---------------------------------------------------------------------------
def _latest_versions_sql(where: str) -> str:
    return (
        "SELECT d.station_id, d.parameter, r.time, r.value, r.flag FROM readings r "
        "JOIN datastreams d ON d.id = r.datastream_id "
        "WHERE r.current = 1" + where
    )


def _to_epoch(t: Any) -> int:
    ts = pd.Timestamp(t)
    if ts.tzinfo is None:
        raise IngestError(f"time {t!r} has no zone; give it with an offset or Z (e.g. 2026-07-10T08:00Z)")
    return int(ts.tz_convert("UTC").timestamp())


def query(
    engine: sa.Engine,
    stations_: list[str] | None = None,
    parameters: list[str] | None = None,
    start: object = None,
    end: object = None,
) -> pd.DataFrame:
    """Latest versions of readings as a long table: station, parameter, time (UTC), value, flag."""
    where = ""
    params: dict[str, Any] = {}
    if stations_:
        where += " AND d.station_id IN (" + ",".join(f":s{i}" for i in range(len(stations_))) + ")"
        params.update({f"s{i}": s for i, s in enumerate(stations_)})
    if parameters:
        where += " AND d.parameter IN (" + ",".join(f":p{i}" for i in range(len(parameters))) + ")"
        params.update({f"p{i}": p for i, p in enumerate(parameters)})
    if start is not None:
        where += " AND r.time >= :start"
        params["start"] = _to_epoch(start)
    if end is not None:
        where += " AND r.time <= :end"
        params["end"] = _to_epoch(end)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(_latest_versions_sql(where) + " ORDER BY r.time"), params).all()
    # plain tuples: given SQLAlchemy rows, pandas probes each for keys (3x slower over a year of readings)
    df = pd.DataFrame([tuple(r) for r in rows], columns=["station", "parameter", "time", "value", "flag"])
    df["time"] = pd.to_datetime(df["time"].astype("int64"), unit="s", utc=True)
    return df


def _fetch_sqlite_parallel(adbc: Any, path: str, sql: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run ``sql`` over slices of the readings table (by row id) in parallel threads.

    SQLite decodes rows on one core per connection; the table is scanned in as many
    slices as there are cores (at most 4), each through its own read connection
    (WAL lets them all read at once), and the Arrow results are joined.
    """
    import os
    import threading

    import pyarrow as pa

    # The first connection stays open until the slices are read: closing the last connection of
    # a WAL database checkpoints it, and connections opened at that moment find it locked. Each
    # connection also waits for a lock rather than failing at once (ADBC's SQLite default).
    with adbc.connect(path) as first, first.cursor() as cur:
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # two sub-queries: SQLite reads a single MIN or MAX off the key's b-tree, not both at once
        cur.execute("SELECT (SELECT MIN(id) FROM readings), (SELECT MAX(id) FROM readings)")
        lo, hi = cur.fetchone()
        if lo is None:
            return np.zeros(0, "int64"), np.zeros(0, "int64"), np.zeros(0, "float64")
        parts = max(1, min(4, os.cpu_count() or 1))
        edges = [lo + (hi - lo + 1) * k // parts for k in range(parts)] + [hi + 1]
        tables: list[Any] = [None] * parts
        errors: list[BaseException] = []

        def run(k: int) -> None:
            try:
                with adbc.connect(path) as con, con.cursor() as c:
                    c.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                    c.execute(f"{sql} AND id >= {edges[k]} AND id < {edges[k + 1]}")
                    tables[k] = c.fetch_arrow_table()
            except BaseException as err:  # re-raised in the caller's thread
                errors.append(err)

        threads = [threading.Thread(target=run, args=(k,)) for k in range(parts)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    schema = pa.schema([("datastream_id", pa.int64()), ("time", pa.int64()), ("value", pa.float64())])
    filled = [t.rename_columns(schema.names).cast(schema) for t in tables if t is not None and t.num_rows]
    if not filled:
        return np.zeros(0, "int64"), np.zeros(0, "int64"), np.zeros(0, "float64")
    table = pa.concat_tables(filled)
    return (
        table.column(0).to_numpy().astype("int64"),
        table.column(1).to_numpy().astype("int64"),
        table.column(2).to_numpy().astype("float64"),
    )


def _fetch_current(
    engine: sa.Engine, ds_ids: list[int] | None, start: int | None, end: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(datastream id, time, value) of the current readings, as numpy columns.

    On SQLite the rows come through ADBC as Arrow columns (several million rows a
    second); elsewhere through SQLAlchemy.
    """
    where = ["current = 1"]
    if ds_ids is not None:
        where.append("datastream_id IN (" + (",".join(str(int(i)) for i in ds_ids) or "NULL") + ")")
    if start is not None:
        where.append(f"time >= {int(start)}")
    if end is not None:
        where.append(f"time <= {int(end)}")
    sql = "SELECT datastream_id, time, value FROM readings WHERE " + " AND ".join(where)
    if engine.dialect.name == "sqlite" and engine.url.database:
        adbc: Any
        try:
            import adbc_driver_sqlite.dbapi as adbc
        except ImportError:  # pragma: no cover - the dependency is declared; keep working without it
            adbc = None
        if adbc is not None:
            return _fetch_sqlite_parallel(adbc, engine.url.database, sql)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(sql).all()
    if not rows:
        return np.zeros(0, "int64"), np.zeros(0, "int64"), np.zeros(0, "float64")
    ds, t, v = zip(*rows)
    return np.asarray(ds, "int64"), np.asarray(t, "int64"), np.asarray(v, "float64")


def to_xarray(
    engine: sa.Engine,
    stations_: list[str] | None = None,
    parameters: list[str] | None = None,
    start: object = None,
    end: object = None,
) -> xr.Dataset:
    """Readings as an ``xarray.Dataset``: station × time, one variable per parameter.

    Units and long names are in each variable's attributes; station name, kind,
    water body, target class, lon/lat and reach id are coordinates along ``station``.
    Only the current (latest) version of each reading is shown; times are UTC.
    """
    with engine.connect() as conn:
        streams = pd.DataFrame(
            conn.execute(sa.select(datastreams.c.id, datastreams.c.station_id, datastreams.c.parameter)).all(),
            columns=["id", "station", "parameter"],
        )
        st = pd.DataFrame(conn.execute(sa.select(stations)).mappings().all())
    if stations_:
        streams = streams[streams["station"].isin(stations_)]
    if parameters:
        streams = streams[streams["parameter"].isin(parameters)]
    ds_id, t, v = _fetch_current(
        engine,
        streams["id"].tolist() if (stations_ or parameters) else None,
        _to_epoch(start) if start is not None else None,
        _to_epoch(end) if end is not None else None,
    )
    if not len(ds_id):
        streams = streams.iloc[0:0]
    elif len(streams) < 100_000:
        present = np.zeros(int(max(ds_id.max(), streams["id"].max())) + 1, dtype=bool)
        present[ds_id] = True
        streams = streams[present[streams["id"].to_numpy()]]
    station_ids = sorted(streams["station"].unique())
    params = sorted(streams["parameter"].unique())
    codes, uniq_t = pd.factorize(t, sort=True)
    lut_s = np.full(int(ds_id.max()) + 1 if len(ds_id) else 1, -1, dtype=np.int64)
    lut_p = lut_s.copy()
    s_index = {s: k for k, s in enumerate(station_ids)}
    p_index = {p: k for k, p in enumerate(params)}
    for sid, station, param in zip(streams["id"].tolist(), streams["station"], streams["parameter"]):
        lut_s[int(sid)] = s_index[station]
        lut_p[int(sid)] = p_index[param]
    cube = np.full((len(params), len(station_ids), len(uniq_t)), np.nan)
    if len(ds_id):
        cube[lut_p[ds_id], lut_s[ds_id], codes] = v
    times = pd.to_datetime(np.asarray(uniq_t, dtype="int64"), unit="s")
    ds = xr.Dataset(
        {p: (("station", "time"), cube[k]) for k, p in enumerate(params)},
        coords={"station": np.asarray(station_ids, dtype=object), "time": times},
    )
    ds["time"].attrs.update(long_name="time", timezone="UTC")
    for name in params:
        p = PARAMETERS[name]
        ds[name].attrs.update(units=p.unit, long_name=p.long_name, name_zh=p.name_zh)
    if not st.empty and station_ids:
        info = st.set_index("id").reindex(station_ids)
        for col in ("name", "kind", "water_body", "target_class", "lon", "lat", "reach_id"):
            ds = ds.assign_coords({col: ("station", info[col].to_numpy())})
    ds.attrs["source"] = "basin twin operations store (current version of each reading)"
    return ds


def latest(engine: sa.Engine, at: object = None, stations_: list[str] | None = None) -> pd.DataFrame:
    """The last reading of every station and parameter at or before ``at`` (default: now)."""
    end = at if at is not None else pd.Timestamp.now(tz="UTC")
    long = query(engine, stations_, None, None, end)
    if long.empty:
        return long
    return long.sort_values("time").groupby(["station", "parameter"], as_index=False).last()


def hash_source(path: Path) -> str:
    """SHA-256 of an ingest file, read in chunks (the parsers read it again, as they need)."""
    try:
        return sha256_file(path)
    except OSError as err:
        raise IngestError(f"cannot read '{path}' ({err.strerror}); check the path") from None


class Readings:
    """The readings of a twin: ingest files, and views for researchers.

    Parameters
    ----------
    engine:
        The operations store (see :func:`twin.store.connect`).
    """

    def __init__(self, engine: sa.Engine):
        self.engine = engine

    def station_names(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            return {name: sid for sid, name in conn.execute(sa.select(stations.c.id, stations.c.name)).all()}

    def register_stations(self, table: pd.DataFrame) -> int:
        """Add or update stations (id, name, kind, water_body, target_class, lon, lat, reach_id, measure_m).

        Stations off the twin's network (e.g. the national stations of the CNEMC
        sample) have no reach; they can still receive readings.
        """
        cols = [c.name for c in stations.columns]
        rows = []
        for rec in table.to_dict("records"):
            row = {c: rec.get(c) for c in cols}
            row["id"] = str(row["id"])
            row["kind"] = row["kind"] or "station"
            row["water_body"] = row["water_body"] or "river"
            row["target_class"] = int(row["target_class"] or 3)
            rows.append({k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()})
        with self.engine.begin() as conn:
            have = set(conn.execute(sa.select(stations.c.id)).scalars())
            new = [r for r in rows if r["id"] not in have]
            if new:
                conn.execute(stations.insert(), new)
            for r in rows:
                if r["id"] in have:
                    conn.execute(stations.update().where(stations.c.id == r["id"]).values(**r))
        return len(rows)

    def ingest(self, path: str | Path, fmt: str | None = None) -> IngestReport:
        """Ingest one file (format guessed from its name and first line unless given)."""
        from . import ingest as formats

        path = Path(path)
        digest = hash_source(path)
        fmt = fmt or formats.guess_format(path)
        if fmt == "tidy":
            rows, rej = formats.parse_tidy(path)
        elif fmt == "cnemc":
            rows, rej = formats.parse_cnemc(path, self.station_names())
        elif fmt == "netcdf":
            rows, rej = formats.parse_netcdf(path)
        elif fmt == "hj212":
            rows, rej = formats.parse_hj212(path)
        else:
            raise IngestError(f"unknown format {fmt!r}; use one of {list(formats.FORMATS)}")
        return store_rows(self.engine, rows, rej, source=path.name, fmt=fmt, sha256=digest)

    def to_xarray(
        self,
        stations: list[str] | None = None,
        parameters: list[str] | None = None,
        start: object = None,
        end: object = None,
    ) -> xr.Dataset:
        return to_xarray(self.engine, stations, parameters, start, end)

    def query(
        self,
        stations: list[str] | None = None,
        parameters: list[str] | None = None,
        start: object = None,
        end: object = None,
    ) -> pd.DataFrame:
        return query(self.engine, stations, parameters, start, end)

    def latest(self, at: object = None, stations: list[str] | None = None) -> pd.DataFrame:
        return latest(self.engine, at, stations)

    def classify(self, at: Any = None, max_age_hours: float = 24.0, stations: list[str] | None = None) -> pd.DataFrame:
        """GB 3838-2002 class of every station at a time (see :func:`classify`)."""
        return classify(self.engine, at, max_age_hours, stations)

    def classify_history(self, start: Any = None, end: Any = None, stations: list[str] | None = None) -> pd.DataFrame:
        """GB 3838-2002 class of every sample in a window (see :func:`classify_history`)."""
        return classify_history(self.engine, start, end, stations)

    def rejected(self, batch_id: int | None = None) -> pd.DataFrame:
        q = sa.select(rejected)
        if batch_id is not None:
            q = q.where(rejected.c.batch_id == batch_id)
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(q).mappings().all())


def classify(
    engine: sa.Engine, at: Any = None, max_age_hours: float = 24.0, stations_: list[str] | None = None
) -> pd.DataFrame:
    """GB 3838-2002 class of every station at a time, from its latest readings.

    For each station, each parameter's last reading at or before ``at`` (default
    now) counts if it is at most ``max_age_hours`` old. Rows: station, name,
    water body, target class, time of the newest reading used, ``class`` (1-6,
    0 = nothing classifiable), ``label`` (I..V, 劣V), ``deciding`` parameters,
    ``exceeds`` (worse than the target class), and per parameter the value,
    its class and its exceedance multiple.
    """
    from . import quality

    end = pd.Timestamp(at) if at is not None else pd.Timestamp.now(tz="UTC")
    if end.tzinfo is None:
        raise IngestError(f"time {at!r} has no zone; give it with an offset or Z (e.g. 2026-07-10T08:00Z)")
    long = query(engine, stations_, None, end - pd.Timedelta(hours=max_age_hours), end)
    with engine.connect() as conn:
        st = pd.DataFrame(conn.execute(sa.select(stations)).mappings().all()).set_index("id")
    if long.empty:
        return pd.DataFrame(columns=["station", "name", "class", "label", "deciding", "exceeds"])
    last = long.sort_values("time").groupby(["station", "parameter"]).last()
    wide = last["value"].unstack("parameter")
    when = last["time"].groupby(level="station").max()
    info = st.reindex(wide.index)
    classes = quality.classify_samples(
        wide, water_body=info["water_body"].fillna("river"), target_class=info["target_class"].fillna(3).astype(int)
    )
    out = pd.concat(
        [info[["name", "water_body", "target_class"]], when.rename("time"), classes, wide.add_suffix("_value")], axis=1
    )
    out["label"] = quality.label(out["class"].to_numpy())
    return out.reset_index(names="station")


def classify_history(
    engine: sa.Engine, start: Any = None, end: Any = None, stations_: list[str] | None = None
) -> pd.DataFrame:
    """The class of every sample (station and time) in a window; columns as in :func:`classify`."""
    from . import quality

    long = query(engine, stations_, None, start, end)
    with engine.connect() as conn:
        st = pd.DataFrame(conn.execute(sa.select(stations)).mappings().all()).set_index("id")
    if long.empty:
        return pd.DataFrame(columns=["station", "time", "class", "label", "deciding", "exceeds"])
    wide = long.pivot_table(index=["station", "time"], columns="parameter", values="value", aggfunc="last")
    info = st.reindex(wide.index.get_level_values("station"))
    info.index = wide.index
    classes = quality.classify_samples(
        wide, water_body=info["water_body"].fillna("river"), target_class=info["target_class"].fillna(3).astype(int)
    )
    out = pd.concat([info[["name", "water_body", "target_class"]], classes, wide.add_suffix("_value")], axis=1)
    out["label"] = quality.label(out["class"].to_numpy())
    return out.reset_index()
