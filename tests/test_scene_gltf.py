"""The scene's ``.glb`` read back with pygltflib and held to the glTF 2.0 rules a viewer relies on.

:func:`problems` checks what a glTF loader trips over: the asset version, the GLB container, every
buffer view and accessor inside the buffer with a valid component type, type and alignment, the
POSITION bounds (which viewers use to frame and cull) equal to the data, indices within the vertex
count, primitives whose attributes and material exist, an acyclic node hierarchy whose roots the
scene lists, rigid camera nodes, and materials, textures and images where there are any. It is
checked itself on broken files (:data:`BREAKAGES`): a check that passes everything would pass a bad
``.glb`` too. Then the georeference that ``Scene.glb`` documents (``extras``: CRS, origin, axes,
exaggeration) must put the terrain's vertices on the twin's cell centres at their DEM elevations,
and the station where the twin has it.

The scenes are of the 41 x 31 V-valley (tests/synthetic.py): no OpenGL is needed for a ``.glb``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pygltflib
import pytest

from . import synthetic

#: componentType -> numpy dtype (little-endian), and the element width of each accessor type
COMPONENTS = {5120: "i1", 5121: "u1", 5122: "<i2", 5123: "<u2", 5125: "<u4", 5126: "<f4"}
WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
MIME_TYPES = {"image/png", "image/jpeg"}


# -- the rules ------------------------------------------------------------------------------------


def container_problems(data: bytes) -> list[str]:
    """The GLB container: header, a JSON chunk then a BIN chunk, each 4-byte aligned, lengths that add up."""
    out = []
    magic, version, length = np.frombuffer(data[:12], "<u4")
    if (magic, version) != (0x46546C67, 2):
        out.append(f"GLB header: magic {magic:#x}, version {version}; expected 'glTF', 2")
    if length != len(data):
        out.append(f"GLB header says {length} bytes; the file has {len(data)}")
    offset, kinds = 12, []
    while offset + 8 <= len(data):
        chunk_length, kind = (int(v) for v in np.frombuffer(data[offset : offset + 8], "<u4"))
        if chunk_length % 4:
            out.append(f"chunk {kind:#x} at byte {offset} is {chunk_length} bytes long, not a multiple of 4")
        kinds.append(kind)
        offset += 8 + chunk_length
    if offset != len(data):
        out.append(f"the chunks end at byte {offset}; the file has {len(data)}")
    if kinds[:1] != [0x4E4F534A] or kinds[1:] not in ([], [0x004E4942]):
        out.append(f"chunks {[hex(k) for k in kinds]}: expected JSON, then at most one BIN")
    return out


def _accessor_problems(g: pygltflib.GLTF2, blob: bytes, buffer_length: int) -> tuple[list[str], dict[int, Any]]:
    """Each accessor fits its view and has valid types and min/max; returns the problems and the arrays read."""
    out: list[str] = []
    arrays: dict[int, Any] = {}
    for i, a in enumerate(g.accessors):
        where = f"accessor {i}"
        if a.componentType not in COMPONENTS or a.type not in WIDTHS:
            out.append(f"{where}: componentType {a.componentType} / type {a.type!r} is not a glTF 2.0 one")
            continue
        if a.count is None or a.count < 1:
            out.append(f"{where}: count {a.count}, at least 1 is required")
            continue
        if a.normalized and a.componentType in (5125, 5126):
            out.append(f"{where}: normalized is only for 8- and 16-bit integers")
        if a.bufferView is None:  # all zeros (or sparse): nothing to read here
            continue
        if not 0 <= a.bufferView < len(g.bufferViews):
            out.append(f"{where}: bufferView {a.bufferView} does not exist")
            continue
        view = g.bufferViews[a.bufferView]
        dtype = np.dtype(COMPONENTS[a.componentType])
        width = WIDTHS[a.type]
        element = dtype.itemsize * width
        stride = view.byteStride or element
        start = (view.byteOffset or 0) + (a.byteOffset or 0)
        span = stride * (a.count - 1) + element
        end = (a.byteOffset or 0) + span
        if start % dtype.itemsize:
            out.append(f"{where}: starts at byte {start}, not a multiple of its component size {dtype.itemsize}")
        if end > view.byteLength:
            out.append(f"{where}: {a.count} elements end at byte {end} of its view, beyond its {view.byteLength}")
            continue
        if (view.byteOffset or 0) + view.byteLength > buffer_length or start + span > len(blob):
            continue  # reported with the view or the buffer
        rows = np.lib.stride_tricks.as_strided(
            np.frombuffer(blob, dtype, count=span // dtype.itemsize, offset=start),
            shape=(a.count, width),
            strides=(stride, dtype.itemsize),
        )
        arrays[i] = rows
        for name, bound, actual in (("min", a.min, rows.min(axis=0)), ("max", a.max, rows.max(axis=0))):
            if not bound:  # absent (pygltflib reads an absent min/max as [])
                continue
            if len(bound) != width:
                out.append(f"{where}: {name} has {len(bound)} values for a {a.type}")
            elif not np.array_equal(np.asarray(bound, dtype=dtype), actual):
                out.append(f"{where}: {name} {list(bound)} but the data's is {actual.tolist()}")
    return out, arrays


def _primitive_problems(g: pygltflib.GLTF2, arrays: dict[int, Any]) -> list[str]:
    out = []
    for m, mesh in enumerate(g.meshes):
        for p, prim in enumerate(mesh.primitives):
            where = f"mesh {m} ({mesh.name}) primitive {p}"
            attributes = {k: v for k, v in vars(prim.attributes).items() if v is not None}
            if "POSITION" not in attributes:
                out.append(f"{where}: no POSITION")
            missing = {k: v for k, v in attributes.items() if not 0 <= v < len(g.accessors)}
            if missing:
                out.append(f"{where}: attributes {missing} name no accessor (there are {len(g.accessors)})")
                continue
            accs = {k: g.accessors[v] for k, v in attributes.items()}
            if len({a.count for a in accs.values()}) > 1:
                out.append(f"{where}: attributes of different counts { ({k: a.count for k, a in accs.items()}) }")
            for name, a in accs.items():
                view = g.bufferViews[a.bufferView] if a.bufferView is not None else None
                if view is not None and view.target not in (None, ARRAY_BUFFER):
                    out.append(f"{where}: {name}'s buffer view has target {view.target}, not ARRAY_BUFFER")
                if view is not None and ((view.byteOffset or 0) + (a.byteOffset or 0)) % 4:
                    out.append(f"{where}: {name} is not 4-byte aligned")
            pos = accs.get("POSITION")
            if pos is not None and (pos.type, pos.componentType) != ("VEC3", 5126):
                out.append(f"{where}: POSITION is {pos.type} of {pos.componentType}, not VEC3 of float")
            if pos is not None and not (pos.min and pos.max):
                out.append(f"{where}: POSITION has no min/max (required)")
            colour = accs.get("COLOR_0")
            if colour is not None and not (
                colour.type in ("VEC3", "VEC4")
                and (colour.componentType == 5126 or (colour.componentType in (5121, 5123) and colour.normalized))
            ):
                out.append(f"{where}: COLOR_0 must be VEC3/VEC4 of float or normalized unsigned byte/short")
            if prim.mode not in range(7):
                out.append(f"{where}: mode {prim.mode} is not a glTF primitive mode")
            if prim.material is not None and not 0 <= prim.material < len(g.materials):
                out.append(f"{where}: material {prim.material} does not exist")
            if prim.indices is None:
                continue
            if not 0 <= prim.indices < len(g.accessors):
                out.append(f"{where}: indices accessor {prim.indices} does not exist")
                continue
            idx = g.accessors[prim.indices]
            if idx.type != "SCALAR" or idx.componentType not in (5121, 5123, 5125) or idx.normalized:
                out.append(f"{where}: indices must be SCALAR unsigned integers, not normalized")
            view = g.bufferViews[idx.bufferView] if idx.bufferView is not None else None
            if view is not None and view.target not in (None, ELEMENT_ARRAY_BUFFER):
                out.append(f"{where}: the indices' buffer view has target {view.target}, not ELEMENT_ARRAY_BUFFER")
            per = {1: 2, 4: 3}.get(prim.mode)
            if per and idx.count % per:
                out.append(f"{where}: {idx.count} indices for mode {prim.mode}, not a multiple of {per}")
            if prim.indices in arrays and pos is not None:
                top = int(arrays[prim.indices].max())
                if top >= pos.count:
                    out.append(f"{where}: index {top} is past the {pos.count} vertices")
    return out


def _node_problems(g: pygltflib.GLTF2) -> list[str]:
    out = []
    parent: dict[int, int] = {}
    for i, node in enumerate(g.nodes):
        where = f"node {i} ({node.name})"
        if node.mesh is not None and not 0 <= node.mesh < len(g.meshes):
            out.append(f"{where}: mesh {node.mesh} does not exist")
        if node.camera is not None and not 0 <= node.camera < len(g.cameras):
            out.append(f"{where}: camera {node.camera} does not exist")
        for child in node.children or []:
            if not 0 <= child < len(g.nodes):
                out.append(f"{where}: child {child} does not exist")
            elif child in parent:
                out.append(f"{where}: child {child} already has parent {parent[child]}")
            else:
                parent[child] = i
        if node.matrix is not None:
            if any(v is not None for v in (node.translation, node.rotation, node.scale)):
                out.append(f"{where}: both a matrix and translation/rotation/scale")
            m = np.asarray(node.matrix, dtype=float)
            if m.shape != (16,):
                out.append(f"{where}: matrix of {m.size} values, not 16")
                continue
            m = m.reshape(4, 4).T  # column-major
            if not np.allclose(m[3], [0, 0, 0, 1]):
                out.append(f"{where}: matrix is not affine (last row {m[3].tolist()})")
            rot = m[:3, :3]
            if node.camera is not None and not (np.allclose(rot.T @ rot, np.eye(3)) and np.linalg.det(rot) > 0):
                out.append(f"{where}: a camera's transform must be a rotation and a translation")
    for start in range(len(g.nodes)):  # parents are unique, so a cycle is a walk up that comes back
        seen, node = {start}, start
        while node in parent:
            node = parent[node]
            if node in seen:
                out.append(f"the node hierarchy has a cycle through node {start}")
                break
            seen.add(node)
    if g.scene is not None and not 0 <= g.scene < len(g.scenes):
        out.append(f"scene {g.scene} does not exist")
    for s, scene in enumerate(g.scenes):
        for n in scene.nodes or []:
            if not 0 <= n < len(g.nodes):
                out.append(f"scene {s} lists node {n}, which does not exist")
            elif n in parent:
                out.append(f"scene {s} lists node {n}, which is not a root (its parent is {parent[n]})")
    return out


def _material_problems(g: pygltflib.GLTF2, buffer_length: int) -> list[str]:
    out = []
    used = set(g.extensionsUsed or [])
    if not set(g.extensionsRequired or []) <= used:
        out.append(f"extensionsRequired {g.extensionsRequired} not all in extensionsUsed {sorted(used)}")

    def texture(where: str, info: Any) -> None:
        if info is not None and not 0 <= info.index < len(g.textures):
            out.append(f"{where}: texture {info.index} does not exist")

    for i, mat in enumerate(g.materials):
        where = f"material {i} ({mat.name})"
        pbr = mat.pbrMetallicRoughness
        if pbr is not None:
            factors = list(pbr.baseColorFactor or [1, 1, 1, 1])
            if len(factors) != 4 or not all(0 <= f <= 1 for f in factors):
                out.append(f"{where}: baseColorFactor {factors}")
            for name in ("metallicFactor", "roughnessFactor"):
                value = getattr(pbr, name)
                if value is not None and not 0 <= value <= 1:
                    out.append(f"{where}: {name} {value} outside [0, 1]")
            texture(where, pbr.baseColorTexture)
            texture(where, pbr.metallicRoughnessTexture)
        for name in ("normalTexture", "occlusionTexture", "emissiveTexture"):
            texture(where, getattr(mat, name))
        if mat.alphaMode not in (None, "OPAQUE", "MASK", "BLEND"):
            out.append(f"{where}: alphaMode {mat.alphaMode!r}")
        if not set(mat.extensions or {}) <= used:
            out.append(f"{where}: extensions {sorted(mat.extensions)} not declared in extensionsUsed")
    for i, tex in enumerate(g.textures):
        if tex.source is not None and not 0 <= tex.source < len(g.images):
            out.append(f"texture {i}: image {tex.source} does not exist")
        if tex.sampler is not None and not 0 <= tex.sampler < len(g.samplers):
            out.append(f"texture {i}: sampler {tex.sampler} does not exist")
    for i, img in enumerate(g.images):
        if (img.uri is None) == (img.bufferView is None):
            out.append(f"image {i}: needs exactly one of uri and bufferView")
        if img.bufferView is not None:
            if img.mimeType not in MIME_TYPES:
                out.append(f"image {i}: in a buffer view, mimeType must be one of {sorted(MIME_TYPES)}")
            if not 0 <= img.bufferView < len(g.bufferViews):
                out.append(f"image {i}: bufferView {img.bufferView} does not exist")
    for i, cam in enumerate(g.cameras):
        p = cam.perspective
        if cam.type == "perspective" and p is not None:
            if not (p.yfov and 0 < p.yfov < np.pi and p.znear and p.znear > 0):
                out.append(f"camera {i}: yfov {p.yfov}, znear {p.znear}")
            if p.zfar is not None and p.zfar <= p.znear:
                out.append(f"camera {i}: zfar {p.zfar} not beyond znear {p.znear}")
            if p.aspectRatio is not None and p.aspectRatio <= 0:
                out.append(f"camera {i}: aspectRatio {p.aspectRatio}")
        elif cam.type != "orthographic":
            out.append(f"camera {i}: type {cam.type!r} without its parameters")
    return out


def problems(data: bytes) -> list[str]:
    """Every glTF 2.0 rule of the module's docstring that the ``.glb`` bytes break, one line each."""
    out = container_problems(data)
    if out:
        return out
    g = pygltflib.GLTF2.load_from_bytes(data)
    blob = g.binary_blob() or b""
    if g.asset is None or g.asset.version != "2.0":
        out.append(f"asset.version is {getattr(g.asset, 'version', None)!r}, not '2.0'")
    if len(g.buffers) != 1 or g.buffers[0].uri is not None:
        out.append(f"a .glb's data is its BIN chunk: one buffer without uri, not {len(g.buffers)}")
        return out
    buffer_length = g.buffers[0].byteLength
    if not buffer_length <= len(blob) < buffer_length + 4:
        out.append(f"buffer 0 is {buffer_length} bytes; the BIN chunk has {len(blob)}")
    for i, view in enumerate(g.bufferViews):
        end = (view.byteOffset or 0) + view.byteLength
        if view.buffer != 0:
            out.append(f"bufferView {i}: buffer {view.buffer} does not exist")
        if end > buffer_length:
            out.append(f"bufferView {i}: ends at byte {end}, beyond the buffer's {buffer_length}")
        if view.target not in (None, ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER):
            out.append(f"bufferView {i}: target {view.target}")
        if view.byteStride is not None and not (4 <= view.byteStride <= 252 and view.byteStride % 4 == 0):
            out.append(f"bufferView {i}: byteStride {view.byteStride}")
    accessor_problems, arrays = _accessor_problems(g, blob, buffer_length)
    return (
        out
        + accessor_problems
        + _primitive_problems(g, arrays)
        + _node_problems(g)
        + _material_problems(g, buffer_length)
    )


