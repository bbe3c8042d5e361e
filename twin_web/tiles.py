"""Raster tiles of the twin: XYZ PNG tiles in Web Mercator, and a TileJSON per layer.

Routes (blueprint ``tiles``, under ``/tiles``)::

    /tiles/                               the layers, with their TileJSON links
    /tiles/<layer>/tilejson.json          TileJSON 3.0.0
    /tiles/<layer>/<z>/<x>/<y>.png        one 256 × 256 tile

Layers (:data:`LAYERS`): ``hillshade``, ``elevation``, ``upstream-area``,
``subbasins`` and ``terrain-rgb`` (Mapbox terrain-RGB, for MapLibre's 3D
terrain). rio-tiler (and morecantile's WebMercatorQuad) reads each tile from
the twin's Cloud-Optimized GeoTIFFs; :mod:`web.render` colours it.

Answers:

* 200 with ``ETag`` (the twin's manifest hash and the tile's key) and
  ``Cache-Control: public, max-age=3600``; 304 when ``If-None-Match`` names the
  ETag (nothing is rendered then);
* 400 when z, x or y is not a whole number, or x/y lies outside the tile
  matrix of zoom z (0 ≤ x, y < 2^z);
* 404 for an unknown layer, a zoom beyond what is served (0 to the raster's
  native zoom + :data:`OVERZOOM`), or a tile that does not touch the data.

Tiles are cached in memory (LRU, ``TILE_CACHE_BYTES``) and, when
``TILE_CACHE_DIR`` is set, on disk under ``<dir>/<manifest hash>/``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import rasterio
from flask import Response, current_app, request, url_for
from flask_openapi3 import APIBlueprint
from rio_tiler.constants import WGS84_CRS
from rio_tiler.io import Reader

from twin_web import params, render, schemas
from twin_web.cache import TileCache
from twin_web.errors import NotFoundError, ParameterError
from twin_web.openapi import responds, tag
from twin_web.state import TwinState

#: zoom levels served past the raster's native zoom (the client could over-zoom itself)
OVERZOOM = 6
TILE_SIZE = 256
CACHE_CONTROL = "public, max-age=3600"


@dataclass(frozen=True)
class Layer:
    """A tile layer: which raster it reads, how it resamples, what it shows."""

    name: str
    raster: str  # a key of twin.model.folder.RASTERS
    title: str
    description: str
    continuous: bool  # bilinear resampling (else nearest, for ids and counts)
    buffer: int = 0  # pixels read around the tile (the hillshade needs its neighbours)
    encoding: str | None = None


LAYERS: dict[str, Layer] = {
    layer.name: layer
    for layer in (
        Layer(
            "hillshade",
            "terrain/elevation.tif",
            "Hillshade",
            "Shaded relief of the DEM, lit from the north-west at 45 degrees",
            continuous=True,
            buffer=1,
        ),
        Layer("elevation", "terrain/elevation.tif", "Elevation", "Elevation (m) on a colour ramp", continuous=True),
        Layer(
            "upstream-area",
            "drainage/upstream_cells.tif",
            "Upstream area",
            "Area draining through each cell (km2), on a logarithmic ramp",
            continuous=False,
        ),
        Layer(
            "subbasins",
            "drainage/subbasins.tif",
            "Sub-basins",
            "The reach each cell first drains into, one colour per reach",
            continuous=False,
        ),
        Layer(
            "terrain-rgb",
            "terrain/elevation.tif",
            "Terrain-RGB",
            "Elevation for 3D terrain: height = -10000 + (R*65536 + G*256 + B) * 0.1 m (Mapbox terrain-RGB)",
            continuous=True,
            encoding="mapbox",
        ),
    )
}


class TileService:
    """Readers, zoom ranges and the cache of one app's tiles (shared by the server's threads)."""

    def __init__(self, state: TwinState, cache_bytes: int, cache_dir: str | Path | None):
        self.state = state
        self.cache_bytes = cache_bytes
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._zooms: dict[tuple[str, str], tuple[int, int, tuple[float, float, float, float]]] = {}
        self._cache: tuple[str, TileCache] | None = None

    # -- sources -------------------------------------------------------------------------------
    @property
    def cache(self) -> TileCache:
        h = self.state.manifest_hash
        if self._cache is None or self._cache[0] != h:
            with self._lock:
                if self._cache is None or self._cache[0] != h:
                    folder = self.cache_dir / h[:16] if self.cache_dir else None
                    self._cache = (h, TileCache(self.cache_bytes, folder))
        return self._cache[1]

    def reader(self, layer: Layer) -> Reader:
        """This thread's reader of a layer's raster (rasterio datasets are not shared between threads)."""
        h = self.state.manifest_hash
        readers: dict[str, Reader] | None = getattr(self._local, "readers", None)
        if readers is None or getattr(self._local, "hash", None) != h:
            for old in (readers or {}).values():
                if old.dataset is not None:
                    old.dataset.close()
            readers = self._local.readers = {}
            self._local.hash = h
        if layer.raster not in readers:
            readers[layer.raster] = Reader(None, dataset=rasterio.open(self.state.raster(layer.raster)))
        return readers[layer.raster]

    def zooms(self, layer: Layer) -> tuple[int, int, tuple[float, float, float, float]]:
        """(min zoom, native max zoom, WGS 84 bounds) of a layer's raster."""
        key = (self.state.manifest_hash, layer.raster)
        z = self._zooms.get(key)
        if z is None:
            r = self.reader(layer)
            west, south, east, north = r.get_geographic_bounds(WGS84_CRS)
            z = self._zooms[key] = (int(r.minzoom), int(r.maxzoom), (west, south, east, north))
        return z

    # -- tiles ---------------------------------------------------------------------------------
    def render(self, layer: Layer, z: int, x: int, y: int) -> bytes:
        """The PNG of one tile (raises rio-tiler's TileOutsideBounds off the data)."""
        reader = self.reader(layer)
        method: Any = "bilinear" if layer.continuous else "nearest"
        img = reader.tile(
            x,
            y,
            z,
            tilesize=TILE_SIZE,
            buffer=float(layer.buffer) if layer.buffer else None,
            resampling_method=method,
            reproject_method=method,
        )
        values = img.array.data[0]
        valid: np.ndarray = ~np.ma.getmaskarray(img.array)[0]
        if values.dtype.kind == "f":
            valid &= np.isfinite(values)
        summary = self.state.manifest.get("summary", {})
        lo, hi = summary.get("elevation_m", [0.0, 5000.0])
        if layer.name == "hillshade":
            assert img.bounds is not None
            res = (img.bounds[2] - img.bounds[0]) / img.width
            lat = math.atan(math.sinh((img.bounds[1] + img.bounds[3]) / 2 / 6378137.0))
            ground = res * math.cos(lat)
            shade = render.hillshade(np.where(valid, values, np.nan), ground, ground)
            b = layer.buffer
            return render.grey(shade[b:-b, b:-b], valid[b:-b, b:-b])
        if layer.name == "elevation":
            return render.colour_ramp(values, valid, lo, hi, "terrain", first=64)
        if layer.name == "upstream-area":
            cell_km2 = abs(float(self.state.manifest["transform"][0] * self.state.manifest["transform"][4])) / 1e6
            most = max(float(summary.get("valid_cells", 1e6)), 2.0)
            km2 = np.maximum(values.astype(np.float64), 1.0) * cell_km2
            return render.colour_ramp(
                np.log10(km2), valid, math.log10(cell_km2), math.log10(most * cell_km2), "ylgnbu", first=16
            )
        if layer.name == "subbasins":
            return render.categories(values, valid)
        if layer.name == "terrain-rgb":
            return render.terrain_rgb(values, valid, fill=float(lo))
        raise AssertionError(f"no renderer for layer {layer.name}")  # pragma: no cover - LAYERS and this agree


