"""A DEM read window by window: one GeoTIFF or COG, a GDAL VRT, several tiles or a folder of SRTM tiles.

The tiled build (DESIGN §3) never holds the DEM whole. :func:`open_dem` checks the
sources, decides the working grid by the same rules as
:func:`twin.model.loaders.load_dem`, and returns a :class:`DemSource`: a small,
picklable description of that grid and of how to read it. A Dask worker receives
the DemSource, opens the files itself (once per process and thread) and reads only
the windows it is given (:meth:`DemSource.read`, :meth:`DemSource.read_block`).

What is accepted, and how:

* **One raster file** (GeoTIFF, COG, SRTM ``.hgt`` or ``.hgt.zip``, any GDAL
  raster) or **one .vrt file**: read as it is. The sources a VRT names must exist.
* **Several files, or a folder** of them: the tiles of one mosaic. They must share
  one CRS and one cell size and lie on one grid (their origins a whole number of
  cells apart); they may overlap (SRTM tiles share their edge row and column), and
  where they do the first file wins, as in ``load_dem``. They are assembled into a
  GDAL VRT (written here as XML; nothing is copied), kept in the DemSource, or
  written to ``vrt_path`` when one is given. A folder's tiles are its files
  ending in ``.tif``, ``.tiff``, ``.hgt`` or ``.hgt.zip``, in name order.
* **SRTM tiles** are named after the south-west corner of the one-degree square
  they cover: ``N44E003.hgt``, ``N44E003.SRTMGL1.hgt.zip`` (NASA LP DAAC),
  ``n44_e003_1arc_v3.tif`` (USGS EarthExplorer GeoTIFF). SRTM ships no tile
  without land, so a rectangle of tiles over a coast has holes. A hole in the
  mosaic is an error naming the missing tiles, unless ``allow_gaps=True``: then
  the hole is nodata (NaN), like the sea. The same check applies to tiles of any
  name: the union of the tiles must cover their bounding rectangle.
* **Reprojection**, when the sources are not in the working CRS or a resolution
  is asked for: a GDAL warped VRT (``rasterio.vrt.WarpedVRT``) over the file or
  mosaic, bilinear, onto one grid: the UTM zone of the DEM's centre unless the
  catalog names a CRS, and cells of ``resolution`` metres or else of the ground
  size of a source pixel at the DEM's centre
  (:func:`twin.model.loaders.ground_cell`: a 41 m Web Mercator pixel at 34° N
  gives 34 m cells). For a mosaic, the centre is the whole mosaic's. The
  in-memory build (``load_dem``, ``read_whole``) and the tiled build both open
  the DEM here, so they pick the same grid.

Values, against ``load_dem``. Without reprojection they are the same, bit for bit
(the demo DEM is such a case). With reprojection, every cell is computed by GDAL's
warper block by block (512 x 128 cells, the warped VRT's blocks), never from the
window asked for, so a cell has the same value whatever window it is read in. GDAL
does not promise that by default: for a large request it warps the request as one
chunk, and both its approximate transformer (positions exact to 1/8 cell along
each warped row) and the downsampling kernel then depend on the chunk, so the same
cell read in two windows can differ (by metres on rough terrain). DemSource
therefore reads with ``GDAL_VRT_WARP_USE_DATASET_RASTERIO=NO``, which keeps every
read on the block path. ``load_dem`` reads its warped DEM in one request, so its
reprojected values differ from a DemSource's by that chunking alone (the same
options around ``load_dem`` make them equal; see tests/test_mosaic.py). A mosaic
that needs reprojection also differs from ``load_dem`` by design: ``load_dem``
warps each tile on its own and merges the results (a second resampling, and tile
edges interpolated without their neighbours); a DemSource warps the mosaic once.

Not checked when opening: that the DEM holds some valid cell (that needs a full
read; the build finds it), and the values of the tiles where they overlap.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS
from rasterio.errors import RasterioError
from rasterio.windows import Window

from twin.errors import CRSError, SourceError, TwinError
from twin.model.loaders import (
    Elevation,
    Grid,
    _open_raster,
    _resolve_crs,
    check_north_up,
    check_square,
    ground_cell,
    warp_grid,
    warped,
    working_crs,
)

log = logging.getLogger(__name__)

#: Files of a folder taken as tiles (``.hgt.zip``: SRTM as NASA ships it; GDAL reads it as is).
TILE_SUFFIXES = (".tif", ".tiff", ".hgt", ".hgt.zip")
#: GDAL option that keeps every read of a warped VRT on its block path (see the module docstring).
BLOCKWISE_WARP = {"GDAL_VRT_WARP_USE_DATASET_RASTERIO": "NO"}
#: Tiles whose origins are off the common grid by more than this fraction of a cell are not aligned.
ALIGN_TOLERANCE = 1e-3
#: Cell sizes that differ by more than this relative amount are different resolutions.
RES_TOLERANCE = 1e-9

_SRTM_NAME = re.compile(r"^([ns])(\d{1,2})_?([ew])(\d{1,3})(?![0-9])", re.IGNORECASE)


class WindowError(TwinError, IndexError):
    """A window that is not a pair of slices inside the DEM's grid."""


