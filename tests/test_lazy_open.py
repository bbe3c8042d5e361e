"""Large twins open lazily: grids as read-only memory maps of cached ``.npy`` copies (issue 13).

The threshold (``folder.LAZY_MIN_CELLS``) is lowered to 0 here, so a small synthetic twin
(a V-valley of 1100 x 21 cells: three rows of the COG's 512-row blocks) opens the way a
400 M-cell one would.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

import twin
from twin.model import folder, kernels

from . import synthetic

NROW, NCOL = 1100, 21
GRIDS = {  # model attribute: raster it comes from
    ("terrain", "dem"): "terrain/elevation.tif",
    ("terrain", "conditioned"): "terrain/conditioned.tif",
    ("drainage", "d8"): "drainage/d8.tif",
    ("drainage", "upstream_cells"): "drainage/upstream_cells.tif",
    ("drainage", "strahler"): "drainage/strahler.tif",
    ("drainage", "reach"): "drainage/reach.tif",
    ("drainage", "subbasin"): "drainage/subbasins.tif",
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A saved twin: the valley with a pit on its floor (so conditioning changes it) and a block of nodata."""
    src = tmp_path_factory.mktemp("lazy-src")
    dem = synthetic.v_valley(NROW, NCOL)
    dem[600, NCOL // 2] -= 5.0
    dem[100:110, 0:3] = np.nan
    return synthetic.saved_twin(src, dem, "lazy", 0.02)


@pytest.fixture
def twin_dir(saved, tmp_path, monkeypatch):
    """A fresh copy of the saved twin (no copies cached yet); the user cache in tmp_path."""
    out = tmp_path / "twin"
    shutil.copytree(saved, out)
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "user-cache"))
    return out


def open_eager(path, check=True):
    return folder.read_twin(path, check=check)[0]


def open_lazy(path, monkeypatch, check=True):
    monkeypatch.setattr(folder, "LAZY_MIN_CELLS", 0)
    return folder.read_twin(path, check=check)[0]


def grids(model):
    out = {rel: getattr(getattr(model, part), name) for (part, name), rel in GRIDS.items()}
    out["order"] = model.drainage.order
    return out


def copies(path):
    return {p.name: p.stat().st_mtime_ns for p in (path / folder.CACHE).iterdir()}


def test_a_large_twin_opens_as_read_only_memmaps_equal_bit_for_bit_to_the_eager_read(twin_dir, monkeypatch):
    lazy = grids(open_lazy(twin_dir, monkeypatch))
    monkeypatch.setattr(folder, "LAZY_MIN_CELLS", 10**12)
    eager = grids(open_eager(twin_dir))
    for name, a in lazy.items():
        b = eager[name]
        assert isinstance(a, np.memmap) and not isinstance(b, np.memmap), name
        assert (a.dtype, a.shape) == (b.dtype, b.shape), name
        assert a.tobytes() == b.tobytes(), name  # NaN payloads included
        assert not a.flags.writeable, name
    with pytest.raises(ValueError, match="read-only"):
        lazy["drainage/d8.tif"][0, 0] = 0
    # the order of a lazy open is the D8 order an eager open computes
    np.testing.assert_array_equal(lazy["order"], kernels.topological_order(eager["drainage/d8.tif"].ravel(), NCOL))


def test_locate_and_a_downstream_trace_answer_the_same_lazily_and_eagerly(twin_dir, monkeypatch):
    lazy = open_lazy(twin_dir, monkeypatch)
    monkeypatch.setattr(folder, "LAZY_MIN_CELLS", 10**12)
    eager = open_eager(twin_dir)
    mid = NCOL // 2
    for row, col, kw in [(2, mid, {}), (300, mid - 4, {}), (700, 0, {"min_upstream_km2": 0.5}), (900, mid + 6, {})]:
        lon, lat = synthetic.cell_lonlat(row, col)
        assert lazy.locate(lon, lat, **kw) == eager.locate(lon, lat, **kw), (row, col)
    lon, lat = synthetic.cell_lonlat(2, mid)
    a, b = lazy.downstream(lon, lat, max_km=20), eager.downstream(lon, lat, max_km=20)
    assert len(a[0]) and a[0]["reach_id"].tolist() == b[0]["reach_id"].tolist()
    assert a[0].geometry.geom_equals_exact(b[0].geometry, 1e-9).all()
    assert a[0]["to_km"].tolist() == b[0]["to_km"].tolist()


