"""Sensor readings: idempotent ingest into the operations store, and views for researchers.

Every ingest format (:mod:`twin.ops.formats`, one registry) is parsed into one tidy
table (:data:`twin.ops.formats.TIDY_COLUMNS`): station id, time (tz-aware), the source's UTC offset,
parameter, value, unit, flag and the line it came from, plus the rows the parser could
not parse, each with its reason.
:func:`store_rows` then checks each row (:func:`check_rows`, the one row-level
check every format goes through), converts units to the parameter's canonical
unit, and stores the batch in **one transaction**:

* a reading already stored with the same value, flag and qualifier is a
  *duplicate* and is not stored again;
* a reading for a (station, parameter, time) already stored with another value
  (or flag, or qualifier) is a *correction*: it is stored as the next version, the
  old one is kept;
* a row that fails a check is kept in ``rejected`` with its reason; the rest of
  its batch is stored.

A process killed during ingest therefore leaves the store as it was before that
batch, and a batch reported as stored is entirely there.

Checks
------
Each a reason a row is rejected, named before the colon of the reason so that
:meth:`IngestReport.rejected_by_reason` can count them: ``unknown station``,
``unknown parameter``, ``time without zone``, ``unreadable time`` (missing, or a
date and time that do not exist such as ``2027-02-29T10:00Z`` or ``T12:99:00Z``),
``time outside plausible window``, ``unknown flag``, ``not a number``,
``below-detection notation for a parameter without detection limit``, ``unit not
convertible``, ``outside physical limits``. The checks are vectorised: a million
rows cost a few array passes, never a Python loop over rows.

Decisions
---------
*Physical limits.* ``twin/data/physical_limits.csv`` holds, for every parameter of
:mod:`twin.ops.parameters`, the range a reading can physically take in the canonical
unit, each bound with its source: "definition" (pH 0-14, a concentration is never
negative), "physics" (water boils at 100 °C) or "ours" (an upper bound set by the
twin well beyond the most extreme waters known, e.g. DO 50 mg/L, over three times
saturation at 0 °C). They catch sensor codes (-999), overflows (``inf``,
``1e308``) and unit slips, not pollution: a gross but possible value is stored.

*Time window.* A reading is plausible from ``1980-01-01T00:00Z`` to 24 hours after
the time of ingest (settings ``ingest_earliest`` and ``ingest_future_hours``,
``TWIN_INGEST_EARLIEST`` and ``TWIN_INGEST_FUTURE_HOURS``). 1980 predates every
electronic record the twin is meant to ingest (GB 3838's first edition is from
1983, China's automatic surface-water stations from the late 1990s, HJ/T 212 from
2005), while 1900 and 1970 are the zero dates loggers and spreadsheets fall back
to; an archive of older lab records is loaded by lowering the setting. The day of
grace covers clocks set to the wrong zone (up to UTC+14) and a little drift.

*Flags.* One vocabulary in the store, mapped from each source's at parse time, and
one notion of a *usable* reading for classification, warnings and tracing: see
:mod:`twin.ops.flags` (HJ 212's ``S``, set by hand, is the twin's ``H``; the twin's
``S`` stays *simulated*). Unusable readings are stored with their flag and shown
by :func:`query` (unless ``usable_only=True``) and :func:`to_xarray`.

*Below detection.* ``<0.01``, ``0.01L`` (the Chinese notation: limit and L) and
``ND`` are stored, not rejected: the value is the detection limit (converted like
any value: ``<5 µg/L`` is 0.005 mg/L) and ``qualifier`` is ``<``; a bare ``ND``
has no limit, so its value is 0 and its qualifier ``ND`` (:data:`QUALIFIERS`).
pH and water temperature have no detection limit: such a notation is rejected.
Classification takes the limit as the value, which gives the worst class the
true value can have (a below-limit reading is at most its limit); for DO, a lower
bound, it is the best. :func:`query` has a ``qualifier`` column; :func:`to_xarray`
adds a CF flag variable ``<parameter>_qualifier`` (0 measured, 1 below the limit,
2 not detected) beside each parameter that has such readings, named by the
parameter's ``ancillary_variables``.

*Several writers.* The checks run before the write transaction; the transaction
makes missing datastreams with ``INSERT ... ON CONFLICT DO NOTHING`` (in one sorted
order) and reads them back; on PostgreSQL it then locks the batch's datastream
rows (``SELECT ... FOR UPDATE``, in id order) before it reads ``MAX(version)``, so
two writers never give one reading the same version; SQLite has one writer at a
time, and the transaction's first statement is a write, so it holds that lock
before it reads anything. A transaction that still loses a race (deadlock,
serialisation failure, unique violation) is run again, up to :data:`MAX_ATTEMPTS`
times. Encodings (UTF-8, GB18030) are :mod:`twin.ops.formats`'s.

The GB 3838-2002 class of stations over these readings is an analysis:
:mod:`twin.analysis.classes`.
"""

from __future__ import annotations

import logging
import re
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
import xarray as xr

from twin.errors import TwinError
from twin.model.catalog import sha256_file
from twin.ops import flags as _flags
from twin.ops import pgcopy
from twin.ops.errors import IngestError
from twin.ops.formats import FORMATS, Context, Format, Formats, Parsed, Source
from twin.ops.formats.source import no_rejects
from twin.ops.parameters import _UNITS, PARAMETERS, physical_limits
from twin.ops.store import BUSY_TIMEOUT_MS, batches, datastreams, rejected, stations
from twin.settings import Settings

log = logging.getLogger(__name__)

QUALIFIERS: dict[str, str] = {
    "": "a measured value",
    "<": "below the detection limit; the value is the limit",
    "ND": "not detected, the limit not given; the value is 0",
}
EARLIEST = "1980-01-01T00:00Z"

