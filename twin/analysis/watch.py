"""Warning episodes kept up to date as readings arrive, without re-evaluating the history.

:func:`twin.analysis.alerts.evaluate` decides episodes over a whole history. A server showing
warnings while stations post readings would run it after every commit, over every
reading ever stored. :class:`Watch` keeps the same episodes up to date instead:

* readings are held per series (station, parameter); a reading given again for the
  same time replaces the one held (the store's current version);
* a series that received readings is resumed from the last point where no warning
  was open (keeping :func:`twin.analysis.alerts.lookback` readings before it for the rules'
  persistence and rise), or evaluated again from its start when a reading came
  before that point (a late or corrected reading);
* the end of the evaluated period (the last reading of all) decides whether a
  series' last open episode has expired; when it moves, only the series whose open
  episode it changes are resumed.

The episodes are exactly those :func:`twin.analysis.alerts.evaluate` gives over the same
readings (``tests/test_watch.py`` checks it on the demo twin and on generated series).

:class:`StoreWatch` feeds a :class:`Watch` from an operations store: each refresh
reads only the readings stored since the last one (by reading id; every version, so
that a correction replaces what it corrects), in one statement, hence from one
snapshot of the store.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from twin.analysis import alerts
from twin.ops.flags import usable
from twin.ops.store import BUSY_TIMEOUT_MS, datastreams, readings

log = logging.getLogger(__name__)

Key = tuple[str, str]

MAX_GAPS = 256
"""Ranges of reading ids a :class:`StoreWatch` on a server database keeps looking at (see there)."""
BULK_ROWS = 20_000
"""Above this many new reading ids, the embedded store is read through Arrow (ADBC)."""


@dataclass
class _Series:
    """What a :class:`Watch` holds of one series: its readings by time, and its episodes so far."""

    t: np.ndarray = field(default_factory=lambda: np.zeros(0, "int64"))  # ns since 1970, UTC, increasing
    v: np.ndarray = field(default_factory=lambda: np.zeros(0, "float64"))
    ok: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # evaluated: a value, a flag not ignored
    version: np.ndarray = field(default_factory=lambda: np.zeros(0, "int64"))
    done: list[dict[str, Any]] = field(default_factory=list)  # episodes that began before the quiet point
    tail: list[dict[str, Any]] = field(default_factory=list)  # episodes from the quiet point on (at most one)
    quiet: int = 0  # usable readings before the quiet point (no warning open before the next one)
    before_quiet: int | None = None  # a new reading at or before this time (ns) means evaluating from the start
    last: int | None = None  # time (ns) of the last usable reading
    on_expiry: bool = False  # the quiet point's reading expired the warning before it
    usable: int = 0  # how many usable readings

    def upsert(self, t: np.ndarray, v: np.ndarray, ok: np.ndarray, version: np.ndarray) -> None:
        """Add readings (sorted by time, one per time); one at a time already held replaces it unless older."""
        if not len(self.t) or t[0] > self.t[-1]:
            self.t, self.v = np.concatenate([self.t, t]), np.concatenate([self.v, v])
            self.ok, self.version = np.concatenate([self.ok, ok]), np.concatenate([self.version, version])
            return
        t_all = np.concatenate([self.t, t])
        ver = np.concatenate([self.version, version])
        # by time, then version, then held before given: the last of each time wins
        order = np.lexsort((np.arange(len(t_all)), ver, t_all))
        last = np.ones(len(order), dtype=bool)
        last[:-1] = t_all[order][1:] != t_all[order][:-1]
        keep = order[last]
        self.t, self.version = t_all[keep], ver[keep]
        self.v = np.concatenate([self.v, v])[keep]
        self.ok = np.concatenate([self.ok, ok])[keep]


class Watch:
    """Warning episodes over series of readings, kept up to date as readings are added.

    Parameters
    ----------
    stations, policy, escalation:
        As for :func:`twin.analysis.alerts.evaluate` (``stations``: ``id``, ``water_body``,
        ``target_class``; the default policy; travel hours to intakes and boundaries).

    Examples
    --------
    >>> import pandas as pd
    >>> stations = pd.DataFrame({"id": ["S1"], "water_body": ["river"], "target_class": [3]})
    >>> w = Watch(stations)
    >>> t = pd.date_range("2026-07-10", periods=6, freq="4h", tz="UTC")
    >>> _ = w.add(pd.DataFrame({"station": "S1", "parameter": "NH3-N", "time": t[:3], "value": [0.2, 5.0, 5.2]}))
    >>> w.episodes()[["station", "parameter", "level_name", "end_reason"]].to_dict("records")
    [{'station': 'S1', 'parameter': 'NH3-N', 'level_name': 'red', 'end_reason': None}]
    >>> _ = w.add(pd.DataFrame({"station": "S1", "parameter": "NH3-N", "time": t[3:], "value": [0.2, 0.2, 0.2]}))
    >>> w.episodes()["end_reason"].tolist()
    ['cleared']
    """

    def __init__(
        self,
        stations: pd.DataFrame,
        policy: alerts.Policy | None = None,
        escalation: pd.DataFrame | alerts.Escalation | None = None,
    ):
        self.policy = alerts.load_policy() if policy is None else policy
        alerts._check_inputs(pd.DataFrame(columns=["station", "parameter", "time", "value"]), stations)
        self._escalate = alerts._escalation_test(escalation, self.policy)
        self._info: dict[str, tuple[str, int]] = {
            str(i): (str(wb), int(tc))
            for i, wb, tc in zip(stations["id"], stations["water_body"], stations["target_class"])
        }
        self._ids = pd.DataFrame({"id": list(self._info), "water_body": "", "target_class": 0})
        self._watched = self.policy.watched()
        self._ignore = list(self.policy.ignore_flags)
        self._lookback = alerts.lookback(self.policy)
        self._expiry_ns = int(pd.Timedelta(hours=self.policy.expiry_hours).value)
        self._series: dict[Key, _Series] = {}
        self._until: int | None = None  # ns: the last reading of all, any parameter
        self._frame: pd.DataFrame | None = None

    @property
    def until(self) -> pd.Timestamp | None:
        """The end of the evaluated period: the time of the last reading added (any parameter)."""
        return None if self._until is None else pd.Timestamp(self._until, tz="UTC")

    def add(self, readings: pd.DataFrame) -> set[Key]:
        """Add readings: ``station``, ``parameter``, ``time`` (tz-aware), ``value``, optional ``flag`` and ``version``.

        A reading for a (station, parameter, time) already held replaces it, unless
        both carry a ``version`` and the held one's is higher (a late copy of what a
        correction replaced); of several given for one time, the highest version, then
        the last, is kept. Returns the series evaluated again.

        Raises
        ------
        AlertInputError
            Missing columns, naive times, readings of stations not in ``stations``.
        """
        if not len(readings):
            return set()
        alerts._check_inputs(readings, self._ids)
        t_all = pd.DatetimeIndex(readings["time"]).tz_convert("UTC").as_unit("ns").asi8
        until_before = self._until
        self._until = int(t_all.max()) if until_before is None else max(until_before, int(t_all.max()))
        watched = readings["parameter"].isin(self._watched).to_numpy(dtype=bool)
        changed: set[Key] = set()
        if watched.any():
            # the same test as alerts.evaluated, on the rows of watched parameters
            flag = readings["flag"].fillna("").astype(str) if "flag" in readings.columns else None
            value = pd.to_numeric(readings["value"]).to_numpy(dtype="float64")[watched]
            ok = ~np.isnan(value)
            if flag is not None:
                ok &= (usable(flag) & ~flag.isin(self._ignore).to_numpy(dtype=bool))[watched]
            version = (
                readings["version"].to_numpy(dtype="int64")[watched]
                if "version" in readings.columns
                else np.zeros(len(value), "int64")
            )
            st_codes, st_names = pd.factorize(readings["station"].astype(str).to_numpy(dtype=object)[watched])
            pa_codes, pa_names = pd.factorize(readings["parameter"].astype(str).to_numpy(dtype=object)[watched])
            t = t_all[watched]
            # per series by time, and of one time the highest version, then the last given
            order = np.lexsort((np.arange(len(t)), version, t, pa_codes, st_codes))
            series = (st_codes.astype(np.int64) * len(pa_names) + pa_codes)[order]
            t, value, ok, version = t[order], value[order], ok[order], version[order]
            last = np.ones(len(order), dtype=bool)
            last[:-1] = (series[1:] != series[:-1]) | (t[1:] != t[:-1])
            series, t, value, ok, version = series[last], t[last], value[last], ok[last], version[last]
            starts = np.flatnonzero(np.r_[True, series[1:] != series[:-1]])
            clean: dict[str, list[tuple[Key, _Series, np.ndarray, np.ndarray]]] = {}
            for a, b in zip(starts, np.r_[starts[1:], len(series)]):
                code = int(series[a])
                key = (str(st_names[code // len(pa_names)]), str(pa_names[code % len(pa_names)]))
                held = self._series.setdefault(key, _Series())
                after_quiet_end = held.quiet == held.usable and (not len(held.t) or t[a] > held.t[-1])
                full = held.before_quiet is not None and int(t[a]) <= held.before_quiet
                held.upsert(t[a:b], value[a:b], ok[a:b], version[a:b])
                changed.add(key)
                if after_quiet_end:  # readings after the end of a series with no warning open
                    clean.setdefault(key[1], []).append((key, held, t[a:b][ok[a:b]], value[a:b][ok[a:b]]))
                else:
                    self._evaluate(key, held, full)
            for parameter, tails in clean.items():
                self._extend(parameter, tails)
        if until_before is not None and self._until != until_before:
            for key, held in self._series.items():
                if key not in changed and held.quiet < held.usable and self._flips(held.last, until_before):
                    self._evaluate(key, held, False)
                    changed.add(key)
        return changed

    def episodes(self) -> pd.DataFrame:
        """The episodes, as :func:`twin.analysis.alerts.evaluate` gives them over every reading added so far."""
        if self._frame is None:
            if not any(s.usable for s in self._series.values()):
                self._frame = pd.DataFrame(columns=alerts.EPISODE_COLUMNS)
            else:
                rows = [row for s in self._series.values() for row in (*s.done, *s.tail)]
                self._frame = alerts._frame(rows)
        return self._frame

    # -- internals -------------------------------------------------------------------------------
    def _flips(self, last: int | None, until_before: int) -> bool:
        """Whether moving the period's end from ``until_before`` expires an episode open at ``last``."""
        assert last is not None and self._until is not None
        return (until_before - last > self._expiry_ns) != (self._until - last > self._expiry_ns)

    def _extend(self, parameter: str, tails: list[tuple[Key, _Series, np.ndarray, np.ndarray]]) -> None:
        """Series of one parameter that got readings after their end, with no warning open before them.

        Where no rule may hold at any of the new readings (:func:`twin.analysis.alerts.may_warn`, one
        call for all the series), no warning starts and the series stays quiet to its new
        end; the others are evaluated from their quiet point.
        """
        values = np.concatenate([v for *_, v in tails])
        info = [self._info[key[0]] for key, *_ in tails]
        sizes = [len(v) for *_, v in tails]
        target = np.repeat([tc for _, tc in info], sizes)
        water_body = np.repeat(np.asarray([wb for wb, _ in info], dtype=object), sizes)
        may = alerts.may_warn(parameter, values, target, water_body, self.policy) if len(values) else values > 0
        ends = np.cumsum(sizes)
        for (key, held, t, _), a, b in zip(tails, ends - sizes, ends):
            if may[a:b].any():
                self._evaluate(key, held, False)
            elif len(t):
                if not held.usable:  # the first readings evaluated: the empty table gets its types
                    self._frame = None
                held.usable += len(t)
                held.quiet, held.on_expiry = held.usable, False
                held.before_quiet = held.last = int(t[-1])

    def _evaluate(self, key: Key, held: _Series, full: bool) -> None:
        """Evaluate a series again: from its start if ``full``, else from its quiet point."""
        self._frame = None
        station, parameter = key
        t, v = held.t[held.ok], held.v[held.ok]
        held.usable = len(t)
        if full:
            held.done, held.quiet, held.on_expiry = [], 0, False
        if not len(t):
            held.done, held.tail, held.quiet, held.before_quiet, held.last = [], [], 0, None, None
            held.on_expiry = False
            return
        q = held.quiet
        s = max(0, q - self._lookback)
        wb, target = self._info[station]
        assert self._until is not None
        found, quiet, on_expiry = alerts._series(
            station,
            parameter,
            pd.DatetimeIndex(t[s:], tz="UTC"),
            v[s:],
            target,
            wb,
            self.policy,
            self._escalate,
            pd.Timestamp(self._until, tz="UTC"),
            start=q - s,
            start_on_expiry=held.on_expiry,
        )
        rows = alerts._rows(found)
        quiet += s
        # episodes that began before the new quiet point are closed for good; the one after it may still change
        boundary = pd.Timestamp(t[quiet], tz="UTC") if quiet < len(t) else None
        ended = [r for r in rows if boundary is None or r["start"] < boundary]
        held.done += ended
        held.tail = rows[len(ended) :]
        held.quiet, held.on_expiry = quiet, on_expiry
        # what a reading may not come before for the series to resume here: the reading before the
        # quiet point; or the quiet point itself when its gap expired the warning before (a reading
        # between the two would keep that warning open)
        if on_expiry:
            held.before_quiet = int(t[quiet]) - 1
        else:
            held.before_quiet = int(t[quiet - 1]) if quiet > 0 else None
        held.last = int(t[-1])


