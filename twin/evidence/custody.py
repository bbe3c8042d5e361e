"""Custody records: what courts check for electronic data, validated, with a stable hash.

A :class:`CustodyRecord` is written once, when a file enters the ledger, and never
changed; each later change of hands is a :class:`Transfer` of its own. Both are
pydantic models that reject what a court would (fewer than two operators, a time
without zone, a hash that is not hex...) with a :class:`CustodyError` naming the
field. Their canonical JSON (:func:`twin.evidence.canonical.canonical`) is what is
hashed into the Merkle log, so the hash of a record is the same wherever it is
computed.

Fields of a record
------------------
``case_id``, ``description``, ``category`` (:data:`CATEGORIES`); ``file``: original
name, format (MIME type), size, hashes (SHA-256 first; SM3 optionally);
``acquired_at`` (time with zone, as given); ``place``: WGS84 longitude and latitude
(converted from the system given, which is kept), the jurisdiction, an address;
``method``; ``tool`` (name and version); ``operators`` (at least two, distinct);
``holder`` (who holds it after acquisition) and ``witness``; ``seal`` (seal or
medium id); ``derivation`` for a product the twin made: its inputs' hashes, the twin
manifest's hash, the function and parameters that re-make the same bytes, and the
software versions. A derived product may have no place; any other record must.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from twin.evidence.canonical import canonical, digest_bytes
from twin.evidence.errors import CustodyError

Category = Literal[
    "photo",
    "video",
    "audio",
    "lab_report",
    "orthophoto",
    "sensor_export",
    "sample_record",
    "document",
    "map",
    "scene",
    "trace",
    "other",
]
CATEGORIES: tuple[str, ...] = get_args(Category)
CLOCK_SKEW = dt.timedelta(minutes=5)
"""A record's times may lie this far in the future (clocks of field devices differ)."""

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Hex64 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
CaseId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")]
Mime = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*$", max_length=100)]

_STRICT = ConfigDict(extra="forbid", frozen=True)


class Hash(BaseModel):
    model_config = _STRICT
    algorithm: Literal["SHA-256", "SM3"]
    value: Hex64


class FileInfo(BaseModel):
    model_config = _STRICT
    name: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    format: Mime
    size: Annotated[int, Field(ge=0)]
    hashes: Annotated[list[Hash], Field(min_length=1)]

    @model_validator(mode="after")
    def _sha256_first(self) -> FileInfo:
        if self.hashes[0].algorithm != "SHA-256":
            raise ValueError("the first hash must be SHA-256 (it names the file in the content store)")
        algs = [h.algorithm for h in self.hashes]
        if len(set(algs)) != len(algs):
            raise ValueError(f"each hash algorithm at most once, got {algs}")
        if "/" in self.name or "\\" in self.name or self.name in (".", ".."):
            raise ValueError(f"the file name {self.name!r} must be a bare name, without folders")
        return self

    @property
    def sha256(self) -> str:
        return self.hashes[0].value


class Tool(BaseModel):
    model_config = _STRICT
    name: Name
    version: Name


class Place(BaseModel):
    model_config = _STRICT
    lon: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
    coord_system: Name = "WGS84"  # the system the coordinates were given in; lon/lat are WGS84
    given: tuple[float, float] | None = None  # the coordinates as given, when converted
    jurisdiction: Name
    address: Text | None = None


class Derivation(BaseModel):
    model_config = _STRICT
    inputs: list[Hex64]
    twin_manifest_sha256: Hex64 | None
    function: Name
    parameters: dict[str, Any]
    software: dict[str, str]


class CustodyRecord(BaseModel):
    """The custody record of one file in one case (see the module docstring)."""

    model_config = _STRICT
    record: Literal["custody"] = "custody"
    version: Literal[1] = 1
    case_id: CaseId
    description: Text
    category: Category
    file: FileInfo
    acquired_at: AwareDatetime
    place: Place | None = None
    method: Text
    tool: Tool
    operators: list[Name]
    holder: Name
    witness: Name | None = None
    seal: Name | None = None
    derivation: Derivation | None = None
    notes: Text | None = None

    @field_validator("operators")
    @classmethod
    def _two_operators(cls, value: list[str]) -> list[str]:
        if len(value) < 2:
            raise ValueError(f"at least two operators must be named, got {len(value)} ({value})")
        if len({o.casefold() for o in value}) != len(value):
            raise ValueError(f"each operator once, got {value}")
        return value

    @field_validator("acquired_at")
    @classmethod
    def _past(cls, value: dt.datetime) -> dt.datetime:
        _not_future(value)
        return value

    @model_validator(mode="after")
    def _court_rules(self) -> CustodyRecord:
        if self.place is None and self.derivation is None:
            raise ValueError("place: where the evidence was acquired (coordinates and jurisdiction) is required")
        return self

    @property
    def sha256(self) -> str:
        return self.file.sha256

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def canonical(self) -> bytes:
        return canonical(self.to_json())

    def digest(self) -> str:
        """SHA-256 of the canonical JSON: what the Merkle log binds."""
        return digest_bytes(self.canonical())


class Transfer(BaseModel):
    """A change of hands of a recorded item: from, to, when, why; bound to the record it continues."""

    model_config = _STRICT
    record: Literal["transfer"] = "transfer"
    version: Literal[1] = 1
    case_id: CaseId
    item: Hex64
    record_sha256: Hex64
    from_: Name = Field(alias="from")
    to: Name
    time: AwareDatetime
    reason: Text
    seal: Name | None = None
    witness: Name | None = None

    @field_validator("time")
    @classmethod
    def _past(cls, value: dt.datetime) -> dt.datetime:
        _not_future(value)
        return value

    @model_validator(mode="after")
    def _check(self) -> Transfer:
        if self.from_.casefold() == self.to.casefold():
            raise ValueError(f"to: a transfer goes to someone else, got from = to = {self.to!r}")
        return self

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def canonical(self) -> bytes:
        return canonical(self.to_json())

    def digest(self) -> str:
        return digest_bytes(self.canonical())


def _not_future(t: dt.datetime) -> None:
    now = dt.datetime.now(dt.UTC)
    if t > now + CLOCK_SKEW:
        raise ValueError(f"{t.isoformat()} is in the future (now {now.isoformat(timespec='seconds')})")


def _explain(err: ValidationError, what: str) -> CustodyError:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        msg = re.sub(r"^Value error, ", "", e["msg"])
        if msg.split(":", 1)[0] in ("place", "to") and not loc:
            loc, msg = msg.split(":", 1)[0], msg.split(":", 1)[1].strip()
        given = e.get("input")
        shown = f" (given {given!r})" if loc and not isinstance(given, dict) and given is not None else ""
        parts.append(f"field '{loc}': {msg}{shown}" if loc else msg)
    return CustodyError(f"invalid {what}: " + "; ".join(parts))


def make_record(data: dict[str, Any]) -> CustodyRecord:
    """A validated custody record from a dict; :class:`CustodyError` names every field at fault."""
    try:
        return CustodyRecord.model_validate(data)
    except ValidationError as err:
        raise _explain(err, "custody record") from None


def make_transfer(data: dict[str, Any]) -> Transfer:
    """A validated transfer from a dict (key ``from`` for the giver)."""
    try:
        return Transfer.model_validate(data)
    except ValidationError as err:
        raise _explain(err, "transfer") from None


def parse_record(data: bytes) -> CustodyRecord:
    """A record from its canonical JSON bytes (as stored, as bundled)."""
    import json

    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise CustodyError(f"custody record is not JSON ({err})") from None
    # times in the past were valid when recorded; re-validating them only checks the form
    return make_record(value)
