"""A DEM read window by window (twin.model.mosaic): every window is the same cells as the whole.

Sources: one GeoTIFF, a list or folder of tiles cut from it, SRTM tiles (.hgt, named
GeoTIFFs), a DEM in lon/lat reprojected to UTM, the demo DEM. Windows read alone equal
the same cells of the whole read; mosaics equal the raster they were cut from; the demo
DEM equals load_dem's; bad input fails in one line; a DemSource pickles and reads in
another process, and reads a window without reading the raster.
"""

from __future__ import annotations

import concurrent.futures
import io
import multiprocessing
import os
import pickle
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from twin.errors import CRSError, SourceError
from twin.model.mosaic import BLOCKWISE_WARP, DemSource, WindowError, load_dem, open_dem
from twin.model.tiled import read_block, tile_windows

from . import synthetic

ROOT = Path(__file__).resolve().parent.parent
DEMO_DEM = ROOT / "data" / "cevennes" / "dem_srtm30_utm31n.tif"


def whole(src: DemSource) -> np.ndarray:
    nrow, ncol = src.shape
    return src.read((slice(0, nrow), slice(0, ncol)))


def rough(nrow: int, ncol: int, seed: int = 3) -> np.ndarray:
    """Rough terrain with a few nodata holes (where resampling and halos are most visible)."""
    z = synthetic.random_terrain(nrow, ncol, seed)
    z[nrow // 3 : nrow // 3 + 4, ncol // 4 : ncol // 4 + 5] = np.nan
    z[-1, -3:] = np.nan
    return z


def cut(folder: Path, dem: np.ndarray, row_cuts: list[int], col_cuts: list[int], overlap: int = 0) -> list[Path]:
    """Write ``dem`` as tiles (each ``overlap`` cells longer to the south and east, like SRTM's shared edges)."""
    folder.mkdir(parents=True, exist_ok=True)
    tiles = []
    rb, cb = [0, *row_cuts, dem.shape[0]], [0, *col_cuts, dem.shape[1]]
    for r0, r1 in zip(rb[:-1], rb[1:]):
        for c0, c1 in zip(cb[:-1], cb[1:]):
            p = folder / f"tile_r{r0:03d}_c{c0:03d}.tif"
            part = dem[r0 : r1 + overlap, c0 : c1 + overlap]
            synthetic.write_dem(p, part, transform=synthetic.TRANSFORM * Affine.translation(c0, r0))
            tiles.append(p)
    return tiles


def lonlat_dem(path: Path, nrow: int = 150, ncol: int = 130, seed: int = 5, **kw) -> np.ndarray:
    """Rough terrain on a 1 arc-second lon/lat grid near lon 3.0, lat 44.25 (UTM 31N once reprojected)."""
    z = rough(nrow, ncol, seed)
    synthetic.write_dem(path, z, crs="EPSG:4326", transform=Affine(1 / 3600, 0, 3.0, 0, -1 / 3600, 44.25), **kw)
    return z


# ---------------------------------------------------------------------------
# Windows equal the whole
# ---------------------------------------------------------------------------
def test_window_known_answer(tmp_path):
    dem = (np.arange(7)[:, None] * 10 + np.arange(5)[None, :]).astype("float32")
    dem[3, 2] = np.nan  # written as -9999, read back as NaN
    src = open_dem(synthetic.write_dem(tmp_path / "dem.tif", dem))
    assert src.shape == (7, 5) and src.warp is None
    assert src.grid.transform == synthetic.TRANSFORM and src.grid.crs.to_epsg() == 32631
    np.testing.assert_array_equal(src.read((slice(2, 5), slice(1, 3))), [[21, 22], [31, np.nan], [41, 42]])
    block = src.read_block((slice(0, 2), slice(3, 5)))
    assert block.dtype == np.float32 and block.shape == (4, 4)
    np.testing.assert_array_equal(
        block,
        [[np.nan] * 4, [2, 3, 4, np.nan], [12, 13, 14, np.nan], [22, 23, 24, np.nan]],
    )


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, DemSource]:
    """The kinds of source the build meets: one file, a folder of tiles, a DEM reprojected and one coarsened.

    The reprojected grids are wider than a warped VRT's block (512 x 128 cells), so that
    windows cross blocks: where GDAL's warp would depend on the window if let.
    """
    d = tmp_path_factory.mktemp("sources")
    dem = rough(83, 71)
    one = open_dem(synthetic.write_dem(d / "dem.tif", dem))
    cut(d / "tiles", dem, [30, 61], [25])
    folder = open_dem(d / "tiles")
    lonlat_dem(d / "ll.tif", nrow=900, ncol=1000)
    out = {
        "file": one,
        "folder": folder,
        "reprojected": open_dem(d / "ll.tif"),
        "reprojected-coarser": open_dem(d / "ll.tif", resolution=40),
    }
    assert out["reprojected"].shape[1] > 512 and out["reprojected-coarser"].shape[1] > 512
    return out


