"""Camera presets of the scene: the overview, along a river, at an incident.

Each preset chooses a focal point and a direction to look from, then moves the
camera back until what must be seen fits the frame (:func:`fit_camera`, a
bisection on the distance with the same perspective projection VTK uses), so a
preset frames a county and a province alike, and the same twin always gets the
same camera.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import shapely

from twin.scene.layers import Surface, xyz

if TYPE_CHECKING:
    from twin.model.model import Model

VIEWS = ("overview", "river", "incident")
VIEW_ANGLE = 30.0  # degrees, vertical
INCIDENT_RADIUS_M = 3000.0  # at least this much around an incident is in view
INCIDENT_AHEAD_M = 8000.0  # and the river this far below it


@dataclass(frozen=True)
class Camera:
    position: tuple[float, float, float]
    focal_point: tuple[float, float, float]
    view_up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    view_angle: float = VIEW_ANGLE


def project(camera: Camera, aspect: float, points: np.ndarray) -> np.ndarray:
    """Normalised device x, y (−1..1 across the frame) and depth of scene points."""
    pos, foc = np.asarray(camera.position, dtype=float), np.asarray(camera.focal_point, dtype=float)
    f = (foc - pos) / np.linalg.norm(foc - pos)
    r = np.cross(f, camera.view_up)
    r /= np.linalg.norm(r)
    u = np.cross(r, f)
    q = np.asarray(points, dtype=float) - pos
    depth = q @ f
    t = np.tan(np.radians(camera.view_angle) / 2)
    return np.column_stack([(q @ r) / (depth * t * aspect), (q @ u) / (depth * t), depth])


def fit_camera(
    focal: np.ndarray, direction: np.ndarray, points: np.ndarray, aspect: float, margin: float = 0.05
) -> Camera:
    """The nearest camera looking from ``direction`` that shows every point, the points centred in the frame.

    The distance is found by bisection; the focal point is then moved across the view
    until the points' projection is centred (perspective makes the near side larger),
    and the distance found again.
    """
    direction = direction / np.linalg.norm(direction)
    focal = np.asarray(focal, dtype=float)
    cam = _fit_distance(focal, direction, points, aspect, margin)
    for _ in range(3):
        ndc = project(cam, aspect, points)
        shift = (ndc[:, :2].min(axis=0) + ndc[:, :2].max(axis=0)) / 2
        f = -direction
        right = np.cross(f, cam.view_up)
        right /= np.linalg.norm(right)
        up = np.cross(right, f)
        half_h = np.linalg.norm(np.subtract(cam.position, cam.focal_point)) * np.tan(np.radians(cam.view_angle) / 2)
        focal = focal + (right * shift[0] * aspect + up * shift[1]) * half_h
        cam = _fit_distance(focal, direction, points, aspect, margin)
    return cam


def _fit_distance(focal: np.ndarray, direction: np.ndarray, points: np.ndarray, aspect: float, margin: float) -> Camera:
    """The camera at the least distance from ``focal`` along ``direction`` that shows every point."""
    span = float(np.ptp(points, axis=0).max()) + 1.0

    def fits(d: float) -> bool:
        ndc = project(Camera(xyz(focal + direction * d), xyz(focal)), aspect, points)
        return bool((ndc[:, 2] > 0).all() and (np.abs(ndc[:, :2]) <= 1 - margin).all())

    lo, hi = 0.0, span
    while not fits(hi):
        lo, hi = hi, hi * 2
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if fits(mid) else (mid, hi)
    return Camera(xyz(focal + direction * hi), xyz(focal))


def tilted(horizontal: np.ndarray, elevation_deg: float) -> np.ndarray:
    """The direction ``elevation_deg`` above a horizontal one (from the focal point to the camera)."""
    h = np.array([horizontal[0], horizontal[1], 0.0])
    norm = np.linalg.norm(h)
    h = h / norm if norm > 0 else np.array([0.0, -1.0, 0.0])  # from the south when there is no direction
    e = np.radians(elevation_deg)
    return h * np.cos(e) + np.array([0.0, 0.0, np.sin(e)])


def terrain_box(surface: Surface, zrange: tuple[float, float]) -> np.ndarray:
    """The 8 corners of the box around the terrain's valid cells, in scene coordinates."""
    dec, t = surface.decimation, surface.transform
    valid = np.isfinite(dec.z)
    rows, cols = dec.rows[valid.any(axis=1)], dec.cols[valid.any(axis=0)]
    xs = [t.c + (c + 0.5) * t.a - surface.origin[0] for c in (cols[0], cols[-1])]
    ys = [t.f + (r + 0.5) * t.e - surface.origin[1] for r in (rows[0], rows[-1])]
    zs = [z * surface.exaggeration for z in zrange]
    return np.array([(x, y, z) for x in xs for y in ys for z in zs])


