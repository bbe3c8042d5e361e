"""Kernels of the terrain mesh on plain arrays: decimation to a triangle budget, its error,
triangulation, hillshade and colour ramps. No pyvista here.

The decimation keeps every ``stride``-th row and column of the DEM (and the last
ones, so the extent is whole), the smallest stride whose grid fits the budget:
fast and predictable (a 25-million-cell DEM in about a second), unlike error-driven
simplification. The surface drawn is the piecewise-linear one over the kept
vertices, each quad split along the same diagonal; its error is the largest
|DEM − surface| over every valid cell, exactly 0 when the stride is 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from twin.scene.errors import SceneError

DEFAULT_MAX_TRIANGLES = 1_000_000


@dataclass(frozen=True)
class Decimation:
    """A DEM subsampled on a stride, and how far its triangulated surface departs from the DEM.

    Attributes
    ----------
    rows, cols:
        Grid rows and columns kept (every ``stride``-th, plus the last).
    z:
        The DEM at those rows and columns (metres, NaN for nodata).
    stride:
        1 when nothing was decimated.
    triangles:
        Triangles of the mesh (a quad with a nodata corner loses one or both).
    max_error_m, rms_error_m:
        Largest and root-mean-square |DEM − surface| over the valid cells the surface covers.
    uncovered_cells:
        Valid DEM cells the surface does not cover (next to nodata).
    """

    rows: np.ndarray
    cols: np.ndarray
    z: np.ndarray
    stride: int
    triangles: int
    max_error_m: float
    rms_error_m: float
    uncovered_cells: int

    def interpolate(self, r: Any, c: Any) -> np.ndarray:
        """The surface at fractional positions (row, column of the full grid); NaN off it."""
        r, c = np.asarray(r, dtype=np.float64), np.asarray(c, dtype=np.float64)
        i, v = _band(self.rows, r)
        j, u = _band(self.cols, c)
        return _triangle_value(self.z, i, v, j, u, u >= v)


def _band(kept: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the kept row (column) at or before ``x``, and the fraction of the way to the next."""
    k = np.clip(np.searchsorted(kept, x, side="right") - 1, 0, len(kept) - 2)
    frac = (x - kept[k]) / (kept[k + 1] - kept[k])
    return k, np.where((x < kept[0]) | (x > kept[-1]), np.nan, frac)


def _triangle_value(z: np.ndarray, i: Any, v: Any, j: Any, u: Any, upper: Any) -> np.ndarray:
    """Linear interpolation in the quad's triangle (a, b, c) where ``upper`` (u ≥ v), else (a, c, d).

    a = z[i, j], b = z[i, j+1], c = z[i+1, j+1], d = z[i+1, j]: the split of :func:`grid_triangles`.
    """
    za, zb, zc, zd = z[i, j], z[i, j + 1], z[i + 1, j + 1], z[i + 1, j]
    return np.where(upper, za + u * (zb - za) + v * (zc - zb), za + v * (zd - za) + u * (zc - zd))


def kept_indices(n: int, stride: int) -> np.ndarray:
    """Every ``stride``-th index of ``n``, plus the last, so the extent is kept whole."""
    idx = np.arange(0, n, stride)
    return idx if idx[-1] == n - 1 else np.append(idx, n - 1)


def stride_for(shape: tuple[int, ...], max_triangles: int) -> int:
    """The smallest stride whose subsampled grid has at most ``max_triangles`` triangles."""
    nrow, ncol = shape
    if nrow < 2 or ncol < 2:
        raise SceneError(f"a terrain of {nrow} x {ncol} cells cannot be triangulated; it needs at least 2 x 2")
    if max_triangles < 2:
        raise SceneError(f"max_triangles must be at least 2, got {max_triangles}")
    stride = max(1, int(np.sqrt(2.0 * (nrow - 1) * (ncol - 1) / max_triangles)))
    while 2 * (len(kept_indices(nrow, stride)) - 1) * (len(kept_indices(ncol, stride)) - 1) > max_triangles:
        stride += 1
    return stride


