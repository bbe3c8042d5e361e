"""Building a :class:`~twin.model.model.Model` from a catalog, in memory or tile by tile.

The steps, in order (``BUILD_STEPS``): load the DEM (reprojected to the twin's CRS, clipped to
the boundary or to the outlet's catchment), condition it and route D8, derive rivers, make the
reach table, analyse jurisdictions, place the sites. The first three run in memory for a small
DEM and tile by tile for a large one (:mod:`twin.model.tiled_build`), with the same result. No
file of the twin is written here: the twin folder is :mod:`twin.model.folder`'s job.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from twin.errors import CatalogError, OutsideBasinError
from twin.model.catalog import Catalog, Outlet, Parameters, load_catalog, sha256_file
from twin.model.drainage import Drainage
from twin.model.jurisdictions import Jurisdictions, analyse, load_units
from twin.model.loaders import Elevation, load_sites, load_vectors
from twin.model.model import Model
from twin.model.mosaic import open_dem, read_whole
from twin.model.network import Network, build_reaches
from twin.model.sites import place_sites
from twin.model.terrain import condition
from twin.model.tiled import check_tile_size
from twin.model.tiled_build import OutletClip, tiled_terrain_and_drainage

if TYPE_CHECKING:
    from twin.model.cluster import TileRunner

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
BUILD_STEPS = ("load terrain", "condition and route", "derive rivers", "reach table", "jurisdictions", "sites")


def build_model(
    catalog: Catalog | str | Path,
    progress: Progress | None = None,
    *,
    tile_size: int | None = None,
    runner: TileRunner | None = None,
    workdir: str | Path | None = None,
) -> Model:
    """Build the model from a catalog (a :class:`Catalog` or the path of a ``basin.yml``).

    Parameters
    ----------
    catalog:
        The catalog, or the path of its YAML file.
    progress:
        Called with the name of each step as it starts (see ``BUILD_STEPS``).
    tile_size:
        Rows and columns of a tile of the tiled build (at least
        :data:`twin.model.tiled.MIN_TILE_SIZE`). None chooses by size: in memory up to
        :data:`IN_MEMORY_MAX_CELLS` cells of DEM (before any clip), in tiles of
        :data:`DEFAULT_TILE_SIZE` above (the log says which and why). Both give the same model.
    runner:
        Where the tiled build runs its per-tile work (:func:`twin.model.cluster.open_runner`);
        None runs it in this process.
    workdir:
        Folder for the tiled build's tiles and grids (every worker must see it; it must last
        as long as the model, whose grids are memory maps of files in it). None: a temporary
        folder, removed when the process ends.

    Raises
    ------
    TwinError
        A subclass naming the source or value at fault.
    TileError
        ``tile_size`` is not an integer or is below the minimum (checked before any work).
    """
    if tile_size is not None:
        check_tile_size(tile_size)
    cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)

    def step(name: str) -> None:
        log.info("build %s: %s", cat.name, name)
        if progress is not None:
            progress(name)

    files = cat.source_files()
    params = cat.parameters
    # hashed before they are read, so the manifest names the bytes the model came from
    sources = [
        {
            "name": n,
            "role": cat.sources[n].role,
            "files": [
                {"path": f, "sha256": sha256_file(p), "bytes": p.stat().st_size}
                for f, p in zip(cat.sources[n].files, ps)
            ],
        }
        for n, ps in files.items()
    ]

    step("load terrain")
    dem_name, dem_src = cat.dem_source()
    dem_files = files[dem_name]
    dem_what = f"DEM '{dem_name}'"
    source = open_dem(
        dem_files,
        declared_crs=dem_src.crs,
        nodata=dem_src.nodata,
        target_crs=cat.crs,
        resolution=params.resolution_m,
        what=dem_what,
    )
    tile_size = _choose_tiling(tile_size, source.grid.shape)
    bsrc = cat.boundary_source()
    boundary = (
        load_vectors([cat.resolve(f) for f in bsrc.files], declared_crs=bsrc.crs, layer=bsrc.layer, what="boundary")
        if bsrc is not None
        else None
    )
    if tile_size is not None:
        step("condition and route")
        shape = None if boundary is None else shapely.union_all(boundary.to_crs(source.grid.crs).geometry.values)
        clip = None
        if boundary is None and cat.outlet is not None:
            o = cat.outlet
            x, y = Transformer.from_crs(o.crs, source.grid.crs, always_xy=True).transform(o.lon, o.lat)
            clip = OutletClip(float(x), float(y), params.snap_max_m, f"catalog outlet ({o.lon}, {o.lat})")
        folder = Path(workdir) if workdir is not None else _temporary_workdir()
        terrain, drainage = tiled_terrain_and_drainage(
            source,
            shape,
            params.stream_threshold_km2,
            tile_size=tile_size,
            workdir=folder,
            runner=runner,
            outlet=clip,
        )
        step("derive rivers")  # derived tile by tile with the routing
    else:
        elev = read_whole(source)
        if boundary is not None:
            elev = _clip_to_boundary(elev, boundary)
        elif cat.outlet is not None:
            elev = _clip_to_outlet(elev, cat.outlet, params)
        step("condition and route")
        terrain, d8, order = condition(elev)
        del elev
        step("derive rivers")
        drainage = Drainage.route(terrain.grid, d8, order, params.stream_threshold_km2)
    log.info("conditioning raised %(cells_raised)d cells, at most %(max_raise_m).1f m", terrain.conditioning_summary())
    if not drainage.reach.any():
        largest = float(np.max(drainage.upstream_cells)) * terrain.grid.cell_area / 1e6
        raise CatalogError(
            f"no river: no cell has stream_threshold_km2 = {params.stream_threshold_km2:g} km² upstream (the largest "
            f"upstream area is {largest:.3g} km²); lower parameters.stream_threshold_km2 in the catalog"
        )

    step("reach table")
    reaches = build_reaches(terrain, drainage, runoff_mm_per_year=params.runoff_mm_per_year, min_slope=params.min_slope)

    step("jurisdictions")
    units = load_units(cat, terrain.grid)
    levels = [s.level for s in cat.jurisdiction_sources()]
    juris, rasters = analyse(units, levels, drainage, reaches, params.sliver_cells, params.section_min_run_m)
    reaches = _with_units(reaches, juris)
    network = Network(reaches)

    step("sites")
    site_frames = []
    for name, src in cat.site_sources().items():
        site_frames.append(
            load_sites(
                files[name],
                fmt=src.format,
                declared_crs=src.crs,
                id_field=src.id_field,
                name_field=src.name_field,
                x_field=src.x_field,
                y_field=src.y_field,
                layer=src.layer,
                what=f"sites '{name}'",
            )
        )
    all_sites = (
        gpd.GeoDataFrame(pd.concat(site_frames, ignore_index=True), crs="EPSG:4326")
        if site_frames
        else gpd.GeoDataFrame(geometry=[], crs="EPSG:4326")
    )
    codes = {lv: units.loc[units["level"] == lv, "code"].to_numpy(dtype=object) for lv in levels}
    sites = place_sites(all_sites, drainage, network, rasters, codes, params.snap_max_m)
    del rasters

    return Model(cat.name, cat, terrain, drainage, network, juris, sites, tuple(sources))


#: Above this many DEM cells (one tile of :data:`DEFAULT_TILE_SIZE`) a build with no tile size
#: given is tiled, even in this one process: a priority queue of a whole large grid misses the
#: CPU's caches, and measured on 25 M cells the tiled routing in one process took 29 s where the
#: whole-grid kernels took 40 s (benchmarks/README.md); memory stays bounded by the tile too.
IN_MEMORY_MAX_CELLS = 2048 * 2048
DEFAULT_TILE_SIZE = 2048


def _choose_tiling(tile_size: int | None, shape: tuple[int, int]) -> int | None:
    """The tile size to build with, or None to build in memory (logged with the reason)."""
    cells = shape[0] * shape[1]
    if tile_size is not None:
        log.info("tiled build in tiles of %d cells, as asked (%d cells)", tile_size, cells)
        return tile_size
    if cells <= IN_MEMORY_MAX_CELLS:
        log.info("in-memory build: %d cells, at most %d", cells, IN_MEMORY_MAX_CELLS)
        return None
    log.info(
        "tiled build in tiles of %d cells: %d cells, above %d in memory", DEFAULT_TILE_SIZE, cells, IN_MEMORY_MAX_CELLS
    )
    return DEFAULT_TILE_SIZE


def _temporary_workdir() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="twin-build-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _clip_to_boundary(elev: Elevation, boundary: gpd.GeoDataFrame) -> Elevation:
    """Cells outside the boundary polygon become nodata; the grid is cropped to it."""
    import rasterio.features

    shape = shapely.union_all(boundary.to_crs(elev.grid.crs).geometry.values)
    inside = rasterio.features.geometry_mask(
        [shape], out_shape=elev.grid.shape, transform=elev.grid.transform, invert=True
    )
    if not inside.any():
        raise OutsideBasinError("the boundary polygon does not overlap the DEM; check the boundary's CRS and extent")
    return _crop(elev, inside)


def _clip_to_outlet(elev: Elevation, outlet: Outlet, params: Parameters) -> Elevation:
    """Keep the catchment of the outlet (routed on the whole grid first), cropped to it."""
    terrain, d8, order = condition(elev)
    drainage = Drainage.route(terrain.grid, d8, order, params.stream_threshold_km2)
    x, y = Transformer.from_crs(outlet.crs, terrain.grid.crs, always_xy=True).transform(outlet.lon, outlet.lat)
    s = drainage.snap(float(x), float(y), params.snap_max_m, what=f"catalog outlet ({outlet.lon}, {outlet.lat})")
    return _crop(elev, drainage.catchment_mask([s.cell]))


def _crop(elev: Elevation, inside: np.ndarray) -> Elevation:
    """Cells outside ``inside`` become nodata; the grid shrinks to the bounding box of the rest."""
    from affine import Affine

    from twin.model.loaders import Grid

    rows, cols = np.nonzero(inside)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    values = np.where(inside, elev.values, np.nan)[r0:r1, c0:c1].astype("float32")
    t = elev.grid.transform * Affine.translation(c0, r0)
    return Elevation(values, Grid(values.shape, t, elev.grid.crs))


def _with_units(reaches: gpd.GeoDataFrame, juris: Jurisdictions) -> gpd.GeoDataFrame:
    """Reach table plus one column per level: the codes it runs through, ';'-joined."""
    out = reaches.copy()
    for lv in juris.levels:
        ru = juris.reach_units[juris.reach_units["level"] == lv]
        joined = ru.groupby("reach_id")["code"].agg(lambda c: ";".join(sorted(map(str, c))))
        out[lv] = joined.reindex(out.index).fillna("").to_numpy()
    return out
