"""Incidents: spills, illegal discharges, sand mining, waste dumping, fish kills, placed on the twin.

An incident arrives with a kind, when it was observed and reported, who reported
it, and a geometry (a point, or a polygon for e.g. a dumping ground) in one of the
coordinate systems of :mod:`twin.model.coords` (WGS84, CGCS2000, GCJ-02 or an EPSG
code). On the way in its coordinates are converted to the twin's CRS and the
record is linked to:

* the units holding it at every jurisdiction level (a polygon: every unit it touches);
* the nearest reach and the measure along it (the geometry's representative point
  snapped to its river, within ``parameters.snap_max_m``; none if it is farther);
* the stations and intakes downstream of that point, nearest first.

The geometry as given and its system are kept too, so the conversion can be checked.
Statuses: ``open`` → ``investigating`` → ``closed`` (a closed incident may be reopened);
every change is an event with its time and note.
"""

from __future__ import annotations

import json
import time as _time
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd
import shapely
import sqlalchemy as sa
from pyproj import Transformer

from twin.errors import OutsideBasinError, SnapError, TwinError
from twin.model import coords
from twin.ops.store import incident_events, incidents

if TYPE_CHECKING:
    from twin.model.model import Model

KINDS = ("spill", "illegal_discharge", "sand_mining", "waste_dumping", "fish_kill", "other")
STATUSES = ("open", "investigating", "closed")


class IncidentError(TwinError, ValueError):
    """An incident that cannot be recorded or changed as asked."""


class UnknownIncidentError(TwinError, LookupError):
    """An incident id that the store does not have."""


def _epoch(t: Any, what: str) -> int:
    try:
        ts = pd.Timestamp(t)
    except (ValueError, TypeError):
        raise IncidentError(f"{what} {t!r} is not a time; give e.g. 2026-07-10T08:00+08:00") from None
    if ts.tzinfo is None:
        raise IncidentError(f"{what} {t!r} has no zone; give it with an offset or Z (e.g. 2026-07-10T08:00+08:00)")
    return int(ts.tz_convert("UTC").timestamp())


def _iso(epoch: int) -> str:
    return pd.Timestamp(epoch, unit="s", tz="UTC").isoformat()


def parse_geometry(geometry: Any) -> shapely.Geometry:
    """A shapely Point or Polygon from (x, y), a GeoJSON geometry (dict or text) or WKT."""
    try:
        if isinstance(geometry, shapely.Geometry):
            geom = geometry
        elif isinstance(geometry, (tuple, list)) and len(geometry) == 2:
            geom = shapely.Point(float(geometry[0]), float(geometry[1]))
        elif isinstance(geometry, dict):
            geom = shapely.geometry.shape(geometry)
        elif isinstance(geometry, str) and geometry.lstrip().startswith("{"):
            geom = shapely.geometry.shape(json.loads(geometry))
        else:
            geom = shapely.from_wkt(str(geometry))
    except (ValueError, TypeError, KeyError, shapely.errors.GEOSException):
        raise IncidentError(
            f"cannot read the incident geometry {str(geometry)[:80]!r}; give (lon, lat), GeoJSON or WKT"
        ) from None
    if geom.geom_type not in ("Point", "Polygon", "MultiPolygon") or geom.is_empty:
        raise IncidentError(f"an incident is a Point or a Polygon, not {geom.geom_type}")
    return geom