def decimate(dem: np.ndarray, max_triangles: int = DEFAULT_MAX_TRIANGLES, chunk_rows: int = 256) -> Decimation:
    """Subsample a DEM to a triangle budget and measure the error of its surface.

    Parameters
    ----------
    dem:
        Elevation (m), 2-D, NaN for nodata.
    max_triangles:
        Triangle budget of the mesh.
    chunk_rows:
        Rows compared at a time (bounds the memory of the error check).

    Examples
    --------
    >>> z = np.add.outer(np.arange(50.0), np.arange(40.0))      # a plane: no error at any stride
    >>> d = decimate(z, max_triangles=200)
    >>> d.stride > 1, d.triangles <= 200, d.max_error_m < 1e-9
    (True, True, True)
    """
    dem = np.asarray(dem)
    stride = stride_for(dem.shape, max_triangles)
    rows, cols = kept_indices(dem.shape[0], stride), kept_indices(dem.shape[1], stride)
    z = dem[np.ix_(rows, cols)].astype(np.float64)
    n_tri = len(grid_triangles(np.isfinite(z)))
    if stride == 1:
        return Decimation(rows, cols, z, 1, n_tri, 0.0, 0.0, 0)
    j, u = _band(cols, np.arange(dem.shape[1], dtype=np.float64))
    worst, squares, compared, uncovered = 0.0, 0.0, 0, 0
    for r0 in range(0, dem.shape[0], chunk_rows):
        r = np.arange(r0, min(r0 + chunk_rows, dem.shape[0]), dtype=np.float64)
        i, v = _band(rows, r)
        surf = _triangle_value(z, i[:, None], v[:, None], j[None, :], u[None, :], u[None, :] >= v[:, None])
        block = dem[r0 : r0 + len(r)]
        have = np.isfinite(block)
        covered = have & np.isfinite(surf)
        uncovered += int(np.count_nonzero(have & ~covered))
        if covered.any():
            diff = np.abs(block[covered] - surf[covered])
            worst = max(worst, float(diff.max()))
            squares += float(np.dot(diff, diff))
            compared += diff.size
    rms = float(np.sqrt(squares / compared)) if compared else 0.0
    return Decimation(rows, cols, z, stride, n_tri, worst, rms, uncovered)


def grid_triangles(valid: np.ndarray) -> np.ndarray:
    """Triangles (counter-clockwise seen from above) of a grid of vertices, as row-major vertex ids.

    Each quad a=(i, j), b=(i, j+1), c=(i+1, j+1), d=(i+1, j) (row i north of row i+1)
    is split along a–c; a triangle is kept when its three vertices are valid.
    """
    nr, nc = valid.shape
    ids = np.arange(nr * nc).reshape(nr, nc)
    a, b, c, d = ids[:-1, :-1].ravel(), ids[:-1, 1:].ravel(), ids[1:, 1:].ravel(), ids[1:, :-1].ravel()
    ok = valid.ravel()
    t1 = np.column_stack([a, c, b])[ok[a] & ok[b] & ok[c]]
    t2 = np.column_stack([a, d, c])[ok[a] & ok[c] & ok[d]]
    return np.concatenate([t1, t2])


def hillshade(
    z: np.ndarray, xs: np.ndarray, ys: np.ndarray, azimuth: float = 315.0, altitude: float = 45.0
) -> np.ndarray:
    """Lambertian shade (0-1) of a gridded surface lit from ``azimuth`` (° from north) and ``altitude``.

    ``xs``/``ys`` are the columns' and rows' coordinates (m); NaN cells get the shade of flat ground.
    """
    gy, gx = np.gradient(z, ys, xs)
    az, alt = np.radians(azimuth), np.radians(altitude)
    light = np.array([np.sin(az) * np.cos(alt), np.cos(az) * np.cos(alt), np.sin(alt)])
    shade = (-gx * light[0] - gy * light[1] + light[2]) / np.sqrt(gx**2 + gy**2 + 1.0)
    return np.clip(np.nan_to_num(shade, nan=light[2]), 0.0, 1.0)


def ramp(values: Any, stops: tuple[tuple[float, tuple[int, int, int]], ...]) -> np.ndarray:
    """Colours (uint8 RGB on a last axis of 3) of values in 0-1 along a ramp of (position, RGB) stops."""
    pos = np.array([s[0] for s in stops])
    rgb = np.array([s[1] for s in stops], dtype=float)
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=float), nan=0.0), 0.0, 1.0)
    return np.stack([np.interp(v, pos, rgb[:, k]) for k in range(3)], axis=-1).round().astype(np.uint8)
