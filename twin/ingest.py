"""Ingest formats: each parser turns a file into tidy rows plus the rows it could not parse.

Formats (``fmt``):

``tidy``
    CSV with columns ``station, time, parameter, value, unit, flag``; the time
    carries its UTC offset (``2026-07-10T08:00:00+08:00`` or ``...Z``).
``cnemc``
    The wide CSV of China's national surface-water automatic stations: Chinese
    headers, Beijing time (UTC+8) without zone, empty cells for parameters not
    measured, optional UTF-8 BOM. Station names are mapped to station ids
    through the station list (the ``name`` of each station). The official
    ``水质类别`` column is a derived class, not a reading: it is not stored.
``netcdf``
    NetCDF-CF discrete sampling geometry, ``featureType = timeSeries``, in the
    orthogonal or incomplete multidimensional representation (a station
    dimension and a time or obs dimension); the station ids come from the
    variable with ``cf_role = timeseries_id``; data variables are named after
    the parameter ids (or carry a ``parameter`` attribute) and have ``units``.
    Ragged-array representations are refused with a clear error.
``hj212``
    HJ 212-2017 messages, one per line (see :mod:`twin.hj212`); the MN
    (equipment number) is the station id.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .parameters import CNEMC_HEADERS
from .readings import IngestError

FORMATS = ("tidy", "cnemc", "netcdf", "hj212")
_EMPTY_REJECTS = pd.DataFrame(columns=["line_no", "raw", "reason"])


def guess_format(path: Path) -> str:
    """The format of a file from its name and first line."""
    suffix = path.suffix.lower()
    if suffix in (".nc", ".nc4", ".cdf"):
        return "netcdf"
    head = path.read_bytes()[:400].decode("utf-8-sig", errors="replace")
    if head.startswith("##"):
        return "hj212"
    if "断面名称" in head:
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
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise IngestError(f"'{path}' is not a readable CSV ({str(err).splitlines()[0]}); check the file") from None
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
    df = df.assign(time=times, tz_offset_min=offsets)[~nozone]
    rej = pd.concat(out, ignore_index=True) if out else _EMPTY_REJECTS
    return df, rej


def parse_cnemc(path: Path, station_names: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of the national automatic-station CSV; ``station_names`` maps names to station ids."""
    try:
        wide = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise IngestError(f"'{path}' is not a readable CSV ({str(err).splitlines()[0]}); check the file") from None
    for col in ("断面名称", "监测时间"):
        if col not in wide.columns:
            raise IngestError(f"'{path}' has no column {col}: not a national automatic-station file")
    wide["line_no"] = np.arange(len(wide)) + 2
    wide["raw"] = wide.drop(columns=["line_no"]).fillna("").astype(str).agg(",".join, axis=1)
    out = []
    name = wide["断面名称"].str.strip()
    unknown = ~name.isin(station_names.keys())
    if unknown.any():
        out.append(
            pd.DataFrame(
                {
                    "line_no": wide.loc[unknown, "line_no"],
                    "raw": wide.loc[unknown, "raw"],
                    "reason": "unknown station: name " + name[unknown] + " is not in the station list",
                }
            )
        )
    wide, name = wide[~unknown], name[~unknown]
    local = pd.to_datetime(wide["监测时间"].str.strip(), format="%Y-%m-%d %H:%M", errors="coerce")
    badtime = local.isna()
    if badtime.any():
        out.append(
            pd.DataFrame(
                {
                    "line_no": wide.loc[badtime, "line_no"],
                    "raw": wide.loc[badtime, "raw"],
                    "reason": "missing or unreadable time: " + wide.loc[badtime, "监测时间"],
                }
            )
        )
    wide = wide[~badtime].assign(
        time=local[~badtime].dt.tz_localize("Asia/Shanghai").dt.tz_convert("UTC"),
        station=name[~badtime].map(station_names),
    )
    cols = [c for c in CNEMC_HEADERS if c in wide.columns]
    long = wide.melt(
        id_vars=["station", "time", "line_no", "raw"], value_vars=cols, var_name="header", value_name="value"
    )
    long = long[long["value"].str.strip() != ""]  # empty = not measured
    long = long.assign(
        parameter=long["header"].map(CNEMC_HEADERS),
        unit=long["header"].str.extract(r"\(([^)]*)\)$")[0].fillna(""),
        tz_offset_min=480,
        flag="",
    )
    long = long.sort_values(["line_no", "parameter"]).reset_index(drop=True)
    rej = pd.concat(out, ignore_index=True) if out else _EMPTY_REJECTS
    return long, rej


def parse_netcdf(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of a NetCDF-CF timeSeries file."""
    import xarray as xr

    try:
        ds = xr.open_dataset(path)
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
        frames = []
        for name, var in ds.data_vars.items():
            if name in ids or sdim not in var.dims or var.ndim != 2:
                continue
            param = str(var.attrs.get("parameter", name))
            unit = str(var.attrs.get("units", ""))
            df = var.to_dataframe().reset_index()
            time = ds["time"].broadcast_like(var).to_numpy().ravel() if ds["time"].ndim == 2 else None
            df["time_value"] = time if time is not None else df["time"]
            df["station"] = np.asarray(sid.to_numpy()).astype(str)[df[sdim].to_numpy()] if sdim in df else None
            df = df[df[name].notna()]
            frames.append(
                pd.DataFrame(
                    {
                        "station": df["station"].str.strip(),
                        "time": pd.to_datetime(df["time_value"]).dt.tz_localize("UTC"),
                        "tz_offset_min": 0,
                        "parameter": param,
                        "value": df[name].astype(float),
                        "unit": unit,
                        "flag": "",
                        "line_no": np.nan,
                        "raw": df["station"].astype(str) + " " + param,
                    }
                )
            )
    if not frames:
        raise IngestError(f"'{path}' holds no data variable along the station dimension")
    return pd.concat(frames, ignore_index=True), _EMPTY_REJECTS


def parse_hj212(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of HJ 212-2017 messages, one per line; the MN is the station id."""
    from . import hj212

    lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    rows, rej = hj212.parse_lines(lines)
    rows = rows.rename(columns={"mn": "station"})
    rows["tz_offset_min"] = 480
    rows["raw"] = rows["line_no"].map(lambda n: lines[int(n) - 1][:300] if 0 < int(n) <= len(lines) else "")
    return rows, rej