# below-detection notations: "<0.01", "< 0.01", "0.01L" (the Chinese 检出限+L form), "ND", "N.D.", "未检出"
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_BELOW = re.compile(rf"^\s*(?:<\s*(?P<lt>{_NUMBER})|(?P<l>{_NUMBER})\s*[Ll])\s*$")
_NOT_DETECTED = re.compile(r"^\s*(?:ND|N\.D\.|n\.d\.|nd|未检出)\s*$")


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

    @property
    def accepted(self) -> int:
        """Rows that passed the checks: stored, duplicates of stored readings, or corrections."""
        return self.stored + self.duplicates

    def rejected_by_reason(self) -> dict[str, int]:
        """Rejected rows counted by reason, the detail after a colon left out."""
        if self.rejected.empty:
            return {}
        kinds = self.rejected["reason"].astype(str).str.split(":").str[0]
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


def _text(col: pd.Series) -> pd.Series:
    """A column as plain strings, missing values as "" (a NaN must never reach a reason or a raw line)."""
    return col.astype(object).where(col.notna(), "").astype(str)


def _stripped(col: pd.Series) -> np.ndarray:
    """A column of short codes (flags, units) as stripped strings, missing as "": each distinct value once."""
    codes, uniq = pd.factorize(col)
    clean = np.array([str(u).strip() for u in uniq] + [""], dtype=object)
    return clean[codes]  # code -1 (missing) takes the last entry, ""


def _raw(bad: pd.DataFrame) -> np.ndarray:
    """The rejected rows' text: as parsed when the parser kept it, else rebuilt from the fields."""
    if "raw" in bad:
        return _text(bad["raw"]).to_numpy()
    if not len(bad):
        return np.array([], dtype=object)
    parts = []
    for c in ("station", "time", "parameter", "value", "unit", "flag"):
        if c == "time" and "time_text" in bad:
            c = "time_text"  # the time as written: an unreadable one parses to NaT
        if c in bad:
            parts.append(_text(bad[c]))
    return pd.concat(parts, axis=1).agg(",".join, axis=1).to_numpy()


def _reject(df: pd.DataFrame, mask: pd.Series | np.ndarray, reason: Reason, out: list[pd.DataFrame]) -> pd.DataFrame:
    """Rows under ``mask`` moved to ``out`` with their reason (worked out for them only)."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return df
    bad = df[mask]
    why = reason(bad)
    out.append(
        pd.DataFrame(
            {
                "line_no": bad["line_no"].to_numpy() if "line_no" in bad else np.nan,
                "raw": _raw(bad),
                "reason": why.to_numpy(dtype=object) if isinstance(why, pd.Series) else why,
            }
        )
    )
    return df[~mask]


def _unreadable_time(b: pd.DataFrame) -> pd.Series | str:
    if "time_text" not in b:
        return "unreadable time: missing, or not a valid date and time"
    return "unreadable time: " + _text(b["time_text"]).str.slice(0, 40) + " is not a valid date and time"


def _iso(times: pd.Series) -> pd.Series:
    return times.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def time_window(settings: Settings | None = None, now: pd.Timestamp | None = None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The plausible times of a reading: (earliest, latest), from the settings and the time of ingest.

    Raises
    ------
    TwinError
        ``ingest_earliest`` is not a time with a zone.
    """
    settings = settings or Settings.from_env()
    try:
        earliest = pd.Timestamp(settings.ingest_earliest)
    except ValueError:
        earliest = None
    if earliest is None or pd.isna(earliest) or earliest.tzinfo is None:
        raise TwinError(
            f"setting ingest_earliest {settings.ingest_earliest!r} is not a time with a zone, e.g. {EARLIEST}"
        )
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    return earliest.tz_convert("UTC"), now + pd.Timedelta(hours=float(settings.ingest_future_hours))


def _values(df: pd.DataFrame) -> tuple[pd.Series, np.ndarray]:
    """Numbers of the value column and their qualifiers; NaN where the text is no number or notation.

    The notations are looked for only in the values that are not plain numbers, so a
    million plain numbers cost one ``to_numeric``.
    """
    raw = df["value"]
    value = pd.to_numeric(raw, errors="coerce")
    qualifier = np.full(len(df), "", dtype=object)
    if value.isna().any() and not pd.api.types.is_numeric_dtype(raw.dtype):
        idx = np.flatnonzero(value.isna().to_numpy())
        text = _text(raw.iloc[idx])
        below = text.str.extract(_BELOW)
        limit = pd.to_numeric(below["lt"].fillna(below["l"]), errors="coerce")
        nd = text.str.match(_NOT_DETECTED).to_numpy()
        has_limit = limit.notna().to_numpy()
        numbers = value.to_numpy(dtype="float64", copy=True)
        numbers[idx[has_limit]] = limit.to_numpy()[has_limit]
        numbers[idx[nd]] = 0.0
        value = pd.Series(numbers, index=value.index)
        qualifier[idx[has_limit]] = "<"
        qualifier[idx[nd]] = "ND"
    return value.astype("float64"), qualifier


