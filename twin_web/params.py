"""Query and path parameters parsed into small typed values; bad input raises :class:`ParameterError` naming it.

Two layers. The parsers (:func:`number`, :func:`integer`, :func:`parse_time`,
:func:`bbox`, :func:`interval`...) take the request's arguments (a mapping of str to
str), the name of the parameter and what it allows, and return a plain value or a small
frozen dataclass. The specs (:class:`Number`, :class:`Integer`, :class:`Time`,
:class:`Parameter`, :class:`Choice`, :class:`Text`, :class:`Custom`) put a parser in a
route's declaration: a :class:`Query` or :class:`Path` model (pydantic) whose fields are
``Annotated[type, Spec]``, which flask-openapi3 validates before the view runs and shows
in the OpenAPI document (:mod:`twin_web.openapi`). The spec reads the raw text, so every
400 names its parameter with the parser's message; the field's type, default and the
spec's bounds are what the document says. Nothing here touches the twin.

Every time of every route lies within :data:`EARLIEST` (1970-01-01, where the store's
clock starts) and now + :data:`AHEAD` (ten years: a query, unlike a reading, may ask about
a planned release or a scenario in the future); outside, or unparsable, it is a 400
naming the parameter, never a 500 from an out-of-range date deeper down.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import pandas as pd
import shapely
from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.fields import FieldInfo

from twin.ops.parameters import PARAMETERS
from twin_web.errors import ParameterError

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")

#: the earliest time a parameter may name (UTC)
EARLIEST = pd.Timestamp("1970-01-01T00:00Z")
#: how far after now a parameter may name a time
AHEAD = pd.Timedelta(days=3653)


def latest() -> pd.Timestamp:
    """The latest time a parameter may name: now + :data:`AHEAD`."""
    return pd.Timestamp.now(tz="UTC") + AHEAD


def in_window(t: pd.Timestamp, name: str, raw: str) -> pd.Timestamp:
    """``t`` if it lies within :data:`EARLIEST` .. :func:`latest`, else a :class:`ParameterError` naming ``name``."""
    last = latest()
    if not EARLIEST <= t <= last:
        raise ParameterError(
            name,
            f"{raw[:40]!r} is outside the times served ({EARLIEST:%Y-%m-%d} to {last:%Y-%m-%d}, UTC)",
        )
    return t


def check_known(args: Mapping[str, str], allowed: Iterable[str]) -> None:
    """Refuse query parameters the route does not define (OGC API Features, /req/core/query-param-unknown)."""
    allowed = set(allowed)
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise ParameterError(unknown[0], f"unknown query parameter; this request takes: {', '.join(sorted(allowed))}")


def text(args: Mapping[str, str], name: str, default: str | None = None, required: bool = False) -> str | None:
    value = args.get(name)
    if value is None or value == "":
        if required:
            raise ParameterError(name, "is required")
        return default
    return value


def number(
    args: Mapping[str, str],
    name: str,
    default: float | None = None,
    *,
    required: bool = False,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
) -> float | None:
    """A finite decimal number within [lo, hi] (``lo_open``: strictly above lo)."""
    raw = text(args, name, required=required)
    if raw is None:
        return default
    if not _NUMBER.match(raw.strip()):
        raise ParameterError(name, f"{raw[:40]!r} is not a number")
    value = float(raw)
    if not math.isfinite(value):
        raise ParameterError(name, f"{raw[:40]!r} is not a finite number")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ParameterError(name, f"{value:g} must be {'above' if lo_open else 'at least'} {lo:g}")
    if hi is not None and value > hi:
        raise ParameterError(name, f"{value:g} must be at most {hi:g}")
    return value


def integer(
    args: Mapping[str, str],
    name: str,
    default: int | None = None,
    *,
    required: bool = False,
    lo: int | None = None,
    hi: int | None = None,
) -> int | None:
    """A whole number within [lo, hi]."""
    raw = text(args, name, required=required)
    if raw is None:
        return default
    if not _INTEGER.match(raw.strip()):
        raise ParameterError(name, f"{raw[:40]!r} is not a whole number")
    if len(raw) > 1000:
        raise ParameterError(name, f"a number of {len(raw)} digits is too long")
    value = int(raw)
    if lo is not None and value < lo:
        raise ParameterError(name, f"{value} must be at least {lo}")
    if hi is not None and value > hi:
        raise ParameterError(name, f"{value} must be at most {hi}")
    return value


def parse_time(raw: str, name: str) -> pd.Timestamp:
    """An RFC 3339 date-time with its zone, as a UTC timestamp."""
    if not _DATETIME.match(raw):
        raise ParameterError(name, f"{raw[:40]!r} is not a date-time; give e.g. 2026-09-03T06:00Z")
    try:
        t = pd.Timestamp(raw)
    except (ValueError, OverflowError):
        raise ParameterError(name, f"{raw[:40]!r} is not a date-time; give e.g. 2026-09-03T06:00Z") from None
    if pd.isna(t):
        raise ParameterError(name, f"{raw[:40]!r} is not a date-time; give e.g. 2026-09-03T06:00Z")
    if t.tzinfo is None:
        raise ParameterError(name, f"{raw[:40]!r} has no zone; add Z or an offset (e.g. 2026-09-03T06:00Z)")
    try:
        utc = t.tz_convert("UTC")
    except (ValueError, OverflowError):
        raise ParameterError(name, f"{raw[:40]!r} is outside the times served") from None
    return in_window(utc, name, raw)


def time(
    args: Mapping[str, str], name: str, *, required: bool = False, default: pd.Timestamp | None = None
) -> pd.Timestamp | None:
    raw = text(args, name, required=required)
    return default if raw is None else parse_time(raw, name)


def parameter(args: Mapping[str, str], name: str = "parameter", default: str | None = None) -> str:
    """A water-quality parameter id of :data:`twin.ops.parameters.PARAMETERS`."""
    raw = text(args, name, default=default, required=default is None)
    assert raw is not None
    if raw not in PARAMETERS:
        raise ParameterError(name, f"unknown parameter {raw[:40]!r}; known: {', '.join(PARAMETERS)}")
    return raw


# -- OGC API Features ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Paging:
    """``limit`` and ``offset`` of a page of items."""

    limit: int
    offset: int


DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000


def bbox(args: Mapping[str, str]) -> shapely.Geometry | None:
    """``bbox=minlon,minlat,maxlon,maxlat`` (or the 6-number 3D form) in CRS84, as a polygon.

    A box whose west edge is east of its east edge crosses the antimeridian (two boxes).
    """
    raw = text(args, "bbox")
    if raw is None:
        return None
    parts = raw.split(",")
    if len(parts) not in (4, 6) or not all(_NUMBER.match(p.strip()) for p in parts):
        raise ParameterError("bbox", f"{raw[:60]!r}: give 4 numbers minlon,minlat,maxlon,maxlat (or 6 with heights)")
    v = [float(p) for p in parts]
    x0, y0, x1, y1 = (v[0], v[1], v[2], v[3]) if len(v) == 4 else (v[0], v[1], v[3], v[4])
    if not all(math.isfinite(c) for c in v):
        raise ParameterError("bbox", f"{raw[:60]!r} has a number that is not finite")
    if not (-180 <= x0 <= 180 and -180 <= x1 <= 180 and -90 <= y0 <= 90 and -90 <= y1 <= 90):
        raise ParameterError("bbox", f"{raw[:60]!r}: longitudes must lie in -180..180 and latitudes in -90..90")
    if y0 > y1:
        raise ParameterError("bbox", f"{raw[:60]!r}: the south edge {y0:g} is north of the north edge {y1:g}")
    if x0 <= x1:
        return shapely.box(x0, y0, x1, y1)
    return shapely.union(shapely.box(x0, y0, 180, y1), shapely.box(-180, y0, x1, y1))


@dataclass(frozen=True)
class Interval:
    """A closed time interval; an open end is None. An instant has ``start == end``."""

    start: pd.Timestamp | None
    end: pd.Timestamp | None


def _bound(raw: str, name: str, end: bool) -> pd.Timestamp | None:
    if raw in ("", ".."):
        return None
    if _DATE.match(raw):  # a whole day, UTC
        try:
            day = in_window(pd.Timestamp(raw, tz="UTC"), name, raw)
        except (ValueError, OverflowError):
            raise ParameterError(name, f"{raw!r} is not a date") from None
        return day + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1) if end else day
    return parse_time(raw, name)


def interval(args: Mapping[str, str], name: str = "datetime") -> Interval | None:
    """``datetime``: an instant, a date, or ``start/end`` with ``..`` (or nothing) for an open end."""
    raw = text(args, name)
    if raw is None:
        return None
    if raw.count("/") > 1:
        raise ParameterError(name, f"{raw[:60]!r}: give an instant or start/end (RFC 3339, '..' for open)")
    if "/" in raw:
        a, b = raw.split("/")
        if a in ("", "..") and b in ("", ".."):
            raise ParameterError(name, f"{raw!r}: at least one end of the interval must be given")
        start, end = _bound(a, name, end=False), _bound(b, name, end=True)
        if start is not None and end is not None and start > end:
            raise ParameterError(name, f"{raw!r}: the interval ends before it starts")
        return Interval(start, end)
    if raw == "..":
        raise ParameterError(name, "'..' alone is not an instant; give start/end")
    if _DATE.match(raw):
        return Interval(_bound(raw, name, end=False), _bound(raw, name, end=True))
    t = parse_time(raw, name)
    return Interval(t, t)


def near(lon: float, lat: float, bounds: Any, margin: float = 0.5) -> None:
    """Refuse a point far outside the twin's WGS84 bounds (``None``: no bounds known) before any projection.

    Far from the twin's zone, a projected CRS gives infinite or meaningless coordinates.
    """
    if not bounds:
        return
    west, south, east, north = (float(b) for b in bounds)
    if not (west - margin <= lon <= east + margin and south - margin <= lat <= north + margin):
        raise ParameterError(
            "lon,lat",
            f"({lon}, {lat}) is outside the twin (lon {west:.3f}..{east:.3f}, lat {south:.3f}..{north:.3f})",
        )


# -- declared parameters -------------------------------------------------------------------------
#
# A route declares its query (and path) parameters once, as a pydantic model whose fields are
# annotated with one of the specs below. The spec reads the raw text with the parsers above (so
# every 400 names its parameter, with the same message as ever) and says what the OpenAPI
# document shows of it; the field's type and default are the rest of the declaration.

MISSING: Any = object()
"""What a spec reads when the request does not give the parameter: the field's default applies."""


