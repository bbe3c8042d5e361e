"""``twin trace --downstream``: the downstream report of a release, as JSON."""

from __future__ import annotations

import json

import click


@click.command()
@click.argument("twin_dir", type=click.Path(file_okay=False))
@click.option(
    "--downstream",
    "downstream_",
    is_flag=True,
    required=True,
    help="Trace a release downstream (upstream tracing comes with a later version).",
)
@click.option("--lon", type=float, required=True, help="Longitude (WGS 84) of the release.")
@click.option("--lat", type=float, required=True, help="Latitude (WGS 84) of the release.")
@click.option("--at", "at", required=True, help="Release time, with zone (e.g. 2026-08-01T06:00+02:00).")
@click.option(
    "--mass",
    "mass_kg",
    type=click.FloatRange(min=0, min_open=True),
    default=100.0,
    show_default=True,
    help="Released mass (kg).",
)
@click.option(
    "--param", "parameter", default="NH3-N", show_default=True, help="Parameter the substance is measured as."
)
@click.option(
    "--duration",
    "duration_h",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Release duration (hours).",
)
@click.option(
    "--decay",
    "decay_per_hour",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="First-order decay rate (1/hour).",
)
@click.option(
    "--flow-ratio",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Discharge as a multiple of the mean annual discharge.",
)
def trace(twin_dir, downstream_, lon, lat, at, mass_kg, parameter, duration_h, decay_per_hour, flow_ratio):
    """Who a release reaches downstream, when (earliest, most likely, passed) and how badly (peak, class)."""
    from ..basin import BasinTwin
    from ..impact import downstream_report

    report = downstream_report(
        BasinTwin.open(twin_dir),
        lon,
        lat,
        at,
        mass_kg,
        parameter,
        duration_s=duration_h * 3600,
        decay_per_hour=decay_per_hour,
        flow_ratio=flow_ratio,
    )
    out = {
        "release": report["release"],
        "entries": [
            {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in e.items()} for e in report["entries"]
        ],
    }
    click.echo(json.dumps(out, ensure_ascii=False))
