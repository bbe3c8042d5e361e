"""River network: reaches between confluences, navigation, linear referencing.

The reach table follows NHDPlus's idea: one row per reach with its id, the id
of the reach it flows into (``next_down``, 0 at an outlet), length, slope,
upstream area, Strahler order and mean annual discharge. Reach ids are
numbered upstream-first, so ``next_down > reach_id`` for every reach that is
not an outlet: iterating ids in ascending order visits every reach after all
the reaches upstream of it.

Navigation follows USGS NLDI: downstream main stem, upstream main stem,
upstream with tributaries, each bounded by distance. A reach's geometry runs
through its cell centres from upstream to downstream and ends at the first
cell of the next reach, so the lines of the network connect.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.ops import substring

from twin.errors import UnknownReachError
from twin.model.drainage import Drainage
from twin.model.terrain import Terrain
from twin.model.transport import LEADING_EDGE_FRACTION, max_probable_velocity, peak_velocity


def build_reaches(
    terrain: Terrain, drainage: Drainage, *, runoff_mm_per_year: float, min_slope: float
) -> gpd.GeoDataFrame:
    """The reach table with geometries, from the routed grid.

    Mean annual discharge ``qa_m3s`` = upstream area × mean annual runoff depth
    (a basin parameter, from which a gauge may later depart); ``velocity_ms`` is
    Jobson's peak velocity at that discharge (:mod:`twin.model.transport`).
    """
    grid = drainage.grid
    ncol = grid.shape[1]
    cells, ids, starts = drainage.reach_cells
    n = len(starts) - 1
    last = cells[starts[1:] - 1]
    connector = drainage.down_of(last)
    has_conn = connector >= 0
    reach = drainage.reach.ravel()
    next_down = np.where(has_conn, reach[np.maximum(connector, 0)], 0)

    chain, chain_ids, measure, chain_starts = drainage.reach_chains
    x, y = grid.xy(chain // ncol, chain % ncol)
    length = measure[chain_starts[1:] - 1] if n else np.zeros(0)
    # A one-cell reach at an outlet (a confluence right at the grid's edge) has a one-point
    # chain: draw it as a half-cell stub from its centre, continuing the flow of its largest
    # upstream reach (eastwards if it has none), so that the lines still connect.
    cell = abs(grid.transform.a)
    single = length <= 0
    geoms = np.empty(n, dtype=object)
    ok = ~single
    if ok.any():
        keep = ok[chain_ids - 1]
        _, inv = np.unique(chain_ids[keep], return_inverse=True)
        geoms[ok] = shapely.linestrings(np.column_stack([x[keep], y[keep]]), indices=inv)
    if single.any():
        acc = drainage.upstream_cells.ravel()
        for k in np.flatnonzero(single):
            c = cells[starts[k]]
            cx, cy = (float(v) for v in grid.xy(c // ncol, c % ncol))
            ups = np.flatnonzero(next_down == k + 1)
            dx, dy = 1.0, 0.0
            if ups.size:
                u = ups[np.argmax(acc[last[ups]])]
                p = cells[starts[u + 1] - 1]
                px, py = (float(v) for v in grid.xy(p // ncol, p % ncol))
                norm = float(np.hypot(cx - px, cy - py))
                dx, dy = (cx - px) / norm, (cy - py) / norm
            geoms[k] = shapely.LineString([(cx, cy), (cx + dx * cell / 2, cy + dy * cell / 2)])
        length = np.where(single, cell / 2, length)

    filled = terrain.conditioned.ravel()
    first = cells[starts[:-1]]
    z_up = filled[first]
    z_down = np.where(has_conn, filled[np.maximum(connector, 0)], filled[last])
    slope = np.maximum((z_up - z_down) / length, min_slope)
    area_km2 = drainage.upstream_cells.ravel()[last] * grid.cell_area / 1e6
    qa = area_km2 * 1e6 * runoff_mm_per_year / 1000.0 / (365.25 * 86400.0)
    df = gpd.GeoDataFrame(
        {
            "reach_id": np.arange(1, n + 1, dtype=np.int64),
            "next_down": next_down.astype(np.int64),
            "length_m": length,
            "slope": slope,
            "elev_up_m": z_up.astype(float),
            "elev_down_m": z_down.astype(float),
            "upstream_area_km2": area_km2,
            "strahler": drainage.strahler.ravel()[last].astype(np.int64),
            "qa_m3s": qa,
            "velocity_ms": peak_velocity(area_km2 * 1e6, qa, qa, slope),
        },
        geometry=list(geoms),
        crs=grid.crs,
    )
    return df.set_index("reach_id", drop=False)


@dataclass(frozen=True)
class Location:
    """A point on the network: reach and distance from the reach's upstream end."""

    reach_id: int
    measure_m: float
    x: float
    y: float
    snap_distance_m: float


