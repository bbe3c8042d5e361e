"""Loaders: turn the sources a catalog names into arrays and GeoDataFrames.

- DEM: any GDAL raster (GeoTIFF, SRTM ``.hgt``, ESRI ASCII grid), one file or a
  mosaic of tiles, any CRS; reprojected (bilinear) to one metric working CRS,
  nodata kept as NaN.
- Vectors: GeoJSON, GeoPackage, Shapefile, in any CRS pyproj can read.
- Site lists: CSV with x/y (e.g. lon/lat) columns and a declared CRS, or GeoJSON.

Assumptions, named here so they can be checked:

* A raster or vector file's own CRS wins; a CRS declared in the catalog is used
  only when the file has none, and must agree with the file's when both exist.
* Without a working CRS in the catalog, the twin uses the UTM zone (WGS 84) of
  the DEM's centre.
* When a DEM is reprojected, its working cell is the ground size of one of its
  pixels at the DEM's centre, measured in the working CRS (:func:`ground_cell`),
  unless ``parameters.resolution_m`` says otherwise. A pixel whose two sides
  differ on the ground (a lon/lat pixel away from the equator, a projection that
  stretches one way more than the other) gives its smaller side, so that the twin
  is no coarser than the source in any direction: bilinear resampling onto a
  coarser cell drops detail, onto a finer one loses none. (The geometric mean of
  the sides would keep the number of cells; the smaller costs about 1/cos(lat)
  times as many for a square lon/lat pixel, and products in degrees keep that low
  by widening their longitude spacing at high latitudes.) The size is rounded to the
  metre (two significant figures below 10 m), except that a projected pixel whose
  ground size is within :data:`NEGLIGIBLE_DISTORTION` of its own size in metres
  keeps that size (a 12.5 m UTM pixel stays 12.5 m in Lambert-93).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rasterio.merge
from affine import Affine
from pyogrio.errors import CRSError as PyogrioCRSError
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError as PyprojCRSError
from pyproj.exceptions import ProjError
from rasterio.enums import Resampling
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.warp import calculate_default_transform

from twin.errors import CatalogError, CRSError, SourceError

log = logging.getLogger(__name__)

SITE_KINDS = ("station", "intake", "outfall", "mine", "dump", "gauge", "other")
WATER_BODIES = ("river", "lake")


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: shape, affine transform and CRS."""

    shape: tuple[int, int]
    transform: Affine
    crs: CRS

    @property
    def cell_area(self) -> float:
        return abs(self.transform.a * self.transform.e)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        h, w = self.shape
        t = self.transform
        return (t.c, t.f + h * t.e, t.c + w * t.a, t.f)

    def rowcol(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of the cells holding points (may be outside the grid)."""
        col, row = ~self.transform * (np.asarray(x, dtype="float64"), np.asarray(y, dtype="float64"))
        return np.floor(row).astype("int64"), np.floor(col).astype("int64")

    def xy(self, row: np.ndarray | int, col: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """Centre coordinates of cells."""
        x, y = self.transform * (np.asarray(col) + 0.5, np.asarray(row) + 0.5)
        return np.asarray(x), np.asarray(y)


def parse_crs(value: object, what: str) -> CRS:
    """A pyproj CRS from user input, or :class:`CRSError` naming ``what``."""
    try:
        return CRS.from_user_input(value)
    except (PyprojCRSError, TypeError, ValueError) as err:
        raise CRSError(f"{what}: cannot read CRS {value!r} ({err}); give it as e.g. EPSG:4326") from None


def utm_crs_for(lon: float, lat: float) -> CRS:
    """The WGS 84 UTM zone CRS holding a point."""
    zone = min(60, max(1, int(math.floor((lon + 180.0) / 6.0)) + 1))
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def _resolve_crs(file_crs: object | None, declared: str | None, what: str) -> CRS:
    if file_crs:
        crs = parse_crs(file_crs, what) if not isinstance(file_crs, CRS) else file_crs
        if declared:
            want = parse_crs(declared, f"{what} (declared in catalog)")
            if not crs.equals(want, ignore_axis_order=True):
                raise CRSError(
                    f"{what} is in {crs.to_string()} but the catalog declares {want.to_string()}; "
                    "fix the catalog's 'crs' or the file"
                )
        return crs
    if declared:
        return parse_crs(declared, f"{what} (declared in catalog)")
    raise CRSError(f"{what} has no CRS; declare it in the catalog with crs: EPSG:xxxx")


# ---------------------------------------------------------------------------
# DEM
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Elevation:
    """Elevation in the working CRS: float32 array (NaN = nodata) on a grid."""

    values: np.ndarray
    grid: Grid


def _open_raster(path: Path, what: str) -> rasterio.io.DatasetReader:
    if path.stat().st_size == 0:
        raise SourceError(f"{what} '{path}' is empty (0 bytes); replace it with a real raster")
    try:
        return rasterio.open(path)
    except (RasterioIOError, RasterioError) as err:
        raise SourceError(
            f"{what} '{path}' is not a readable raster ({str(err).splitlines()[0]}); check the file"
        ) from None


#: A projected pixel whose ground size differs from its own size (in metres) by less than this
#: fraction is taken as undistorted and keeps its size (UTM zones and national grids scale by
#: at most a few parts in a thousand over the area they are made for).
NEGLIGIBLE_DISTORTION = 0.01


@dataclass(frozen=True)
class GroundCell:
    """A source pixel at the DEM's centre, measured in the working CRS.

    Attributes
    ----------
    pixel:
        The pixel's width and height in the source CRS's unit.
    unit:
        That unit (``metre``, ``degree``, ``US survey foot``...).
    unit_m:
        Metres in one such unit, or None for an angular unit.
    east_m, north_m:
        The pixel's east-west and north-south sides in the working CRS, in metres.
    lon, lat:
        Where it was measured: the centre of the DEM's bounds.
    """

    pixel: tuple[float, float]
    unit: str
    unit_m: float | None
    east_m: float
    north_m: float
    lon: float
    lat: float

    @property
    def resolution(self) -> float:
        """The working cell size in metres: the smaller side, rounded (see the module docstring)."""
        side = min(self.east_m, self.north_m)
        if self.unit_m is not None:
            own = min(self.pixel) * self.unit_m
            if abs(side - own) <= NEGLIGIBLE_DISTORTION * own:
                return own
        return round_resolution(side)

    def describe(self) -> str:
        """Why :attr:`resolution` was chosen, for the log."""
        if self.unit == "degree":
            size = f"{self.pixel[0] * 3600:.4g} x {self.pixel[1] * 3600:.4g} arc-seconds"
        else:
            size = f"{self.pixel[0]:.6g} x {self.pixel[1]:.6g} {self.unit}"
        return (
            f"a source pixel of {size} is "
            f"{self.east_m:.2f} m east-west by {self.north_m:.2f} m north-south at the DEM's centre "
            f"(lon {self.lon:.4f}, lat {self.lat:.4f})"
        )


def round_resolution(size: float) -> float:
    """``size`` (metres) rounded to the metre, or to two significant figures below 10 m."""
    if not math.isfinite(size) or size <= 0:
        raise ValueError(f"a cell size must be a positive number of metres; got {size!r}")
    return float(round(size, max(0, 1 - math.floor(math.log10(size)))))


def ground_cell(
    transform: Affine, bounds: tuple[float, float, float, float], crs: CRS, target: CRS, what: str = "DEM"
) -> GroundCell:
    """Measure a pixel of a north-up grid at the centre of ``bounds`` in the working CRS ``target``.

    The pixel is centred on the centre of ``bounds`` (in ``crs``); its sides are the
    distances, in ``target``, between the midpoints of its opposite edges. That holds for
    any source CRS: a Web Mercator pixel (EPSG:3857, stretched by about 1/cos(lat)) comes
    out at its ground size, a lon/lat pixel as two different sides, a pixel in feet in metres.

    Raises
    ------
    CRSError
        The centre cannot be transformed to ``target`` (e.g. a DEM far outside its zone).
    """
    left, bottom, right, top = bounds
    cx, cy = (left + right) / 2, (bottom + top) / 2
    hx, hy = abs(transform.a) / 2, abs(transform.e) / 2
    try:
        xs, ys = Transformer.from_crs(crs, target, always_xy=True).transform(
            [cx - hx, cx + hx, cx, cx], [cy, cy, cy - hy, cy + hy], errcheck=True
        )
        lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(cx, cy, errcheck=True)
    except ProjError as err:
        raise CRSError(
            f"{what}: its centre ({cx:.6g}, {cy:.6g} in {crs.to_string()}) cannot be placed in the working CRS "
            f"{target.to_string()} ({err}); check the DEM's georeferencing, or set the catalog's crs to one that covers it"
        ) from None
    east = math.hypot(xs[1] - xs[0], ys[1] - ys[0])
    north = math.hypot(xs[3] - xs[2], ys[3] - ys[2])
    if not (math.isfinite(east) and math.isfinite(north) and east > 0 and north > 0):
        raise CRSError(
            f"{what}: its centre pixel has no size in the working CRS {target.to_string()}; "
            "check the DEM's georeferencing, or set the catalog's crs to one that covers it"
        )
    axis = crs.axis_info[0]
    angular = crs.is_geographic or axis.unit_name in ("degree", "radian", "grad")
    return GroundCell(
        pixel=(abs(transform.a), abs(transform.e)),
        unit=axis.unit_name,
        unit_m=None if angular else float(axis.unit_conversion_factor),
        east_m=east,
        north_m=north,
        lon=float(lon),
        lat=float(lat),
    )


def working_crs(bounds: tuple[float, float, float, float], crs: CRS, target_crs: str | None) -> CRS:
    """The metric working CRS: the catalog's, or the UTM zone of the centre of ``bounds`` (in ``crs``)."""
    if target_crs:
        target = parse_crs(target_crs, "catalog 'crs'")
    else:
        left, bottom, right, top = bounds
        to_ll = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        lon, lat = to_ll.transform((left + right) / 2, (bottom + top) / 2)
        target = utm_crs_for(lon, lat)
    if not target.is_projected or target.axis_info[0].unit_name not in ("metre", "meter"):
        raise CRSError(
            f"working CRS {target.to_string()} is not a projected CRS in metres; set the catalog's crs to one (e.g. a UTM zone)"
        )
    return target


def check_north_up(transform: Affine, what: str) -> None:
    """:class:`SourceError` unless ``transform`` is a north-up grid (no rotation, rows going south)."""
    if transform.b != 0 or transform.d != 0 or transform.e >= 0:
        raise SourceError(f"{what} is rotated or not north-up; warp it to a north-up grid first (gdalwarp)")


def check_square(transform: Affine, what: str) -> None:
    """:class:`SourceError` unless the cells of ``transform`` are square."""
    if abs(abs(transform.a) - abs(transform.e)) > 1e-6 * abs(transform.a):
        raise SourceError(
            f"{what} has non-square cells ({transform.a} x {-transform.e}); set parameters.resolution_m to resample"
        )


def warp_grid(src: rasterio.io.DatasetReader, crs: CRS, target: CRS, res: float) -> tuple[Affine, int, int]:
    """Transform, width and height of ``src`` reprojected to ``target`` at ``res`` metres (GDAL's default extent)."""
    dst_t, w, h = calculate_default_transform(crs, target, src.width, src.height, *src.bounds, resolution=res)
    return dst_t, int(w), int(h)


def warped(
    src: rasterio.io.DatasetReader,
    crs: CRS,
    target: CRS,
    nodata: float | None,
    grid: tuple[Affine, int, int],
) -> WarpedVRT:
    """``src`` reprojected (bilinear, float32, NaN beyond it and on ``nodata``) onto ``grid``, read lazily."""
    transform, width, height = grid
    return WarpedVRT(
        src,
        src_crs=crs,
        crs=target,
        resampling=Resampling.bilinear,
        src_nodata=nodata,
        nodata=np.nan,
        dtype="float32",
        transform=transform,
        width=width,
        height=height,
    )


# ---------------------------------------------------------------------------
# Vectors
# ---------------------------------------------------------------------------
def load_vectors(
    paths: list[Path], *, declared_crs: str | None = None, layer: str | None = None, what: str = "vectors"
) -> gpd.GeoDataFrame:
    """Read one or more vector files (concatenated) with their CRS.

    Raises
    ------
    SourceError
        A file is missing, unreadable or holds no features.
    CRSError
        The CRS is missing (and not declared), unreadable, or disagrees with the declared one.
    """
    frames = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise SourceError(f"{what} '{p}' does not exist; fix its path in the catalog")
        try:
            df = gpd.read_file(p, layer=layer) if layer else gpd.read_file(p)
        except Exception as err:  # pyogrio raises several unrelated classes for unreadable data
            if isinstance(err, (PyprojCRSError, PyogrioCRSError)):  # pyogrio raises its own class for a bad .prj
                raise CRSError(
                    f"{what} '{p}' has a CRS that cannot be read ({str(err).splitlines()[0]}); "
                    "fix its .prj (or remove it and declare crs in the catalog)"
                ) from None
            raise SourceError(
                f"{what} '{p}' is not a readable vector file ({str(err).splitlines()[0]}); check the file"
            ) from None
        if len(df) == 0:
            raise SourceError(f"{what} '{p}' holds no features; check the file or its layer")
        file_crs = df.crs
        crs = _resolve_crs(file_crs, declared_crs, f"{what} '{p}'")
        df = df.set_crs(crs, allow_override=True) if file_crs is None else df
        frames.append(df)
    crs0 = frames[0].crs
    frames = [f if f.crs.equals(crs0) else f.to_crs(crs0) for f in frames]
    out = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=crs0)
    if out.geometry.isna().any() or out.geometry.is_empty.any():
        bad = int((out.geometry.isna() | out.geometry.is_empty).sum())
        raise SourceError(f"{what} '{paths[0]}': {bad} feature(s) have no geometry; remove or fix them")
    return out


