"""Seeded synthetic terrain and catalog for benchmarking the basin twin.

:func:`make_dem` writes a square float32 GeoTIFF in EPSG:32631 whose top-left
corner is at (500000, 4900000) with 30 m cells. The surface is the sum of

* fractal relief made by spectral synthesis: seeded white noise is filtered in
  the Fourier domain to a power-law spectrum (a fractional Brownian surface)
  whose longest wavelengths are rolled off at about 10 km;
* a regional trend: a slope down to the west and a gentle trough along the
  middle row, so that most of the grid drains to the west edge;
* a little white noise, as measured DEMs have, which makes many one-cell pits;

then several closed depressions are carved (bowls whose floor lies below their
lowest rim cell) and one flat lake is set (a disc at the constant elevation of
its lowest rim cell, so it spills over one side). The same size and seed
always give the same raster.

:func:`make_catalog` writes a ``basin.yml`` next to two jurisdiction layers
covering the DEM: two regions (the west and east halves) and a grid of
districts, each inside one region.

Command line::

    python benchmarks/terrain.py OUT.tif --size 5000 --seed 0 [--catalog]
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

CRS = "EPSG:32631"
ORIGIN_X = 500_000.0
ORIGIN_Y = 4_900_000.0
NODATA = -9999.0

# Shape of the relief; lengths are in metres, slopes in m/m.
HURST = 0.7  # roughness of the fractal surface (spectral exponent 2 * HURST + 2)
ROLLOFF_M = 10_000.0  # wavelengths longer than this carry little relief
RELIEF_M = 150.0  # standard deviation of the fractal relief on a large grid
REGIONAL_SLOPE = 0.004  # west-down trend
TROUGH_SLOPE = 0.002  # rise away from the middle row
NOISE_M = 0.3  # standard deviation of cell-to-cell measurement noise
BASE_M = 600.0  # about the elevation of the west edge, before relief (keeps the grid above 0)


def fractal_relief(n: int, rng: np.random.Generator, cell: float = 30.0) -> np.ndarray:
    """Fractal relief of ``n`` × ``n`` cells by spectral synthesis.

    White noise is transformed with a real FFT, each frequency ``f`` is
    scaled by ``(f**2 + f0**2) ** -((HURST + 1) / 2)`` (a power law with a
    roll-off at ``f0 = cell / ROLLOFF_M`` cycles per cell) and transformed
    back. The amplitude is fixed analytically, not from the realisation, so
    a grid much larger than ``ROLLOFF_M`` has a standard deviation of about
    ``RELIEF_M`` and a small grid, missing the long wavelengths, has less.
    The result is periodic, as any FFT synthesis is.

    Parameters
    ----------
    n:
        Number of rows and columns.
    rng:
        Source of the white noise.
    cell:
        Cell size in metres.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(n, n)`` with zero mean, in metres.
    """
    spectrum = np.fft.rfft2(rng.standard_normal((n, n), dtype=np.float32))  # complex64
    f0 = cell / ROLLOFF_M
    exponent = -(HURST + 1.0) / 2.0
    fy = np.fft.fftfreq(n).astype(np.float32)[:, np.newaxis]
    fx = np.fft.rfftfreq(n).astype(np.float32)[np.newaxis, :]
    gain = fy * fy + fx * fx  # float32, half the size of the grid
    gain += np.float32(f0 * f0)
    np.power(gain, np.float32(exponent), out=gain)
    gain[0, 0] = 0.0  # zero mean
    spectrum *= gain
    del gain
    relief = np.fft.irfft2(spectrum, s=(n, n))  # float32
    del spectrum

    # A unit white noise filtered by gain g(f) has variance ∫∫ g(f)² d²f over
    # the frequency plane; integrated over the disc |f| < 1/2 this is
    # π/(1 - a) [(f² + f0²)^(1 - a)] from 0 to 1/2, with a = HURST + 1.
    a = HURST + 1.0
    variance = math.pi / (1.0 - a) * ((0.25 + f0 * f0) ** (1.0 - a) - (f0 * f0) ** (1.0 - a))
    relief *= np.float32(RELIEF_M / math.sqrt(variance))
    return relief


def add_regional_trend(z: np.ndarray, cell: float = 30.0) -> None:
    """Add, in place, a west-down slope and a trough along the middle row.

    Parameters
    ----------
    z:
        float32 elevation grid, modified in place.
    cell:
        Cell size in metres.
    """
    rows, cols = z.shape
    x = np.arange(cols, dtype=np.float32) * np.float32(cell)
    z += np.float32(BASE_M) + np.float32(REGIONAL_SLOPE) * x[np.newaxis, :]
    # A smooth |y| (a hyperbola 3 km wide at the bottom) so there is no kink.
    y = (np.arange(rows, dtype=np.float32) - np.float32((rows - 1) / 2)) * np.float32(cell)
    z += np.float32(TROUGH_SLOPE) * np.sqrt(y * y + np.float32(3000.0**2))[:, np.newaxis]


def _disc(z: np.ndarray, row: int, col: int, radius: int) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray]:
    """The window around a disc, the cells inside it and the cells of its rim.

    The disc is clipped to the grid. The rim is the ring of cells one cell
    outside the disc, so that it surrounds the disc even where cells touch
    only diagonally.

    Returns
    -------
    window:
        Slices of ``z`` holding the disc and its rim.
    inside, rim:
        Boolean masks of the window's shape.
    """
    r0, r1 = max(row - radius - 2, 0), min(row + radius + 3, z.shape[0])
    c0, c1 = max(col - radius - 2, 0), min(col + radius + 3, z.shape[1])
    dy = np.arange(r0, r1)[:, np.newaxis] - row
    dx = np.arange(c0, c1)[np.newaxis, :] - col
    dist = np.sqrt(dy * dy + dx * dx)
    inside = dist <= radius
    rim = (dist > radius) & (dist <= radius + 1.5)
    return (slice(r0, r1), slice(c0, c1)), inside, rim


def carve_bowl(z: np.ndarray, row: int, col: int, radius: int, depth: float) -> None:
    """Carve, in place, a closed depression centred on ``(row, col)``.

    Inside the disc the surface is lowered to at most a paraboloid whose
    edge is at the lowest rim elevation and whose centre is ``depth`` metres
    below it, so the bowl holds water up to its lowest rim cell.

    Parameters
    ----------
    z:
        float32 elevation grid, modified in place.
    row, col:
        Centre of the bowl.
    radius:
        Radius in cells.
    depth:
        Depth of the bowl's centre below its spill level, in metres.
    """
    window, inside, rim = _disc(z, row, col, radius)
    patch = z[window]
    spill = patch[rim].min()
    dy = np.arange(patch.shape[0])[:, np.newaxis] - (row - window[0].start)
    dx = np.arange(patch.shape[1])[np.newaxis, :] - (col - window[1].start)
    floor = spill - depth * (1.0 - (dy * dy + dx * dx) / float(radius * radius))
    # Strictly below the spill level everywhere inside, rim cells excepted.
    floor = np.minimum(floor, spill - 0.01).astype(np.float32)
    patch[inside] = np.minimum(patch[inside], floor[inside])


def set_lake(z: np.ndarray, row: int, col: int, radius: int) -> float:
    """Set, in place, a disc to the elevation of its lowest rim cell.

    The result is a flat that spills over its lowest rim cell, as a lake
    surface in a DEM does.

    Returns
    -------
    float
        The lake's elevation.
    """
    window, inside, rim = _disc(z, row, col, radius)
    patch = z[window]
    level = patch[rim].min()
    patch[inside] = level
    return float(level)


def terrain(n: int = 5000, seed: int = 0, cell: float = 30.0) -> np.ndarray:
    """The synthetic elevation grid described in the module docstring.

    Parameters
    ----------
    n:
        Number of rows and columns.
    seed:
        Seed of :func:`numpy.random.default_rng`; the same seed and size give
        the same grid.
    cell:
        Cell size in metres.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(n, n)``, in metres, without nodata.
    """
    rng = np.random.default_rng(seed)
    z = fractal_relief(n, rng, cell)
    add_regional_trend(z, cell)
    noise = rng.standard_normal((n, n), dtype=np.float32)
    noise *= np.float32(NOISE_M)
    z += noise
    del noise

    # Bowls: a handful, more on larger grids, 300 m to 1.8 km across.
    n_bowls = 4 + (n * n) // 2_000_000
    max_radius = max(3, min(30, n // 8))
    for _ in range(n_bowls):
        radius = int(rng.integers(max(2, max_radius // 3), max_radius + 1))
        row, col = (int(v) for v in rng.integers(radius + 2, n - radius - 2, size=2))
        carve_bowl(z, row, col, radius, depth=float(rng.uniform(5.0, 40.0)))

    # One lake, set last so nothing breaks its flat surface.
    radius = max(3, min(150, n // 25))
    row, col = (int(v) for v in rng.integers(radius + 2, n - radius - 2, size=2))
    set_lake(z, row, col, radius)
    return z


def make_dem(path: str | os.PathLike, n: int = 5000, seed: int = 0, cell: float = 30.0) -> Path:
    """Write the synthetic DEM as a GeoTIFF.

    The file is float32, tiled 256 × 256, deflate-compressed with the
    floating-point predictor, with nodata -9999 (no cell is nodata), in
    EPSG:32631 with its top-left corner at (500000, 4900000).

    Parameters
    ----------
    path:
        Output file; its folder is created if needed.
    n:
        Number of rows and columns.
    seed:
        Random seed.
    cell:
        Cell size in metres.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    z = terrain(n, seed, cell)
    profile = {
        "driver": "GTiff",
        "width": n,
        "height": n,
        "count": 1,
        "dtype": "float32",
        "crs": CRS,
        "transform": from_origin(ORIGIN_X, ORIGIN_Y, cell, cell),
        "nodata": NODATA,
        "compress": "deflate",
        "predictor": 3,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "BIGTIFF": "IF_SAFER",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(z, 1)
    return path


def _rectangle(x0: float, y0: float, x1: float, y1: float) -> dict:
    """A GeoJSON polygon geometry for an axis-aligned rectangle."""
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return {"type": "Polygon", "coordinates": [ring]}


def _write_geojson(path: Path, features: list[dict]) -> None:
    """Write a FeatureCollection in EPSG:32631 (with the legacy ``crs`` member)."""
    collection = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32631"}},
        "features": features,
    }
    path.write_text(json.dumps(collection, indent=1))


