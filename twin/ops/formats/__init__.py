"""The ingest formats: one registry, each format a module of this package with the same four names.

A format module defines:

``NAME: str``
    its name: ``twin ingest --format NAME``, and the ``format`` of the batches it makes;
``MEDIA_TYPES: tuple[str, ...]``
    the Content-Types under which ``POST /api/readings`` reads a body as this format
    (empty: not read by the web);
``sniff(name: str, head: bytes) -> bool``
    whether a source called ``name`` (a file's path, or ``body``) whose first bytes
    (:data:`~twin.ops.formats.source.HEAD_BYTES`) are ``head`` is in this format;
``parse(source: Source, *, context: Context) -> Parsed``
    the rows of the :class:`Source` and the rows it could not parse, with their reasons
    (:class:`Parsed`); :class:`Context` is what the store can tell a parser (station names).
    A parser only *parses*, and raises :class:`~twin.ops.errors.IngestError` for a source
    it cannot read at all: values, times, flags and units are checked once, for every
    format, by :func:`twin.ops.readings.check_rows`.

**Adding a format** is one file and one entry here: write ``twin/ops/formats/<name>.py``
with those four names (and its test), then add the module to the import and to the
tuple of :data:`FORMATS` below. The library (:meth:`twin.ops.readings.Readings.ingest`),
the CLI (``twin ingest --format``) and the web (``POST /api/readings``) all take their
formats from :data:`FORMATS`. A format of one's own is used without editing the package
through :meth:`Formats.adding`: ``Readings(engine, formats=FORMATS.adding(module))``.

The order of :data:`FORMATS` is the order of sniffing, from the most specific test to
the most generic: NetCDF (by suffix or magic bytes), HJ 212 (``##``), the national
automatic-station CSV (a ``断面名称`` column), a JSON batch, and last the tidy CSV (any
``.csv``). A body whose Content-Type several formats read (``text/csv``: CNEMC and tidy)
goes to the first of them that sniffs it, else to the last, the most generic, whose
errors then say what the body lacks.

Formats
-------
``netcdf``
    NetCDF-CF ``timeSeries`` files, any CF calendar (:mod:`twin.ops.formats.netcdf`).
``hj212``
    HJ 212-2017 messages, one per line (:mod:`twin.ops.formats.hj212`).
``cnemc``
    The wide CSV of China's national surface-water automatic stations
    (:mod:`twin.ops.formats.cnemc`).
``json``
    A JSON batch of readings, as stations post them (:mod:`twin.ops.formats.json_batch`).
``tidy``
    The tidy CSV, ``station,time,parameter,value,unit,flag`` (:mod:`twin.ops.formats.tidy`).

Text (tidy, CNEMC) is read as UTF-8 (with or without BOM), UTF-16 (with BOM) or, failing
those, GB18030 (:meth:`Source.text`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from twin.ops.errors import IngestError
from twin.ops.formats import cnemc, hj212, json_batch, netcdf, tidy  # the formats: add a new one here
from twin.ops.formats.source import TIDY_COLUMNS, Context, Parsed, Source

__all__ = ["FORMATS", "TIDY_COLUMNS", "Context", "Format", "Formats", "Parsed", "Source"]


class Format(Protocol):
    """What an ingest format module provides (see the module docstring)."""

    NAME: str
    MEDIA_TYPES: tuple[str, ...]

    def sniff(self, name: str, head: bytes) -> bool: ...

    def parse(self, source: Source, *, context: Context) -> Parsed: ...


_MEMBERS = ("NAME", "MEDIA_TYPES", "sniff", "parse")


@dataclass(frozen=True)
class Formats:
    """An ordered registry of ingest formats; it never changes (:meth:`adding` gives a new one)."""

    formats: tuple[Format, ...]

    def __post_init__(self) -> None:
        for f in self.formats:
            lacks = [m for m in _MEMBERS if not hasattr(f, m)]
            if lacks:
                raise TypeError(f"ingest format {f!r} lacks {lacks}; a format defines {list(_MEMBERS)}")
        names = self.names()
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise TypeError(f"ingest format name(s) {twice} given twice")

    def names(self) -> list[str]:
        """The formats' names, in sniffing order."""
        return [f.NAME for f in self.formats]

    def get(self, name: str) -> Format:
        """The format called ``name``; IngestError naming the known ones otherwise."""
        for f in self.formats:
            if name == f.NAME:
                return f
        raise IngestError(f"unknown format {name!r}; use one of {self.names()}")

    def guess(self, source: Source) -> Format:
        """The first format whose ``sniff`` takes the source; IngestError if none does."""
        head = source.head()
        for f in self.formats:
            if f.sniff(source.name, head):
                return f
        raise IngestError(f"cannot tell the format of '{source.name}'; pass --format with one of {self.names()}")

    def pick(self, source: Source, name: str | None = None) -> Format:
        """The format called ``name``, or the one guessed from the source when no name is given."""
        return self.get(name) if name else self.guess(source)

    def media_types(self) -> list[str]:
        """Every Content-Type some format reads, each once, in order."""
        return list(dict.fromkeys(m for f in self.formats for m in f.MEDIA_TYPES))

    def for_media_type(self, media_type: str, source: Source) -> Format | None:
        """The format of a body of that Content-Type: the first of those that read it whose sniff takes the body,
        else the last of them (the most generic); None if no format reads that type."""
        kind = media_type.lower()
        candidates = [f for f in self.formats if kind in f.MEDIA_TYPES]
        if not candidates:
            return None
        head = source.head()
        return next((f for f in candidates if f.sniff(source.name, head)), candidates[-1])

    def adding(self, *formats: Format) -> Formats:
        """A registry with ``formats`` sniffed first, replacing any of the same name."""
        new = {f.NAME for f in formats}
        return Formats(tuple(formats) + tuple(f for f in self.formats if f.NAME not in new))


#: The ingest formats, in sniffing order. Add a format here (and to the import above).
FORMATS = Formats((netcdf, hj212, cnemc, json_batch, tidy))