# -- the scenes -----------------------------------------------------------------------------------


@pytest.fixture
def valley(make_saved_valley):
    """The V-valley with a station and an intake, units North and South (so boundaries are drawn)."""
    return make_saved_valley({"UP": (10, "station"), "LOW": (35, "intake")})


@pytest.fixture
def scene(valley):
    with valley.scene(size=(320, 200)) as s:
        yield s


def unpack(data: bytes) -> tuple[dict, bytearray]:
    json_length = int(np.frombuffer(data[12:16], "<u4")[0])
    return json.loads(data[20 : 20 + json_length]), bytearray(data[28 + json_length :])


def pack(doc: dict, blob: bytes) -> bytes:
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    blob = bytes(blob) + b"\0" * (-len(blob) % 4)
    head = np.array([0x46546C67, 2, 28 + len(text) + len(blob), len(text), 0x4E4F534A], "<u4").tobytes()
    return head + text + np.array([len(blob), 0x004E4942], "<u4").tobytes() + blob


def test_the_glb_of_a_scene_keeps_the_gltf_rules(scene):
    data = scene.glb()
    assert problems(data) == []
    g = pygltflib.GLTF2.load_from_bytes(data)
    # what the rules were run on: the layers of the scene, triangles and lines, an unlit material, the camera
    assert [m.name for m in g.meshes] == [la["name"] for la in scene.metadata["layers"]]
    assert {"terrain", "stations"} <= {m.name for m in g.meshes} and any("boundaries" in m.name for m in g.meshes)
    assert {p.mode for m in g.meshes for p in m.primitives} == {1, 4}
    assert g.extensionsUsed == ["KHR_materials_unlit"] and "KHR_materials_unlit" in g.materials[0].extensions
    assert g.scenes[g.scene].nodes == list(range(len(g.nodes))) and g.nodes[-1].camera == 0
    camera = np.asarray(g.nodes[-1].matrix).reshape(4, 4).T
    np.testing.assert_allclose(
        camera[:3, 3], [scene.camera.position[0], scene.camera.position[2], -scene.camera.position[1]]
    )