class Spec:
    """How one parameter is read from the request's text and shown in the API description."""

    def __init__(self, description: str, **schema: Any):
        self.description = description
        self.schema = schema

    def read(self, args: Mapping[str, str], name: str, required: bool) -> Any:
        """The parameter's value, or :data:`MISSING`; a :class:`ParameterError` naming it if it is bad."""
        raw = text(args, name, required=required)
        return MISSING if raw is None else raw

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        out = dict(handler(core_schema))
        out.pop("title", None)
        out.update(self.schema, description=self.description)
        return out


class Text(Spec):
    """Any text (at most ``max_length`` characters in the description)."""


class Number(Spec):
    """A finite number within [lo, hi] (``lo_open``: above lo); ``required_with``: required when one of them is given."""

    def __init__(
        self,
        description: str,
        *,
        lo: float | None = None,
        hi: float | None = None,
        lo_open: bool = False,
        required_with: tuple[str, ...] = (),
        why: str = "",
    ):
        bounds: dict[str, Any] = {}
        if lo is not None:
            bounds["exclusiveMinimum" if lo_open else "minimum"] = lo
        if hi is not None:
            bounds["maximum"] = hi
        super().__init__(description, **bounds)
        self.lo, self.hi, self.lo_open = lo, hi, lo_open
        self.required_with, self.why = required_with, why

    def read(self, args: Mapping[str, str], name: str, required: bool) -> Any:
        if text(args, name) is None:
            given = [k for k in self.required_with if k in args]
            if given:
                raise ParameterError(name, f"is required with {', '.join(given)}{self.why}")
            if required:
                raise ParameterError(name, f"is required{self.why}")
        value = number(args, name, lo=self.lo, hi=self.hi, lo_open=self.lo_open)
        return MISSING if value is None else value


