"""The court bundle: one zip a court can check without the server.

``twin evidence bundle DIR --case ID -o case.zip`` writes::

    manifest.json            case, agency and key fingerprint, twin (name, manifest hash), the
                             incident, every item (file, record, transfers, proof, marker,
                             place, holder) and every member above with SHA-256 and size
    files/<sha256>.<ext>     the evidence files, named by hash (verified as they are read)
    custody/<sha256>.json    each custody record, canonical JSON (the bytes its hash is of)
    custody/<sha256>.transfer-<n>.json   each later transfer, canonical JSON
    overlays/map.png         the case top down (north up, scale bar), evidence places marked
    overlays/scene.png       the same in 3D; overlays/overlays.json: what re-renders them
    keys/<agency>.pub        the public key that signed the head
    viewer.html              offline page: re-hashes every file in the browser, ✓ or ✗ per item
    proofs/<sha256>.json     inclusion proofs of the item's record and transfer leaves
    proofs/export.json       inclusion proof of the export leaf, which holds manifest.json's hash
    log/head.json            the signed tree head (canonical JSON: the signed bytes)
    log/head.sig             its Ed25519 signature (64 bytes)

The export is itself a leaf of the log (who, when, which case, which items, the hash of
``manifest.json``); the head is signed after it, so the manifest, and through it every
listed member, is bound to the signed head. Proofs and head cannot be listed in the
manifest (they are made after it) and are checked by what they prove instead.

The bundle is made from the log: its items are every record the log holds for the case,
after a full check of the ledger (:meth:`Ledger.case_items`); a ledger that does not
verify is not exported.

Every member is stored uncompressed, with fixed times and attributes, so that each byte
of the zip is either data its CRC-32 and SHA-256 cover or structure the verifier checks
(a deflate stream's last bits can change without changing what it inflates to); the
zip is written to a temporary file beside the output and renamed when complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from twin.evidence.canonical import canonical
from twin.evidence.errors import BundleError, EvidenceError, UnknownEvidenceError
from twin.evidence.keys import SignedHead
from twin.evidence.ledger import Ledger, default_actor
from twin.evidence.log import iso, utc_now
from twin.ops.store import incidents as incidents_table

if TYPE_CHECKING:
    import xarray as xr

    from twin.model.model import Model

FORMAT = "basin-twin/court-bundle/1"


@dataclass(frozen=True)
class BundleResult:
    path: Path
    case_id: str
    items: int
    bytes: int
    manifest_sha256: str
    head: SignedHead
    export_leaf: int


class _Writer:
    """Zip members written one by one, each hashed as it goes (for the manifest)."""

    def __init__(self, zf: zipfile.ZipFile):
        self.zf = zf
        self.listed: list[dict[str, Any]] = []

    def write(self, name: str, data: bytes, *, listed: bool = True) -> str:
        self.zf.writestr(_info(name), data)
        sha = hashlib.sha256(data).hexdigest()
        if listed:
            self.listed.append({"path": name, "sha256": sha, "bytes": len(data)})
        return sha

    def write_chunks(self, name: str, chunks: Any) -> tuple[str, int]:
        h, size = hashlib.sha256(), 0
        with self.zf.open(_info(name), "w", force_zip64=True) as out:
            for chunk in chunks:
                h.update(chunk)
                size += len(chunk)
                out.write(chunk)
        self.listed.append({"path": name, "sha256": h.hexdigest(), "bytes": size})
        return h.hexdigest(), size


def _info(name: str) -> zipfile.ZipInfo:
    """A member as every bundle writes it (what :mod:`twin.evidence.archive` checks): stored, 1980-01-01, 0644, Unix."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    info.create_system = 3
    return info


def _suffix(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,10}", suffix) else ""


def case_incident(ledger: Ledger, case_id: str) -> int | None:
    """The case's first observed incident, if the operations store has one with that case id."""
    with ledger.engine.connect() as c:
        row = c.execute(
            sa.select(incidents_table.c.id)
            .where(incidents_table.c.case_id == case_id)
            .order_by(incidents_table.c.observed, incidents_table.c.id)
        ).first()
    return int(row.id) if row is not None else None