@pytest.fixture(scope="module")
def wholes(sources) -> dict[str, np.ndarray]:
    return {k: whole(s) for k, s in sources.items()}


@st.composite
def windows(draw, shape: tuple[int, int]) -> tuple[slice, slice]:
    out = []
    for n in shape:
        start = draw(st.integers(0, n - 1))
        out.append(slice(start, draw(st.integers(start + 1, n))))
    return out[0], out[1]


@pytest.mark.parametrize("kind", ["file", "folder", "reprojected", "reprojected-coarser"])
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_any_window_is_the_same_cells_as_the_whole(sources, wholes, kind, data):
    src, full = sources[kind], wholes[kind]
    window = data.draw(windows(src.shape))
    np.testing.assert_array_equal(src.read(window), full[window])
    np.testing.assert_array_equal(src.read_block(window), read_block(full, window))
    # a fresh source (files opened anew, nothing cached) reads the same
    fresh = pickle.loads(pickle.dumps(src))
    np.testing.assert_array_equal(fresh.read(window), full[window])


def test_tiles_of_any_size_assemble_to_the_whole(sources, wholes):
    for kind, src in sources.items():
        full = wholes[kind]
        for tile in (16, 29, 64) if src.shape[0] < 100 else (256, 300, 1024):
            out = np.full(src.shape, -1.0, dtype=np.float32)
            for w in tile_windows(src.shape, tile):
                out[w] = src.read_block(w)[1:-1, 1:-1]
            np.testing.assert_array_equal(out, full)


def test_window_outside_the_grid(sources):
    src = sources["file"]
    nrow, ncol = src.shape
    for bad in [
        (slice(0, nrow + 1), slice(0, 5)),
        (slice(-1, 3), slice(0, 5)),
        (slice(4, 4), slice(0, 5)),
        (slice(0, 4), slice(0, 6, 2)),
        (slice(0, 4),),
        (slice(None, 4), slice(0, 5)),
    ]:
        with pytest.raises(WindowError, match="window"):
            src.read(bad)


# ---------------------------------------------------------------------------
# Mosaics equal the raster they were cut from
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "rows, cols, overlap",
    [([20], [], 0), ([], [15], 0), ([20], [15], 0), ([13, 27], [9], 1)],
    ids=["2-tiles-ns", "2-tiles-ew", "4-tiles", "6-tiles-overlapping"],
)
def test_mosaic_equals_the_file_it_was_cut_from(rows, cols, overlap, tmp_path):
    dem = rough(41, 31)
    ref = open_dem(synthetic.write_dem(tmp_path / "full.tif", dem))
    tiles = cut(tmp_path / "tiles", dem, rows, cols, overlap)
    expected = whole(ref)
    for given_as in (tiles, tiles[::-1], tmp_path / "tiles"):
        src = open_dem(given_as)
        assert src.grid == ref.grid
        np.testing.assert_array_equal(whole(src), expected)
    # and load_dem reads the same tiles to the same values
    np.testing.assert_array_equal(load_dem(tiles).values, expected)