def load_sites(
    paths: list[Path],
    *,
    fmt: str | None,
    declared_crs: str | None,
    id_field: str = "id",
    name_field: str = "name",
    x_field: str = "lon",
    y_field: str = "lat",
    layer: str | None = None,
    what: str = "sites",
) -> gpd.GeoDataFrame:
    """Read a site list (CSV with coordinates and a declared CRS, or GeoJSON/GPKG).

    Columns kept: ``id``, ``name``, ``kind`` (one of :data:`SITE_KINDS`, default
    ``station``), ``water_body`` (``river`` or ``lake``, default ``river``),
    ``target_class`` (1-5, default 3) and any other column as is.
    """
    frames = []
    for p in paths:
        p = Path(p)
        is_csv = (fmt or "").upper() == "CSV" or (fmt is None and p.suffix.lower() == ".csv")
        if is_csv:
            if not declared_crs:
                raise CRSError(
                    f"{what} '{p}' is a CSV and has no CRS; declare it in the catalog with crs: EPSG:4326 (for lon/lat)"
                )
            crs = parse_crs(declared_crs, f"{what} '{p}'")
            try:
                df = pd.read_csv(p, dtype={id_field: str}, encoding="utf-8-sig")
            except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
                raise SourceError(f"{what} '{p}' is not a readable CSV ({err}); check the file") from None
            for col in (x_field, y_field):
                if col not in df.columns:
                    raise SourceError(
                        f"{what} '{p}' has no column '{col}'; columns are {list(df.columns)} (set x_field/y_field in the catalog)"
                    )
            xy = df[[x_field, y_field]].apply(pd.to_numeric, errors="coerce")
            if xy.isna().any().any():
                bad = df.loc[xy.isna().any(axis=1), id_field if id_field in df else x_field].tolist()
                raise SourceError(f"{what} '{p}': rows {bad} have missing or non-numeric coordinates; fix them")
            df = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(xy[x_field], xy[y_field]), crs=crs)
        else:
            df = load_vectors([p], declared_crs=declared_crs, layer=layer, what=what)
            if not (df.geom_type == "Point").all():
                raise SourceError(f"{what} '{p}': every site must be a Point; found {sorted(set(df.geom_type))}")
        frames.append(df.to_crs("EPSG:4326") if df.crs and not df.crs.equals(CRS.from_epsg(4326)) else df)
    df = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
    for col in (id_field, name_field):
        if col not in df.columns:
            raise SourceError(f"{what} '{paths[0]}' has no column '{col}'; columns are {list(df.columns)}")
    df = df.rename(columns={id_field: "id", name_field: "name"})
    df["id"] = df["id"].astype(str)
    dup = df["id"][df["id"].duplicated()].tolist()
    if dup:
        raise SourceError(f"{what}: site ids {dup} appear more than once; ids must be unique")
    df["kind"] = df["kind"].fillna("station") if "kind" in df else "station"
    df["water_body"] = df["water_body"].fillna("river") if "water_body" in df else "river"
    df["target_class"] = pd.to_numeric(df["target_class"], errors="coerce").fillna(3) if "target_class" in df else 3
    bad_kind = sorted(set(df["kind"]) - set(SITE_KINDS))
    if bad_kind:
        raise CatalogError(f"{what}: unknown site kind(s) {bad_kind}; allowed: {list(SITE_KINDS)}")
    bad_wb = sorted(set(df["water_body"]) - set(WATER_BODIES))
    if bad_wb:
        raise CatalogError(f"{what}: unknown water_body value(s) {bad_wb}; allowed: {list(WATER_BODIES)}")
    tc = df["target_class"]
    bad_tc = (tc < 1) | (tc > 5) | (tc != tc.round())
    if bad_tc.any():
        raise CatalogError(
            f"{what} '{paths[0]}': target_class must be a whole number 1-5 (GB 3838 classes I-V); "
            f"sites {df.loc[bad_tc, 'id'].tolist()} have {tc[bad_tc].tolist()}"
        )
    df["target_class"] = tc.astype(int)
    return df
