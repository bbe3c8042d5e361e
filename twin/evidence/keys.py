"""Ed25519 signing keys, one per agency, and signed tree heads.

``twin keys init DIR --agency NAME`` writes ``<twin>/keys/NAME.key`` (the private
key, PKCS#8 PEM, file mode 0600, in a folder of mode 0700) and ``NAME.pub`` (the
public key, SubjectPublicKeyInfo PEM) beside it. A key is never replaced: heads
signed with it would no longer verify. The private key is never printed or logged;
the public key's *fingerprint* (SHA-256 of its 32 raw bytes, hex) is what an agency
publishes so that a court can check a bundle's key against it.

What an agency publishes, and what a verifier trusts, is a *trusted keys* file: one key
per line, ``AGENCY FINGERPRINT``, as ``twin keys export DIR`` prints it::

    # published signing keys of the basin's agencies (basin-twin trusted keys)
    DDT-Lozere 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    EPB-Gard   60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752

Blank lines and lines starting with ``#`` are ignored; a fingerprint may be written in
capitals or with colons. ``twin evidence verify --trusted-keys FILE`` (or
``--fingerprint HEX``) checks a bundle against it (:class:`TrustedKeys`).

A signed tree head is the canonical JSON of ``{"tree_size", "root_hash", "timestamp",
"agency", "key_fingerprint", "hash": "SHA-256", "head": "basin-twin/tree-head/1"}``;
the signature (64 bytes) is over exactly those bytes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twin.evidence.canonical import canonical
from twin.evidence.errors import EvidenceError, SigningKeyError, TamperError

AGENCY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
HEAD_FORMAT = "basin-twin/tree-head/1"


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise SigningKeyError(
            "signing needs the 'cryptography' package; install it (pip install cryptography)"
        ) from None
    return ed25519


def check_agency(agency: str) -> str:
    if not isinstance(agency, str) or not AGENCY.match(agency):
        raise SigningKeyError(
            f"agency name {agency!r} is not allowed; use letters, digits, '.', '_' and '-' (at most 64), "
            "e.g. DDT-Lozere"
        )
    return agency


def keys_dir(twin_dir: str | Path) -> Path:
    return Path(twin_dir) / "keys"


def fingerprint(public_raw: bytes) -> str:
    """SHA-256 of a raw 32-byte Ed25519 public key, hex."""
    return hashlib.sha256(public_raw).hexdigest()


@dataclass(frozen=True)
class PublicKey:
    agency: str
    pem: bytes
    raw: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.raw)

    def verify(self, signature: bytes, data: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature

        ed = _crypto()
        try:
            ed.Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, data)
        except InvalidSignature:
            return False
        return True


def load_public_pem(pem: bytes, agency: str = "") -> PublicKey:
    """A public key from PEM bytes; :class:`TamperError` if they are not an Ed25519 public key."""
    from cryptography.hazmat.primitives import serialization

    ed = _crypto()
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as err:
        raise TamperError(f"the public key is not a readable PEM key ({err})") from None
    if not isinstance(key, ed.Ed25519PublicKey):
        raise TamperError(f"the public key is a {type(key).__name__}, not an Ed25519 key")
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PublicKey(agency, pem, raw)


def init_keys(twin_dir: str | Path, agency: str, folder: str | Path | None = None) -> PublicKey:
    """Make the agency's key pair in ``<twin>/keys`` (or ``folder``); returns its public key.

    Raises
    ------
    SigningKeyError
        A bad agency name, or the agency has a key there already.
    """
    from cryptography.hazmat.primitives import serialization

    ed = _crypto()
    check_agency(agency)
    d = Path(folder) if folder is not None else keys_dir(twin_dir)
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    priv_path, pub_path = d / f"{agency}.key", d / f"{agency}.pub"
    if priv_path.exists() or pub_path.exists():
        raise SigningKeyError(
            f"agency {agency!r} has a key in '{d}' already; keys are never replaced (heads signed with it would "
            "no longer verify): use it, or choose another agency name"
        )
    key = ed.Ed25519PrivateKey.generate()
    priv = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    _write_new(pub_path, pub, 0o644)
    try:
        _write_new(priv_path, priv, 0o600)
    except BaseException:
        pub_path.unlink(missing_ok=True)
        raise
    return load_public_pem(pub, agency)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from the start (never a moment more readable), whole or not at all."""
    tmp = path.with_name(f".{path.name}.partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)  # the umask may have narrowed it; never widened beyond mode
        os.link(tmp, path)  # fails if it exists: never replaced
    finally:
        tmp.unlink(missing_ok=True)


def agencies(twin_dir: str | Path, folder: str | Path | None = None) -> list[str]:
    """Agencies with a private key in the keys folder."""
    d = Path(folder) if folder is not None else keys_dir(twin_dir)
    return sorted(p.stem for p in d.glob("*.key")) if d.is_dir() else []


def public_key(twin_dir: str | Path, agency: str, folder: str | Path | None = None) -> PublicKey:
    d = Path(folder) if folder is not None else keys_dir(twin_dir)
    p = d / f"{check_agency(agency)}.pub"
    if not p.is_file():
        raise SigningKeyError(f"no public key for agency {agency!r} in '{d}'; make one with `twin keys init`")
    return load_public_pem(p.read_bytes(), agency)


class Signer:
    """An agency's private key, loaded to sign tree heads (never printed)."""

    def __init__(self, twin_dir: str | Path, agency: str, folder: str | Path | None = None):
        from cryptography.hazmat.primitives import serialization

        ed = _crypto()
        d = Path(folder) if folder is not None else keys_dir(twin_dir)
        path = d / f"{check_agency(agency)}.key"
        if not path.is_file():
            known = agencies(twin_dir, folder)
            raise SigningKeyError(
                f"no signing key for agency {agency!r} in '{d}' (keys there: {known or 'none'}); "
                f"make one with `twin keys init {twin_dir} --agency {agency}`"
            )
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise SigningKeyError(
                f"signing key '{path}' is readable by others (mode {mode:o}); restrict it with chmod 600 {path}"
            )
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as err:
            raise SigningKeyError(f"signing key '{path}' cannot be read ({err}); it is damaged") from None
        if not isinstance(key, ed.Ed25519PrivateKey):
            raise SigningKeyError(f"signing key '{path}' is not an Ed25519 key")
        self._key = key
        self.agency = agency
        self.public = public_key(twin_dir, agency, folder)
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        if raw != self.public.raw:
            raise SigningKeyError(f"'{d / (agency + '.pub')}' is not the public half of '{path}'; restore the pair")

    def __repr__(self) -> str:
        return f"Signer(agency={self.agency!r}, fingerprint={self.public.fingerprint[:16]}...)"

    def sign(self, data: bytes) -> bytes:
        return bytes(self._key.sign(data))


def head_bytes(tree_size: int, root_hash: bytes, timestamp: str, agency: str, key_fingerprint: str) -> bytes:
    """The canonical bytes a tree head's signature covers."""
    return canonical(
        {
            "head": HEAD_FORMAT,
            "hash": "SHA-256",
            "tree_size": int(tree_size),
            "root_hash": root_hash.hex(),
            "timestamp": timestamp,
            "agency": agency,
            "key_fingerprint": key_fingerprint,
        }
    )


@dataclass(frozen=True)
class SignedHead:
    """A tree head and its Ed25519 signature."""

    tree_size: int
    root_hash: bytes
    timestamp: str
    agency: str
    key_fingerprint: str
    signature: bytes

    @property
    def data(self) -> bytes:
        return head_bytes(self.tree_size, self.root_hash, self.timestamp, self.agency, self.key_fingerprint)

    def verify(self, key: PublicKey) -> bool:
        return key.fingerprint == self.key_fingerprint and key.verify(self.signature, self.data)

    def to_json(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "timestamp": self.timestamp,
            "agency": self.agency,
            "key_fingerprint": self.key_fingerprint,
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }


def sign_head(signer: Signer, tree_size: int, root_hash: bytes, when: dt.datetime | None = None) -> SignedHead:
    """Sign (tree size, root hash, timestamp, agency, key fingerprint) with the agency's key."""
    now = (when or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    timestamp = now.isoformat(timespec="microseconds").replace("+00:00", "Z")
    fp = signer.public.fingerprint
    data = head_bytes(tree_size, root_hash, timestamp, signer.agency, fp)
    return SignedHead(tree_size, root_hash, timestamp, signer.agency, fp, signer.sign(data))


def parse_head(data: bytes) -> dict[str, Any]:
    """The fields of a tree head from its canonical bytes; :class:`TamperError` if they are not one."""
    import json

    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise TamperError(f"the tree head is not JSON ({err})") from None
    want = {"head", "hash", "tree_size", "root_hash", "timestamp", "agency", "key_fingerprint"}
    if not isinstance(value, dict) or set(value) != want or value.get("head") != HEAD_FORMAT:
        raise TamperError(
            f"the tree head is not a {HEAD_FORMAT} head (fields {sorted(value) if isinstance(value, dict) else value!r})"
        )
    if canonical(value) != data:
        raise TamperError("the tree head is not in canonical form: its bytes were altered")
    return value


# -- keys a verifier trusts -------------------------------------------------------------------------

FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


def parse_fingerprint(text: str, where: str = "--fingerprint") -> str:
    """A key fingerprint (64 hex digits) from how people write it: capitals, colons or spaces allowed."""
    value = re.sub(r"[\s:]", "", str(text)).lower()
    if not FINGERPRINT.match(value):
        raise EvidenceError(
            f"{where} {text!r} is not a key fingerprint; give the 64 hex digits the agency publishes "
            "(`twin keys export DIR` prints them)"
        )
    return value


@dataclass(frozen=True)
class TrustedKeys:
    """The agency keys a verifier trusts: fingerprint → the agency that publishes it (None: given alone)."""

    keys: dict[str, str | None]
    source: str

    @classmethod
    def of(cls, fingerprints: Any = (), files: Any = ()) -> TrustedKeys:
        """From fingerprints (``--fingerprint``) and trusted-keys files (``--trusted-keys``)."""
        keys: dict[str, str | None] = {}
        sources = []
        for fp in fingerprints:
            keys.setdefault(parse_fingerprint(fp), None)
        if keys:
            sources.append("--fingerprint")
        for f in files:
            for fp, agency in cls.load(f).keys.items():
                keys[fp] = agency
            sources.append(f"'{f}'")
        return cls(keys, " and ".join(sources))

    @classmethod
    def load(cls, path: str | Path) -> TrustedKeys:
        """A trusted keys file (see the module docstring)."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise SigningKeyError(f"cannot read the trusted keys file '{p}' ({err}); give a text file") from None
        keys: dict[str, str | None] = {}
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 1)
            where = f"trusted keys '{p}' line {n}"
            if len(parts) != 2 or not AGENCY.match(parts[0]):
                raise EvidenceError(
                    f"{where}: {line[:80]!r} is not 'AGENCY FINGERPRINT' (as `twin keys export DIR` prints it)"
                )
            keys[parse_fingerprint(parts[1], where)] = parts[0]
        if not keys:
            raise EvidenceError(f"trusted keys '{p}' lists no key; one line per key: 'AGENCY FINGERPRINT'")
        return cls(keys, f"'{p}'")

    def judge(self, agency: str, fingerprint: str) -> tuple[bool, str]:
        """Whether the key ``fingerprint`` that signed for ``agency`` is trusted, and why (or why not)."""
        if fingerprint not in self.keys:
            return False, (
                f"signed by {agency!r} with key {fingerprint}, which is not among the {len(self.keys)} keys "
                f"trusted ({self.source}): the bundle was signed by another key than the one its agency publishes"
            )
        publisher = self.keys[fingerprint]
        if publisher is not None and publisher != agency:
            return False, f"key {fingerprint} is {publisher}'s, but the bundle says {agency!r} signed it"
        return True, f"{agency}'s key {fingerprint}, trusted ({self.source})"


def published_keys(twin_dir: str | Path, folder: str | Path | None = None) -> str:
    """The trusted keys file of the agencies with a key here: what they publish."""
    lines = ["# published signing keys (basin-twin trusted keys): AGENCY FINGERPRINT"]
    for agency in agencies(twin_dir, folder):
        lines.append(f"{agency} {public_key(twin_dir, agency, folder).fingerprint}")
    return "\n".join(lines) + "\n"
