"""A court bundle's zip, read strictly: every byte of it is either checked data or checked structure.

:mod:`zipfile` reads leniently, as a general reader should: it takes a member's fields
from the zip directory and ignores the copies in its local header, accepts bytes before
the first member or an archive comment, and never looks at the times or attributes. So
a changed byte there goes unnoticed, and a changed byte elsewhere surfaces as whichever
of half a dozen exceptions (``BadZipFile``, ``zlib.error``, ``EOFError``,
``NotImplementedError``...) the damage happens to cause. A bundle is read here instead,
as :mod:`twin.evidence.bundle` writes it:

* members back to back from the first byte, each a local header, its name, its extra
  field and its data (no data descriptors); the zip directory right after the last
  member; then (only when sizes need it) the zip64 end record and its locator; then the
  end record, with no comment, and nothing after it;
* each local header repeats the directory's version, flags, method, time, date, CRC-32,
  sizes and name, and its extra field is empty or the one zip64 field with the sizes;
* the directory's own fields that carry no data are what the writer sets: made by
  Unix (3) at the version needed, disk 0, no internal attributes, file mode 0644, no
  comment;
* every member's data has its CRC-32 (and, if deflated, a complete deflate stream of
  exactly its sizes: bundles are written stored, older ones were deflated).

Any departure raises :class:`DamagedBundleError` with one line naming the member, or
"the zip directory" when it is the archive's own structure. A CRC-32 detects every
change of up to 32 consecutive bits, so any single changed byte of a bundle is caught.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from twin.evidence.canonical import CHUNK
from twin.evidence.errors import DamagedBundleError

LOCAL = struct.Struct(
    "<4s2B4HL2L2H"
)  # signature, version needed (2 bytes), flags, method, time, date, CRC, sizes, lengths
CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
END = struct.Struct("<4s4H2LH")
ZIP64_END = struct.Struct("<4sQ2H2L4Q")
ZIP64_LOCATOR = struct.Struct("<4sLQL")
SIG_LOCAL, SIG_CENTRAL, SIG_END = b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06"
SIG_ZIP64_END, SIG_ZIP64_LOCATOR = b"PK\x06\x06", b"PK\x06\x07"
MAX32, MAX16 = 0xFFFFFFFF, 0xFFFF
STORED, DEFLATED = 0, 8
UTF8 = 0x800
UNIX = 3
MODE = 0o644 << 16
VERSIONS = (20, 45)  # what zipfile writes: 2.0, or 4.5 with zip64 fields


@dataclass(frozen=True)
class Member:
    """One member of the archive, as its directory entry and local header (which agree) say."""

    name: str
    method: int
    crc: int
    compressed: int
    size: int
    header_offset: int
    data_offset: int


class Archive:
    """A bundle's zip, its structure checked when opened (see the module docstring).

    Raises
    ------
    DamagedBundleError
        The archive is not as a bundle is written (the message names the member or the zip directory).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.members: list[Member] = []
        with open(self.path, "rb") as fh:
            self._read_structure(fh)
        self.by_name: dict[str, Member] = {}
        for m in self.members:
            self.by_name.setdefault(m.name, m)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.members]

    def _damaged(self, where: str, what: str) -> DamagedBundleError:
        """One line: damaged names may hold any character, shown escaped."""
        text = f"bundle '{self.path.name}' is damaged: {where}: {what}"
        return DamagedBundleError("".join(c if c.isprintable() else repr(c)[1:-1] for c in text))

    # -- structure ------------------------------------------------------------------------------
    def _read_structure(self, fh: BinaryIO) -> None:
        directory = "the zip directory"
        total = fh.seek(0, 2)
        if total < END.size:
            raise self._damaged(directory, f"the file has {total} bytes, too few for a zip (truncated?)")
        end_at = total - END.size
        fh.seek(end_at)
        sig, disk, cd_disk, n_disk, n_total, cd_size, cd_offset, comment = END.unpack(fh.read(END.size))
        if sig != SIG_END:
            raise self._damaged(directory, "the file does not end with the zip end record (truncated, or bytes added)")
        if comment:
            raise self._damaged(directory, f"the end record announces a {comment}-byte comment that is not there")
        if disk or cd_disk or n_disk != n_total:
            raise self._damaged(directory, f"the end record names disk {disk}/{cd_disk} and {n_disk}/{n_total} entries")
        dir_end = end_at
        if n_total == MAX16 or MAX32 in (cd_size, cd_offset):
            n_total, cd_size, cd_offset, dir_end = self._zip64_end(fh, end_at)
        if cd_offset + cd_size != dir_end:
            raise self._damaged(
                directory,
                f"the end record puts the directory at bytes {cd_offset}..{cd_offset + cd_size}, "
                f"but it must end where the end records begin ({dir_end})",
            )
        fh.seek(cd_offset)
        raw = fh.read(cd_size)
        if len(raw) != cd_size:
            raise self._damaged(directory, "it is cut short")
        entries, at = [], 0
        for k in range(n_total):
            where = f"{directory} (entry {k + 1} of {n_total})"
            if at + CENTRAL.size > len(raw) or raw[at : at + 4] != SIG_CENTRAL:
                raise self._damaged(where, "not a directory entry where one should begin")
            fields = CENTRAL.unpack_from(raw, at)
            name_len, extra_len, comment_len = fields[12], fields[13], fields[14]
            stop = at + CENTRAL.size + name_len + extra_len + comment_len
            if stop > len(raw):
                raise self._damaged(where, "its name, extra field or comment runs past the directory")
            name_raw = raw[at + CENTRAL.size : at + CENTRAL.size + name_len]
            extra = raw[at + CENTRAL.size + name_len : at + CENTRAL.size + name_len + extra_len]
            entries.append((fields, name_raw, extra, comment_len))
            at = stop
        if at != len(raw):
            raise self._damaged(directory, f"{len(raw) - at} bytes follow its last entry")
        self.members = [self._member(fh, *e) for e in entries]
        # back to back: each member ends where the next begins (blame the one whose end is off)
        if self.members and self.members[0].header_offset != 0:
            first = self.members[0]
            raise self._damaged(f"member {first.name}", f"it begins at byte {first.header_offset}, not at the start")
        for a, b in zip(self.members, [*self.members[1:], None]):
            end = a.data_offset + a.compressed
            start, what = (b.header_offset, f"the next member, {b.name},") if b else (cd_offset, "the zip directory")
            if end != start:
                raise self._damaged(
                    f"member {a.name}", f"its data ends at byte {end}, but {what} begins at byte {start}"
                )
        if not self.members and cd_offset != 0:
            raise self._damaged(directory, f"it begins at byte {cd_offset} of an archive without members")

    def _zip64_end(self, fh: BinaryIO, end_at: int) -> tuple[int, int, int, int]:
        directory = "the zip directory"
        loc_at = end_at - ZIP64_LOCATOR.size
        if loc_at < 0:
            raise self._damaged(directory, "the end record needs a zip64 locator that is not there")
        fh.seek(loc_at)
        sig, disk, rec_at, disks = ZIP64_LOCATOR.unpack(fh.read(ZIP64_LOCATOR.size))
        if sig != SIG_ZIP64_LOCATOR or disk != 0 or disks != 1 or rec_at + ZIP64_END.size != loc_at:
            raise self._damaged(directory, "its zip64 locator is not as it must be")
        fh.seek(rec_at)
        fields = ZIP64_END.unpack(fh.read(ZIP64_END.size))
        sig, rec_size, made, needed, disk, cd_disk, n_disk, n_total, cd_size, cd_offset = fields
        if sig != SIG_ZIP64_END or rec_size != ZIP64_END.size - 12 or disk or cd_disk or n_disk != n_total:
            raise self._damaged(directory, "its zip64 end record is not as it must be")
        if made != 45 or needed != 45:  # what zipfile writes
            raise self._damaged(directory, f"its zip64 end record says version {made}/{needed}, not 4.5")
        return n_total, cd_size, cd_offset, rec_at

    def _member(self, fh: BinaryIO, fields: tuple[int, ...], name_raw: bytes, extra: bytes, comment_len: int) -> Member:
        (
            _,
            made_version,
            made_system,
            version,
            version_hi,
            flags,
            method,
            mtime,
            mdate,
            crc,
            compressed,
            size,
            _name_len,
            _extra_len,
            _comment_len,
            disk,
            internal,
            external,
            offset,
        ) = fields
        name = _name(name_raw, flags)
        where = f"the zip directory's entry of {name}"
        zip64 = _zip64(extra, size == MAX32, compressed == MAX32, offset == MAX32)
        if zip64 is None:
            raise self._damaged(where, "its extra field is not the zip64 field its sizes call for")
        size, compressed, offset = (
            zip64.get("size", size),
            zip64.get("compressed", compressed),
            zip64.get("offset", offset),
        )
        problems = []
        if made_system != UNIX or made_version != version or version not in VERSIONS or version_hi:
            problems.append(f"it says it was made by system {made_system} version {made_version} for version {version}")
        if flags & ~UTF8 or (not flags & UTF8 and not name_raw.isascii()):
            problems.append(f"its flags are {flags:#06x}")
        if method not in (STORED, DEFLATED):
            problems.append(f"its compression method is {method}")
        if disk or internal or external != MODE or comment_len:
            problems.append("its disk, attributes or comment are not a bundle's (file mode 0644, nothing else)")
        if method == STORED and compressed != size:
            problems.append(f"it is stored, yet its sizes differ ({compressed} and {size} bytes)")
        if problems:
            raise self._damaged(where, "; ".join(problems))
        member = f"member {name}"
        fh.seek(offset)
        head = fh.read(LOCAL.size)
        if len(head) != LOCAL.size or head[:4] != SIG_LOCAL:
            raise self._damaged(member, f"no local header at byte {offset} where the directory puts it")
        (
            _,
            l_version,
            l_version_hi,
            l_flags,
            l_method,
            l_time,
            l_date,
            l_crc,
            l_comp,
            l_size,
            l_name_len,
            l_extra_len,
        ) = LOCAL.unpack(head)
        l_name = fh.read(l_name_len)
        l_extra = fh.read(l_extra_len)
        if len(l_name) != l_name_len or len(l_extra) != l_extra_len:
            raise self._damaged(member, "its local header runs past the end of the file")
        # a zip64 field in a local header holds both sizes; zipfile of some Pythons (Debian 12's 3.11.2) writes it with the
        # real sizes in the header too, later versions with 0xFFFFFFFF there: either, if they agree
        local64 = _zip64(l_extra, True, True, False) if l_extra else {}
        if local64 is None or any(
            have not in (MAX32, local64[key]) for key, have in (("size", l_size), ("compressed", l_comp)) if local64
        ):
            raise self._damaged(member, "its local header's extra field is not the zip64 field of its sizes")
        if not local64 and MAX32 in (l_size, l_comp):
            raise self._damaged(member, "its local header's sizes call for a zip64 field that is not there")
        l_size, l_comp = local64.get("size", l_size), local64.get("compressed", l_comp)
        differ = [
            what
            for what, a, b in (
                ("name", l_name, name_raw),
                ("version", (l_version, l_version_hi), (version, version_hi)),
                ("flags", l_flags, flags),
                ("method", l_method, method),
                ("time", (l_time, l_date), (mtime, mdate)),
                ("CRC-32", l_crc, crc),
                ("compressed size", l_comp, compressed),
                ("size", l_size, size),
            )
            if a != b
        ]
        if differ:
            raise self._damaged(member, f"its local header and the zip directory differ in {', '.join(differ)}")
        return Member(name, method, crc, compressed, size, offset, offset + LOCAL.size + l_name_len + l_extra_len)

    # -- data -----------------------------------------------------------------------------------
    def member(self, name: str) -> Member:
        try:
            return self.by_name[name]
        except KeyError:
            raise KeyError(name) from None

    def chunks(self, name: str) -> Iterator[bytes]:
        """A member's bytes in chunks; the last step raises :class:`DamagedBundleError` if they are not intact."""
        m = self.member(name)
        where = f"member {name}"
        crc, produced = 0, 0
        inflate = zlib.decompressobj(-15) if m.method == DEFLATED else None
        with open(self.path, "rb") as fh:
            fh.seek(m.data_offset)
            left = m.compressed
            while left:
                raw = fh.read(min(CHUNK, left))
                if not raw:
                    raise self._damaged(where, "its data runs past the end of the file")
                left -= len(raw)
                if inflate is not None:
                    try:
                        raw = inflate.decompress(raw)
                    except zlib.error as err:
                        raise self._damaged(where, f"its deflated data is corrupt ({err})") from None
                crc = zlib.crc32(raw, crc)
                produced += len(raw)
                if produced > m.size:
                    raise self._damaged(where, f"its data is longer than its size ({m.size} bytes)")
                yield raw
        if inflate is not None and (not inflate.eof or inflate.unused_data):
            raise self._damaged(where, "its deflated data does not end where its compressed size says")
        if produced != m.size:
            raise self._damaged(where, f"it has {produced} bytes, its size says {m.size}")
        if crc != m.crc:
            raise self._damaged(where, "its CRC-32 does not match its data (bytes were changed after it was written)")

    def read(self, name: str) -> bytes:
        """A member's bytes, intact (:class:`DamagedBundleError` otherwise; ``KeyError`` if there is none)."""
        return b"".join(self.chunks(name))


def _name(raw: bytes, flags: int) -> str:
    return raw.decode("utf-8" if flags & UTF8 else "cp437", errors="replace")


def _zip64(extra: bytes, size: bool, compressed: bool, offset: bool) -> dict[str, int] | None:
    """The zip64 values an extra field holds, in the order the fields that need them come; None if it is not one."""
    wanted = [k for k, need in (("size", size), ("compressed", compressed), ("offset", offset)) if need]
    if not extra:
        return {} if not wanted else None
    if len(extra) < 4:
        return None
    tag, length = struct.unpack_from("<2H", extra)
    if tag != 1 or length != len(extra) - 4 or length % 8:
        return None
    values = struct.unpack_from(f"<{length // 8}Q", extra, 4)
    if len(values) != len(wanted):
        return None
    return dict(zip(wanted, values))
