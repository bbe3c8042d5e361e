"""Raster tiles of the demo twin: what a map shows, at the basin's edge too, and how they are cached."""

from __future__ import annotations

import io

import morecantile
import numpy as np
import pytest
import rasterio
from PIL import Image
from pyproj import Transformer

from twin_web import create_app
from twin_web.cache import TileCache
from twin_web.render import PALETTE, decode_terrain_rgb
from twin_web.tiles import LAYERS

from .webauth import authorised
from .webauth import token as make_token

TMS = morecantile.tms.get("WebMercatorQuad")


@pytest.fixture(scope="module")
def client(demo_dir):
    return authorised(create_app(demo_dir, testing=True).test_client(), make_token(demo_dir))


def pixels(resp) -> np.ndarray:
    """A tile as an RGBA array (rows, cols, 4)."""
    assert resp.status_code == 200 and resp.mimetype == "image/png", resp.get_data(as_text=True)[:200]
    return np.asarray(Image.open(io.BytesIO(resp.data)).convert("RGBA"))


def tile_at(demo, x: float, y: float, z: int) -> morecantile.Tile:
    """The tile holding a point given in the twin's CRS."""
    lon, lat = Transformer.from_crs(demo.crs, "EPSG:4326", always_xy=True).transform(x, y)
    return TMS.tile(lon, lat, z)


def centres_in_twin_crs(demo, tile: morecantile.Tile) -> tuple[np.ndarray, np.ndarray]:
    """The twin-CRS coordinates of each pixel centre of a 256-pixel tile."""
    b = TMS.xy_bounds(tile)
    step = (b.right - b.left) / 256
    mx = b.left + (np.arange(256) + 0.5) * step
    my = b.top - (np.arange(256) + 0.5) * step
    gx, gy = np.meshgrid(mx, my)
    return Transformer.from_crs("EPSG:3857", demo.crs, always_xy=True).transform(gx, gy)


def test_the_layer_list_and_tilejson_describe_every_layer(client, demo):
    listed = client.get("/tiles/").get_json()["layers"]
    assert [layer["name"] for layer in listed] == list(LAYERS)
    west, south, east, north = demo.info()["bounds_wgs84"]
    for layer in LAYERS:
        tj = client.get(f"/tiles/{layer}/tilejson.json").get_json()
        assert tj["tilejson"] == "3.0.0" and tj["scheme"] == "xyz"
        assert tj["tiles"] == [f"http://localhost/tiles/{layer}/{{z}}/{{x}}/{{y}}.png"]
        assert tj["maxzoom"] == 12  # 30 m cells: zoom 12 is the native resolution at 44° N
        bw, bs, be, bn = tj["bounds"]
        assert bw <= west + 1e-4 and bs <= south + 1e-4 and be >= east - 1e-4 and bn >= north - 1e-4
    assert client.get("/tiles/terrain-rgb/tilejson.json").get_json()["encoding"] == "mapbox"


@pytest.mark.parametrize("layer", ["hillshade", "elevation", "upstream-area", "terrain-rgb"])
def test_a_tile_inside_the_basin_is_opaque(client, demo, layer):
    x0, y0, x1, y1 = demo.terrain.grid.bounds
    t = tile_at(demo, (x0 + x1) / 2, (y0 + y1) / 2, 12)
    rgba = pixels(client.get(f"/tiles/{layer}/{t.z}/{t.x}/{t.y}.png"))
    assert rgba.shape == (256, 256, 4)
    assert (rgba[..., 3] == 255).all()
    assert rgba[..., :3].std() > 5  # relief, not a flat colour


