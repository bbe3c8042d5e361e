"""The overlays of a court bundle: the case on a map (top down) and in 3D, evidence places marked.

Both are :func:`twin.scene.build_scene` scenes of the twin at the relevant time (the
case's incident observed, unless another time is given): terrain, rivers, boundaries,
stations coloured by the warnings active then, the incident, the plume of a recorded
trace when there is one; to them this module adds a teal marker and a label (E1,
E2, ... as listed in the bundle's manifest) at each evidence item's place.

* ``scene.png``: the whole basin in 3D from the south (the scene's overview preset);
* ``map.png``: the same scene seen straight down, north up, with a parallel
  (orthographic) camera so distances read the same across the image, and a scale bar.

One scene makes both: its glyphs are sized for the whole basin, which both views show,
and building it (the stations' warnings at the time) is most of the cost. The scene
package is used as it is; the camera and the markers are set here, on its plotter. The images are deterministic for the same twin, store and parameters
(see :mod:`twin.scene`), and the parameters are recorded in ``overlays/overlays.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import sqlalchemy as sa
    import xarray as xr

    from twin.model.model import Model

MARKER_RGB = (0, 150, 160)
DEFAULT_MAX_TRIANGLES = 400_000  # the overlays' terrain budget: enough for a 1280-pixel image


@dataclass(frozen=True)
class Marker:
    label: str
    lon: float
    lat: float


@dataclass
class Overlays:
    map_png: bytes
    scene_png: bytes
    parameters: dict[str, Any]


def _scene_points(model: Model, scene: Any, markers: list[Marker]) -> np.ndarray:
    """Markers' ground points in scene coordinates (NaN z off the terrain)."""
    origin = scene.metadata["origin"]
    exag = scene.metadata["exaggeration"]
    dem, t = model.terrain.dem, model.terrain.grid.transform
    out = []
    for m in markers:
        x, y = model.to_twin_xy(m.lon, m.lat)
        col, row = int((x - t.c) / t.a), int((y - t.f) / t.e)
        inside = 0 <= row < dem.shape[0] and 0 <= col < dem.shape[1]
        z = float(dem[row, col]) * exag if inside else np.nan
        out.append((x - origin[0], y - origin[1], z))
    return np.array(out, dtype=float).reshape(-1, 3)


def _scale(scene: Any) -> float:
    from twin.scene.camera import scale_of

    return float(scale_of(scene.camera, scene.size[0] / scene.size[1]))


def _add_markers(scene: Any, points: np.ndarray, markers: list[Marker], scale: float) -> list[str]:
    """Teal octahedra on stems at the evidence places, labelled; returns the labels drawn."""
    from twin.scene.layers import pyvista

    pv = pyvista()
    p = scene.plotter
    r = 7.0 * scale
    shown, tops, texts = [], [], []
    parts = []
    for m, ground in zip(markers, points):
        if not np.isfinite(ground[2]):
            continue
        top = ground + (0, 0, 3.5 * r)
        parts.append(pv.Octahedron(center=top, radius=1.3 * r).triangulate())
        parts.append(
            pv.Cylinder(
                center=ground + (0, 0, 1.75 * r), direction=(0, 0, 1), radius=0.2 * r, height=3.5 * r
            ).triangulate()
        )
        tops.append(top + (0, 0, 1.6 * r))
        texts.append(m.label)
        shown.append(m.label)
    if parts:
        p.add_mesh(pv.merge(parts), color=[c / 255 for c in MARKER_RGB], lighting=True, reset_camera=False)
        actor = p.add_point_labels(
            np.array(tops),
            texts,
            font_size=max(10, round(14 * scene.size[0] / 1280)),
            text_color="white",
            bold=True,
            shape=None,
            background_color=[c / 255 for c in MARKER_RGB],
            background_opacity=1.0,
            show_points=False,
            always_visible=True,
            justification_horizontal="center",
            justification_vertical="bottom",
            reset_camera=False,
        )
        actor.GetMapper().PlaceAllLabelsOn()
    return shown


def _top_down(scene: Any, model: Model) -> dict[str, Any]:
    """Look straight down on the whole grid, north up, orthographic; add a scale bar. Returns the view."""
    from twin.scene.layers import pyvista

    pv = pyvista()
    p = scene.plotter
    west, south, east, north = model.terrain.grid.bounds
    width, height = east - west, north - south
    zmax = float(np.nanmax(model.terrain.dem)) * scene.metadata["exaggeration"]
    aspect = scene.size[0] / scene.size[1]
    centre = (width / 2, height / 2)
    half = max(height / 2, width / (2 * aspect)) * 1.04
    p.camera.parallel_projection = True
    p.camera.position = (centre[0], centre[1], zmax + 4 * max(width, height))
    p.camera.focal_point = (centre[0], centre[1], 0.0)
    p.camera.up = (0.0, 1.0, 0.0)
    p.camera.parallel_scale = half
    # scale bar: a round length near a fifth of the view's width, bottom left (the colour bar is right)
    view_w = 2 * half * aspect
    target = view_w / 5
    bar = max(v for v in (500, 1000, 2000, 5000, 10000, 20000, 50000, 100000) if v <= max(target, 500))
    x0 = centre[0] - half * aspect * 0.95
    x1 = x0 + bar
    y = centre[1] - half * 0.92
    z = zmax + 10.0
    line = pv.Line((x0, y, z), (x1, y, z))
    p.add_mesh(line, color="black", line_width=4, reset_camera=False)
    label = f"{bar / 1000:g} km"
    p.add_point_labels(
        np.array([[(x0 + x1) / 2, y, z]]),
        [label],
        font_size=max(9, round(13 * scene.size[0] / 1280)),
        text_color="black",
        shape=None,
        show_points=False,
        always_visible=True,
        justification_horizontal="center",
        justification_vertical="bottom",
        reset_camera=False,
    )
    p.renderer.ResetCameraClippingRange()
    return {"projection": "orthographic, north up", "width_m": view_w, "scale_bar_m": bar}


def render(
    model: Model,
    store: sa.Engine | None,
    *,
    at: Any,
    incident: int | None,
    markers: list[Marker],
    plume: xr.Dataset | None = None,
    size: tuple[int, int] = (1280, 800),
    max_triangles: int = DEFAULT_MAX_TRIANGLES,
    lang: str = "en",
) -> Overlays:
    """Render ``scene.png`` and ``map.png`` (see the module docstring) from one scene."""
    from twin.scene import build_scene

    with build_scene(
        model,
        store=store,
        at=at,
        incident=incident,
        plume=plume,
        view="overview",
        size=size,
        max_triangles=max_triangles,
        lang=lang,
    ) as scene:
        pts = _scene_points(model, scene, markers)
        drawn = _add_markers(scene, pts, markers, _scale(scene))
        scene_png = scene.png()
        pc = scene.plotter.camera
        camera_3d = {"position": list(pc.position), "focal_point": list(pc.focal_point)}
        view = _top_down(scene, model)
        map_png = scene.png()
        meta = {k: scene.metadata[k] for k in ("time", "view", "exaggeration", "stations", "incidents", "plume")}
    parameters = {
        "function": "twin.evidence.overlays.render",
        "at": str(at) if at is not None else None,
        "incident": incident,
        "size": list(size),
        "max_triangles": max_triangles,
        "lang": lang,
        "markers": [{"label": m.label, "lon": m.lon, "lat": m.lat} for m in markers],
        "markers_drawn": drawn,
        "scene": meta | {"camera": camera_3d},
        "map": view,
    }
    return Overlays(map_png, scene_png, parameters)