def test_overlapping_tiles_first_wins_as_in_load_dem(tmp_path):
    dem = synthetic.v_valley()
    a = synthetic.write_dem(tmp_path / "a.tif", dem[:25])
    b = synthetic.write_dem(
        tmp_path / "b.tif", dem[15:] + 1000, transform=synthetic.TRANSFORM * Affine.translation(0, 15)
    )
    for order in ([a, b], [b, a]):
        src = open_dem(order)
        np.testing.assert_array_equal(whole(src), load_dem(order).values)
    top = whole(open_dem([a, b]))
    np.testing.assert_array_equal(top[:25], dem[:25])
    np.testing.assert_array_equal(top[25:], dem[25:] + 1000)


def test_mosaic_written_as_a_vrt_file_reads_the_same(tmp_path):
    dem = rough(41, 31)
    tiles = cut(tmp_path / "tiles", dem, [20], [15])
    vrt = tmp_path / "vrt" / "dem.vrt"
    src = open_dem(tiles, vrt_path=vrt)
    assert src.dataset == str(vrt.resolve())
    with rasterio.open(vrt) as ds:  # a VRT GDAL tools can use
        assert ds.shape == dem.shape and ds.crs.to_epsg() == 32631
    again = open_dem(vrt)  # a .vrt given by the user
    np.testing.assert_array_equal(whole(src), dem)
    np.testing.assert_array_equal(whole(again), dem)


def _write_hgt(path: Path, z: np.ndarray, lat: int, lon: int) -> Path:
    """An SRTM3 tile (1201 x 1201, 3 arc-seconds): cell centres on whole degrees at its edges."""
    step = 1 / 1200
    with rasterio.open(
        path,
        "w",
        driver="SRTMHGT",
        width=1201,
        height=1201,
        count=1,
        dtype="int16",
        crs="EPSG:4326",
        transform=Affine(step, 0, lon - step / 2, 0, -step, lat + 1 + step / 2),
        nodata=-32768,
    ) as dst:
        dst.write(z, 1)
    return path


