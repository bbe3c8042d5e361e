"""``twin scenario DIR NAME --seed N``: simulated readings and an incident with a known answer."""

from __future__ import annotations

import json

import click

from twin.analysis.scenarios import SCENARIOS


@click.command()
@click.argument("twin_dir", type=click.Path(file_okay=False))
@click.argument("name", type=click.Choice(sorted(SCENARIOS)))
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--start", default="2026-09-01T00:00Z", show_default=True, help="First day of the scenario (with zone).")
@click.option("--days", type=click.IntRange(min=2, max=60), default=6, show_default=True)
def scenario(twin_dir: str, name: str, seed: int, start: str, days: int) -> None:
    """Write a training scenario into the twin's store; prints the true answer (also saved in the twin folder)."""
    from twin.analysis.scenarios import run
    from twin.basin import BasinTwin

    basin = BasinTwin.open(twin_dir)
    truth = run(basin.model, basin.store, name, seed, start, days, folder=basin.path)
    click.echo(json.dumps(truth, ensure_ascii=False))
