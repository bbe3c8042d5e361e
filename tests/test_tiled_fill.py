"""The tiled depression fill: known answers on tiny DEMs, and the same filled DEM as kernels.flood for any tiling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.errors import TwinError
from twin.model import kernels, tiled
from twin.model.tiled import MIN_TILE_SIZE, TileError, fill_tiled

from .synthetic import dems

TILE_SIZES = (16, 17, 23, 64)


def flood(dem: np.ndarray) -> np.ndarray:
    """The in-memory fill, the reference the tiled one must match bit for bit."""
    dem = np.ascontiguousarray(dem, dtype=np.float32)
    filled = np.empty_like(dem)
    d8 = np.empty(dem.shape, dtype=np.uint8)
    order = np.empty(dem.size, dtype=np.int32)
    kernels.flood(dem, filled, d8, order)
    return filled


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


def west_slope(nrow: int = 40, ncol: int = 40) -> np.ndarray:
    """A plane rising 1 m per column eastwards from 100 m: everything drains to the west edge, nothing fills."""
    return np.broadcast_to(100.0 + np.arange(ncol, dtype=np.float32), (nrow, ncol)).astype(np.float32)


def assert_fills_to(dem: np.ndarray, expected: np.ndarray, sizes=TILE_SIZES) -> None:
    assert same(flood(dem), expected)  # the known answer is right for the in-memory fill too
    for size in sizes:
        assert same(fill_tiled(dem, size), expected), f"tile size {size}"


def test_pit_in_the_middle_of_a_tile_fills_to_its_lowest_rim_cell():
    dem = west_slope()
    dem[18:23, 18:23] = 50.0
    dem[20, 20] = 40.0
    expected = dem.copy()
    expected[18:23, 18:23] = 117.0  # the rim's lowest cell is in column 17
    assert_fills_to(dem, expected)


def test_depression_across_four_tiles_fills_to_one_level():
    rng = np.random.default_rng(3)
    dem = west_slope()
    dem[12:21, 12:21] = rng.uniform(40, 60, (9, 9)).astype(np.float32)  # centred on the corner (16, 16)
    expected = dem.copy()
    expected[12:21, 12:21] = 111.0
    assert_fills_to(dem, expected, sizes=(16,))
    assert_fills_to(dem, expected)


def test_pit_drains_through_an_outlet_in_another_tile():
    dem = west_slope()
    dem[5:36, 5:36] = 200.0  # a wall around a basin...
    dem[6:35, 6:35] = 60.0 + np.arange(29, dtype=np.float32)[:, None]  # ...whose floor falls southwards
    dem[30, 30] = 10.0  # the pit, in tile (1, 1) of 16
    dem[8, 5] = 150.0  # the gap in the wall, in tile (0, 0)
    expected = dem.copy()
    expected[6:35, 6:35] = 150.0
    assert_fills_to(dem, expected)


def test_nodata_stays_nodata_and_drains_what_touches_it():
    dem = west_slope()
    dem[18:23, 12:16] = 50.0  # a bowl in tile column 0...
    dem[18:23, 16] = np.nan  # ...beside a hole in tile column 1: its water leaves through the hole
    dem[30:34, 30:34] = 50.0  # a bowl far from any hole: filled
    dem[0:3, 24:28] = 50.0  # a bowl on the grid edge: drains off the grid
    dem[:, 39] = np.nan  # a nodata edge
    expected = dem.copy()
    expected[30:34, 30:34] = 129.0
    assert_fills_to(dem, expected)
    assert np.isnan(fill_tiled(dem, 16)[:, 39]).all()


def test_all_nodata_tiles_and_a_grid_of_nodata():
    dem = west_slope()
    dem[:16, :16] = np.nan  # one whole tile of 16
    dem[20:24, 20:24] = 50.0
    expected = dem.copy()
    expected[20:24, 20:24] = 119.0
    assert_fills_to(dem, expected)
    empty = np.full((20, 20), np.nan, dtype=np.float32)
    assert same(fill_tiled(empty, 16), empty)


def test_flat_plateau_is_kept_and_a_hole_in_it_fills_to_the_plateau():
    dem = west_slope()
    dem[8:36, 8:36] = 150.0  # a plateau above the plane, across four tiles
    assert_fills_to(dem, dem.copy())
    dem[14:20, 14:20] = 90.0  # a hole in it, across the corner of four tiles of 16
    expected = dem.copy()
    expected[14:20, 14:20] = 150.0
    assert_fills_to(dem, expected)
    flat = np.full((33, 50), 7.0, dtype=np.float32)
    assert_fills_to(flat, flat.copy())


def test_tile_larger_than_the_grid_is_the_in_memory_fill():
    dem = west_slope(20, 30)
    dem[5:10, 5:10] = 0.0
    assert same(fill_tiled(dem, 1000), flood(dem))


def test_tile_size_below_the_minimum_is_refused_with_the_minimum_named():
    with pytest.raises(TileError, match=f"minimum of {MIN_TILE_SIZE}") as info:
        fill_tiled(west_slope(), MIN_TILE_SIZE - 1)
    assert isinstance(info.value, TwinError) and isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)
    with pytest.raises(TileError, match="not an integer"):
        fill_tiled(west_slope(), 16.5)  # type: ignore[arg-type]
    with pytest.raises(TileError, match="2-D"):
        fill_tiled(np.zeros((2, 20, 20), dtype=np.float32), 16)


def test_each_tile_is_worked_on_alone_from_its_block_and_small_arrays():
    dem = west_slope()
    dem[18:23, 18:23] = 50.0
    windows = tiled.tile_windows(dem.shape, 16)
    assert len(windows) == 9
    blocks = [tiled.read_block(dem, w) for w in windows]
    before = [b.copy() for b in blocks]
    summaries = [tiled.summarise_tile(b) for b in blocks]
    assert all(same(b, c) for b, c in zip(blocks, before))  # the first pass leaves its input alone
    middle = summaries[4]  # rows and columns 16..31
    assert middle.top[0].shape == middle.left[0].shape == (16,)
    assert middle.nlabels <= 2 + 4 * 15  # at most one label per edge cell, besides nodata and the ocean
    waters = tiled.solve_levels(summaries, 3)
    assert [w.shape[0] for w in waters] == [s.nlabels for s in summaries]
    filled = tiled.fill_tile(blocks[4], waters[4])
    assert same(filled[2:7, 2:7], np.full((5, 5), 117.0, dtype=np.float32))
    # alone, the middle tile has no outlet: without the other tiles its water has nowhere to go
    assert np.isposinf(tiled.solve_levels([middle], 1)[0][2:]).all()


# --- properties ----------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(dem=dems(), tile_size=st.integers(MIN_TILE_SIZE, 130))
def test_tiled_fill_is_the_in_memory_fill(dem, tile_size):
    assert same(fill_tiled(dem, tile_size), flood(dem))


@settings(max_examples=200, deadline=None)
@given(dem=dems(max_side=40), tile_size=st.integers(1, MIN_TILE_SIZE - 1))
def test_tiles_of_a_few_cells_still_give_the_in_memory_fill(dem, tile_size):
    # below the minimum the graph is large but the answer must not change: every cell is then an edge cell
    assert same(tiled._fill(dem, tile_size), flood(dem))


def test_benchmark_runs_and_checks_the_tiled_fill_against_the_flood(capsys, monkeypatch):
    import importlib.util
    import json
    import sys
    from pathlib import Path

    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts benchmarks/ on the path for terrain.py
    had_terrain = "terrain" in sys.modules
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "tiled_fill.py"
    spec = importlib.util.spec_from_file_location("tiled_fill_benchmark", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--size", "80", "--tiles", "16,33,200"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["measure"] for line in lines] == ["flood"] + ["tiled_fill"] * 3
    assert [line["tiles"] for line in lines[1:]] == [25, 9, 1]
    assert all(line["same_as_flood"] and line["cells"] == 6400 for line in lines[1:])
    if not had_terrain:
        sys.modules.pop("terrain", None)
