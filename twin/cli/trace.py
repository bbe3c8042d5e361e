"""``twin trace``: downstream report of a release, or upstream candidates of an anomaly; JSON on stdout."""

from __future__ import annotations

import json

import click

from twin.cli.navigate import flow_ratio_opt


@click.command()
@click.argument("twin_dir", type=click.Path(file_okay=False))
@click.option("--downstream", "direction", flag_value="downstream", help="Trace a release at --lon/--lat downstream.")
@click.option("--upstream", "direction", flag_value="upstream", help="Find the sources of an anomaly at --station.")
@click.option("--lon", type=float, default=None, help="Longitude (WGS 84) of the release (--downstream).")
@click.option("--lat", type=float, default=None, help="Latitude (WGS 84) of the release (--downstream).")
@click.option("--station", default=None, help="Station id where the anomaly was measured (--upstream).")
@click.option(
    "--warning",
    "warning_id",
    type=int,
    default=None,
    help="Trace an issued warning (id from `twin alerts --issued`) at its own time (its end, or its start while active) instead of --station/--param/--at (--upstream).",
)
@click.option("--at", "at", default=None, help="Release time (--downstream) or anomaly time (--upstream), with zone.")
@click.option(
    "--mass",
    "mass_kg",
    type=click.FloatRange(min=0, min_open=True),
    default=100.0,
    show_default=True,
    help="Released mass in kg (--downstream).",
)
@click.option("--param", "parameter", default="NH3-N", show_default=True, help="Parameter of the substance.")
@click.option(
    "--duration",
    "duration_h",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Release duration in hours (--downstream).",
)
@click.option(
    "--decay",
    "decay_per_hour",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="First-order decay rate of the substance, 1/hour (e.g. settling sediment).",
)
@click.option(
    "--window",
    "window_hours",
    type=click.FloatRange(min=0, min_open=True),
    default=48.0,
    show_default=True,
    help="Travel-time window upstream, hours (--upstream).",
)
@flow_ratio_opt
def trace(
    twin_dir,
    direction,
    lon,
    lat,
    station,
    warning_id,
    at,
    mass_kg,
    parameter,
    duration_h,
    decay_per_hour,
    window_hours,
    flow_ratio,
):
    """Downstream: who a release reaches, when and how badly. Upstream: the likeliest sources of an anomaly."""
    from twin.analysis.tracing import TraceError
    from twin.basin import BasinTwin

    basin = BasinTwin.open(twin_dir)
    if direction == "upstream":
        from twin.analysis.tracing import trace_upstream, trace_warning

        options = {"window_hours": window_hours, "flow_ratio": flow_ratio, "decay_per_hour": decay_per_hour}
        if warning_id is not None:
            warning, ranked = trace_warning(basin.model, basin.store, warning_id, **options)
            station, parameter, at = warning["station_id"], warning["parameter"], warning["traced_at"]
        elif not station or not at:
            raise TraceError("--upstream needs --station ID and --at TIME (or --warning ID)")
        else:
            ranked = trace_upstream(basin.model, basin.store, station, parameter, at, **options)
        ranked["release_time"] = ranked["release_time"].map(lambda t: t.isoformat())
        click.echo(
            json.dumps(
                {"station": station, "parameter": parameter, "at": at, "candidates": ranked.to_dict("records")},
                ensure_ascii=False,
                default=str,
            )
        )
        return
    if direction != "downstream" or lon is None or lat is None or at is None:
        raise TraceError("give --downstream with --lon, --lat and --at, or --upstream with --station and --at")
    from twin.analysis.impact import downstream_report

    report = downstream_report(
        basin,
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
