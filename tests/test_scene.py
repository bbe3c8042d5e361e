"""The 3D scene: decimation with known errors, rendered pixels, glTF and HTML contents, the CLI.

Scenes are rendered off screen at 640 x 400 with a reduced triangle budget (the
budget changes the terrain's detail, not what is checked). The red station comes
from the mine-leak scenario on a copy of the demo twin.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

import twin
from twin.analysis import plume as plumes
from twin.analysis import response
from twin.analysis.scenarios import run
from twin.cli import cli
from twin.scene import (
    FontError,
    OpenGLError,
    SceneError,
    SceneOutputError,
    decimate,
    find_cjk_font,
    mesh,
    opengl,
    output,
    style,
)

SIZE = (640, 400)
BUDGET = 150_000
WHITE = np.array(style.BACKGROUND)


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def overview(demo):
    """The demo twin from the south, no time given (stations grey, no store read)."""
    with demo.scene(size=SIZE, max_triangles=BUDGET) as scene:
        yield scene


@pytest.fixture(scope="module")
def leak(demo_dir, tmp_path_factory):
    """A copy of the demo twin with the mine-leak scenario (seed 1) in its store, and its true answer."""
    folder = tmp_path_factory.mktemp("scene") / "cevennes"
    shutil.copytree(demo_dir, folder)
    basin = twin.open(str(folder))
    return basin, run(basin.model, basin.store, "mine-leak", folder=basin.path, seed=1)


@pytest.fixture(scope="module")
def red_station(leak):
    """The first station to reach red, and the middle of that episode."""
    basin, truth = leak
    episodes = response.warnings(basin.model, basin.store, start=truth["window"][0], end=truth["window"][1], plans=False)
    first = episodes[episodes["level_name"] == "red"].sort_values("start").iloc[0]
    return str(first["station"]), first["start"] + (first["end"] - first["start"]) / 2


def png_image(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def around(img: np.ndarray, col: float, row: float, r: int = 3) -> np.ndarray:
    """The pixels within ``r`` of a display position, as (n, 3)."""
    c, w = int(round(col)), int(round(row))
    return img[max(0, w - r) : w + r + 1, max(0, c - r) : c + r + 1].reshape(-1, 3).astype(int)


def reddish(pixels: np.ndarray) -> np.ndarray:
    return (pixels[:, 0] > 100) & (pixels[:, 0] > 2 * pixels[:, 1]) & (pixels[:, 0] > 2 * pixels[:, 2])


def read_glb(data: bytes) -> tuple[dict, bytes]:
    """The JSON document and binary chunk of a glb (12-byte header, JSON chunk, BIN chunk)."""
    magic, version, length = np.frombuffer(data[:12], "<u4")
    assert (magic, version, length) == (0x46546C67, 2, len(data))
    json_len, json_type = np.frombuffer(data[12:20], "<u4")
    assert json_type == 0x4E4F534A and json_len % 4 == 0
    doc = json.loads(data[20 : 20 + json_len])
    bin_len, bin_type = np.frombuffer(data[20 + json_len : 28 + json_len], "<u4")
    assert bin_type == 0x004E4942 and 28 + json_len + bin_len == len(data)
    return doc, data[28 + json_len :]


def accessor(doc: dict, blob: bytes, index: int) -> np.ndarray:
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    dtype = {5126: "<f4", 5125: "<u4", 5121: "u1"}[acc["componentType"]]
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[acc["type"]]
    raw = blob[view["byteOffset"] : view["byteOffset"] + view["byteLength"]]
    return np.frombuffer(raw, dtype).reshape(acc["count"], width)


# -- decimation: known answers ------------------------------------------------------------------------


def test_decimation_of_a_paraboloid_has_the_known_error():
    # z = a (r² + c²) over right triangles with legs s (cells): the linear surface departs most
    # at the middle of each quad's diagonal, by a s² / 2, and that cell exists for an even s
    a = 0.01
    rows, cols = np.mgrid[0:101, 0:101]
    dem = a * (rows**2 + cols**2).astype(float)
    dec = decimate(dem, max_triangles=1250)
    assert dec.stride == 4 and dec.triangles == 1250
    assert dec.max_error_m == pytest.approx(a * 4**2 / 2, rel=1e-9)


def test_decimation_error_matches_an_independent_linear_interpolation():
    from matplotlib.tri import LinearTriInterpolator, Triangulation

    rng = np.random.default_rng(3)
    dem = rng.normal(0, 5, (61, 47)).cumsum(axis=0).cumsum(axis=1) / 10
    dec = decimate(dem, max_triangles=400)
    kept_r, kept_c = np.meshgrid(dec.rows, dec.cols, indexing="ij")
    tri = Triangulation(
        kept_c.ravel().astype(float), kept_r.ravel().astype(float), mesh.grid_triangles(np.isfinite(dec.z))
    )
    surface = LinearTriInterpolator(tri, dec.z.ravel())
    cc, rr = np.meshgrid(np.arange(dem.shape[1], dtype=float), np.arange(dem.shape[0], dtype=float))
    expected = np.nanmax(np.abs(dem - np.ma.filled(surface(cc, rr), np.nan)))
    assert dec.stride > 1
    assert dec.max_error_m == pytest.approx(expected, rel=1e-9)


def test_decimation_error_is_small_on_a_smooth_surface():
    # 30 m cells, relief of ±200 m over wavelengths of 30 and 40 km: nearly linear at the mesh's scale
    y, x = np.mgrid[0:800, 0:700] * 30.0
    dem = 200 * np.sin(2 * np.pi * x / 30_000) * np.cos(2 * np.pi * y / 40_000) + 500
    dec = decimate(dem, max_triangles=50_000)
    assert dec.stride > 2 and dec.triangles <= 50_000
    assert 0 < dec.max_error_m < 0.5
    assert dec.rms_error_m < dec.max_error_m


def test_no_decimation_when_the_grid_fits_the_budget():
    dem = np.random.default_rng(0).normal(0, 100, (40, 30))
    dec = decimate(dem, max_triangles=2 * 39 * 29)
    assert dec.stride == 1 and dec.triangles == 2 * 39 * 29
    assert dec.max_error_m == 0.0 and dec.rms_error_m == 0.0


@pytest.mark.parametrize("shape", [(2, 2), (3, 1000), (1000, 3), (517, 733)])
@pytest.mark.parametrize("budget", [2, 10, 999, 100_000])
def test_the_stride_is_the_smallest_within_the_budget(shape, budget):
    stride = mesh.stride_for(shape, budget)

    def triangles(s: int) -> int:
        return 2 * (len(mesh.kept_indices(shape[0], s)) - 1) * (len(mesh.kept_indices(shape[1], s)) - 1)

    assert triangles(stride) <= budget
    assert stride == 1 or triangles(stride - 1) > budget


def test_nodata_cells_have_no_triangles_and_do_not_poison_the_error():
    dem = np.add.outer(np.arange(50.0), np.arange(40.0))
    dem[20:30, 10:20] = np.nan
    dec = decimate(dem, max_triangles=600)
    tri = mesh.grid_triangles(np.isfinite(dec.z))
    assert np.isfinite(dec.z.ravel()[tri]).all()
    assert dec.triangles == len(tri) < 2 * (len(dec.rows) - 1) * (len(dec.cols) - 1)
    assert dec.max_error_m < 1e-9 and dec.uncovered_cells > 0  # a plane; cells next to the hole are not covered


def test_terrain_too_small_or_budget_too_small_is_refused():
    with pytest.raises(SceneError, match="at least 2 x 2"):
        decimate(np.zeros((1, 50)))
    with pytest.raises(SceneError, match="max_triangles"):
        decimate(np.zeros((5, 5)), max_triangles=1)


# -- the rendered image -------------------------------------------------------------------------------


def test_png_has_the_size_asked_and_the_terrain_fills_the_frame(overview):
    img = png_image(overview.png())
    assert img.shape == (SIZE[1], SIZE[0], 3)
    background = (img == WHITE).all(axis=-1)
    assert background.mean() < 0.35  # most of the frame is terrain
    # the terrain box's corners are all in view
    terrain = overview.layers[0].mesh
    x0, x1, y0, y1, _, _ = terrain.bounds
    corners = [(x, y, overview.layers[0].mesh.points[:, 2].mean()) for x in (x0, x1) for y in (y0, y1)]
    cols, rows = overview.to_display(corners).T
    assert (cols >= 0).all() and (cols < SIZE[0]).all() and (rows >= 0).all() and (rows < SIZE[1]).all()


def test_the_same_twin_and_parameters_give_the_same_png_bytes(demo, overview):
    first = hashlib.sha256(overview.png()).hexdigest()
    with demo.scene(size=SIZE, max_triangles=BUDGET) as again:
        assert hashlib.sha256(again.png()).hexdigest() == first


def test_a_station_at_red_renders_red_where_it_projects(leak, red_station):
    basin, _ = leak
    station, at = red_station
    with basin.scene(at=at, size=SIZE, max_triangles=BUDGET, labels=False) as scene:
        info = scene.metadata["stations"][station]
        assert info["level"] == "red" and info["rgb"] == list(style.LEVEL_RGB["red"])
        img = scene.image()
        (col, row) = scene.to_display([info["position"]])[0]
        assert reddish(around(img, col, row)).sum() >= 5
        # the other stations are not red
        for sid, other in scene.metadata["stations"].items():
            if other["level"] != "red":
                c, r = scene.to_display([other["position"]])[0]
                assert reddish(around(img, c, r, 1)).sum() == 0, sid
    with basin.scene(size=SIZE, max_triangles=BUDGET, labels=False) as grey:  # no time: no levels
        assert reddish(around(grey.image(), col, row)).sum() == 0


def test_chinese_labels_are_drawn_with_the_cjk_font_not_as_empty_boxes(leak):
    basin, _ = leak
    with basin.scene(lang="zh", size=SIZE, max_triangles=BUDGET, labels=False) as bare:
        without = bare.image()
    with basin.scene(lang="zh", size=SIZE, max_triangles=BUDGET) as scene:
        assert scene.font_file is not None and scene.font_file.is_file()
        with_labels = scene.image()
        # the label farthest from the others, written in Chinese
        chinese = [lb for lb in scene.labels if style.needs_cjk_font([lb.text])]
        spots = scene.to_display([lb.position for lb in chinese])
        gaps = [np.delete(np.hypot(*(spots - s).T), k).min() for k, s in enumerate(spots)]
        col, row = spots[int(np.argmax(gaps))]
        scene.font_file = None  # VTK's own font has no CJK glyphs: it draws the box and nothing in it
        scene.close()
        boxes = scene.image()
    area = (slice(int(row) - 10, int(row) + 8), slice(int(col) - 20, int(col) + 21))  # the label, about its point
    drawn = (with_labels[area] != without[area]).any(axis=-1)
    assert drawn.mean() > 0.3  # the label's box and text
    strokes = (with_labels[area] != boxes[area]).any(axis=-1)
    assert strokes.sum() > 100  # the glyphs, which the built-in font leaves out
    dark = (with_labels[area].max(axis=-1) < 80).sum()
    assert dark > (boxes[area].max(axis=-1) < 80).sum() + 30  # dark strokes where the box is empty


def test_a_missing_cjk_font_is_an_error_naming_what_to_install(demo, monkeypatch):
    monkeypatch.setattr(style, "CJK_FONTS", ("/nonexistent/font.ttc",))
    monkeypatch.setattr(style, "_fontconfig_cjk", lambda: [])
    with pytest.raises(FontError, match="apt-get install fonts-wqy-microhei"):
        demo.scene(lang="zh", size=SIZE, max_triangles=BUDGET)
    with demo.scene(lang="en", size=SIZE, max_triangles=BUDGET) as english:  # names in Latin letters
        assert english.font_file is None


def test_a_font_without_the_glyphs_is_refused():
    import matplotlib

    dejavu = f"{matplotlib.get_data_path()}/fonts/ttf/DejaVuSans.ttf"
    with pytest.raises(FontError, match="no glyph for '亚米莱'"):
        find_cjk_font(dejavu, ("米亚莱 Mialet",))
    with pytest.raises(FontError, match="does not exist"):
        find_cjk_font("/nonexistent/font.ttf", ("x",))
    assert find_cjk_font(dejavu, ("Saint-Étienne",)) == find_cjk_font(dejavu)


# -- views and the plume ------------------------------------------------------------------------------


def test_the_river_view_looks_down_the_main_river_toward_its_outlet(demo):
    from twin.scene import camera
    from twin.scene.layers import Surface

    with demo.scene(view="river", size=SIZE, max_triangles=BUDGET, labels=False) as scene:
        reaches = camera.main_river(demo)
        assert demo.network.reach(reaches[-1])["next_down"] == 0
        assert demo.network.reach(reaches[-1])["upstream_area_km2"] == demo.network.reaches["upstream_area_km2"].max()
        surface = Surface(
            decimate(demo.terrain.dem, BUDGET), demo.terrain.grid.transform, scene.metadata["origin"], 2.0
        )
        path = camera.river_points(demo, surface, reaches)
        ndc = camera.project(scene.camera, SIZE[0] / SIZE[1], path[[0, -1]])
        assert ndc[0, 2] < ndc[1, 2]  # the source is nearer the camera than the outlet
        assert (np.abs(ndc[:, :2]) <= 1).all()  # both in the frame


def test_the_incident_view_frames_the_incident_and_the_river_below_it(leak):
    basin, truth = leak
    incident = basin.incidents.get(truth["incident_id"])
    with basin.scene(incident=incident["id"], size=SIZE, max_triangles=BUDGET, labels=False) as scene:
        assert scene.metadata["view"] == "incident"
        assert scene.metadata["time"] == pd.Timestamp(incident["observed"]).isoformat()
        assert incident["id"] in scene.metadata["incidents"]
        x, y = basin.to_twin_xy(incident["lon"], incident["lat"])
        ox, oy = scene.metadata["origin"]
        cone = next(la for la in scene.layers if la.name == "incidents").mesh
        tip = cone.points[np.argmin(cone.points[:, 2])]
        assert np.hypot(tip[0] - (x - ox), tip[1] - (y - oy)) < 100
        col, row = scene.to_display([tip])[0]
        assert 0.1 * SIZE[0] < col < 0.9 * SIZE[0] and 0.1 * SIZE[1] < row < 0.9 * SIZE[1]


def test_a_plume_colours_the_river_below_the_release_at_the_time(leak):
    basin, truth = leak
    src = truth["source"]
    ds = plumes.simulate(basin.network.reaches, src["reach_id"], src["measure_m"], src["time"], mass_kg=40.0)
    at = pd.Timestamp(truth["peak_arrivals"]["GM-MIALET"])
    values = plumes_at_reaches(ds, at)
    with basin.scene(at=at, plume=ds, size=SIZE, max_triangles=BUDGET, labels=False) as scene:
        layer = next(la for la in scene.layers if la.name == "plume")
        mg_l = layer.mesh.point_data["mg_l"]
        assert mg_l.max() <= values.max() * (1 + 1e-9)
        assert mg_l.min() >= ds["concentration"].values.max() / 1000
        assert scene.metadata["plume"]["max_at_time_mg_l"] == pytest.approx(values.max())
        rgba = layer.mesh.point_data["rgba"]
        assert (rgba[np.argmax(mg_l), :3] != rgba[np.argmin(mg_l), :3]).any()  # colours follow concentration
    with pytest.raises(SceneError, match="at a time"):
        basin.scene(plume=ds, size=SIZE)


def plumes_at_reaches(ds, at):
    from twin.scene.layers import plume_at

    return plume_at(ds, at)


# -- glTF and HTML ------------------------------------------------------------------------------------


def test_glb_has_one_mesh_per_layer_and_the_terrain_bounds(demo, overview):
    doc, blob = read_glb(overview.glb())
    names = [la["name"] for la in overview.metadata["layers"]]
    assert [m["name"] for m in doc["meshes"]] == names
    assert names[0] == "terrain" and {"stations", "boundaries-departement"} <= set(names)
    assert any(n.startswith("rivers-order-") for n in names)
    assert doc["buffers"][0]["byteLength"] == len(blob)
    terrain = doc["meshes"][0]["primitives"][0]
    pos = accessor(doc, blob, terrain["attributes"]["POSITION"])
    idx = accessor(doc, blob, terrain["indices"]).ravel()
    assert terrain["mode"] == 4 and len(idx) // 3 == overview.metadata["terrain"]["triangles"] <= BUDGET
    assert idx.max() < len(pos)
    # metres east of the grid's west edge, elevation × 2 up, metres south of its north edge (negative)
    nrow, ncol = demo.terrain.grid.shape
    cell = 30.0
    assert pos[:, 0].min() == pytest.approx(cell / 2) and pos[:, 0].max() == pytest.approx((ncol - 0.5) * cell)
    assert pos[:, 2].min() == pytest.approx(-(nrow - 0.5) * cell) and pos[:, 2].max() == pytest.approx(-cell / 2)
    lo, hi = overview.metadata["terrain"]["elevation_m"]
    assert 2 * lo <= pos[:, 1].min() and pos[:, 1].max() <= 2 * hi
    assert pos[:, 1].max() >= 2 * (hi - overview.metadata["terrain"]["max_error_m"])
    assert doc["accessors"][terrain["attributes"]["POSITION"]]["max"] == pytest.approx(pos.max(axis=0).tolist())
    colours = accessor(doc, blob, terrain["attributes"]["COLOR_0"])
    assert colours.shape == (len(pos), 4) and (colours[:, 3] == 255).all()
    assert doc["extras"]["origin"] == overview.metadata["origin"]


def test_html_embeds_the_glb_and_needs_no_network(overview):
    page = overview.html()
    match = re.search(r'<script id="scene-data" type="application/json">(.*?)</script>', page, re.S)
    assert match is not None
    data = json.loads(match.group(1))
    assert base64.b64decode(data["glb"]) == overview.glb()
    assert len(data["labels"]) == len(overview.labels) > 0
    assert not re.search(r"https?://|<script[^>]+src=|<link[^>]+href=", page)
    assert 'getContext("webgl2")' in page


def test_outputs_are_written_whole_or_not_at_all(overview, tmp_path, monkeypatch):
    out = overview.save(tmp_path / "scene.glb")
    assert out.read_bytes()[:4] == b"glTF"

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output.os, "replace", failing_replace)
    with pytest.raises(SceneOutputError, match="No space left"):
        overview.save(tmp_path / "other.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.glb"]


# -- the command line ---------------------------------------------------------------------------------


def render(*args):
    return CliRunner().invoke(cli, ["render", *[str(a) for a in args]], prog_name="twin")


def test_cli_renders_a_png_of_the_size_asked(leak, tmp_path):
    basin, truth = leak
    out = tmp_path / "mialet.png"
    result = render(
        basin.path,
        "-o",
        out,
        "--incident",
        truth["incident_id"],
        "--size",
        "320x200",
        "--lang",
        "zh",
        "--max-triangles",
        60_000,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["format"] == "png" and summary["view"] == "incident"
    assert summary["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert summary["terrain"]["triangles"] <= 60_000 and summary["terrain"]["max_error_m"] > 0
    assert png_image(out.read_bytes()).shape == (200, 320, 3)
    assert truth["incident_id"] in summary["incidents"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--incident", "999"], "no incident 999"),
        (["--view", "incident"], "--view incident needs --incident"),
        (["--size", "big"], "not WIDTHxHEIGHT"),
        (["--size", "10x10000"], "out of range"),
        (["--lang", "fr"], "unknown --lang 'fr'"),
        (["--at", "2026-09-03 10:00"], "has no zone"),
    ],
)
def test_cli_bad_input_is_one_line_exit_1_and_no_file(leak, tmp_path, args, message):
    basin, _ = leak
    out = tmp_path / "scene.png"
    result = render(basin.path, "-o", out, *args)
    assert result.exit_code == 1
    assert result.stderr.startswith("twin: error: ") and message in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "message"),
    [("missing/scene.png", "does not exist"), ("scene.txt", "suffix"), (".", "is a folder")],
)
def test_cli_unwritable_or_unknown_output_is_refused_before_rendering(leak, tmp_path, name, message):
    basin, _ = leak
    result = render(basin.path, "-o", tmp_path / name)
    assert result.exit_code == 1 and message in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_importing_the_scene_and_the_cli_does_not_load_pyvista():
    code = "import sys, twin.scene, twin.cli; print([m for m in ('pyvista', 'vtk') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_basin_builds_its_own_scene(demo):
    with demo.scene(size=(320, 200), max_triangles=BUDGET) as scene:
        image = scene.image()
    assert image.shape[:2] == (200, 320)


# -- without OpenGL ------------------------------------------------------------------------------------
#: Two ways a machine lacks what VTK's EGL window loads (without either, VTK used to crash the process):
#: no EGL vendor library (Debian's libegl-mesa0), no Mesa driver (libgl1-mesa-dri).
NO_OPENGL = {
    "no EGL vendor": {"__EGL_VENDOR_LIBRARY_FILENAMES": "/nonexistent/50_mesa.json"},
    "no Mesa driver": {"LIBGL_DRIVERS_PATH": "/nonexistent"},
}
PACKAGES = "sudo apt-get install -y libegl1 libegl-mesa0 libgl1-mesa-dri"


@pytest.mark.parametrize("env", NO_OPENGL.values(), ids=NO_OPENGL.keys())
def test_cli_render_without_opengl_is_one_line_naming_the_packages_not_a_crash(make_saved_valley, tmp_path, env):
    basin = make_saved_valley({"UP": (10, "station")})
    out = tmp_path / "out"
    out.mkdir()

    def twin_render(name: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "twin.cli", "render", str(basin.path), "-o", str(out / name)]
        return subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=False)

    png = twin_render("scene.png")
    assert png.returncode == 1, png.stderr  # not -11: a segmentation fault
    lines = png.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("twin: error: cannot render the 3D scene off screen"), lines
    assert PACKAGES in lines[0] and "Traceback" not in png.stderr
    assert list(out.iterdir()) == []
    glb = twin_render("scene.glb")  # what the message offers instead: no OpenGL needed
    assert glb.returncode == 0, glb.stderr
    assert (out / "scene.glb").read_bytes()[:4] == b"glTF"


def test_a_scene_without_opengl_raises_an_error_naming_the_packages(make_saved_valley, monkeypatch):
    basin = make_saved_valley({"UP": (10, "station")})
    monkeypatch.setenv("LIBGL_DRIVERS_PATH", "/nonexistent")
    opengl.check_offscreen_rendering.cache_clear()  # this process has rendered already: check again
    with basin.scene(size=(64, 40)) as scene, pytest.raises(OpenGLError, match=re.escape(PACKAGES)):
        scene.image()
    assert isinstance(OpenGLError("x"), OSError)  # the web layer answers 503: the server lacks a library
