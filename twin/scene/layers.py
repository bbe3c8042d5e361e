"""The layers of the scene: meshes with a colour per vertex (pyvista PolyData), and labels.

Every layer is draped on the decimated terrain (:class:`Surface`), the very surface
drawn, so nothing sinks under a hill the decimation raised. Lines are cut and
re-sampled at half the mesh spacing before draping. Sizes (tube radii, glyphs) are
in thousandths of the width the camera sees at its focal point (``scale``), so the
same preset looks alike on a county or a province.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import shapely
from shapely.ops import substring

from twin.scene import style
from twin.scene.errors import SceneDependencyError
from twin.scene.mesh import Decimation, grid_triangles, hillshade, ramp
from twin.scene.opengl import DEFAULT_WINDOW

if TYPE_CHECKING:
    import sqlalchemy as sa
    import xarray as xr

    from twin.model.model import Model

Shading = Literal["both", "elevation", "hillshade"]
RiverStyle = Literal["tubes", "lines"]


@dataclass
class Layer:
    """A mesh of the scene with a colour per vertex (point array ``rgba``, uint8).

    ``bar`` (the plume's) asks the renderer for a colour bar: title, ``clim`` (mg/L,
    log scale), colours; the renderer then colours the mesh by its ``mg_l`` array.
    """

    name: str
    mesh: Any  # pyvista.PolyData
    kind: Literal["triangles", "lines"]
    line_width: float = 1.0
    lit: bool = False
    bar: dict[str, Any] | None = None


@dataclass(frozen=True)
class Label:
    text: str
    position: tuple[float, float, float]  # scene coordinates
    rgb: style.RGB
    group: str


@dataclass(frozen=True)
class Surface:
    """The decimated terrain in scene coordinates (metres from ``origin``, z = elevation × exaggeration)."""

    decimation: Decimation
    transform: Any  # affine.Affine of the twin's (north-up) grid
    origin: tuple[float, float]
    exaggeration: float

    def z(self, x: Any, y: Any) -> np.ndarray:
        """Scene z of the surface at twin-CRS points (NaN off the terrain)."""
        t = self.transform
        c = (np.asarray(x, dtype=float) - t.c) / t.a - 0.5
        r = (np.asarray(y, dtype=float) - t.f) / t.e - 0.5
        return self.decimation.interpolate(r, c) * self.exaggeration

    def points(self, x: Any, y: Any, lift: float = 0.0) -> np.ndarray:
        """(n, 3) scene points on the surface (``lift`` above it) at twin-CRS points."""
        x, y = np.atleast_1d(np.asarray(x, dtype=float)), np.atleast_1d(np.asarray(y, dtype=float))
        return np.column_stack([x - self.origin[0], y - self.origin[1], self.z(x, y) + lift])


def xyz(p: Any) -> tuple[float, float, float]:
    return (float(p[0]), float(p[1]), float(p[2]))


def pyvista() -> Any:
    """pyvista, imported for drawing only; off screen through EGL unless the caller chose otherwise."""
    # VTK reads this when it makes its first render window: EGL renders without a display
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", DEFAULT_WINDOW)
    try:
        import pyvista as pv
    except ImportError:
        raise SceneDependencyError(
            "the 3D scene needs pyvista and VTK; install them with `pip install basin-twin[scene]`"
        ) from None
    return pv


def with_rgba(mesh: Any, rgb: Any) -> Any:
    """The mesh with a uint8 ``rgba`` point array (one colour for all points, or one per point)."""
    rgb = np.asarray(rgb, dtype=np.uint8)
    cols = np.broadcast_to(rgb, (mesh.n_points, 3)) if rgb.ndim == 1 else rgb
    mesh.point_data["rgba"] = np.column_stack([cols, np.full(mesh.n_points, 255, np.uint8)])
    return mesh


def polylines(pv: Any, parts: list[np.ndarray], values: list[np.ndarray] | None = None) -> Any:
    """One PolyData of polylines from (n, 3) arrays; a NaN z splits a line, runs under 2 points are dropped.

    ``values`` (one array per part) become the point array ``values`` of the points kept.
    """
    pts, vals, cells, n = [], [], [], 0
    for k, p in enumerate(parts):
        ok = np.isfinite(p[:, 2]).astype(np.int8)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], ok, [0]])))
        for a, b in zip(edges[::2], edges[1::2]):
            if b - a >= 2:
                pts.append(p[a:b])
                vals += [values[k][a:b]] if values is not None else []
                cells.append(np.concatenate([[b - a], np.arange(n, n + b - a)]))
                n += b - a
    if not pts:
        return pv.PolyData()
    mesh = pv.PolyData(np.concatenate(pts), lines=np.concatenate(cells))
    if values is not None:
        mesh.point_data["values"] = np.concatenate(vals)
    return mesh


def line_coords(geom: Any, step: float) -> list[np.ndarray]:
    """(n, 2) coordinates of a (multi)line, simplified within step/4 then sampled every ``step`` metres.

    Simplifying first drops the staircase of D8 flow paths and keeps the mesh in
    proportion to the terrain's decimation.
    """
    lines = shapely.segmentize(shapely.simplify(geom, step / 4), step)
    return [np.asarray(g.coords)[:, :2] for g in shapely.get_parts(lines) if not g.is_empty]


def drape(surface: Surface, lines: list[np.ndarray], lift: float) -> list[np.ndarray]:
    """(n, 3) scene points of many (n, 2) twin-CRS lines on the surface, in one interpolation."""
    if not lines:
        return []
    xy = np.concatenate(lines)
    pts = surface.points(xy[:, 0], xy[:, 1], lift)
    return np.split(pts, np.cumsum([len(line) for line in lines])[:-1])


def tube(mesh: Any, radius: float) -> Any:
    """Polylines as six-sided tubes, triangulated (what glTF and the viewer draw)."""
    return mesh.tube(radius=radius, n_sides=6, capping=False).triangulate()


# -- terrain, rivers, boundaries ----------------------------------------------------------------------


def terrain(pv: Any, surface: Surface, shading: Shading, zrange: tuple[float, float]) -> Layer:
    """The decimated DEM: elevation tints, hillshade (baked, unlit) or both."""
    dec, t = surface.decimation, surface.transform
    xs = t.c + (dec.cols + 0.5) * t.a - surface.origin[0]
    ys = t.f + (dec.rows + 0.5) * t.e - surface.origin[1]
    valid = np.isfinite(dec.z)
    index = np.full(valid.size, -1, dtype=np.int64)
    index[valid.ravel()] = np.arange(int(valid.sum()))
    X, Y = np.meshgrid(xs, ys)
    zs = dec.z * surface.exaggeration
    mesh = pv.PolyData.from_regular_faces(
        np.column_stack([X[valid], Y[valid], zs[valid]]), index[grid_triangles(valid)]
    )
    lo, hi = zrange
    tint = ramp((dec.z - lo) / max(hi - lo, 1e-9), style.TERRAIN_STOPS).astype(float)
    shade = hillshade(zs, xs, ys)[..., None]
    if shading == "both":
        rgb = tint * (0.35 + 0.65 * shade)
    elif shading == "hillshade":
        rgb = np.repeat(30.0 + 205.0 * shade, 3, axis=-1)
    else:
        rgb = tint
    return Layer("terrain", with_rgba(mesh, rgb[valid].round()), "triangles", lit=shading == "elevation")


def rivers(pv: Any, model: Model, surface: Surface, scale: float, step: float, how: RiverStyle) -> list[Layer]:
    """One layer per Strahler order: tubes (radius by order) or lines (screen width by order).

    The first order is drawn as lines in either style: its tube would be under two
    pixels wide, look the same, and cost twelve triangles a segment (most of a
    province's rivers are first-order).
    """
    reaches = model.network.reaches
    orders = reaches["strahler"].to_numpy()
    layers = []
    for k, order in enumerate(sorted(set(orders.tolist()))):
        rank = min(k, len(style.RIVER_RGB) - 1)
        radius = scale * (style.RIVER_RADIUS[0] + style.RIVER_RADIUS[1] * rank)
        as_tube = how == "tubes" and rank > 0
        lift = radius if as_tube else scale * 0.5
        geoms = reaches.geometry[orders == order].to_numpy()
        mesh = polylines(pv, drape(surface, line_coords(geoms, step), lift))
        if mesh.n_points == 0:
            continue
        rgb = style.RIVER_RGB[rank]
        if as_tube:
            layers.append(Layer(f"rivers-order-{order}", with_rgba(tube(mesh, radius), rgb), "triangles", lit=True))
        else:
            layers.append(Layer(f"rivers-order-{order}", with_rgba(mesh, rgb), "lines", line_width=1.5 + rank))
    return layers


def boundaries(pv: Any, model: Model, surface: Surface, levels: list[str], scale: float, step: float) -> list[Layer]:
    """Unit boundaries of each level, clipped to the grid and draped; the coarsest level last, on top."""
    units = model.jurisdictions.units
    x0, y0, x1, y1 = model.terrain.grid.bounds
    order = [lv for lv in model.jurisdictions.levels if lv in levels]
    layers = []
    for rank in range(len(order) - 1, -1, -1):
        polys = units.loc[units["level"] == order[rank]].geometry.to_numpy()
        if len(polys) == 0:
            continue
        edges = shapely.clip_by_rect(shapely.union_all(shapely.boundary(polys)), x0, y0, x1, y1)
        lift = scale * (0.6 + 0.3 * (len(order) - rank))
        mesh = polylines(pv, drape(surface, line_coords(edges, step), lift))
        if mesh.n_points:
            rgb = style.BOUNDARY_RGB[min(rank, len(style.BOUNDARY_RGB) - 1)]
            width = max(1.0, 3.0 - rank)
            layers.append(Layer(f"boundaries-{order[rank]}", with_rgba(mesh, rgb), "lines", line_width=width))
    return layers


# -- sites and incidents ----------------------------------------------------------------------------


def station_levels(
    model: Model, store: sa.Engine | pd.DataFrame, at: pd.Timestamp, max_age_hours: float = 24.0, policy: Any = None
) -> pd.Series:
    """Each station's colour key at a time: a warning level name, "none" or "no data".

    The warnings are those of :func:`twin.analysis.response.warnings` active at ``at``
    (without response plans), reduced per station by :func:`twin.analysis.alerts.levels_at`;
    a station without a reading in the ``max_age_hours`` before ``at`` has "no data".
    """
    from twin.analysis import alerts, response
    from twin.analysis.source import readings_frame

    ids = model.sites.loc[model.sites["kind"] == "station", "id"].astype(str).tolist()
    recent = readings_frame(store, None, at - pd.Timedelta(hours=max_age_hours), at, stations=ids)
    out = pd.Series("no data", index=ids, dtype=object)
    out[out.index.isin(set(recent["station"].astype(str)))] = "none"
    episodes = response.warnings(model, store, at=at, policy=policy, plans=False)
    if len(episodes):
        for sid, name in alerts.levels_at(episodes, at)["level_name"].items():
            if str(sid) in out.index:
                out[str(sid)] = str(name)
    return out


def _pin(pv: Any, ground: np.ndarray, r: float, head: Any, rgb: style.RGB) -> list[Any]:
    """A glyph ``head`` (centred 3.5 r above the ground) on a thin grey stem."""
    stem = pv.Cylinder(center=ground + (0, 0, 1.75 * r), direction=(0, 0, 1), radius=0.18 * r, height=3.5 * r)
    return [with_rgba(head.triangulate(), rgb), with_rgba(stem.triangulate(), style.STEM_RGB)]


def sites(
    pv: Any, model: Model, surface: Surface, scale: float, levels: pd.Series | None, lang: str
) -> tuple[list[Layer], list[Label], dict[str, Any]]:
    """Stations as pins with a ball coloured by level; other sites (intakes, mines...) with a white cube.

    Returns the layers, the labels, and per station its level, colour and the ball's centre.
    """
    words = style.TEXTS[lang]["levels"]
    pins: dict[str, list[Any]] = {"stations": [], "sites": []}
    labels, info = [], {}
    r = scale * style.SITE_RADIUS
    for s in model.sites.itertuples():
        ground = surface.points(s.geometry.x, s.geometry.y)[0]
        if not np.isfinite(ground[2]):
            continue
        name = _site_name(s, lang)
        top = ground + (0, 0, 3.5 * r)
        if s.kind == "station":
            key = "no data" if levels is None else str(levels.get(str(s.id), "no data"))
            rgb = style.LEVEL_RGB[key]
            pins["stations"] += _pin(pv, ground, r, pv.Sphere(radius=r, center=top, theta_resolution=16), rgb)
            text = name if levels is None else f"{name} · {words[key]}"
            info[str(s.id)] = {"level": key, "rgb": list(rgb), "position": list(xyz(top))}
        else:
            rgb = style.SITE_RGB
            pins["sites"] += _pin(
                pv, ground, r, pv.Cube(center=top, x_length=1.6 * r, y_length=1.6 * r, z_length=1.6 * r), rgb
            )
            text = name
        labels.append(Label(text, xyz(top + (0, 0, 1.5 * r)), rgb, "site"))
    layers = [Layer(group, pv.merge(parts), "triangles", lit=True) for group, parts in pins.items() if parts]
    return layers, labels, info


def _site_name(site: Any, lang: str) -> str:
    """The site's Chinese name (``name_zh``) for "zh" where it has one, else its name."""
    zh = getattr(site, "name_zh", None)
    return zh.strip() if lang == "zh" and isinstance(zh, str) and zh.strip() else str(site.name)


def incidents(
    pv: Any, surface: Surface, scale: float, records: list[dict], lang: str
) -> tuple[list[Layer], list[Label]]:
    """Each incident as a downward cone over its point, its outline draped when it is a polygon."""
    words = style.TEXTS[lang]
    cones, outlines, labels = [], [], []
    h = scale * style.INCIDENT_HEIGHT
    for inc in records:
        geom = shapely.from_wkt(inc["geometry"]) if isinstance(inc["geometry"], str) else inc["geometry"]
        p = geom if geom.geom_type == "Point" else geom.representative_point()
        ground = surface.points(p.x, p.y)[0]
        if not np.isfinite(ground[2]):
            continue
        cone = pv.Cone(center=ground + (0, 0, h / 2), direction=(0, 0, -1), height=h, radius=h * 0.3, resolution=16)
        cones.append(with_rgba(cone.triangulate(), style.INCIDENT_RGB))
        if geom.geom_type != "Point":
            outlines += [surface.points(xy[:, 0], xy[:, 1], scale) for xy in line_coords(geom.boundary, scale * 5)]
        text = words["incident"].format(id=inc["id"], kind=words["kinds"].get(inc["kind"], inc["kind"]))
        labels.append(Label(text, xyz(ground - (0, 0, h * 0.1)), style.INCIDENT_RGB, "incident"))  # drawn below
    layers = [Layer("incidents", pv.merge(cones), "triangles", lit=True)] if cones else []
    mesh = polylines(pv, outlines)
    if mesh.n_points:
        layers.append(Layer("incident-outlines", with_rgba(mesh, style.INCIDENT_RGB), "lines", line_width=3.0))
    return layers, labels


# -- the plume --------------------------------------------------------------------------------------


def plume_at(plume: xr.Dataset, at: pd.Timestamp) -> np.ndarray:
    """Concentration (mg/L) at each reach piece's downstream end at a time (0 outside the simulated run)."""
    times = pd.DatetimeIndex(pd.to_datetime(plume["time"].values))
    t = at.tz_convert("UTC").tz_localize(None) if times.tz is None else at
    secs = (times - times[0]).total_seconds().to_numpy()
    when = (t - times[0]).total_seconds()
    return np.array([np.interp(when, secs, row, left=0.0, right=0.0) for row in plume["concentration"].values])


def plume(
    pv: Any, model: Model, surface: Surface, ds: xr.Dataset, at: pd.Timestamp, scale: float, how: RiverStyle
) -> tuple[Layer | None, dict[str, Any]]:
    """The river below a release, coloured by concentration at ``at`` where it exceeds a thousandth of the peak.

    Concentrations between the sections of :func:`twin.analysis.plume.simulate` (reach ends)
    are interpolated linearly along the river; colours are on a log scale from a
    thousandth of the run's peak to the peak, so times of one run compare.
    """
    ends = ds["reach_distance_km"].values.astype(float) * 1000.0
    values = plume_at(ds, at)
    peak = float(np.nanmax(ds["concentration"].values)) if ds["concentration"].size else 0.0
    info: dict[str, Any] = {
        "substance": ds.attrs.get("substance", ""),
        "peak_mg_l": peak,
        "max_at_time_mg_l": float(values.max(initial=0.0)),
    }
    if not peak > 0:
        return None, info
    lo, hi = peak / 1000.0, peak
    info["clim_mg_l"] = [lo, hi]
    xy, along = _plume_path(model, ds, ends, scale)
    conc = np.interp(along, ends, values)
    radius = scale * style.PLUME_RADIUS
    pts = surface.points(xy[:, 0], xy[:, 1], radius if how == "tubes" else scale * 3.0)
    pts[conc < lo, 2] = np.nan  # only where the plume is: elsewhere the river keeps its colours
    mesh = polylines(pv, [pts], [conc])
    if mesh.n_points == 0:
        return None, info
    if how == "tubes":
        mesh = tube(mesh, radius)
    mg_l = np.asarray(mesh.point_data["values"], dtype=float)
    mesh.point_data["mg_l"] = mg_l
    frac = np.log10(np.maximum(mg_l, lo) / lo) / 3.0
    colours = [tuple(int(c) for c in ramp(f, style.PLUME_STOPS)) for f in np.linspace(0, 1, 64)]
    bar = {"title": f"{info['substance']} mg/L".strip(), "clim": [lo, hi], "colours": colours}
    kind: Literal["triangles", "lines"] = "triangles" if how == "tubes" else "lines"
    return Layer("plume", with_rgba(mesh, ramp(frac, style.PLUME_STOPS)), kind, 7.0, how == "tubes", bar), info


def _plume_path(model: Model, ds: xr.Dataset, ends: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Points along the plume's reaches from the release, and their distance (m) from it."""
    start = float(ds.attrs.get("start_measure_m", 0.0))
    pieces, dists = [], []
    for k, rid in enumerate(ds["reach"].values.astype(int)):
        line = model.network.reaches.at[int(rid), "geometry"]
        piece = substring(line, start, line.length) if k == 0 and start > 0 else line
        xy = np.asarray(shapely.segmentize(piece, scale * 5).coords)[:, :2]
        walked = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
        begin = ends[k - 1] if k else 0.0
        pieces.append(xy)
        dists.append(begin + walked * (ends[k] - begin) / max(walked[-1], 1e-9))
    return np.concatenate(pieces), np.concatenate(dists)
