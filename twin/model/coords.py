"""Coordinate systems that incidents arrive in, and the way from each to the twin's CRS.

A report of a spill rarely comes in the twin's projected CRS. It comes as a phone's
GPS fix (WGS84, EPSG:4326), as a surveyor's CGCS2000 coordinate (EPSG:4490), or, very
often in China, as a point picked on a web map whose coordinates are in **GCJ-02**,
the offset system that Chinese web maps are required to use.

GCJ-02
------
GCJ-02 is WGS84 shifted by a deterministic but non-linear offset of a few hundred
metres (300–600 m over eastern China). The forward transform (WGS84 → GCJ-02) is
published: on the Krasovsky 1940 ellipsoid (a = 6378245.0 m,
e² = 0.00669342162296594323) two polynomial-plus-sine functions of
(lon − 105°, lat − 35°) give the offset in metres, which is turned into degrees.

The inverse (GCJ-02 → WGS84) has no closed form. The common one-step approximation
``wgs ≈ gcj − offset(gcj)`` evaluates the offset at the wrong point and is off by
about 0.7 m typically, 2.4 m at the 95th percentile and up to ~5 m over China
(measured on a 400 × 300 grid). Here the inverse iterates the forward transform to a
fixed point, ``w ← w − (forward(w) − gcj)``, until the residual is below 1e-7
degrees, which bounds the error by about a centimetre (measured: under 1e-5 m);
three or four iterations suffice, since the offset changes by only a few metres per
kilometre. That is far below the error of a point picked on a web map.

Outside China GCJ-02 equals WGS84. "Outside" is the usual bounding-box test
(lon outside 72.004–137.8347 or lat outside 0.8293–55.8271), the same test the
published transform uses; it is a box, not the border, so points in neighbouring
countries inside the box are shifted too, exactly as the web maps do. Within about a
kilometre of the box's edges a shifted point may cross it, and the round trip there
is not exact; no Chinese river lies there.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError as ProjCRSError

from twin.errors import CRSError

__all__ = ["SYSTEMS", "gcj02_to_wgs84", "in_china", "to_crs", "wgs84_to_gcj02"]

# Krasovsky 1940 ellipsoid, as the published GCJ-02 transform uses it.
_A = 6378245.0
_EE = 0.00669342162296594323

# Bounding box outside which GCJ-02 is WGS84 (the published transform's own test).
_LON_MIN, _LON_MAX = 72.004, 137.8347
_LAT_MIN, _LAT_MAX = 0.8293, 55.8271

_TOLERANCE_DEG = 1e-7
_MAX_ITERATIONS = 30

# Names a caller may give for the system of incoming coordinates; the value is the
# source CRS, or None for GCJ-02, which pyproj does not know.
SYSTEMS: dict[str, str | None] = {
    "WGS84": "EPSG:4326",
    "CGCS2000": "EPSG:4490",
    "GCJ02": None,
}
_ALIASES = {"WGS-84": "WGS84", "WGS 84": "WGS84", "GCJ-02": "GCJ02", "GCJ 02": "GCJ02", "CGCS 2000": "CGCS2000"}

ArrayLike = npt.ArrayLike


def _offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 minus WGS84 in degrees at WGS84 (lon, lat), without the China test."""
    x = lon - 105.0
    y = lat - 35.0
    pi = np.pi
    # The two published offset functions, in metres on the Krasovsky ellipsoid.
    common = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    d_lat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * np.sqrt(np.abs(x))
        + common
        + (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    )
    d_lon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * np.sqrt(np.abs(x))
        + common
        + (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    )
    # Metres to degrees: meridian and prime-vertical radii of curvature at lat.
    rad_lat = lat / 180.0 * pi
    w = 1.0 - _EE * np.sin(rad_lat) ** 2
    sqrt_w = np.sqrt(w)
    d_lat = d_lat * 180.0 / ((_A * (1.0 - _EE)) / (w * sqrt_w) * pi)
    d_lon = d_lon * 180.0 / (_A / sqrt_w * np.cos(rad_lat) * pi)
    return d_lon, d_lat


