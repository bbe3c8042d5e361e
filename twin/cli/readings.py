"""``twin ingest``, ``twin readings`` and ``twin stations``."""

from __future__ import annotations

import json

import click

from twin.ops.formats import FORMATS


@click.command()
@click.argument("twin_dir", type=click.Path(file_okay=False))
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS.names()),
    default=None,
    help="Input format (guessed from the file's name and first bytes when not given; see twin.ops.formats).",
)
def ingest(twin_dir: str, file: str, fmt: str | None) -> None:
    """Ingest readings from FILE; prints counts: stored, duplicates, corrections, rejected by reason.

    Exits with status 1 (after the counts) when every row of FILE was rejected.
    """
    from twin.basin import BasinTwin

    report = BasinTwin.open(twin_dir).readings.ingest(file, fmt)
    click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    if len(report.rejected) and not report.accepted:
        click.echo(
            f"Error: every row of {file} was rejected ({len(report.rejected)} rows, counted by reason above); "
            "nothing was stored",
            err=True,
        )
        raise SystemExit(1)


@click.command()
@click.argument("twin_dir", type=click.Path(file_okay=False))
@click.option("--station", "stations", multiple=True, help="Station id (repeatable; default all).")
@click.option("--param", "params", multiple=True, help="Parameter id, e.g. NH3-N (repeatable; default all).")
@click.option("--from", "start", default=None, help="Start time with zone, e.g. 2026-07-10T00:00+08:00.")
@click.option("--to", "end", default=None, help="End time with zone.")
def readings(
    twin_dir: str, stations: tuple[str, ...], params: tuple[str, ...], start: str | None, end: str | None
) -> None:
    """Readings as CSV on stdout (latest version of each; times in UTC)."""
    import sys

    from twin.basin import BasinTwin

    df = BasinTwin.open(twin_dir).readings.query(list(stations) or None, list(params) or None, start, end)
    df["time"] = df["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    df.to_csv(sys.stdout, index=False)


@click.command()
@click.argument("twin_dir", type=click.Path(file_okay=False))
@click.option(
    "--add",
    "add",
    type=click.Path(dir_okay=False),
    default=None,
    help="CSV of stations to register (id,name,kind,water_body,target_class[,lon,lat]).",
)
def stations(twin_dir: str, add: str | None) -> None:
    """List the stations of the operations store, or register more (e.g. stations off the network)."""
    import sys

    import pandas as pd
    import sqlalchemy as sa

    from twin.basin import BasinTwin
    from twin.ops.errors import IngestError
    from twin.ops.store import stations as table

    basin = BasinTwin.open(twin_dir)
    if add:
        try:
            df = pd.read_csv(add, dtype={"id": str}, encoding="utf-8-sig")
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise IngestError(f"cannot read station list '{add}' ({err}); give a CSV with id,name,...") from None
        missing = {"id", "name"} - set(df.columns)
        if missing:
            raise IngestError(f"station list '{add}' lacks column(s) {sorted(missing)}")
        n = basin.readings.register_stations(df)
        click.echo(json.dumps({"registered": n}))
        return
    with basin.store.connect() as conn:
        out = pd.DataFrame(conn.execute(sa.select(table)).mappings().all())
    out.to_csv(sys.stdout, index=False)


@click.command()
@click.argument("twin_dir", type=click.Path(file_okay=False))
@click.option("--at", default=None, help="Time with zone (default now): each station's latest readings before it.")
@click.option(
    "--max-age", "max_age", type=float, default=24.0, show_default=True, help="Hours a reading stays current for --at."
)
@click.option("--from", "start", default=None, help="Classify every sample from this time (with zone) instead.")
@click.option("--to", "end", default=None, help="... to this time.")
@click.option("--json", "as_json", is_flag=True, help="JSON records instead of a table.")
def classify(twin_dir: str, at: str | None, max_age: float, start: str | None, end: str | None, as_json: bool) -> None:
    """GB 3838-2002 water-quality class of the stations (I..V, 劣V), the deciding parameters and exceedances."""
    from twin.basin import BasinTwin

    basin = BasinTwin.open(twin_dir)
    df = basin.classify_history(start, end) if start or end else basin.classify(at, max_age)
    if as_json:
        df = df.copy()
        if "time" in df:
            df["time"] = df["time"].map(lambda t: t.isoformat() if hasattr(t, "isoformat") else t)
        click.echo(df.to_json(orient="records", force_ascii=False))
        return
    cols = [c for c in ("station", "name", "time", "label", "deciding", "exceeds", "target_class") if c in df]
    click.echo(df[cols].to_string(index=False) if len(df) else "no readings in that window")
