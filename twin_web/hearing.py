"""The hearing view: one case's court bundle, read only, at ``/hearing/<id>?exp=...&sig=...``.

A hearing (``twin hearing create``) gives a case's bundle to one judge until a time.
Its link carries the expiry and an itsdangerous signature of the hearing, its case and
the expiry under the twin's secret (:func:`twin.access.sign_link`). **The signed link is
enough**: a judge in a remote hearing opens it without an account; it stops working at its
expiry (403) and when the hearing is given a new expiry. Without the link, the hearing's
judge logged in (session or token) may open it until the expiry; no one else may.

The link opens only this blueprint's pages, for this hearing: the page, its data
(``data.json``: the incident, the timeline, the evidence list from the bundle's
manifest), the overlays (map and 3D) from the bundle, and the evidence files listed in
the bundle (``files/<sha256>``), served from the content store as they are on disk so
the page's own SHA-256 (WebCrypto) is the check: an altered file shows ✗. Every open
and every file read is a leaf of the evidence log.
"""

from __future__ import annotations

import json
import time
import zipfile
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from flask import Response, current_app, render_template, request
from flask_openapi3 import APIBlueprint
from pydantic import Field

from twin.access import Access, Hearing, check_link, secret_key
from twin_web import params, schemas
from twin_web.auth import current_user, scope
from twin_web.errors import NotFoundError
from twin_web.openapi import public, responds, tag

bp = APIBlueprint("hearing", __name__, url_prefix="/hearing")


class LinkQuery(params.LooseQuery):
    """The signed link's expiry and signature (without them: the hearing's judge, logged in)."""

    exp: Annotated[str | None, params.Text("The signed link's expiry (seconds since 1970, UTC)")] = None
    sig: Annotated[str | None, params.Text("The signed link's HMAC-SHA256 (hex)")] = None


class HearingPath(params.Path):
    hearing_id: Annotated[str, params.Text("A hearing", maxLength=32)] = Field(alias="hearingId")


class OverlayPath(HearingPath):
    name: Annotated[str, params.Text("An overlay", enum=["map.png", "scene.png"])]


class FilePath(HearingPath):
    sha256: Annotated[str, params.Text("An evidence file's SHA-256", pattern="^[0-9a-f]{64}$")]


OVERLAYS = {"map.png": "overlays/map.png", "scene.png": "overlays/scene.png"}
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"


def access() -> Access:
    return current_app.extensions["twin"].access


def _open(hearing_id: str) -> tuple[Hearing, str]:
    """The hearing, if the request may see it, and who is looking (for the log)."""
    if len(hearing_id) > 32:
        raise NotFoundError("no such hearing", parameter="hearingId")
    h = access().hearing(hearing_id)
    exp, sig = request.args.get("exp"), request.args.get("sig")
    user = current_user()
    if sig is None and user is not None:
        if not scope().sees_hearing(h):
            from twin.access import ForbiddenError

            raise ForbiddenError(f"hearing {h.id} is not given to {user.name} (or it has expired)")
        return h, user.name
    check_link(secret_key(access().twin_dir), h, exp, sig)
    return h, f"{h.judge} (hearing link {h.id})"


@cache
def _manifest(path: Path, sha256: str) -> dict[str, Any]:
    """The bundle's manifest.json (cached per bundle hash)."""
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("manifest.json"))


