"""What an ingest format reads (:class:`Source`), what it may ask of the store (:class:`Context`), and what it
returns (:class:`Parsed`).

A source is a file or the body of a request, read as bytes; text formats decode it with
:meth:`Source.text`, which takes UTF-8 (with or without BOM), UTF-16 (with BOM) or, failing
those, GB18030 (a superset of GBK and GB2312, the encodings of Chinese spreadsheet exports),
and refuses anything else with what to convert it to.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from twin.ops.errors import IngestError

#: the columns of the rows every format returns (see :class:`Parsed`)
TIDY_COLUMNS = ["station", "time", "tz_offset_min", "parameter", "value", "unit", "flag", "line_no"]
#: the columns of the rows a format refuses
REJECTED_COLUMNS = ["line_no", "raw", "reason"]
HEAD_BYTES = 4000


def no_rejects() -> pd.DataFrame:
    """An empty table of refused rows."""
    return pd.DataFrame(columns=REJECTED_COLUMNS)


@dataclass(frozen=True)
class Source:
    """A file or a request body to ingest.

    ``name`` is the file's path as given (or a label for a body, such as ``body``): the
    formats sniff its suffix and quote it in their messages.
    """

    name: str
    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)

    @classmethod
    def file(cls, path: str | Path) -> Source:
        path = Path(path)
        return cls(str(path), path=path)

    @classmethod
    def body(cls, data: bytes, name: str = "body") -> Source:
        return cls(name, data=data)

    def read(self) -> bytes:
        """The whole content; IngestError if the file cannot be read."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        try:
            return self.path.read_bytes()
        except OSError as err:
            raise IngestError(f"cannot read '{self.name}' ({err.strerror}); check the path") from None

    def head(self, size: int = HEAD_BYTES) -> bytes:
        """The first ``size`` bytes, for sniffing (a file is not read further)."""
        if self.data is not None:
            return self.data[:size]
        assert self.path is not None
        try:
            with self.path.open("rb") as f:
                return f.read(size)
        except OSError as err:
            raise IngestError(f"cannot read '{self.name}' ({err.strerror}); check the path") from None

    def text(self) -> str:
        """The content decoded as UTF-8 (BOM or not), UTF-16 (with BOM) or GB18030; IngestError if none fits."""
        data = self.read()
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # Excel's "Unicode text"
            try:
                return data.decode("utf-16")
            except UnicodeDecodeError:
                pass
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            utf8 = err
        try:
            return data.decode("gb18030")  # a superset of GBK and GB2312
        except UnicodeDecodeError:
            pass
        raise IngestError(
            f"'{self.name}' is neither UTF-8 nor GB18030/GBK text (bytes "
            f"{data[utf8.start : utf8.start + 4].hex(' ')} at offset {utf8.start}); convert it to UTF-8 from the "
            "encoding it was saved in (e.g. iconv -f BIG5 -t UTF-8 in.csv > out.csv)"
        )

    def csv(self, skipinitialspace: bool = True) -> pd.DataFrame:
        """A CSV of text cells (nothing taken as missing), decoded by :meth:`text`."""
        try:
            return pd.read_csv(
                io.StringIO(self.text()), dtype=str, keep_default_na=False, skipinitialspace=skipinitialspace
            )
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise IngestError(
                f"'{self.name}' is not a readable CSV ({str(err).splitlines()[0]}); check the file"
            ) from None


@dataclass(frozen=True)
class Context:
    """What a format may need from the store besides the source.

    ``station_names`` maps station names to station ids, for formats that name their
    stations rather than give their ids (the national automatic-station CSV).
    """

    station_names: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Parsed:
    """What a format made of a source: rows to check and store, and the rows it could not parse.

    ``rows`` has the :data:`TIDY_COLUMNS`: station id, time (tz-aware, or NaT where the
    date does not exist), the source's UTC offset in minutes, parameter id, value (a
    number, or the text as written: the checks read below-detection notations), unit,
    flag (in the twin's vocabulary, :mod:`twin.ops.flags`) and the line it came from;
    optionally ``raw`` (the line as read) and ``time_text`` (the time as written), which
    the reasons of rows rejected later quote. ``rejected`` has ``line_no``, ``raw`` and
    ``reason``. Nothing is checked here: :func:`twin.ops.readings.check_rows` checks the
    rows of every format.
    """

    rows: pd.DataFrame
    rejected: pd.DataFrame = field(default_factory=no_rejects)