def test_folder_of_hgt_tiles_equals_the_raster_they_were_cut_from(tmp_path):
    """Four SRTM3 tiles N44E003..N45E004 (sharing edge rows and columns) and the one raster they tile."""
    n = 2401  # 2 degrees at 3 arc-seconds, plus the shared edge
    rows, cols = np.mgrid[0:n, 0:n]
    z = (400 + (n - rows) // 3 + np.abs(cols - 1200) // 4 + (rows * 7 + cols * 3) % 11).astype("int16")
    z[1500:1520, 300:330] = -32768  # a void
    step = 1 / 1200
    big = tmp_path / "big.tif"
    with rasterio.open(
        big,
        "w",
        driver="GTiff",
        width=n,
        height=n,
        count=1,
        dtype="int16",
        crs="EPSG:4326",
        transform=Affine(step, 0, 3 - step / 2, 0, -step, 46 + step / 2),
        nodata=-32768,
        tiled=True,
    ) as dst:
        dst.write(z, 1)
    folder = tmp_path / "srtm"
    folder.mkdir()
    for lat, r0 in ((45, 0), (44, 1200)):
        for lon, c0 in ((3, 0), (4, 1200)):
            _write_hgt(folder / f"N{lat}E00{lon}.hgt", z[r0 : r0 + 1201, c0 : c0 + 1201], lat, lon)
    ref = open_dem(big, resolution=300)
    src = open_dem(folder, resolution=300)
    assert src.grid == ref.grid and src.grid.crs.to_epsg() == 32631
    assert src.grid.transform.a == 300
    full = whole(src)
    np.testing.assert_array_equal(full, whole(ref))
    assert np.isnan(full).any() and not (full[np.isfinite(full)] < 300).any()  # the void, not -32768 m


def _srtm_tiles(folder: Path, corners: list[tuple[int, int]], per_degree: int = 40) -> None:
    """GeoTIFF tiles named as USGS EarthExplorer names SRTM tiles (n44_e003_1arc_v3.tif), one degree each."""
    folder.mkdir(parents=True, exist_ok=True)
    step = 1 / per_degree
    for lat, lon in corners:
        rows, cols = np.mgrid[0 : per_degree + 1, 0 : per_degree + 1]
        z = (500 + 300 * np.sin(lat + 1 - rows * step) + 200 * np.cos(lon + cols * step)).astype("float32")
        name = f"n{lat:02d}_e{lon:03d}_1arc_v3.tif"
        synthetic.write_dem(
            folder / name, z, crs="EPSG:4326", transform=Affine(step, 0, lon - step / 2, 0, -step, lat + 1 + step / 2)
        )


def test_missing_srtm_tile_is_named_unless_gaps_are_allowed(tmp_path):
    corners = [(44, 3), (44, 4), (45, 3), (45, 4)]
    _srtm_tiles(tmp_path / "full", corners)
    _srtm_tiles(tmp_path / "gap", corners[:3])  # N45E004, the north-east tile, is missing
    with pytest.raises(SourceError, match=r"tile\(s\) N45E004 missing from .*allow_gaps=True") as err:
        open_dem(tmp_path / "gap", resolution=2000)
    assert "\n" not in str(err.value)
    full = open_dem(tmp_path / "full", resolution=2000)
    gap = open_dem(tmp_path / "gap", resolution=2000, allow_gaps=True)
    assert gap.grid == full.grid
    a, b = whole(full), whole(gap)
    to_utm = Transformer.from_crs("EPSG:4326", full.grid.crs, always_xy=True)
    rows, cols = full.grid.rowcol(*to_utm.transform([4.5, 3.5, 3.5, 4.5], [45.5, 45.5, 44.5, 44.5]))
    ne, nw, sw, se = (a[r, c] for r, c in zip(rows, cols))
    assert np.isfinite([ne, nw, sw, se]).all()
    assert np.isnan(b[rows[0], cols[0]])  # the missing tile is nodata
    # away from it, the same values as the full mosaic: the south half and the west half
    mid_row, mid_col = full.grid.rowcol(*to_utm.transform(4.0, 45.0))
    np.testing.assert_array_equal(b[mid_row + 2 :], a[mid_row + 2 :])
    np.testing.assert_array_equal(b[:, : mid_col - 2], a[:, : mid_col - 2])
    assert np.isnan(b).sum() > np.isnan(a).sum() + 0.15 * a.size


def test_hole_among_tiles_of_any_name(tmp_path):
    tiles = cut(tmp_path / "tiles", rough(41, 31), [20], [15])
    tiles[1].unlink()  # the north-east tile
    with pytest.raises(SourceError, match=r"1 hole\(s\) among the tiles .* x 500450 to 500930.*allow_gaps"):
        open_dem(tmp_path / "tiles")
    assert np.isnan(whole(open_dem(tmp_path / "tiles", allow_gaps=True))[:20, 15:]).all()


# ---------------------------------------------------------------------------
# The same values as load_dem
# ---------------------------------------------------------------------------
def test_demo_dem_equals_load_dem():
    args = {"declared_crs": "EPSG:32631", "target_crs": "EPSG:32631", "what": "DEM 'dem'"}
    src = open_dem(DEMO_DEM, **args)
    elev = load_dem([DEMO_DEM], **args)
    assert src.grid == elev.grid and src.warp is None
    np.testing.assert_array_equal(whole(src), elev.values)
    out = np.empty(src.shape, dtype=np.float32)
    for w in tile_windows(src.shape, 512):
        out[w] = src.read_block(w)[1:-1, 1:-1]
    np.testing.assert_array_equal(out, elev.values)


@pytest.mark.parametrize(
    "path, kw",
    [("ll", {}), ("ll", {"target_crs": "EPSG:2154", "resolution": 25}), ("demo", {"resolution": 45})],
    ids=["lonlat-to-utm", "lonlat-to-lambert93", "demo-coarsened"],
)
def test_reprojected_dem_is_load_dems_grid_and_its_values_read_blockwise(path, kw, tmp_path):
    """Same grid as load_dem; same values too once load_dem warps block by block as a DemSource does.

    (load_dem warps its DEM in one request, where GDAL's approximate transformer and kernel scale
    depend on the request; the module docstring of twin.model.mosaic says more.)
    """
    if path == "ll":
        p = tmp_path / "ll.tif"
        lonlat_dem(p)
    else:
        p = DEMO_DEM
    src = open_dem(p, **kw)
    assert src.warp is not None
    elev = load_dem([p], **kw)
    assert src.grid == elev.grid
    with rasterio.Env(**BLOCKWISE_WARP):
        blockwise = load_dem([p], **kw)
    np.testing.assert_array_equal(whole(src), blockwise.values)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------
def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_tile_of_another_crs(tmp_path):
    dem = rough(41, 31)
    tiles = cut(tmp_path / "t", dem, [20], [])
    synthetic.write_dem(tiles[1], dem[20:], crs="EPSG:32632", transform=synthetic.TRANSFORM * Affine.translation(0, 20))
    with pytest.raises(CRSError, match=r"tile 'tile_r020_c000.tif' is in EPSG:32632 but .* EPSG:32631; reproject") as e:
        open_dem(tiles)
    _one_line(e)


def test_tile_of_another_resolution(tmp_path):
    dem = rough(41, 31)
    tiles = cut(tmp_path / "t", dem, [20], [])
    synthetic.write_dem(tiles[1], dem[20:], transform=Affine(15.0, 0, 500000.0, 0, -15.0, 4900000.0 - 20 * 30))
    with pytest.raises(SourceError, match=r"'tile_r020_c000.tif' has cells of 15 x 15 but .* 30 x 30; resample") as e:
        open_dem(tiles)
    _one_line(e)


def test_tiles_off_one_grid(tmp_path):
    dem = rough(41, 31)
    tiles = cut(tmp_path / "t", dem, [20], [])
    synthetic.write_dem(tiles[1], dem[20:], transform=synthetic.TRANSFORM * Affine.translation(0.25, 20))
    with pytest.raises(SourceError, match=r"'tile_r020_c000.tif' is not on the grid of .* 0.250 cell off") as e:
        open_dem(tiles)
    _one_line(e)


def test_missing_empty_corrupt_files_and_folders(tmp_path):
    good = synthetic.write_dem(tmp_path / "good.tif", rough(20, 20))
    (tmp_path / "empty.tif").write_bytes(b"")
    (tmp_path / "junk.tif").write_bytes(b"this is not a raster" * 50)
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "notes.txt").write_text("no tiles here")
    cases = [
        ([tmp_path / "absent.tif"], r"'.*absent.tif' does not exist; fix its path"),
        ([good, tmp_path / "absent.tif"], r"absent.tif' does not exist"),
        ([tmp_path / "empty.tif"], r"empty.tif' is empty \(0 bytes\)"),
        ([good, tmp_path / "junk.tif"], r"junk.tif' is not a readable raster"),
        ([tmp_path / "nothing"], r"folder '.*nothing' holds no tiles"),
        ([], r"no files given"),
    ]
    for paths, says in cases:
        with pytest.raises(SourceError, match=says) as e:
            open_dem(paths)
        _one_line(e)


