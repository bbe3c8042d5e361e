"""Ingest formats: each parser turns a file into tidy rows plus the rows it could not parse.

Formats (``fmt``):

``tidy``
    CSV with columns ``station, time, parameter, value, unit, flag``; the time
    carries its UTC offset (``2026-07-10T08:00:00+08:00`` or ``...Z``); the flag
    is one of the twin's (:data:`twin.ops.flags.FLAGS`).
``cnemc``
    The wide CSV of China's national surface-water automatic stations: Chinese
    headers, Beijing time (UTC+8) without zone, empty cells for parameters not
    measured (as is ``--``), optional UTF-8 BOM. Station names are mapped to station ids
    through the station list (the ``name`` of each station). The official
    ``水质类别`` column is a derived class, not a reading: it is not stored. Times
    may be written ``2026-07-09 21:00`` or ``2026/7/9 21:00`` (seconds optional). A
    status column (``状态`` or ``站点情况``), where an export has one, flags the row's
    readings (:data:`twin.ops.flags.CNEMC_STATUS`); an unknown status word rejects the row.
``netcdf``
    NetCDF-CF discrete sampling geometry, ``featureType = timeSeries``, in the
    orthogonal or incomplete multidimensional representation (a station
    dimension and a time or obs dimension); the station ids come from the
    variable with ``cf_role = timeseries_id``; data variables are named after
    the parameter ids (or carry a ``parameter`` attribute) and have ``units``.
    The time variable must have CF ``units`` (``hours since 2026-01-01``); any CF
    calendar is read (``noleap``, ``360_day``...), and a date that does not exist
    in the real calendar (30 February) rejects its rows. ``time`` may lie along the
    time dimension, the obs dimension (``time(obs)``) or both (``time(station, obs)``).
    Ragged-array representations are refused with a clear error.
``hj212``
    HJ 212-2017 messages, one per line (see :mod:`twin.ops.hj212`); the MN
    (equipment number) is the station id; data flags are mapped onto the twin's
    (:data:`twin.ops.flags.HJ212_FLAGS`: HJ 212's ``S``, set by hand, becomes ``H``).

Text files (tidy, CNEMC) are read as UTF-8 (with or without BOM) or, failing that, as
GB18030 (which covers GBK and GB2312, the encodings of Chinese spreadsheet exports); a
file that is neither is refused with what to convert it to.

Every parser only *parses*: the checks of values, times, flags and units are made
once, for all formats, by :func:`twin.ops.readings.check_rows`.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from twin.ops import flags as _flags
from twin.ops.parameters import CNEMC_HEADERS
from twin.ops.readings import IngestError

if TYPE_CHECKING:
    import xarray as xr

FORMATS = ("tidy", "cnemc", "netcdf", "hj212")
ENCODINGS = ("utf-8-sig", "gb18030")
_EMPTY_REJECTS = pd.DataFrame(columns=["line_no", "raw", "reason"])


def read_text(path: Path) -> str:
    """A text file decoded as UTF-8 (BOM or not), UTF-16 (with BOM) or GB18030; IngestError if none fits."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise IngestError(f"cannot read '{path}' ({err.strerror}); check the path") from None
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # Excel's "Unicode text"
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        utf8 = err
    try:
        return data.decode("gb18030")  # a superset of GBK and GB2312
    except UnicodeDecodeError:
        pass
    raise IngestError(
        f"'{path}' is neither UTF-8 nor GB18030/GBK text (bytes {data[utf8.start : utf8.start + 4].hex(' ')} "
        f"at offset {utf8.start}); convert it to UTF-8 from the encoding it was saved in "
        "(e.g. iconv -f BIG5 -t UTF-8 in.csv > out.csv)"
    )


def _read_csv(path: Path, skipinitialspace: bool = True) -> pd.DataFrame:
    """A CSV of text cells (nothing taken as missing), decoded by :func:`read_text`."""
    text = read_text(path)
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=skipinitialspace)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise IngestError(f"'{path}' is not a readable CSV ({str(err).splitlines()[0]}); check the file") from None