# -- the blueprint ------------------------------------------------------------------------------

bp = APIBlueprint("tiles", __name__, url_prefix="/tiles")


def service() -> TileService:
    return current_app.extensions["twin_tiles"]


def _no_layer(name: str) -> NotFoundError:
    return NotFoundError(f"unknown layer {name[:60]!r}; layers: {', '.join(LAYERS)}", parameter="layer")


LayerName = Annotated[str, params.Choice("A tile layer", LAYERS, _no_layer)]


class LayerPath(params.Path):
    layer: LayerName


class TilePath(params.Path):
    """A tile: its layer, then z, x and y, whole numbers (the view checks the zooms served and the tile matrix)."""

    layer: LayerName
    z: Annotated[int, params.Integer("Zoom level", minimum=0)]
    x: Annotated[int, params.Integer("Tile column (0 .. 2^z - 1)", minimum=0)]
    y: Annotated[int, params.Integer("Tile row (0 .. 2^z - 1, from the north)", minimum=0)]


def tilejson(layer: Layer) -> dict[str, Any]:
    minzoom, maxzoom, bounds = service().zooms(layer)
    west, south, east, north = bounds
    template = url_for("tiles.tile", layer=layer.name, z=0, x=0, y=0, _external=True)
    template = template.replace("/0/0/0.png", "/{z}/{x}/{y}.png")
    manifest = service().state.manifest
    out: dict[str, Any] = {
        "tilejson": "3.0.0",
        "name": layer.name,
        "description": layer.description,
        "version": manifest.get("built_at", "1"),
        "scheme": "xyz",
        "tiles": [template],
        "minzoom": 0,
        "maxzoom": maxzoom,
        "bounds": [round(west, 6), round(south, 6), round(east, 6), round(north, 6)],
        "center": [round((west + east) / 2, 6), round((south + north) / 2, 6), max(minzoom, 0)],
        "attribution": manifest.get("title") or manifest.get("name", ""),
        "tileSize": TILE_SIZE,
    }
    if layer.encoding:
        out["encoding"] = layer.encoding
    return out


