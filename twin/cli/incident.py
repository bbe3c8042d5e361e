"""``twin incident add|list|show|status|close``."""

from __future__ import annotations

import json

import click

from twin.ops.incidents import KINDS, STATUSES


def _basin(twin_dir: str):
    from twin.basin import BasinTwin

    return BasinTwin.open(twin_dir)


@click.group()
def incident() -> None:
    """Record and follow incidents (spills, discharges, sand mining, dumping, fish kills)."""


@incident.command("add")
@click.argument("twin_dir", type=click.Path(file_okay=False))
@click.option("--kind", type=click.Choice(KINDS), required=True)
@click.option("--observed", required=True, help="When it was observed, with zone (e.g. 2026-07-10T06:00+08:00).")
@click.option("--lon", type=float, help="Longitude (or x) of a point incident.")
@click.option("--lat", type=float, help="Latitude (or y) of a point incident.")
@click.option("--geometry", "geometry", help="GeoJSON geometry or WKT instead of --lon/--lat (e.g. a polygon).")
@click.option(
    "--crs",
    "coord_system",
    default="WGS84",
    show_default=True,
    help="Coordinate system of the input: WGS84, CGCS2000, GCJ-02 or EPSG:xxxx.",
)
@click.option("--reported", default=None, help="When it was reported (default: now).")
@click.option("--reporter", default=None)
@click.option("--description", default=None)
@click.option("--case", "case_id", default=None, help="Case id it belongs to.")
def add(twin_dir, kind, observed, lon, lat, geometry, coord_system, reported, reporter, description, case_id):
    """Record an incident; prints it as JSON (with its units, reach and the stations downstream)."""
    from twin.ops.incidents import IncidentError

    if geometry is None:
        if lon is None or lat is None:
            raise IncidentError("give --lon and --lat, or --geometry")
        geometry = (lon, lat)
    rec = _basin(twin_dir).incidents.add(
        kind,
        observed,
        geometry,
        coord_system=coord_system,
        reported=reported,
        reporter=reporter,
        description=description,
        case_id=case_id,
    )
    click.echo(json.dumps(rec, ensure_ascii=False))


@incident.command("list")
@click.argument("twin_dir", type=click.Path(file_okay=False))
@click.option("--from", "start", default=None, help="Observed at or after (with zone).")
@click.option("--to", "end", default=None, help="Observed at or before (with zone).")
@click.option("--bbox", default=None, help="lon0,lat0,lon1,lat1 (WGS84).")
@click.option("--kind", type=click.Choice(KINDS), default=None)
@click.option("--status", type=click.Choice(STATUSES), default=None)
@click.option("--jurisdiction", default=None, help="Code of a unit at any level (e.g. 48).")
def list_(twin_dir, start, end, bbox, kind, status, jurisdiction):
    """Incidents as a GeoJSON FeatureCollection (WGS84)."""
    from twin.ops.incidents import IncidentError

    box = None
    if bbox:
        try:
            box = tuple(float(v) for v in bbox.split(","))
        except ValueError:
            box = ()
        if len(box) != 4:
            raise IncidentError(f"--bbox {bbox!r} must be four numbers lon0,lat0,lon1,lat1")
    gdf = _basin(twin_dir).incidents.list(start, end, box, kind, jurisdiction, status)
    if gdf.empty:
        click.echo(json.dumps({"type": "FeatureCollection", "features": []}))
        return
    gdf = gdf.drop(columns=["geometry_input"]).rename(columns={"geometry": "geometry"})
    gdf["jurisdictions"] = gdf["jurisdictions"].map(lambda v: json.dumps(v, ensure_ascii=False))
    gdf["downstream_stations"] = gdf["downstream_stations"].map(lambda v: json.dumps(v, ensure_ascii=False))
    gdf["evidence_ids"] = gdf["evidence_ids"].map(json.dumps)
    click.echo(gdf.to_crs("EPSG:4326").to_json(na="null", drop_id=True, ensure_ascii=False))


@incident.command("show")
@click.argument("twin_dir", type=click.Path(file_okay=False))
@click.argument("incident_id", type=int)
def show(twin_dir, incident_id):
    """One incident as JSON, with its history."""
    click.echo(json.dumps(_basin(twin_dir).incidents.get(incident_id), ensure_ascii=False, indent=2))


@incident.command("status")
@click.argument("twin_dir", type=click.Path(file_okay=False))
@click.argument("incident_id", type=int)
@click.argument("status", type=click.Choice(STATUSES))
@click.option("--note", default=None)
def status(twin_dir, incident_id, status, note):
    """Change an incident's status."""
    rec = _basin(twin_dir).incidents.set_status(incident_id, status, note)
    click.echo(json.dumps({"id": rec["id"], "status": rec["status"]}))


@incident.command("close")
@click.argument("twin_dir", type=click.Path(file_okay=False))
@click.argument("incident_id", type=int)
@click.option("--note", default=None)
def close(twin_dir, incident_id, note):
    """Close an incident."""
    rec = _basin(twin_dir).incidents.close(incident_id, note)
    click.echo(json.dumps({"id": rec["id"], "status": rec["status"]}))
