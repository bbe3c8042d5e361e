"""Canonical JSON and the hash functions of the ledger.

Canonical JSON is what every hash in the ledger is taken over: keys sorted, no
whitespace, UTF-8 (non-ASCII characters as themselves), no NaN or infinity. The
same value gives the same bytes on every run and platform, so a record's hash is
stable; a browser can hash the bytes of a bundled record without parsing it.

Hash algorithms: SHA-256 always (it addresses the content store and the Merkle log);
SM3 (GB/T 32905-2016) as an additional value where this runtime's OpenSSL provides it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from twin.evidence.errors import HashAlgorithmError

ALGORITHMS = {"SHA-256": "sha256", "SM3": "sm3"}
"""Names in custody records → names in :mod:`hashlib`."""
CHUNK = 1 << 20


def canonical(value: Any) -> bytes:
    """The canonical JSON bytes of a JSON-able value (sorted keys, no whitespace, UTF-8)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def is_canonical(data: bytes) -> bool:
    """Whether ``data`` is the canonical JSON of what it parses to."""
    try:
        return canonical(json.loads(data.decode("utf-8"))) == data
    except (UnicodeDecodeError, ValueError):
        return False


def algorithm_name(name: str) -> str:
    """The custody-record name of an algorithm ("SHA-256", "SM3") from any common spelling."""
    key = name.upper().replace("_", "-")
    key = {"SHA256": "SHA-256"}.get(key, key)
    if key not in ALGORITHMS:
        raise HashAlgorithmError(f"unknown hash algorithm {name!r}; allowed: {sorted(ALGORITHMS)}")
    return key


def sm3_available() -> bool:
    """Whether this runtime's OpenSSL provides SM3."""
    return "sm3" in hashlib.algorithms_available


def hasher(name: str) -> Any:
    """A new hash object for an algorithm of :data:`ALGORITHMS`."""
    key = algorithm_name(name)
    if key == "SM3" and not sm3_available():
        raise HashAlgorithmError(
            "SM3 is unavailable on this runtime (its OpenSSL does not provide it; see "
            "hashlib.algorithms_available); record SHA-256 only, or use a Python built with OpenSSL >= 1.1.1 and SM3"
        )
    return hashlib.new(ALGORITHMS[key])


def digest_bytes(data: bytes, name: str = "SHA-256") -> str:
    """Hex digest of bytes."""
    h = hasher(name)
    h.update(data)
    return str(h.hexdigest())


def digest_file(path: Path, names: tuple[str, ...] = ("SHA-256",)) -> tuple[dict[str, str], int]:
    """Hex digests of a file under each algorithm (read once), and its size in bytes."""
    hs = {algorithm_name(n): hasher(n) for n in names}
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            size += len(chunk)
            for h in hs.values():
                h.update(chunk)
    return {k: str(h.hexdigest()) for k, h in hs.items()}, size


def is_sha256_hex(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)