def check_rows(
    rows: pd.DataFrame,
    known_stations: set[str],
    window: tuple[pd.Timestamp, pd.Timestamp] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Checked rows with values in canonical units, and the rejected ones with reasons.

    The one row-level check every format goes through (see the module docstring).
    ``window`` is the plausible time span, :func:`time_window` by default. The
    checked rows gain a ``qualifier`` column (:data:`QUALIFIERS`).
    """
    earliest, latest = window if window is not None else time_window()
    df = rows.reset_index(drop=True)
    out: list[pd.DataFrame] = []
    df = _reject(
        df,
        ~df["station"].isin(known_stations),
        lambda b: "unknown station: " + _text(b["station"]) + " is not in the twin's station list",
        out,
    )
    df = _reject(
        df, ~df["parameter"].isin(PARAMETERS.keys()), lambda b: "unknown parameter: " + _text(b["parameter"]), out
    )
    times = df["time"]
    if len(df) and not isinstance(times.dtype, pd.DatetimeTZDtype):
        if "time_text" not in df:
            df = df.assign(time_text=_text(times))
        times = pd.to_datetime(times, errors="coerce", utc=False)
        if getattr(times.dt, "tz", None) is None:
            df = _reject(df, times.notna(), lambda b: "time without zone: give an offset such as +08:00", out)
            times = times[times.isna()]
    df = _reject(df, times.isna().to_numpy(), _unreadable_time, out)
    df = df.assign(time=times[times.notna()])
    df = _reject(
        df,
        (df["time"] < earliest).to_numpy(),
        lambda b: (
            "time outside plausible window: "
            + _iso(b["time"])
            + f" is before {earliest:%Y-%m-%dT%H:%MZ} (setting ingest_earliest)"
        ),
        out,
    )
    df = _reject(
        df,
        (df["time"] > latest).to_numpy(),
        lambda b: (
            "time outside plausible window: "
            + _iso(b["time"])
            + f" is after {latest:%Y-%m-%dT%H:%MZ}, too far past the time of ingest (setting ingest_future_hours)"
        ),
        out,
    )
    flag = pd.Series(_stripped(df["flag"]) if "flag" in df else np.full(len(df), ""), index=df.index, dtype=object)
    df = df.assign(flag=flag)
    df = _reject(
        df,
        ~flag.isin(_flags.FLAGS.keys()),
        lambda b: (
            "unknown flag: "
            + _text(b["flag"]).str.slice(0, 8)
            + f" (allowed: none, {', '.join(f for f in _flags.FLAGS if f)}; see twin.ops.flags)"
        ),
        out,
    )
    value, qualifier = _values(df)
    df = df.assign(qualifier=qualifier)
    df = _reject(df, value.isna(), lambda b: "not a number: value " + _text(b["value"]).str.slice(0, 40), out)
    df = df.assign(value=value[value.notna()])
    limits = physical_limits()
    no_dl = df["qualifier"].ne("") & ~df["parameter"].map(limits["below_detection"]).fillna(False).astype(bool)
    df = _reject(
        df,
        no_dl.to_numpy(),
        lambda b: pd.Series(
            [
                f"below-detection notation for a parameter without detection limit: {p} {'ND' if q == 'ND' else q + f'{v:g}'}"
                for p, q, v in zip(b["parameter"], b["qualifier"], b["value"])
            ],
            index=b.index,
            dtype=object,
        ),
        out,
    )
    # units: one conversion per (parameter, unit) pair
    factor = np.full(len(df), np.nan)
    canonical = np.full(len(df), "", dtype=object)
    unit_text = _stripped(df["unit"]) if "unit" in df else np.full(len(df), "", dtype=object)
    p_codes, p_uniq = pd.factorize(df["parameter"])
    u_codes, u_uniq = pd.factorize(pd.Series(unit_text, dtype=object))
    pair = p_codes.astype("int64") * max(len(u_uniq), 1) + u_codes
    for code in np.unique(pair):  # each distinct (parameter, unit) once, never a loop over rows
        p, u = p_uniq[code // max(len(u_uniq), 1)], u_uniq[code % max(len(u_uniq), 1)]
        target = _UNITS.get(u)
        if target is not None and target[0] == PARAMETERS[p].unit:
            idx = pair == code
            factor[idx] = target[1]
            canonical[idx] = target[0]
    bad_unit = np.isnan(factor)
    df = _reject(
        df,
        bad_unit,
        lambda b: "unit not convertible: " + _text(b["unit"]) + " for " + b["parameter"].astype(str),
        out,
    )
    df = df.assign(value=df["value"].to_numpy() * factor[~bad_unit], unit=canonical[~bad_unit])
    # physical limits, per parameter (twin/data/physical_limits.csv)
    codes, uniq = pd.factorize(df["parameter"])
    lo = limits["min"].reindex(uniq).to_numpy()[codes] if len(uniq) else np.zeros(0)
    hi = limits["max"].reindex(uniq).to_numpy()[codes] if len(uniq) else np.zeros(0)
    v = df["value"].to_numpy()
    with np.errstate(invalid="ignore"):
        outside = ~((v >= lo) & (v <= hi))

    def beyond(b: pd.DataFrame) -> pd.Series:
        bounds = limits.reindex(b["parameter"].astype(str).to_numpy())
        return (
            "outside physical limits: "
            + b["parameter"].astype(str)
            + " "
            + b["value"].map(lambda x: f"{x:g}")
            + " "
            + b["unit"].astype(str)
            + " is not in ["
            + pd.Series([f"{x:g}" for x in bounds["min"]], index=b.index)
            + ", "
            + pd.Series([f"{x:g}" for x in bounds["max"]], index=b.index)
            + "] (twin/data/physical_limits.csv)"
        )

    df = _reject(df, outside, beyond, out)
    keep = [c for c in df.columns if c != "time_text"]
    rej = pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=["line_no", "raw", "reason"])
    return df[keep], rej


EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


def _epoch(times: pd.Series) -> np.ndarray:
    """Whole seconds since 1970 (UTC) of tz-aware times, whatever their resolution."""
    if not len(times):
        return np.zeros(0, "int64")
    return ((times.dt.tz_convert("UTC") - EPOCH) // pd.Timedelta(seconds=1)).to_numpy().astype("int64")


def _insert_ignoring_conflicts(conn: sa.Connection, table: sa.Table, rows: list[dict], keys: list[str]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING on the unique ``keys``: a row another writer made first is kept."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        conn.execute(postgresql.insert(table).on_conflict_do_nothing(index_elements=keys), rows)
    elif conn.dialect.name == "sqlite":
        from sqlalchemy.dialects import sqlite

        conn.execute(sqlite.insert(table).on_conflict_do_nothing(index_elements=keys), rows)
    else:  # pragma: no cover - the store runs on SQLite or PostgreSQL
        conn.execute(table.insert(), rows)


def _datastream_ids(conn: sa.Connection, pairs: pd.DataFrame) -> pd.Series:
    """Datastream id of each (station, parameter, unit) row, creating the missing streams.

    Safe with concurrent writers: the missing streams are inserted with ON CONFLICT DO
    NOTHING, in one sorted order (so two writers never wait on each other in a cycle),
    and then read back, whoever made them.
    """

    def streams() -> pd.DataFrame:
        return pd.DataFrame(
            conn.execute(sa.select(datastreams.c.id, datastreams.c.station_id, datastreams.c.parameter)).all(),
            columns=["id", "station", "parameter"],
        )

    have = streams()
    uniq = pairs[["station", "parameter", "unit"]].drop_duplicates(["station", "parameter"])
    missing = uniq.merge(have, on=["station", "parameter"], how="left")
    missing = missing[missing["id"].isna()].sort_values(["station", "parameter"])
    if len(missing):
        _insert_ignoring_conflicts(
            conn,
            datastreams,
            [{"station_id": r.station, "parameter": r.parameter, "unit": r.unit} for r in missing.itertuples()],
            ["station_id", "parameter"],
        )
        have = streams()
    return pairs.merge(have, on=["station", "parameter"], how="left")["id"].astype("int64")


def _lock_streams(conn: sa.Connection, ids: np.ndarray) -> None:
    """Hold the batch's datastreams until commit, so that two writers never number a reading's versions at once.

    PostgreSQL: ``SELECT ... FOR UPDATE`` on the stream rows, in id order. SQLite needs
    nothing: a write transaction there holds the database's one write lock from its
    first write (the batch row), before it reads any version.
    """
    if conn.dialect.name != "postgresql" or not len(ids):
        return
    uniq = sorted({int(i) for i in ids})
    conn.execute(
        sa.select(datastreams.c.id).where(datastreams.c.id.in_(uniq)).order_by(datastreams.c.id).with_for_update()
    ).all()


MAX_ATTEMPTS = 5
_RETRY_SQLSTATES = {"40001", "40P01", "23505"}  # serialization failure, deadlock, unique violation


def _retryable(err: sa.exc.DBAPIError) -> bool:
    """A write that lost a race with another writer (worth running again), not a bad batch."""
    return getattr(err.orig, "sqlstate", None) in _RETRY_SQLSTATES


def store_rows(
    engine: sa.Engine,
    rows: pd.DataFrame,
    parse_rejected: pd.DataFrame,
    *,
    source: str,
    fmt: str,
    sha256: str | None = None,
    settings: Settings | None = None,
) -> IngestReport:
    """Check, convert and store tidy rows as one batch (see the module docstring).

    The checks run before the write transaction; the batch is then written in one
    transaction, run again (up to :data:`MAX_ATTEMPTS` times) if it lost a race with
    another writer on PostgreSQL.
    """
    with engine.connect() as conn:
        known = set(conn.execute(sa.select(stations.c.id)).scalars())
    good, rej = check_rows(rows, known, time_window(settings))
    rej = pd.concat([parse_rejected, rej], ignore_index=True) if len(parse_rejected) else rej
    stage = pd.DataFrame(
        {
            "time": _epoch(good["time"]),
            "tz": good["tz_offset_min"].fillna(0).astype("int64").to_numpy(),
            "value": good["value"].to_numpy(),
            "flag": good["flag"].to_numpy(),
            "qualifier": good["qualifier"].to_numpy(),
        }
    )
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return _write_batch(engine, good, stage, rej, source=source, fmt=fmt, sha256=sha256)
        except sa.exc.DBAPIError as err:
            if attempt == MAX_ATTEMPTS or not _retryable(err):
                raise
            log.info("ingest of %s lost a race with another writer (%s); attempt %d", source, err.orig, attempt + 1)
    raise AssertionError("unreachable")  # pragma: no cover


def _write_batch(
    engine: sa.Engine,
    good: pd.DataFrame,
    stage: pd.DataFrame,
    rej: pd.DataFrame,
    *,
    source: str,
    fmt: str,
    sha256: str | None,
) -> IngestReport:
    with engine.begin() as conn:
        # the first statement writes: on SQLite the transaction takes the write lock here, before any read
        key = conn.execute(
            batches.insert().values(source=source, sha256=sha256, format=fmt, started=int(_time.time()))
        ).inserted_primary_key
        assert key is not None
        batch_id = int(key[0])
        report = IngestReport(batch_id, source, fmt, rejected=rej)
        if len(good):
            stage = stage.assign(ds=_datastream_ids(conn, good).to_numpy())
            _lock_streams(conn, stage["ds"].to_numpy())
            # same reading twice in one file: stored once; the same key with another value: a later version
            before = len(stage)
            stage = stage.drop_duplicates(["ds", "time", "value", "flag", "qualifier"])
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


def _stored_in_span(conn: sa.Connection, part: pd.DataFrame) -> bool:
    """Whether the store holds any reading of the batch's datastreams in the batch's time span (its unique key's index)."""
    ids = ",".join(str(int(i)) for i in np.unique(part["ds"].to_numpy()))
    sql = (
        f"SELECT 1 FROM readings WHERE datastream_id IN ({ids}) "
        f"AND time BETWEEN {int(part['time'].min())} AND {int(part['time'].max())} LIMIT 1"
    )
    return conn.exec_driver_sql(sql).first() is not None


def _copy_columns(part: pd.DataFrame, prefix: dict[str, str]) -> dict[str, tuple[np.ndarray, str]]:
    """The staged columns as :func:`twin.ops.pgcopy.copy_in` takes them, named by ``prefix`` (staging name -> column)."""
    kinds = {"ds": "int4", "time": "int8", "tz": "int2", "value": "float8", "flag": "text", "qualifier": "text"}
    return {prefix.get(k, k): (part[k].to_numpy(), kind) for k, kind in kinds.items()}


def _insert_versions(conn: sa.Connection, part: pd.DataFrame, batch_id: int) -> tuple[int, int, int]:
    """Insert staged rows as new readings or new versions; returns (stored, duplicates, corrections).

    Set-based, in the caller's transaction. If the store holds no reading of the
    batch's datastreams in the batch's time span (a first load), the rows are new
    readings: on PostgreSQL they are written with one binary COPY straight into
    ``readings`` (:mod:`twin.ops.pgcopy`), on SQLite inserted from a temporary table.
    Otherwise the rows go to the temporary table (by COPY on PostgreSQL) and each is
    compared with the current version of its (stream, time); a reading with the same
    value but another flag or qualifier is a correction.
    """
    overlap = _stored_in_span(conn, part)
    postgres = conn.dialect.name == "postgresql"
    if postgres and not overlap:
        raw = conn.connection.dbapi_connection
        # in stream and time order: a stream's readings of a batch then share a few pages of the table, so a
        # view of some stations reads those pages (through the unique key's index), not the whole partition
        part = part.iloc[np.lexsort((part["time"].to_numpy(), part["ds"].to_numpy()))]
        columns = _copy_columns(part, {"ds": "datastream_id", "tz": "tz_offset_min"})
        ones = np.ones(len(part), dtype=np.int16)
        columns.update(
            version=(ones, "int2"), current=(ones, "int2"), batch_id=(np.full(len(part), batch_id), "int4")
        )
        return pgcopy.copy_in(raw, "readings", columns), 0, 0
    conn.exec_driver_sql(
        "CREATE TEMPORARY TABLE IF NOT EXISTS ingest_staging (ds INTEGER, time BIGINT, tz SMALLINT, "
        "value DOUBLE PRECISION, flag VARCHAR(8), qualifier VARCHAR(2), prev SMALLINT, same SMALLINT)"
    )
    conn.exec_driver_sql("DELETE FROM ingest_staging")
    if postgres:
        pgcopy.copy_in(conn.connection.dbapi_connection, "ingest_staging", _copy_columns(part, {}))
    else:
        staged = [part[k].tolist() for k in ("ds", "time", "tz", "value", "flag", "qualifier")]
        conn.exec_driver_sql(
            "INSERT INTO ingest_staging (ds, time, tz, value, flag, qualifier) VALUES (?, ?, ?, ?, ?, ?)",
            list(zip(*staged)),
        )
    dup = corr = 0
    if overlap:  # compare each row with the current version of its (stream, time)
        conn.exec_driver_sql(
            "UPDATE ingest_staging SET prev = (SELECT MAX(r.version) FROM readings r "
            "WHERE r.datastream_id = ingest_staging.ds AND r.time = ingest_staging.time)"
        )
        conn.exec_driver_sql(
            "UPDATE ingest_staging SET same = 1 WHERE prev IS NOT NULL AND EXISTS (SELECT 1 FROM readings r "
            "WHERE r.datastream_id = ingest_staging.ds AND r.time = ingest_staging.time "
            "AND r.version = ingest_staging.prev AND r.value = ingest_staging.value "
            "AND r.flag = ingest_staging.flag AND r.qualifier = ingest_staging.qualifier)"
        )
        dup = conn.exec_driver_sql("SELECT COUNT(*) FROM ingest_staging WHERE same = 1").scalar_one()
        corr = conn.exec_driver_sql(
            "SELECT COUNT(*) FROM ingest_staging WHERE prev IS NOT NULL AND same IS NULL"
        ).scalar_one()
        if corr:  # the versions being corrected stop being current (found through the unique key)
            conn.exec_driver_sql(
                "UPDATE readings SET current = 0 WHERE (datastream_id, time, version) IN "
                "(SELECT ds, time, prev FROM ingest_staging WHERE prev IS NOT NULL AND same IS NULL)"
            )
    res = conn.execute(
        sa.text(
            "INSERT INTO readings (datastream_id, time, tz_offset_min, value, flag, qualifier, version, batch_id, "
            "current) SELECT ds, time, tz, value, flag, qualifier, COALESCE(prev, 0) + 1, :batch, 1 "
            "FROM ingest_staging WHERE same IS NULL"
        ),
        {"batch": batch_id},
    )
    return int(res.rowcount), int(dup), int(corr)


# ---------------------------------------------------------------------------
# Views
# ---------------------------------------------------------------------------
def _latest_versions_sql(where: str) -> str:
    return (
        "SELECT d.station_id, d.parameter, r.time, r.value, r.flag, r.qualifier FROM readings r "
        "JOIN datastreams d ON d.id = r.datastream_id "
        "WHERE r.current = 1" + where
    )


def _usable_sql(column: str) -> str:
    """SQL that holds for a usable reading (:data:`twin.ops.flags.USABLE_FLAGS`, constants of our own)."""
    return f"{column} IN (" + ", ".join(f"'{f}'" for f in sorted(_flags.USABLE_FLAGS)) + ")"


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
    usable_only: bool = False,
    limit: int | None = None,
) -> pd.DataFrame:
    """Latest versions of readings as a long table: station, parameter, time (UTC), value, flag, qualifier.

    In time order; ``limit`` keeps the first that many (read no further: a page of a long series).

    ``usable_only`` leaves out the readings that classification, warnings and tracing
    do not use (:func:`twin.ops.flags.usable`). ``qualifier`` is '' for a measured value,
    '<' when the value is a detection limit the reading was below, 'ND' for not
    detected with no limit given (:data:`QUALIFIERS`).
    """
    where = " AND " + _usable_sql("r.flag") if usable_only else ""
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
        sql = _latest_versions_sql(where) + " ORDER BY r.time, d.station_id, d.parameter"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = conn.execute(sa.text(sql), params).all()
    # plain tuples: given SQLAlchemy rows, pandas probes each for keys (3x slower over a year of readings)
    df = pd.DataFrame([tuple(r) for r in rows], columns=["station", "parameter", "time", "value", "flag", "qualifier"])
    df["time"] = pd.to_datetime(df["time"].astype("int64"), unit="s", utc=True)
    return df


def _fetch_sqlite_parallel(adbc: Any, path: str, sql: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run ``sql`` over slices of the readings table (by row id) in parallel threads.

    SQLite decodes rows on one core per connection; the table is scanned in as many
    slices as there are cores (at most 4), each through its own read connection
    (WAL lets them all read at once), and the Arrow results are joined.
    """
    import os

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

        def run(k: int) -> Any:
            with adbc.connect(path) as con, con.cursor() as c:
                c.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                c.execute(f"{sql} AND id >= {edges[k]} AND id < {edges[k + 1]}")
                return c.fetch_arrow_table()

        tables = _in_threads(run, parts)
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


#: how many slices of a time range PostgreSQL reads are made in (one connection and thread each)
PG_SLICES = 2


def _time_slices(start: int, end: int, parts: int = PG_SLICES) -> list[str]:
    """SQL conditions cutting ``start``..``end`` (seconds since 1970, both included) into ``parts`` time ranges."""
    a, b = int(start), int(end) + 1
    edges = [a + (b - a) * k // parts for k in range(parts)] + [b]
    return [f"time >= {lo} AND time < {hi}" for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo] or ["FALSE"]


def postgres_uri(engine: sa.Engine) -> str:
    """The libpq URI of a SQLAlchemy PostgreSQL engine (its driver name dropped), for ADBC."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def read_postgres(engine: sa.Engine, queries: list[str]) -> list[Any]:
    """The results of ``queries`` as Arrow tables, each on its own ADBC connection, all at once in threads.

    ADBC's PostgreSQL driver reads a result as binary COPY straight into Arrow columns
    (libpq and C++, the GIL released), several million rows a second per connection, where
    SQLAlchemy's rows cost about a microsecond each in Python. Each query is a snapshot
    of its own: slices of one range read at once see what was committed when each began.
    """

    import adbc_driver_postgresql.dbapi as adbc

    uri = postgres_uri(engine)

    def run(k: int) -> Any:
        with adbc.connect(uri) as con, con.cursor() as cur:
            cur.execute(queries[k])
            return cur.fetch_arrow_table()

    return _in_threads(run, len(queries))


def _in_threads(run: Callable[[int], Any], n: int) -> list[Any]:
    """``[run(0), ..., run(n - 1)]``, each in a thread of its own, all at once; the first error is raised here."""
    import threading

    out: list[Any] = [None] * n
    errors: list[BaseException] = []

    def one(k: int) -> None:
        try:
            out[k] = run(k)
        except BaseException as err:  # re-raised in the caller's thread
            errors.append(err)

    threads = [threading.Thread(target=one, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return out


def pa_concat(tables: list[Any]) -> Any:
    """One Arrow table of several with the same columns (their first's names and types)."""
    import pyarrow as pa

    first = tables[0]
    return pa.concat_tables([t.cast(first.schema) for t in tables]) if len(tables) > 1 else first


def _columns(table: Any, n: int) -> list[np.ndarray]:
    return [table.column(k).to_numpy() for k in range(n)]


def _fetch_current(
    engine: sa.Engine, ds_ids: list[int] | None, start: int | None, end: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(datastream id, time, value) of the current readings, as numpy columns.

    On SQLite the rows come through ADBC as Arrow columns (several million rows a
    second); on PostgreSQL through ADBC too, a time range in two slices read at once
    (:func:`read_postgres`); elsewhere through SQLAlchemy.
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
    if engine.dialect.name == "postgresql":
        slices = [sql] if start is None or end is None else [f"{sql} AND {w}" for w in _time_slices(start, end)]
        ds32, t64, v64 = _columns(pa_concat(read_postgres(engine, slices)), 3)
        return ds32.astype("int64"), t64.astype("int64", copy=False), v64.astype("float64", copy=False)
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
    if len(ds_id):
        _add_qualifiers(engine, ds, lut_p, lut_s, np.asarray(uniq_t, dtype="int64"), params, start, end)
    if not st.empty and station_ids:
        info = st.set_index("id").reindex(station_ids)
        for col in ("name", "kind", "water_body", "target_class", "lon", "lat", "reach_id"):
            ds = ds.assign_coords({col: ("station", info[col].to_numpy())})
    ds.attrs["source"] = "basin twin operations store (current version of each reading)"
    return ds


QUALIFIER_CODES = {"": 0, "<": 1, "ND": 2}


def _add_qualifiers(
    engine: sa.Engine,
    ds: xr.Dataset,
    lut_p: np.ndarray,
    lut_s: np.ndarray,
    times: np.ndarray,
    params: list[str],
    start: object,
    end: object,
) -> None:
    """A ``<parameter>_qualifier`` variable beside each parameter that has below-detection readings (in place).

    CF flags: 0 measured, 1 below the detection limit (the value is the limit), 2 not
    detected with no limit given (the value is 0); the parameter's
    ``ancillary_variables`` attribute names it. Parameters without such readings get
    none, so a store without them gives one variable per parameter, as before. The
    few qualified readings are found through a partial index.
    """
    sql = "SELECT datastream_id, time, qualifier FROM readings WHERE current = 1 AND qualifier <> ''"
    if start is not None:
        sql += f" AND time >= {_to_epoch(start)}"
    if end is not None:
        sql += f" AND time <= {_to_epoch(end)}"
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(sql).all()
    if not rows:
        return
    ds_q = np.asarray([r[0] for r in rows], dtype="int64")
    t_q = np.asarray([r[1] for r in rows], dtype="int64")
    code = np.asarray([QUALIFIER_CODES.get(r[2], 0) for r in rows], dtype=np.int8)
    inside = ds_q < len(lut_p)
    ds_q, t_q, code = ds_q[inside], t_q[inside], code[inside]
    k_p, k_s = lut_p[ds_q], lut_s[ds_q]
    k_t = np.searchsorted(times, t_q)
    found = (k_p >= 0) & (k_t < len(times))
    found[found] &= times[k_t[found]] == t_q[found]
    for k in np.unique(k_p[found]):
        name = params[int(k)]
        flags = np.zeros((ds.sizes["station"], ds.sizes["time"]), dtype=np.int8)
        pick = found & (k_p == k)
        flags[k_s[pick], k_t[pick]] = code[pick]
        var = f"{name}_qualifier"
        ds[var] = (("station", "time"), flags)
        ds[var].attrs.update(
            long_name=f"{PARAMETERS[name].long_name} detection qualifier",
            flag_values=np.array([0, 1, 2], dtype=np.int8),
            flag_meanings="measured below_detection_limit not_detected",
        )
        ds[name].attrs["ancillary_variables"] = var


def _read_columns(engine: sa.Engine, sql: str, types: list[str]) -> list[np.ndarray]:
    """The fixed-width columns (``int4``, ``int8``, ``float8``...) of ``sql`` as numpy arrays.

    PostgreSQL: through ADBC as Arrow (:func:`read_postgres`); the aggregation or
    selection runs in the database and only its result crosses the wire. Elsewhere
    (SQLite) through the driver's rows.
    """
    np_types = [{"int2": "int16", "int4": "int32", "int8": "int64", "float8": "float64"}[t] for t in types]
    if engine.dialect.name == "postgresql":
        table = pa_concat(read_postgres(engine, [sql]))
        return [c.astype(t, copy=False) for c, t in zip(_columns(table, len(types)), np_types)]
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(sql).all()
    if not rows:
        return [np.zeros(0, t) for t in np_types]
    return [np.asarray(col, dtype=t) for col, t in zip(zip(*rows), np_types)]


def _streams(engine: sa.Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.DataFrame(
            conn.execute(sa.select(datastreams.c.id, datastreams.c.station_id, datastreams.c.parameter)).all(),
            columns=["id", "station", "parameter"],
        ).set_index("id")


def _usable_where(start: int, end: int, ignore_flags: frozenset[str] | set[str], r: str = "") -> str:
    """SQL for the usable current readings from ``start`` to ``end`` without ``ignore_flags`` (columns prefixed ``r``).

    Flags are inlined: only those of the store's vocabulary (:data:`twin.ops.flags.FLAGS`),
    the others no stored reading can have.
    """
    where = f"{r}current = 1 AND {r}time >= {int(start)} AND {r}time <= {int(end)} AND " + _usable_sql(f"{r}flag")
    for f in sorted(set(ignore_flags) & set(_flags.FLAGS)):
        where += f" AND {r}flag <> '{f}'"
    return where


def envelopes(
    engine: sa.Engine, start: object, end: object, bucket_s: int, ignore_flags: frozenset[str] | set[str] = frozenset()
) -> pd.DataFrame:
    """The lowest and highest value and the count of usable current readings, per datastream and time bucket.

    Aggregated in the database (``GROUP BY`` stream and bucket, bucket ``k`` holding the
    times ``start + k * bucket_s`` to the next), so a year of a national network
    (7×10^7 readings) comes back as a few million rows at most. Columns: ``station``,
    ``parameter``, ``bucket``, ``vmin``, ``vmax``, ``n``. ``ignore_flags`` leaves out
    usable readings with those flags as well (a warning policy's ``ignore_flags``).
    """
    a, b = _to_epoch(start), _to_epoch(end)
    sql = (
        f"SELECT datastream_id, (time - {a}) / {int(bucket_s)}, MIN(value), MAX(value), COUNT(*) FROM readings "
        f"WHERE {_usable_where(a, b, ignore_flags)} GROUP BY 1, 2"
    )
    ds, bucket, vmin, vmax, n = _read_columns(engine, sql, ["int4", "int8", "float8", "float8", "int8"])
    names = _streams(engine).reindex(ds.astype("int64"))
    return pd.DataFrame(
        {
            "station": names["station"].to_numpy(),
            "parameter": names["parameter"].to_numpy(),
            "bucket": bucket.astype("int64"),
            "vmin": vmin,
            "vmax": vmax,
            "n": n.astype("int64"),
        }
    )


def in_windows(
    engine: sa.Engine, windows: pd.DataFrame, ignore_flags: frozenset[str] | set[str] = frozenset()
) -> pd.DataFrame:
    """The usable current readings of each (``station``, ``parameter``) between its window's ``start`` and ``end``.

    ``windows`` has ``station``, ``parameter``, ``start`` and ``end`` (tz-aware, both
    included). One query joins the windows as a list of values to the readings
    (through the unique key's index on stream and time). Returns the long table of
    :func:`query` (``station``, ``parameter``, ``time``, ``value``, ``flag``,
    ``qualifier``), in no particular order; ``flag`` is '' for every usable reading
    here (they are all usable), ``qualifier`` is not read ('').
    """
    cols = ["station", "parameter", "time", "value", "flag", "qualifier"]
    if windows.empty:
        return pd.DataFrame(columns=cols)
    streams = _streams(engine).reset_index()
    w = windows.merge(streams, on=["station", "parameter"], how="inner")
    if w.empty:
        return pd.DataFrame(columns=cols)
    a = _epoch(pd.to_datetime(w["start"], utc=True))
    b = _epoch(pd.to_datetime(w["end"], utc=True))
    values = ",".join(f"({int(i)},{int(x)},{int(y)})" for i, x, y in zip(w["id"], a, b))
    where = _usable_where(int(a.min()), int(b.max()), ignore_flags, "r.")
    sql = (
        f"WITH w (ds, t0, t1) AS (VALUES {values}) SELECT r.datastream_id, r.time, r.value FROM readings r "
        f"JOIN w ON r.datastream_id = w.ds AND r.time >= w.t0 AND r.time <= w.t1 WHERE {where}"
    )
    ds, t, v = _read_columns(engine, sql, ["int4", "int8", "float8"])
    names = streams.set_index("id").reindex(ds.astype("int64"))
    return pd.DataFrame(
        {
            "station": names["station"].to_numpy(),
            "parameter": names["parameter"].to_numpy(),
            "time": pd.to_datetime(t.astype("int64"), unit="s", utc=True),
            "value": v,
            "flag": "",
            "qualifier": "",
        }
    )


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
        The operations store (see :func:`twin.ops.store.connect`).
    formats:
        The ingest formats (:data:`twin.ops.formats.FORMATS`, or a registry with formats of
        one's own: :meth:`twin.ops.formats.Formats.adding`).
    """

    def __init__(self, engine: sa.Engine, formats: Formats = FORMATS):
        self.engine = engine
        self.formats = formats

    def station_names(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            return {name: sid for sid, name in conn.execute(sa.select(stations.c.id, stations.c.name)).all()}

    def stations(self) -> pd.DataFrame:
        """The stations of the store, one row each, indexed by station id (the columns of the stations table)."""
        with self.engine.connect() as conn:
            table = pd.DataFrame(conn.execute(sa.select(stations)).mappings().all())
        if table.empty:
            table = pd.DataFrame(columns=[c.name for c in stations.columns])
        return table.set_index("id")

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
            # insert what is missing (another writer may be adding the same stations), then update all
            if rows:
                _insert_ignoring_conflicts(conn, stations, rows, ["id"])
            for r in rows:
                conn.execute(stations.update().where(stations.c.id == r["id"]).values(**r))
        return len(rows)

    def parse(self, source: Source, fmt: str | None = None) -> tuple[Format, Parsed]:
        """The format of a source (``fmt``, or guessed from its name and first bytes) and what it made of it.

        Nothing is stored; :meth:`ingest` parses and stores.
        """
        chosen = self.formats.pick(source, fmt)
        return chosen, chosen.parse(source, context=Context(station_names=self.station_names()))

    def ingest(self, path: str | Path, fmt: str | None = None) -> IngestReport:
        """Ingest one file (format guessed from its name and first bytes unless given; see :mod:`twin.ops.formats`)."""
        path = Path(path)
        digest = hash_source(path)
        chosen, parsed = self.parse(Source.file(path), fmt)
        return store_rows(self.engine, parsed.rows, parsed.rejected, source=path.name, fmt=chosen.NAME, sha256=digest)

    def store(self, rows: pd.DataFrame, source: str = "table") -> IngestReport:
        """Check and store a tidy table already in memory, as one batch (as :meth:`ingest` does with a file).

        For feeds that arrive as tables (a national network's bulk export read by the
        caller, a notebook). ``rows`` needs ``station``, ``time`` (tz-aware, or text with
        an offset), ``parameter``, ``value`` and ``unit``; ``flag`` ('' if missing),
        ``tz_offset_min`` (0) and ``line_no`` (the row's position from 1) are optional.
        On PostgreSQL a batch with nothing stored yet in its streams' time span is
        written with one binary COPY (see :func:`_insert_versions`).
        """
        need = ["station", "time", "parameter", "value", "unit"]
        missing = [c for c in need if c not in rows.columns]
        if missing:
            raise IngestError(f"the table to store has no column {', '.join(missing)}; give {', '.join(need)}")
        df = rows.reset_index(drop=True)
        if "flag" not in df.columns:
            df = df.assign(flag="")
        if "tz_offset_min" not in df.columns:
            df = df.assign(tz_offset_min=0)
        if "line_no" not in df.columns:
            df = df.assign(line_no=np.arange(1, len(df) + 1))
        return store_rows(self.engine, df, no_rejects(), source=source, fmt="table")

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
        usable_only: bool = False,
    ) -> pd.DataFrame:
        """Latest versions of readings as a long table (see :func:`query`)."""
        return query(self.engine, stations, parameters, start, end, usable_only=usable_only)

    def latest(self, at: object = None, stations: list[str] | None = None) -> pd.DataFrame:
        return latest(self.engine, at, stations)

    def rejected(self, batch_id: int | None = None) -> pd.DataFrame:
        q = sa.select(rejected)
        if batch_id is not None:
            q = q.where(rejected.c.batch_id == batch_id)
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(q).mappings().all())
