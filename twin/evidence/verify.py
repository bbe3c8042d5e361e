"""Verify a court bundle without the server: what :func:`verify_bundle` checks, in order.

1. The zip opens and names each member once; its members' CRCs hold.
2. ``manifest.json`` is a court bundle manifest.
3. The public key (``keys/<agency>.pub``) is an Ed25519 key whose fingerprint is the one
   the manifest names (and the one the caller expects, when given: the fingerprint the
   agency publishes; without it the bundle proves integrity, not who signed it).
4. The tree head (``log/head.json``) is canonical, names that agency and key, and its
   Ed25519 signature (``log/head.sig``) verifies with the key.
5. The export leaf (``proofs/export.json``) is an export of this case whose
   ``manifest_sha256`` is the hash of ``manifest.json``, included in the signed tree.
6. Every member the manifest lists has its SHA-256 and size; nothing else is in the zip
   but the manifest, the proofs and the head.
7. Per item: its custody record is canonical, valid, about this file and this case, and
   its hash is the one its log leaf holds; the leaf is included in the signed tree; each
   transfer likewise, continuing the chain of holders; SM3 where recorded (and where this
   runtime has SM3; otherwise a note says it was not checked).

Each check is one line of the :class:`Report`; a failure says what failed and why.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

from . import merkle
from .canonical import CHUNK, digest_bytes, is_canonical, sm3_available
from .custody import make_transfer, parse_record
from .errors import BundleError, CustodyError, TamperError
from .keys import PublicKey, load_public_pem, parse_head
from .report import Report

UNLISTED = ("manifest.json", "log/head.json", "log/head.sig")


def verify_bundle(path: str | Path, *, fingerprint: str | None = None) -> Report:
    """Check a court bundle (see the module docstring); the report lists every check.

    Raises
    ------
    BundleError
        ``path`` is not a readable file.
    """
    p = Path(path)
    if not p.is_file():
        raise BundleError(f"bundle '{p}' does not exist or is not a file; give the path of a case .zip")
    report = Report(f"bundle {p.name}")
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError) as err:
        report.check("zip", False, f"not a readable zip ({err})")
        return report
    with zf:
        _verify(zf, report, fingerprint)
    return report


class _Members:
    def __init__(self, zf: zipfile.ZipFile):
        self.zf = zf
        self.names = [i.filename for i in zf.infolist()]

    def read(self, name: str) -> bytes:
        try:
            return self.zf.read(name)
        except KeyError:
            raise TamperError(f"member {name} is missing") from None
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            raise TamperError(f"member {name} is damaged ({err})") from None

    def hash(self, name: str, sm3: bool = False) -> tuple[str, int, str | None]:
        h, s3, size = hashlib.sha256(), (hashlib.new("sm3") if sm3 else None), 0
        try:
            with self.zf.open(name) as fh:
                while chunk := fh.read(CHUNK):
                    h.update(chunk)
                    if s3 is not None:
                        s3.update(chunk)
                    size += len(chunk)
        except KeyError:
            raise TamperError(f"member {name} is missing") from None
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            raise TamperError(f"member {name} is damaged ({err})") from None
        return h.hexdigest(), size, (s3.hexdigest() if s3 is not None else None)


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise TamperError(f"{what} is not JSON ({err})") from None


def _verify(zf: zipfile.ZipFile, report: Report, fingerprint: str | None) -> None:
    m = _Members(zf)
    dupes = sorted({n for n in m.names if m.names.count(n) > 1})
    report.check("zip", not dupes, f"{len(m.names)} members" if not dupes else f"members named twice: {dupes}")

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
    key = _check_key(m, manifest, report, fingerprint)
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


def _check_key(m: _Members, manifest: dict[str, Any], report: Report, expected: str | None) -> PublicKey | None:
    try:
        info = manifest["public_key"]
        key = load_public_pem(m.read(info["path"]), manifest["agency"])
    except (TamperError, KeyError, TypeError) as err:
        report.check("public key", False, _why(err))
        return None
    ok = key.fingerprint == info.get("fingerprint")
    detail = (
        f"{manifest['agency']}, Ed25519, fingerprint {key.fingerprint}"
        if ok
        else f"its fingerprint is {key.fingerprint}, the manifest names {info.get('fingerprint')}: the key was replaced"
    )
    report.check("public key", ok, detail)
    if expected is not None:
        want = expected.lower().replace(":", "")
        report.check(
            "published fingerprint",
            key.fingerprint == want,
            "the key is the one the agency published"
            if key.fingerprint == want
            else f"the key's fingerprint {key.fingerprint} is not the published {want}",
        )
    else:
        report.note(
            f"compare the key's fingerprint {key.fingerprint} with the one {manifest['agency']} publishes "
            "(or pass --fingerprint): the bundle proves integrity; the fingerprint proves who signed"
        )
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
            if value.get("kind") != "transfer" or value.get("transfer_sha256") != digest:
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