def in_china(lon: ArrayLike, lat: ArrayLike) -> np.ndarray | bool:
    """Whether points lie in the box where GCJ-02 differs from WGS84.

    Parameters
    ----------
    lon, lat : float or array-like
        Longitude and latitude in degrees (either system: the box is the same).

    Returns
    -------
    bool or numpy.ndarray of bool
        A plain ``bool`` for scalar input.

    Examples
    --------
    >>> in_china(116.39, 39.91), in_china(2.35, 48.85)
    (True, False)
    """
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    inside = (lon_a >= _LON_MIN) & (lon_a <= _LON_MAX) & (lat_a >= _LAT_MIN) & (lat_a <= _LAT_MAX)
    return bool(inside) if scalar else inside


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray | float, np.ndarray | float]:
    """WGS84 longitude/latitude to GCJ-02 (the published forward transform).

    Parameters
    ----------
    lon, lat : float or array-like
        WGS84 longitude and latitude in degrees; arrays broadcast against each other.

    Returns
    -------
    (lon, lat)
        GCJ-02 degrees, floats for scalar input, arrays otherwise. Points outside
        China's box (see :func:`in_china`) come back unchanged; a point with a
        NaN coordinate comes back as (NaN, NaN).

    Examples
    --------
    >>> lon, lat = wgs84_to_gcj02(116.3912, 39.9073)   # Tiananmen
    >>> round(lon, 4), round(lat, 4)
    (116.3974, 39.9087)
    """
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    d_lon, d_lat = _offset(lon_a, lat_a)
    inside = in_china(lon_a, lat_a)
    out_lon = np.where(inside, lon_a + d_lon, lon_a)
    out_lat = np.where(inside, lat_a + d_lat, lat_a)
    return _result(*_nan_together(out_lon, out_lat), scalar)


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray | float, np.ndarray | float]:
    """GCJ-02 longitude/latitude to WGS84, by fixed-point iteration of the forward transform.

    Parameters
    ----------
    lon, lat : float or array-like
        GCJ-02 longitude and latitude in degrees; arrays broadcast against each other.

    Returns
    -------
    (lon, lat)
        WGS84 degrees whose forward transform reproduces the input to 1e-7 degrees
        (about 1 cm); the one-step approximation used by many tools is metres off.
        Points outside China's box come back unchanged; a point with a NaN
        coordinate comes back as (NaN, NaN).

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(116.3974, 39.9087)
    >>> round(lon, 4), round(lat, 4)
    (116.3912, 39.9073)
    """
    g_lon, g_lat, scalar = _as_arrays(lon, lat)
    inside = np.asarray(in_china(g_lon, g_lat)) & np.isfinite(g_lon) & np.isfinite(g_lat)
    w_lon = g_lon.copy()
    w_lat = g_lat.copy()
    if inside.any():
        t_lon, t_lat = g_lon[inside], g_lat[inside]
        # Start from the one-step approximation, then correct by the forward residual.
        d_lon, d_lat = _offset(t_lon, t_lat)
        e_lon, e_lat = t_lon - d_lon, t_lat - d_lat
        for _ in range(_MAX_ITERATIONS):
            d_lon, d_lat = _offset(e_lon, e_lat)
            r_lon = e_lon + d_lon - t_lon
            r_lat = e_lat + d_lat - t_lat
            e_lon = e_lon - r_lon
            e_lat = e_lat - r_lat
            if max(np.abs(r_lon).max(), np.abs(r_lat).max()) < _TOLERANCE_DEG:
                break
        w_lon[inside] = e_lon
        w_lat[inside] = e_lat
    return _result(*_nan_together(w_lon, w_lat), scalar)


