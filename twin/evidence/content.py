"""The content-addressed store: every evidence file once, by its SHA-256, never modified.

::

    <twin>/evidence/
      sha256/ab/cdef0123...   the file whose SHA-256 is abcdef0123... (read-only, mode 0444)
      tmp/                    files being written (a crash leaves only these behind)

A file is copied into ``tmp/`` while it is hashed, flushed to disk, made read-only and
then hard-linked to its name: the link fails when the name exists, so a stored file is
never replaced, and a reader never sees half a file. Reading re-hashes the bytes and
raises :class:`TamperError` when they are not the ones the name promises.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from twin.evidence.canonical import CHUNK, is_sha256_hex
from twin.evidence.errors import BundleError, EvidenceError, TamperError, UnknownEvidenceError

READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int
    path: Path
    new: bool  # False: the same bytes were stored already


class ContentStore:
    """Files by SHA-256 under ``root`` (``<twin>/evidence`` by default)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        """Where the file with this hash lives (whether or not it is stored)."""
        if not is_sha256_hex(sha256):
            raise EvidenceError(f"{sha256!r} is not a SHA-256 (64 lowercase hex digits)")
        return self.root / "sha256" / sha256[:2] / sha256[2:]

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def __iter__(self) -> Iterator[str]:
        base = self.root / "sha256"
        if base.is_dir():
            for sub in sorted(base.iterdir()):
                for f in sorted(sub.iterdir()):
                    yield sub.name + f.name

    # -- writing ------------------------------------------------------------------------------
    def put(self, source: str | Path) -> StoredFile:
        """Store a file (copied, hashed on the way); the same bytes twice are stored once.

        Raises
        ------
        EvidenceError
            ``source`` is not a readable file.
        TamperError
            A stored file of that name exists but its bytes have changed.
        """
        src = Path(source)
        if not src.is_file():
            raise EvidenceError(f"evidence file '{src}' does not exist or is not a file; give the path of a file")
        tmp_dir = self._tmp_dir()
        fd, tmp = tempfile.mkstemp(prefix="in-", dir=tmp_dir)
        h, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out, open(src, "rb") as fh:
                while chunk := fh.read(CHUNK):
                    h.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            return self._commit(Path(tmp), h.hexdigest(), size)
        except OSError as err:
            raise EvidenceError(f"cannot store '{src}': {err.strerror or err}") from None
        finally:
            Path(tmp).unlink(missing_ok=True)

    def put_bytes(self, data: bytes) -> StoredFile:
        """Store bytes (see :meth:`put`)."""
        fd, tmp = tempfile.mkstemp(prefix="in-", dir=self._tmp_dir())
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            return self._commit(Path(tmp), hashlib.sha256(data).hexdigest(), len(data))
        finally:
            Path(tmp).unlink(missing_ok=True)

    def _tmp_dir(self) -> Path:
        d = self.root / "tmp"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _commit(self, tmp: Path, sha256: str, size: int) -> StoredFile:
        final = self.path(sha256)
        if final.exists():
            self.verify(sha256)
            return StoredFile(sha256, size, final, new=False)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, READ_ONLY)
        try:
            os.link(tmp, final)  # fails if the name exists: never overwrite
        except FileExistsError:  # stored by someone else meanwhile
            self.verify(sha256)
            return StoredFile(sha256, size, final, new=False)
        except OSError:  # a filesystem without hard links
            if final.exists():
                self.verify(sha256)
                return StoredFile(sha256, size, final, new=False)
            os.replace(tmp, final)
        _fsync_dir(final.parent)
        return StoredFile(sha256, size, final, new=True)

    # -- reading (always verified) --------------------------------------------------------------
    def _stored(self, sha256: str) -> Path:
        p = self.path(sha256)
        if not p.is_file():
            raise UnknownEvidenceError(
                f"no stored file with SHA-256 {sha256} in '{self.root}'; list the case's items with `twin evidence list`"
            )
        return p

    def verify(self, sha256: str) -> None:
        """Re-hash a stored file; raise :class:`TamperError` if its bytes are not the ones its name says."""
        p = self._stored(sha256)
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
        self._check(sha256, h.hexdigest())

    def _check(self, sha256: str, got: str) -> None:
        if got != sha256:
            raise TamperError(
                f"stored evidence file '{self.path(sha256)}' has SHA-256 {got}, not {sha256}: it was altered "
                "after it was stored; restore it from a court bundle or a backup"
            )

    def read_bytes(self, sha256: str) -> bytes:
        """The bytes of a stored file, verified."""
        data = self._stored(sha256).read_bytes()
        self._check(sha256, hashlib.sha256(data).hexdigest())
        return data

    def chunks(self, sha256: str) -> Iterator[bytes]:
        """The bytes of a stored file in chunks; the last step raises :class:`TamperError` if they were altered."""
        h = hashlib.sha256()
        with open(self._stored(sha256), "rb") as fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
                yield chunk
        self._check(sha256, h.hexdigest())

    def copy_to(self, sha256: str, dest: str | Path) -> Path:
        """Copy a stored file to ``dest`` atomically, verified (nothing is written if it was altered)."""
        dest = Path(dest)
        if dest.is_dir():
            raise BundleError(f"'{dest}' is a folder; give a file name to write the evidence to")
        if not dest.parent.is_dir():
            raise BundleError(f"cannot write '{dest}': folder '{dest.parent}' does not exist; create it first")
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.partial-", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in self.chunks(sha256):
                    out.write(chunk)
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return dest

    def clean(self) -> None:
        """Remove what crashed writers left in ``tmp/``."""
        shutil.rmtree(self.root / "tmp", ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform opens folders
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