def release_plume(model: Model, release: dict[str, Any]) -> xr.Dataset:
    """Re-run the plume of a recorded release: ``{lon, lat, at, mass_kg, parameter, [duration_h,
    decay_per_hour, flow_ratio]}`` (WGS84)."""
    from twin.analysis import plume

    try:
        loc = model.locate(float(release["lon"]), float(release["lat"]))
        return plume.simulate(
            model.network.reaches,
            loc.reach_id,
            loc.measure_m,
            release["at"],
            mass_kg=float(release["mass_kg"]),
            duration_s=float(release.get("duration_h", 0.0)) * 3600,
            decay_per_hour=float(release.get("decay_per_hour", 0.0)),
            substance=str(release.get("parameter", "")),
            flow_ratio=float(release.get("flow_ratio", 1.0)),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise EvidenceError(
            f"the recorded release {release} cannot be re-run ({err}); it needs lon, lat, at, mass_kg, parameter"
        ) from None


def _plume_source(records: list[dict[str, Any]], plume_from: str | None) -> dict[str, Any] | None:
    """The release of the trace to draw: the one named, else the newest derived trace that records one."""
    if plume_from is not None:
        hit = [r for r in records if r["sha256"] == plume_from]
        if not hit:
            raise UnknownEvidenceError(f"--plume-from {plume_from} is not an item of this case")
        deriv = hit[0]["custody"].get("derivation") or {}
        release = (deriv.get("parameters") or {}).get("release")
        if not isinstance(release, dict):
            raise EvidenceError(f"item {plume_from[:12]}... records no release (derivation.parameters.release)")
        return {"item": plume_from, "release": release}
    for r in reversed(records):
        deriv = r["custody"].get("derivation") or {}
        release = (deriv.get("parameters") or {}).get("release")
        if r["category"] == "trace" and isinstance(release, dict):
            return {"item": r["sha256"], "release": release}
    return None


def make_bundle(
    ledger: Ledger,
    case_id: str,
    output: str | Path,
    *,
    by: str | None = None,
    agency: str | None = None,
    model: Model | None = None,
    at: Any = None,
    overlays: bool = True,
    plume_from: str | None = None,
    size: tuple[int, int] = (1280, 800),
    max_triangles: int | None = None,
) -> BundleResult:
    """Write the court bundle of a case (see the module docstring); the export is logged.

    Parameters
    ----------
    ledger:
        The twin's evidence ledger.
    case_id:
        The case whose items go in.
    output:
        The zip to write (whole or not at all).
    by:
        Who exports (default: the OS user).
    agency:
        Whose key signs the head (default: the only agency with a key).
    model:
        The twin's model, for the overlays (read from the ledger's folder when not given).
    at:
        The time the overlays show (default: the case's incident's observed time).
    overlays:
        Render ``overlays/map.png`` and ``overlays/scene.png`` (needs the scene extra: pyvista).
    plume_from:
        SHA-256 of a derived trace whose recorded release is drawn as the plume (default:
        the newest trace of the case that records one; none if there is none).

    Raises
    ------
    UnknownEvidenceError
        The case has no evidence.
    SigningKeyError
        No key for the agency (or several agencies and none chosen).
    BundleError
        The output cannot be written there.
    TamperError
        The ledger does not verify (:meth:`Ledger.check`: a row deleted, added or edited, the log
        altered), or a stored file was altered; nothing is written.
    """
    actor = by or default_actor()
    out = Path(output)
    if out.is_dir():
        raise BundleError(f"output '{out}' is a folder; give a file name such as '{out / 'case.zip'}'")
    if not out.parent.is_dir():
        raise BundleError(f"cannot write '{out}': folder '{out.parent}' does not exist; create it first")
    signer = ledger.signer(agency)  # before any work: a missing key is the likeliest mistake
    rows = ledger.case_items(case_id)  # from the log, after a full check (TamperError if it fails)
    if not rows:
        raise UnknownEvidenceError(
            f"case {case_id!r} has no evidence in this ledger; record some with `twin evidence add` "
            "(list the cases with `twin evidence list DIR`)"
        )
    records = [ledger.summary(r, ts) | {"custody": json.loads(r["record"])} for r, ts in rows]
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.partial-", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
            w = _Writer(zf)
            items = _write_items(w, ledger, records, rows)
            overlay_info = None
            incident_info = None
            incident_id = case_incident(ledger, case_id)
            if overlays:
                overlay_info, incident_info = _write_overlays(
                    w, ledger, model, case_id, incident_id, at, items, records, plume_from, size, max_triangles
                )
            elif incident_id is not None:
                incident_info = {"id": incident_id}
            key_path = f"keys/{signer.agency}.pub"
            w.write(key_path, signer.public.pem)
            manifest: dict[str, Any] = {
                "bundle": FORMAT,
                "case_id": case_id,
                "created": iso(utc_now()),
                "created_by": actor,
                "agency": signer.agency,
                "public_key": {"path": key_path, "fingerprint": signer.public.fingerprint, "algorithm": "Ed25519"},
                "twin": _twin_info(ledger),
                "incident": incident_info,
                "overlays": overlay_info,
                "items": items,
                "proofs": {"export": "proofs/export.json", "head": "log/head.json", "signature": "log/head.sig"},
                "hashing": "SHA-256; Merkle log per RFC 6962 (leaf H(0x00||data), node H(0x01||left||right))",
            }
            from twin.evidence.viewer import viewer_html

            w.write("viewer.html", viewer_html(manifest, w.listed).encode("utf-8"))
            manifest["files"] = sorted(w.listed, key=lambda f: f["path"])
            manifest_bytes = (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
            manifest_sha = w.write("manifest.json", manifest_bytes, listed=False)
            head, export_leaf, proofs = _log_export(ledger, signer, case_id, actor, manifest_sha, items, out.name, rows)
            for name, body in proofs.items():
                w.write(name, body, listed=False)
            w.write("log/head.json", head.data, listed=False)
            w.write("log/head.sig", head.signature, listed=False)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return BundleResult(out, case_id, len(items), out.stat().st_size, manifest_sha, head, export_leaf)


def _twin_info(ledger: Ledger) -> dict[str, Any]:
    mf = ledger.twin_dir / "twin.json"
    meta = json.loads(mf.read_text(encoding="utf-8"))
    return {"name": meta.get("name"), "title": meta.get("title"), "manifest_sha256": ledger.manifest_sha256()}


def _write_items(w: _Writer, ledger: Ledger, records: list[dict[str, Any]], rows: list[Any]) -> list[dict[str, Any]]:
    items, marker = [], 0
    for rec, (row, transfers) in zip(records, rows):
        sha = rec["sha256"]
        fmt = rec["format"]
        path = f"files/{sha}{_suffix(rec['name'])}"
        w.write_chunks(path, ledger.files.chunks(sha))
        w.write(f"custody/{sha}.json", row["record"].encode("utf-8"))
        tpaths = []
        for t in transfers:
            tp = f"custody/{sha}.transfer-{t['seq']}.json"
            w.write(tp, t["transfer"].encode("utf-8"))
            tpaths.append(tp)
        label = None
        if rec["place"] is not None:
            marker += 1
            label = f"E{marker}"
        sm3 = [h["value"] for h in rec["custody"]["file"]["hashes"] if h["algorithm"] == "SM3"]
        items.append(
            {
                "marker": label,
                "sha256": sha,
                "sm3": sm3[0] if sm3 else None,
                "file": path,
                "name": rec["name"],
                "format": fmt,
                "size": rec["size"],
                "category": rec["category"],
                "description": rec["description"],
                "acquired_at": rec["acquired_at"],
                "place": rec["place"],
                "holder": rec["holder"],
                "derived": rec["derived"],
                "record": f"custody/{sha}.json",
                "record_sha256": row["record_sha256"],
                "transfers": tpaths,
                "proof": f"proofs/{sha}.json",
            }
        )
    return items


def _write_overlays(
    w: _Writer,
    ledger: Ledger,
    model: Model | None,
    case_id: str,
    incident_id: int | None,
    at: Any,
    items: list[dict[str, Any]],
    records: list[dict[str, Any]],
    plume_from: str | None,
    size: tuple[int, int],
    max_triangles: int | None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    from twin.evidence import overlays as ov
    from twin.model.folder import read_twin
    from twin.ops.incidents import Incidents

    b = model if model is not None else read_twin(ledger.twin_dir)[0]
    incident = Incidents(b, ledger.engine).get(incident_id) if incident_id is not None else None
    when = at if at is not None else (incident["observed"] if incident else None)
    source = _plume_source(records, plume_from)
    plume = release_plume(b, source["release"]) if source is not None and when is not None else None
    markers = [ov.Marker(i["marker"], i["place"]["lon"], i["place"]["lat"]) for i in items if i["marker"]]
    drawn = ov.render(
        b,
        ledger.engine,
        at=when,
        incident=incident_id,
        markers=markers,
        plume=plume,
        size=size,
        max_triangles=max_triangles or ov.DEFAULT_MAX_TRIANGLES,
    )
    w.write("overlays/map.png", drawn.map_png)
    w.write("overlays/scene.png", drawn.scene_png)
    params = drawn.parameters | {
        "case_id": case_id,
        "plume_from": source,
        "twin_manifest_sha256": ledger.manifest_sha256(),
        "software": _software(),
        "note": "the same twin, store and parameters give the same bytes with the same OpenGL driver",
    }
    w.write("overlays/overlays.json", canonical(params))
    info = {"map": "overlays/map.png", "scene": "overlays/scene.png", "parameters": "overlays/overlays.json"}
    inc = None
    if incident is not None:
        inc = {k: incident.get(k) for k in ("id", "kind", "observed", "reported", "description", "status")}
        inc["observed"] = str(inc["observed"])
        inc["reported"] = str(inc["reported"])
    return info, inc


def _software() -> dict[str, str]:
    from importlib import metadata

    from twin.model.folder import software_versions

    out = software_versions()
    for pkg in ("pyvista", "vtk"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _log_export(
    ledger: Ledger,
    signer: Any,
    case_id: str,
    actor: str,
    manifest_sha: str,
    items: list[dict[str, Any]],
    name: str,
    rows: list[Any],
) -> tuple[SignedHead, int, dict[str, bytes]]:
    """Append the export leaf, sign the head after it, and make every proof, in one transaction."""
    log = ledger.log
    with ledger.engine.begin() as conn:
        state = log.lock(conn)
        (leaf,) = log.append(
            conn,
            [
                {
                    "kind": "export",
                    "action": "bundle",
                    "time": iso(utc_now()),
                    "actor": actor,
                    "case_id": case_id,
                    "manifest_sha256": manifest_sha,
                    "items": [i["sha256"] for i in items],
                    "bundle": name,
                    "agency": signer.agency,
                }
            ],
            state,
        )
        head = log.sign(signer, conn)
        size = head.tree_size

        def proof(index: int, subject: str) -> dict[str, Any]:
            entry = log.entry(index, conn)
            return {
                "subject": subject,
                "leaf_index": index,
                "leaf_data": entry.data.decode("utf-8"),
                "audit_path": [h.hex() for h in log.inclusion_proof(index, size, conn)],
            }

        proofs: dict[str, bytes] = {}
        for item, (row, transfers) in zip(items, rows):
            leaves = [proof(int(row["leaf_index"]), item["record"])]
            leaves += [proof(int(t["leaf_index"]), tp) for t, tp in zip(transfers, item["transfers"])]
            proofs[item["proof"]] = canonical({"tree_size": size, "root_hash": head.root_hash.hex(), "leaves": leaves})
        proofs["proofs/export.json"] = canonical(
            {"tree_size": size, "root_hash": head.root_hash.hex(), "leaves": [proof(leaf.index, "manifest.json")]}
        )
    return head, leaf.index, proofs