def test_file_without_crs_needs_a_declared_one(tmp_path):
    p = synthetic.write_dem(tmp_path / "dem.tif", rough(20, 20), crs=None)
    with pytest.raises(CRSError, match="has no CRS; declare it"):
        open_dem(p)
    assert open_dem(p, declared_crs="EPSG:32631").grid.crs.to_epsg() == 32631


def test_vrt_whose_source_is_missing(tmp_path):
    tiles = cut(tmp_path / "t", rough(41, 31), [20], [])
    vrt = tmp_path / "dem.vrt"
    open_dem(tiles, vrt_path=vrt)
    tiles[1].unlink()
    with pytest.raises(SourceError, match=r"dem.vrt' names source '.*tile_r020_c000.tif', which does not exist") as e:
        open_dem(vrt)
    _one_line(e)


def test_file_truncated_after_opening_fails_on_read(tmp_path):
    p = tmp_path / "dem.tif"
    with rasterio.open(
        p,
        "w",
        driver="GTiff",
        width=512,
        height=512,
        count=1,
        dtype="float32",
        crs=synthetic.CRS,
        transform=synthetic.TRANSFORM,
        tiled=True,
        blockxsize=128,
        blockysize=128,
    ) as dst:
        dst.write(rough(512, 512), 1)
    src = open_dem(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])  # the southern blocks are gone
    fresh = pickle.loads(pickle.dumps(src))
    fresh.read((slice(0, 10), slice(0, 10)))  # the first block is still there
    with pytest.raises(SourceError, match=r"could not be read at rows 500:512, columns 0:10 .*; check the file") as e:
        fresh.read((slice(500, 512), slice(0, 10)))
    _one_line(e)


