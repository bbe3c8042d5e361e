"""Summaries of a twin over whole grids, read in blocks of rows (issue 13).

``twin info`` on a lazily opened twin must not read its grids whole into memory:
:meth:`Terrain.elevation_range` and :meth:`Terrain.conditioning_summary` read them a block
of rows at a time (``terrain.CHUNK_BYTES``, lowered here so a small grid has many blocks)
and give the whole-grid figures. ``folder.LAZY_MIN_CELLS`` is lowered to 0, so the small
synthetic twin opens as memory maps, the way a 100 M-cell one does.

The test of released pages reads the resident size of each mapping from Linux's
``/proc/self/smaps``.
"""

from __future__ import annotations

import json
import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from pyproj import CRS

from twin.cli import cli
from twin.model import folder, terrain
from twin.model.loaders import Grid
from twin.model.terrain import Terrain

from . import synthetic

NROW, NCOL = 53, 17  # 53 is prime: no block of more than one row divides it
#: rows per block of the conditioning summary tried (the elevation range's blocks are 5.5 times as tall)
BLOCK_ROWS = (1, 2, 4, 7, 13, 52, 53, 1000)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A saved twin of rough terrain (many filled depressions) with its three top rows and a block nodata."""
    src = tmp_path_factory.mktemp("chunked-src")
    dem = synthetic.random_terrain(NROW, NCOL, seed=3)
    dem[:3, :] = np.nan  # the first blocks hold nothing but nodata
    dem[20:26, 5:9] = np.nan
    return synthetic.saved_twin(src, dem, "chunked", 0.01)


@pytest.fixture
def lazy(saved, monkeypatch):
    """The saved twin opened lazily: its grids are read-only memory maps."""
    monkeypatch.setattr(folder, "LAZY_MIN_CELLS", 0)
    monkeypatch.setenv("TWIN_CACHE_DIR", str(saved.parent / "user-cache"))
    model = folder.read_twin(saved)[0]
    assert isinstance(model.terrain.dem, np.memmap) and isinstance(model.terrain.conditioned, np.memmap)
    return model


def blocks_of(monkeypatch, rows: int) -> None:
    """Make the conditioning summary's blocks ``rows`` rows tall."""
    monkeypatch.setattr(terrain, "CHUNK_BYTES", rows * NCOL * terrain._CONDITIONING_CELL_BYTES)


def whole_grid(dem: np.ndarray, conditioned: np.ndarray, cell_area: float) -> dict:
    """The figures computed over whole in-memory grids, as ``twin info`` did before issue 13."""
    diff = np.asarray(conditioned) - np.asarray(dem)
    valid = diff[~np.isnan(diff)].astype(np.float64)
    return {
        "elevation": (float(np.nanmin(dem)), float(np.nanmax(dem))),
        "cells_raised": int((diff > 0).sum()),
        "max_raise_m": float(np.nanmax(diff)),
        "volume_m3": float(np.nansum(diff.astype(np.float64))) * cell_area,
        "exact_volume_m3": math.fsum(valid.tolist()) * cell_area,
    }


def test_chunked_summaries_equal_the_whole_grid_ones_for_any_block_size(lazy, monkeypatch):
    t = lazy.terrain
    want = whole_grid(t.dem, t.conditioned, t.grid.cell_area)
    assert want["cells_raised"] > 50 and np.isnan(t.dem).any()  # a test of something: fills and nodata
    volumes = set()
    for rows in BLOCK_ROWS:
        blocks_of(monkeypatch, rows)
        assert t.elevation_range() == want["elevation"], rows  # exact: the same two floats
        got = t.conditioning_summary()
        assert got["cells_raised"] == want["cells_raised"], rows
        assert got["max_raise_m"] == want["max_raise_m"], rows
        assert got["volume_m3"] == pytest.approx(want["exact_volume_m3"], rel=1e-13), rows
        assert got["volume_m3"] == pytest.approx(want["volume_m3"], rel=1e-13), rows
        volumes.add(got["volume_m3"])
    assert len(volumes) == 1  # the volume is the same float whatever the block size


def test_the_volume_is_the_same_float_for_any_block_size_where_sums_round(monkeypatch):
    """Raises from 0.1 mm to 10 km: float64 sums of them round (those of the small twin's do not)."""
    nrow, ncol = 211, 97
    rng = np.random.default_rng(5)
    dem = np.zeros((nrow, ncol), dtype=np.float32)  # so that conditioned - dem is the raise itself, unrounded
    raise_m = (10.0 ** rng.uniform(-4, 4, (nrow, ncol))).astype(np.float32)
    conditioned = np.where(rng.random((nrow, ncol)) < 0.3, dem + raise_m, dem).astype(np.float32)
    dem[rng.random((nrow, ncol)) < 0.05] = np.nan
    conditioned[np.isnan(dem)] = np.nan
    t = Terrain(Grid((nrow, ncol), synthetic.TRANSFORM, CRS.from_user_input(synthetic.CRS)), dem, conditioned)
    want = whole_grid(dem, conditioned, t.grid.cell_area)
    volumes = set()
    for rows in (1, 3, 10, 64, 210, 211):
        monkeypatch.setattr(terrain, "CHUNK_BYTES", rows * ncol * terrain._CONDITIONING_CELL_BYTES)
        got = t.conditioning_summary()
        assert (got["cells_raised"], got["max_raise_m"]) == (want["cells_raised"], want["max_raise_m"]), rows
        assert got["volume_m3"] == pytest.approx(want["exact_volume_m3"], rel=1e-14), rows
        volumes.add(got["volume_m3"])
    assert len(volumes) == 1