@bp.get("/", operation_id="getTileLayers", tags=tag("Tiles"), responses=responds(schemas.TileLayers, 500))
def index() -> Any:
    """The raster tile layers."""
    return {
        "layers": [
            {
                "name": layer.name,
                "title": layer.title,
                "description": layer.description,
                "tilejson": url_for("tiles.layer_tilejson", layer=layer.name, _external=True),
            }
            for layer in LAYERS.values()
        ]
    }


@bp.get(
    "/<layer>/tilejson.json",
    operation_id="getTileJSON",
    tags=tag("Tiles"),
    responses=responds(schemas.TileJSON, 404, 500),
)
def layer_tilejson(path: LayerPath) -> Any:
    """TileJSON 3.0.0 of a layer."""
    return tilejson(LAYERS[path.layer])


@bp.get(
    "/<layer>/<z>/<x>/<y>.png",
    operation_id="getTile",
    tags=tag("Tiles"),
    responses=responds(None, 304, 400, 404, 500, media="image/png"),
)
def tile(path: TilePath) -> Response:
    """A 256 x 256 PNG tile in Web Mercator (XYZ); terrain-rgb is Mapbox terrain-RGB.

    The answer is ``image/png`` (or 304 when If-None-Match names its ETag), not JSON.
    """
    lay = LAYERS[path.layer]
    zi, xi, yi = path.z, path.x, path.y
    svc = service()
    _, native, _ = svc.zooms(lay)
    if not 0 <= zi <= native + OVERZOOM:
        raise NotFoundError(f"no {lay.name} tiles at zoom {zi}; zooms 0-{native + OVERZOOM} are served", parameter="z")
    side = 2**zi
    for name, v in (("x", xi), ("y", yi)):
        if not 0 <= v < side:
            raise ParameterError(name, f"{v} lies outside the tile matrix of zoom {zi} (0-{side - 1})")
    etag = f"{svc.state.manifest_hash[:16]}-{lay.name}-{zi}-{xi}-{yi}"
    if request.if_none_match.contains(etag):
        resp = Response(status=304)
    else:
        key = (lay.name, zi, xi, yi)
        data = svc.cache.get(key)
        if data is None:
            data = svc.render(lay, zi, xi, yi)
            svc.cache.put(key, data)
        resp = Response(data, mimetype="image/png")
    resp.set_etag(etag)
    resp.headers["Cache-Control"] = CACHE_CONTROL
    return resp
