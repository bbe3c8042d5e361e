"""``twin build CATALOG -o DIR``."""

from __future__ import annotations

import json
import shutil
import sys
import uuid

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
@click.option(
    "--tile-size",
    type=int,
    default=None,
    metavar="N",
    help="Build tile by tile, in tiles of N x N cells (bounds each worker's memory); default: in memory up to "
    "2048 x 2048 DEM cells, in tiles of 2048 above.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Worker processes of the local dask cluster that builds the tiles (default: one per core; "
    "0: no cluster, in this process).",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="tcp://HOST:PORT",
    help="Build the tiles on an existing dask cluster; the sources and the output folder must be on a path "
    "every worker sees (local disk, NFS).",
)
def build(
    catalog: str,
    output: str,
    overwrite: bool,
    quiet: bool,
    tile_size: int | None,
    workers: int | None,
    scheduler: str | None,
) -> None:
    """Build a twin from a basin catalog (basin.yml) into a twin folder."""
    from pathlib import Path

    from tqdm import tqdm

    from twin.basin import BUILD_STEPS, BasinTwin
    from twin.errors import OutputExistsError
    from twin.model.cluster import open_runner

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

        def tile_progress(message: str) -> None:
            # tiles done and the dashboard's address: beside the step on the bar, or one line each
            # (at most one a second) when there is no bar
            if bar.disable:
                click.echo(f"twin: {message}", err=True)
            elif message.startswith("dask dashboard"):
                bar.write(message, file=sys.stderr)
            else:
                bar.set_postfix_str(message)

        # a scheduler is reached now, before any work; a local cluster starts only if the build tiles
        # the tiles go beside the output folder, on the same file system (which the workers must see)
        out = out.absolute()
        workdir = out.parent / f".{out.name}.tiles-{uuid.uuid4().hex[:8]}"
        try:
            with open_runner(scheduler=scheduler, workers=workers, progress=None if quiet else tile_progress) as runner:
                basin = BasinTwin.build(catalog, progress=progress, tile_size=tile_size, runner=runner, workdir=workdir)
                basin.save(out, overwrite=overwrite, progress=progress)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
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