def main_river(model: Model, start_reach: int | None = None) -> list[int]:
    """Reach ids down to an outlet: from a reach, or the main stem of the largest river from its source."""
    net = model.network
    if start_reach is not None:
        return net.downstream_ids(start_reach)
    outlets = net.reaches[net.reaches["next_down"] == 0]
    outlet = int(outlets["upstream_area_km2"].idxmax())
    return [*reversed(net.upstream_ids(outlet, mainstem=True)), outlet]


def river_points(model: Model, surface: Surface, reach_ids: list[int]) -> np.ndarray:
    """The reaches' vertices on the surface, in flow order (points off the terrain dropped)."""
    xy = np.concatenate([np.asarray(model.network.reaches.at[r, "geometry"].coords)[:, :2] for r in reach_ids])
    pts = surface.points(xy[:, 0], xy[:, 1])
    return pts[np.isfinite(pts[:, 2])]


def overview(surface: Surface, zrange: tuple[float, float], aspect: float) -> Camera:
    """The whole terrain from the south, 50° above the horizon."""
    box = terrain_box(surface, zrange)
    return fit_camera(box.mean(axis=0), tilted(np.array([0.0, -1.0]), 50.0), box, aspect)


def along_river(
    model: Model, surface: Surface, zrange: tuple[float, float], aspect: float, start_reach: int | None
) -> Camera:
    """Behind the river's upper end, 35° up, looking down its course toward the outlet."""
    if model.network.reaches.empty:
        return overview(surface, zrange, aspect)
    path = river_points(model, surface, main_river(model, start_reach))
    if len(path) < 2:
        return overview(surface, zrange, aspect)
    flow = path[-1, :2] - path[0, :2]
    return fit_camera(path[len(path) // 2], tilted(-flow, 35.0), path, aspect)


def at_incident(model: Model, surface: Surface, zrange: tuple[float, float], aspect: float, incident: dict) -> Camera:
    """Over the incident, 55° up, from upstream: its surroundings and the river below it in view."""
    geom = shapely.from_wkt(incident["geometry"])
    p = geom if geom.geom_type == "Point" else geom.representative_point()
    focal = surface.points(p.x, p.y)[0]
    if not np.isfinite(focal[2]):
        focal[2] = float(np.mean(zrange)) * surface.exaggeration
    r = INCIDENT_RADIUS_M
    near = focal + np.array([(dx, dy, 0.0) for dx in (-r, r) for dy in (-r, r)])
    flow = np.zeros(2)
    if incident.get("reach_id"):
        down = river_points(model, surface, main_river(model, int(incident["reach_id"])))
        d = np.hypot(down[:, 0] - focal[0], down[:, 1] - focal[1])
        ahead = down[(np.arange(len(down)) >= np.argmin(d)) & (d < INCIDENT_AHEAD_M)]
        if len(ahead) > 1:
            flow = ahead[-1, :2] - ahead[0, :2]
            near = np.concatenate([near, ahead])
    centre = (focal + near[-1]) / 2 if len(near) > 4 else focal  # the incident and the river below it
    return fit_camera(centre, tilted(-flow, 55.0), near, aspect, margin=0.12)  # room for glyphs and labels


def scale_of(camera: Camera, aspect: float) -> float:
    """A thousandth of the width the camera sees at its focal point (glyph sizes are in these)."""
    d = float(np.linalg.norm(np.subtract(camera.position, camera.focal_point)))
    return 2 * d * np.tan(np.radians(camera.view_angle) / 2) * aspect / 1000.0