def make_catalog(
    directory: str | os.PathLike,
    dem_path: str | os.PathLike,
    n_units: int = 16,
    name: str = "synthetic",
    stream_threshold_km2: float = 2.0,
) -> Path:
    """Write ``basin.yml`` and two jurisdiction layers covering a DEM.

    ``regions.geojson`` holds two regions, the west and east halves of the
    DEM; ``districts.geojson`` holds ``n_units`` rectangular districts in a
    square grid, each inside one region. Both have ``code`` and ``name``
    properties; districts also carry their region's code as ``region``.

    Parameters
    ----------
    directory:
        Folder of the catalog; created if needed.
    dem_path:
        The DEM (written by :func:`make_dem`); the catalog refers to it by a
        path relative to ``directory``.
    n_units:
        Number of districts: a square of an even number (4, 16, 36, ...), so
        that no district straddles the two regions.
    name:
        Name of the basin in the catalog.
    stream_threshold_km2:
        Upstream area from which a cell is a river cell.

    Returns
    -------
    pathlib.Path
        The path of ``basin.yml``.
    """
    side = math.isqrt(n_units)
    if side * side != n_units or side % 2:
        raise ValueError(f"n_units must be the square of an even number (4, 16, 36, ...), got {n_units}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with rasterio.open(dem_path) as src:
        left, bottom, right, top = src.bounds
    middle = (left + right) / 2

    regions = [
        {
            "type": "Feature",
            "properties": {"code": "W", "name": "West"},
            "geometry": _rectangle(left, bottom, middle, top),
        },
        {
            "type": "Feature",
            "properties": {"code": "E", "name": "East"},
            "geometry": _rectangle(middle, bottom, right, top),
        },
    ]
    xs = np.linspace(left, right, side + 1)
    ys = np.linspace(top, bottom, side + 1)
    districts = []
    for i in range(side):
        for j in range(side):
            region = "W" if j < side // 2 else "E"
            code = f"{region}{i * side + j + 1:02d}"
            districts.append(
                {
                    "type": "Feature",
                    "properties": {"code": code, "name": f"District {code}", "region": region},
                    "geometry": _rectangle(float(xs[j]), float(ys[i + 1]), float(xs[j + 1]), float(ys[i])),
                }
            )
    _write_geojson(directory / "regions.geojson", regions)
    _write_geojson(directory / "districts.geojson", districts)

    dem_rel = Path(os.path.relpath(Path(dem_path).resolve(), directory.resolve())).as_posix()
    yml = f"""\
name: {name}
crs: {CRS}
parameters:
  stream_threshold_km2: {stream_threshold_km2}
sources:
  dem: {{role: dem, format: GTiff, crs: {CRS}, path: {dem_rel}}}
  regions:
    role: jurisdictions
    level: region
    format: GeoJSON
    crs: {CRS}
    code_field: code
    name_field: name
    path: regions.geojson
  districts:
    role: jurisdictions
    level: district
    parent_level: region
    format: GeoJSON
    crs: {CRS}
    code_field: code
    name_field: name
    path: districts.geojson
"""
    catalog = directory / "basin.yml"
    catalog.write_text(yml)
    return catalog


def main(argv: list[str] | None = None) -> None:
    """Command line: write a DEM and, with ``--catalog``, a catalog next to it."""
    parser = argparse.ArgumentParser(description="Write a seeded synthetic DEM (and optionally a basin catalog).")
    parser.add_argument("out", help="output GeoTIFF")
    parser.add_argument("--size", type=int, default=5000, help="rows and columns (default 5000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--cell", type=float, default=30.0, help="cell size in metres (default 30)")
    parser.add_argument("--catalog", action="store_true", help="also write basin.yml and jurisdictions next to the DEM")
    parser.add_argument("--units", type=int, default=16, help="number of districts in the catalog (default 16)")
    args = parser.parse_args(argv)
    dem = make_dem(args.out, n=args.size, seed=args.seed, cell=args.cell)
    print(dem)
    if args.catalog:
        print(make_catalog(dem.parent, dem, n_units=args.units))


if __name__ == "__main__":
    main()
