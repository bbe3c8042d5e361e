"""The tiled routing: the same conditioned DEM, D8, upstream cells, rivers and sub-basins as the in-memory build,
for any tile size; the flat rule's known answers; the tile store's frames."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import CRS

from twin.model import blocks, build, kernels, tiled_build
from twin.model.drainage import Drainage
from twin.model.loaders import Elevation, Grid
from twin.model.mosaic import load_dem, open_dem
from twin.model.terrain import condition
from twin.model.tiled import MIN_TILE_SIZE, TileError, read_block
from twin.model.tiled_route import GRIDS, route_tiled
from twin.model.tilestore import TileStore, Tiling

from . import synthetic
from .synthetic import dems

GRID_CRS = CRS.from_epsg(32631)


def in_memory(dem: np.ndarray, threshold_cells: int) -> dict[str, np.ndarray]:
    """The in-memory build's grids (terrain.condition, then Drainage.route), the reference."""
    grid = Grid(dem.shape, Affine(30, 0, 500000, 0, -30, 4900000), GRID_CRS)
    terrain, d8, order = condition(Elevation(dem, grid))
    drainage = Drainage.route(grid, d8, order, threshold_cells * grid.cell_area / 1e6)
    assert drainage.threshold_cells == threshold_cells
    return {
        "filled": terrain.conditioned,
        "d8": drainage.d8,
        "upstream_cells": drainage.upstream_cells,
        "strahler": drainage.strahler,
        "reach": drainage.reach,
        "subbasin": drainage.subbasin,
    }


def assert_same_as_in_memory(dem: np.ndarray, tile_size: int, threshold_cells: int, tmp_path) -> None:
    expected = in_memory(dem, threshold_cells)
    route = route_tiled(dem, tile_size, threshold_cells, workdir=tmp_path)
    for name in GRIDS:
        got = route.grid(name)
        want = expected[name]
        assert got.dtype == want.dtype, name
        assert np.array_equal(got, want, equal_nan=True), (
            f"{name} differs in {int((got != want).sum())} cells with tiles of {tile_size}"
        )


@settings(max_examples=60, deadline=None)
@given(dem=dems(max_side=100), tile_size=st.integers(MIN_TILE_SIZE, 110), threshold=st.integers(2, 40))
def test_tiled_routing_is_the_in_memory_routing(dem, tile_size, threshold, tmp_path_factory):
    assert_same_as_in_memory(dem, tile_size, threshold, tmp_path_factory.mktemp("tiles"))


@pytest.mark.parametrize("tile_size", [16, 29, 64])
def test_a_lake_and_a_plain_spanning_many_tiles_route_the_same(tile_size, tmp_path):
    # a terraced slope with a wide lake (a walled depression) and a level plain, both across many tile edges
    rng = np.random.default_rng(7)
    rows, cols = np.mgrid[0:150, 0:130]
    dem = (rows * 0.5 + rng.uniform(0, 0.3, rows.shape)).astype(np.float32)
    dem[20:90, 10:120] -= 15.0  # the lake's bed
    dem[100:140, :] = 40.0  # a plain
    assert_same_as_in_memory(dem, tile_size, 25, tmp_path)


def test_level_ground_drains_the_shortest_way_to_the_edge():
    dem = np.zeros((9, 9), dtype=np.float32)
    d8 = blocks.route_filled(dem.copy(), dem)
    assert (d8[[0, -1], :] == kernels.D8_OUTLET).all() and (d8[:, [0, -1]] == kernels.D8_OUTLET).all()
    assert d8[1, 4] == 64 and d8[7, 4] == 4 and d8[4, 1] == 16 and d8[4, 7] == 1  # N, S, W, E
    assert d8[4, 4] == 1  # four ways equally short: the first of E, SE, S, ... wins


def test_a_filled_pond_drains_along_its_deepest_ground_in_any_tiling(tmp_path):
    # the pond of test_kernels: a channel down column 5 behind a dam with its spillway at column 25
    nrow, ncol = 30, 30
    rows, _ = np.mgrid[0:nrow, 0:ncol]
    dem = (nrow - rows) * 0.2 + 100.0
    dem[20, :] += 10.0
    dem[:21, 0] += 10.0
    dem[:21, -1] += 10.0
    dem[0, :] += 10.0
    dem[20, 25] = 104.0
    dem[1:20, 5] -= 1.0
    dem = dem.astype(np.float32)
    for size in (16, 17, 23):
        route = route_tiled(dem, size, 5, workdir=tmp_path / str(size))
        d8 = route.grid("d8")
        assert (d8[11:18, 5] == 4).all() and (d8[19, 6:24] == 1).all()
    assert_same_as_in_memory(dem, 16, 5, tmp_path / "check")