def guess_format(path: Path) -> str:
    """The format of a file from its name and first line."""
    suffix = path.suffix.lower()
    if suffix in (".nc", ".nc4", ".cdf"):
        return "netcdf"
    raw = path.read_bytes()[:4000]
    head = raw.decode("utf-8-sig", errors="ignore")
    if head.startswith("##"):
        return "hj212"
    if "断面名称" in head or "断面名称" in raw.decode("gb18030", errors="ignore"):
        return "cnemc"
    if suffix == ".csv":
        return "tidy"
    raise IngestError(f"cannot tell the format of '{path}'; pass --format with one of {list(FORMATS)}")


def _zoned_times(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Times with an explicit zone, as UTC, and their offsets in minutes (NaT/NaN where there is none).

    Each distinct text is parsed once: a file repeats every time stamp for every
    station and parameter.
    """
    codes, uniques = pd.factorize(text)
    u = pd.Series(uniques, dtype=object).astype(str).str.strip()
    zone = u.str.extract(r"(Z|[+-]\d{2}:?\d{2})\s*$")[0]
    sign = np.where(zone.str.startswith("-"), -1, 1)
    digits = zone.str.replace(":", "", regex=False).str.lstrip("+-")
    minutes = pd.to_numeric(digits.str.slice(0, 2), errors="coerce") * 60 + pd.to_numeric(
        digits.str.slice(2, 4), errors="coerce"
    )
    minutes = (minutes * sign).where(zone != "Z", 0.0)
    times = pd.to_datetime(u.where(zone.notna()), utc=True, format="ISO8601", errors="coerce")
    take = np.where(codes < 0, 0, codes)
    out_t = pd.Series(times.to_numpy()[take], index=text.index).where(codes >= 0)
    out_m = pd.Series(minutes.to_numpy()[take], index=text.index).where(codes >= 0)
    return pd.to_datetime(out_t, utc=True), out_m


def parse_tidy(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of a tidy CSV; rows without a zone or cut short are rejected with the reason."""
    df = _read_csv(path)
    need = ["station", "time", "parameter", "value", "unit"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise IngestError(f"'{path}' lacks column(s) {missing}; a tidy CSV has station,time,parameter,value,unit,flag")
    if "flag" not in df:
        df["flag"] = ""
    df["line_no"] = np.arange(len(df)) + 2

    def text(rows: pd.DataFrame) -> pd.Series:  # the line as read, for the rows rejected here
        return rows[need + ["flag"]].fillna("").astype(str).agg(",".join, axis=1)

    out = []
    filled = ["station", "time", "parameter", "value"]  # the unit may be empty (dimensionless pH)
    blank = (df[filled].fillna("") == "").any(axis=1)
    cut = df[need].isna().any(axis=1) | blank
    if cut.any():
        out.append(
            pd.DataFrame(
                {
                    "line_no": df.loc[cut, "line_no"],
                    "raw": text(df.loc[cut]),
                    "reason": "incomplete row: station, time, parameter or value is empty or missing (truncated file?)",
                }
            )
        )
        df = df[~cut]
    times, offsets = _zoned_times(df["time"].astype(str))
    nozone = offsets.isna()
    if nozone.any():
        out.append(
            pd.DataFrame(
                {
                    "line_no": df.loc[nozone, "line_no"],
                    "raw": text(df.loc[nozone]),
                    "reason": "time without zone: " + df.loc[nozone, "time"] + " (give an offset such as +08:00 or Z)",
                }
            )
        )
    # the time as written stays beside the parsed one: an impossible date (29 February 2027) parses to NaT,
    # and the check that rejects it quotes the text
    df = df.assign(time_text=df["time"], time=times, tz_offset_min=offsets)[~nozone]
    rej = pd.concat(out, ignore_index=True) if out else _EMPTY_REJECTS
    return df, rej


CNEMC_TIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S")
CNEMC_STATUS_COLUMNS = ("状态", "站点情况")
CNEMC_NO_DATA = ("", "--", "—", "-")


def _local_times(text: pd.Series, formats: tuple[str, ...]) -> pd.Series:
    """Naive times of the first format each distinct text matches (``%m`` and ``%d`` take 7 as well as 07)."""
    codes, uniq = pd.factorize(text.str.strip())
    u = pd.Series(uniq, dtype=object)
    parsed = pd.Series(pd.NaT, index=u.index, dtype="datetime64[s]")
    for fmt in formats:
        todo = parsed.isna()
        if not todo.any():
            break
        parsed[todo] = pd.to_datetime(u[todo], format=fmt, errors="coerce")
    values = parsed.to_numpy()[np.where(codes < 0, 0, codes)] if len(u) else np.array([], "datetime64[s]")
    return pd.Series(values, index=text.index).where(codes >= 0)


def parse_cnemc(path: Path, station_names: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of the national automatic-station CSV; ``station_names`` maps names to station ids."""
    wide = _read_csv(path, skipinitialspace=False)
    for col in ("断面名称", "监测时间"):
        if col not in wide.columns:
            raise IngestError(f"'{path}' has no column {col}: not a national automatic-station file")
    wide["line_no"] = np.arange(len(wide)) + 2
    wide["raw"] = wide.drop(columns=["line_no"]).fillna("").astype(str).agg(",".join, axis=1)
    out = []

    def refuse(mask: pd.Series, reason: pd.Series | str) -> None:
        if mask.any():
            out.append(
                pd.DataFrame({"line_no": wide.loc[mask, "line_no"], "raw": wide.loc[mask, "raw"], "reason": reason})
            )

    name = wide["断面名称"].str.strip()
    unknown = ~name.isin(station_names.keys())
    refuse(unknown, "unknown station: name " + name[unknown] + " is not in the station list")
    wide, name = wide[~unknown], name[~unknown]
    local = _local_times(wide["监测时间"], CNEMC_TIME_FORMATS)
    badtime = local.isna()
    refuse(
        badtime,
        "unreadable time: " + wide.loc[badtime, "监测时间"] + " (expected e.g. 2026-07-09 21:00 or 2026/7/9 21:00)",
    )
    wide, name, local = wide[~badtime], name[~badtime], local[~badtime]
    status_col = next((c for c in CNEMC_STATUS_COLUMNS if c in wide.columns), None)
    if status_col is not None:
        status = wide[status_col].str.strip()
        strange = ~status.isin(_flags.CNEMC_STATUS.keys())
        refuse(
            strange,
            f"unknown status: {status_col} "
            + status[strange]
            + f" (known: {', '.join(k for k in _flags.CNEMC_STATUS if k)})",
        )
        wide, name, local, status = wide[~strange], name[~strange], local[~strange], status[~strange]
        flag = status.map(_flags.CNEMC_STATUS)
    else:
        flag = pd.Series("", index=wide.index, dtype=object)
    wide = wide.assign(
        time=local.dt.tz_localize("Asia/Shanghai").dt.tz_convert("UTC"), station=name.map(station_names), flag=flag
    )
    cols = [c for c in CNEMC_HEADERS if c in wide.columns]
    long = wide.melt(
        id_vars=["station", "time", "line_no", "raw", "flag"], value_vars=cols, var_name="header", value_name="value"
    )
    long = long[~long["value"].str.strip().isin(CNEMC_NO_DATA)]  # empty or "--" = not measured
    long = long.assign(
        parameter=long["header"].map(CNEMC_HEADERS),
        unit=long["header"].str.extract(r"\(([^)]*)\)$")[0].fillna(""),
        tz_offset_min=480,
    )
    long = long.sort_values(["line_no", "parameter"]).reset_index(drop=True)
    rej = pd.concat(out, ignore_index=True) if out else _EMPTY_REJECTS
    return long, rej


def _cf_times(path: Path, time: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    """The CF time variable (read undecoded) as UTC datetime64[s], and as text in the file's calendar.

    NaT where a date is not a real one.

    Any CF calendar: ``cftime`` turns the numbers into dates of the file's calendar;
    a date that the real (proleptic Gregorian) calendar lacks, such as 30 February
    of a ``360_day`` calendar, becomes NaT and its rows are rejected by the checks.
    """
    import cftime

    units = time.attrs.get("units")
    calendar = str(time.attrs.get("calendar", "standard"))
    if not units or " since " not in str(units):
        raise IngestError(
            f"'{path}': the time variable has no CF units (got {units!r}); "
            "give it units such as 'hours since 2026-01-01 00:00:00'"
        )
    raw = np.asarray(time.values, dtype="float64")
    flat = raw.ravel()
    codes, uniq = pd.factorize(flat)
    finite = np.isfinite(uniq)
    try:
        dates = cftime.num2date(uniq[finite], str(units), calendar, only_use_cftime_datetimes=True)
    except ValueError as err:
        raise IngestError(f"'{path}': cannot read the time variable ({err}); check its units and calendar") from None
    text = np.full(len(uniq), "", dtype=object)
    text[finite] = [d.strftime("%Y-%m-%dT%H:%M:%S") for d in np.atleast_1d(dates)]
    stamps = pd.to_datetime(pd.Series(text), format="ISO8601", errors="coerce").to_numpy().astype("datetime64[s]")
    take = np.where(codes < 0, 0, codes)
    out = stamps[take] if len(uniq) else np.array([], "datetime64[s]")
    out[codes < 0] = np.datetime64("NaT")
    written = text[take] if len(uniq) else np.array([], dtype=object)
    written[codes < 0] = "missing"
    return out.reshape(raw.shape), written.reshape(raw.shape)


def parse_netcdf(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of a NetCDF-CF timeSeries file."""
    import xarray as xr

    try:
        ds = xr.open_dataset(path, decode_times=False)
    except (OSError, ValueError) as err:
        raise IngestError(f"'{path}' is not a readable NetCDF file ({str(err).splitlines()[0]})") from None
    with ds:
        if str(ds.attrs.get("featureType", "")).lower() != "timeseries":
            raise IngestError(
                f"'{path}' is not a CF timeSeries file (featureType is "
                f"{ds.attrs.get('featureType')!r}); only timeSeries is supported"
            )
        ids = [v for v in ds.variables if ds[v].attrs.get("cf_role") == "timeseries_id"]
        if not ids:
            raise IngestError(f"'{path}' has no variable with cf_role = timeseries_id to name its stations")
        sid = ds[ids[0]]
        if sid.ndim != 1:
            raise IngestError(f"'{path}': the station id variable must be one-dimensional")
        sdim = sid.dims[0]
        if "time" not in ds.variables or ds["time"].ndim not in (1, 2):
            raise IngestError(f"'{path}' has no usable time variable (ragged arrays are not supported)")
        time_var = ds["time"]
        stamps, written = _cf_times(path, time_var)
        times, texts = xr.Variable(time_var.dims, stamps), xr.Variable(time_var.dims, written)
        frames = []
        for name, var in ds.data_vars.items():
            if name in ids or name == "time" or sdim not in var.dims or var.ndim != 2:
                continue
            if not set(time_var.dims) <= set(var.dims):
                raise IngestError(
                    f"'{path}': variable {name!r} has dimensions {var.dims} but time has {time_var.dims}; "
                    "time must lie along the variable's time (or obs) dimension"
                )
            param = str(var.attrs.get("parameter", name))
            unit = str(var.attrs.get("units", ""))
            shape = dict(zip(var.dims, var.shape))
            t = times.set_dims(shape).values.ravel()
            t_text = texts.set_dims(shape).values.ravel()
            station_of = xr.Variable((sdim,), np.asarray(sid.to_numpy()).astype(str)).set_dims(shape).values.ravel()
            values = np.asarray(var.to_numpy(), dtype="float64").ravel()
            keep = ~np.isnan(values)
            stamp = pd.to_datetime(t[keep]).tz_localize("UTC") if keep.any() else pd.DatetimeIndex([], tz="UTC")
            frames.append(
                pd.DataFrame(
                    {
                        "station": pd.Series(station_of[keep]).str.strip(),
                        "time": stamp,
                        "tz_offset_min": 0,
                        "parameter": param,
                        "value": values[keep],
                        "unit": unit,
                        "flag": "",
                        "line_no": np.nan,
                        "raw": pd.Series(station_of[keep], dtype=object)
                        + " "
                        + param
                        + " "
                        + pd.Series(t_text[keep], dtype=object).astype(str),
                    }
                )
            )
    if not frames:
        raise IngestError(f"'{path}' holds no data variable along the station dimension")
    return pd.concat(frames, ignore_index=True), _EMPTY_REJECTS


def parse_hj212(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of HJ 212-2017 messages, one per line; the MN is the station id."""
    from twin.ops import hj212

    lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    rows, rej = hj212.parse_lines(lines)
    rows = rows.rename(columns={"mn": "station"})
    # HJ 212's flags in the twin's vocabulary (its S, a value set by hand, is the twin's H); none sent: none
    rows["flag"] = rows["flag"].map(_flags.HJ212_FLAGS).where(rows["flag"].notna(), "")
    rows["tz_offset_min"] = 480
    rows["raw"] = rows["line_no"].map(lambda n: lines[int(n) - 1][:300] if 0 < int(n) <= len(lines) else "")
    return rows, rej