# ---------------------------------------------------------------------------
# The source
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Warp:
    """How the dataset is reprojected onto the DemSource's grid (picklable: WKT and numbers)."""

    src_crs: str
    src_nodata: float | None


@dataclass(frozen=True)
class DemSource:
    """A DEM in the working CRS, read window by window.

    Picklable (to send to Dask workers): it holds what to open, not an open file. Each
    process, and each thread in it, opens the files on its first read and keeps them
    open; a process forked from one that had them open opens its own.

    Attributes
    ----------
    grid:
        The working grid: shape, transform, CRS (the grid ``load_dem`` would return).
    dataset:
        What GDAL opens: a raster or VRT file's path, or the XML of the mosaic VRT.
    files:
        The source files, for messages.
    what:
        The name the DEM goes by in messages (e.g. ``DEM 'dem'``).
    nodata:
        The value read as NaN when the dataset is read as it is (None: none); a mosaic
        or a warp turns nodata into NaN itself.
    warp:
        How the dataset is reprojected onto ``grid``; None when it is on ``grid`` already.
    """

    grid: Grid
    dataset: str
    files: tuple[str, ...]
    what: str = "DEM"
    nodata: float | None = None
    warp: _Warp | None = None
    _local: threading.local = field(default_factory=threading.local, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_local", None)  # open files stay in the process that opened them
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            object.__setattr__(self, k, v)
        object.__setattr__(self, "_local", threading.local())

    @property
    def shape(self) -> tuple[int, int]:
        return self.grid.shape

    # -- reading -------------------------------------------------------------
    def read(self, window: tuple[slice, slice]) -> np.ndarray:
        """The cells of ``window`` (``(rows, cols)`` slices inside the grid) as float32, NaN on nodata.

        Only the window is read (plus, when reprojecting, the source cells around the
        warped blocks it touches), never the whole raster.

        Raises
        ------
        WindowError
            The window is not a pair of non-empty slices inside the grid.
        SourceError
            A file became unreadable (truncated, removed) since :func:`open_dem`.
        """
        (r0, r1), (c0, c1) = self._bounds(window)
        ds = self._dataset()
        try:
            with rasterio.Env(**BLOCKWISE_WARP):
                values = ds.read(1, window=Window(c0, r0, c1 - c0, r1 - r0), out_dtype="float32")
        except RasterioError as err:
            raise SourceError(
                f"{self.what} '{self.files[0]}'{' (and other tiles)' if len(self.files) > 1 else ''} "
                f"could not be read at rows {r0}:{r1}, columns {c0}:{c1} ({str(err).splitlines()[0]}); check the file"
            ) from None
        if self.warp is None and self.nodata is not None:
            values[values == self.nodata] = np.nan
        values[~np.isfinite(values)] = np.nan
        return values

    def read_block(self, window: tuple[slice, slice]) -> np.ndarray:
        """``window`` with a one-cell halo, NaN beyond the grid: :func:`twin.model.tiled.read_block` from files."""
        (r0, r1), (c0, c1) = self._bounds(window)
        nrow, ncol = self.grid.shape
        h0, h1 = max(r0 - 1, 0), min(r1 + 1, nrow)
        w0, w1 = max(c0 - 1, 0), min(c1 + 1, ncol)
        block = np.full((r1 - r0 + 2, c1 - c0 + 2), np.nan, dtype=np.float32)
        block[h0 - r0 + 1 : h1 - r0 + 1, w0 - c0 + 1 : w1 - c0 + 1] = self.read((slice(h0, h1), slice(w0, w1)))
        return block

    def close(self) -> None:
        """Close the files this thread opened (they reopen on the next read)."""
        handles = getattr(self._local, "handles", None)
        if handles is not None:
            for h in reversed(handles[1]):
                h.close()
            del self._local.handles

    def _bounds(self, window: tuple[slice, slice]) -> tuple[tuple[int, int], tuple[int, int]]:
        try:
            rows, cols = window
        except (TypeError, ValueError):
            raise WindowError(f"a window is a pair of slices (rows, cols); got {window!r}") from None
        out = []
        for s, n, name in ((rows, self.grid.shape[0], "rows"), (cols, self.grid.shape[1], "columns")):
            if not isinstance(s, slice) or s.step not in (None, 1):
                raise WindowError(f"a window is a pair of slices (rows, cols) with no step; got {window!r}")
            start, stop = s.start, s.stop
            if not (isinstance(start, (int, np.integer)) and isinstance(stop, (int, np.integer))):
                raise WindowError(f"window {name} need a start and a stop; got {s!r}")
            if not 0 <= start < stop <= n:
                raise WindowError(f"window {name} {start}:{stop} are not inside the grid's {n} {name}")
            out.append((int(start), int(stop)))
        return out[0], out[1]

    def _dataset(self) -> rasterio.io.DatasetReaderBase:
        """This process's and thread's open dataset (GDAL handles are not shared between threads)."""
        handles = getattr(self._local, "handles", None)
        if handles is not None and handles[0] == os.getpid():
            return handles[1][-1]
        try:
            src = rasterio.open(self.dataset)
        except RasterioError as err:
            raise SourceError(
                f"{self.what} '{self.files[0]}' cannot be opened ({str(err).splitlines()[0]}); check the file"
            ) from None
        opened: list[Any] = [src]
        if self.warp is not None:
            g = self.grid
            opened.append(
                warped(
                    src,
                    CRS.from_wkt(self.warp.src_crs),
                    g.crs,
                    self.warp.src_nodata,
                    (g.transform, g.shape[1], g.shape[0]),
                )
            )
        self._local.handles = (os.getpid(), opened)
        return opened[-1]


# ---------------------------------------------------------------------------
# Opening
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Tile:
    path: Path
    crs: CRS
    transform: Affine
    width: int
    height: int
    nodata: float | None
    dtype: str
    block: tuple[int, int]


def open_dem(
    paths: str | Path | Sequence[str | Path],
    *,
    declared_crs: str | None = None,
    nodata: float | None = None,
    target_crs: str | None = None,
    resolution: float | None = None,
    what: str = "DEM",
    allow_gaps: bool = False,
    vrt_path: str | Path | None = None,
) -> DemSource:
    """Check a DEM's sources and describe it, in the working CRS, for reading window by window.

    Parameters
    ----------
    paths:
        One raster or .vrt file, a folder of tiles, or several files and folders (one mosaic).
    declared_crs:
        CRS of files that carry none.
    nodata:
        Nodata value of files that declare none.
    target_crs:
        Working CRS, projected in metres; None: the UTM zone of the DEM's centre.
    resolution:
        Cell size in metres; None: the ground size of a source pixel at the DEM's centre
        (:func:`twin.model.loaders.ground_cell`), or the source's own grid when it is in the
        working CRS already.
    what:
        The DEM's name in messages.
    allow_gaps:
        Read a hole in a mosaic (e.g. a sea tile SRTM does not ship) as nodata instead of failing.
    vrt_path:
        Where to write the mosaic VRT, for GDAL tools or for workers that should open a file;
        None keeps it inside the DemSource. Its source paths are absolute.

    Returns
    -------
    DemSource

    Raises
    ------
    SourceError
        A file or folder is missing, empty or not a raster; a VRT names a missing file; tiles
        of different resolutions or off one grid; a hole among the tiles (without ``allow_gaps``).
    CRSError
        A file has no CRS and none is declared; tiles in different CRSs; a working CRS not in metres.
    """
    files = _expand(paths, what)
    tiles = [_describe(p, declared_crs, nodata, what) for p in files]
    if len(tiles) == 1:
        t = tiles[0]
        if t.path.suffix.lower() == ".vrt":
            _check_vrt_sources(t.path, what)
        dataset = str(t.path)
        file_nodata = t.nodata
    else:
        xml = _mosaic_xml(tiles, what, allow_gaps)
        if vrt_path is not None:
            vrt_path = Path(vrt_path)
            vrt_path.parent.mkdir(parents=True, exist_ok=True)
            vrt_path.write_text(xml)
            dataset = str(vrt_path.resolve())
        else:
            dataset = xml
        file_nodata = None  # the mosaic turns each tile's nodata into NaN
    crs = tiles[0].crs
    try:
        with rasterio.open(dataset) as src:
            check_north_up(src.transform, f"{what} '{files[0]}'")
            target = working_crs(tuple(src.bounds), crs, target_crs)
            if crs.equals(target, ignore_axis_order=True) and resolution in (None, abs(src.transform.a)):
                check_square(src.transform, f"{what} '{files[0]}'")
                grid = Grid((src.height, src.width), src.transform, CRS.from_user_input(target))
                warp = None
            else:
                res = _working_resolution(src, crs, target, resolution, f"{what} '{files[0]}'")
                transform, width, height = warp_grid(src, crs, target, res)
                grid = Grid((height, width), transform, CRS.from_user_input(target))
                warp = _Warp(crs.to_wkt(), file_nodata if len(tiles) == 1 else math.nan)
    except RasterioError as err:
        raise SourceError(
            f"{what} '{files[0]}' could not be read ({str(err).splitlines()[0]}); check the file"
        ) from None
    log.info(
        "%s: %d file(s), %d x %d cells of %g m in %s%s",
        what,
        len(files),
        grid.shape[0],
        grid.shape[1],
        abs(grid.transform.a),
        grid.crs.to_string(),
        " (reprojected)" if warp else " (as read, no resampling)",
    )
    return DemSource(
        grid=grid,
        dataset=dataset,
        files=tuple(str(p) for p in files),
        what=what,
        nodata=file_nodata if warp is None else None,
        warp=warp,
    )


def _working_resolution(
    src: rasterio.io.DatasetReaderBase, crs: CRS, target: CRS, resolution: float | None, what: str
) -> float:
    """The cell size of the warped grid: ``resolution``, or the ground size of a source pixel (logged with why)."""
    if resolution is not None:
        log.info("%s: working cells of %g m, as asked (parameters.resolution_m)", what, resolution)
        return resolution
    cell = ground_cell(src.transform, tuple(src.bounds), crs, target, what)
    log.info(
        "%s: working cells of %g m in %s: %s",
        what,
        cell.resolution,
        target.to_string(),
        cell.describe(),
    )
    return cell.resolution


def _expand(paths: str | Path | Sequence[str | Path], what: str) -> list[Path]:
    """The files named: each folder replaced by its tiles, in name order."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not items:
        raise SourceError(f"{what}: no files given")
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.name.lower().endswith(TILE_SUFFIXES))
            if not found:
                raise SourceError(
                    f"{what}: folder '{p}' holds no tiles (files ending in {', '.join(TILE_SUFFIXES)}); "
                    "put the DEM tiles there or name the files"
                )
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            raise SourceError(f"{what} '{p}' does not exist; fix its path")
    return files


def _describe(path: Path, declared_crs: str | None, nodata: float | None, what: str) -> _Tile:
    with _open_raster(path, what) as src:
        if src.count < 1:
            raise SourceError(f"{what} '{path}' has no bands; give a single-band elevation raster")
        crs = _resolve_crs(src.crs if src.crs else None, declared_crs, f"{what} '{path}'")
        check_north_up(src.transform, f"{what} '{path}'")
        return _Tile(
            path=path.resolve(),
            crs=crs,
            transform=src.transform,
            width=src.width,
            height=src.height,
            nodata=src.nodata if src.nodata is not None else nodata,
            dtype=src.dtypes[0],
            block=src.block_shapes[0],
        )


def _check_vrt_sources(path: Path, what: str) -> None:
    """:class:`SourceError` if a VRT names a source file that does not exist (GDAL would fail only on reading)."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise SourceError(f"{what} '{path}' is not a readable VRT ({err}); check the file") from None
    for el in [*root.iter("SourceFilename"), *root.iter("SourceDataset")]:
        name = (el.text or "").strip()
        if not name or name.startswith("/vsi") or "://" in name or name.startswith("<"):
            continue  # virtual or remote files: GDAL reports them when it reads
        src = Path(name)
        if el.get("relativeToVRT", "0") == "1" or not src.is_absolute():
            src = path.parent / src
        if not src.exists():
            raise SourceError(
                f"{what} '{path}' names source '{name}', which does not exist; restore the file or fix the VRT"
            )


# ---------------------------------------------------------------------------
# The mosaic VRT
# ---------------------------------------------------------------------------
def _mosaic_xml(tiles: list[_Tile], what: str, allow_gaps: bool) -> str:
    """A GDAL VRT of the tiles on their common grid (float32, NaN nodata, first tile on top)."""
    first = tiles[0]
    a, e = first.transform.a, first.transform.e
    offsets = []
    for t in tiles:
        if not t.crs.equals(first.crs, ignore_axis_order=True):
            raise CRSError(
                f"{what}: tile '{t.path.name}' is in {t.crs.to_string()} but '{first.path.name}' is in "
                f"{first.crs.to_string()}; reproject it to {first.crs.to_string()} (gdalwarp -t_srs) or give tiles of one CRS"
            )
        ta, te = t.transform.a, t.transform.e
        if abs(ta - a) > RES_TOLERANCE * abs(a) or abs(te - e) > RES_TOLERANCE * abs(e):
            raise SourceError(
                f"{what}: tile '{t.path.name}' has cells of {ta:.9g} x {-te:.9g} but '{first.path.name}' has "
                f"{a:.9g} x {-e:.9g}; resample it to the same cell size (gdalwarp -tr) or give tiles of one resolution"
            )
        col = (t.transform.c - first.transform.c) / a
        row = (t.transform.f - first.transform.f) / e
        off = max(abs(col - round(col)), abs(row - round(row)))
        if off > ALIGN_TOLERANCE:
            raise SourceError(
                f"{what}: tile '{t.path.name}' is not on the grid of '{first.path.name}' (its origin is "
                f"{off:.3f} cell off); resample it onto that grid (gdalwarp -tap -tr) or give aligned tiles"
            )
        offsets.append((round(row), round(col)))
    r_min = min(r for r, _ in offsets)
    c_min = min(c for _, c in offsets)
    height = max(r + t.height for (r, _), t in zip(offsets, tiles)) - r_min
    width = max(c + t.width for (_, c), t in zip(offsets, tiles)) - c_min
    # the mosaic's origin is the outermost tiles' own, as rasterio.merge (load_dem) takes it
    x0 = next(t.transform.c for (_, c), t in zip(offsets, tiles) if c == c_min)
    y0 = next(t.transform.f for (r, _), t in zip(offsets, tiles) if r == r_min)
    placed = [(r - r_min, c - c_min, t) for (r, c), t in zip(offsets, tiles)]
    holes = _holes(placed, height, width)
    if holes:
        _report_holes(holes, placed, first, (x0, y0), what, allow_gaps)

    root = ET.Element("VRTDataset", rasterXSize=str(width), rasterYSize=str(height))
    ET.SubElement(root, "SRS").text = first.crs.to_wkt()
    ET.SubElement(root, "GeoTransform").text = ", ".join(repr(float(v)) for v in (x0, a, 0.0, y0, 0.0, e))
    band = ET.SubElement(root, "VRTRasterBand", dataType="Float32", band="1")
    ET.SubElement(band, "NoDataValue").text = "nan"
    for r, c, t in reversed(placed):  # a VRT paints its sources in order: the first tile goes last, on top
        src = ET.SubElement(band, "ComplexSource")
        ET.SubElement(src, "SourceFilename", relativeToVRT="0").text = str(t.path)
        ET.SubElement(src, "SourceBand").text = "1"
        ET.SubElement(
            src,
            "SourceProperties",
            RasterXSize=str(t.width),
            RasterYSize=str(t.height),
            DataType=_GDAL_TYPES.get(t.dtype, "Float32"),
            BlockXSize=str(t.block[1]),
            BlockYSize=str(t.block[0]),
        )  # lets GDAL open a tile only when a read needs it
        ET.SubElement(src, "SrcRect", xOff="0", yOff="0", xSize=str(t.width), ySize=str(t.height))
        ET.SubElement(src, "DstRect", xOff=str(c), yOff=str(r), xSize=str(t.width), ySize=str(t.height))
        if t.nodata is not None:
            ET.SubElement(src, "NODATA").text = "nan" if math.isnan(t.nodata) else repr(float(t.nodata))
    return ET.tostring(root, encoding="unicode")


_GDAL_TYPES = {
    "uint8": "Byte",
    "int8": "Int8",
    "int16": "Int16",
    "uint16": "UInt16",
    "int32": "Int32",
    "uint32": "UInt32",
    "float32": "Float32",
    "float64": "Float64",
}


def _holes(placed: list[tuple[int, int, _Tile]], height: int, width: int) -> list[tuple[int, int, int, int]]:
    """Rectangles ``(row0, row1, col0, col1)`` of the mosaic no tile covers (on the grid of tile edges)."""
    rows = np.unique([0, height, *(r for r, _, _ in placed), *(r + t.height for r, _, t in placed)])
    cols = np.unique([0, width, *(c for _, c, _ in placed), *(c + t.width for _, c, t in placed)])
    covered = np.zeros((len(rows) - 1, len(cols) - 1), dtype=bool)
    for r, c, t in placed:
        i0, i1 = np.searchsorted(rows, [r, r + t.height])
        j0, j1 = np.searchsorted(cols, [c, c + t.width])
        covered[i0:i1, j0:j1] = True
    return [(int(rows[i]), int(rows[i + 1]), int(cols[j]), int(cols[j + 1])) for i, j in zip(*np.nonzero(~covered))]


def _srtm_corner(name: str) -> tuple[int, int] | None:
    """(lat, lon) of the south-west corner an SRTM tile's name gives, or None."""
    m = _SRTM_NAME.match(name)
    if m is None:
        return None
    lat = int(m.group(2)) * (1 if m.group(1).lower() == "n" else -1)
    lon = int(m.group(4)) * (1 if m.group(3).lower() == "e" else -1)
    return lat, lon


def _srtm_name(lat: int, lon: int) -> str:
    return f"{'N' if lat >= 0 else 'S'}{abs(lat):02d}{'E' if lon >= 0 else 'W'}{abs(lon):03d}"


def _report_holes(
    holes: list[tuple[int, int, int, int]],
    placed: list[tuple[int, int, _Tile]],
    first: _Tile,
    origin: tuple[float, float],
    what: str,
    allow_gaps: bool,
) -> None:
    corners = [_srtm_corner(t.path.name) for _, _, t in placed]
    folder = first.path.parent
    if all(c is not None for c in corners):
        lats = [c[0] for c in corners if c is not None]
        lons = [c[1] for c in corners if c is not None]
        have = set(corners)
        missing = [
            _srtm_name(la, lo)
            for la in range(max(lats), min(lats) - 1, -1)
            for lo in range(min(lons), max(lons) + 1)
            if (la, lo) not in have
        ]
        if missing:
            where = f"tile(s) {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''} missing from '{folder}'"
        else:  # the names fill the rectangle but the rasters leave a hole
            where = f"tiles in '{folder}' that do not cover the squares their names give"
    else:
        a, e = first.transform.a, first.transform.e
        r0, r1, c0, c1 = holes[0]
        x0, y0 = origin
        where = (
            f"{len(holes)} hole(s) among the tiles in '{folder}', the first at x {x0 + c0 * a:.6g} to "
            f"{x0 + c1 * a:.6g}, y {y0 + r1 * e:.6g} to {y0 + r0 * e:.6g} ({first.crs.to_string()})"
        )
    if allow_gaps:
        log.info("%s: %s; read as nodata (allow_gaps)", what, where)
        return
    raise SourceError(
        f"{what}: the mosaic has {where}; add the missing tile(s), or pass allow_gaps=True to read the hole as nodata "
        "(e.g. sea, for which SRTM ships no tile)"
    )


def load_dem(
    paths: list[Path],
    *,
    declared_crs: str | None = None,
    nodata: float | None = None,
    target_crs: str | None = None,
    resolution: float | None = None,
    what: str = "DEM",
) -> Elevation:
    """Read a DEM (one file or a mosaic of tiles) into the metric working CRS.

    Parameters
    ----------
    paths:
        One or more raster files, a .vrt or a folder of tiles; several are mosaicked (first file
        wins where tiles overlap) and the mosaic is warped once, as a whole. The DEM is read
        through :func:`open_dem`, the tiled build's reader, in one window, so
        both builds see the same values cell for cell (GDAL warps block by block whatever
        the window).
    declared_crs:
        CRS to assume for files that carry none.
    nodata:
        Nodata value to assume for files that declare none.
    target_crs:
        Working CRS; must be projected (metres). ``None``: UTM zone of the DEM centre.
    resolution:
        Cell size in metres after reprojection; ``None``: the ground size of a source pixel at
        the DEM's centre (the source's own grid when it is in the working CRS already).

    Raises
    ------
    SourceError
        A file is missing, empty, corrupt, or holds no valid elevation.
    CRSError
        A file has no CRS and none is declared, or the working CRS is not metric.
    """
    if not paths:
        raise SourceError(f"{what}: no files given")
    source = open_dem(
        paths, declared_crs=declared_crs, nodata=nodata, target_crs=target_crs, resolution=resolution, what=what
    )
    return read_whole(source)


def read_whole(source: DemSource) -> Elevation:
    """The whole DEM of ``source`` in memory (then its files are closed).

    Raises
    ------
    SourceError
        Every cell is nodata.
    """
    try:
        values = source.read((slice(0, source.grid.shape[0]), slice(0, source.grid.shape[1])))
    finally:
        source.close()
    values[~np.isfinite(values)] = np.nan
    log.info("%s: %d x %d cells in %s", source.what, *values.shape, source.grid.crs.to_string())
    if values.size == 0 or np.isnan(values).all():
        raise SourceError(
            f"{source.what} '{source.files[0]}' holds no valid elevation (every cell is nodata); "
            f"check the nodata value or the file"
        )
    return Elevation(values=values, grid=source.grid)
