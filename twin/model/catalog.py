"""The catalog (``basin.yml``): one declared interface to every source of a basin.

A catalog names the basin, its working CRS, the model parameters and every
source with its role, format and CRS. Paths are relative to the catalog file.

Example
-------
.. code-block:: yaml

    name: cevennes
    crs: EPSG:32631            # metric working CRS; omit for the UTM zone of the DEM centre
    parameters:
      stream_threshold_km2: 2.0
    sources:
      dem: {role: dem, format: GTiff, crs: EPSG:32631, path: dem.tif}
      departements:
        role: jurisdictions
        level: departement
        format: GeoJSON
        crs: EPSG:4326
        paths: [admin/departement-48.geojson, admin/departement-30.geojson]
      stations: {role: sites, format: CSV, crs: EPSG:4326, path: stations.csv}

Roles: exactly one ``dem``; any number of ``jurisdictions`` layers (one per
level, each naming its ``parent_level``); any number of ``sites`` lists;
at most one ``boundary`` (a polygon to clip the basin to). Instead of a
boundary, ``outlet: {lon: .., lat: ..}`` keeps only the catchment of that
point (snapped to its river), e.g. one river's basin out of an SRTM tile.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from twin.errors import CatalogError, SourceError

ROLES = ("dem", "jurisdictions", "sites", "boundary")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _FileSource(_Strict):
    path: str | None = None
    paths: list[str] | None = None
    crs: str | None = Field(None, description="CRS declared for the source, e.g. EPSG:4326")
    description: str | None = None
    licence: str | None = None

    @model_validator(mode="after")
    def _one_of_path_paths(self) -> _FileSource:
        if (self.path is None) == (self.paths is None):
            raise ValueError("give exactly one of 'path' (one file) or 'paths' (a list of files)")
        if self.paths is not None and not self.paths:
            raise ValueError("'paths' is empty; list at least one file")
        return self

    @property
    def files(self) -> list[str]:
        return [self.path] if self.path is not None else list(self.paths or [])


class DemSource(_FileSource):
    """An elevation raster: one file or several tiles mosaicked together."""

    role: Literal["dem"]
    format: Literal["GTiff", "SRTMHGT", "AAIGrid"] | None = None
    nodata: float | None = None
    units: Literal["m"] = "m"


class JurisdictionSource(_FileSource):
    """Administrative units of one level (several files are concatenated)."""

    role: Literal["jurisdictions"]
    format: Literal["GeoJSON", "GPKG", "ESRI Shapefile"] | None = None
    level: str
    parent_level: str | None = None
    code_field: str = "code"
    name_field: str = "name"
    layer: str | None = None


class SiteSource(_FileSource):
    """Fixed points: monitoring stations, intakes, outfalls..."""

    role: Literal["sites"]
    format: Literal["CSV", "GeoJSON", "GPKG"] | None = None
    id_field: str = "id"
    name_field: str = "name"
    x_field: str = "lon"
    y_field: str = "lat"
    layer: str | None = None


class BoundarySource(_FileSource):
    """A polygon the basin is clipped to."""

    role: Literal["boundary"]
    format: Literal["GeoJSON", "GPKG", "ESRI Shapefile"] | None = None
    layer: str | None = None


Source = Annotated[DemSource | JurisdictionSource | SiteSource | BoundarySource, Field(discriminator="role")]


class Parameters(_Strict):
    """Model parameters, each with a documented default.

    Attributes
    ----------
    stream_threshold_km2:
        Upstream area from which a cell is a river cell.
    runoff_mm_per_year:
        Mean annual runoff depth; mean annual discharge of a reach is its
        upstream area times this depth.
    snap_max_m:
        How far a site or a clicked point may be from a river and still be snapped to it.
    min_slope:
        Floor of a reach's slope (m/m); conditioned DEMs have flat reaches and
        velocity formulas need a positive slope.
    section_min_run_m:
        A river counts as having entered another unit once it has run this far in it.
    sliver_cells:
        River cells that fall in no jurisdiction (gaps of simplified boundaries)
        take the unit found within this many cells.
    """

    stream_threshold_km2: float = Field(2.0, gt=0)
    runoff_mm_per_year: float = Field(500.0, gt=0)
    snap_max_m: float = Field(500.0, gt=0)
    min_slope: float = Field(1e-4, gt=0)
    sliver_cells: int = Field(3, ge=0, le=50)
    section_min_run_m: float = Field(300.0, ge=0)
    resolution_m: float | None = Field(None, gt=0)


class Outlet(_Strict):
    """The basin's outlet: the twin keeps only the catchment of this point (snapped to its river)."""

    lon: float
    lat: float
    crs: str = "EPSG:4326"


