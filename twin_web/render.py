"""Tile images from raster values: plain functions on arrays, PNG bytes out.

rio-tiler reads a tile (reprojection to Web Mercator, overviews, the mask of
what lies outside the data); these functions only turn its values into colours:

* :func:`hillshade` — Horn's (1981) slope and aspect, lit from the north-west
  at 45° (the ESRI formula), on ground distances (Web Mercator metres times the
  cosine of the latitude);
* :func:`colour_ramp` — a value range on a rio-tiler colour map;
* :func:`categories` — ids in distinct colours (neighbouring ids differ);
* :func:`terrain_rgb` — elevation as Mapbox terrain-RGB:
  ``height = -10000 + (R × 65536 + G × 256 + B) × 0.1`` metres.

Everything outside the data is transparent (alpha 0) except in terrain-RGB,
which MapLibre decodes from the colour channels alone: a transparent pixel would
read as −10000 m, so outside the data it carries ``fill`` (the twin's lowest
elevation) and is opaque.
"""

from __future__ import annotations

import io
from functools import cache

import numpy as np
from PIL import Image
from rio_tiler.colormap import cmap as _colour_maps

TERRAIN_RGB_BASE = -10000.0
TERRAIN_RGB_STEP = 0.1


def png(bands: np.ndarray, alpha: np.ndarray | None = None) -> bytes:
    """PNG of uint8 bands (count, h, w): grey (1) or RGB (3), with an alpha band (h, w) if given.

    Pillow encodes it (zlib, which lets other threads run meanwhile); rio-tiler's
    ``render`` is not used because it changes the process-wide warning filters,
    which is not safe in a threaded server.
    """
    layers = [b for b in np.asarray(bands, dtype=np.uint8)]
    if alpha is not None:
        layers.append(np.asarray(alpha, dtype=np.uint8))
    pixels = layers[0] if len(layers) == 1 else np.ascontiguousarray(np.stack(layers, axis=-1))
    buf = io.BytesIO()  # the mode follows the shape: L, LA, RGB or RGBA
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=1)  # 5x faster than 6, 5 % larger
    return buf.getvalue()


def _neighbours(z: np.ndarray) -> list[np.ndarray]:
    """The 3×3 neighbourhood of every cell (a..i, row by row); a missing neighbour takes the cell's value."""
    pad = np.pad(z, 1, mode="edge")
    h, w = z.shape
    out = []
    for dr in range(3):
        for dc in range(3):
            n = pad[dr : dr + h, dc : dc + w]
            out.append(np.where(np.isnan(n), z, n))
    return out


def hillshade(z: np.ndarray, dx: float, dy: float, azimuth: float = 315.0, altitude: float = 45.0) -> np.ndarray:
    """Illumination 0..1 of a surface (rows north to south), NaN where ``z`` is NaN.

    ``dx``, ``dy``: the cell's width and height on the ground (m).

    Examples
    --------
    >>> z = np.tile(np.arange(5.0)[::-1], (5, 1)) * 10  # falling eastwards: faces east, away from the sun
    >>> bool(hillshade(z, 10, 10)[2, 2] < hillshade(np.zeros((5, 5)), 10, 10)[2, 2] < hillshade(-z, 10, 10)[2, 2])
    True
    """
    a, b, c, d, _, f, g, h, i = _neighbours(z.astype(np.float64))
    dzdx = ((c + 2 * f + i) - (a + 2 * d + g)) / (8.0 * dx)
    dzdy = ((g + 2 * h + i) - (a + 2 * b + c)) / (8.0 * dy)
    slope = np.arctan(np.hypot(dzdx, dzdy))
    aspect = np.arctan2(dzdy, -dzdx)
    zenith = np.radians(90.0 - altitude)
    sun = np.radians((360.0 - azimuth + 90.0) % 360.0)
    shade = np.cos(zenith) * np.cos(slope) + np.sin(zenith) * np.sin(slope) * np.cos(sun - aspect)
    return np.clip(shade, 0.0, 1.0)


def grey(values: np.ndarray, valid: np.ndarray) -> bytes:
    """A grey PNG of values 0..1 (1 white), transparent where not ``valid``."""
    v = np.nan_to_num(values, nan=0.0)
    level = (v * 254 + 1).astype(np.uint8)
    return png(level[None], np.where(valid, 255, 0))


@cache
def _lut(colour_map: str) -> np.ndarray:
    table = _colour_maps.get(colour_map)
    return np.array([table[k] for k in range(256)], dtype=np.uint8)


def colour_ramp(values: np.ndarray, valid: np.ndarray, lo: float, hi: float, colour_map: str, first: int = 0) -> bytes:
    """Values from ``lo`` to ``hi`` on entries ``first``..255 of a rio-tiler colour map (e.g. "terrain").

    Transparent where not ``valid``.
    """
    lut = _lut(colour_map)
    span = hi - lo if hi > lo else 1.0
    scaled = (np.nan_to_num(values, nan=lo).astype(np.float64) - lo) / span
    index = np.clip(first + scaled * (255 - first), 0, 255).astype(np.uint8)
    rgba = lut[index]
    return png(np.moveaxis(rgba[..., :3], -1, 0), np.where(valid, rgba[..., 3], 0))


#: twelve colours that tell neighbours apart (ColorBrewer "Paired")
PALETTE = np.array(
    [
        (166, 206, 227),
        (31, 120, 180),
        (178, 223, 138),
        (51, 160, 44),
        (251, 154, 153),
        (227, 26, 28),
        (253, 191, 111),
        (255, 127, 0),
        (202, 178, 214),
        (106, 61, 154),
        (255, 255, 153),
        (177, 89, 40),
    ],
    dtype=np.uint8,
)


def categories(ids: np.ndarray, valid: np.ndarray) -> bytes:
    """Ids in colours of :data:`PALETTE` (scrambled so that consecutive ids differ); 0 and invalid transparent."""
    scrambled = (ids.astype(np.uint64) * np.uint64(2654435761)) >> np.uint64(7)
    rgb = PALETTE[(scrambled % np.uint64(len(PALETTE))).astype(np.intp)]
    return png(np.moveaxis(rgb, -1, 0), np.where(valid & (ids != 0), 200, 0))


def encode_terrain_rgb(height: np.ndarray) -> np.ndarray:
    """Heights (m) as terrain-RGB bands (3, h, w) uint8, to the nearest 0.1 m.

    Examples
    --------
    >>> r, g, b = encode_terrain_rgb(np.array([[1234.5]])).reshape(3)
    >>> round(-10000 + (int(r) * 65536 + int(g) * 256 + int(b)) * 0.1, 1)
    1234.5
    """
    steps = np.round((height.astype(np.float64) - TERRAIN_RGB_BASE) / TERRAIN_RGB_STEP)
    code: np.ndarray = np.clip(steps, 0, 2**24 - 1).astype(np.uint32)
    return np.stack([(code >> 16) & 255, (code >> 8) & 255, code & 255]).astype(np.uint8)


def decode_terrain_rgb(rgb: np.ndarray) -> np.ndarray:
    """Heights (m) from terrain-RGB bands (3, h, w): the inverse of :func:`encode_terrain_rgb`."""
    r, g, b = (rgb[k].astype(np.float64) for k in range(3))
    return TERRAIN_RGB_BASE + (r * 65536 + g * 256 + b) * TERRAIN_RGB_STEP


def terrain_rgb(height: np.ndarray, valid: np.ndarray, fill: float) -> bytes:
    """An opaque terrain-RGB PNG; cells outside the data carry ``fill``."""
    return png(encode_terrain_rgb(np.where(valid, np.nan_to_num(height, nan=fill), fill)))