def test_flats_settle_in_rounds_across_tiles(tmp_path):
    # a level strip 200 cells long whose only way out is at its east end: its distances cross 13 tiles of 16
    dem = np.full((20, 202), 50.0, dtype=np.float32)
    dem[5:15, 1:201] = 10.0
    dem[10, 201] = 5.0
    route = route_tiled(dem, 16, 5, workdir=tmp_path)
    assert route.flat_rounds >= 13
    d8 = route.grid("d8")
    assert (d8[10, 1:200] == 1).all()  # the middle row of the strip flows east, all the way


@settings(max_examples=40, deadline=None)
@given(
    nrow=st.integers(1, 60),
    ncol=st.integers(1, 60),
    size=st.integers(MIN_TILE_SIZE, 40),
    seed=st.integers(0, 2**31),
)
def test_a_tile_with_its_frame_is_the_window_of_the_grid(nrow, ncol, size, seed, tmp_path_factory):
    values = np.random.default_rng(seed).normal(size=(nrow, ncol)).astype(np.float32)
    tiling = Tiling((nrow, ncol), size)
    store = TileStore(str(tmp_path_factory.mktemp("store")), tiling)
    for t in range(len(tiling)):
        store.write("z", t, values[tiling.window(t)])
    for t in range(len(tiling)):
        assert np.array_equal(store.block("z", t, np.nan), read_block(values, tiling.window(t)), equal_nan=True)
    assert np.array_equal(store.assemble("z", np.empty_like(values)), values)


def test_a_tile_size_below_the_minimum_is_refused_naming_it(tmp_path):
    with pytest.raises(TileError, match=f"minimum of {MIN_TILE_SIZE}"):
        route_tiled(np.zeros((40, 40), dtype=np.float32), MIN_TILE_SIZE - 1, 5, workdir=tmp_path)


def test_the_demo_basin_routes_the_same_in_tiles(demo, tmp_path):
    model = demo.model
    dem = np.ascontiguousarray(model.terrain.dem)
    route = route_tiled(dem, 256, model.drainage.threshold_cells, workdir=tmp_path)
    assert np.array_equal(route.grid("filled"), model.terrain.conditioned, equal_nan=True)
    for name in GRIDS[1:]:
        assert np.array_equal(route.grid(name), getattr(model.drainage, name)), name


def test_stitched_terrain_and_drainage_are_those_of_the_in_memory_build(tmp_path):
    dem = np.random.default_rng(3).normal(0, 1, (90, 70)).cumsum(axis=0).cumsum(axis=1).astype(np.float32) / 5
    grid = Grid(dem.shape, Affine(30, 0, 500000, 0, -30, 4900000), GRID_CRS)
    terrain, d8, order = condition(Elevation(dem, grid))
    drainage = Drainage.route(grid, d8, order, 0.05)
    tiled_terrain, tiled_drainage = route_tiled(dem, 32, drainage.threshold_cells, workdir=tmp_path).stitch(grid)
    assert isinstance(tiled_drainage.d8, np.memmap)  # paged in from the store's files, not held in memory
    assert np.array_equal(tiled_terrain.dem, terrain.dem, equal_nan=True)
    assert np.array_equal(tiled_terrain.conditioned, terrain.conditioned, equal_nan=True)
    assert np.array_equal(tiled_drainage.order, drainage.order)
    for a, b in zip(tiled_drainage.reach_cells, drainage.reach_cells):
        assert np.array_equal(a, b)


def test_the_boundary_clip_streamed_by_windows_is_the_in_memory_clip(tmp_path, monkeypatch):
    path = synthetic.write_dem(tmp_path / "dem.tif", synthetic.random_terrain(150, 130, seed=5))
    elev = load_dem([path])
    x0, y0 = synthetic.cell_xy(20.3, 15.7)
    x1, y1 = synthetic.cell_xy(120.2, 111.4)
    boundary = shapely.Polygon([(x0, y0), (x1, y0 + 300), (x1 - 200, y1), (x0 + 500, y1 - 100)])
    expected = build._clip_to_boundary(elev, gpd.GeoDataFrame(geometry=[boundary], crs=elev.grid.crs))
    monkeypatch.setattr(tiled_build, "CLIP_WINDOW", 32)  # many windows, the polygon's edge across them
    source, grid = tiled_build.clip_to_boundary(open_dem([path]), boundary, tmp_path / "clipped.npy")
    assert grid == expected.grid
    got = np.load(source.path)
    assert np.array_equal(got, expected.values, equal_nan=True)
    terrain, drainage = tiled_build.tiled_terrain_and_drainage(
        open_dem([path]), boundary, 0.05, tile_size=40, workdir=tmp_path / "work"
    )
    assert np.array_equal(terrain.dem, expected.values, equal_nan=True)
    _, d8, order = condition(expected)
    reference = Drainage.route(expected.grid, d8, order, 0.05)
    assert np.array_equal(drainage.reach, reference.reach) and np.array_equal(drainage.d8, reference.d8)