def test_a_grid_of_nodata_only_or_without_fills_gives_nan_and_zero():
    grid = Grid((6, 4), synthetic.TRANSFORM, CRS.from_user_input(synthetic.CRS))
    empty = np.full((6, 4), np.nan, dtype=np.float32)
    t = Terrain(grid, empty, empty.copy())
    lo, hi = t.elevation_range()
    assert math.isnan(lo) and math.isnan(hi)
    assert t.conditioning_summary() == {"cells_raised": 0, "max_raise_m": 0.0, "volume_m3": 0.0}
    flat = np.arange(24, dtype=np.float32).reshape(6, 4)
    assert Terrain(grid, flat, flat.copy()).conditioning_summary()["cells_raised"] == 0
    assert Terrain(grid, flat, flat.copy()).elevation_range() == (0.0, 23.0)


def test_twin_info_of_a_lazily_opened_twin_gives_the_figures_of_its_rasters(saved, monkeypatch):
    monkeypatch.setattr(folder, "LAZY_MIN_CELLS", 0)
    monkeypatch.setenv("TWIN_CACHE_DIR", str(saved.parent / "user-cache"))
    blocks_of(monkeypatch, 4)
    with (
        rasterio.open(saved / "terrain" / "elevation.tif") as a,
        rasterio.open(saved / "terrain" / "conditioned.tif") as b,
    ):
        dem, conditioned = a.read(1, masked=True).filled(np.nan), b.read(1, masked=True).filled(np.nan)
        cell_area = abs(a.transform.a * a.transform.e)
    want = whole_grid(dem, conditioned, cell_area)
    result = CliRunner().invoke(cli, ["info", str(saved)], prog_name="twin")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["elevation_m"] == [round(v, 1) for v in want["elevation"]]
    assert data["conditioning"]["cells_raised"] == want["cells_raised"]
    assert data["conditioning"]["max_raise_m"] == want["max_raise_m"]
    assert data["conditioning"]["volume_m3"] == pytest.approx(want["exact_volume_m3"], rel=1e-13)
    summary = CliRunner().invoke(cli, ["info", str(saved), "--summary"], prog_name="twin")
    assert summary.exit_code == 0, summary.output
    lo, hi = data["elevation_m"]
    assert f"elevation   {lo:g}-{hi:g} m; conditioning raised {want['cells_raised']:,} cells" in summary.output


def test_a_summary_holds_one_block_at_a_time_not_the_grid(monkeypatch):
    nrow, ncol = 1500, 400  # 2.4 MB a float32 grid; its float64 difference would be 4.8 MB
    dem = synthetic.random_terrain(nrow, ncol, seed=1)
    conditioned = np.maximum(dem, np.float32(150.0))
    dem[:, :7] = np.nan
    t = Terrain(Grid((nrow, ncol), synthetic.TRANSFORM, CRS.from_user_input(synthetic.CRS)), dem, conditioned)
    monkeypatch.setattr(terrain, "CHUNK_BYTES", 256 * 1024)
    tracemalloc.start()
    try:
        summary = t.conditioning_summary()
        low, high = t.elevation_range()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary["cells_raised"] == int((conditioned > dem).sum()) > 0
    assert (low, high) == (float(np.nanmin(dem)), float(np.nanmax(dem)))
    assert peak < 2 * terrain.CHUNK_BYTES < dem.nbytes


def mapped_kb(path: Path) -> int:
    """Resident kB of this process's mappings of ``path`` (Linux ``/proc/self/smaps``)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5:  # a mapping's first line: range perms offset dev inode [path]
            inside = len(head) >= 6 and head[5] == str(path)
        elif inside and head[0] == "Rss:":
            total += int(head[1])
    return total


def test_the_pages_of_memory_mapped_grids_are_released_as_blocks_are_read(tmp_path, monkeypatch):
    nrow, ncol = 1024, 1024  # 4 MB a grid, 1024 pages
    paths = {name: tmp_path / f"{name}.npy" for name in ("dem", "conditioned")}
    dem = synthetic.random_terrain(nrow, ncol, seed=2)
    np.save(paths["dem"], dem)
    np.save(paths["conditioned"], np.maximum(dem, np.float32(160.0)))
    maps = {name: np.load(p, mmap_mode="r") for name, p in paths.items()}
    t = Terrain(Grid((nrow, ncol), synthetic.TRANSFORM, CRS.from_user_input(synthetic.CRS)), **maps)
    monkeypatch.setattr(terrain, "CHUNK_BYTES", 512 * 1024)
    whole = whole_grid(maps["dem"], maps["conditioned"], 900.0)  # reads both maps whole: every page resident
    assert all(mapped_kb(p) >= 4000 for p in paths.values())
    for name, a in maps.items():
        terrain.release_rows(a, slice(0, nrow))
        assert mapped_kb(paths[name]) <= 8, name
    assert t.elevation_range() == whole["elevation"]
    assert t.conditioning_summary()["cells_raised"] == whole["cells_raised"]
    assert all(mapped_kb(p) <= 64 for p in paths.values())  # a page or two per block boundary at most
    assert float(maps["dem"][nrow - 1, ncol - 1]) == float(dem[-1, -1])  # a released page reads back the same


def test_a_copy_on_write_map_keeps_its_changes(tmp_path):
    path = tmp_path / "grid.npy"
    np.save(path, np.zeros((256, 1024), dtype=np.float32))
    grid = np.load(path, mmap_mode="c")
    grid[100, 5] = 42.0  # held only in this process's private pages
    terrain.release_rows(grid, slice(0, 256))
    assert grid[100, 5] == 42.0
