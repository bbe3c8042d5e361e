"""Terrain: the DEM in the working CRS, and its hydrological conditioning.

Conditioning fills every depression to its spill level (priority-flood, see
:mod:`twin.model.kernels`); it does not breach. What it changed is kept as a raster
(metres raised per cell), so an expert can see where the model departs from the
measured terrain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from twin.model import blocks, kernels
from twin.model.loaders import Elevation, Grid


def to_dataarray(
    values: np.ndarray,
    grid: Grid,
    name: str,
    units: str,
    nodata: float | int | None = None,
    long_name: str | None = None,
) -> xr.DataArray:
    """A grid array as an ``xarray.DataArray`` with x/y cell-centre coordinates and CRS."""
    nrow, ncol = grid.shape
    t = grid.transform
    x = t.c + (np.arange(ncol) + 0.5) * t.a
    y = t.f + (np.arange(nrow) + 0.5) * t.e
    da = xr.DataArray(
        values,
        dims=("y", "x"),
        coords={"y": y, "x": x},
        name=name,
        attrs={"units": units, "long_name": long_name or name},
    )
    # in place: each rio.write_* without it copies the whole grid (three copies of a 4 MB grid)
    da.rio.write_crs(grid.crs.to_wkt(), inplace=True)
    da.rio.write_transform(grid.transform, inplace=True)
    if nodata is not None:
        da.rio.write_nodata(nodata, encoded=False, inplace=True)
    return da


def read_only(*arrays: np.ndarray) -> None:
    """Mark a model's arrays read-only: they are handed out as views, never copied, so nobody may write them."""
    for a in arrays:
        if isinstance(a, np.ndarray):
            a.flags.writeable = False


@dataclass(frozen=True)
class Terrain:
    """Measured and conditioned elevation on the twin's grid.

    Attributes
    ----------
    grid:
        Shape, transform and CRS of every raster of the twin.
    dem:
        Elevation as loaded (reprojected), float32 metres, NaN for nodata.
    conditioned:
        Elevation with depressions filled; ``conditioned - dem`` is what changed.
    """

    grid: Grid
    dem: np.ndarray
    conditioned: np.ndarray

    def __post_init__(self) -> None:
        read_only(self.dem, self.conditioned)

    @property
    def elevation(self) -> xr.DataArray:
        """Measured elevation (m) as a DataArray with CRS."""
        return to_dataarray(self.dem, self.grid, "elevation", "m", np.nan, "elevation above sea level")

    @property
    def conditioned_elevation(self) -> xr.DataArray:
        return to_dataarray(
            self.conditioned, self.grid, "conditioned_elevation", "m", np.nan, "elevation with depressions filled"
        )

    @property
    def change(self) -> xr.DataArray:
        """Metres added to each cell by conditioning (0 where nothing changed)."""
        return to_dataarray(
            self.conditioned - self.dem,
            self.grid,
            "conditioning_change",
            "m",
            np.nan,
            "metres raised by depression filling",
        )

    @property
    def valid(self) -> np.ndarray:
        return ~np.isnan(self.dem)

    def conditioning_summary(self) -> dict[str, float | int]:
        diff = self.conditioned - self.dem
        raised = diff > 0
        return {
            "cells_raised": int(raised.sum()),
            "max_raise_m": float(np.nanmax(diff)) if raised.any() else 0.0,
            "volume_m3": float(np.nansum(diff) * self.grid.cell_area),
        }


def condition(elevation: Elevation) -> tuple[Terrain, np.ndarray, np.ndarray]:
    """Fill depressions and route flow.

    Returns
    -------
    terrain, d8, order
        The terrain with its conditioned elevation, the D8 codes (uint8, 2-D) and
        the valid cells' flat indices ordered downstream-first (int32).
    """
    dem = np.ascontiguousarray(elevation.values, dtype=np.float32)
    filled = np.empty_like(dem)
    d8 = np.empty(dem.shape, dtype=np.uint8)
    order = np.empty(int(np.count_nonzero(~np.isnan(dem))), dtype=np.int32)
    kernels.flood(dem, filled, d8, order)  # the filled DEM; D8 and the order follow from it alone
    d8 = blocks.route_filled(filled, dem)
    order = kernels.topological_order(d8.ravel(), dem.shape[1])
    return Terrain(elevation.grid, dem, filled), d8, order