class Integer(Spec):
    """A whole number within [lo, hi]."""

    def __init__(self, description: str, *, lo: int | None = None, hi: int | None = None, **schema: Any):
        bounds = {k: v for k, v in (("minimum", lo), ("maximum", hi)) if v is not None}
        super().__init__(description, **{**schema, **bounds})
        self.lo, self.hi = lo, hi

    def read(self, args: Mapping[str, str], name: str, required: bool) -> Any:
        value = integer(args, name, required=required, lo=self.lo, hi=self.hi)
        return MISSING if value is None else value


class Time(Spec):
    """An RFC 3339 date-time with its zone, within :data:`EARLIEST` .. :func:`latest`; ``required_if``: when given."""

    RANGE = "RFC 3339 with a zone, from 1970-01-01T00:00Z to ten years after now"

    def __init__(self, description: str, *, required_if: str | None = None):
        super().__init__(description)
        self.required_if = required_if

    def read(self, args: Mapping[str, str], name: str, required: bool) -> Any:
        needed = required or (self.required_if is not None and text(args, self.required_if) is not None)
        value = time(args, name, required=needed)
        return MISSING if value is None else value

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        return {"type": "string", "format": "date-time", "description": f"{self.description} ({self.RANGE})"}


class Parameter(Spec):
    """A water-quality parameter id of :data:`twin.ops.parameters.PARAMETERS`."""

    def __init__(self, description: str):
        super().__init__(description, type="string", enum=list(PARAMETERS))

    def read(self, args: Mapping[str, str], name: str, required: bool) -> Any:
        if text(args, name) is None:
            if required:
                raise ParameterError(name, "is required")
            return MISSING
        return parameter(args, name)


