"""Jurisdictions: administrative units at every level, and where rivers cross them.

Units come from the catalog's ``jurisdictions`` layers (e.g. département,
arrondissement, commune), each with code, name, level and the code of its
parent (the unit of the parent level that holds the unit's representative
point). Units that do not touch the basin grid are dropped.

The network learns three things from them:

* the units each reach runs through, at every level;
* the **cross-boundary sections**: where a river leaves one unit and enters
  another, the points where responsibility changes hands;
* for every reach, how much of its upstream area lies in each unit.

Method and its assumption: units are rasterised on the twin grid (a cell
belongs to the unit holding its centre), so a section is placed between the
last river cell of one unit and the first of the next, within one cell (30 m
on the demo). River cells that fall in no unit because simplified boundaries
leave slivers take the nearest unit within ``parameters.sliver_cells`` cells.
Where a river runs along a boundary it wanders across it every few cells: a
change of unit counts as a section only once the river has stayed
``parameters.section_min_run_m`` in the new unit (see
:func:`twin.model.kernels.debounce_units`), and the section lies where that run began.
The units a reach "runs through" are counted without that filter.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import shapely

from twin.errors import SourceError
from twin.model import kernels
from twin.model.catalog import Catalog
from twin.model.drainage import Drainage
from twin.model.loaders import Grid, load_vectors

UNIT_COLUMNS = ["code", "name", "level", "parent_code", "geometry"]


def load_units(catalog: Catalog, grid: Grid) -> gpd.GeoDataFrame:
    """Every unit of every jurisdiction level that touches the grid, in the twin CRS."""
    frames: list[gpd.GeoDataFrame] = []
    box = shapely.box(*grid.bounds)
    by_level: dict[str, gpd.GeoDataFrame] = {}
    for src in catalog.jurisdiction_sources():
        what = f"jurisdictions '{src.level}'"
        df = load_vectors([catalog.resolve(f) for f in src.files], declared_crs=src.crs, layer=src.layer, what=what)
        for col in (src.code_field, src.name_field):
            if col not in df.columns:
                raise SourceError(
                    f"{what}: no field '{col}'; fields are {[c for c in df.columns if c != 'geometry']} "
                    "(set code_field/name_field in the catalog)"
                )
        if not df.geom_type.isin(["Polygon", "MultiPolygon"]).all():
            raise SourceError(f"{what}: units must be polygons; found {sorted(set(df.geom_type))}")
        df = df.to_crs(grid.crs)
        df = gpd.GeoDataFrame(
            {"code": df[src.code_field].astype(str), "name": df[src.name_field].astype(str), "level": src.level},
            geometry=shapely.make_valid(df.geometry.values),
            crs=grid.crs,
        )
        df = df[df.intersects(box)].reset_index(drop=True)
        if df.empty:
            raise SourceError(f"{what}: no unit overlaps the basin grid; check the layer's CRS and extent")
        dup = df["code"][df["code"].duplicated()].tolist()
        if dup:
            raise SourceError(f"{what}: codes {dup[:5]} appear more than once; each unit needs a unique code")
        parent = by_level.get(src.parent_level) if src.parent_level else None
        if parent is not None:
            pts = gpd.GeoDataFrame(geometry=df.geometry.representative_point(), crs=grid.crs)
            hit = gpd.sjoin(pts, parent[["code", "geometry"]], how="left", predicate="within")
            hit = hit[~hit.index.duplicated()]
            df["parent_code"] = hit["code"].reindex(df.index).astype(object).where(hit["code"].notna(), None)
        else:
            df["parent_code"] = None
        by_level[src.level] = df
        frames.append(df[UNIT_COLUMNS])
    if not frames:
        return gpd.GeoDataFrame(columns=UNIT_COLUMNS, geometry="geometry", crs=grid.crs)
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=grid.crs)


def rasterize_level(units: gpd.GeoDataFrame, grid: Grid) -> np.ndarray:
    """Unit index (row in ``units``) of every cell, -1 outside every unit."""
    dtype = "int16" if len(units) < 32000 else "int32"
    if units.empty:
        return np.full(grid.shape, -1, dtype=dtype)
    shapes = ((g, i) for i, g in enumerate(units.geometry.values))
    return rasterio.features.rasterize(shapes, out_shape=grid.shape, transform=grid.transform, fill=-1, dtype=dtype)


@dataclass(frozen=True)
class Jurisdictions:
    """Administrative units and how the river network relates to them.

    Attributes
    ----------
    units:
        Every unit: code, name, level, parent_code, geometry (twin CRS).
    levels:
        Level names from the top down (e.g. département, arrondissement, commune).
    reach_units:
        Table (reach_id, level, code): the units each reach runs through.
    sections:
        Cross-boundary sections: reach_id, measure_m, level, from/to code and name,
        upstream_area_km2, point geometry.
    shares:
        Table (reach_id, level, code, area_km2, share): the part of each reach's
        upstream area (at its downstream end) in each unit.
    """

    units: gpd.GeoDataFrame
    levels: list[str]
    reach_units: pd.DataFrame
    sections: gpd.GeoDataFrame
    shares: pd.DataFrame

    def at(self, x: float, y: float) -> dict[str, dict[str, str] | None]:
        """The unit holding a point (twin CRS) at every level."""
        p = shapely.Point(x, y)
        out: dict[str, dict[str, str] | None] = {}
        for level in self.levels:
            u = self.units[(self.units["level"] == level) & self.units.contains(p)]
            out[level] = None if u.empty else {"code": u.iloc[0]["code"], "name": u.iloc[0]["name"]}
        return out

    def name_of(self, code: str | None) -> str | None:
        if code is None:
            return None
        hit = self.units.loc[self.units["code"] == code, "name"]
        return None if hit.empty else str(hit.iloc[0])

    @property
    def crossed(self) -> dict[str, list[str]]:
        """The codes of the units the rivers run through, per level."""
        return {
            lv: sorted(self.reach_units.loc[self.reach_units["level"] == lv, "code"].unique().tolist())
            for lv in self.levels
        }


def analyse(
    units: gpd.GeoDataFrame,
    levels: list[str],
    drainage: Drainage,
    reaches: gpd.GeoDataFrame,
    sliver_cells: int,
    section_min_run_m: float,
) -> tuple[Jurisdictions, dict[str, np.ndarray]]:
    """Reach units, cross-boundary sections and upstream-area shares at every level.

    Returns the :class:`Jurisdictions` and the per-level unit rasters (for site lookup).
    """
    grid = drainage.grid
    ncol = grid.shape[1]
    chain, ids, measure, starts = drainage.reach_chains
    xs, ys = grid.xy(chain // ncol, chain % ncol)
    river_rows, river_cols = np.nonzero(drainage.reach > 0)
    sub = drainage.subbasin.ravel()
    n = len(reaches)
    next_down = reaches["next_down"].to_numpy()
    area_cells = drainage.upstream_cells.ravel()
    cell_km2 = grid.cell_area / 1e6
    rasters: dict[str, np.ndarray] = {}
    nd_by_id = np.concatenate([[0], next_down]).astype(np.int64)
    area = reaches["upstream_area_km2"].to_numpy()
    main_up = np.zeros(n + 1, dtype=np.int64)  # the upstream reach with the largest area
    best = np.zeros(n + 1)
    for r in range(1, n + 1):
        d = next_down[r - 1]
        if d and area[r - 1] > best[d]:
            best[d] = area[r - 1]
            main_up[d] = r
    body_end = starts[1:].astype(np.int64) - (next_down > 0)
    cell = abs(grid.transform.a)
    min_run = max(1, int(round(section_min_run_m / cell)))
    ru, secs, shares = [], [], []
    for level in levels:
        lu = units[units["level"] == level].reset_index(drop=True)
        ras = rasterize_level(lu, grid)
        kernels.fill_slivers(ras, river_rows.astype(np.int64), river_cols.astype(np.int64), int(sliver_cells))
        rasters[level] = ras
        codes = np.array([*lu["code"], None], dtype=object)  # index -1 → None
        names = np.array([*lu["name"], None], dtype=object)
        u = ras.ravel()[chain].astype(np.int64)
        # units each reach runs through (connector points belong to the reach below)
        body = np.ones(ids.size, dtype=bool)
        body[body_end[next_down > 0]] = False
        pairs = pd.DataFrame({"reach_id": ids[body], "u": u[body]})
        pairs = pairs[pairs["u"] >= 0].drop_duplicates()
        ru.append(
            pd.DataFrame(
                {"reach_id": pairs["reach_id"].to_numpy(), "level": level, "code": codes[pairs["u"].to_numpy()]}
            )
        )
        # sections: where the effective unit changes along the flow (see kernels.debounce_units)
        fu, tu = kernels.debounce_units(u, starts.astype(np.int64), main_up, nd_by_id, body_end, min_run)
        k = np.flatnonzero(fu > -2)
        if k.size:
            a, b = fu[k], tu[k]
            secs.append(
                gpd.GeoDataFrame(
                    {
                        "reach_id": ids[k],
                        "measure_m": measure[k],
                        "level": level,
                        "from_code": codes[a],
                        "from_name": names[a],
                        "to_code": codes[b],
                        "to_name": names[b],
                        "upstream_area_km2": area_cells[chain[k]] * cell_km2,
                    },
                    geometry=shapely.points(xs[k], ys[k]),
                    crs=grid.crs,
                )
            )
        # shares of upstream area: cells per (sub-basin, unit), summed downstream; sparse, so that
        # memory and work go with the pairs present, not with reaches × units (a national basin has
        # 10^6 reaches and thousands of units)
        sub_of, unit_of, cells = kernels.pair_counts(sub, ras.ravel(), len(lu))
        local_ptr = np.searchsorted(sub_of, np.arange(n + 2))
        ptr, kk, acc = kernels.accumulate_pairs(nd_by_id[1:], local_ptr, unit_of, cells)
        rr = np.repeat(np.arange(n + 1), np.diff(ptr)[: n + 1])  # reach id of each pair
        total = reaches["upstream_area_km2"].to_numpy()
        shares.append(
            pd.DataFrame(
                {
                    "reach_id": rr,
                    "level": level,
                    "code": codes[kk],
                    "area_km2": acc * cell_km2,
                    "share": acc * cell_km2 / total[rr - 1],
                }
            )
        )
    sections = (
        gpd.GeoDataFrame(pd.concat(secs, ignore_index=True), crs=grid.crs)
        if secs
        else gpd.GeoDataFrame(
            {
                c: []
                for c in [
                    "reach_id",
                    "measure_m",
                    "level",
                    "from_code",
                    "from_name",
                    "to_code",
                    "to_name",
                    "upstream_area_km2",
                ]
            },
            geometry=[],
            crs=grid.crs,
        )
    )
    sections = sections.sort_values(["reach_id", "measure_m", "level"]).reset_index(drop=True)
    sections.insert(0, "section_id", np.arange(1, len(sections) + 1))
    empty = pd.DataFrame({"reach_id": [], "level": [], "code": []})
    j = Jurisdictions(
        units=units,
        levels=list(levels),
        reach_units=pd.concat(ru, ignore_index=True) if ru else empty,
        sections=sections,
        shares=pd.concat(shares, ignore_index=True) if shares else empty.assign(area_km2=[], share=[]),
    )
    return j, rasters