class Catalog(_Strict):
    """A parsed and validated ``basin.yml``."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    title: str | None = None
    crs: str | None = None
    outlet: Outlet | None = None
    parameters: Parameters = Parameters()
    sources: dict[str, Source]
    root: Path = Field(Path("."), exclude=True)

    @model_validator(mode="after")
    def _check_roles(self) -> Catalog:
        dems = [k for k, s in self.sources.items() if s.role == "dem"]
        if len(dems) != 1:
            raise ValueError(f"the catalog needs exactly one source with role 'dem', found {len(dems)}: {dems}")
        boundaries = [k for k, s in self.sources.items() if s.role == "boundary"]
        if len(boundaries) > 1:
            raise ValueError(f"at most one source with role 'boundary', found {boundaries}")
        if boundaries and self.outlet is not None:
            raise ValueError("give either an 'outlet' or a source with role 'boundary' to clip the basin to, not both")
        levels = [s.level for s in self.jurisdiction_sources()]
        if len(set(levels)) != len(levels):
            raise ValueError(f"jurisdiction levels must be unique, found {levels}")
        for s in self.jurisdiction_sources():
            if s.parent_level is not None and s.parent_level not in levels:
                raise ValueError(
                    f"jurisdiction level '{s.level}' names parent_level '{s.parent_level}', which no source declares; levels: {levels}"
                )
        return self

    # -- access ---------------------------------------------------------------
    def dem_source(self) -> tuple[str, DemSource]:
        return next((k, s) for k, s in self.sources.items() if isinstance(s, DemSource))

    def jurisdiction_sources(self) -> list[JurisdictionSource]:
        """Jurisdiction layers ordered from the top level down (parents first)."""
        layers = [s for s in self.sources.values() if isinstance(s, JurisdictionSource)]
        ordered: list[JurisdictionSource] = []
        placed: set[str | None] = {None}
        while len(ordered) < len(layers):
            ready = [s for s in layers if s not in ordered and s.parent_level in placed]
            if not ready:  # a cycle of parents
                raise CatalogError(f"jurisdiction levels form a cycle: {[s.level for s in layers if s not in ordered]}")
            ordered.extend(ready)
            placed.update(s.level for s in ready)
        return ordered

    def site_sources(self) -> dict[str, SiteSource]:
        return {k: s for k, s in self.sources.items() if isinstance(s, SiteSource)}

    def boundary_source(self) -> BoundarySource | None:
        return next((s for s in self.sources.values() if isinstance(s, BoundarySource)), None)

    def resolve(self, relpath: str) -> Path:
        """A source path, relative to the catalog's folder."""
        p = Path(relpath).expanduser()
        return p if p.is_absolute() else self.root / p

    def source_files(self) -> dict[str, list[Path]]:
        """Every source's files, resolved; raises :class:`SourceError` for a missing one."""
        out: dict[str, list[Path]] = {}
        for name, src in self.sources.items():
            files = [self.resolve(f) for f in src.files]
            for f in files:
                if not f.is_file():
                    raise SourceError(
                        f"source '{name}' file '{f}' does not exist; fix its path in the catalog (paths are relative to {self.root})"
                    )
            out[name] = files
        return out


def _describe(err: ValidationError, where: str) -> str:
    first = err.errors()[0]
    parts = [str(p) for p in first["loc"] if not str(p).startswith(("function-after", "tagged-union"))]
    if len(parts) >= 3 and parts[0] == "sources" and parts[2] in ROLES:
        del parts[2]  # pydantic repeats the source's role (the union's tag) after its name
    loc = ".".join(parts)
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = f"unknown key '{parts[-1]}'"
        loc = ".".join(parts[:-1])
    elif first["type"] == "union_tag_invalid" or first["type"] == "union_tag_not_found":
        msg = "'role' must be one of dem, jurisdictions, sites, boundary"
    more = f" (and {len(err.errors()) - 1} more problem(s))" if len(err.errors()) > 1 else ""
    at = f" at '{loc}'" if loc else ""
    return f"catalog '{where}'{at}: {msg}{more}; see the catalog reference in twin/model/catalog.py"


def parse_catalog(data: dict[str, Any], root: Path | str = ".", where: str = "<dict>") -> Catalog:
    """Validate a catalog given as a mapping (what ``yaml.safe_load`` returns)."""
    if not isinstance(data, dict):
        raise CatalogError(
            f"catalog '{where}' must be a mapping of keys (name, sources, ...), got {type(data).__name__}"
        )
    try:
        return Catalog.model_validate({**data, "root": Path(root)})
    except ValidationError as err:
        raise CatalogError(_describe(err, where)) from None


def load_catalog(path: str | Path) -> Catalog:
    """Read and validate a ``basin.yml``.

    Raises
    ------
    SourceError
        The file does not exist or cannot be read.
    CatalogError
        The YAML is malformed, or a key is unknown or missing.
    """
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"catalog '{path}' does not exist; give the path of a basin.yml")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise CatalogError(
            f"catalog '{path}' is not valid YAML ({err.__class__.__name__}: {str(err).splitlines()[0]}); fix the file"
        ) from None
    return parse_catalog(data, root=path.resolve().parent, where=str(path))


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
