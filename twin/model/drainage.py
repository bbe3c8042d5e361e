"""Drainage: D8 directions, upstream area, Strahler order, sub-basins, snapping, catchments.

:class:`Drainage` wraps the arrays the kernels produce and answers questions
about points: which river cell a point drains to (:meth:`Drainage.snap`), and
which cells drain to it (:meth:`Drainage.catchment`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import geopandas as gpd
import numpy as np
import rasterio.features
import shapely
import xarray as xr

from twin.errors import OutsideBasinError, SnapError
from twin.model import kernels
from twin.model.loaders import Grid
from twin.model.terrain import read_only, to_dataarray


def read_only_tuple(*arrays: np.ndarray) -> tuple:
    read_only(*arrays)
    return arrays


def threshold_cells(grid: Grid, threshold_km2: float) -> int:
    """Upstream cells from which a cell is a river cell (at least 2)."""
    return max(2, int(np.ceil(threshold_km2 * 1e6 / grid.cell_area)))


@dataclass(frozen=True)
class Snap:
    """Where a point was snapped: the river cell, its centre and how far it is."""

    cell: int
    x: float
    y: float
    distance_m: float
    method: str  # "flow path" or "nearest river"


@dataclass(frozen=True)
class Drainage:
    """D8 routing of every cell and what derives from it.

    Attributes
    ----------
    grid:
        The twin's grid.
    d8:
        D8 codes, uint8 2-D (ESRI codes; 0 outlet, 247 nodata).
    order:
        Valid cells' flat indices, downstream-first (int32).
    upstream_cells:
        Upstream cell count of every cell, itself included (int32 2-D).
    strahler:
        Strahler order of river cells (0 elsewhere).
    reach:
        Reach id of river cells (0 elsewhere).
    subbasin:
        Reach id each cell first drains into (0 if none).
    threshold_cells:
        Upstream cell count from which a cell is a river cell.
    """

    grid: Grid
    d8: np.ndarray
    order: np.ndarray
    upstream_cells: np.ndarray
    strahler: np.ndarray
    reach: np.ndarray
    subbasin: np.ndarray
    threshold_cells: int

    def __post_init__(self) -> None:
        read_only(self.d8, self.order, self.upstream_cells, self.strahler, self.reach, self.subbasin)

    # -- construction -------------------------------------------------------
    @classmethod
    def route(cls, grid: Grid, d8: np.ndarray, order: np.ndarray, threshold_km2: float) -> Drainage:
        """Derive upstream area, rivers, Strahler order and sub-basins from D8 and its order."""
        ncol = grid.shape[1]
        flat = d8.ravel()
        acc = kernels.accumulate(flat, order, ncol)
        threshold = threshold_cells(grid, threshold_km2)
        strahler, reach = kernels.streams(flat, order, acc, threshold, ncol)
        reach = kernels.canonical_reach_ids(reach, acc)[reach]
        sub = kernels.label_subbasins(flat, order, reach, ncol)
        shape = grid.shape
        return cls(
            grid,
            d8,
            order,
            acc.reshape(shape),
            strahler.reshape(shape),
            reach.reshape(shape),
            sub.reshape(shape),
            threshold,
        )

    @classmethod
    def from_arrays(
        cls,
        grid: Grid,
        d8: np.ndarray,
        upstream_cells: np.ndarray,
        strahler: np.ndarray,
        reach: np.ndarray,
        subbasin: np.ndarray,
        threshold_cells: int,
        order: np.ndarray | None = None,
    ) -> Drainage:
        """Rebuild from stored rasters; the cell order is recomputed from D8 unless given.

        ``order`` must be what :func:`twin.model.kernels.topological_order` gives for ``d8``
        (a twin folder keeps it cached, see :mod:`twin.model.folder`); it is not checked.
        """
        if order is None:
            order = kernels.topological_order(np.ascontiguousarray(d8).ravel(), grid.shape[1])
        return cls(grid, d8, order, upstream_cells, strahler, reach, subbasin, threshold_cells)

    # -- derived once, on first use (a cache, not a change: every field stays as constructed) ----
    @cached_property
    def reach_cells(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """River cells grouped by reach, upstream to downstream within each reach.

        Returns
        -------
        cells, reach_ids, starts
            Flat indices, their reach ids, and where each reach's run starts in ``cells``
            (reach ``k`` = ``cells[starts[k-1]:starts[k]]`` with ``starts[0] = 0``, ids 1..R).
        """
        reach = self.reach.ravel()
        up_first = self.order[::-1]
        cells = up_first[reach[up_first] > 0].astype(np.int64)
        ids = reach[cells]
        srt = np.argsort(ids, kind="stable")
        cells, ids = cells[srt], ids[srt]
        n = int(ids.max()) if ids.size else 0
        starts = np.searchsorted(ids, np.arange(1, n + 2))
        return read_only_tuple(cells, ids, starts)

    @cached_property
    def reach_chains(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Each reach's cells followed by its connector (the first cell of the reach below).

        Returns
        -------
        cells, ids, measure, starts
            Flat indices and reach ids of the chains, concatenated in reach-id order;
            ``measure`` is the distance (m) of each point from its reach's upstream end;
            ``starts`` as in :attr:`reach_cells`.
        """
        grid = self.grid
        ncol = grid.shape[1]
        cells, ids, starts = self.reach_cells
        n = len(starts) - 1
        connector = self.down_of(cells[starts[1:] - 1])
        has_conn = connector >= 0
        all_cells = np.concatenate([cells, connector[has_conn]])
        all_ids = np.concatenate([ids, np.arange(1, n + 1)[has_conn]])
        rank = np.concatenate([np.arange(cells.size), np.full(int(has_conn.sum()), cells.size)])
        srt = np.lexsort((rank, all_ids))
        all_cells, all_ids = all_cells[srt], all_ids[srt]
        x, y = grid.xy(all_cells // ncol, all_cells % ncol)
        step = np.concatenate([[0.0], np.hypot(np.diff(x), np.diff(y))])
        step[np.concatenate([[True], all_ids[1:] != all_ids[:-1]])] = 0.0
        measure = np.cumsum(step)
        firsts = np.searchsorted(all_ids, all_ids)  # index of each point's reach start
        measure -= measure[firsts]
        out = (all_cells, all_ids, measure, np.searchsorted(all_ids, np.arange(1, n + 2)))
        return read_only_tuple(*out)

    # -- views ----------------------------------------------------------------
    @property
    def flow_direction(self) -> xr.DataArray:
        return to_dataarray(
            self.d8, self.grid, "d8", "1", int(kernels.D8_NODATA), "D8 flow direction (ESRI codes, 0 outlet)"
        )

    @property
    def upstream_area(self) -> xr.DataArray:
        """Upstream area in km², each cell included."""
        area = self.upstream_cells.astype("float32") * np.float32(self.grid.cell_area / 1e6)
        area[self.d8 == kernels.D8_NODATA] = np.nan
        return to_dataarray(area, self.grid, "upstream_area", "km2", np.nan, "upstream drainage area")

    @property
    def stream_order(self) -> xr.DataArray:
        return to_dataarray(self.strahler, self.grid, "strahler", "1", 0, "Strahler stream order")

    @property
    def subbasins(self) -> xr.DataArray:
        return to_dataarray(self.subbasin, self.grid, "subbasin", "1", 0, "reach each cell drains into")

    def down_of(self, cells: np.ndarray) -> np.ndarray:
        """Flat index of the downstream cell of each of ``cells`` (-1 at outlets and nodata)."""
        return kernels.downstream_of(self.d8.ravel(), np.asarray(cells, dtype=np.int64), self.grid.shape[1])

    def to_pyflwdir(self):
        """The same routing as a ``pyflwdir.FlwdirRaster``, for pyflwdir's own methods."""
        import pyflwdir

        return pyflwdir.from_array(self.d8, ftype="d8", transform=self.grid.transform, latlon=False)

    # -- points ---------------------------------------------------------------
    def cell_of(self, x: float, y: float, what: str = "point") -> int:
        """Flat index of the valid cell holding (x, y) in the twin CRS."""
        rows, cols = self.grid.rowcol(x, y)
        row, col = int(rows), int(cols)
        nrow, ncol = self.grid.shape
        if not (0 <= row < nrow and 0 <= col < ncol):
            b = self.grid.bounds
            raise OutsideBasinError(
                f"{what} ({x:.1f}, {y:.1f}) lies outside the basin grid "
                f"(x {b[0]:.0f}–{b[2]:.0f}, y {b[1]:.0f}–{b[3]:.0f} in {self.grid.crs.to_string()}); check its coordinates and CRS"
            )
        i = row * ncol + col
        if self.d8.ravel()[i] == kernels.D8_NODATA:
            raise OutsideBasinError(
                f"{what} ({x:.1f}, {y:.1f}) falls on a nodata cell of the basin; pick a point inside the basin"
            )
        return i

    def snap(
        self, x: float, y: float, max_distance_m: float, what: str = "point", min_upstream_km2: float = 0.0
    ) -> Snap:
        """Snap a point to a river cell.

        First follows the flow path from the point's cell down to the first river
        cell (the river it really drains to); if that is farther than
        ``max_distance_m`` along the path, takes the nearest river cell within
        ``max_distance_m`` instead. With ``min_upstream_km2``, only river cells
        with at least that upstream area count (to reach the main river from a
        point beside it rather than a side stream).

        Raises
        ------
        OutsideBasinError
            The point is outside the grid or on nodata.
        SnapError
            No river cell within ``max_distance_m``.
        """
        start = self.cell_of(x, y, what)
        ncol = self.grid.shape[1]
        cell = float(abs(self.grid.transform.a))
        min_cells = max(1, int(np.ceil(min_upstream_km2 * 1e6 / self.grid.cell_area))) if min_upstream_km2 else 1

        def river(reach: np.ndarray, upstream_cells: np.ndarray) -> np.ndarray:
            # asked of a path or a window only: on a memory-mapped grid no other cell is read
            return (reach > 0) & (upstream_cells >= min_cells) if min_upstream_km2 else reach > 0

        steps = int(max_distance_m / cell) + 2
        path = kernels.flow_path(self.d8.ravel(), start, ncol, steps)
        on_river = np.flatnonzero(river(self.reach.ravel()[path], self.upstream_cells.ravel()[path]))
        if on_river.size:
            i = int(path[on_river[0]])
            cx, cy = self.grid.xy(i // ncol, i % ncol)
            d = float(np.hypot(cx - x, cy - y))
            if d <= max_distance_m:
                return Snap(i, float(cx), float(cy), d, "flow path")
        r0, c0 = start // ncol, start % ncol
        rad = int(np.ceil(max_distance_m / cell))
        nrow = self.grid.shape[0]
        rs, cs = slice(max(0, r0 - rad), min(nrow, r0 + rad + 1)), slice(max(0, c0 - rad), min(ncol, c0 + rad + 1))
        rr, cc = np.nonzero(river(self.reach[rs, cs], self.upstream_cells[rs, cs]))
        if rr.size:
            rr, cc = rr + rs.start, cc + cs.start
            xs, ys = self.grid.xy(rr, cc)
            dist = np.hypot(xs - x, ys - y)
            k = int(np.argmin(dist))
            if dist[k] <= max_distance_m:
                return Snap(int(rr[k] * ncol + cc[k]), float(xs[k]), float(ys[k]), float(dist[k]), "nearest river")
        bigger = f" with {min_upstream_km2:g} km2 upstream" if min_upstream_km2 else ""
        raise SnapError(
            f"{what} ({x:.1f}, {y:.1f}) is more than {max_distance_m:.0f} m from any river{bigger}; "
            "move it onto a river or raise parameters.snap_max_m"
        )

    def catchment_mask(self, cells: list[int] | np.ndarray) -> np.ndarray:
        """Boolean 2-D mask of the cells draining to any of ``cells`` (flat indices)."""
        targets = np.asarray(cells, dtype=np.int64)
        return (
            kernels.catchment_mask(self.d8.ravel(), self.order, targets, self.grid.shape[1])
            .reshape(self.grid.shape)
            .astype(bool)
        )

    def polygonize(self, mask: np.ndarray) -> shapely.Geometry:
        """The cells of a boolean mask as one (multi)polygon in the twin CRS."""
        shapes = rasterio.features.shapes(mask.astype("uint8"), mask=mask, transform=self.grid.transform)
        polys = [shapely.geometry.shape(g) for g, _ in shapes]
        return shapely.union_all(polys) if polys else shapely.Polygon()

    def subbasin_polygons(self) -> gpd.GeoDataFrame:
        """One polygon per sub-basin (the cells draining into each reach directly)."""
        shapes = rasterio.features.shapes(self.subbasin, mask=self.subbasin > 0, transform=self.grid.transform)
        ids, geoms = [], []
        for g, v in shapes:
            ids.append(int(v))
            geoms.append(shapely.geometry.shape(g))
        df = gpd.GeoDataFrame({"reach_id": ids}, geometry=geoms, crs=self.grid.crs)
        df = df.dissolve(by="reach_id", as_index=False)
        df["area_km2"] = df.geometry.area / 1e6
        return df