def test_the_copies_are_made_once_and_reused_without_recomputing_the_order(twin_dir, monkeypatch):
    open_lazy(twin_dir, monkeypatch)
    first = copies(twin_dir)
    assert len(first) == len(GRIDS) + 1  # every grid the model holds, and the D8 order
    assert not any(name.endswith(".partial") for name in first)

    def no_recompute(*args):
        raise AssertionError("the order was recomputed")

    monkeypatch.setattr(kernels, "topological_order", no_recompute)
    again = open_lazy(twin_dir, monkeypatch)
    assert copies(twin_dir) == first  # same files, mtimes unchanged
    assert isinstance(again.drainage.order, np.memmap)


def test_the_copies_are_named_by_the_manifest_sha256_and_ignored_by_verify(twin_dir, monkeypatch):
    open_lazy(twin_dir, monkeypatch)
    manifest = json.loads((twin_dir / "twin.json").read_text())
    sha = {o["path"]: o["sha256"] for o in manifest["outputs"]}
    names = set(copies(twin_dir))
    assert f"{sha['drainage/d8.tif'][:16]}-drainage-d8.npy" in names
    assert f"{sha['drainage/d8.tif'][:16]}-order.npy" in names
    assert not any(o["path"].startswith(folder.CACHE) for o in manifest["outputs"])
    assert folder.verify(twin_dir) == []
    open_lazy(twin_dir, monkeypatch, check=True)  # the check hashes the outputs, not the copies


@pytest.mark.parametrize("damage", ["truncate", "pad", "other dtype", "other shape", "not npy"])
def test_a_damaged_copy_is_made_again_not_used(twin_dir, monkeypatch, damage):
    open_lazy(twin_dir, monkeypatch)
    cache = twin_dir / folder.CACHE
    [d8_copy] = cache.glob("*-drainage-d8.npy")
    [order_copy] = cache.glob("*-order.npy")
    good = {p: p.read_bytes() for p in (d8_copy, order_copy)}
    for p in good:
        if damage == "truncate":
            p.write_bytes(good[p][: len(good[p]) - 7])
        elif damage == "pad":
            p.write_bytes(good[p] + b"\0")
        elif damage == "other dtype":
            np.save(p, np.zeros(np.load(p).shape, np.int16))
        elif damage == "other shape":
            np.save(p, np.load(p).reshape(-1)[:-1])
        else:
            p.write_bytes(b"not a .npy file")
    model = open_lazy(twin_dir, monkeypatch)
    assert {p: p.read_bytes() for p in good} == good
    monkeypatch.setattr(folder, "LAZY_MIN_CELLS", 10**12)
    eager = open_eager(twin_dir)
    assert model.drainage.d8.tobytes() == eager.drainage.d8.tobytes()
    assert model.drainage.order.tobytes() == eager.drainage.order.tobytes()


def test_a_copy_is_made_window_by_window_and_an_interrupted_one_leaves_nothing_used(twin_dir, monkeypatch):
    real = folder._raster_windows
    pieces: list[tuple[int, int]] = []

    def windows(path, shape):
        for piece in real(path, shape):
            pieces.append(piece.shape)
            yield piece

    monkeypatch.setattr(folder, "_raster_windows", windows)
    open_lazy(twin_dir, monkeypatch)
    per_raster = len(pieces) // len(GRIDS)
    assert per_raster == 3 and max(rows for rows, _ in pieces) == 512  # one row of blocks at a time

    shutil.rmtree(twin_dir / folder.CACHE)

    def killed(path, shape):
        gen = real(path, shape)
        yield next(gen)
        raise KeyboardInterrupt  # the process stops in the middle of a copy

    monkeypatch.setattr(folder, "_raster_windows", killed)
    with pytest.raises(KeyboardInterrupt):
        open_lazy(twin_dir, monkeypatch)
    assert list((twin_dir / folder.CACHE).iterdir()) == []  # no copy under its name, no partial file
    # a killed process (SIGKILL) may leave its partial file: the next open does not read it
    (twin_dir / folder.CACHE / ".stale-drainage-d8.npy.1234-abcd.partial").write_bytes(b"half")
    monkeypatch.setattr(folder, "_raster_windows", real)
    model = open_lazy(twin_dir, monkeypatch)
    monkeypatch.setattr(folder, "LAZY_MIN_CELLS", 10**12)
    assert model.terrain.dem.tobytes() == open_eager(twin_dir).terrain.dem.tobytes()