class Incidents:
    """The incidents of a twin, kept in its operations store."""

    def __init__(self, model: Model, engine: sa.Engine):
        self.model = model
        self.engine = engine

    # -- writing ----------------------------------------------------------------
    def add(
        self,
        kind: str,
        observed: Any,
        geometry: Any,
        *,
        coord_system: str = "WGS84",
        reported: Any = None,
        reporter: str | None = None,
        description: str | None = None,
        case_id: str | None = None,
    ) -> dict:
        """Record an incident; returns it as :meth:`get` would.

        Raises
        ------
        IncidentError
            Unknown kind, a time without zone, an unreadable geometry.
        CRSError
            An unknown coordinate system.
        OutsideBasinError
            The incident lies outside the basin grid.
        """
        if kind not in KINDS:
            raise IncidentError(f"unknown incident kind {kind!r}; allowed: {list(KINDS)}")
        given = parse_geometry(geometry)
        crs = self.model.crs
        geom = shapely.transform(given, lambda xy: _stack(coords.to_crs(xy[:, 0], xy[:, 1], coord_system, crs)))
        point = geom if geom.geom_type == "Point" else geom.representative_point()
        self.model.drainage.cell_of(point.x, point.y, what=f"incident at {given.wkt[:60]} ({coord_system})")
        units = self._units(geom)
        reach_id, measure, downstream = None, None, []
        try:
            snap = self.model.drainage.snap(point.x, point.y, self.model.catalog.parameters.snap_max_m)
            loc = self.model.network.locate_cell(snap.x, snap.y, int(self.model.drainage.reach.ravel()[snap.cell]))
            reach_id, measure = loc.reach_id, loc.measure_m
            path = self.model.network.downstream(loc)
            sites = self.model.along(path, self.model.sites)
            downstream = [
                {"id": s.id, "name": s.name, "kind": s.kind, "distance_km": round(float(s.distance_km), 3)}
                for s in sites.itertuples()
            ]
        except SnapError:
            pass  # far from any river: no reach, nothing downstream
        obs = _epoch(observed, "observed time")
        rep = _epoch(reported, "reported time") if reported is not None else int(_time.time())
        minx, miny, maxx, maxy = geom.bounds
        now = int(_time.time())
        with self.engine.begin() as conn:
            key = conn.execute(
                incidents.insert().values(
                    kind=kind,
                    status="open",
                    observed=obs,
                    reported=rep,
                    reporter=reporter,
                    description=description,
                    case_id=case_id,
                    coord_system=coord_system,
                    geometry_input=given.wkt,
                    geometry=geom.wkt,
                    minx=minx,
                    miny=miny,
                    maxx=maxx,
                    maxy=maxy,
                    jurisdictions=json.dumps(units, ensure_ascii=False),
                    reach_id=reach_id,
                    measure_m=measure,
                    downstream_stations=json.dumps(downstream, ensure_ascii=False),
                    evidence_ids="[]",
                    updated=now,
                )
            ).inserted_primary_key
            assert key is not None
            conn.execute(
                incident_events.insert().values(incident_id=int(key[0]), time=now, status="open", note="recorded")
            )
        return self.get(int(key[0]))

    def set_status(self, incident_id: int, status: str, note: str | None = None) -> dict:
        """Change an incident's status (an event is kept with the time and note)."""
        if status not in STATUSES:
            raise IncidentError(f"unknown status {status!r}; allowed: {list(STATUSES)}")
        self.get(incident_id)
        now = int(_time.time())
        with self.engine.begin() as conn:
            conn.execute(incidents.update().where(incidents.c.id == incident_id).values(status=status, updated=now))
            conn.execute(incident_events.insert().values(incident_id=incident_id, time=now, status=status, note=note))
        return self.get(incident_id)

    def close(self, incident_id: int, note: str | None = None) -> dict:
        return self.set_status(incident_id, "closed", note)

    # -- reading ----------------------------------------------------------------
    def get(self, incident_id: int) -> dict:
        """One incident as a dict (times ISO 8601 UTC, geometry WKT in the twin CRS, lon/lat of its point)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(incidents).where(incidents.c.id == incident_id)).mappings().first()
            events = (
                conn.execute(
                    sa.select(incident_events)
                    .where(incident_events.c.incident_id == incident_id)
                    .order_by(incident_events.c.id)
                )
                .mappings()
                .all()
            )
        if row is None:
            raise UnknownIncidentError(f"no incident {incident_id}; list them with `twin incident list`")
        return self._record(dict(row), [dict(e) for e in events])

    def _record(self, row: dict, events: list[dict] | None = None) -> dict:
        geom = shapely.from_wkt(row["geometry"])
        p = geom if geom.geom_type == "Point" else geom.representative_point()
        lon, lat = Transformer.from_crs(self.model.crs, "EPSG:4326", always_xy=True).transform(p.x, p.y)
        out = {
            k: row[k]
            for k in (
                "id",
                "kind",
                "status",
                "reporter",
                "description",
                "case_id",
                "coord_system",
                "geometry_input",
                "geometry",
                "reach_id",
                "measure_m",
            )
        }
        out.update(
            observed=_iso(row["observed"]),
            reported=_iso(row["reported"]),
            updated=_iso(row["updated"]),
            lon=round(lon, 6),
            lat=round(lat, 6),
            jurisdictions=json.loads(row["jurisdictions"]),
            downstream_stations=json.loads(row["downstream_stations"]),
            evidence_ids=json.loads(row["evidence_ids"]),
        )
        if events is not None:
            out["events"] = [{"time": _iso(e["time"]), "status": e["status"], "note": e["note"]} for e in events]
        return out

    def list(
        self,
        start: Any = None,
        end: Any = None,
        bbox: tuple[float, float, float, float] | None = None,
        kind: str | None = None,
        jurisdiction: str | None = None,
        status: str | None = None,
    ) -> gpd.GeoDataFrame:
        """Incidents observed in a time window, in a lon/lat box, of a kind, in a unit (by code)."""
        q = sa.select(incidents)
        if start is not None:
            q = q.where(incidents.c.observed >= _epoch(start, "start"))
        if end is not None:
            q = q.where(incidents.c.observed <= _epoch(end, "end"))
        if kind is not None:
            if kind not in KINDS:
                raise IncidentError(f"unknown incident kind {kind!r}; allowed: {list(KINDS)}")
            q = q.where(incidents.c.kind == kind)
        if status is not None:
            q = q.where(incidents.c.status == status)
        if jurisdiction is not None:
            q = q.where(incidents.c.jurisdictions.like(f'%"{jurisdiction}"%'))
        if bbox is not None:
            x0, y0, x1, y1 = shapely.box(*bbox).exterior.bounds
            box = shapely.transform(
                shapely.box(x0, y0, x1, y1).segmentize(0.01),
                lambda xy: _stack(coords.to_crs(xy[:, 0], xy[:, 1], "WGS84", self.model.crs)),
            )
            bx0, by0, bx1, by1 = box.bounds
            q = q.where(
                incidents.c.maxx >= bx0, incidents.c.minx <= bx1, incidents.c.maxy >= by0, incidents.c.miny <= by1
            )
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(q.order_by(incidents.c.observed)).mappings().all()]
        records = [self._record(r) for r in rows]
        geoms = [shapely.from_wkt(r["geometry"]) for r in rows]
        return gpd.GeoDataFrame(pd.DataFrame(records), geometry=geoms, crs=self.model.crs)

    def _units(self, geom: shapely.Geometry) -> dict[str, Any]:
        units = self.model.jurisdictions.units
        hit = units[units.intersects(geom)]
        return {lv: sorted(hit.loc[hit["level"] == lv, "code"].astype(str)) for lv in self.model.jurisdictions.levels}


def _stack(xy: tuple) -> Any:
    import numpy as np

    return np.column_stack([np.asarray(xy[0], dtype=float), np.asarray(xy[1], dtype=float)])


__all__ = ["KINDS", "STATUSES", "IncidentError", "Incidents", "OutsideBasinError", "UnknownIncidentError"]
