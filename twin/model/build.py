"""Building a :class:`~twin.model.model.Model` from a catalog, in memory.

The steps, in order (``BUILD_STEPS``): load the DEM (reprojected to the twin's CRS, clipped to
the boundary or to the outlet's catchment), condition it and route D8, derive rivers, make the
reach table, analyse jurisdictions, place the sites. No file is written here: the twin folder
is :mod:`twin.model.folder`'s job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from twin.errors import OutsideBasinError
from twin.model.catalog import Catalog, Outlet, Parameters, load_catalog, sha256_file
from twin.model.drainage import Drainage
from twin.model.jurisdictions import Jurisdictions, analyse, load_units
from twin.model.loaders import Elevation, load_sites, load_vectors
from twin.model.model import Model
from twin.model.mosaic import load_dem
from twin.model.network import Network, build_reaches
from twin.model.sites import place_sites
from twin.model.terrain import condition
from twin.model.tiled import MIN_TILE_SIZE, TileError

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
        :data:`twin.model.tiled.MIN_TILE_SIZE`); None builds in memory.
    runner:
        Where the tiled build runs its per-tile work (:func:`twin.model.cluster.open_runner`);
        None runs it in this process.

    Raises
    ------
    TwinError
        A subclass naming the source or value at fault.
    TileError
        ``tile_size`` is not an integer or is below the minimum (checked before any work).
    """
    if tile_size is not None:
        _check_tile_size(tile_size)
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

    # tiled path: lead (when tile_size is given, or the grid is too large for one process, the
    # tiled build takes over from here with `runner`; until then every build is in memory)
    step("load terrain")
    dem_name, dem_src = cat.dem_source()
    elev = load_dem(
        files[dem_name],
        declared_crs=dem_src.crs,
        nodata=dem_src.nodata,
        target_crs=cat.crs,
        resolution=params.resolution_m,
        what=f"DEM '{dem_name}'",
    )
    bsrc = cat.boundary_source()
    if bsrc is not None:
        boundary = load_vectors(
            [cat.resolve(f) for f in bsrc.files], declared_crs=bsrc.crs, layer=bsrc.layer, what="boundary"
        )
        elev = _clip_to_boundary(elev, boundary)
    elif cat.outlet is not None:
        elev = _clip_to_outlet(elev, cat.outlet, params)

    step("condition and route")
    terrain, d8, order = condition(elev)
    del elev
    log.info("conditioning raised %(cells_raised)d cells, at most %(max_raise_m).1f m", terrain.conditioning_summary())

    step("derive rivers")
    drainage = Drainage.route(terrain.grid, d8, order, params.stream_threshold_km2)

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


def _check_tile_size(tile_size: int) -> None:
    if isinstance(tile_size, bool) or not isinstance(tile_size, int | np.integer):
        raise TileError(f"tile size {tile_size!r} is not an integer; give a number of cells, at least {MIN_TILE_SIZE}")
    if tile_size < MIN_TILE_SIZE:
        raise TileError(
            f"tile size {tile_size} is below the minimum of {MIN_TILE_SIZE} cells; give at least {MIN_TILE_SIZE}"
        )


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
