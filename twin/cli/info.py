"""``twin info DIR``."""

from __future__ import annotations

import json

import click


@click.command()
@click.argument("twin_dir", type=click.Path(file_okay=False))
@click.option("--summary", is_flag=True, help="A short human-readable summary instead of JSON.")
@click.option("--verify", is_flag=True, help="Re-hash every output against twin.json (exit 1 on a mismatch).")
def info(twin_dir: str, summary: bool, verify: bool) -> None:
    """Summary of a twin folder as JSON: CRS, bounds, cells, reaches, jurisdictions, sections, sites."""
    from pathlib import Path

    from twin.basin import BasinTwin
    from twin.errors import TwinFolderError
    from twin.model.folder import verify as verify_folder

    basin = BasinTwin.open(twin_dir, store=False, check=False)  # the summary reads no store; --verify hashes all
    data = basin.info()
    if verify:
        bad = verify_folder(Path(twin_dir))
        if bad:
            raise TwinFolderError(
                f"twin folder '{twin_dir}': {len(bad)} output(s) changed since the build: {bad[:3]}; rebuild it"
            )
        data["verified"] = True
    if not summary:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    lines = [
        f"{data['title'] or data['name']} ({data['name']})",
        f"  grid        {data['shape'][0]} x {data['shape'][1]} = {data['cells']:,} cells of {data['cell_size_m']:g} m, {data['crs']}",
        f"  elevation   {data['elevation_m'][0]:g}-{data['elevation_m'][1]:g} m; conditioning raised "
        f"{data['conditioning']['cells_raised']:,} cells (max {data['conditioning']['max_raise_m']:.1f} m)",
        f"  rivers      {data['reaches']} reaches, {data['stream_length_km']:,.1f} km "
        f"(upstream area >= {data['stream_threshold_km2']:g} km2), Strahler up to {data['max_strahler']}",
    ]
    for level, units in data["jurisdictions_crossed"].items():
        shown = ", ".join(units[:4]) + (f" and {len(units) - 4} more" if len(units) > 4 else "")
        lines.append(
            f"  {level:<11} {len(units)} crossed: {shown}; "
            f"{data['cross_boundary_sections'][level]} cross-boundary sections"
        )
    for s in data["top_level_sections"]:
        lines.append(
            f"    section {s['section_id']}: reach {s['reach_id']} {s['from']} -> {s['to']} "
            f"({s['upstream_area_km2']} km2 upstream)"
        )
    lines.append(f"  sites       {len(data['sites'])}")
    for s in data["sites"]:
        lines.append(
            f"    {s['id']:<14} {s['kind']:<8} {s['name']} (reach {s['reach_id']}, {s['upstream_area_km2']} km2)"
        )
    click.echo("\n".join(lines))
