"""``twin catchment`` and ``twin downstream``: GeoJSON (WGS 84) on stdout."""

from __future__ import annotations

import json

import click

lon_opt = click.option("--lon", type=float, required=True, help="Longitude (WGS 84) of the point.")
lat_opt = click.option("--lat", type=float, required=True, help="Latitude (WGS 84) of the point.")
flow_ratio_opt = click.option(
    "--flow-ratio",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Discharge as a multiple of the mean annual discharge (for travel times).",
)


def _features(gdf, kind: str) -> list[dict]:
    if gdf.empty:
        return []
    fc = json.loads(gdf.to_crs("EPSG:4326").to_json(na="null", drop_id=True))
    for f in fc["features"]:
        props = f["properties"]
        if "kind" in props:  # a site's own kind (station, intake...) must not hide the feature's kind
            props[f"{kind}_kind"] = props.pop("kind")
        f["properties"] = {"kind": kind, **props}
    return fc["features"]


@click.command()
@click.argument("twin_dir", type=click.Path(file_okay=False))
@lon_opt
@lat_opt
@click.option("--no-snap", is_flag=True, help="Use the point's own cell instead of snapping it to its river.")
def catchment(twin_dir: str, lon: float, lat: float, no_snap: bool) -> None:
    """The catchment of a point, as a GeoJSON Feature."""
    from twin.basin import BasinTwin

    basin = BasinTwin.open(twin_dir)
    gdf = basin.catchment(lon, lat, snap=not no_snap)
    click.echo(json.dumps(_features(gdf, "catchment")[0], ensure_ascii=False))


@click.command()
@click.argument("twin_dir", type=click.Path(file_okay=False))
@lon_opt
@lat_opt
@click.option(
    "--max-km",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop after this many km along the river.",
)
@click.option(
    "--max-hours",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop where the peak of a release arrives after this many hours.",
)
@flow_ratio_opt
def downstream(
    twin_dir: str, lon: float, lat: float, max_km: float | None, max_hours: float | None, flow_ratio: float
) -> None:
    """The downstream path of a point: reach pieces, cross-boundary sections and sites, as GeoJSON."""
    from twin.basin import BasinTwin

    basin = BasinTwin.open(twin_dir)
    path, sections, sites = basin.downstream(lon, lat, max_km=max_km, max_hours=max_hours, flow_ratio=flow_ratio)
    features = _features(path, "reach") + _features(sections, "section") + _features(sites, "site")
    length = float(path["to_km"].max()) if len(path) else 0.0
    hours = float(path["peak_h"].max()) if len(path) else 0.0
    out = {
        "type": "FeatureCollection",
        "features": features,
        "properties": {
            "start": [lon, lat],
            "length_km": round(length, 3),
            "peak_hours": round(hours, 3),
            "sections": len(sections),
            "sites": len(sites),
        },
    }
    click.echo(json.dumps(out, ensure_ascii=False))