class Choice(Spec):
    """One of a few words; anything else is ``error(value)`` (a :class:`ParameterError`, or a 404 for a path)."""

    def __init__(self, description: str, choices: Iterable[str], error: Callable[[str], Exception]):
        self.choices = tuple(choices)
        super().__init__(description, enum=list(self.choices))
        self.error = error

    def read(self, args: Mapping[str, str], name: str, required: bool) -> Any:
        raw = args.get(name)
        if raw is None:
            if required:
                raise ParameterError(name, "is required")
            return MISSING
        if raw not in self.choices:
            raise self.error(raw)
        return raw


class Custom(Spec):
    """A parameter read by its own parser ``parse(args, name)`` (bbox, datetime, line...); ``schema``: what it is."""

    def __init__(self, description: str, parse: Any, **schema: Any):
        super().__init__(description, **schema)
        self.parse = parse

    def read(self, args: Mapping[str, str], name: str, required: bool) -> Any:
        if text(args, name) is None:
            if required:
                raise ParameterError(name, "is required")
            return MISSING
        return self.parse(args, name)

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        return {**self.schema, "description": self.description}


def _spec(field: FieldInfo) -> Spec:
    for m in field.metadata:
        if isinstance(m, Spec):
            return m
    raise TypeError(f"a declared parameter needs a twin_web.params.Spec in its Annotated type, not {field}")


class Declared(BaseModel):
    """Parameters of a route, each field ``Annotated[type, Spec]``: read by their specs in field order.

    The first bad parameter raises its :class:`ParameterError` (or :class:`NotFoundError`)
    before pydantic sees the values; pydantic then holds them as the fields' types.
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore", arbitrary_types_allowed=True)
    #: refuse parameters the route does not define (OGC API Features, /req/core/query-param-unknown)
    refuse_unknown: ClassVar[bool] = False

    @model_validator(mode="before")
    @classmethod
    def _read(cls, data: Any) -> Any:
        # flask-openapi3 hands lists for array-typed parameters (bbox, line): their text is the first
        raw = {str(k): (v[0] if isinstance(v, list) and v else v) for k, v in dict(data or {}).items()}
        names = {f.alias or n: f for n, f in cls.model_fields.items()}
        if cls.refuse_unknown:
            check_known(raw, names)
        out: dict[str, Any] = {}
        for key, field in names.items():
            value = _spec(field).read(raw, key, field.is_required())
            if value is not MISSING:
                out[key] = value
        return out


class Query(Declared):
    """The query parameters of a route that refuses any other (a 400 naming the first unknown one)."""

    refuse_unknown: ClassVar[bool] = True


class LooseQuery(Declared):
    """The query parameters of a route that ignores any other (pages, hearing links, tiles)."""


class Path(Declared):
    """The path parameters of a route."""


# -- the parameters several routes share ---------------------------------------------------------

Lon = Annotated[float, Number("Longitude (WGS 84)", lo=-180, hi=180)]
Lat = Annotated[float, Number("Latitude (WGS 84)", lo=-90, hi=90)]
FlowRatio = Annotated[float, Number("Discharge as a multiple of the mean annual discharge", lo=0, lo_open=True, hi=100)]
DurationH = Annotated[float, Number("Release duration (h)", lo=0, hi=24 * 30)]
DecayPerHour = Annotated[float, Number("First-order decay rate (1/h)", lo=0, hi=100)]
