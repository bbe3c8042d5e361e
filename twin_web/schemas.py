"""What the API answers, as pydantic models: the response schemas of the OpenAPI document.

Each route names its model in its declaration (``responses={200: Model}``), and the
OpenAPI document shows the model's JSON schema. The views still build plain dicts; in
tests (``TESTING``) every JSON answer is validated against its model, so a field added
to an answer and not here fails there. Models refuse fields they do not name, except
where the library decides the fields (a GeoJSON feature's properties, a tracer's
candidate, an evidence record).

A field named by a Python keyword (``class``, ``from``) is declared under another name
with the keyword as its alias; the schema and the answers use the alias.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Float = float | None
"""A number that is null where there is none (outside the data, not reached)."""


class Out(BaseModel):
    """An answer's object: only the fields named."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)


class Open(BaseModel):
    """An answer's object that may carry more fields than those named."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, serialize_by_alias=True)


class ErrorBody(Out):
    """An error (OGC API's exception document): what went wrong, and the parameter at fault."""

    model_config = ConfigDict(title="exception")

    code: str = Field(description="OGC exception code, e.g. InvalidParameterValue, NotFound")
    description: str = Field("", description="What was wrong and what is allowed")
    status: int = Field(description="The HTTP status")
    parameter: str | None = Field(None, description="The query or path parameter at fault")


# -- links, OGC API - Features ------------------------------------------------------------------


class Link(Out):
    href: str
    rel: str
    type: str | None = None
    title: str | None = None


class Index(Out):
    """Links to the API and the tile layers."""

    title: str | None
    links: list[Link]


class Landing(Out):
    """OGC API landing page."""

    title: str
    description: str
    links: list[Link]


class Conformance(Out):
    conformsTo: list[str] = Field(description="URIs of the conformance classes")  # noqa: N815 (OGC's name)


class Spatial(Out):
    bbox: list[list[float]] = Field(description="[minlon, minlat, maxlon, maxlat] in CRS84")
    crs: str


class Temporal(Out):
    interval: list[list[str | None]] = Field(description="[[start, end]], null for an open end")
    trs: str


class Extent(Out):
    spatial: Spatial | None = None
    temporal: Temporal | None = None


class CollectionInfo(Out):
    """One feature collection: its extent (over the features the user may see) and links."""

    id: str
    title: str
    description: str
    itemType: Literal["feature"]  # noqa: N815
    crs: list[str]
    extent: Extent
    links: list[Link]


class Collections(Out):
    links: list[Link]
    collections: list[CollectionInfo]


class Geometry(Open):
    """A GeoJSON geometry (RFC 7946), coordinates in CRS84."""

    type: str
    coordinates: Any = None


class Feature(Out):
    """A GeoJSON feature (RFC 7946)."""

    type: Literal["Feature"]
    id: str | int | None = None
    geometry: Geometry | None
    properties: dict[str, Any] | None
    links: list[Link] | None = None


class FeatureCollection(Out):
    """A GeoJSON feature collection; a page of a collection also says how many matched and links its neighbours."""

    type: Literal["FeatureCollection"]
    features: list[Feature]
    numberMatched: int | None = None  # noqa: N815
    numberReturned: int | None = None  # noqa: N815
    timeStamp: str | None = None  # noqa: N815
    links: list[Link] | None = None


# -- slices -------------------------------------------------------------------------------------


class SliceInfo(Out):
    name: str
    href: str
    description: str
    parameters: str


class Slices(Out):
    slices: list[SliceInfo]


class StationState(Out):
    """A station at the time: its latest reading, class, and warning (the warning fields only where permitted)."""

    id: str
    name: str
    lon: float
    lat: float
    water_body: str | None
    target_class: int
    time: str | None = Field(description="Of the latest reading within max_age_hours; null: none")
    value: Float
    klass: int | None = Field(alias="class", description="GB 3838-2002 class 1-6 (6: 劣V); null: not classified")
    label: str
    exceeds: bool = Field(description="The class is worse than the station's target")
    warning_level: int | None = Field(None, description="0-4; absent where the user may not see warnings")
    warning: str | None = Field(None, description="blue, yellow, orange, red or null; absent as warning_level")


class TimeSlice(Out):
    at: str
    parameter: str
    units: dict[str, str]
    max_age_hours: float
    classified: bool
    stations: list[StationState]


class TerrainProfile(Out):
    line: list[list[float]]
    units: dict[str, str]
    length_m: float
    source: str
    distance_m: list[Float]
    elevation_m: list[Float]
    lon: list[Float]
    lat: list[Float]


class Start(Out):
    lon: float
    lat: float
    reach_id: int
    snap_distance_m: float


class SectionPassed(Out):
    section_id: int
    level: str
    from_: str | None = Field(alias="from")
    to: str | None
    distance_km: float
    peak_h: float


class SitePassed(Out):
    id: str
    name: str
    kind: str
    distance_km: float
    peak_h: float


class RiverRelease(Out):
    mass_kg: float
    parameter: str
    duration_s: float
    decay_per_hour: float
    flow_ratio: float
    release_at: str
    at: str
    units: dict[str, str]


class RiverProfile(Out):
    start: Start
    units: dict[str, str]
    length_km: float
    flow_ratio: float
    distance_km: list[Float]
    reach_id: list[int]
    lon: list[Float]
    lat: list[Float]
    elevation_m: list[Float]
    conditioned_elevation_m: list[Float]
    sections: list[SectionPassed]
    sites: list[SitePassed]
    release: RiverRelease | None = None
    concentration_mg_l: list[Float] | None = None
    peak_time: list[str | None] | None = None


class StationRef(Out):
    id: str
    name: str
    kind: str
    water_body: str
    target_class: int | None


class ClassBand(Out):
    klass: int = Field(alias="class")
    label: str
    lower: Float
    upper: Float
    inclusive: Literal["upper", "lower", "both", "neither"]


class WarningPeriod(Out):
    id: str
    level: int
    level_name: str
    start: str
    end: str | None
    end_reason: str | None
    peak_value: float
    rule: str
    changes: list[list[Any]] = Field(description="[time, level, rule] of each change of level")


class StationSeries(Out):
    station: StationRef
    parameter: str
    units: dict[str, str]
    long_name: str
    time: list[str]
    value: list[Float]
    flag: list[str]
    klass: list[int | None] = Field(alias="class")
    class_bands: list[ClassBand]
    class_source: str
    limit: int
    next: str | None = Field(None, description="The next page, when there are more readings")
    warnings: list[WarningPeriod] | None = Field(None, description="Absent where the user may not see warnings")


class PlumeReaches(Out):
    reach_id: list[int]
    distance_km: list[Float]
    discharge_m3s: list[Float]
    peak_mg_l: list[Float]
    leading_time: list[str]
    peak_time: list[str]
    trailing_time: list[str]


class PlumeSites(Out):
    id: list[str]
    distance_km: list[Float]
    peak_mg_l: list[Float]
    peak_time: list[str]


class DownstreamPlume(Out):
    reaches: PlumeReaches
    sites: PlumeSites
    model: dict[str, Any]


class DownstreamReport(Out):
    release: dict[str, Any]
    units: dict[str, str]
    entries: list[dict[str, Any]] = Field(description="Jurisdictions, sections and sites reached, in order")
    plume: DownstreamPlume
    path: FeatureCollection


class Candidate(Open):
    """A candidate source, with every column the tracer gives (twin.analysis.tracing.trace_upstream)."""

    candidate: str
    reach_id: int
    lon: float
    lat: float
    release_time: str
    jurisdictions: dict[str, dict[str, Any] | None]
    route: list[str] = Field(description="Top-level units crossed from the candidate to the station")


class TracedStation(Out):
    id: str
    name: str
    lon: float
    lat: float
    jurisdictions: dict[str, dict[str, Any] | None]


class UpstreamTrace(Out):
    station: TracedStation
    parameter: str
    at: str
    window_hours: float
    flow_ratio: float
    units: dict[str, str]
    method: str
    candidates: list[Candidate]


# -- the viewer ---------------------------------------------------------------------------------


class TileRef(Out):
    title: str
    tilejson: str


class ParameterRead(Out):
    id: str
    long_name: str
    name_zh: str
    unit: str
    classified: bool
    readings: int
    first: str
    last: str


class Opening(Out):
    parameter: str | None
    at: str | None


class ViewerConfig(Out):
    title: str | None
    name: str | None
    bounds: list[float]
    center: list[float]
    elevation_m: list[float] | None
    levels: list[str]
    tiles: dict[str, TileRef]
    parameters: list[ParameterRead]
    default: Opening
    simulated: bool
    may: list[str] = Field(description="The actions the user's role may take")
    class_source: str
    units: dict[str, str]


class WarningStop(Out):
    id: str
    station: str
    level: int
    level_name: str
    start: str
    end: str | None


class ViewerTimes(Out):
    parameter: str
    units: dict[str, str]
    time: list[str]
    warnings: list[WarningStop] | None = Field(None, description="Absent where the user may not see warnings")


class PlumeRelease(Out):
    release_at: str
    mass_kg: float
    parameter: str
    duration_h: float
    decay_per_hour: float
    flow_ratio: float


class PlumeOverTime(Out):
    start: Start
    release: PlumeRelease
    units: dict[str, str]
    model: dict[str, Any]
    step_minutes: float
    time: list[str]
    lon: list[float]
    lat: list[float]
    distance_km: list[float]
    reach_id: list[int]
    concentration_mg_l: list[list[Float]] = Field(description="One row per time, one value per point")
    peak_mg_l: list[Float]
    classified: bool
    class_bands: list[ClassBand]


# -- readings, cases, hearings, tiles -----------------------------------------------------------


class Reading(Out):
    """One reading posted as JSON (the time with its zone)."""

    station: str
    time: str
    parameter: str
    value: float | str
    unit: str
    flag: str | None = None


class Rejected(Out):
    line: int | None
    reason: str


class IngestAnswer(Out):
    """The ingest report: what was stored, and the rejected lines with their reasons."""

    batch: int
    source: str
    format: str
    stored: int
    duplicates: int
    corrections: int
    rejected: int
    rejected_by_reason: dict[str, int]
    rejected_rows: list[Rejected]


class CaseInfo(Out):
    case_id: str
    jurisdictions: list[str]
    shared_with: list[str]


class Cases(Out):
    cases: list[CaseInfo]


class CaseEvidence(Out):
    case_id: str
    items: list[dict[str, Any]] = Field(description="The custody records (twin.evidence.ledger)")


class TimelineEvent(Out):
    time: str
    what: str


class HearingData(Out):
    hearing: str
    case_id: str
    judge: str
    expires: str
    agency: str | None
    key_fingerprint: str | None
    bundle_sha256: str
    incident: dict[str, Any] | None
    overlays: list[str]
    timeline: list[TimelineEvent]
    items: list[dict[str, Any]]


class TileLayer(Out):
    name: str
    title: str
    description: str
    tilejson: str


class TileLayers(Out):
    layers: list[TileLayer]


class TileJSON(Out):
    """TileJSON 3.0.0."""

    tilejson: str
    name: str
    description: str
    version: str
    scheme: str
    tiles: list[str]
    minzoom: int
    maxzoom: int
    bounds: list[float]
    center: list[float]
    attribution: str
    tileSize: int  # noqa: N815
    encoding: str | None = None
