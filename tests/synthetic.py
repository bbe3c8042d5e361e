"""Seeded synthetic DEMs with known answers, written by the tests (a few KB each).

Every DEM is in EPSG:32631 with 30 m cells, origin (500000, 4900000).

- :func:`v_valley`: a V-shaped valley sloping south; its floor is the middle
  column and its single outlet the bottom cell of that column.
- :func:`closed_depression`: a plane sloping south with a conical pit of known
  depth and spill level.
- :func:`with_holes`: the V-valley with a block of nodata.
- :func:`dems`: a hypothesis strategy of random DEMs whose depressions, flats and
  nodata cross tile edges (for the tiled build's properties).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from hypothesis import strategies as st
from pyproj import Transformer

CELL = 30.0
ORIGIN = (500000.0, 4900000.0)
CRS = "EPSG:32631"
TRANSFORM = Affine(CELL, 0, ORIGIN[0], 0, -CELL, ORIGIN[1])


def v_valley(nrow: int = 41, ncol: int = 31, side: float = 2.0, down: float = 1.0) -> np.ndarray:
    """Elevation rising ``side`` m per cell away from the middle column and ``down`` m per row northwards."""
    rows, cols = np.mgrid[0:nrow, 0:ncol]
    mid = ncol // 2
    return (np.abs(cols - mid) * side + (nrow - 1 - rows) * down + 100.0).astype("float32")


def closed_depression(nrow: int = 30, ncol: int = 30, depth: float = 8.0) -> tuple[np.ndarray, tuple[int, int]]:
    """A south-sloping plane (0.5 m per row) with a cone pit ``depth`` m deep at its centre.

    Returns the DEM and the pit's (row, col).
    """
    rows, cols = np.mgrid[0:nrow, 0:ncol]
    plane = (nrow - 1 - rows) * 0.5 + 100.0
    pr, pc = nrow // 2, ncol // 2
    r = np.hypot(rows - pr, cols - pc)
    pit = np.clip(depth - r * 2.0, 0, None)
    return (plane - pit).astype("float32"), (pr, pc)


def with_holes(nrow: int = 41, ncol: int = 31) -> np.ndarray:
    """The V-valley with a 5 x 5 block of nodata (NaN) on its floor."""
    dem = v_valley(nrow, ncol)
    mid = ncol // 2
    dem[10:15, mid - 2 : mid + 3] = np.nan
    return dem


def random_terrain(nrow: int, ncol: int, seed: int) -> np.ndarray:
    """Smoothed seeded noise plus a slope: rough terrain with many depressions."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 5, (nrow, ncol)).cumsum(axis=0).cumsum(axis=1) / 10
    return (z + np.arange(nrow)[:, None] * -0.3 + 200).astype("float32")


def write_dem(
    path: Path,
    dem: np.ndarray,
    crs: str | None = CRS,
    nodata: float = -9999.0,
    transform: Affine = TRANSFORM,
    driver: str = "GTiff",
) -> Path:
    """Write a DEM (NaN → nodata) as a raster file."""
    values = np.where(np.isnan(dem), nodata, dem).astype("float32")
    profile = {
        "driver": driver,
        "width": dem.shape[1],
        "height": dem.shape[0],
        "count": 1,
        "dtype": "float32",
        "transform": transform,
        "nodata": nodata,
    }
    if crs:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values, 1)
    return path


TO_LONLAT = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)


def cell_xy(row: float, col: float) -> tuple[float, float]:
    """Centre of a cell of the synthetic grid, in its CRS."""
    x, y = TRANSFORM * (col + 0.5, row + 0.5)
    return float(x), float(y)


def cell_lonlat(row: float, col: float) -> tuple[float, float]:
    """Centre of a cell of the synthetic grid, as WGS 84 lon/lat."""
    lon, lat = TO_LONLAT.transform(*cell_xy(row, col))
    return float(lon), float(lat)


@st.composite
def dems(draw, max_side: int = 120) -> np.ndarray:
    """Random DEMs with large depressions, flats, walls and nodata that cross tile edges."""
    nrow = draw(st.integers(1, max_side))
    ncol = draw(st.integers(1, max_side))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    base = draw(st.sampled_from(["rough", "steps", "flat", "noise"]))
    if base == "rough":  # integrated noise: many depressions of every size
        z = rng.normal(0, 1, (nrow, ncol)).cumsum(axis=0).cumsum(axis=1) / 5
    elif base == "steps":  # a few integer levels: flats and ties everywhere
        z = rng.integers(-2, 3, (nrow, ncol)).astype(np.float64)
    elif base == "flat":
        z = np.zeros((nrow, ncol))
    else:
        z = rng.normal(0, 1, (nrow, ncol))
    for _ in range(draw(st.integers(0, 5))):
        r0 = draw(st.integers(0, nrow - 1))
        c0 = draw(st.integers(0, ncol - 1))
        r1 = draw(st.integers(r0 + 1, min(nrow, r0 + 80)))
        c1 = draw(st.integers(c0 + 1, min(ncol, c0 + 80)))
        kind = draw(st.sampled_from(["bowl", "flat", "wall", "nodata"]))
        if kind == "bowl":
            z[r0:r1, c0:c1] -= rng.uniform(1, 20) + rng.uniform(0, 1, (r1 - r0, c1 - c0))
        elif kind == "flat":
            z[r0:r1, c0:c1] = rng.integers(-5, 5)
        elif kind == "wall":  # the rim of a rectangle raised, so what is inside is closed
            z[r0:r1, c0:c1][[0, -1], :] += 30
            z[r0:r1, c0:c1][:, [0, -1]] += 30
        else:
            z[r0:r1, c0:c1] = np.nan
    scatter = draw(st.sampled_from([0.0, 0.0, 0.02, 0.2]))
    z[rng.random((nrow, ncol)) < scatter] = np.nan
    return z.astype(np.float32)


def saved_twin(folder, dem: np.ndarray, name: str, threshold_km2: float):
    """Build a twin of ``dem`` alone (no units, no sites) from a catalog written in ``folder``; save it in ``folder/twin``."""
    import yaml

    import twin

    write_dem(folder / "dem.tif", dem)
    catalog = {
        "name": name,
        "crs": CRS,
        "parameters": {"stream_threshold_km2": threshold_km2},
        "sources": {"dem": {"role": "dem", "path": "dem.tif"}},
    }
    (folder / "basin.yml").write_text(yaml.safe_dump(catalog))
    return twin.BasinTwin.build(folder / "basin.yml").save(folder / "twin")
