"""The outputs of a scene: a PNG rendered off screen, a binary glTF, a standalone HTML page.

The glTF is written here from the layers, not by VTK's exporter (which writes
``.gltf`` only, turns colour maps into textures and labels into stray point
meshes): one mesh per layer, vertex colours, unlit (``KHR_materials_unlit``:
the colours carry the shading), y up. The HTML page embeds that ``.glb`` and a
small WebGL viewer of ours (``twin/data/scene_viewer.html``): no CDN, no server,
it opens offline. (pyvista's HTML export needs trame and starts a trame server
just to export.) Every file is written to a temporary file and renamed.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from twin.scene import style
from twin.scene.camera import Camera
from twin.scene.errors import SceneError, SceneOutputError
from twin.scene.layers import Label, Layer, pyvista
from twin.scene.opengl import check_offscreen_rendering

FORMATS = {".png": "png", ".glb": "glb", ".html": "html", ".htm": "html"}


class Scene:
    """A built scene (see :func:`twin.scene.build_scene`) and its outputs.

    Attributes
    ----------
    layers, labels, captions, camera, size, font_file:
        What :func:`~twin.scene.build_scene` made.
    metadata:
        Twin, time, view, exaggeration, ``origin`` of the scene coordinates, the
        terrain's decimation (``stride``, ``triangles``, ``max_error_m``), each
        station's level, colour and ball centre, the incidents and plume shown,
        and the layers (``name``, ``kind``, ``vertices``: the glTF's meshes, in order).
    """

    def __init__(
        self,
        layers: list[Layer],
        labels: list[Label],
        captions: list[tuple[str, str]],
        camera: Camera,
        size: tuple[int, int],
        font_file: Path | None,
        metadata: dict[str, Any],
    ):
        self.layers = layers
        self.labels = labels
        self.captions = captions
        self.camera = camera
        self.size = size
        self.font_file = font_file
        self.metadata = metadata
        metadata["layers"] = [{"name": la.name, "kind": la.kind, "vertices": int(la.mesh.n_points)} for la in layers]
        self._plotter: Any = None

    def __enter__(self) -> Scene:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the render window (the scene can render again afterwards)."""
        if self._plotter is not None:
            self._plotter.close()
            self._plotter = None

    # -- rendering ----------------------------------------------------------------------------------
    @property
    def plotter(self) -> Any:
        """The pyvista Plotter of the scene (off screen), made on first use.

        In a notebook, show ``scene.image()`` or call ``scene.plotter.show()`` (a static
        image unless pyvista's trame backend is installed).
        """
        if self._plotter is None:
            self._plotter = self._make_plotter()
        return self._plotter

    def _make_plotter(self) -> Any:
        pv = pyvista()
        check_offscreen_rendering()  # a clear error, not a segmentation fault, when no OpenGL loads
        p = pv.Plotter(off_screen=True, window_size=list(self.size), lighting="light kit")
        p.disable_anti_aliasing()  # deterministic pixels: no FXAA/MSAA blending
        p.set_background(style.BACKGROUND)
        for layer in self.layers:
            common = {"line_width": layer.line_width, "lighting": layer.lit, "reset_camera": False}
            if layer.bar is None:
                p.add_mesh(layer.mesh, scalars="rgba", rgb=True, show_scalar_bar=False, **common)
                continue
            bar = layer.bar
            p.add_mesh(
                layer.mesh,
                scalars="mg_l",
                cmap=[f"#{r:02x}{g:02x}{b:02x}" for r, g, b in bar["colours"]],
                clim=bar["clim"],
                log_scale=True,
                scalar_bar_args={
                    "title": bar["title"],
                    "color": "black",
                    "vertical": True,
                    "position_x": 0.9,
                    "position_y": 0.05,
                    "height": 0.35,
                    "width": 0.05,
                    "fmt": "%.3g",
                    "n_labels": 4,
                },
                **common,
            )
        font = str(self.font_file) if self.font_file else None
        for group, below in (("site", False), ("incident", True)):
            labels = [lb for lb in self.labels if lb.group == group]
            if labels:
                self._add_labels(p, labels, font, below)
        self._add_captions(p, font)
        p.camera.position = self.camera.position
        p.camera.focal_point = self.camera.focal_point
        p.camera.up = self.camera.view_up
        p.camera.view_angle = self.camera.view_angle
        p.renderer.ResetCameraClippingRange()
        return p

    def _add_labels(self, p: Any, labels: list[Label], font: str | None, below: bool) -> None:
        """Labels centred above (or below) their points, every one placed even where they overlap."""
        actor = p.add_point_labels(
            np.array([lb.position for lb in labels]),
            [lb.text for lb in labels],
            font_size=max(9, round(13 * self.size[0] / 1280)),
            text_color="black",
            font_file=font,
            bold=False,
            shape=None,  # the text's own background: pyvista's shape is offset from centred text
            background_color="white",
            background_opacity=0.75,
            show_points=False,
            always_visible=True,
            justification_horizontal="center",
            justification_vertical="top" if below else "bottom",
            reset_camera=False,
        )
        actor.GetMapper().PlaceAllLabelsOn()  # a label hidden by another would be a station without a name

    def _add_captions(self, p: Any, font: str | None) -> None:
        """The title and the legend, top left; each legend entry on its level's colour."""
        size = max(8, round(12 * self.size[0] / 1280))
        y = self.size[1] - 8
        for k, (text, key) in enumerate(self.captions):
            actor = p.add_text(
                text, position=(10, 0), font_size=size + (3 if k == 0 else 0), color="black", font_file=font
            )
            prop = actor.GetTextProperty()
            if key == "title":  # legible over the terrain
                prop.SetBackgroundColor(1.0, 1.0, 1.0)
                prop.SetBackgroundOpacity(0.6)
            else:
                prop.SetBackgroundColor(*(c / 255 for c in style.LEVEL_RGB[key]))
                prop.SetBackgroundOpacity(1.0)
                prop.SetColor((1.0, 1.0, 1.0) if key in style.LIGHT_TEXT_ON else (0.0, 0.0, 0.0))
            box = [0.0] * 4
            actor.GetBoundingBox(p.renderer, box)
            if box[1] - box[0] > self.size[0] - 20:  # shrink a long title to the frame's width
                prop.SetFontSize(max(6, int(prop.GetFontSize() * (self.size[0] - 20) / (box[1] - box[0]))))
                actor.GetBoundingBox(p.renderer, box)
            y -= int(box[3] - box[2]) + 4
            actor.SetPosition(10, y)

    def image(self) -> np.ndarray:
        """The rendered image, (height, width, 3) uint8."""
        return np.asarray(self.plotter.screenshot(return_img=True))

    def png(self) -> bytes:
        """The rendered image as PNG bytes (no metadata chunk: the bytes depend on the pixels only)."""
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(self.image()).save(buf, format="PNG")
        return buf.getvalue()

    def to_display(self, points: Any) -> np.ndarray:
        """Pixel (column, row from the top) of scene points, through the renderer's camera."""
        p = self.plotter
        p.render()
        ren = p.renderer
        out = []
        for x, y, z in np.atleast_2d(np.asarray(points, dtype=float)):
            ren.SetWorldPoint(x, y, z, 1.0)
            ren.WorldToDisplay()
            dx, dy, _ = ren.GetDisplayPoint()
            out.append((dx, self.size[1] - 1 - dy))
        return np.array(out)

    # -- files ----------------------------------------------------------------------------------------
    def glb(self) -> bytes:
        """The scene as binary glTF 2.0 (see :func:`write_glb`)."""
        keep = ("twin", "title", "crs", "origin", "exaggeration", "time", "view", "lang")
        extras = {k: self.metadata[k] for k in keep} | {"axes": "x east, y up, z south; metres from origin"}
        return write_glb(self.layers, self.camera, self.size, extras)

    def html(self) -> str:
        """A standalone page: the ``.glb`` embedded, our WebGL viewer, labels and captions; no network."""
        template = resources.files("twin").joinpath("data/scene_viewer.html").read_text(encoding="utf-8")
        data = {
            "glb": base64.b64encode(self.glb()).decode("ascii"),
            "labels": [
                {"text": lb.text, "position": y_up(lb.position), "rgb": list(lb.rgb), "below": lb.group == "incident"}
                for lb in self.labels
            ],
            "captions": [
                {"text": t, "key": k, "rgb": list(style.LEVEL_RGB.get(k, (0, 0, 0)))} for t, k in self.captions
            ],
            "camera": {
                "position": y_up(self.camera.position),
                "target": y_up(self.camera.focal_point),
                "fov": self.camera.view_angle,
            },
            "background": list(style.BACKGROUND),
        }
        payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
        title = html.escape(self.captions[0][0] if self.captions else str(self.metadata.get("twin", "")))
        lang = "zh" if self.metadata.get("lang") == "zh" else "en"
        return template.replace("__TITLE__", title).replace("__LANG__", lang).replace("__SCENE_DATA__", payload)

    def save(self, path: str | Path, fmt: str | None = None) -> Path:
        """Write the scene as "png", "glb" or "html" (``fmt``, else from the suffix), atomically.

        Raises
        ------
        SceneError
            An unknown format, or a suffix that names none.
        SceneOutputError
            The file cannot be written there.
        """
        path = Path(path)
        fmt = fmt or output_format(path)
        makers = {"png": self.png, "glb": self.glb, "html": lambda: self.html().encode("utf-8")}
        if fmt not in makers:
            raise SceneError(f"unknown scene format {fmt!r}; formats: png, glb, html")
        check_writable(path)
        write_atomic(path, makers[fmt]())
        return path

    def screenshot(self, path: str | Path) -> Path:
        """Write the PNG (as pyvista's ``Plotter.screenshot`` would)."""
        return self.save(path, "png")


def y_up(p: Any) -> list[float]:
    """Scene (x east, y north, z up) to glTF (x east, y up, z south)."""
    return [float(p[0]), float(p[2]), -float(p[1])]


def output_format(path: Path) -> str:
    """The format ("png", "glb" or "html") that a file's suffix names."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SceneError(
            f"cannot tell the format of '{path.name}' from its suffix; use .png, .glb or .html (or --format)"
        )
    return fmt


def check_writable(path: Path) -> None:
    """Fail before rendering when ``path`` cannot be written."""
    folder = path.parent
    if path.is_dir():
        raise SceneOutputError(f"output '{path}' is a folder; give a file name such as '{path / 'scene.png'}'")
    if not folder.is_dir():
        raise SceneOutputError(f"cannot write '{path}': folder '{folder}' does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise SceneOutputError(f"cannot write '{path}': folder '{folder}' is not writable; choose another path")


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename it: never a half-written output."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.partial-", dir=path.parent)
    except OSError as err:
        raise SceneOutputError(f"cannot write '{path}' ({err.strerror}); choose a writable path") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise SceneOutputError(f"cannot write '{path}' ({err.strerror}); choose a writable path") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _primitive(layer: Layer) -> tuple[np.ndarray, int]:
    """Vertex indices (uint32) and glTF mode (4 triangles, 1 lines) of a layer's mesh."""
    if layer.kind == "triangles":
        return np.asarray(layer.mesh.regular_faces, dtype=np.uint32).ravel(), 4
    cells = np.asarray(layer.mesh.lines)
    segments, k = [], 0
    while k < len(cells):
        ids = cells[k + 1 : k + 1 + int(cells[k])]
        segments.append(np.column_stack([ids[:-1], ids[1:]]))
        k += len(ids) + 1
    return np.concatenate(segments).astype(np.uint32).ravel(), 1


def write_glb(
    layers: list[Layer], camera: Camera, size: tuple[int, int], extras: dict[str, Any] | None = None
) -> bytes:
    """Binary glTF 2.0 of the layers: a 12-byte header, a JSON chunk, a binary chunk.

    Each layer is one mesh of one primitive (POSITION float32, COLOR_0 RGBA uint8
    normalised, uint32 indices; triangles or lines), unlit, in the scene's metres
    with y up; the scene's camera is the last node.
    """
    blob = bytearray()
    views: list[dict[str, Any]] = []
    accessors: list[dict[str, Any]] = []

    def add(data: np.ndarray, target: int, **acc: Any) -> int:
        blob.extend(b"\0" * (-len(blob) % 4))
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": data.nbytes, "target": target})
        blob.extend(data.tobytes())
        accessors.append({"bufferView": len(views) - 1, **acc})
        return len(accessors) - 1

    meshes, nodes = [], []
    for layer in layers:
        pts = np.asarray(layer.mesh.points, dtype=np.float64)
        pos = np.column_stack([pts[:, 0], pts[:, 2], -pts[:, 1]]).astype(np.float32)
        lo, hi = [float(v) for v in pos.min(axis=0)], [float(v) for v in pos.max(axis=0)]
        rgba = np.ascontiguousarray(layer.mesh.point_data["rgba"], dtype=np.uint8)
        idx, mode = _primitive(layer)
        attributes = {
            "POSITION": add(pos, 34962, componentType=5126, count=len(pos), type="VEC3", min=lo, max=hi),
            "COLOR_0": add(rgba, 34962, componentType=5121, normalized=True, count=len(rgba), type="VEC4"),
        }
        indices = add(idx, 34963, componentType=5125, count=len(idx), type="SCALAR")
        meshes.append(
            {
                "name": layer.name,
                "primitives": [{"attributes": attributes, "indices": indices, "mode": mode, "material": 0}],
            }
        )
        nodes.append({"name": layer.name, "mesh": len(meshes) - 1})
    nodes.append({"name": "camera", "camera": 0, "matrix": _camera_matrix(camera)})
    blob.extend(b"\0" * (-len(blob) % 4))
    doc = {
        "asset": {"version": "2.0", "generator": "basin twin (twin.scene)"},
        "extensionsUsed": ["KHR_materials_unlit"],
        "scene": 0,
        "scenes": [{"name": "scene", "nodes": list(range(len(nodes)))}],
        "nodes": nodes,
        "meshes": meshes,
        "materials": [
            {
                "name": "vertex colours",
                "pbrMetallicRoughness": {"baseColorFactor": [1, 1, 1, 1], "metallicFactor": 0, "roughnessFactor": 1},
                "extensions": {"KHR_materials_unlit": {}},
            }
        ],
        "cameras": [
            {
                "type": "perspective",
                "perspective": {
                    "yfov": float(np.radians(camera.view_angle)),
                    "aspectRatio": size[0] / size[1],
                    "znear": 1.0,
                },
            }
        ],
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": len(blob)}],
        "extras": extras or {},
    }
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 4)
    header = np.array([0x46546C67, 2, 12 + 8 + len(text) + 8 + len(blob)], dtype="<u4")  # "glTF", v2, length
    json_head = np.array([len(text), 0x4E4F534A], dtype="<u4")  # "JSON"
    bin_head = np.array([len(blob), 0x004E4942], dtype="<u4")  # "BIN\0"
    return header.tobytes() + json_head.tobytes() + text + bin_head.tobytes() + bytes(blob)


def _camera_matrix(camera: Camera) -> list[float]:
    """Column-major camera-to-world matrix in glTF axes (a glTF camera looks down its −z)."""
    pos, foc = np.array(y_up(camera.position)), np.array(y_up(camera.focal_point))
    back = (pos - foc) / np.linalg.norm(pos - foc)
    right = np.cross([0.0, 1.0, 0.0], back)
    right /= np.linalg.norm(right)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, np.cross(back, right), back, pos
    return [float(v) for v in m.T.ravel()]