# ---------------------------------------------------------------------------
# Workers: pickling, processes, threads, memory
# ---------------------------------------------------------------------------
def _read_blocks(src: DemSource, tile: int) -> list[np.ndarray]:
    return [src.read_block(w) for w in tile_windows(src.shape, tile)]


@pytest.fixture(scope="module")
def warped_mosaic(tmp_path_factory) -> DemSource:
    """The most involved source: a mosaic VRT (kept in the DemSource) reprojected by a warped VRT."""
    d = tmp_path_factory.mktemp("warped")
    _srtm_tiles(d, [(44, 3), (44, 4)], per_degree=60)
    return open_dem(d, resolution=3000)


def test_pickled_source_reads_the_same_in_another_process(warped_mosaic):
    src = warped_mosaic
    expected = _read_blocks(src, 16)
    whole(src)  # the parent has its files open; the pickle carries none of that
    code = (
        "import pickle, sys, numpy as np\n"
        "src = pickle.loads(sys.stdin.buffer.read())\n"
        "(h, w), t = src.shape, 16\n"
        "wins = [(slice(r, min(r + t, h)), slice(c, min(c + t, w))) for r in range(0, h, t) for c in range(0, w, t)]\n"
        "blocks = [src.read_block(w) for w in wins]\n"
        "np.save(sys.stdout.buffer, np.concatenate([b.ravel() for b in blocks]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=pickle.dumps(src),
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr.decode()
    got = np.load(io.BytesIO(out.stdout))
    np.testing.assert_array_equal(got, np.concatenate([b.ravel() for b in expected]))


def _first_block(src: DemSource) -> np.ndarray:
    return src.read_block((slice(0, 16), slice(0, 16)))


def test_forked_process_opens_its_own_files(warped_mosaic):
    src = warped_mosaic
    expected = _first_block(src)  # opened here before the fork
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        got = pool.submit(_first_block, src).result()
    np.testing.assert_array_equal(got, expected)


def test_threads_read_the_same_as_one(sources, warped_mosaic):
    for src in [*sources.values(), warped_mosaic]:
        wins = tile_windows(src.shape, max(8, min(src.shape) // 5))
        expected = [src.read_block(w) for w in wins]
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            got = list(pool.map(src.read_block, wins * 3))
        for a, b in zip(got, expected * 3):
            np.testing.assert_array_equal(a, b)


def _bytes_read() -> int:
    """Bytes this process has read from files so far (Linux: /proc/self/io)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.mark.parametrize("reprojected", [False, True], ids=["cog", "cog-reprojected"])
def test_window_read_does_not_read_the_raster(reprojected, tmp_path):
    n = 2048  # 16 MiB of float32 noise, which deflate cannot shrink much
    z = np.random.default_rng(0).normal(500, 100, (n, n)).astype("float32")
    p = tmp_path / "big.tif"
    crs, transform = (
        ("EPSG:4326", Affine(1 / 3600, 0, 3.0, 0, -1 / 3600, 44.5))
        if reprojected
        else (synthetic.CRS, synthetic.TRANSFORM)
    )
    with rasterio.open(
        p,
        "w",
        driver="COG",
        width=n,
        height=n,
        count=1,
        dtype="float32",
        crs=crs,
        transform=transform,
        blocksize=256,
        compress="deflate",
    ) as dst:
        dst.write(z, 1)
    size = p.stat().st_size
    assert size > 12 * 2**20
    src = open_dem(p)
    window = (slice(600, 728), slice(900, 1028))
    before = _bytes_read()
    tracemalloc.start()
    block = src.read_block(window)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    read = _bytes_read() - before
    assert np.isfinite(block[1:-1, 1:-1]).all()
    assert read < size / 4, f"a 128 x 128 window read {read} of the file's {size} bytes"
    assert peak < 2**20, f"a 128 x 128 window allocated {peak} bytes"
    before = _bytes_read()
    whole(src)
    assert _bytes_read() - before > size / 2  # the measure sees a full read
