"""``twin build CATALOG -o DIR``."""

from __future__ import annotations

import json

import click


@click.command()
@click.argument("catalog", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(file_okay=False),
    help="Twin folder to write (must not exist unless --overwrite).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing twin folder (only once the new one is complete).")
@click.option("--quiet", is_flag=True, help="No progress bar (there is none either when stderr is not a terminal).")
def build(catalog: str, output: str, overwrite: bool, quiet: bool) -> None:
    """Build a twin from a basin catalog (basin.yml) into a twin folder."""
    from pathlib import Path

    from tqdm import tqdm

    from twin.basin import BUILD_STEPS, BasinTwin
    from twin.errors import OutputExistsError

    out = Path(output)
    if out.exists() and not overwrite:  # fail before minutes of work, not after
        raise OutputExistsError(f"output folder '{out}' exists; choose another path, remove it, or pass --overwrite")
    steps = list(BUILD_STEPS) + ["write rasters", "write vectors", "write manifest"]
    with tqdm(total=len(steps), desc="build", unit="step", disable=True if quiet else None, leave=False) as bar:
        started: list[str] = []

        def progress(step: str) -> None:
            if started:
                bar.update(1)
            started.append(step)
            bar.set_description(step)

        basin = BasinTwin.build(catalog, progress=progress)
        basin.save(out, overwrite=overwrite, progress=progress)
        bar.update(bar.total - bar.n)
    info = basin.info()
    click.echo(
        json.dumps(
            {
                "twin": str(out),
                "reaches": info["reaches"],
                "cells": info["cells"],
                "sections": info["cross_boundary_sections"],
            },
            ensure_ascii=False,
        )
    )
