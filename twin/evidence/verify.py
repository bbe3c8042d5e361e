"""Verify a court bundle without the server: what :func:`verify_bundle` checks, in order.

1. The zip is intact, byte for byte (:mod:`twin.evidence.archive`): its structure is the
   one bundles are written with and every member's CRC-32 holds. Any damage (a changed
   byte anywhere, a truncated file) stops here with one :class:`DamagedBundleError`
   naming the member, or the zip directory; nothing else is reported of a damaged zip.
2. It names each member once; ``manifest.json`` is a court bundle manifest.
3. The public key (``keys/<agency>.pub``) is an Ed25519 key whose fingerprint is the one
   the manifest names, and it is a key the verifier trusts: one of the fingerprints
   given, or the agency's in a trusted keys file (:class:`twin.evidence.keys.TrustedKeys`).
   Without a trusted key the verification fails and says how to pin the bundle's key: a
   bundle re-signed with another key would otherwise verify.
4. The tree head (``log/head.json``) is canonical, names that agency and key, and its
   Ed25519 signature (``log/head.sig``) verifies with the key.
5. The export leaf (``proofs/export.json``) is an export of this case whose
   ``manifest_sha256`` is the hash of ``manifest.json``, included in the signed tree.
6. Every member the manifest lists has its SHA-256 and size; nothing else is in the zip
   but the manifest, the proofs and the head.
7. Per item: its custody record is canonical, valid, about this file and this case, and
   its hash is the one its log leaf holds (as is the record itself, when the leaf holds
   it); the leaf is included in the signed tree; each transfer likewise, continuing the
   chain of holders; SM3 where recorded (and where this runtime has SM3; otherwise a
   note says it was not checked).

Each check is one line of the :class:`Report`; a failure says what failed and why.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from twin.evidence import merkle
from twin.evidence.archive import Archive
from twin.evidence.canonical import canonical, digest_bytes, is_canonical, sm3_available
from twin.evidence.custody import make_transfer, parse_record
from twin.evidence.errors import BundleError, CustodyError, TamperError
from twin.evidence.keys import PublicKey, TrustedKeys, load_public_pem, parse_head
from twin.evidence.report import Report

UNLISTED = ("manifest.json", "log/head.json", "log/head.sig")
KEEP = 16 << 20
"""Members up to this size that verification parses are kept in memory after the first read."""


def verify_bundle(path: str | Path, *, trusted: TrustedKeys | Iterable[str] | None = None) -> Report:
    """Check a court bundle (see the module docstring); the report lists every check.

    Parameters
    ----------
    path:
        The bundle (a .zip).
    trusted:
        The keys the verifier trusts: a :class:`TrustedKeys` (e.g. from a published keys
        file) or key fingerprints. Without them the report fails its "trusted key" check,
        saying which key signed the bundle and how to pin it.

    Raises
    ------
    BundleError
        ``path`` is not a readable file.
    DamagedBundleError
        The zip is damaged (the message names the member, or the zip directory).
    """
    p = Path(path)
    if not p.is_file():
        raise BundleError(f"bundle '{p}' does not exist or is not a file; give the path of a case .zip")
    trust = trusted if trusted is None or isinstance(trusted, TrustedKeys) else TrustedKeys.of(trusted)
    try:
        members = _Members(Archive(p))
    except OSError as err:
        raise BundleError(f"cannot read bundle '{p}' ({err.strerror or err})") from None
    report = Report(f"bundle {p.name}")
    _verify(members, report, trust, str(path))
    return report


class _Members:
    """The members of an intact archive: each read once (CRC-32 and SHA-256); what is parsed, kept."""

    def __init__(self, archive: Archive):
        self.archive = archive
        self.names = archive.names
        self.digests: dict[str, tuple[str, int]] = {}
        self.kept: dict[str, bytes] = {}
        for m in archive.members:
            keep = m.size <= KEEP and not m.name.startswith(("files/", "overlays/")) and m.name != "viewer.html"
            h, parts = hashlib.sha256(), []
            for chunk in archive.chunks(m.name):
                h.update(chunk)
                if keep:
                    parts.append(chunk)
            self.digests.setdefault(m.name, (h.hexdigest(), m.size))
            if keep:
                self.kept.setdefault(m.name, b"".join(parts))

    def read(self, name: str) -> bytes:
        if name in self.kept:
            return self.kept[name]
        if name not in self.archive.by_name:
            raise TamperError(f"member {name} is missing")
        return self.archive.read(name)

    def hash(self, name: str, sm3: bool = False) -> tuple[str, int, str | None]:
        if name not in self.archive.by_name:
            raise TamperError(f"member {name} is missing")
        if not sm3:
            return *self.digests[name], None
        h, s3, size = hashlib.sha256(), hashlib.new("sm3"), 0
        for chunk in self.archive.chunks(name):
            h.update(chunk)
            s3.update(chunk)
            size += len(chunk)
        return h.hexdigest(), size, s3.hexdigest()


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise TamperError(f"{what} is not JSON ({err})") from None


def _verify(m: _Members, report: Report, trust: TrustedKeys | None, path: str) -> None:
    dupes = sorted({n for n in m.names if m.names.count(n) > 1})
    report.check(
        "zip",
        not dupes,
        f"{len(m.names)} members, the archive and each member's CRC-32 intact"
        if not dupes
        else f"members named twice: {dupes}",
    )

    # -- the manifest --------------------------------------------------------------------------
    try:
        manifest_bytes = m.read("manifest.json")
        manifest = _json(manifest_bytes, "manifest.json")
        if not isinstance(manifest, dict) or manifest.get("bundle") != "basin-twin/court-bundle/1":
            raise TamperError("manifest.json is not a basin-twin court bundle manifest (field 'bundle')")
        for field in ("case_id", "agency", "public_key", "items", "files"):
            if field not in manifest:
                raise TamperError(f"manifest.json has no '{field}'")
    except TamperError as err:
        report.check("manifest", False, str(err))
        return
    manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
    case_id = manifest["case_id"]
    report.check("manifest", True, f"case {case_id}, {len(manifest['items'])} items, SHA-256 {manifest_sha}")

    # -- key, head, signature ------------------------------------------------------------------
    key = _check_key(m, manifest, report, trust, path)
    head = _check_head(m, manifest, key, report)

    # -- the export leaf binds the manifest to the head ----------------------------------------
    root = bytes.fromhex(head["root_hash"]) if head else None
    size = int(head["tree_size"]) if head else None
    try:
        exp = _proof_file(m, "proofs/export.json", size, root)
        leaf = exp["leaves"][0]
        data = _json(leaf["leaf_data"].encode("utf-8"), "the export leaf")
        problems = []
        if data.get("kind") != "export":
            problems.append(f"the leaf is a {data.get('kind')!r} entry, not an export")
        if data.get("case_id") != case_id:
            problems.append(f"the export is of case {data.get('case_id')!r}, the manifest of {case_id!r}")
        if data.get("manifest_sha256") != manifest_sha:
            problems.append("manifest.json's SHA-256 is not the one the export leaf holds: the manifest was altered")
        if sorted(data.get("items", [])) != sorted(i.get("sha256") for i in manifest["items"]):
            problems.append("the export leaf lists other items than the manifest")
        ok = not problems and _included(leaf, size, root)
        if not problems and not ok:
            problems.append("its inclusion proof does not lead to the signed root")
        report.check(
            "export leaf",
            ok,
            f"leaf {leaf['leaf_index']}: export of case {case_id} by {data.get('actor')} at {data.get('time')}, "
            "holds the manifest's SHA-256, included in the signed tree"
            if ok
            else "; ".join(problems),
        )
    except (TamperError, KeyError, IndexError, TypeError, ValueError) as err:
        report.check("export leaf", False, _why(err))

    # -- every listed member -------------------------------------------------------------------
    listed = {}
    for f in manifest["files"]:
        try:
            name, want, nbytes = f["path"], f["sha256"], int(f["bytes"])
            got, got_size, _ = m.hash(name)
            listed[name] = got
            ok = got == want and got_size == nbytes
            report.check(
                f"file {name}",
                ok,
                f"SHA-256 {got}"
                if ok
                else f"SHA-256 {got} ({got_size} bytes), the manifest says {want} ({nbytes} bytes)",
            )
        except (TamperError, KeyError, TypeError, ValueError) as err:
            report.check(f"file {f.get('path') if isinstance(f, dict) else f}", False, _why(err))
    extra = [
        n
        for n in m.names
        if n not in listed and n not in UNLISTED and not (n.startswith("proofs/") and n.endswith(".json"))
    ]
    report.check("no unlisted members", not extra, "" if not extra else f"members not in the manifest: {extra[:5]}")

    # -- per item: record, transfers, proofs ---------------------------------------------------
    for item in manifest["items"]:
        _check_item(m, item, case_id, size, root, report)


def _why(err: Exception) -> str:
    if isinstance(err, KeyError):
        return f"field {err} is missing"
    return str(err)


def _check_key(
    m: _Members, manifest: dict[str, Any], report: Report, trust: TrustedKeys | None, path: str
) -> PublicKey | None:
    try:
        info = manifest["public_key"]
        key = load_public_pem(m.read(info["path"]), manifest["agency"])
    except (TamperError, KeyError, TypeError) as err:
        report.check("public key", False, _why(err))
        report.check("trusted key", False, "the bundle holds no readable key to compare with the keys you trust")
        return None
    agency = manifest["agency"]
    ok = key.fingerprint == info.get("fingerprint")
    detail = (
        f"{agency}, Ed25519, fingerprint {key.fingerprint}"
        if ok
        else f"its fingerprint is {key.fingerprint}, the manifest names {info.get('fingerprint')}: the key was replaced"
    )
    report.check("public key", ok, detail)
    if trust is None:
        report.check(
            "trusted key",
            False,
            f"no key is trusted, so who signed is not known: the bundle says {agency} signed it with key "
            f"{key.fingerprint}. If that is the fingerprint {agency} publishes, verify with "
            f"`twin evidence verify {shlex.quote(path)} --fingerprint {key.fingerprint}` (or --trusted-keys FILE, "
            f"a file of published keys with the line '{agency} {key.fingerprint}')",
        )
    else:
        trusted, why = trust.judge(str(agency), key.fingerprint)
        report.check("trusted key", trusted, why)
    return key if ok else None


def _check_head(m: _Members, manifest: dict[str, Any], key: PublicKey | None, report: Report) -> dict[str, Any] | None:
    try:
        data = m.read("log/head.json")
        head = parse_head(data)
    except TamperError as err:
        report.check("tree head", False, str(err))
        return None
    problems = []
    if head["agency"] != manifest.get("agency"):
        problems.append(f"signed by {head['agency']!r}, the manifest names {manifest.get('agency')!r}")
    if head["key_fingerprint"] != manifest.get("public_key", {}).get("fingerprint"):
        problems.append("it names another key than the manifest")
    report.check(
        "tree head",
        not problems,
        f"size {head['tree_size']}, root {head['root_hash']}, {head['timestamp']}"
        if not problems
        else "; ".join(problems),
    )
    try:
        sig = m.read("log/head.sig")
    except TamperError as err:
        report.check("signature", False, str(err))
        return None
    if key is None:
        report.check("signature", False, "no valid public key to check it with")
        return None
    ok = len(sig) == 64 and key.verify(sig, data)
    report.check(
        "signature",
        ok,
        f"Ed25519 signature of the tree head verifies with {manifest['agency']}'s key"
        if ok
        else "the Ed25519 signature does not verify: the head or the signature was altered",
    )
    return head if ok and not problems else None


def _proof_file(m: _Members, name: str, size: int | None, root: bytes | None) -> dict[str, Any]:
    data = m.read(name)
    if not is_canonical(data):
        raise TamperError(f"{name} is not canonical JSON: its bytes were altered")
    proof = _json(data, name)
    if size is None or root is None:
        raise TamperError("no verified tree head to check it against")
    if proof.get("tree_size") != size or proof.get("root_hash") != root.hex():
        raise TamperError(f"{name} is a proof against another tree head (size {proof.get('tree_size')})")
    if not proof.get("leaves"):
        raise TamperError(f"{name} proves no leaf")
    return dict(proof)


def _included(leaf: dict[str, Any], size: int | None, root: bytes | None) -> bool:
    if size is None or root is None:
        return False
    try:
        path = [bytes.fromhex(h) for h in leaf["audit_path"]]
        index = int(leaf["leaf_index"])
    except (KeyError, TypeError, ValueError):
        return False
    return merkle.verify_inclusion(merkle.leaf_hash(leaf["leaf_data"].encode("utf-8")), index, size, path, root)


def _check_item(
    m: _Members, item: dict[str, Any], case_id: str, size: int | None, root: bytes | None, report: Report
) -> None:
    sha = item.get("sha256", "?")
    name = f"custody {item.get('record', sha)}"
    try:
        body = m.read(item["record"])
        if not is_canonical(body):
            raise TamperError("not canonical JSON: its bytes were altered")
        record = parse_record(body)
        digest = digest_bytes(body)
        proof = _proof_file(m, item["proof"], size, root)
        leaves = {lf.get("subject"): lf for lf in proof["leaves"]}
        problems = []
        if record.sha256 != sha:
            problems.append(f"the record is about file {record.sha256}, not {sha}")
        if record.case_id != case_id:
            problems.append(f"the record is of case {record.case_id!r}")
        if digest != item.get("record_sha256"):
            problems.append("its SHA-256 is not the one the manifest lists")
        leaf = leaves.get(item["record"])
        if leaf is None:
            problems.append(f"{item['proof']} has no leaf for it")
        else:
            value = _json(leaf["leaf_data"].encode("utf-8"), "the record's leaf")
            if value.get("kind") != "record" or value.get("item") != sha:
                problems.append(f"leaf {leaf.get('leaf_index')} is not this item's record entry")
            elif value.get("record_sha256") != digest:
                problems.append(
                    f"its SHA-256 {digest} is not the one log leaf {leaf.get('leaf_index')} holds: the record was altered"
                )
            elif "custody" in value and canonical(value["custody"]) != body:
                problems.append(f"log leaf {leaf.get('leaf_index')} holds another record than this one")
            elif not _included(leaf, size, root):
                problems.append(
                    f"the inclusion proof of leaf {leaf.get('leaf_index')} does not lead to the signed root"
                )
        report.check(
            name,
            not problems,
            f"{record.category} '{record.file.name}', SHA-256 {digest[:16]}... = log leaf {leaf['leaf_index'] if leaf else '?'}, included"
            if not problems
            else "; ".join(problems),
        )
        holder = record.holder
        for tp in item.get("transfers", []):
            holder = _check_transfer(m, tp, leaves.get(tp), sha, digest, case_id, holder, size, root, report)
        for h in record.file.hashes[1:]:
            if h.algorithm == "SM3":
                if sm3_available():
                    _, _, got = m.hash(item["file"], sm3=True)
                    report.check(
                        f"SM3 {item['file']}",
                        got == h.value,
                        f"SM3 {got}" if got == h.value else f"SM3 {got}, the record says {h.value}",
                    )
                else:
                    report.note(f"SM3 of {item['file']} not checked: SM3 is unavailable on this runtime")
    except (TamperError, CustodyError, KeyError, TypeError, ValueError) as err:
        report.check(name, False, _why(err))


def _check_transfer(
    m: _Members,
    path: str,
    leaf: dict[str, Any] | None,
    sha: str,
    record_sha: str,
    case_id: str,
    holder: str,
    size: int | None,
    root: bytes | None,
    report: Report,
) -> str:
    try:
        body = m.read(path)
        if not is_canonical(body):
            raise TamperError("not canonical JSON: its bytes were altered")
        t = make_transfer(_json(body, path))
        digest = digest_bytes(body)
        problems = []
        if t.item != sha or t.record_sha256 != record_sha or t.case_id != case_id:
            problems.append("it continues another item, record or case")
        if t.from_.casefold() != holder.casefold():
            problems.append(f"it is from {t.from_!r} but {holder!r} held the item")
        if leaf is None:
            problems.append("the item's proof has no leaf for it")
        else:
            value = _json(leaf["leaf_data"].encode("utf-8"), "the transfer's leaf")
            if (
                value.get("kind") != "transfer"
                or value.get("transfer_sha256") != digest
                or ("transfer" in value and canonical(value["transfer"]) != body)
            ):
                problems.append(
                    f"its SHA-256 is not the one log leaf {leaf.get('leaf_index')} holds: the transfer was altered"
                )
            elif not _included(leaf, size, root):
                problems.append(
                    f"the inclusion proof of leaf {leaf.get('leaf_index')} does not lead to the signed root"
                )
        report.check(
            f"transfer {path}",
            not problems,
            f"{t.from_} → {t.to} at {t.time.isoformat()}, log leaf {leaf['leaf_index'] if leaf else '?'}, included"
            if not problems
            else "; ".join(problems),
        )
        return t.to
    except (TamperError, CustodyError, KeyError, TypeError, ValueError) as err:
        report.check(f"transfer {path}", False, _why(err))
        return holder