class StoreWatch:
    """A :class:`Watch` over the readings of an operations store, refreshed with what was stored since.

    Each :meth:`refresh` reads the highest reading id, then the readings above the
    highest one already read, up to it (every version: a correction is a new row with a
    higher version; rows are never changed but for the ``current`` mark, which is not
    read). SQLite has one writer at a time, so reading ids grow in the order of their
    commits: every id up to the highest one read belongs to a committed reading. A
    server database (PostgreSQL) allocates ids before the commit, and a transaction may
    commit after one with higher ids; there the ids missing below the highest one read
    (a transaction not yet committed, or rolled back) are looked at again on every
    refresh, up to :data:`MAX_GAPS` ranges (the oldest are dropped beyond, with a
    warning in the log).

    Readings of stations not in ``stations`` are left out, as :func:`twin.analysis.response.warnings`
    does. Thread-safe: one refresh at a time.
    """

    def __init__(
        self,
        engine: sa.Engine,
        stations: pd.DataFrame,
        policy: alerts.Policy | None = None,
        escalation: pd.DataFrame | alerts.Escalation | None = None,
    ):
        self.engine = engine
        self.watch = Watch(stations, policy, escalation)
        self._stations = set(map(str, stations["id"]))
        self._names: dict[int, tuple[str, str]] = {}  # datastream id -> (station, parameter)
        self._after = 0
        self._gaps: list[tuple[int, int]] = []
        self._exact_ids = engine.dialect.name == "sqlite"
        self._lock = threading.Lock()

    @property
    def state(self) -> int:
        """The highest reading id the episodes reflect (with every lower one that was committed)."""
        return self._after

    def refresh(self) -> set[Key]:
        """Read the readings stored since the last refresh and evaluate the series they touch again."""
        with self._lock:
            return self._refresh()

    def episodes(self) -> pd.DataFrame:
        """The episodes over every reading in the store now (refreshed first)."""
        with self._lock:
            self._refresh()
            return self.watch.episodes()

    # -- internals -------------------------------------------------------------------------------
    def _refresh(self) -> set[Key]:
        with self.engine.connect() as conn:
            top = int(conn.execute(sa.select(sa.func.max(readings.c.id))).scalar() or 0)
        if top <= self._after and not self._gaps:
            return set()
        ids, ds, t, value, flag, version = self._read(top)
        if not self._exact_ids:
            self._track_gaps(np.sort(ids), top)
        self._after = max(self._after, top)
        if not len(ids):
            return set()
        if not set(np.unique(ds).tolist()) <= self._names.keys():
            with self.engine.connect() as conn:
                q = sa.select(datastreams.c.id, datastreams.c.station_id, datastreams.c.parameter)
                self._names = {int(i): (str(s), str(p)) for i, s, p in conn.execute(q).all()}
        lut_station = np.empty(max(self._names) + 1, dtype=object)
        lut_parameter = np.empty(len(lut_station), dtype=object)
        for i, (s, p) in self._names.items():
            lut_station[i], lut_parameter[i] = s, p
        station = lut_station[ds]
        keep = np.isin(station, list(self._stations))
        if not keep.any():
            return set()
        df = pd.DataFrame(
            {
                "station": station[keep],
                "parameter": lut_parameter[ds[keep]],
                "time": pd.to_datetime(t[keep], unit="s", utc=True),
                "value": value[keep],
                "flag": flag[keep],
                "version": version[keep],
            }
        )
        return self.watch.add(df)

    def _read(self, top: int) -> tuple[np.ndarray, ...]:
        """(id, datastream id, time, value, flag, version) of the readings after the last read, up to ``top``."""
        where = f"(id > {int(self._after)} AND id <= {int(top)})"
        if self._gaps:
            where += "".join(f" OR id BETWEEN {int(lo)} AND {int(hi)}" for lo, hi in self._gaps)
        sql = f"SELECT id, datastream_id, time, value, flag, version FROM readings WHERE {where}"
        if self._exact_ids and self.engine.url.database and top - self._after > BULK_ROWS:
            adbc: Any
            try:
                import adbc_driver_sqlite.dbapi as adbc
            except ImportError:  # pragma: no cover - the dependency is declared; keep working without it
                adbc = None
            if adbc is not None:
                return _read_arrow(adbc, self.engine.url.database, sql)
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(sql).all()
        if not rows:
            return tuple(np.zeros(0, d) for d in ("int64", "int64", "int64", "float64", object, "int64"))
        ids, ds, t, v, f, ver = zip(*rows)
        return (
            np.asarray(ids, "int64"),
            np.asarray(ds, "int64"),
            np.asarray(t, "int64"),
            np.asarray(v, "float64"),
            np.asarray(f, dtype=object),
            np.asarray(ver, "int64"),
        )

    def _track_gaps(self, ids: np.ndarray, top: int) -> None:
        """Ids not read yet below ``top``: the old gaps and the new span, less the ids just read."""
        spans = [*self._gaps, (self._after + 1, top)] if top > self._after else list(self._gaps)
        gaps: list[tuple[int, int]] = []
        for lo, hi in spans:
            a, b = np.searchsorted(ids, lo), np.searchsorted(ids, hi, side="right")
            start = lo
            for i in ids[a:b].tolist():
                if i > start:
                    gaps.append((start, i - 1))
                start = i + 1
            if start <= hi:
                gaps.append((start, hi))
        if len(gaps) > MAX_GAPS:
            log.warning("%d ranges of reading ids not committed yet; forgetting the oldest", len(gaps) - MAX_GAPS)
            gaps = gaps[-MAX_GAPS:]
        self._gaps = gaps


def _read_arrow(adbc: Any, path: str, sql: str) -> tuple[np.ndarray, ...]:
    """The columns of ``sql`` on the SQLite file at ``path``, read as Arrow (a first read of a whole store)."""
    with adbc.connect(path) as con, con.cursor() as cur:
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cur.execute(sql)
        table = cur.fetch_arrow_table()
    if not table.num_rows:
        return tuple(np.zeros(0, d) for d in ("int64", "int64", "int64", "float64", object, "int64"))
    flags = table.column(4).combine_chunks().dictionary_encode()  # a few distinct flags: no str per row
    flag = np.asarray(flags.dictionary.to_pylist(), dtype=object)[flags.indices.to_numpy(zero_copy_only=False)]
    return (
        table.column(0).to_numpy().astype("int64"),
        table.column(1).to_numpy().astype("int64"),
        table.column(2).to_numpy().astype("int64"),
        table.column(3).to_numpy().astype("float64"),
        flag,
        table.column(5).to_numpy().astype("int64"),
    )
