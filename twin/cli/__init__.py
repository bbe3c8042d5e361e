"""``twin``: the command line over the library (a thin click group).

Each command lives in its own small module and imports what it needs inside the
command. Data (JSON, GeoJSON) goes to stdout, logs and progress to stderr. A
:class:`twin.TwinError` becomes one line on stderr and exit status 1.
"""

from __future__ import annotations

import logging
import sys

import click

from twin.errors import TwinError


class TwinGroup(click.Group):
    """A click group that turns a TwinError into one line and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except TwinError as err:
            click.echo(f"twin: error: {err}", err=True)
            ctx.exit(1)


@click.group(cls=TwinGroup)
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-v info, -vv debug).")
@click.version_option(package_name="basin-twin")
def cli(verbose: int) -> None:
    """basin twin: a GIS digital twin of a river basin."""
    logging.basicConfig(
        level=logging.WARNING - 10 * min(verbose, 2), stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )


def _register() -> None:
    from twin.cli import (
        alerts,
        build,
        evidence,
        incident,
        info,
        navigate,
        readings,
        render,
        scenario,
        serve,
        trace,
        users,
    )

    cli.add_command(scenario.scenario)
    cli.add_command(trace.trace)
    cli.add_command(alerts.alerts)
    cli.add_command(incident.incident)
    cli.add_command(readings.ingest)
    cli.add_command(readings.readings)
    cli.add_command(readings.stations)
    cli.add_command(readings.classify)
    cli.add_command(build.build)
    cli.add_command(info.info)
    cli.add_command(navigate.catchment)
    cli.add_command(navigate.downstream)
    cli.add_command(render.render)
    cli.add_command(serve.serve)
    cli.add_command(evidence.keys)
    cli.add_command(evidence.evidence)
    cli.add_command(evidence.audit)
    cli.add_command(users.users)
    cli.add_command(users.case)
    cli.add_command(users.hearing)


_register()


def main() -> None:
    cli(prog_name="twin")
