"""Terrain: the DEM in the working CRS, and its hydrological conditioning.

Conditioning fills every depression to its spill level (priority-flood, see
:mod:`twin.model.kernels`); it does not breach. What it changed is kept as a raster
(metres raised per cell), so an expert can see where the model departs from the
measured terrain.

Summaries over a whole grid (:meth:`Terrain.elevation_range`,
:meth:`Terrain.conditioning_summary`) read it in blocks of rows (:func:`row_chunks`), so
that what they hold at once is one block's worth (:data:`CHUNK_BYTES`), not a grid's
temporaries: a large twin's grids are memory maps (:mod:`twin.model.folder`), and a
summary of one must not read them whole into memory.
"""

from __future__ import annotations

import logging
import math
import mmap
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from twin.model import blocks, kernels
from twin.model.loaders import Elevation, Grid

#: working memory of one block of rows of a chunked summary, bytes (about; a block has at least one row)
CHUNK_BYTES = 64 * 2**20
#: what the conditioning summary holds per cell of a block: both grids' pages, the
#: float32 difference, two masks and the float64 copy that is summed
_CONDITIONING_CELL_BYTES = 4 + 4 + 4 + 1 + 1 + 8

log = logging.getLogger(__name__)


def to_dataarray(
    values: np.ndarray,
    grid: Grid,
    name: str,
    units: str,
    nodata: float | int | None = None,
    long_name: str | None = None,
) -> xr.DataArray:
    """A grid array as an ``xarray.DataArray`` with x/y cell-centre coordinates and CRS."""
    nrow, ncol = grid.shape
    t = grid.transform
    x = t.c + (np.arange(ncol) + 0.5) * t.a
    y = t.f + (np.arange(nrow) + 0.5) * t.e
    da = xr.DataArray(
        values,
        dims=("y", "x"),
        coords={"y": y, "x": x},
        name=name,
        attrs={"units": units, "long_name": long_name or name},
    )
    # in place: each rio.write_* without it copies the whole grid (three copies of a 4 MB grid)
    da.rio.write_crs(grid.crs.to_wkt(), inplace=True)
    da.rio.write_transform(grid.transform, inplace=True)
    if nodata is not None:
        da.rio.write_nodata(nodata, encoded=False, inplace=True)
    return da