def to_crs(
    lon_or_x: ArrayLike, lat_or_y: ArrayLike, system: str, target_crs: object
) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Coordinates given in a named system, transformed to ``target_crs``.

    Parameters
    ----------
    lon_or_x, lat_or_y : float or array-like
        Longitude/latitude in degrees for the geographic systems; x/y in the units
        of the CRS for an ``"EPSG:xxxx"`` source. Always easting first.
    system : str
        ``"WGS84"`` (EPSG:4326), ``"CGCS2000"`` (EPSG:4490), ``"GCJ02"`` (also
        ``"GCJ-02"``; converted to WGS84 first), or any ``"EPSG:xxxx"`` code that
        pyproj knows. Case is ignored.
    target_crs : str, int or pyproj.CRS
        Anything :meth:`pyproj.CRS.from_user_input` accepts.

    Returns
    -------
    (x, y)
        In ``target_crs``, easting first; floats for scalar input.

    Raises
    ------
    twin.errors.CRSError
        ``system`` is not one of the above, or an EPSG code or ``target_crs``
        that pyproj cannot read; the message names what came in and what is allowed.

    Notes
    -----
    CGCS2000 and WGS84 differ by a few centimetres (both are ITRF-aligned at
    different epochs); pyproj treats the transformation between them as a null
    one, which is well within the accuracy of any incident report.

    Examples
    --------
    >>> x, y = to_crs(116.3974, 39.9087, "GCJ-02", "EPSG:4326")
    >>> round(x, 4), round(y, 4)
    (116.3912, 39.9073)
    """
    source = _source_crs(system)
    x, y, scalar = _as_arrays(lon_or_x, lat_or_y)
    if source is None:
        lon_w, lat_w = gcj02_to_wgs84(x, y)
        x, y = np.asarray(lon_w, dtype="float64"), np.asarray(lat_w, dtype="float64")
        source = CRS.from_epsg(4326)
    try:
        target = CRS.from_user_input(target_crs)
    except ProjCRSError as exc:
        raise CRSError(f"target CRS {target_crs!r} is not one pyproj can read; pass e.g. 'EPSG:32650'") from exc
    transformer = Transformer.from_crs(source, target, always_xy=True)
    out_x, out_y = transformer.transform(x, y)
    return _result(np.asarray(out_x, dtype="float64"), np.asarray(out_y, dtype="float64"), scalar)


def _source_crs(system: str) -> CRS | None:
    """The pyproj CRS of a named system; None for GCJ-02."""
    allowed = f"one of {', '.join(['WGS84', 'CGCS2000', 'GCJ02', 'GCJ-02'])} or an 'EPSG:xxxx' code"
    if not isinstance(system, str) or not system.strip():
        raise CRSError(f"coordinate system {system!r} is unknown; give {allowed}")
    name = system.strip().upper()
    name = _ALIASES.get(name, name)
    if name in SYSTEMS:
        code = SYSTEMS[name]
        return None if code is None else CRS.from_user_input(code)
    if name.startswith("EPSG:"):
        try:
            return CRS.from_user_input(name)
        except ProjCRSError as exc:
            raise CRSError(f"coordinate system {system!r} is not an EPSG code pyproj knows; give {allowed}") from exc
    raise CRSError(f"coordinate system {system!r} is unknown; give {allowed}")


def _as_arrays(a: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, np.ndarray, bool]:
    """Two inputs as broadcast float64 arrays, and whether both were scalars."""
    a_arr = np.asarray(a, dtype="float64")
    b_arr = np.asarray(b, dtype="float64")
    scalar = a_arr.ndim == 0 and b_arr.ndim == 0
    a_arr, b_arr = np.broadcast_arrays(a_arr, b_arr)
    return np.array(a_arr, dtype="float64"), np.array(b_arr, dtype="float64"), scalar


def _nan_together(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A point with either coordinate NaN is missing: both come back NaN."""
    missing = np.isnan(lon) | np.isnan(lat)
    return np.where(missing, np.nan, lon), np.where(missing, np.nan, lat)


def _result(a: np.ndarray, b: np.ndarray, scalar: bool) -> tuple[np.ndarray | float, np.ndarray | float]:
    if scalar:
        return float(a), float(b)
    return a, b
