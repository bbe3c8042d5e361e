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
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import shutil
import tempfile
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

from twin.errors import OutputExistsError, TwinError, TwinFolderError
from twin.model.catalog import load_catalog, parse_catalog, sha256_file
from twin.model.drainage import Drainage
from twin.model.jurisdictions import Jurisdictions
from twin.model.loaders import Grid
from twin.model.network import Network
from twin.model.terrain import Terrain

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
PACKAGES = ("numpy", "numba", "rasterio", "geopandas", "shapely", "pyproj", "xarray", "pyogrio", "pyflwdir")


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


def read_twin(path: Path, check: bool = True) -> tuple[Model, dict]:
    """Open a twin folder: its model and its manifest.

    With ``check`` (the default) every output read is hashed first and compared with the
    manifest (a changed ``drainage/d8.tif`` is an error naming the file): about 0.1 s for
    the demo twin's 7 MB; see ``benchmarks/build.py`` for larger folders.

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
    r = {rel: _read_raster(path / rel) for rel in RASTERS}
    terrain = Terrain(grid, r["terrain/elevation.tif"], r["terrain/conditioned.tif"])
    drainage = Drainage.from_arrays(
        grid,
        r["drainage/d8.tif"],
        r["drainage/upstream_cells.tif"],
        r["drainage/strahler.tif"],
        r["drainage/reach.tif"],
        r["drainage/subbasins.tif"],
        int(manifest["threshold_cells"]),
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
