"""``twin render DIR -o OUT``: the 3D scene of a twin as a PNG, a glTF (.glb) or a standalone HTML page."""

from __future__ import annotations

import json

import click


@click.command()
@click.argument("twin_dir", type=click.Path(file_okay=False))
@click.option("-o", "--output", required=True, help="File to write: .png, .glb or .html (written whole or not at all).")
@click.option("--at", default=None, help="Time shown, with zone (default: the incident's observed time, if any).")
@click.option("--incident", type=int, default=None, help="Incident id to mark (and look at, with --view incident).")
@click.option("--view", default=None, help="Camera: overview, river or incident (default: incident with --incident).")
@click.option("--format", "fmt", default=None, help="png, glb or html (default: from the output's suffix).")
@click.option("--lang", default="en", show_default=True, help="Labels in en or zh (zh needs a CJK font).")
@click.option("--size", default="1280x800", show_default=True, help="Image size WIDTHxHEIGHT in pixels.")
@click.option("--exaggeration", type=float, default=2.0, show_default=True, help="Vertical exaggeration.")
@click.option("--max-triangles", type=int, default=1_000_000, show_default=True, help="Terrain triangle budget.")
@click.option("--font", "font_file", default=None, help="Font file for the labels (.ttf/.ttc with CJK glyphs).")
def render(
    twin_dir: str,
    output: str,
    at: str | None,
    incident: int | None,
    view: str | None,
    fmt: str | None,
    lang: str,
    size: str,
    exaggeration: float,
    max_triangles: int,
    font_file: str | None,
) -> None:
    """Render the twin's 3D scene: terrain, rivers, boundaries, stations coloured by warning level at --at,
    incidents and labels. Prints a JSON summary (file, bytes, sha256, the terrain's decimation error)."""
    import hashlib
    from pathlib import Path

    from twin import scene
    from twin.basin import BasinTwin

    out = Path(output)
    scene.check_writable(out)  # before minutes of work, not after
    fmt = fmt or scene.output_format(out)
    if fmt not in ("png", "glb", "html"):
        raise scene.SceneError(f"unknown --format {fmt!r}; formats: png, glb, html")
    if view is not None and view not in scene.VIEWS:
        raise scene.SceneError(f"unknown --view {view!r}; views: {', '.join(scene.VIEWS)}")
    if view == "incident" and incident is None:
        raise scene.SceneError("--view incident needs --incident ID (list them with `twin incident list DIR`)")
    if lang not in scene.LANGS:
        raise scene.SceneError(f"unknown --lang {lang!r}; languages: {', '.join(scene.LANGS)}")
    scene.parse_size(size)
    scene.parse_time(at)

    basin = BasinTwin.open(twin_dir)
    with scene.build_scene(
        basin.model,
        store=basin.store,
        at=at,
        incident=incident,
        view=view,  # type: ignore[arg-type]  # checked above
        lang=lang,
        size=size,
        exaggeration=exaggeration,
        max_triangles=max_triangles,
        font_file=font_file,
    ) as built:
        built.save(out, fmt)
        meta = built.metadata
    data = out.read_bytes()
    terrain = meta["terrain"]
    summary = {
        "output": str(out),
        "format": fmt,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "view": meta["view"],
        "time": meta["time"],
        "terrain": {k: terrain[k] for k in ("stride", "triangles", "max_error_m", "rms_error_m")},
        "stations": {sid: s["level"] for sid, s in meta["stations"].items()},
        "incidents": meta["incidents"],
    }
    click.echo(json.dumps(summary, ensure_ascii=False))
