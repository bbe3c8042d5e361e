"""The twin folder: rasters as Cloud-Optimized GeoTIFFs, vectors in one GeoPackage, a manifest.

::

    <twin>/
      twin.json         name, CRS, grid, parameters, software versions, every source
                        and every output with its sha256
      terrain/          elevation.tif, conditioned.tif, conditioning_change.tif
      drainage/         d8.tif, upstream_cells.tif, strahler.tif, reach.tif, subbasins.tif
      vectors.gpkg      reaches, sections, basins, jurisdictions, sites, boundary;
                        tables reach_jurisdictions and reach_shares

A folder is written into a temporary sibling and renamed into place only when
complete, so a failed build never leaves a partial twin behind.

Large twins open lazily. A grid of at least :data:`LAZY_MIN_CELLS` cells is not read
whole: :func:`read_twin` hands out a read-only ``numpy.memmap`` of an uncompressed ``.npy``
copy of its raster, made on the first open and reused by every later one (and shared by
every process that opens the twin, through the page cache), so an open reads only the
cells that are used. The D8 cell order, which an eager open recomputes, is kept the same
way. These copies are a cache, not part of the twin:

::

    <twin>/.cache/<sha256[:16]>-<name>.npy     e.g. 3f2a...-drainage-d8.npy, 9b1c...-order.npy

- Named by the sha256 that ``twin.json`` records for the raster (for the order: for
  ``drainage/d8.tif``), so a rebuilt or changed raster never meets an old copy. They are
  not in the manifest: :func:`verify` and the open's check hash the outputs only.
- Made window by window (one row of the COG's blocks at a time), so making one takes
  memory for a window, not for the grid; written to a temporary file that is renamed
  into place when complete, so a killed process leaves no half copy under the final
  name (only a ``.partial`` file, never read, that may be deleted).
- A copy of the wrong size, shape or dtype (truncated, say) is made again, not used.
- If the twin folder is not writable, the copies go to the per-user cache folder:
  ``$TWIN_CACHE_DIR/grids``, else ``~/.cache/basin-twin/grids``. Nothing there is
  removed by the twin: delete the folder to reclaim the space.
- An open with ``check=False`` uses a copy only if it is newer than its raster; before
  making one it hashes that raster (the copy is named by the hash it must hold), and a
  raster that differs from ``twin.json`` is read whole instead, as today.
- Where no copy can be written (no writable folder, a full disk), the grid is read whole,
  with a warning in the log.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors
import rasterio
import rasterio.errors
from affine import Affine
from pyproj import CRS
from rasterio.windows import Window

from twin.errors import OutputExistsError, TwinError, TwinFolderError
from twin.model import kernels
from twin.model.catalog import load_catalog, parse_catalog, sha256_file
from twin.model.drainage import Drainage
from twin.model.jurisdictions import Jurisdictions
from twin.model.loaders import Grid
from twin.model.network import Network
from twin.model.terrain import Terrain
from twin.settings import Settings

if TYPE_CHECKING:
    from twin.model.build import Progress
    from twin.model.model import Model

FORMAT = "basin-twin"
FORMAT_VERSION = 1
RASTERS = {
    "terrain/elevation.tif": ("float32", np.nan),
    "terrain/conditioned.tif": ("float32", np.nan),
    "terrain/conditioning_change.tif": ("float32", np.nan),
    "drainage/d8.tif": ("uint8", 247),
    "drainage/upstream_cells.tif": ("int32", None),
    "drainage/strahler.tif": ("uint8", None),
    "drainage/reach.tif": ("int32", None),
    "drainage/subbasins.tif": ("int32", None),
}
#: what opening a twin reads, so what it checks against the manifest's hashes
READ = (*RASTERS, "vectors.gpkg")
#: the rasters the model holds (the conditioning change is an audit for people: conditioned - elevation)
MODEL_RASTERS = tuple(rel for rel in RASTERS if rel != "terrain/conditioning_change.tif")
#: grids of at least this many cells open as read-only memory maps of cached copies (module docstring)
LAZY_MIN_CELLS = 4096 * 4096
#: the folder of those copies inside a twin folder
CACHE = ".cache"
#: GDAL's block cache while a copy is made, MB: each block is read once, so a larger one only holds memory
CACHE_GDAL_MB = 64
PACKAGES = ("numpy", "numba", "rasterio", "geopandas", "shapely", "pyproj", "xarray", "pyogrio", "pyflwdir")


log = logging.getLogger(__name__)


def software_versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "twin": _version("basin-twin")}
    out.update({p: _version(p) for p in PACKAGES})
    out["gdal"] = rasterio.__gdal_version__
    return out


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "not installed"


def _write_raster(path: Path, values: np.ndarray, grid: Grid, dtype: str, nodata: float | int | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "COG",
        "width": grid.shape[1],
        "height": grid.shape[0],
        "count": 1,
        "dtype": dtype,
        "crs": grid.crs.to_wkt(),
        "transform": grid.transform,
        "compress": "deflate",
        "predictor": 3 if dtype.startswith("float") else 2,
        "nodata": nodata,
        "BIGTIFF": "IF_SAFER",
        "NUM_THREADS": "ALL_CPUS",
        # codes and ids (D8 directions, orders, reach and sub-basin ids) must not be blended
        # into values that do not exist when the overviews are made; elevations may be
        "OVERVIEW_RESAMPLING": "BILINEAR" if dtype.startswith("float") else "NEAREST",
    }
    if nodata is None:
        profile.pop("nodata")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values.astype(dtype, copy=False), 1)


def write_twin(model: Model, path: Path, overwrite: bool = False, progress: Progress | None = None) -> dict:
    """Write a twin folder atomically (see module docstring); returns the manifest written as ``twin.json``."""
    step = progress or (lambda s: None)
    path = path.absolute()
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"output folder '{path}' exists; choose another path or remove it (or pass --overwrite)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
    try:
        step("write rasters")
        t, d = model.terrain, model.drainage
        arrays = {  # made one at a time: the change raster exists only while it is written
            "terrain/elevation.tif": lambda: t.dem,
            "terrain/conditioned.tif": lambda: t.conditioned,
            "terrain/conditioning_change.tif": lambda: t.conditioned - t.dem,
            "drainage/d8.tif": lambda: d.d8,
            "drainage/upstream_cells.tif": lambda: d.upstream_cells,
            "drainage/strahler.tif": lambda: d.strahler,
            "drainage/reach.tif": lambda: d.reach,
            "drainage/subbasins.tif": lambda: d.subbasin,
        }
        for rel, (dtype, nodata) in RASTERS.items():
            _write_raster(tmp / rel, arrays[rel](), t.grid, dtype, nodata)
        step("write vectors")
        gpkg = tmp / "vectors.gpkg"
        j = model.jurisdictions
        valid = ~np.isnan(t.dem)
        layers: dict[str, gpd.GeoDataFrame | pd.DataFrame] = {
            "reaches": model.network.reaches.reset_index(drop=True),
            "sections": j.sections,
            "basins": d.subbasin_polygons(),
            "jurisdictions": j.units,
            "sites": model.sites,
            "boundary": gpd.GeoDataFrame({"name": [model.name]}, geometry=[d.polygonize(valid)], crs=t.grid.crs),
            "reach_jurisdictions": j.reach_units,
            "reach_shares": j.shares,
        }
        for name, df in layers.items():
            if isinstance(df, gpd.GeoDataFrame):
                df.to_file(gpkg, layer=name, driver="GPKG", engine="pyogrio")
            else:
                pyogrio.write_dataframe(pd.DataFrame(df), gpkg, layer=name, driver="GPKG")
        step("write manifest")
        outputs = sorted(p for p in tmp.rglob("*") if p.is_file())
        grid = t.grid
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": model.name,
            "title": model.catalog.title,
            "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "crs": grid.crs.to_wkt(),
            "crs_name": grid.crs.to_string(),
            "shape": list(grid.shape),
            "transform": list(grid.transform)[:6],
            "bounds": list(grid.bounds),
            "parameters": model.catalog.parameters.model_dump(),
            "threshold_cells": d.threshold_cells,
            "levels": j.levels,
            "catalog": model.catalog.model_dump(mode="json", exclude={"root"}),
            "sources": list(model.sources),
            "outputs": [
                {"path": p.relative_to(tmp).as_posix(), "sha256": sha256_file(p), "bytes": p.stat().st_size}
                for p in outputs
            ],
            "software": software_versions(),
            "summary": model.info(),
        }
        (tmp / "twin.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        if path.exists():  # overwrite: swap, then remove the old folder
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            old.rmdir()
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _unreadable(path: Path, err: Exception) -> TwinFolderError:
    return TwinFolderError(f"twin output '{path}' cannot be read ({str(err).splitlines()[0]}); rebuild the twin")


def _read_raster(path: Path) -> np.ndarray:
    try:
        with rasterio.open(path) as src:
            return src.read(1)
    except rasterio.errors.RasterioError as err:
        raise _unreadable(path, err) from None


# -- lazy opening: read-only memory maps of cached copies (see the module docstring) -------


def user_cache_folder() -> Path:
    """The per-user folder of grid copies: ``$TWIN_CACHE_DIR/grids``, else ``~/.cache/basin-twin/grids``."""
    base = Settings.from_env().cache_dir
    return (Path(base) if base else Path.home() / ".cache" / "basin-twin") / "grids"


def _writable(folder: Path) -> bool:
    """Whether this process may create files in ``folder`` (the permissions; root passes every check)."""
    return os.access(folder, os.W_OK)


def cache_folder(twin: Path) -> Path:
    """Where the grid copies of a twin folder go: its ``.cache`` if writable, else :func:`user_cache_folder`.

    ``.cache`` is writable if it is, or, not made yet, if the twin folder is.
    """
    own = twin / CACHE
    return own if _writable(own if own.is_dir() else twin) else user_cache_folder()


def _cache_name(sha256: str, rel: str) -> str:
    return f"{sha256[:16]}-{rel.removesuffix('.tif').replace('/', '-')}.npy"


def _open_copy(
    path: Path, shape: tuple[int, ...], dtypes: tuple[np.dtype, ...], newer_than: Path | None = None
) -> np.memmap | None:
    """A read-only memory map of a ``.npy`` copy, or None if it is missing, stale or not what is expected.

    Expected: a version 1.0 header (what :func:`_write_copy` writes), C order, ``shape``, one
    of ``dtypes``, and exactly the file size they imply (a truncated or padded file is
    refused). With ``newer_than``, a copy that is not newer than that file is refused too
    (equal times included: file times are coarser than the time a copy takes to write).
    """
    try:
        with open(path, "rb") as f:
            if np.lib.format.read_magic(f) != (1, 0):
                return None
            got_shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            offset = f.tell()
            stat = os.fstat(f.fileno())
        if newer_than is not None and stat.st_mtime_ns <= newer_than.stat().st_mtime_ns:
            return None
    except (OSError, ValueError):  # missing, or not a .npy file
        return None
    if tuple(got_shape) != tuple(shape) or fortran or dtype not in dtypes:
        return None
    if stat.st_size != offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
        return None
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=tuple(shape))


def _write_copy(path: Path, shape: tuple[int, ...], dtype: np.dtype, pieces: Iterable[np.ndarray]) -> None:
    """Write a ``.npy`` file from consecutive C-order pieces, atomically (a temporary file renamed into place).

    The pieces are written with ``write``, not through a memory map, so the process holds one
    piece at a time rather than the whole file's pages.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")
    # os.open: the copy gets the umask's permissions (mkstemp's 0600 would shut out other users of the twin)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
            np.lib.format.write_array_header_1_0(out, header)
            for piece in pieces:
                out.write(np.ascontiguousarray(piece, dtype=dtype).data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _reopen(path: Path, shape: tuple[int, ...], dtypes: tuple[np.dtype, ...]) -> np.memmap:
    """A copy just written, memory-mapped: it must be as written."""
    found = _open_copy(path, shape, dtypes)
    if found is None:  # pragma: no cover - only if another program damages it in between
        raise TwinFolderError(f"the grid copy '{path}' was damaged as it was made; delete it and open the twin again")
    return found


def _raster_windows(path: Path, shape: tuple[int, int]) -> Iterator[np.ndarray]:
    """Band 1 of a raster, one row of its blocks at a time, top to bottom."""
    try:
        with rasterio.Env(GDAL_CACHEMAX=CACHE_GDAL_MB), rasterio.open(path) as src:
            if (src.height, src.width) != tuple(shape):
                raise TwinFolderError(
                    f"twin output '{path}' is {src.height} x {src.width} cells, twin.json says "
                    f"{shape[0]} x {shape[1]}; rebuild the twin"
                )
            step = max(1, src.block_shapes[0][0])
            for row in range(0, src.height, step):
                yield src.read(1, window=Window(0, row, src.width, min(step, src.height - row)))
    except rasterio.errors.RasterioError as err:
        raise _unreadable(path, err) from None


def _lazy_raster(
    twin: Path, rel: str, sha256: str, shape: tuple[int, int], dtype: np.dtype, folder: Path, checked: bool
) -> np.memmap | None:
    """A read-only memory map of a raster's copy (made first if needed), or None where there can be none.

    None when the raster, unchecked, differs from ``sha256`` (it is then read whole, as an
    unchecked open reads it), or when the copy cannot be written (logged).
    """
    raster, copy = twin / rel, folder / _cache_name(sha256, rel)
    found = _open_copy(copy, shape, (dtype,), None if checked else raster)
    if found is not None:
        return found
    if not checked and sha256_file(raster) != sha256:
        log.warning("%s differs from twin.json (sha256); it is read whole, not cached", raster)
        return None
    try:
        _write_copy(copy, shape, dtype, _raster_windows(raster, shape))
    except TwinFolderError:
        raise
    except OSError as err:  # a full disk, a folder that turned out read-only
        log.warning("cannot write the grid copy %s (%s); %s is read whole", copy, err, raster)
        return None
    log.info("made the grid copy %s", copy)
    return _reopen(copy, shape, (dtype,))


def _lazy_order(d8: np.ndarray, d8_sha256: str, valid_cells: int, folder: Path) -> np.ndarray:
    """The D8 cell order (:func:`twin.model.kernels.topological_order`) from its cached copy, made first if needed."""
    copy = folder / _cache_name(d8_sha256, "order")
    dtypes = (np.dtype(np.int32), np.dtype(np.int64))  # what topological_order gives, by grid size
    found = _open_copy(copy, (valid_cells,), dtypes)
    if found is not None:
        return found
    order = kernels.topological_order(d8.ravel(), d8.shape[1])
    try:
        _write_copy(copy, order.shape, order.dtype, [order])
    except OSError as err:
        log.warning("cannot write the cell order's copy %s (%s); it stays in memory", copy, err)
        return order
    log.info("made the cell order's copy %s", copy)
    return _reopen(copy, order.shape, (order.dtype,))


def _read_grids(
    path: Path, manifest: dict, grid: Grid, checked: bool
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """The rasters of :data:`MODEL_RASTERS`, and the D8 order if it is cached (None: Drainage computes it).

    Whole arrays below :data:`LAZY_MIN_CELLS` cells; read-only memory maps of cached copies
    from there on (the module docstring says how they are kept). ``checked``: the rasters
    were hashed against the manifest by this open.
    """
    if grid.shape[0] * grid.shape[1] < LAZY_MIN_CELLS:
        return {rel: _read_raster(path / rel) for rel in MODEL_RASTERS}, None
    folder = cache_folder(path)
    sha = {o["path"]: o["sha256"] for o in manifest["outputs"]}
    out: dict[str, np.ndarray] = {}
    for rel in MODEL_RASTERS:
        dtype = RASTERS[rel][0]
        if rel not in sha:  # pragma: no cover - every manifest of this format lists every raster
            raise TwinFolderError(f"twin.json of '{path}' lists no sha256 for {rel}; rebuild the twin")
        found = _lazy_raster(path, rel, sha[rel], grid.shape, np.dtype(dtype), folder, checked)
        out[rel] = _read_raster(path / rel) if found is None else found
    d8 = out["drainage/d8.tif"]
    if not isinstance(d8, np.memmap):  # read whole: it may not match the sha that would name its order
        return out, None
    valid = manifest.get("summary", {}).get("valid_cells")
    valid = int(np.count_nonzero(d8 != kernels.D8_NODATA)) if valid is None else int(valid)
    return out, _lazy_order(d8, sha["drainage/d8.tif"], valid, folder)


def read_twin(path: Path, check: bool = True) -> tuple[Model, dict]:
    """Open a twin folder: its model and its manifest.

    With ``check`` (the default) every output read is hashed first and compared with the
    manifest (a changed ``drainage/d8.tif`` is an error naming the file): about 0.1 s for
    the demo twin's 7 MB; see ``benchmarks/build.py`` for larger folders.

    Grids of :data:`LAZY_MIN_CELLS` cells or more come as read-only ``numpy.memmap`` of
    uncompressed copies cached beside the twin (``.cache/``, or the per-user cache folder
    when the twin folder is not writable), made on the first open: see the module
    docstring. Smaller grids are read whole.

    Raises
    ------
    TwinFolderError
        The folder is missing, incomplete, of another format, or an output differs from
        the manifest.
    """
    from twin.model.model import Model

    mf = path / "twin.json"
    if not mf.is_file():
        raise TwinFolderError(
            f"'{path}' is not a twin folder (no twin.json); build one with `twin build CATALOG -o {path}`"
        )
    try:
        manifest = json.loads(mf.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise TwinFolderError(f"'{mf}' is not valid JSON ({err}); rebuild the twin") from None
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise TwinFolderError(
            f"'{path}' is a twin folder of format {manifest.get('format')!r} "
            f"v{manifest.get('format_version')}; this version reads {FORMAT} v{FORMAT_VERSION}: rebuild it"
        )
    missing = [o["path"] for o in manifest["outputs"] if not (path / o["path"]).is_file()]
    if missing:
        raise TwinFolderError(f"twin folder '{path}' is incomplete: {missing[:3]} missing; rebuild it")
    if check:
        changed = [
            o["path"] for o in manifest["outputs"] if o["path"] in READ and sha256_file(path / o["path"]) != o["sha256"]
        ]
        if changed:
            raise TwinFolderError(
                f"twin folder '{path}': {', '.join(changed)} changed since the build (sha256 differs from "
                "twin.json); rebuild the twin (`twin build CATALOG -o DIR --overwrite`) or restore the file"
            )
    grid = Grid(tuple(manifest["shape"]), Affine(*manifest["transform"]), CRS.from_wkt(manifest["crs"]))
    r, order = _read_grids(path, manifest, grid, check)
    terrain = Terrain(grid, r["terrain/elevation.tif"], r["terrain/conditioned.tif"])
    drainage = Drainage.from_arrays(
        grid,
        r["drainage/d8.tif"],
        r["drainage/upstream_cells.tif"],
        r["drainage/strahler.tif"],
        r["drainage/reach.tif"],
        r["drainage/subbasins.tif"],
        int(manifest["threshold_cells"]),
        order=order,
    )
    gpkg = path / "vectors.gpkg"

    def layer(name: str) -> gpd.GeoDataFrame:
        try:
            return gpd.read_file(gpkg, layer=name, engine="pyogrio")
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as err:
            raise _unreadable(gpkg, err) from None

    def table(name: str) -> pd.DataFrame:
        try:
            return pyogrio.read_dataframe(gpkg, layer=name, read_geometry=False)
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as err:
            raise _unreadable(gpkg, err) from None

    reaches = layer("reaches").set_index("reach_id", drop=False)
    units = layer("jurisdictions")
    units["parent_code"] = units["parent_code"].astype(object).where(units["parent_code"].notna(), None)
    juris = Jurisdictions(
        units=units,
        levels=list(manifest["levels"]),
        reach_units=table("reach_jurisdictions"),
        sections=layer("sections"),
        shares=table("reach_shares"),
    )
    cat_dict = dict(manifest["catalog"])
    try:
        catalog = parse_catalog(cat_dict, root=path, where=str(mf))
    except TwinError:
        catalog = load_catalog(mf)  # pragma: no cover - manifest written by this version always parses
    model = Model(
        name=manifest["name"],
        catalog=catalog,
        terrain=terrain,
        drainage=drainage,
        network=Network(reaches),
        jurisdictions=juris,
        sites=layer("sites"),
        sources=tuple(manifest["sources"]),
    )
    return model, manifest


def verify(path: Path) -> list[str]:
    """Re-hash every output of a twin folder; returns the paths whose hash differs."""
    manifest = json.loads((path / "twin.json").read_text(encoding="utf-8"))
    return [
        o["path"]
        for o in manifest["outputs"]
        if not (path / o["path"]).is_file() or sha256_file(path / o["path"]) != o["sha256"]
    ]