def test_the_glb_of_an_incident_scene_keeps_the_gltf_rules(valley):
    incident = valley.incidents.add("spill", "2026-07-10T06:00Z", synthetic.cell_lonlat(8, 15))
    with valley.scene(incident=incident["id"], view="river", size=(320, 200), lang="zh") as s:
        data = s.glb()
    assert problems(data) == []
    assert "incidents" in {m.name for m in pygltflib.GLTF2.load_from_bytes(data).meshes}


def test_the_glb_is_georeferenced_as_documented(valley, scene):
    g = pygltflib.GLTF2.load_from_bytes(scene.glb())
    extras = g.extras
    grid = valley.terrain.grid
    west, south, east, north = grid.bounds
    assert extras["crs"] == valley.crs.to_string() == synthetic.CRS
    assert extras["origin"] == [west, south]  # the grid's lower-left corner
    assert extras["axes"] == "x east, y up, z south; metres from origin" and extras["exaggeration"] == 2.0
    blob = g.binary_blob()

    def positions(name: str) -> np.ndarray:
        a = g.accessors[next(m for m in g.meshes if m.name == name).primitives[0].attributes.POSITION]
        view = g.bufferViews[a.bufferView]
        return np.frombuffer(blob, "<f4", count=3 * a.count, offset=view.byteOffset + a.byteOffset).reshape(-1, 3)

    # each terrain vertex, taken back to the twin's CRS, is a cell centre at its DEM elevation (not decimated)
    pos = positions("terrain").astype(float)
    x, y, z = extras["origin"][0] + pos[:, 0], extras["origin"][1] - pos[:, 2], pos[:, 1] / extras["exaggeration"]
    col, row = (x - west) / synthetic.CELL - 0.5, (north - y) / synthetic.CELL - 0.5
    np.testing.assert_allclose(col, np.round(col), atol=1e-3)
    np.testing.assert_allclose(row, np.round(row), atol=1e-3)
    cells = np.round(row).astype(int) * grid.shape[1] + np.round(col).astype(int)
    assert sorted(cells.tolist()) == list(range(grid.shape[0] * grid.shape[1]))
    np.testing.assert_allclose(z, valley.terrain.dem.ravel()[cells], atol=1e-3)
    # the station's pin and the intake's stand where the twin has them
    sites = valley.sites.set_index("id").geometry
    for layer, site in (("stations", "UP"), ("sites", "LOW")):
        pos = positions(layer).astype(float)
        centre = extras["origin"][0] + pos[:, 0].mean(), extras["origin"][1] - pos[:, 2].mean()
        box = (pos[:, 0].max() - pos[:, 0].min()) / 2
        assert box < synthetic.CELL  # one pin: its vertices are around one place
        assert np.hypot(sites[site].x - centre[0], sites[site].y - centre[1]) < 0.05 * box, (layer, centre)


