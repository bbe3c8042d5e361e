"""``build_scene``: a twin at a time, as layers, labels and a camera (see :mod:`twin.scene`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from twin.ops.incidents import Incidents
from twin.scene import camera as cameras
from twin.scene import layers as draw
from twin.scene import style
from twin.scene.errors import SceneError
from twin.scene.mesh import DEFAULT_MAX_TRIANGLES, Decimation, decimate
from twin.scene.output import Scene

if TYPE_CHECKING:
    import sqlalchemy as sa
    import xarray as xr

    from twin.model.model import Model

DEFAULT_EXAGGERATION = 2.0
DEFAULT_SIZE = (1280, 800)
View = Literal["overview", "river", "incident"]


def parse_size(size: Any) -> tuple[int, int]:
    """(width, height) in pixels from a pair or ``"WxH"``.

    >>> parse_size("640x400")
    (640, 400)
    """
    try:
        w, h = (int(v) for v in (size.lower().split("x") if isinstance(size, str) else size))
    except (ValueError, TypeError, AttributeError):
        raise SceneError(f"size {size!r} is not WIDTHxHEIGHT in pixels (e.g. 1280x800)") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise SceneError(f"size {w}x{h} is out of range; width and height must be 16-8192 pixels")
    return w, h


def parse_time(at: Any) -> pd.Timestamp | None:
    """A time with zone, in UTC (None stays None)."""
    if at is None:
        return None
    try:
        ts = pd.Timestamp(at)
    except (ValueError, TypeError):
        raise SceneError(f"time {at!r} is not a time; give e.g. 2026-09-03T10:00Z") from None
    if ts.tzinfo is None:
        raise SceneError(f"time {at!r} has no zone; give it with an offset or Z (e.g. 2026-09-03T10:00Z)")
    return ts.tz_convert("UTC")


def _check(view: str, lang: str, exaggeration: float, shading: str, river_style: str) -> None:
    if view not in cameras.VIEWS:
        raise SceneError(f"unknown view {view!r}; views: {', '.join(cameras.VIEWS)}")
    if lang not in style.LANGS:
        raise SceneError(f"unknown label language {lang!r}; languages: {', '.join(style.LANGS)}")
    if not (np.isfinite(exaggeration) and exaggeration > 0):
        raise SceneError(f"vertical exaggeration must be a positive number, got {exaggeration}")
    if shading not in ("both", "elevation", "hillshade"):
        raise SceneError(f"unknown shading {shading!r}; give both, elevation or hillshade")
    if river_style not in ("tubes", "lines"):
        raise SceneError(f"unknown river style {river_style!r}; give tubes or lines")


def build_scene(
    model: Model,
    *,
    store: sa.Engine | None = None,
    at: Any = None,
    incident: int | None = None,
    plume: xr.Dataset | None = None,
    view: View | None = None,
    lang: str = "en",
    size: Any = DEFAULT_SIZE,
    exaggeration: float = DEFAULT_EXAGGERATION,
    max_triangles: int = DEFAULT_MAX_TRIANGLES,
    shading: draw.Shading = "both",
    boundary_levels: list[str] | None = None,
    labels: bool = True,
    river_style: draw.RiverStyle = "tubes",
    font_file: str | Path | None = None,
    policy: Any = None,
    max_age_hours: float = 24.0,
) -> Scene:
    """The 3D scene of a twin at a time.

    Parameters
    ----------
    model:
        The twin's model (``basin.model``).
    store:
        The operations store (``basin.store``), read for incidents and station colours; without
        it, stations are grey and no incident is drawn.
    at:
        The time shown (with zone): station colours are the warnings active then,
        incidents observed until then are drawn, a plume is cut then. Defaults to
        the ``incident``'s observed time; without either, the operations store is
        not read and stations are grey.
    incident:
        An incident id to mark (and to look at, with ``view="incident"``).
    plume:
        A :func:`twin.analysis.plume.simulate` Dataset: its river is coloured by concentration at ``at``.
    view:
        Camera preset: "overview" (the basin from the south), "river" (along the
        main river toward its outlet; below the incident when there is one),
        "incident". Default: "incident" with an incident, else "overview".
    lang:
        Labels in "en" or "zh" (station names from the sites' ``name_zh`` where present).
    size:
        Image size (width, height) or "WxH".
    exaggeration:
        Vertical exaggeration (why 2: see :mod:`twin.scene`).
    max_triangles:
        Triangle budget of the terrain; a larger DEM is subsampled to fit it.
    shading:
        "both" (elevation tints × hillshade), "elevation" (tints, lit by VTK) or "hillshade" (grey).
    boundary_levels:
        Jurisdiction levels whose boundaries are drawn (default: all).
    labels:
        Draw the names of sites and incidents.
    river_style:
        "tubes" (radius by Strahler order; also in glTF and HTML) or "lines" (screen width by order).
    font_file:
        Font of the labels; needed (and looked for when not given) when a label has non-Latin characters.
    policy, max_age_hours:
        Warning policy (default: ours); how old a station's last reading may be before it shows "no data".

    Raises
    ------
    SceneError
        A bad view, language, size, time, budget or level; view "incident" without an incident.
    FontError
        Labels that need a CJK font, and none is installed.
    twin.ops.incidents.UnknownIncidentError
        No incident with that id.
    """
    view = view or ("incident" if incident is not None else "overview")
    _check(view, lang, exaggeration, shading, river_style)
    width, height = parse_size(size)
    when = parse_time(at)
    if incident is not None and store is None:
        raise SceneError("an incident is read from the operations store: give store= (basin.store)")
    focus = Incidents(model, store).get(int(incident)) if incident is not None and store is not None else None
    if view == "incident" and focus is None:
        raise SceneError("view 'incident' needs an incident: give its id (--incident ID on the command line)")
    if when is None and focus is not None:
        when = pd.Timestamp(focus["observed"]).tz_convert("UTC")
    if plume is not None and when is None:
        raise SceneError("a plume is drawn at a time: give at= (--at) as well")
    levels = model.jurisdictions.levels if boundary_levels is None else list(boundary_levels)
    unknown = set(levels) - set(model.jurisdictions.levels)
    if unknown:
        raise SceneError(f"unknown jurisdiction level(s) {sorted(unknown)}; levels: {model.jurisdictions.levels}")

    pv = draw.pyvista()
    dem, grid = model.terrain.dem, model.terrain.grid
    dec = decimate(dem, max_triangles)
    zrange = (float(np.nanmin(dem)), float(np.nanmax(dem)))
    surface = draw.Surface(dec, grid.transform, (float(grid.bounds[0]), float(grid.bounds[1])), float(exaggeration))
    aspect = width / height
    cam = _camera(view, model, surface, zrange, aspect, focus)
    scale = cameras.scale_of(cam, aspect)
    spacing = abs(grid.transform.a) * max(dec.stride, 2)  # of the mesh; rivers are sampled at it, along
    # their valleys' gentle slopes, boundaries at half of it, as they cross ridges

    layer_list = [draw.terrain(pv, surface, shading, zrange)]
    layer_list += draw.boundaries(pv, model, surface, levels, scale, spacing / 2)
    if not model.network.reaches.empty:
        layer_list += draw.rivers(pv, model, surface, scale, spacing, river_style)
    plume_info = None
    if plume is not None and when is not None:
        plume_layer, plume_info = draw.plume(pv, model, surface, plume, when, scale, river_style)
        layer_list += [plume_layer] if plume_layer is not None else []
    keys = (
        draw.station_levels(model, store, when, max_age_hours, policy)
        if when is not None and store is not None
        else None
    )
    site_layers, label_list, stations = draw.sites(pv, model, surface, scale, keys, lang)
    shown = _incidents(model, store, when, focus)
    incident_layers, incident_labels = draw.incidents(pv, surface, scale, shown, lang)
    layer_list += site_layers + incident_layers
    label_list = label_list + incident_labels if labels else []
    captions = _captions(model, when, lang, keys is not None)
    texts = [lb.text for lb in label_list] + [t for t, _ in captions]
    font = style.find_cjk_font(font_file, tuple(texts)) if font_file or style.needs_cjk_font(texts) else None
    metadata = _metadata(model, dec, zrange, surface, when, view, lang, (width, height), max_triangles)
    metadata.update(
        stations=stations,
        incidents=[int(i["id"]) for i in shown],
        plume=plume_info,
        camera={"position": list(cam.position), "focal_point": list(cam.focal_point), "view_angle": cam.view_angle},
        font_file=str(font) if font else None,
    )
    return Scene(layer_list, label_list, captions, cam, (width, height), font, metadata)


def _camera(
    view: str,
    model: Model,
    surface: draw.Surface,
    zrange: tuple[float, float],
    aspect: float,
    focus: dict | None,
) -> cameras.Camera:
    if view == "overview":
        return cameras.overview(surface, zrange, aspect)
    if view == "river":
        reach = focus.get("reach_id") if focus else None
        return cameras.along_river(model, surface, zrange, aspect, int(reach) if reach else None)
    assert focus is not None  # build_scene checked it
    return cameras.at_incident(model, surface, zrange, aspect, focus)


def _metadata(
    model: Model,
    dec: Decimation,
    zrange: tuple[float, float],
    surface: draw.Surface,
    when: pd.Timestamp | None,
    view: str,
    lang: str,
    size: tuple[int, int],
    max_triangles: int,
) -> dict[str, Any]:
    """What the scene shows and how the terrain was decimated (see :class:`~twin.scene.Scene`)."""
    dem = model.terrain.dem
    return {
        "twin": model.name,
        "title": model.catalog.title,
        "crs": model.crs.to_string(),
        "origin": list(surface.origin),
        "exaggeration": surface.exaggeration,
        "time": when.isoformat() if when is not None else None,
        "view": view,
        "lang": lang,
        "size": list(size),
        "terrain": {
            "grid": list(dem.shape),
            "cells": int(np.count_nonzero(np.isfinite(dem))),
            "stride": dec.stride,
            "decimated": dec.stride > 1,
            "vertices": int(np.count_nonzero(np.isfinite(dec.z))),
            "triangles": dec.triangles,
            "max_triangles": int(max_triangles),
            "max_error_m": dec.max_error_m,
            "rms_error_m": dec.rms_error_m,
            "uncovered_cells": dec.uncovered_cells,
            "elevation_m": list(zrange),
        },
    }


def _incidents(model: Model, store: sa.Engine | None, when: pd.Timestamp | None, focus: dict | None) -> list[dict]:
    """Incidents observed until ``when`` (and the focus one whenever it was), by id."""
    shown = {int(focus["id"]): focus} if focus else {}
    if when is not None and store is not None:
        found = Incidents(model, store).list(end=when)
        for rec in found.to_dict("records"):  # geometry: a shapely geometry here, WKT from get()
            shown.setdefault(int(rec["id"]), rec)
    return [shown[k] for k in sorted(shown)]


def _captions(model: Model, when: pd.Timestamp | None, lang: str, legend: bool) -> list[tuple[str, str]]:
    """(text, key) lines: the title ("title"), then the warning legend when stations were evaluated."""
    title = model.catalog.title or model.name
    if when is not None:
        title += f" · {when:%Y-%m-%d %H:%M} UTC"
    lines = [(title, "title")]
    if legend:
        words = style.TEXTS[lang]
        lines.append((words["legend"], "title"))
        lines += [(words["levels"][k], k) for k in style.LEVEL_KEYS]
    return lines
