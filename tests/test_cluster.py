"""The tiled build's runners: the same tiles in this process, on a LocalCluster and on a real dask cluster.

The work is the tiled fill of :mod:`twin.model.tiled` (summarise each tile, solve the levels
on the client, fill each tile), run through a runner and compared with the in-memory fill of
:func:`twin.model.kernels.flood`. The real cluster is a ``dask scheduler`` and two ``dask
worker`` processes on loopback (:mod:`tests.dask_cluster`); the tile functions below are
module-level so that its workers import them from this worktree.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from twin.model import cluster as cluster_module
from twin.model import kernels, tiled
from twin.model.cluster import ClusterError, DaskRunner, SerialRunner, TileRunner, open_runner

from . import dask_cluster, synthetic

TILE = 16


def random_dem(seed: int, nrow: int = 64, ncol: int = 80) -> np.ndarray:
    """Smoothed noise: pits and flats of many sizes, some across tile edges, and a few nodata holes."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(nrow + 6, ncol + 6))
    for _ in range(3):  # a 3x3 box blur, three times: hollows a few cells wide
        z = sum(z[i : i + z.shape[0] - 2, j : j + z.shape[1] - 2] for i in range(3) for j in range(3)) / 9
    dem = (100 + 20 * z).astype(np.float32)
    dem[rng.random(dem.shape) < 0.01] = np.nan
    return dem


def flood(dem: np.ndarray) -> np.ndarray:
    """The in-memory fill: what every runner's tiles must add up to, bit for bit."""
    filled = np.empty_like(dem)
    kernels.flood(dem, filled, np.empty(dem.shape, np.uint8), np.empty(dem.size, np.int32))
    return filled


# -- tile functions (module-level: workers import them by name) ---------------------------------
def summarise_window(window, *, dem):
    return tiled.summarise_tile(tiled.read_block(dem, window))


def fill_window(item, *, dem):
    window, water = item
    return tiled.fill_tile(tiled.read_block(dem, window), water)


def slow_summarise(window, *, dem, seconds):
    time.sleep(seconds)
    return summarise_window(window, dem=dem)


def summarise_but_tile_7(window, *, dem):
    rows, cols = window
    if (rows.start, cols.start) == (16, 32):
        raise ValueError("no elevation here\nsecond line of the error")
    return summarise_window(window, dem=dem)


def summarise_after_a_first_failure(window, *, dem, folder):
    marker = os.path.join(folder, f"{window[0].start}-{window[1].start}")
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise OSError("the tile's file was busy")
    return summarise_window(window, dem=dem)


