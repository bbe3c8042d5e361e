"""The model of one basin: grids and tables, frozen, with the questions they answer. No I/O.

A :class:`Model` is what a build makes (:func:`twin.model.build.build_model`) and what a twin
folder holds (:mod:`twin.model.folder`). Analyses take a Model (and, where they need readings,
a table or a store), so a notebook can run them without a twin folder::

    from twin.model.build import build_model
    model = build_model("data/cevennes/basin.yml")
    path, sections, sites = model.downstream(3.93, 44.13)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import xarray as xr
from pyproj import CRS, Transformer

from twin.model.catalog import Catalog
from twin.model.drainage import Drainage
from twin.model.jurisdictions import Jurisdictions
from twin.model.network import Location, Network
from twin.model.terrain import Terrain
from twin.model.transport import LEADING_EDGE_FRACTION


@dataclass(frozen=True, eq=False)
class Model:
    """Terrain, drainage, river network, jurisdictions and sites of one basin.

    Frozen: no attribute is reassigned after construction and the grids are read-only
    arrays (``terrain.dem.flags.writeable`` is false), so every view handed out is the
    model's own memory, not a copy. ``sources`` are the catalog's input files with their
    sha256, as hashed when the build read them.
    """

    name: str
    catalog: Catalog
    terrain: Terrain
    drainage: Drainage
    network: Network
    jurisdictions: Jurisdictions
    sites: gpd.GeoDataFrame
    sources: tuple[dict[str, Any], ...] = ()

    @property
    def crs(self) -> CRS:
        """The twin's metric CRS (every grid and table is in it)."""
        return self.terrain.grid.crs

    def grids(self) -> xr.Dataset:
        """Terrain and drainage as one ``xarray.Dataset`` on the twin's grid, with its CRS.

        Variables: ``elevation`` (m, NaN for nodata), ``conditioned`` (the same with
        depressions filled), ``upstream_area`` (km², the cell included), ``strahler``
        (Strahler order of river cells, 0 elsewhere) and ``subbasin`` (the reach id each
        cell first drains into, 0 if none). Coordinates ``x`` and ``y`` are cell centres
        in the twin's CRS, which ``ds.rio.crs`` gives (rioxarray). ``elevation``, ``conditioned``,
        ``strahler`` and ``subbasin`` are read-only views of the model's own arrays (no copy);
        ``upstream_area`` is computed from the cell counts.

        Examples
        --------
        >>> ds = basin.grids()                                      # doctest: +SKIP
        >>> ds["elevation"].where(ds["strahler"] >= 4).mean().item()   # doctest: +SKIP
        """
        t, d = self.terrain, self.drainage
        ds = xr.Dataset(
            {
                "elevation": t.elevation,
                "conditioned": t.conditioned_elevation,
                "upstream_area": d.upstream_area,
                "strahler": d.stream_order,
                "subbasin": d.subbasins,
            }
        )
        ds.attrs.update(twin=self.name, title=self.catalog.title or self.name)
        return ds

    def to_twin_xy(self, x: float, y: float, crs: str = "EPSG:4326") -> tuple[float, float]:
        """Transform a point into the twin's CRS (default from lon/lat)."""
        t = Transformer.from_crs(crs, self.crs, always_xy=True)
        tx, ty = t.transform(x, y)
        return float(tx), float(ty)

    def locate(
        self,
        x: float,
        y: float,
        crs: str = "EPSG:4326",
        max_distance_m: float | None = None,
        min_upstream_km2: float = 0.0,
    ) -> Location:
        """Linear referencing: snap a point to the river and give (reach id, measure).

        ``min_upstream_km2`` restricts the snap to rivers at least that large.
        """
        tx, ty = self.to_twin_xy(x, y, crs)
        limit = self.catalog.parameters.snap_max_m if max_distance_m is None else max_distance_m
        s = self.drainage.snap(tx, ty, limit, min_upstream_km2=min_upstream_km2)
        return self.network.locate_cell(s.x, s.y, int(self.drainage.reach.ravel()[s.cell]), s.distance_m)

    def catchment(self, x: float, y: float, crs: str = "EPSG:4326", snap: bool = True) -> gpd.GeoDataFrame:
        """The catchment of a point as a one-row GeoDataFrame (twin CRS).

        With ``snap`` (default) the point is first snapped to the river it drains
        to; without, the catchment is that of the point's own cell.
        """
        tx, ty = self.to_twin_xy(x, y, crs)
        if snap:
            s = self.drainage.snap(tx, ty, self.catalog.parameters.snap_max_m)
            cell, ox, oy = s.cell, s.x, s.y
        else:
            cell = self.drainage.cell_of(tx, ty)
            ncol = self.terrain.grid.shape[1]
            cx, cy = self.terrain.grid.xy(cell // ncol, cell % ncol)
            ox, oy = float(cx), float(cy)
        mask = self.drainage.catchment_mask([cell])
        geom = self.drainage.polygonize(mask)
        area = float(mask.sum()) * self.terrain.grid.cell_area / 1e6
        reach = int(self.drainage.reach.ravel()[cell])
        units = self.jurisdictions.at(ox, oy)
        props: dict[str, Any] = {
            "area_km2": area,
            "cells": int(mask.sum()),
            "outlet_x": ox,
            "outlet_y": oy,
            "reach_id": reach or None,
        }
        for lv, u in units.items():
            props[lv] = u["code"] if u else None
        return gpd.GeoDataFrame([props], geometry=[geom], crs=self.crs)

    def downstream(
        self,
        x: float,
        y: float,
        crs: str = "EPSG:4326",
        max_km: float | None = None,
        max_hours: float | None = None,
        flow_ratio: float = 1.0,
    ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
        """The downstream path from a point: reach pieces, the sections crossed, the sites passed.

        Bounded by distance (``max_km``) and/or the peak's travel time
        (``max_hours``, Jobson velocities at ``flow_ratio`` × mean annual flow).

        Returns
        -------
        path, sections, sites
            GeoDataFrames in the twin CRS; sections and sites carry ``distance_km``
            from the start along the river and the travel times ``leading_h``,
            ``earliest_h`` and ``peak_h`` of a release at the start.
        """
        start = self.locate(x, y, crs)
        path = self.network.downstream(start, max_km, max_hours, flow_ratio)
        return path, self.along(path, self.jurisdictions.sections), self.along(path, self.sites)

    def along(self, path: gpd.GeoDataFrame, features: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        """Features (with reach_id and measure_m) that lie on the path's pieces, with distance and times."""
        cols = ["distance_km", "leading_h", "earliest_h", "peak_h"]
        if features.empty or path.empty:
            return features.iloc[0:0].assign(**{c: [] for c in cols})
        # where each piece starts and ends along its reach (a path visits a reach once)
        starts = np.array(
            [
                self.network.reaches.at[r, "geometry"].project(shapely.Point(g.coords[0]))
                for r, g in zip(path["reach_id"], path.geometry)
            ]
        )
        piece = pd.DataFrame(
            {
                "a": starts,
                "b": starts + path.geometry.length.to_numpy(),
                "from_km": path["from_km"].to_numpy(),
                "from_h": path["from_h"].to_numpy(),
                "peak_h": path["peak_h"].to_numpy(),
                "from_e": path["from_earliest_h"].to_numpy(),
                "earliest_h": path["earliest_h"].to_numpy(),
            },
            index=path["reach_id"].to_numpy(),
        )
        on = features[features["reach_id"].isin(piece.index)]
        p = piece.loc[on["reach_id"].to_numpy()]
        m = on["measure_m"].to_numpy()
        inside = (m >= p["a"].to_numpy() - 1e-6) & (m <= p["b"].to_numpy() + 1e-6)
        on, p, m = on[inside], p[inside], m[inside]
        span = (p["b"] - p["a"]).to_numpy()
        frac = np.clip(np.divide(m - p["a"].to_numpy(), span, out=np.zeros(len(m)), where=span > 0), 0, 1)
        peak = p["from_h"].to_numpy() + frac * (p["peak_h"] - p["from_h"]).to_numpy()
        out = on.assign(
            distance_km=p["from_km"].to_numpy() + (m - p["a"].to_numpy()) / 1000.0,
            peak_h=peak,
            earliest_h=p["from_e"].to_numpy() + frac * (p["earliest_h"] - p["from_e"]).to_numpy(),
            leading_h=peak * LEADING_EDGE_FRACTION,
        )
        return gpd.GeoDataFrame(out, crs=features.crs).sort_values("distance_km").reset_index(drop=True)

    def info(self) -> dict[str, Any]:
        """A JSON-ready summary of the twin.

        The two summaries over the grids (``elevation_m``, ``conditioning``) read them in
        blocks of rows (:meth:`Terrain.elevation_range`, :meth:`Terrain.conditioning_summary`),
        so the summary of a lazily opened twin holds a block at a time, not a grid.
        """
        g = self.terrain.grid
        to_ll = Transformer.from_crs(g.crs, "EPSG:4326", always_xy=True)
        b = g.bounds
        lon0, lat0 = to_ll.transform(b[0], b[1])
        lon1, lat1 = to_ll.transform(b[2], b[3])
        sec = self.jurisdictions.sections
        crossed = self.jurisdictions.crossed
        top = self.jurisdictions.levels[0] if self.jurisdictions.levels else None
        lo, hi = self.terrain.elevation_range()  # in blocks of rows: a large twin's DEM is not read whole
        return {
            "name": self.name,
            "title": self.catalog.title,
            "crs": g.crs.to_string(),
            "bounds": [round(v, 1) for v in b],
            "bounds_wgs84": [round(lon0, 5), round(lat0, 5), round(lon1, 5), round(lat1, 5)],
            "cell_size_m": abs(g.transform.a),
            "cells": int(g.shape[0] * g.shape[1]),
            "valid_cells": int(self.drainage.order.size),
            "shape": list(g.shape),
            "elevation_m": [round(lo, 1), round(hi, 1)],
            "conditioning": self.terrain.conditioning_summary(),
            "stream_threshold_km2": self.catalog.parameters.stream_threshold_km2,
            "reaches": len(self.network),
            "stream_length_km": round(self.network.total_length_km, 1),
            "outlets": int((self.network.reaches["next_down"] == 0).sum()),
            "max_strahler": int(self.network.reaches["strahler"].max()) if len(self.network) else 0,
            "jurisdictions_crossed": {
                lv: [f"{c} {self.jurisdictions.name_of(c)}" for c in codes] for lv, codes in crossed.items()
            },
            "cross_boundary_sections": {lv: int((sec["level"] == lv).sum()) for lv in self.jurisdictions.levels},
            "top_level_sections": [
                {
                    "section_id": int(r.section_id),
                    "reach_id": int(r.reach_id),
                    "from": _label(r.from_code, r.from_name),
                    "to": _label(r.to_code, r.to_name),
                    "upstream_area_km2": round(float(r.upstream_area_km2), 1),
                }
                for r in sec[sec["level"] == top].itertuples()
            ]
            if top
            else [],
            "sites": [
                {
                    "id": s.id,
                    "name": s.name,
                    "kind": s.kind,
                    "reach_id": int(s.reach_id),
                    "upstream_area_km2": round(float(s.upstream_area_km2), 1),
                }
                for s in self.sites.itertuples()
            ],
        }


def _label(code: Any, name: Any) -> str:
    return "outside the mapped units" if code is None or pd.isna(code) else f"{code} {name}"