def row_chunks(shape: tuple[int, int], cell_bytes: int) -> Iterator[slice]:
    """Consecutive blocks of rows that cover a grid of ``shape``, top to bottom.

    Each block has as many rows as fit in :data:`CHUNK_BYTES` at ``cell_bytes`` bytes of
    working memory per cell (what the computation over a block holds for each of its
    cells), and at least one row however wide the grid.

    Examples
    --------
    >>> [(s.start, s.stop) for s in row_chunks((5, 2**20), 32)]
    [(0, 2), (2, 4), (4, 5)]
    """
    nrow, ncol = shape
    step = max(1, CHUNK_BYTES // max(1, ncol * cell_bytes))
    for start in range(0, nrow, step):
        yield slice(start, min(start + step, nrow))


def _shared_map(a: np.ndarray) -> mmap.mmap | None:
    """The memory map under ``a`` if ``a`` is (a view of) a read-only ``numpy.memmap``, else None.

    Read-only (``mode="r"``) means a shared map of the file: its pages hold the file's own
    bytes. A copy-on-write map (``mode="c"``) may hold changes that dropping its pages would
    lose, so it gets None, as does every array whose memory is not a map.
    """
    read_only_map = False
    obj: object = a
    while isinstance(obj, np.ndarray):
        if isinstance(obj, np.memmap):
            if obj.mode != "r":
                return None
            read_only_map = True
        obj = obj.base
    return obj if read_only_map and isinstance(obj, mmap.mmap) else None


def release_rows(a: np.ndarray, rows: slice) -> None:
    """Unmap from this process the pages of a read-only memory-mapped grid's ``rows`` that are read.

    A memory-mapped grid's pages stay in the process's resident memory once touched, so a
    summary that reads a whole grid would end up holding all of it. Its blocks' pages are
    dropped (``madvise(MADV_DONTNEED)``) as it goes: they are the file's bytes, still in the
    page cache for every other reader, and reading them again only maps them back in.
    Whole pages only: the one a block shares with the next is dropped with the next. A
    no-op for an array that is not a read-only memory map, one that is not C-contiguous,
    and where the platform has no ``madvise``.
    """
    mm = _shared_map(a)
    advice = getattr(mmap, "MADV_DONTNEED", None)
    if mm is None or advice is None or not hasattr(mm, "madvise") or not a.flags.c_contiguous or a.ndim != 2:
        return
    row_bytes = a.shape[1] * a.itemsize
    base = np.frombuffer(mm, dtype=np.uint8).ctypes.data  # the map's first byte (page-aligned)
    start = a.ctypes.data - base + rows.start * row_bytes
    stop = start + (rows.stop - rows.start) * row_bytes
    lo = max(0, start // mmap.PAGESIZE * mmap.PAGESIZE)  # the page before belongs to a block already read
    hi = stop // mmap.PAGESIZE * mmap.PAGESIZE
    if hi <= lo:
        return
    try:
        mm.madvise(advice, lo, hi - lo)
    except OSError as err:  # only memory stays higher than needed
        log.debug("madvise(MADV_DONTNEED) refused (%s); the grid's pages stay mapped", err)


def read_only(*arrays: np.ndarray) -> None:
    """Mark a model's arrays read-only: they are handed out as views, never copied, so nobody may write them."""
    for a in arrays:
        if isinstance(a, np.ndarray):
            a.flags.writeable = False


@dataclass(frozen=True)
class Terrain:
    """Measured and conditioned elevation on the twin's grid.

    Attributes
    ----------
    grid:
        Shape, transform and CRS of every raster of the twin.
    dem:
        Elevation as loaded (reprojected), float32 metres, NaN for nodata.
    conditioned:
        Elevation with depressions filled; ``conditioned - dem`` is what changed.
    """

    grid: Grid
    dem: np.ndarray
    conditioned: np.ndarray

    def __post_init__(self) -> None:
        read_only(self.dem, self.conditioned)

    @property
    def elevation(self) -> xr.DataArray:
        """Measured elevation (m) as a DataArray with CRS."""
        return to_dataarray(self.dem, self.grid, "elevation", "m", np.nan, "elevation above sea level")

    @property
    def conditioned_elevation(self) -> xr.DataArray:
        return to_dataarray(
            self.conditioned, self.grid, "conditioned_elevation", "m", np.nan, "elevation with depressions filled"
        )

    @property
    def change(self) -> xr.DataArray:
        """Metres added to each cell by conditioning (0 where nothing changed)."""
        return to_dataarray(
            self.conditioned - self.dem,
            self.grid,
            "conditioning_change",
            "m",
            np.nan,
            "metres raised by depression filling",
        )

    @property
    def valid(self) -> np.ndarray:
        return ~np.isnan(self.dem)

    def elevation_range(self) -> tuple[float, float]:
        """The lowest and highest measured elevation (m), nodata left out; NaN, NaN if all is nodata.

        Read in blocks of rows (:func:`row_chunks`), a memory-mapped DEM's pages released as
        it goes (:func:`release_rows`); the same two floats as ``np.nanmin`` and
        ``np.nanmax`` over the whole grid (a minimum is exact in any order).
        """
        lo, hi = math.inf, -math.inf
        for rows in row_chunks(self.dem.shape, self.dem.itemsize):
            block = self.dem[rows]
            # fmin/fmax skip NaN, as np.nanmin does (it is fmin.reduce), without its all-NaN warning
            bmin, bmax = float(np.fmin.reduce(block, axis=None)), float(np.fmax.reduce(block, axis=None))
            release_rows(self.dem, rows)
            if not math.isnan(bmin):
                lo, hi = min(lo, bmin), max(hi, bmax)
        return (lo, hi) if lo <= hi else (math.nan, math.nan)

    def conditioning_summary(self) -> dict[str, float | int]:
        """What conditioning changed: ``cells_raised``, ``max_raise_m`` (0 if none) and ``volume_m3`` filled.

        Over ``conditioned - dem`` with nodata left out, read in blocks of rows
        (:func:`row_chunks`; memory-mapped grids' pages released as it goes, :func:`release_rows`),
        so it holds one block's temporaries, not a grid's. The count and the maximum are
        exactly the whole-grid ones. The volume is summed in float64: each row's cells with
        numpy's pairwise sum, the rows' sums with ``math.fsum`` (correctly rounded), so it is
        the same float for any block size. It can differ from a whole-grid float64
        ``np.nansum`` in the last bits (that sum's own rounding; relative 1e-15 or so), and
        from the float32 sum earlier versions gave after the sixth significant digit or so.
        """
        shape = self.dem.shape
        step = next(row_chunks(shape, _CONDITIONING_CELL_BYTES), slice(0, 0))
        diff = np.empty((step.stop, shape[1]), dtype=np.result_type(self.conditioned, self.dem))
        wide = np.empty(diff.shape, dtype=np.float64)
        raised, top = 0, 0.0
        row_sums: list[np.ndarray] = []
        for rows in row_chunks(shape, _CONDITIONING_CELL_BYTES):
            d, w = diff[: rows.stop - rows.start], wide[: rows.stop - rows.start]
            np.subtract(self.conditioned[rows], self.dem[rows], out=d)
            release_rows(self.conditioned, rows)
            release_rows(self.dem, rows)
            up = int(np.count_nonzero(d > 0))
            if up:  # the largest raise is in a block with a raise (the others' maximum is 0 or less)
                raised, top = raised + up, max(top, float(np.fmax.reduce(d, axis=None)))
            np.copyto(w, d)
            np.copyto(w, 0.0, where=np.isnan(d))  # nodata adds nothing, as in np.nansum
            row_sums.append(w.sum(axis=1))
        volume = math.fsum(np.concatenate(row_sums).tolist()) if row_sums else 0.0
        return {"cells_raised": raised, "max_raise_m": top, "volume_m3": volume * self.grid.cell_area}


def condition(elevation: Elevation) -> tuple[Terrain, np.ndarray, np.ndarray]:
    """Fill depressions and route flow.

    Returns
    -------
    terrain, d8, order
        The terrain with its conditioned elevation, the D8 codes (uint8, 2-D) and
        the valid cells' flat indices ordered downstream-first (int32).
    """
    dem = np.ascontiguousarray(elevation.values, dtype=np.float32)
    filled = np.empty_like(dem)
    d8 = np.empty(dem.shape, dtype=np.uint8)
    order = np.empty(int(np.count_nonzero(~np.isnan(dem))), dtype=np.int32)
    kernels.flood(dem, filled, d8, order)  # the filled DEM; D8 and the order follow from it alone
    d8 = blocks.route_filled(filled, dem)
    order = kernels.topological_order(d8.ravel(), dem.shape[1])
    return Terrain(elevation.grid, dem, filled), d8, order