def fill_through(runner: TileRunner, dem: np.ndarray, summarise=summarise_window, **common) -> np.ndarray:
    """The tiled fill with its two per-tile phases run by ``runner`` and the global solve here."""
    windows = tiled.tile_windows(dem.shape, TILE)
    summaries = runner.map(summarise, windows, what="summarise", dem=dem, **common)
    waters = tiled.solve_levels(summaries, -(-dem.shape[1] // TILE))
    tiles = runner.map(fill_window, list(zip(windows, waters)), what="fill", dem=dem)
    out = np.full_like(dem, -1.0)
    for window, tile in zip(windows, tiles):
        out[window] = tile
    return out


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


def tiles_done(messages: list[str], what: str) -> list[str]:
    return [m for m in messages if m.startswith(f"{what}: ")]


# -- in this process ----------------------------------------------------------------------------
def test_serial_runner_fills_like_the_in_memory_fill_and_says_how_far_it_got():
    dem = random_dem(1)
    messages: list[str] = []
    assert same(fill_through(SerialRunner(messages.append), dem), flood(dem))
    assert tiles_done(messages, "summarise")[-1] == "summarise: 20 of 20 tiles done"
    assert tiles_done(messages, "fill")[-1] == "fill: 20 of 20 tiles done"


def test_progress_comes_at_most_once_a_second_and_at_the_end(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(cluster_module, "time", SimpleNamespace(monotonic=lambda: clock[0]))

    def tile(item):
        clock[0] += 0.4  # each tile takes 0.4 s
        return item

    messages: list[str] = []
    assert SerialRunner(messages.append).map(tile, range(10), what="fill") == list(range(10))
    assert messages == [f"fill: {k} of 10 tiles done" for k in (3, 6, 9, 10)]


def test_serial_runner_names_the_tile_that_failed():
    with pytest.raises(ClusterError) as err:
        fill_through(SerialRunner(), random_dem(2), summarise=summarise_but_tile_7)
    assert str(err.value) == "summarise: tile 7 (rows 16:32, cols 32:48) failed: ValueError: no elevation here"


def test_no_workers_means_no_cluster():
    with open_runner(workers=0) as runner:
        assert isinstance(runner, SerialRunner)


# -- a LocalCluster ---------------------------------------------------------------------------
def test_local_cluster_fills_like_this_process_and_leaves_nothing_behind(tmp_path, monkeypatch):
    import psutil

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # where the cluster's scratch folder goes
    dem = random_dem(3)
    messages: list[str] = []
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with open_runner(workers=2, progress=messages.append) as runner:
        assert messages == []  # no cluster until there is work
        filled = fill_through(runner, dem)
        assert len(psutil.Process().children(recursive=True)) >= 2 + len(before)
    assert same(filled, fill_through(SerialRunner(), dem))
    assert same(filled, flood(dem))
    assert [m for m in messages if m.startswith("dask dashboard: http://127.0.0.1:")] == messages[:1]
    assert tiles_done(messages, "fill")[-1] == "fill: 20 of 20 tiles done"
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and _not_tracker(p)]
    assert left == []
    assert list(tmp_path.iterdir()) == []


def _not_tracker(p) -> bool:
    """multiprocessing's resource tracker lives as long as this process, by design; it is not a worker."""
    try:
        return "resource_tracker" not in " ".join(p.cmdline())
    except Exception:  # gone meanwhile
        return False


# -- a real cluster: `dask scheduler` and `dask worker` processes -------------------------------
@pytest.fixture(scope="module")
def cluster():
    with dask_cluster.running(2) as c:
        yield c


def test_a_real_cluster_fills_like_the_in_memory_fill(cluster):
    dem = random_dem(4)
    messages: list[str] = []
    with open_runner(scheduler=cluster.address, progress=messages.append) as runner:
        assert isinstance(runner, DaskRunner)
        assert messages[0].startswith("dask dashboard: http://127.0.0.1:")
        assert same(fill_through(runner, dem), flood(dem))
        # both workers took tiles: the map is spread, not run on one
        assert len({w for w, n in runner.client.run(_tiles_summarised).items() if n > 0}) == 2
    assert tiles_done(messages, "summarise")[-1] == "summarise: 20 of 20 tiles done"


def _tiles_summarised(dask_worker=None) -> int:
    """On a worker: how many summarise tasks it ran (from its log of finished tasks)."""
    return sum(1 for key, *_ in dask_worker.state.log if isinstance(key, str) and key.startswith("summarise-"))


def test_a_tile_that_always_fails_is_named_and_the_rest_cancelled(cluster):
    dem = random_dem(5)
    with open_runner(scheduler=cluster.address) as runner:
        with pytest.raises(ClusterError) as err:
            fill_through(runner, dem, summarise=summarise_but_tile_7)
        # the same runner goes on working: nothing of the failed map is left in the way
        assert same(fill_through(runner, dem), flood(dem))
    assert str(err.value) == "summarise: tile 7 (rows 16:32, cols 32:48) failed: ValueError: no elevation here"


def test_a_tile_that_fails_once_is_retried(cluster, tmp_path):
    dem = random_dem(6)
    with open_runner(scheduler=cluster.address) as runner:
        filled = fill_through(runner, dem, summarise=summarise_after_a_first_failure, folder=str(tmp_path))
    assert same(filled, flood(dem))
    assert len(list(tmp_path.iterdir())) == 20  # every tile did fail once


def test_a_worker_killed_mid_map_leaves_its_tiles_to_the_other(cluster):
    dem = random_dem(7)
    victim = cluster.worker_pids()[0]
    messages: list[str] = []

    def progress(message: str) -> None:
        messages.append(message)
        if message.startswith("summarise: ") and len(tiles_done(messages, "summarise")) == 1:
            os.kill(victim, signal.SIGKILL)  # the first tiles are back: the others are under way

    with open_runner(scheduler=cluster.address, progress=progress) as runner:
        filled = fill_through(runner, dem, summarise=slow_summarise, seconds=0.3)
    assert len(tiles_done(messages, "summarise")) >= 2  # the kill came before the end of the map
    assert victim not in cluster.worker_pids()
    assert same(filled, flood(dem))


# -- the command line ----------------------------------------------------------------------------
def test_build_with_an_unreachable_scheduler_fails_in_one_line(make_catalog, tmp_path):
    from twin.cli import cli

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    out = tmp_path / "twin"
    catalog = make_catalog(synthetic.v_valley(41, 31))
    result = CliRunner().invoke(cli, ["build", str(catalog), "-o", str(out), "--scheduler", address], prog_name="twin")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("twin: error: ") and address in lines[0]
    assert result.stdout == ""
    assert not out.exists()


def test_build_with_tiles_below_the_minimum_fails_in_one_line(make_catalog, tmp_path):
    from twin.cli import cli

    out = tmp_path / "twin"
    catalog = make_catalog(synthetic.v_valley(41, 31))
    result = CliRunner().invoke(cli, ["build", str(catalog), "-o", str(out), "--tile-size", "8"], prog_name="twin")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "8" in lines[0] and f"minimum of {tiled.MIN_TILE_SIZE}" in lines[0]
    assert not out.exists()
