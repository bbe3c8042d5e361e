"""The 3D scene of a twin (pyvista): terrain, rivers, boundaries, stations, incidents, a plume.

>>> from twin.scene import build_scene
>>> scene = build_scene(model, at="2026-09-03T10:00Z", view="overview", lang="zh")   # doctest: +SKIP
>>> scene.save("gardon.png"); scene.save("gardon.glb"); scene.save("gardon.html")   # doctest: +SKIP
>>> scene.metadata["terrain"]["max_error_m"]                                          # doctest: +SKIP

The scene is built once (:func:`build_scene`) as *layers*, meshes with a colour per
vertex, plus labels and a camera; three outputs share them (:class:`Scene`): a PNG
rendered off screen (VTK through EGL, no display needed), a binary glTF (``.glb``)
and a standalone HTML page with our own WebGL viewer (offline, no CDN).

Modules: :mod:`.mesh` (decimation and colours on plain arrays), :mod:`.layers`
(the meshes), :mod:`.camera` (the presets), :mod:`.style` (colours, words, fonts),
:mod:`.build` and :mod:`.output`. pyvista is imported only when a scene is built.

Assumptions
-----------
* The twin's grid is north-up (no rotation terms), as :mod:`twin.model.loaders` makes it.
* Scene coordinates are metres east and north of the grid's lower-left corner
  (``metadata["origin"]``) and elevation × exaggeration up, so single-precision
  floats (VTK, glTF) keep sub-metre precision. glTF is y-up: (x, y, z) → (x, z, −y).
* **Vertical exaggeration** defaults to 2. The demo basin rises from 85 m to 1,672 m
  across 50 km: at true scale the relief spans a few per cent of the frame and the
  Cévennes' steep valley sides (20–35°) read as gentle hills. Doubled, they read at
  36–54°, the serrated ridges one sees from the valleys; at 3× and more, ridges turn
  into spikes that hide the rivers and stations in the valleys behind them.
* A large DEM is subsampled on a stride to fit ``max_triangles`` (default 1,000,000),
  and ``metadata["terrain"]["max_error_m"]`` reports the largest vertical error of
  the surface drawn against the DEM (0 when nothing was decimated); see :mod:`.mesh`.
  Rivers, boundaries and glyphs are draped on that same surface.
* Stations are coloured by the four-level warnings active at ``at`` (blue, yellow,
  orange, red); green with readings in the last ``max_age_hours`` but no warning;
  grey without (or when no time is given).
* Chinese labels need a font with CJK glyphs (VTK's built-in fonts draw nothing for
  them): WenQuanYi Micro Hei, Debian package ``fonts-wqy-microhei``, is looked for
  first; a missing font or glyph raises :class:`FontError` (see :mod:`.style`).
* A PNG needs OpenGL off screen: Mesa's EGL and software renderer (Debian packages
  ``libegl1 libegl-mesa0 libgl1-mesa-dri``). Without them the first render raises
  :class:`OpenGLError` naming them instead of crashing (see :mod:`.opengl`); ``.glb``
  and ``.html`` are written without OpenGL.
* Images are deterministic: no anti-aliasing or depth peeling, the terrain unlit
  (its hillshade is in its vertex colours), PNG without metadata. The same twin and
  parameters give the same bytes with the same OpenGL driver (drivers may differ).
"""

from __future__ import annotations

from twin.scene.build import DEFAULT_EXAGGERATION, DEFAULT_SIZE, build_scene, parse_size, parse_time
from twin.scene.camera import VIEWS, Camera
from twin.scene.errors import FontError, OpenGLError, SceneDependencyError, SceneError, SceneOutputError
from twin.scene.layers import Label, Layer, station_levels
from twin.scene.mesh import DEFAULT_MAX_TRIANGLES, Decimation, decimate
from twin.scene.opengl import check_offscreen_rendering
from twin.scene.output import FORMATS, Scene, check_writable, output_format, write_glb
from twin.scene.style import LANGS, find_cjk_font

__all__ = [
    "DEFAULT_EXAGGERATION",
    "DEFAULT_MAX_TRIANGLES",
    "DEFAULT_SIZE",
    "FORMATS",
    "LANGS",
    "VIEWS",
    "Camera",
    "Decimation",
    "FontError",
    "Label",
    "Layer",
    "OpenGLError",
    "Scene",
    "SceneDependencyError",
    "SceneError",
    "SceneOutputError",
    "build_scene",
    "check_offscreen_rendering",
    "check_writable",
    "decimate",
    "find_cjk_font",
    "output_format",
    "parse_size",
    "parse_time",
    "station_levels",
    "write_glb",
]
