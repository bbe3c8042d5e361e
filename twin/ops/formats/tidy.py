"""The tidy CSV: ``station, time, parameter, value, unit, flag``, one reading a line.

The time carries its UTC offset (``2026-07-10T08:00:00+08:00`` or ``...Z``); a row
without one is rejected. The flag, optional, is one of the twin's
(:data:`twin.ops.flags.FLAGS`); the unit may be empty (dimensionless pH). A row cut short
(a truncated file) is rejected with that reason.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from twin.ops.errors import IngestError
from twin.ops.formats.source import Context, Parsed, Source, no_rejects

NAME = "tidy"
MEDIA_TYPES: tuple[str, ...] = ("text/csv", "application/csv")
COLUMNS = ("station", "time", "parameter", "value", "unit", "flag")
_NEED = ["station", "time", "parameter", "value", "unit"]


def sniff(name: str, head: bytes) -> bool:
    """A ``.csv`` file, or text whose first line names the tidy columns."""
    if name.lower().endswith(".csv"):
        return True
    first = head.decode("utf-8-sig", errors="ignore").split("\n", 1)[0]
    return set(_NEED) <= {c.strip() for c in first.split(",")}


def parse(source: Source, *, context: Context) -> Parsed:
    """Rows of a tidy CSV; rows without a zone or cut short are rejected with the reason."""
    return parse_frame(source.csv(), source.name)


def parse_frame(df: pd.DataFrame, name: str) -> Parsed:
    """Rows of a table of text cells with the tidy columns (a CSV as read, or a JSON batch)."""
    missing = [c for c in _NEED if c not in df.columns]
    if missing:
        raise IngestError(f"'{name}' lacks column(s) {missing}; a tidy CSV has station,time,parameter,value,unit,flag")
    if "flag" not in df:
        df = df.assign(flag="")
    df = df.assign(line_no=np.arange(len(df)) + 2)  # the header is line 1

    def text(rows: pd.DataFrame) -> pd.Series:  # the line as read, for the rows rejected here
        return rows[list(COLUMNS)].fillna("").astype(str).agg(",".join, axis=1)

    out = []
    filled = ["station", "time", "parameter", "value"]  # the unit may be empty (dimensionless pH)
    blank = (df[filled].fillna("") == "").any(axis=1)
    cut = df[_NEED].isna().any(axis=1) | blank
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
    times, offsets = zoned_times(df["time"].astype(str))
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
    return Parsed(df, pd.concat(out, ignore_index=True) if out else no_rejects())


def zoned_times(text: pd.Series) -> tuple[pd.Series, pd.Series]:
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
