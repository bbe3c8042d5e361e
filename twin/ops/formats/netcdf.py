"""NetCDF-CF time series: discrete sampling geometry with ``featureType = timeSeries``.

The orthogonal or incomplete multidimensional representation (a station dimension and a
time or obs dimension); the station ids come from the variable with ``cf_role =
timeseries_id``; data variables are named after the parameter ids (or carry a
``parameter`` attribute) and have ``units``. The time variable must have CF ``units``
(``hours since 2026-01-01``); any CF calendar is read (``noleap``, ``360_day``...), and a
date that does not exist in the real calendar (30 February) rejects its rows. ``time``
may lie along the time dimension, the obs dimension (``time(obs)``) or both
(``time(station, obs)``). Ragged-array representations are refused with a clear error.

A file is opened where it lies; a body (a NetCDF posted to the web) is opened in memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from twin.ops.errors import IngestError
from twin.ops.formats.source import Context, Parsed, Source

if TYPE_CHECKING:
    import xarray as xr

NAME = "netcdf"
MEDIA_TYPES: tuple[str, ...] = ("application/netcdf", "application/x-netcdf")
SUFFIXES = (".nc", ".nc4", ".cdf")
MAGIC = (b"CDF\x01", b"CDF\x02", b"CDF\x05", b"\x89HDF\r\n\x1a\n")  # NetCDF-3 classic/64-bit, NetCDF-4 (HDF5)


def sniff(name: str, head: bytes) -> bool:
    """A ``.nc`` (``.nc4``, ``.cdf``) name, or the magic bytes of NetCDF-3 or NetCDF-4."""
    return name.lower().endswith(SUFFIXES) or head.startswith(MAGIC)


def _open(source: Source) -> xr.Dataset:
    import xarray as xr

    try:
        if source.path is not None:
            return xr.open_dataset(source.path, decode_times=False)
        import netCDF4

        nc = netCDF4.Dataset(source.name, memory=source.read())
        return xr.open_dataset(xr.backends.NetCDF4DataStore(nc), decode_times=False)
    except (OSError, ValueError) as err:
        raise IngestError(f"'{source.name}' is not a readable NetCDF file ({str(err).splitlines()[0]})") from None


def parse(source: Source, *, context: Context) -> Parsed:
    """Rows of a NetCDF-CF timeSeries file."""
    import xarray as xr

    path = source.name
    ds = _open(source)
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
        stamps, written = cf_times(path, time_var)
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
    return Parsed(pd.concat(frames, ignore_index=True))


def cf_times(path: str, time: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
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
