"""The terrain and drainage of a catalog built tile by tile: the DEM read window by window, clipped, routed.

:func:`tiled_terrain_and_drainage` is what :func:`twin.model.build.build_model` calls in place of
loading the DEM whole and routing it in memory; it gives the same :class:`~twin.model.terrain.Terrain`
and :class:`~twin.model.drainage.Drainage` (their grids memory-mapped, see
:meth:`twin.model.tiled_route.TiledRoute.stitch`), so every later step runs unchanged.

Clipping. Without a boundary, the workers read the DEM themselves
(:class:`twin.model.mosaic.DemSource`, window by window). With a boundary polygon, this process
first streams the DEM window by window into a clipped copy (cells whose centre lies outside the
polygon become nodata; the grid is cropped to the cells inside), which the workers then read,
exactly what the in-memory build's clip gives. With an *outlet* instead (keep one catchment), the
whole DEM is routed tile by tile first, as the in-memory build routes it whole; the outlet is
snapped to that river network and its catchment (:meth:`Drainage.catchment_mask`, on the stitched
grids: one byte a cell of the DEM in this process) streamed window by window into a cropped copy,
which is then routed tile by tile again: the same steps, so the same grids, as in memory.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio.features
import shapely
from affine import Affine

from twin.errors import OutsideBasinError
from twin.model.cluster import TileRunner
from twin.model.drainage import Drainage, threshold_cells
from twin.model.loaders import Grid
from twin.model.mosaic import DemSource
from twin.model.terrain import Terrain
from twin.model.tiled import read_block
from twin.model.tiled_route import route_tiled
from twin.model.tilestore import Tiling

log = logging.getLogger(__name__)

CLIP_WINDOW = 2048  # rows and columns of the windows the boundary clip streams


@dataclass(frozen=True)
class NpySource:
    """A DEM in a ``.npy`` file every worker sees, read by memory map (picklable: it holds the path)."""

    path: str
    shape: tuple[int, int]

    def read_block(self, window: tuple[slice, slice]) -> np.ndarray:
        return read_block(np.load(self.path, mmap_mode="r"), window)


def clip_to_boundary(source: DemSource, boundary: shapely.Geometry, path: Path) -> tuple[NpySource, Grid]:
    """Stream ``source`` into ``path``, nodata outside ``boundary`` (in the grid's CRS), cropped to the cells inside.

    Raises
    ------
    OutsideBasinError
        No cell centre lies inside the boundary.
    """
    grid = source.grid
    windows = Tiling(grid.shape, CLIP_WINDOW)

    def inside(t: int) -> np.ndarray:
        rows, cols = windows.window(t)
        shape = (rows.stop - rows.start, cols.stop - cols.start)
        transform = grid.transform * Affine.translation(cols.start, rows.start)
        return rasterio.features.geometry_mask([boundary], out_shape=shape, transform=transform, invert=True)

    r0 = c0 = np.iinfo(np.int64).max
    r1 = c1 = -1
    for t in range(len(windows)):
        rows, cols = windows.window(t)
        rr, cc = np.nonzero(inside(t))
        if rr.size:
            r0, r1 = min(r0, rows.start + rr.min()), max(r1, rows.start + rr.max() + 1)
            c0, c1 = min(c0, cols.start + cc.min()), max(c1, cols.start + cc.max() + 1)
    if r1 < 0:
        raise OutsideBasinError("the boundary polygon does not overlap the DEM; check the boundary's CRS and extent")
    shape = (int(r1 - r0), int(c1 - c0))
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    for t in range(len(windows)):
        rows, cols = windows.window(t)
        a, b = max(rows.start, r0), min(rows.stop, r1)
        c, d = max(cols.start, c0), min(cols.stop, c1)
        if a >= b or c >= d:
            continue
        mask = inside(t)[a - rows.start : b - rows.start, c - cols.start : d - cols.start]
        values = source.read((slice(a, b), slice(c, d)))
        out[a - r0 : b - r0, c - c0 : d - c0] = np.where(mask, values, np.nan)
    out.flush()
    del out
    cropped = Grid(shape, grid.transform * Affine.translation(int(c0), int(r0)), grid.crs)
    log.info("boundary clip: %d x %d cells of %d x %d", shape[0], shape[1], *grid.shape)
    return NpySource(str(path), shape), cropped


@dataclass(frozen=True)
class OutletClip:
    """Keep the catchment of an outlet: its point in the grid's CRS and how far it may be snapped."""

    x: float
    y: float
    snap_max_m: float
    what: str


def clip_to_outlet(source: DemSource, drainage: Drainage, outlet: OutletClip, path: Path) -> tuple[NpySource, Grid]:
    """Stream ``source`` into ``path``: nodata outside the outlet's catchment on ``drainage``, cropped to it."""
    grid = source.grid
    s = drainage.snap(outlet.x, outlet.y, outlet.snap_max_m, what=outlet.what)
    inside = drainage.catchment_mask([s.cell])
    rows_in, cols_in = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    r0, r1, c0, c1 = int(rows_in[0]), int(rows_in[-1]) + 1, int(cols_in[0]), int(cols_in[-1]) + 1
    shape = (r1 - r0, c1 - c0)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    for a in range(r0, r1, CLIP_WINDOW):
        b = min(a + CLIP_WINDOW, r1)
        values = source.read((slice(a, b), slice(c0, c1)))
        out[a - r0 : b - r0] = np.where(inside[a:b, c0:c1], values, np.nan)
    out.flush()
    del out
    log.info("outlet clip: the catchment's %d x %d cells of %d x %d", shape[0], shape[1], *grid.shape)
    return NpySource(str(path), shape), Grid(shape, grid.transform * Affine.translation(c0, r0), grid.crs)


def tiled_terrain_and_drainage(
    source: DemSource,
    boundary: shapely.Geometry | None,
    threshold_km2: float,
    *,
    tile_size: int,
    workdir: Path,
    runner: TileRunner | None = None,
    outlet: OutletClip | None = None,
) -> tuple[Terrain, Drainage]:
    """Clip (if a boundary is given), fill, route and derive the rivers of a DEM, tile by tile.

    Parameters
    ----------
    source:
        The DEM in the working CRS (:func:`twin.model.mosaic.open_dem`).
    boundary:
        The basin's boundary in the working CRS, or None to keep the whole grid.
    outlet:
        Without a boundary: keep the catchment of this outlet (module docstring).
    threshold_km2:
        Upstream area from which a cell is a river cell.
    tile_size, runner:
        As for :func:`twin.model.tiled_route.route_tiled`.
    workdir:
        Folder for the tiles and the stitched grids; every worker must see it, and it must
        outlive the returned objects (their grids are memory maps of files in it).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    grid = source.grid
    read: DemSource | NpySource = source
    if boundary is not None:
        read, grid = clip_to_boundary(source, boundary, workdir / "clipped_dem.npy")
    elif outlet is not None:
        cells = threshold_cells(grid, threshold_km2)
        whole = route_tiled(source, tile_size, cells, workdir=workdir / "whole", runner=runner)
        _, drainage = whole.stitch(grid)
        read, grid = clip_to_outlet(source, drainage, outlet, workdir / "clipped_dem.npy")
        del drainage
        shutil.rmtree(workdir / "whole", ignore_errors=True)
    route = route_tiled(read, tile_size, threshold_cells(grid, threshold_km2), workdir=workdir / "tiles", runner=runner)
    log.info(
        "tiled build: %d tiles of %d cells, flats settled in %d rounds",
        len(route.store.tiling),
        tile_size,
        route.flat_rounds,
    )
    return route.stitch(grid)