def _member(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read(name)


def _timeline(h: Hearing, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    inc = manifest.get("incident") or {}
    if inc.get("observed"):
        events.append({"time": inc["observed"], "what": f"incident observed: {inc.get('kind', '')}".strip()})
    if inc.get("reported"):
        events.append({"time": inc["reported"], "what": "incident reported"})
    with zipfile.ZipFile(h.bundle_path) as zf:
        for item in manifest.get("items", []):
            label = item.get("marker") or item["name"]
            events.append({"time": item["acquired_at"], "what": f"{label}: acquired ({item['description']})"})
            for tp in item.get("transfers", []):
                t = json.loads(zf.read(tp))
                events.append(
                    {"time": t.get("time"), "what": f"{label}: to {t.get('to')} ({t.get('reason', '')})".strip()}
                )
    events.append({"time": manifest.get("created"), "what": "court bundle made"})
    return sorted((e for e in events if e["time"]), key=lambda e: str(e["time"]))


def _headers() -> dict[str, str]:
    return {"Cache-Control": "no-store", "Content-Security-Policy": CSP}


@bp.get(
    "/<hearingId>",
    operation_id="getHearing",
    tags=tag("Hearing"),
    responses=responds(None, 401, 403, 404, 500, media="text/html"),
    openapi_extensions=public(),
)
def page(path: HearingPath, query: LinkQuery) -> Any:
    """The hearing view of a case's bundle (HTML; needs the signed link's exp and sig)."""
    h, who = _open(path.hearing_id)
    access().log_access(who, "hearing-open", case_id=h.case_id, hearing=h.id)
    return render_template("hearing.html", hearing=h), 200, _headers()


@bp.get(
    "/<hearingId>/data.json",
    operation_id="getHearingData",
    tags=tag("Hearing"),
    responses=responds(schemas.HearingData, 401, 403, 404, 500),
    openapi_extensions=public(),
)
def data(path: HearingPath, query: LinkQuery) -> Any:
    """The hearing's incident, timeline and evidence list."""
    h, _ = _open(path.hearing_id)
    m = _manifest(h.bundle_path, h.bundle_sha256)
    items = [
        {k: it.get(k) for k in ("marker", "sha256", "name", "format", "size", "category", "description")}
        | {"acquired_at": it.get("acquired_at"), "holder": it.get("holder"), "derived": it.get("derived")}
        for it in m.get("items", [])
    ]
    return (
        {
            "hearing": h.id,
            "case_id": h.case_id,
            "judge": h.judge,
            "expires": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(h.expires)),
            "agency": m.get("agency"),
            "key_fingerprint": (m.get("public_key") or {}).get("fingerprint"),
            "bundle_sha256": h.bundle_sha256,
            "incident": m.get("incident"),
            "overlays": sorted(OVERLAYS) if m.get("overlays") else [],
            "timeline": _timeline(h, m),
            "items": items,
        },
        200,
        _headers(),
    )


@bp.get(
    "/<hearingId>/overlays/<name>",
    operation_id="getHearingOverlay",
    tags=tag("Hearing"),
    responses=responds(None, 401, 403, 404, 500, media="image/png"),
    openapi_extensions=public(),
)
def overlay(path: OverlayPath, query: LinkQuery) -> Response:
    """The bundle's map or 3D overlay (a PNG)."""
    h, _ = _open(path.hearing_id)
    name = path.name
    m = _manifest(h.bundle_path, h.bundle_sha256)
    if name not in OVERLAYS or not m.get("overlays"):
        raise NotFoundError(f"no overlay {name[:40]!r} in this hearing; there are {sorted(OVERLAYS)}", parameter="name")
    return Response(_member(h.bundle_path, OVERLAYS[name]), mimetype="image/png", headers=_headers())


@bp.get(
    "/<hearingId>/files/<sha256>",
    operation_id="getHearingFile",
    tags=tag("Hearing"),
    responses=responds(None, 401, 403, 404, 500, media="application/octet-stream"),
    openapi_extensions=public(),
)
def evidence_file(path: FilePath, query: LinkQuery) -> Response:
    """One evidence file of the hearing's bundle, as stored (the page re-hashes it)."""
    h, who = _open(path.hearing_id)
    sha256 = path.sha256
    m = _manifest(h.bundle_path, h.bundle_sha256)
    item = next((it for it in m.get("items", []) if it["sha256"] == sha256), None)
    if item is None:
        raise NotFoundError("this hearing's bundle has no such file", parameter="sha256")
    acc = access()
    stored = acc.ledger.files.path(sha256)
    if not stored.is_file():
        raise NotFoundError(f"the stored file of item {sha256[:12]}... is missing", parameter="sha256")
    acc.log_access(who, "hearing-file", case_id=h.case_id, item=sha256, hearing=h.id)
    # as stored, unverified: the page re-hashes it, and an altered file must show as such there
    return Response(stored.read_bytes(), mimetype="application/octet-stream", headers=_headers())
