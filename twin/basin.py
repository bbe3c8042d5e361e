"""``BasinTwin``: the facade over the model of one basin.

Build it from a catalog, save it as a twin folder, open it again::

    import twin
    basin = twin.BasinTwin.build("data/cevennes/basin.yml")
    basin.save("twins/cevennes")
    same = twin.BasinTwin.open("twins/cevennes")
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import xarray as xr
from pyproj import Transformer

from twin.errors import OutsideBasinError, TwinFolderError
from twin.model.catalog import Catalog, Outlet, Parameters, load_catalog, sha256_file
from twin.model.drainage import Drainage
from twin.model.jurisdictions import Jurisdictions, analyse, load_units
from twin.model.loaders import Elevation, load_dem, load_sites, load_vectors
from twin.model.network import Location, Network, build_reaches
from twin.model.sites import place_sites
from twin.model.terrain import Terrain, condition
from twin.model.transport import LEADING_EDGE_FRACTION

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
BUILD_STEPS = ("load terrain", "condition and route", "derive rivers", "reach table", "jurisdictions", "sites")


def _clip_to_boundary(elev: Elevation, boundary: gpd.GeoDataFrame) -> Elevation:
    """Cells outside the boundary polygon become nodata; the grid is cropped to it."""
    import rasterio.features

    shape = shapely.union_all(boundary.to_crs(elev.grid.crs).geometry.values)
    inside = rasterio.features.geometry_mask(
        [shape], out_shape=elev.grid.shape, transform=elev.grid.transform, invert=True
    )
    if not inside.any():
        raise OutsideBasinError("the boundary polygon does not overlap the DEM; check the boundary's CRS and extent")
    return _crop(elev, inside)


def _clip_to_outlet(elev: Elevation, outlet: Outlet, params: Parameters) -> Elevation:
    """Keep the catchment of the outlet (routed on the whole grid first), cropped to it."""
    terrain, d8, order = condition(elev)
    drainage = Drainage.route(terrain.grid, d8, order, params.stream_threshold_km2)
    x, y = Transformer.from_crs(outlet.crs, terrain.grid.crs, always_xy=True).transform(outlet.lon, outlet.lat)
    s = drainage.snap(float(x), float(y), params.snap_max_m, what=f"catalog outlet ({outlet.lon}, {outlet.lat})")
    return _crop(elev, drainage.catchment_mask([s.cell]))


def _crop(elev: Elevation, inside: np.ndarray) -> Elevation:
    """Cells outside ``inside`` become nodata; the grid shrinks to the bounding box of the rest."""
    from affine import Affine

    from twin.model.loaders import Grid

    rows, cols = np.nonzero(inside)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    values = np.where(inside, elev.values, np.nan)[r0:r1, c0:c1].astype("float32")
    t = elev.grid.transform * Affine.translation(c0, r0)
    return Elevation(values, Grid(values.shape, t, elev.grid.crs))


@dataclass
class BasinTwin:
    """A digital twin of one river basin: terrain, drainage, network, jurisdictions, sites.

    Build with :meth:`build`, reopen with :meth:`open`. Attributes are the model's
    parts; nothing here is mutated after construction.
    """

    name: str
    catalog: Catalog
    terrain: Terrain
    drainage: Drainage
    network: Network
    jurisdictions: Jurisdictions
    sites: gpd.GeoDataFrame
    sources: list[dict[str, Any]] = field(default_factory=list)
    path: Path | None = None
    manifest: dict[str, Any] = field(default_factory=dict)

    # -- construction ---------------------------------------------------------
    @classmethod
    def build(cls, catalog: Catalog | str | Path, progress: Progress | None = None) -> BasinTwin:
        """Build the model from a catalog (a :class:`Catalog` or the path of a ``basin.yml``).

        Parameters
        ----------
        catalog:
            The catalog, or the path of its YAML file.
        progress:
            Called with the name of each step as it starts (see ``BUILD_STEPS``).

        Raises
        ------
        TwinError
            A subclass naming the source or value at fault.
        """
        cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)

        def step(name: str) -> None:
            log.info("build %s: %s", cat.name, name)
            if progress is not None:
                progress(name)

        files = cat.source_files()
        params = cat.parameters
        # hashed before they are read, so the manifest names the bytes the model came from
        sources = [
            {
                "name": n,
                "role": cat.sources[n].role,
                "files": [
                    {"path": f, "sha256": sha256_file(p), "bytes": p.stat().st_size}
                    for f, p in zip(cat.sources[n].files, ps)
                ],
            }
            for n, ps in files.items()
        ]

        step("load terrain")
        dem_name, dem_src = cat.dem_source()
        elev = load_dem(
            files[dem_name],
            declared_crs=dem_src.crs,
            nodata=dem_src.nodata,
            target_crs=cat.crs,
            resolution=params.resolution_m,
            what=f"DEM '{dem_name}'",
        )
        bsrc = cat.boundary_source()
        if bsrc is not None:
            boundary = load_vectors(
                [cat.resolve(f) for f in bsrc.files], declared_crs=bsrc.crs, layer=bsrc.layer, what="boundary"
            )
            elev = _clip_to_boundary(elev, boundary)
        elif cat.outlet is not None:
            elev = _clip_to_outlet(elev, cat.outlet, params)

        step("condition and route")
        terrain, d8, order = condition(elev)
        del elev
        log.info(
            "conditioning raised %(cells_raised)d cells, at most %(max_raise_m).1f m", terrain.conditioning_summary()
        )

        step("derive rivers")
        drainage = Drainage.route(terrain.grid, d8, order, params.stream_threshold_km2)

        step("reach table")
        reaches = build_reaches(
            terrain, drainage, runoff_mm_per_year=params.runoff_mm_per_year, min_slope=params.min_slope
        )

        step("jurisdictions")
        units = load_units(cat, terrain.grid)
        levels = [s.level for s in cat.jurisdiction_sources()]
        juris, rasters = analyse(units, levels, drainage, reaches, params.sliver_cells, params.section_min_run_m)
        reaches = _with_units(reaches, juris)
        network = Network(reaches)

        step("sites")
        site_frames = []
        for name, src in cat.site_sources().items():
            site_frames.append(
                load_sites(
                    files[name],
                    fmt=src.format,
                    declared_crs=src.crs,
                    id_field=src.id_field,
                    name_field=src.name_field,
                    x_field=src.x_field,
                    y_field=src.y_field,
                    layer=src.layer,
                    what=f"sites '{name}'",
                )
            )
        all_sites = (
            gpd.GeoDataFrame(pd.concat(site_frames, ignore_index=True), crs="EPSG:4326")
            if site_frames
            else gpd.GeoDataFrame(geometry=[], crs="EPSG:4326")
        )
        codes = {lv: units.loc[units["level"] == lv, "code"].to_numpy(dtype=object) for lv in levels}
        sites = place_sites(all_sites, drainage, network, rasters, codes, params.snap_max_m)
        del rasters

        return cls(cat.name, cat, terrain, drainage, network, juris, sites, sources)

    @classmethod
    def open(cls, path: str | Path) -> BasinTwin:
        """Open a twin folder written by :meth:`save`."""
        from twin.model.folder import read_twin

        return read_twin(Path(path))

    def save(self, path: str | Path, overwrite: bool = False, progress: Progress | None = None) -> Path:
        """Write the twin folder (into a temporary folder first, then moved into place).

        Raises
        ------
        OutputExistsError
            ``path`` exists and ``overwrite`` is false.
        """
        from twin.model.folder import write_twin

        out = write_twin(self, Path(path), overwrite=overwrite, progress=progress)
        self.path = out
        return out

    # -- operations -------------------------------------------------------------
    @property
    def store(self):
        """The operations store (SQLAlchemy engine), opened and migrated on first use.

        ``TWIN_DATABASE_URL`` selects a shared database (PostgreSQL); otherwise it is
        ``ops.sqlite`` in the twin folder. The twin's sites are (re)registered as stations.
        """
        if "_store" not in self.__dict__:
            from twin.ops import store as ops
            from twin.ops.readings import Readings
            from twin.settings import Settings

            url = Settings.from_env().database_url
            if not url:
                if self.path is None:
                    raise TwinFolderError(
                        "this twin has no folder yet: save it (twin.save(path)) before storing readings"
                    )
                url = ops.sqlite_url(self.path)
            engine = ops.connect(url)
            Readings(engine).register_stations(pd.DataFrame(self.sites.drop(columns="geometry")))
            self.__dict__["_store"] = engine
        return self.__dict__["_store"]

    def alerts(self, at: Any = None, start: Any = None, end: Any = None, policy: Any = None):
        """Four-level warnings over the readings, with response plans (see :mod:`twin.analysis.response`)."""
        from twin.analysis.response import warnings

        return warnings(self, at=at, start=start, end=end, policy=policy)

    @property
    def incidents(self):
        """Incidents recorded on this twin (:class:`twin.ops.incidents.Incidents`)."""
        from twin.ops.incidents import Incidents

        return Incidents(self)

    @property
    def readings(self):
        """Ingest and views of the readings (:class:`twin.ops.readings.Readings`)."""
        from twin.ops.readings import Readings

        return Readings(self.store)

    def classify(self, at: Any = None, max_age_hours: float = 24.0, stations: list[str] | None = None):
        """GB 3838-2002 class of every station at a time (see :func:`twin.analysis.classes.classify`)."""
        from twin.analysis.classes import classify

        return classify(self.readings, at, max_age_hours, stations)

    def classify_history(self, start: Any = None, end: Any = None, stations: list[str] | None = None):
        """GB 3838-2002 class of every sample in a window (see :func:`twin.analysis.classes.classify_history`)."""
        from twin.analysis.classes import classify_history

        return classify_history(self.readings, start, end, stations)

    # -- questions ------------------------------------------------------------
    @property
    def crs(self):
        return self.terrain.grid.crs

    def grids(self) -> xr.Dataset:
        """Terrain and drainage as one ``xarray.Dataset`` on the twin's grid, with its CRS.

        Variables: ``elevation`` (m, NaN for nodata), ``conditioned`` (the same with
        depressions filled), ``upstream_area`` (km², the cell included), ``strahler``
        (Strahler order of river cells, 0 elsewhere) and ``subbasin`` (the reach id each
        cell first drains into, 0 if none). Coordinates ``x`` and ``y`` are cell centres
        in the twin's CRS, which ``ds.rio.crs`` gives (rioxarray). The arrays are copies:
        changing them does not change the twin.

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

    def scene(self, **options: Any):
        """The basin in 3D (:func:`twin.scene.build_scene`; needs the ``scene`` extra): ``.save(path)``
        writes a PNG, glb or HTML. ``options`` are build_scene's (at, incident, plume, view, lang...)."""
        from twin.scene import build_scene

        return build_scene(self, **options)

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
        return path, self._along(path, self.jurisdictions.sections), self._along(path, self.sites)

    def _along(self, path: gpd.GeoDataFrame, features: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
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
        """A JSON-ready summary of the twin."""
        g = self.terrain.grid
        to_ll = Transformer.from_crs(g.crs, "EPSG:4326", always_xy=True)
        b = g.bounds
        lon0, lat0 = to_ll.transform(b[0], b[1])
        lon1, lat1 = to_ll.transform(b[2], b[3])
        sec = self.jurisdictions.sections
        crossed = self.jurisdictions.crossed
        top = self.jurisdictions.levels[0] if self.jurisdictions.levels else None
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
            "elevation_m": [round(float(np.nanmin(self.terrain.dem)), 1), round(float(np.nanmax(self.terrain.dem)), 1)],
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


def _with_units(reaches: gpd.GeoDataFrame, juris: Jurisdictions) -> gpd.GeoDataFrame:
    """Reach table plus one column per level: the codes it runs through, ';'-joined."""
    out = reaches.copy()
    for lv in juris.levels:
        ru = juris.reach_units[juris.reach_units["level"] == lv]
        joined = ru.groupby("reach_id")["code"].agg(lambda c: ";".join(sorted(map(str, c))))
        out[lv] = joined.reindex(out.index).fillna("").to_numpy()
    return out