class Network:
    """The river network: reach table, navigation and linear referencing.

    Parameters
    ----------
    reaches:
        The reach table (see :func:`build_reaches`), indexed by ``reach_id``.
    """

    def __init__(self, reaches: gpd.GeoDataFrame):
        self.reaches = reaches
        nd = reaches["next_down"].to_numpy()
        ids = reaches["reach_id"].to_numpy()
        self._next = dict(zip(ids.tolist(), nd.tolist()))
        ups: dict[int, list[int]] = {}
        for r, d in zip(ids.tolist(), nd.tolist()):
            if d:
                ups.setdefault(d, []).append(r)
        self._up = ups
        self._area = dict(zip(ids.tolist(), reaches["upstream_area_km2"].tolist()))

    def __len__(self) -> int:
        return len(self.reaches)

    @property
    def total_length_km(self) -> float:
        return float(self.reaches["length_m"].sum() / 1000.0)

    def reach(self, reach_id: int) -> pd.Series:
        try:
            return self.reaches.loc[int(reach_id)]
        except KeyError:
            raise UnknownReachError(f"no reach {reach_id}; reach ids run 1..{len(self.reaches)}") from None

    def locate_cell(self, x: float, y: float, reach_id: int, snap_distance_m: float = 0.0) -> Location:
        """Linear referencing: the measure of a point along a given reach."""
        line = self.reach(reach_id).geometry
        m = float(line.project(shapely.Point(x, y)))
        p = line.interpolate(m)
        return Location(int(reach_id), m, p.x, p.y, snap_distance_m)

    def upstream_ids(self, reach_id: int, mainstem: bool = False) -> list[int]:
        """Reaches upstream of a reach (not itself), nearest first."""
        out: list[int] = []
        todo = [int(reach_id)]
        while todo:
            r = todo.pop(0)
            ups = self._up.get(r, [])
            if mainstem and ups:
                ups = [max(ups, key=lambda u: self._area[u])]
            out.extend(ups)
            todo.extend(ups)
        return out

    def downstream_ids(self, reach_id: int) -> list[int]:
        """The reach and every reach below it to the outlet, in flow order."""
        out = [int(self.reach(reach_id)["reach_id"])]
        while self._next[out[-1]]:
            out.append(self._next[out[-1]])
        return out

    def velocities(self, reach_ids: list[int], flow_ratio: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Jobson peak (Vp) and most probable maximum (Vmp) velocities (m/s) of reaches.

        ``flow_ratio`` is the current discharge over the mean annual discharge (Q/Qa).
        """
        if flow_ratio <= 0:
            raise ValueError(f"flow_ratio must be positive (Q / Qa), got {flow_ratio}")
        r = self.reaches.loc[reach_ids]
        area = r["upstream_area_km2"].to_numpy() * 1e6
        qa = r["qa_m3s"].to_numpy()
        slope = r["slope"].to_numpy()
        return (
            np.asarray(peak_velocity(area, qa, qa * flow_ratio, slope), dtype=float),
            np.asarray(max_probable_velocity(area, qa, qa * flow_ratio, slope), dtype=float),
        )

    def downstream(
        self, start: Location, max_km: float | None = None, max_hours: float | None = None, flow_ratio: float = 1.0
    ) -> gpd.GeoDataFrame:
        """The downstream main stem from a location, bounded by distance and/or travel time.

        Returns a GeoDataFrame, one row per reach piece in flow order, with the
        reach's columns plus ``from_km`` / ``to_km`` (distance from the start along
        the river), travel times of a release at the start to the piece's
        downstream end (Jobson 1996, at ``flow_ratio`` × mean annual discharge):
        ``peak_h`` (the peak, at Vp), ``earliest_h`` (the peak at the most probable
        maximum velocity Vmp: the earliest it may come) and ``leading_h`` (the
        leading edge, 0.89 of the peak's time), ``from_h`` (the peak at the
        piece's upstream end), and the piece's geometry. ``max_hours`` bounds the
        path by the peak's travel time.
        """
        limit = np.inf if max_km is None else max_km * 1000.0
        tlimit = np.inf if max_hours is None else max_hours * 3600.0
        ids = self.downstream_ids(start.reach_id)
        vp, vmp = self.velocities(ids, flow_ratio)
        rows, pieces, km, hours = [], [], [], []
        done = t_done = t_early = 0.0
        for k, r in enumerate(ids):
            line = self.reaches.at[r, "geometry"]
            a = start.measure_m if k == 0 else 0.0
            b = line.length
            b = min(b, a + (limit - done), a + (tlimit - t_done) * vp[k])
            if b <= a and k > 0:
                break
            pieces.append(substring(line, a, b) if (a > 0 or b < line.length) else line)
            km.append((done / 1000.0, (done + b - a) / 1000.0))
            hours.append((t_done / 3600.0, (t_done + (b - a) / vp[k]) / 3600.0, (t_early + (b - a) / vmp[k]) / 3600.0))
            rows.append(r)
            done += b - a
            t_done += (b - a) / vp[k]
            t_early += (b - a) / vmp[k]
            if done >= limit or t_done >= tlimit:
                break
        out = self.reaches.loc[rows].drop(columns="geometry").reset_index(drop=True)
        out["from_km"] = [a for a, _ in km]
        out["to_km"] = [b for _, b in km]
        out["from_h"] = [h[0] for h in hours]
        out["peak_h"] = [h[1] for h in hours]
        out["earliest_h"] = [h[2] for h in hours]
        out["from_earliest_h"] = np.concatenate([[0.0], out["earliest_h"].to_numpy()[:-1]]) if len(out) else []
        out["leading_h"] = out["peak_h"] * LEADING_EDGE_FRACTION
        return gpd.GeoDataFrame(out, geometry=pieces, crs=self.reaches.crs)

    def upstream(
        self,
        start: Location,
        max_km: float | None = None,
        mainstem: bool = False,
        max_hours: float | None = None,
        flow_ratio: float = 1.0,
    ) -> gpd.GeoDataFrame:
        """Upstream from a location (main stem or with tributaries), bounded by distance and/or travel time.

        ``from_km`` / ``to_km`` are distances from the start going upstream
        (``from_km`` at the downstream end of the piece); ``from_h`` / ``to_h`` the
        time the peak of a release at either end takes to reach the start (Jobson
        velocities at ``flow_ratio`` × mean annual flow). ``max_hours`` keeps what
        can reach the start within that time.
        """
        limit = np.inf if max_km is None else max_km * 1000.0
        tlimit = np.inf if max_hours is None else max_hours * 3600.0
        vel: dict[int, float] = {}

        def vp(r: int) -> float:
            if r not in vel:
                vel[r] = float(self.velocities([r], flow_ratio)[0][0])
            return vel[r]

        rows, pieces, km, hours = [], [], [], []
        line0 = self.reach(start.reach_id).geometry
        b0 = start.measure_m
        a0 = max(0.0, b0 - limit, b0 - tlimit * vp(start.reach_id))
        rows.append(start.reach_id)
        pieces.append(substring(line0, a0, b0))
        km.append((0.0, (b0 - a0) / 1000.0))
        hours.append((0.0, (b0 - a0) / vp(start.reach_id) / 3600.0))
        # distance and time from each reach's upstream end to the start
        base = {start.reach_id: (b0, b0 / vp(start.reach_id))}
        todo = [start.reach_id]
        while todo:
            r = todo.pop(0)
            ups = self._up.get(r, [])
            if mainstem and ups:
                ups = [max(ups, key=lambda u: self._area[u])]
            for u in ups:
                d0, t0 = base[r]
                if d0 >= limit or t0 >= tlimit:
                    continue
                line = self.reaches.at[u, "geometry"]
                a = max(0.0, line.length - (limit - d0), line.length - (tlimit - t0) * vp(u))
                rows.append(u)
                pieces.append(line if a == 0 else substring(line, a, line.length))
                km.append((d0 / 1000.0, (d0 + line.length - a) / 1000.0))
                hours.append((t0 / 3600.0, (t0 + (line.length - a) / vp(u)) / 3600.0))
                base[u] = (d0 + line.length, t0 + line.length / vp(u))
                todo.append(u)
        out = self.reaches.loc[rows].drop(columns="geometry").reset_index(drop=True)
        out["from_km"] = [a for a, _ in km]
        out["to_km"] = [b for _, b in km]
        out["from_h"] = [a for a, _ in hours]
        out["to_h"] = [b for _, b in hours]
        return gpd.GeoDataFrame(out, geometry=pieces, crs=self.reaches.crs)
