"""The tiled build end to end: the demo twin built in tiles of 256, 1024 and 4096 cells is the in-memory twin,
and a build through a real dask scheduler and two workers is the in-memory build of the same catalog."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from click.testing import CliRunner

import twin
from twin.model.build import BUILD_STEPS
from twin.model.cluster import SerialRunner

from . import dask_cluster, synthetic  # noqa: F401  (dask_cluster: the fixture of a real cluster)
from .conftest import DEMO_CATALOG
from .dask_cluster import dask_cluster as cluster  # noqa: F401

GRIDS = ("d8", "order", "upstream_cells", "strahler", "reach", "subbasin")


def assert_same_model(got, want) -> None:
    assert np.array_equal(got.terrain.conditioned, want.terrain.conditioned, equal_nan=True)
    assert np.array_equal(got.terrain.dem, want.terrain.dem, equal_nan=True)
    for name in GRIDS:
        assert np.array_equal(getattr(got.drainage, name), getattr(want.drainage, name)), name
    pd.testing.assert_frame_equal(got.network.reaches, want.network.reaches)
    pd.testing.assert_frame_equal(got.jurisdictions.sections, want.jurisdictions.sections)
    pd.testing.assert_frame_equal(got.jurisdictions.reach_units, want.jurisdictions.reach_units)
    pd.testing.assert_frame_equal(got.jurisdictions.shares, want.jurisdictions.shares)
    pd.testing.assert_frame_equal(got.sites, want.sites)


@pytest.fixture(scope="module")
def demo_in_memory():
    return twin.BasinTwin.build(DEMO_CATALOG, tile_size=None)


@pytest.mark.parametrize("tile_size", [256, 1024, 4096])
def test_the_demo_built_in_tiles_is_the_demo_built_in_memory(demo_in_memory, tile_size, tmp_path):
    steps: list[str] = []
    tiled = twin.BasinTwin.build(
        DEMO_CATALOG, steps.append, tile_size=tile_size, runner=SerialRunner(), workdir=tmp_path / "work"
    )
    assert steps == list(BUILD_STEPS)
    assert isinstance(tiled.model.drainage.d8, np.memmap)  # the grids are paged in from the tiles' folder
    assert not isinstance(demo_in_memory.model.drainage.d8, np.memmap)
    assert_same_model(tiled.model, demo_in_memory.model)


def _rasters(folder: Path) -> dict[str, np.ndarray]:
    out = {}
    for path in sorted(folder.rglob("*.tif")):
        with rasterio.open(path) as src:
            out[str(path.relative_to(folder))] = src.read(1)
    return out


def test_a_build_through_a_dask_scheduler_and_two_workers_is_the_in_memory_build(cluster, make_catalog, tmp_path):  # noqa: F811
    from twin.cli import cli

    dem = synthetic.random_terrain(180, 150, seed=11)
    dem[60:90, 40:100] = np.float32(150.0)  # a level patch across tiles: flats settle over tile edges
    catalog = make_catalog(dem)
    whole, tiled = tmp_path / "whole", tmp_path / "tiled"
    first = CliRunner().invoke(cli, ["build", str(catalog), "-o", str(whole), "--quiet"], prog_name="twin")
    assert first.exit_code == 0, first.output
    result = CliRunner().invoke(
        cli,
        ["build", str(catalog), "-o", str(tiled), "--tile-size", "48", "--scheduler", cluster.address],
        prog_name="twin",
    )
    assert result.exit_code == 0, result.output + cluster.logs()
    assert json.loads(result.stdout) == {**json.loads(first.stdout), "twin": str(tiled)}
    assert "dask dashboard" in result.stderr and "of 16 tiles done" in result.stderr  # 180 x 150 in tiles of 48
    a, b = _rasters(whole), _rasters(tiled)
    assert a.keys() == b.keys() and len(a) >= 8
    for name in a:
        assert np.array_equal(a[name], b[name], equal_nan=True), name
    built = twin.BasinTwin.open(tiled, store=False)
    reference = twin.BasinTwin.open(whole, store=False)
    pd.testing.assert_frame_equal(built.model.network.reaches, reference.model.network.reaches)
    assert not list(tmp_path.glob(".tiled.tiles-*"))  # the tiles' folder is gone with the build


def test_a_threshold_above_the_basin_gives_no_river_and_says_so(make_catalog):
    from twin.errors import CatalogError

    catalog = make_catalog(synthetic.v_valley(41, 31), parameters={"stream_threshold_km2": 50.0})
    for tile_size in (None, 16):
        with pytest.raises(CatalogError, match=r"no river: .* 50 km² .*largest upstream area is 1\.14 km²"):
            twin.BasinTwin.build(catalog, tile_size=tile_size)


def test_a_tile_that_fails_fails_the_build_in_one_line_naming_it_and_leaves_no_folder(
    make_catalog, tmp_path, monkeypatch
):
    from twin.cli import cli
    from twin.model import tiled_route

    real = tiled_route._flat_first

    def broken(item, **common):
        if item[0] == 3:
            raise MemoryError("worker ran out of memory")
        return real(item, **common)

    monkeypatch.setattr(tiled_route, "_flat_first", broken)
    catalog = make_catalog(synthetic.random_terrain(100, 90, seed=2))
    out = tmp_path / "twin"
    result = CliRunner().invoke(
        cli, ["build", str(catalog), "-o", str(out), "--tile-size", "32", "--workers", "0", "--quiet"], prog_name="twin"
    )
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0] == "twin: error: flats, round 1: tile 3 failed: MemoryError: worker ran out of memory"
    assert not out.exists() and not list(tmp_path.glob(".twin.tiles-*"))


@pytest.mark.parametrize("tile_size", [16, 24])
def test_an_outlet_catchment_built_in_tiles_is_the_one_built_in_memory(make_catalog, tile_size, tmp_path):
    # two rough V-valleys side by side, each draining south to its own outlet; the catalog keeps the left one
    rng = np.random.default_rng(3)
    left = synthetic.v_valley(41, 31)
    dem = np.concatenate([left, left], axis=1) + rng.uniform(0, 1.5, (41, 62)).round(1)
    lon, lat = synthetic.cell_lonlat(40, 15)
    catalog = make_catalog(dem, split_row=20, extra={"outlet": {"lon": lon, "lat": lat}})
    in_memory = twin.BasinTwin.build(catalog)
    tiled = twin.BasinTwin.build(catalog, tile_size=tile_size, runner=SerialRunner(), workdir=tmp_path / "work")
    assert tiled.model.terrain.grid.shape == in_memory.model.terrain.grid.shape
    assert tiled.model.terrain.grid.shape[1] < 62  # cropped to the catchment
    assert_same_model(tiled.model, in_memory.model)