@pytest.mark.parametrize("read_only", ["the twin folder", "its .cache"])
def test_a_read_only_twin_folder_keeps_its_copies_in_the_user_cache(twin_dir, tmp_path, monkeypatch, read_only):
    """The tests run as root, whom permissions do not stop, so the writability check is mocked:
    this shows that an open that finds the twin folder (or its ``.cache``) not writable writes
    nothing there and puts its copies in ``TWIN_CACHE_DIR``; not that the operating system
    refuses the writes."""
    locked = twin_dir if read_only == "the twin folder" else twin_dir / folder.CACHE
    if read_only == "its .cache":
        locked.mkdir()
    monkeypatch.setattr(folder, "_writable", lambda path: path != locked)
    model = open_lazy(twin_dir, monkeypatch)
    assert not (twin_dir / folder.CACHE).exists() or not any((twin_dir / folder.CACHE).iterdir())
    user = tmp_path / "user-cache" / "grids"
    assert len(list(user.glob("*.npy"))) == len(GRIDS) + 1
    assert isinstance(model.drainage.reach, np.memmap) and model.drainage.reach.filename.parent == user
    monkeypatch.setattr(folder, "LAZY_MIN_CELLS", 10**12)
    assert model.drainage.reach.tobytes() == open_eager(twin_dir).drainage.reach.tobytes()


def test_without_a_writable_cache_a_large_twin_is_read_whole_with_a_warning(twin_dir, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(folder, "_writable", lambda path: False)
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "not-a-folder"))
    with caplog.at_level(logging.WARNING, logger="twin.model.folder"):
        model = open_lazy(twin_dir, monkeypatch)
    assert not isinstance(model.terrain.dem, np.memmap)
    assert any("cannot write the grid copy" in r.getMessage() for r in caplog.records)
    lon, lat = synthetic.cell_lonlat(2, NCOL // 2)
    assert model.locate(lon, lat).reach_id > 0


def test_an_unchecked_open_does_not_use_the_copy_of_a_raster_changed_since(twin_dir, monkeypatch):
    open_lazy(twin_dir, monkeypatch)
    reach_tif = twin_dir / "drainage" / "reach.tif"
    with rasterio.open(reach_tif) as src:
        values, profile = src.read(1), src.profile
    with rasterio.open(reach_tif, "w", **{**profile, "driver": "GTiff"}) as dst:  # an edit twin.json does not know of
        dst.write(values + 1000, 1)
    [copy] = (twin_dir / folder.CACHE).glob("*-drainage-reach.npy")
    later = copy.stat().st_mtime_ns + 10**9
    os.utime(reach_tif, ns=(later, later))
    model = open_lazy(twin_dir, monkeypatch, check=False)
    np.testing.assert_array_equal(model.drainage.reach, values + 1000)  # what an unchecked eager open reads
    with pytest.raises(twin.errors.TwinFolderError, match="reach.tif changed since the build"):
        open_lazy(twin_dir, monkeypatch, check=True)


def test_a_small_twin_is_read_whole_and_caches_nothing(saved, tmp_path):
    out = tmp_path / "twin"
    shutil.copytree(saved, out)
    model = open_eager(out)  # LAZY_MIN_CELLS as shipped: far above 1100 x 21 cells
    assert NROW * NCOL < folder.LAZY_MIN_CELLS
    assert not isinstance(model.terrain.dem, np.memmap) and not (out / folder.CACHE).exists()


def test_the_open_benchmark_measures_eager_and_lazy_opens_of_the_same_twin(tmp_path):
    """benchmarks/open.py on a 96 x 96 twin with LAZY_MIN_CELLS 0: its lines say what README.md reports."""
    bench = Path(__file__).resolve().parent.parent / "benchmarks" / "open.py"
    args = ["--size", "96", "--workdir", str(tmp_path), "--lazy-min-cells", "0"]
    proc = subprocess.run([sys.executable, str(bench), *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    by = {r["mode"]: r for r in lines if "mode" in r}
    assert set(by) == {"eager", "lazy-first", "lazy-second"} and all("error" not in r for r in by.values())
    assert by["eager"]["memmapped"] == [] and by["eager"]["cache_mb"] == 0
    assert len(by["lazy-first"]["memmapped"]) == len(GRIDS) + 1 == len(by["lazy-second"]["memmapped"])
    for r in by.values():
        assert r["cells"] == 96 * 96 and r["peak_mem_mb"] > 0
        assert r["trace"] == by["eager"]["trace"] and r["trace"]["reaches"] > 0
    summary = lines[-1]
    assert summary["same_trace_in_every_mode"] is True
    assert summary["peak_mem_mb"] == {m: r["peak_mem_mb"] for m, r in by.items()}