@pytest.mark.parametrize("layer", ["hillshade", "elevation", "upstream-area", "subbasins"])
def test_at_the_basin_edge_pixels_outside_the_data_are_transparent(client, demo, layer):
    x0, y0, x1, y1 = demo.terrain.grid.bounds
    t = tile_at(demo, x0, (y0 + y1) / 2, 12)  # straddles the west edge of the grid
    alpha = pixels(client.get(f"/tiles/{layer}/{t.z}/{t.x}/{t.y}.png"))[..., 3]
    ux, uy = centres_in_twin_crs(demo, t)
    margin = 2 * abs(demo.terrain.grid.transform.a)  # resampling may reach one cell across the edge
    inside = (ux > x0 + margin) & (ux < x1 - margin) & (uy > y0 + margin) & (uy < y1 - margin)
    outside = (ux < x0 - margin) | (ux > x1 + margin) | (uy < y0 - margin) | (uy > y1 + margin)
    assert inside.sum() > 1000 and outside.sum() > 1000
    assert (alpha[outside] == 0).all()
    if layer == "subbasins":  # cells that drain to no reach (id 0) are transparent too
        t_ = demo.terrain.grid.transform
        rows = ((uy[inside] - t_.f) // t_.e).astype(int)
        cols = ((ux[inside] - t_.c) // t_.a).astype(int)
        has_id = demo.drainage.subbasin[rows, cols] != 0
        assert ((alpha[inside] > 0) == has_id).mean() > 0.98  # nearest-cell pixels, up to a cell apart
    else:
        assert (alpha[inside] == 255).all()


def test_terrain_rgb_decodes_to_the_dem(client, demo):
    """Decoded heights equal the DEM (bilinear at the pixel centre) within a metre, at several points."""
    g = demo.terrain.grid
    t = g.transform
    to_twin = Transformer.from_crs("EPSG:4326", demo.crs, always_xy=True)
    rng = np.random.default_rng(1)
    x0, y0, x1, y1 = g.bounds
    for _ in range(8):
        x, y = rng.uniform(x0 + 1000, x1 - 1000), rng.uniform(y0 + 1000, y1 - 1000)
        tile = tile_at(demo, x, y, 13)
        rgba = pixels(client.get(f"/tiles/terrain-rgb/{tile.z}/{tile.x}/{tile.y}.png"))
        height = decode_terrain_rgb(np.moveaxis(rgba[..., :3], -1, 0))
        lon, lat = Transformer.from_crs(demo.crs, "EPSG:4326", always_xy=True).transform(x, y)
        b = TMS.xy_bounds(tile)
        mx, my = TMS.xy(lon, lat)
        step = (b.right - b.left) / 256
        col, row = int((mx - b.left) / step), int((b.top - my) / step)
        cx, cy = to_twin.transform(*TMS.lnglat(b.left + (col + 0.5) * step, b.top - (row + 0.5) * step))
        fc, fr = (cx - t.c) / t.a - 0.5, (cy - t.f) / t.e - 0.5
        c0, r0 = int(np.floor(fc)), int(np.floor(fr))
        w = np.array(
            [
                [(1 - (fr - r0)) * (1 - (fc - c0)), (1 - (fr - r0)) * (fc - c0)],
                [(fr - r0) * (1 - (fc - c0)), (fr - r0) * (fc - c0)],
            ]
        )
        expected = float((demo.terrain.dem[r0 : r0 + 2, c0 : c0 + 2] * w).sum())
        assert height[row, col] == pytest.approx(expected, abs=1.0)
        nearest = demo.terrain.dem[int((y - t.f) // t.e), int((x - t.c) // t.a)]
        assert abs(height[row, col] - nearest) < 15  # the cell's own value, on slopes of up to 30°


def test_terrain_rgb_is_opaque_with_the_lowest_elevation_outside_the_data(client, demo):
    x0, y0, x1, y1 = demo.terrain.grid.bounds
    t = tile_at(demo, x0, (y0 + y1) / 2, 12)
    rgba = pixels(client.get(f"/tiles/terrain-rgb/{t.z}/{t.x}/{t.y}.png"))
    assert (rgba[..., 3] == 255).all()
    ux, _ = centres_in_twin_crs(demo, t)
    outside = ux < x0 - 100
    height = decode_terrain_rgb(np.moveaxis(rgba[..., :3], -1, 0))
    assert np.allclose(height[outside], np.nanmin(demo.terrain.dem), atol=0.05)


def test_sub_basins_use_the_palette_and_their_overviews_keep_real_ids(client, demo, demo_dir):
    x0, y0, x1, y1 = demo.terrain.grid.bounds
    t = tile_at(demo, (x0 + x1) / 2, (y0 + y1) / 2, 9)  # coarser than the data: read from overviews
    rgba = pixels(client.get(f"/tiles/subbasins/{t.z}/{t.x}/{t.y}.png"))
    shown = {tuple(c) for c in rgba[rgba[..., 3] > 0][:, :3]}
    assert shown and shown <= {tuple(c) for c in PALETTE}
    ids = set(np.unique(demo.drainage.subbasin).tolist())
    for rel in ("drainage/subbasins.tif", "drainage/reach.tif", "drainage/d8.tif"):  # the twin's own overviews
        path = demo_dir / rel
        with rasterio.open(path) as src:
            factors = src.overviews(1)
            full = set(np.unique(src.read(1)).tolist())
        assert factors
        assert rel != "drainage/subbasins.tif" or full == ids
        for level in range(len(factors)):
            with rasterio.open(path, OVERVIEW_LEVEL=level) as ovr:
                assert set(np.unique(ovr.read(1)).tolist()) <= full, f"{rel} overview {level} invents values"


def test_tiles_carry_an_etag_and_a_repeat_gets_304(client, demo):
    x0, y0, x1, y1 = demo.terrain.grid.bounds
    t = tile_at(demo, (x0 + x1) / 2, (y0 + y1) / 2, 11)
    url = f"/tiles/hillshade/{t.z}/{t.x}/{t.y}.png"
    first = client.get(url)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "public, max-age=3600"
    manifest_hash = client.application.extensions["twin"].manifest_hash
    assert etag.strip('"').startswith(manifest_hash[:16]) and etag.strip('"').endswith(f"hillshade-{t.z}-{t.x}-{t.y}")
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    other = client.get(f"/tiles/elevation/{t.z}/{t.x}/{t.y}.png", headers={"If-None-Match": etag})
    assert other.status_code == 200 and other.headers["ETag"] != etag
    assert client.get(url, headers={"If-None-Match": '"stale"'}).data == first.data


def test_tiles_are_kept_on_disk_and_read_back_after_a_restart(demo_dir, demo, tmp_path):
    x0, y0, x1, y1 = demo.terrain.grid.bounds
    t = tile_at(demo, (x0 + x1) / 2, (y0 + y1) / 2, 10)
    url = f"/tiles/elevation/{t.z}/{t.x}/{t.y}.png"
    app = create_app(demo_dir, tile_cache_dir=tmp_path)
    body = authorised(app.test_client(), make_token(demo_dir)).get(url).data
    h = app.extensions["twin"].manifest_hash[:16]
    cached = tmp_path / h / "elevation" / str(t.z) / str(t.x) / f"{t.y}.png"
    assert cached.read_bytes() == body
    cached.write_bytes(b"from the disk cache")
    again = authorised(create_app(demo_dir, tile_cache_dir=tmp_path).test_client(), make_token(demo_dir))
    assert again.get(url).data == b"from the disk cache"


def test_the_memory_cache_drops_the_least_recently_used_tiles_first():
    cache = TileCache(max_bytes=30)
    for k in range(3):
        cache.put(("hillshade", 1, 0, k), b"x" * 10)
    assert cache.get(("hillshade", 1, 0, 0)) is not None  # now the most recent
    cache.put(("hillshade", 1, 0, 3), b"y" * 10)
    assert cache.get(("hillshade", 1, 0, 1)) is None
    assert cache.get(("hillshade", 1, 0, 0)) == b"x" * 10 and len(cache) == 3


@pytest.mark.parametrize(
    ("url", "status", "parameter"),
    [
        ("/tiles/hillshade/12/0/0.png", 404, None),  # a real tile, far from the basin
        ("/tiles/hillshade/3/8/2.png", 400, "x"),  # beyond the tile matrix of zoom 3
        ("/tiles/hillshade/3/2/-1.png", 400, "y"),
        ("/tiles/hillshade/40/1/1.png", 404, "z"),  # an absurd zoom
        ("/tiles/hillshade/100000000000000000000000/1/1.png", 404, "z"),
        ("/tiles/hillshade/-1/0/0.png", 404, "z"),
        ("/tiles/hillshade/a/1/1.png", 400, "z"),
        ("/tiles/hillshade/1/1.5/1.png", 400, "x"),
        ("/tiles/hillshade/1/1/1.jpg", 404, None),
        ("/tiles/volcano/1/1/1.png", 404, "layer"),
        ("/tiles/%2e%2e/1/1/1.png", 404, "layer"),
        ("/tiles/..%2f..%2fetc%2fpasswd/1/1/1.png", 404, None),
        ("/tiles/../../etc/passwd", 404, None),
        ("/tiles/..%252f..%252ftwin.json/1/1/1.png", 404, "layer"),
        ("/tiles/%2e%2e/tilejson.json", 404, "layer"),
        ("/tiles/hillshade/1/1/%2e%2e.png", 400, "y"),
    ],
)
def test_bad_tile_requests_get_a_json_4xx(client, url, status, parameter):
    resp = client.get(url)
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["status"] == status and body["description"]
    assert body.get("parameter") == parameter


def test_a_rebuilt_twin_gets_new_etags(demo_dir, demo, tmp_path):
    import json
    import shutil

    folder = tmp_path / "cevennes"
    shutil.copytree(demo_dir, folder, ignore=shutil.ignore_patterns("ops.sqlite*", "cache"))
    client = authorised(create_app(folder).test_client(), make_token(folder))
    x0, y0, x1, y1 = demo.terrain.grid.bounds
    t = tile_at(demo, (x0 + x1) / 2, (y0 + y1) / 2, 11)
    url = f"/tiles/terrain-rgb/{t.z}/{t.x}/{t.y}.png"
    before = client.get(url).headers["ETag"]
    manifest = json.loads((folder / "twin.json").read_text(encoding="utf-8"))
    manifest["built_at"] = "2030-01-01T00:00:00+00:00"  # what a rebuild changes at the least
    (folder / "twin.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    after = client.get(url, headers={"If-None-Match": before})
    assert after.status_code == 200 and after.headers["ETag"] != before