# -- the rules can fail ---------------------------------------------------------------------------


def _index_past_the_vertices(doc: dict, blob: bytearray) -> None:
    prim = doc["meshes"][0]["primitives"][0]
    view = doc["bufferViews"][doc["accessors"][prim["indices"]]["bufferView"]]
    count = doc["accessors"][prim["attributes"]["POSITION"]]["count"]
    blob[view["byteOffset"] : view["byteOffset"] + 4] = np.array([count], "<u4").tobytes()


def _extra_image(doc: dict, blob: bytearray) -> None:
    doc["images"] = [{"bufferView": 0}]


#: a way to break a good .glb (its JSON and binary chunk, changed in place) -> what problems() must say
BREAKAGES: dict[str, tuple[Callable[[dict, bytearray], None], str]] = {
    "version": (lambda d, b: d["asset"].update(version="1.0"), "asset.version is '1.0'"),
    "position max": (lambda d, b: d["accessors"][0]["max"].__setitem__(0, 1e9), "accessor 0: max"),
    "no position bounds": (lambda d, b: d["accessors"][0].pop("min"), "POSITION has no min/max"),
    "index past the vertices": (_index_past_the_vertices, "is past the"),
    "accessor beyond its view": (lambda d, b: d["accessors"][1].update(count=10**6), "accessor 1: 1000000 elements"),
    "view beyond the buffer": (lambda d, b: d["bufferViews"][0].update(byteLength=10**8), "bufferView 0: ends"),
    "component type": (lambda d, b: d["accessors"][0].update(componentType=5124), "componentType 5124"),
    "missing attribute": (
        lambda d, b: d["meshes"][0]["primitives"][0]["attributes"].update(COLOR_0=999),
        "name no accessor",
    ),
    "missing material": (lambda d, b: d["meshes"][0]["primitives"][0].update(material=7), "material 7"),
    "node cycle": (lambda d, b: (d["nodes"][0].update(children=[1]), d["nodes"][1].update(children=[0])), "cycle"),
    "scene lists a missing node": (lambda d, b: d["scenes"][0]["nodes"].append(99), "node 99, which does not"),
    "image without mime type": (_extra_image, "mimeType must be"),
    "undeclared extension": (lambda d, b: d.update(extensionsUsed=[]), "not declared in extensionsUsed"),
}


def test_a_glb_that_breaks_a_rule_is_caught(scene):
    good = scene.glb()
    missed = {}
    for name, (change, said) in BREAKAGES.items():
        doc, blob = unpack(good)
        change(doc, blob)
        found = problems(pack(doc, blob))
        if not any(said in p for p in found):
            missed[name] = found
    assert missed == {}, f"not caught (what was said instead): {missed}"
    assert problems(pack(*unpack(good))) == []  # unpacked and packed again, unchanged: still good
