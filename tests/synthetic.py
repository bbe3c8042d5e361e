"""Seeded synthetic DEMs with known answers, written by the tests (a few KB each).

Every DEM is in EPSG:32631 with 30 m cells, origin (500000, 4900000).

- :func:`v_valley`: a V-shaped valley sloping south; its floor is the middle
  column and its single outlet the bottom cell of that column.
- :func:`closed_depression`: a plane sloping south with a conical pit of known
  depth and spill level.
- :func:`with_holes`: the V-valley with a block of nodata.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
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
