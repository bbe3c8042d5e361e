"""Case files over HTTP: ``/api/cases`` (the cases a user may see), a case's evidence records and files.

Which cases a user sees is the scope rule's answer (:class:`twin.access.Scope`): a case
lies in the units its evidence was acquired in and its incidents touch, or was shared
with one of the user's units; asking for another case's
evidence is a 403 naming how to get it shared (a case id is known across agencies, so
hiding its existence would help no one). Every listing and every file read is a leaf of
the evidence log (who, when, what), as reads on the command line are.
"""

from __future__ import annotations

from typing import Annotated, Any

from flask import Response, current_app
from flask_openapi3 import APIBlueprint
from pydantic import Field

from twin.access import Access, ForbiddenError, User
from twin_web import params, schemas
from twin_web.auth import require, scope
from twin_web.errors import ApiError, NotFoundError
from twin_web.openapi import responds, tag

bp = APIBlueprint("cases", __name__, url_prefix="/api/cases")


class CasePath(params.Path):
    case_id: Annotated[str, params.Text("A case id", maxLength=64)] = Field(alias="caseId")


class FilePath(CasePath):
    sha256: Annotated[str, params.Text("An evidence file's SHA-256", pattern="^[0-9a-f]{64}$")]


def access() -> Access:
    return current_app.extensions["twin"].access


def _case(case_id: str) -> tuple[User, Any]:
    if len(case_id) > 64:
        raise NotFoundError(f"no case {case_id[:40]!r}...", parameter="caseId")
    rule = scope()
    found = rule.case(case_id)  # an unknown case is a 404
    user = require("evidence.read")
    if not rule.sees_case(case_id):
        raise ForbiddenError(
            f"case {case_id!r} is not of your jurisdictions and has not been shared with them; "
            "ask its investigators to share it (`twin case share DIR --case ID --with CODE --by NAME`)"
        )
    return user, found


@bp.get("/", operation_id="getCases", tags=tag("Evidence"), responses=responds(schemas.Cases, 401, 403, 500))
def index() -> Any:
    """The cases whose evidence the user may see."""
    require("evidence.read")
    rule = scope()
    acc = access()
    out = []
    for case_id in rule.cases():
        shared = [s["with"] for s in acc.ledger.shares(case_id)]  # as the log's share leaves say
        units = sorted(rule.case(case_id).jurisdictions)
        out.append({"case_id": case_id, "jurisdictions": units, "shared_with": shared})
    return {"cases": out}


@bp.get(
    "/<caseId>/evidence",
    operation_id="getCaseEvidence",
    tags=tag("Evidence"),
    responses=responds(schemas.CaseEvidence, 401, 403, 404, 500),
)
def evidence(path: CasePath) -> Any:
    """A case's evidence records (the listing is logged)."""
    case_id = path.case_id
    user, _ = _case(case_id)
    records = access().ledger.records(case_id, by=user.name)  # the listing is logged
    return {"case_id": case_id, "items": records}


@bp.get(
    "/<caseId>/evidence/<sha256>",
    operation_id="getEvidenceFile",
    tags=tag("Evidence"),
    responses=responds(None, 401, 403, 404, 409, 500, media="application/octet-stream"),
)
def evidence_file(path: FilePath) -> Response:
    """One evidence file, verified (the read is logged).

    The answer is the file itself, of its recorded format, as an attachment.
    """
    from twin.evidence.errors import EvidenceError, TamperError, UnknownEvidenceError

    case_id, sha256 = path.case_id, path.sha256

    user, _ = _case(case_id)
    acc = access()
    try:
        rec = acc.ledger.record(sha256, case_id, by=None)
    except (EvidenceError, UnknownEvidenceError):
        raise NotFoundError(f"no item {sha256[:70]!r} in case {case_id!r}", parameter="sha256") from None
    try:
        data = acc.ledger.files.read_bytes(sha256)
    except TamperError:
        acc.log_access(user, "get", case_id=case_id, item=sha256, via="web", result="altered")
        raise ApiError(
            f"the stored file of item {sha256} was altered; it is not served (restore it from a bundle)",
            status=409,
        ) from None
    acc.log_access(user, "get", case_id=case_id, item=sha256, via="web", result="ok")
    name = rec["name"].replace('"', "")
    return Response(
        data,
        mimetype=rec["format"],
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
