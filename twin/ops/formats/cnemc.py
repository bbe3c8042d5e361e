"""The wide CSV of China's national surface-water automatic stations (国家地表水水质自动监测站).

Chinese headers, one column per parameter (:data:`twin.ops.parameters.CNEMC_HEADERS`),
Beijing time (UTC+8) without zone, empty cells (or ``--``) for parameters not measured,
optional UTF-8 BOM. Station names (``断面名称``) are mapped to station ids through the
station list (the ``name`` of each station, :attr:`Context.station_names`). The official
``水质类别`` column is a derived class, not a reading: it is not stored. Times may be
written ``2026-07-09 21:00`` or ``2026/7/9 21:00`` (seconds optional). A status column
(``状态`` or ``站点情况``), where an export has one, flags the row's readings
(:data:`twin.ops.flags.CNEMC_STATUS`); an unknown status word rejects the row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from twin.ops import flags as _flags
from twin.ops.errors import IngestError
from twin.ops.formats.source import Context, Parsed, Source, no_rejects
from twin.ops.parameters import CNEMC_HEADERS

NAME = "cnemc"
MEDIA_TYPES: tuple[str, ...] = ("text/csv", "application/csv")
TIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S")
STATUS_COLUMNS = ("状态", "站点情况")
NO_DATA = ("", "--", "—", "-")
_MARK = "断面名称"


def sniff(name: str, head: bytes) -> bool:
    """A station-name column (断面名称) in the first bytes, read as UTF-8 or GB18030."""
    return _MARK in head.decode("utf-8-sig", errors="ignore") or _MARK in head.decode("gb18030", errors="ignore")


def parse(source: Source, *, context: Context) -> Parsed:
    """Rows of the national automatic-station CSV; station names become ids through ``context``."""
    station_names = context.station_names
    wide = source.csv(skipinitialspace=False)
    for col in (_MARK, "监测时间"):
        if col not in wide.columns:
            raise IngestError(f"'{source.name}' has no column {col}: not a national automatic-station file")
    wide["line_no"] = np.arange(len(wide)) + 2
    wide["raw"] = wide.drop(columns=["line_no"]).fillna("").astype(str).agg(",".join, axis=1)
    out = []

    def refuse(mask: pd.Series, reason: pd.Series | str) -> None:
        if mask.any():
            out.append(
                pd.DataFrame({"line_no": wide.loc[mask, "line_no"], "raw": wide.loc[mask, "raw"], "reason": reason})
            )

    name = wide[_MARK].str.strip()
    unknown = ~name.isin(station_names.keys())
    refuse(unknown, "unknown station: name " + name[unknown] + " is not in the station list")
    wide, name = wide[~unknown], name[~unknown]
    local = local_times(wide["监测时间"], TIME_FORMATS)
    badtime = local.isna()
    refuse(
        badtime,
        "unreadable time: " + wide.loc[badtime, "监测时间"] + " (expected e.g. 2026-07-09 21:00 or 2026/7/9 21:00)",
    )
    wide, name, local = wide[~badtime], name[~badtime], local[~badtime]
    status_col = next((c for c in STATUS_COLUMNS if c in wide.columns), None)
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
        time=local.dt.tz_localize("Asia/Shanghai").dt.tz_convert("UTC"),
        station=name.map(dict(station_names)),
        flag=flag,
    )
    cols = [c for c in CNEMC_HEADERS if c in wide.columns]
    long = wide.melt(
        id_vars=["station", "time", "line_no", "raw", "flag"], value_vars=cols, var_name="header", value_name="value"
    )
    long = long[~long["value"].str.strip().isin(NO_DATA)]  # empty or "--" = not measured
    long = long.assign(
        parameter=long["header"].map(CNEMC_HEADERS),
        unit=long["header"].str.extract(r"\(([^)]*)\)$")[0].fillna(""),
        tz_offset_min=480,
    )
    long = long.sort_values(["line_no", "parameter"]).reset_index(drop=True)
    return Parsed(long, pd.concat(out, ignore_index=True) if out else no_rejects())


def local_times(text: pd.Series, formats: tuple[str, ...]) -> pd.Series:
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
