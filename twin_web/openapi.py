"""The OpenAPI 3.0 description of the API (``/api/openapi.json``), generated from the routes' own declarations.

Every route is declared once, with flask-openapi3: its path, its typed parameters (a
:class:`twin_web.params.Query` or :class:`~twin_web.params.Path` model), its answer (a
model of :mod:`twin_web.schemas`) and its errors (:func:`responds`). flask-openapi3
collects them into an OpenAPI 3.1 document; :func:`document` gives it in the form this
API has always served, OpenAPI 3.0.3 (OGC API - Features' ``oas30`` conformance class,
and what OWSLib, GDAL and QGIS read): JSON Schema's ``null`` types become
``nullable``, numeric ``exclusiveMinimum`` the 3.0 boolean form, ``const`` an ``enum``;
the errors are the shared ``components.responses``; a route that takes no token says so
(``security: []``); the server is the one the request came to.

What the library does not express is added here, and said in the routes' docstrings:
answers that are not JSON (GeoJSON pages, PNG tiles, HTML pages, evidence files) are
declared by media type; ``bbox`` and ``line`` are comma-separated arrays (``style: form``,
``explode: false``); request bodies read by the views themselves (readings, the login
form) are described, not validated by the library.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import TYPE_CHECKING, Any

from flask import Response, current_app, request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel

from twin_web import schemas
from twin_web.encoding import dumps

if TYPE_CHECKING:
    from flask_openapi3 import OpenAPI

OPENAPI_TYPE = "application/vnd.oai.openapi+json;version=3.0"
OPENAPI_VERSION = "3.0.3"
REF = "#/components/schemas/"

bp = APIBlueprint("openapi", __name__, url_prefix="/api")

ERRORS = {
    304: "Not modified (If-None-Match names the tile's ETag)",
    400: "A bad parameter; the body names it",
    401: "No valid credentials (a bearer token, the session cookie or a hearing's signed link)",
    403: "The user's role or jurisdictions do not allow it",
    404: "Not found",
    409: "The stored file was altered",
    413: "The request body is too large",
    415: "A body of a type not read here",
    429: "Too many requests; Retry-After says when to try again",
    500: "Server error",
}

#: models of answers and bodies that are not JSON read by the library (GeoJSON pages, posted readings), for the components
MEDIA_MODELS: tuple[type[BaseModel], ...] = (schemas.FeatureCollection, schemas.Feature, schemas.Reading)
#: parameters given as comma-separated arrays
FORM_ARRAYS = ("bbox", "line")


def tag(name: str) -> list[Tag]:
    return [Tag(name=name)]


def responds(ok: type[BaseModel] | None = None, *errors: int, media: str = "application/json") -> dict[Any, Any]:
    """The ``responses`` of a route: its answer (a model, of ``media``) and its error statuses.

    Examples
    --------
    >>> sorted(responds(schemas.Slices, 400))
    [200, 400]
    """
    out: dict[Any, Any] = {}
    if media == "application/json" and ok is not None:
        out[200] = ok
    else:
        if ok is not None:
            schema: dict[str, Any] = {"$ref": REF + _name(ok)}
        elif media in ("text/html", "text/plain"):
            schema = {"type": "string"}
        else:
            schema = {"type": "string", "format": "binary"}
        out[200] = {"description": "OK", "content": {media: {"schema": schema}}}
    for code in errors:
        out[code] = {"description": ERRORS[code]} if code == 304 else schemas.ErrorBody
    return out


def check_answer(response: Any, responses: dict[Any, Any] | None = None) -> Any:
    """Validate a JSON answer against its declared model (the app's ``validate_response``, on in tests).

    Only a view's own JSON answer (a dict) is checked against its 200 model: flask-openapi3's
    check would insist that every declared answer be a model, and read a page's HTML as JSON;
    the answers declared by media type (pages, PNG, files, GeoJSON text) are not checked.
    """
    body = response[0] if isinstance(response, tuple) else response
    model = (responses or {}).get(200)
    if isinstance(body, dict) and isinstance(model, type) and issubclass(model, BaseModel):
        model.model_validate(body)  # the errors (401, 429...) are the error handlers', not the view's
    return response


def public() -> dict[str, Any]:
    """``openapi_extensions`` of a route that needs no bearer token (its own check, or none)."""
    return {"security": []}


def _name(model: type[BaseModel]) -> str:
    return str(model.model_json_schema(mode="serialization").get("title") or model.__name__)


# -- OpenAPI 3.1 (JSON Schema 2020-12) to 3.0 -----------------------------------------------------


def to_oas30(schema: Any, parameter: bool = False) -> Any:
    """A JSON schema of pydantic's (2020-12) in OpenAPI 3.0's dialect.

    ``parameter``: the schema of a query or path parameter, where absent means null, so a
    null alternative is dropped rather than made ``nullable``.

    Examples
    --------
    >>> to_oas30({"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "null"}]})
    {'type': 'number', 'minimum': 0, 'exclusiveMinimum': True, 'nullable': True}
    """
    if isinstance(schema, list):
        return [to_oas30(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    nullable = False
    options = out.get("anyOf")
    if options is not None and any(s.get("type") == "null" for s in options):
        rest = [s for s in options if s.get("type") != "null"]
        del out["anyOf"]
        if len(rest) == 1:
            out = {**rest[0], **out}
        elif rest:
            out["anyOf"] = rest
        nullable = True
    out = {k: to_oas30(v) if k in ("items", "additionalProperties", "not") else v for k, v in out.items()}
    for key in ("properties", "$defs", "patternProperties"):
        if key in out:
            out[key] = {k: to_oas30(v) for k, v in out[key].items()}
    for key in ("allOf", "oneOf", "anyOf"):
        if key in out:
            out[key] = [to_oas30(s) for s in out[key]]
    if parameter:  # absent is null: no null type, no null default, no title
        out.pop("title", None)
        if out.get("default", 0) is None:
            del out["default"]
    elif nullable:
        out["nullable"] = True
    for bound, side in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = out.get(bound)
        if not isinstance(value, bool) and isinstance(value, int | float):
            out[side] = value
            out[bound] = True
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if "$ref" in out and len(out) > 1:  # 3.0 ignores the siblings of a $ref
        out = {"allOf": [{"$ref": out.pop("$ref")}], **out}
    if out.get("type") == "null":
        out = {"nullable": True}
    return out


def _operation(op: dict[str, Any]) -> dict[str, Any]:
    op = dict(op)
    if "summary" in op:  # a docstring's first line, without its full stop
        op["summary"] = op["summary"].rstrip(".")
    if "description" in op:
        op["description"] = op["description"].replace("<br/>", "\n").strip() or None
        if op["description"] is None:
            del op["description"]
    params = []
    for p in op.get("parameters", []):
        p = {**p, "schema": to_oas30(p["schema"], parameter=True)}
        p.setdefault("required", p["in"] == "path")
        if p["name"] in FORM_ARRAYS:
            p.update(style="form", explode=False)
        params.append(p)
    op["parameters"] = params
    responses: dict[str, Any] = {}
    for code, resp in op.get("responses", {}).items():
        if "ValidationErrorModel" in json.dumps(resp):
            continue  # flask-openapi3's own 400 of a route that declares none
        ref = resp.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
        if int(code) in ERRORS and int(code) != 304 and ref == REF + "exception":
            responses[code] = {"$ref": f"#/components/responses/E{code}"}
        else:
            responses[code] = copy.deepcopy(resp)
            for media in responses[code].get("content", {}).values():
                if "schema" in media:
                    media["schema"] = to_oas30(media["schema"])
    if op.get("security") != [] and "401" not in responses:
        responses["401"] = {"$ref": "#/components/responses/E401"}
        responses["403"] = {"$ref": "#/components/responses/E403"}
    op["responses"] = responses
    if "requestBody" in op:
        op["requestBody"] = copy.deepcopy(op["requestBody"])
        for media in op["requestBody"].get("content", {}).values():
            media["schema"] = to_oas30(media["schema"])
    return op


def _convert(spec: dict[str, Any], server: str) -> dict[str, Any]:
    """flask-openapi3's document in this API's 3.0.3 form (see the module's docstring)."""
    components = spec.get("components", {})
    found: dict[str, Any] = {k: v for k, v in components.get("schemas", {}).items() if k != "ValidationErrorModel"}
    for model in MEDIA_MODELS:
        js = model.model_json_schema(ref_template=REF + "{model}", mode="serialization")
        for name, sub in js.pop("$defs", {}).items():
            found.setdefault(name, sub)
        found[_name(model)] = js
    paths = {
        path: {method: _operation(op) for method, op in item.items()} for path, item in sorted(spec["paths"].items())
    }
    tags = list(dict.fromkeys(t for item in paths.values() for op in item.values() for t in op.get("tags", [])))
    return {
        "openapi": OPENAPI_VERSION,
        "info": spec["info"],
        "servers": [{"url": server.rstrip("/") or "/"}],
        "tags": [{"name": t} for t in tags],
        "paths": paths,
        "components": {
            "schemas": {k: to_oas30(v) for k, v in sorted(found.items())},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API token (`twin users token`)"}
            },
            "responses": {
                f"E{code}": {
                    "description": text,
                    "content": {"application/json": {"schema": {"$ref": REF + "exception"}}},
                }
                for code, text in ERRORS.items()
                if code != 304
            },
        },
        "security": [{"bearer": []}],
    }


@cache
def _routes_document() -> dict[str, Any]:
    from twin_web import api

    return api().api_doc


def document(server: str = "/", app: OpenAPI | None = None) -> dict[str, Any]:
    """The OpenAPI 3.0.3 document of the app's routes (``server``: the base URL of the service).

    Without an app, that of the routes every app of :func:`twin_web.create_app` has (no twin needed).
    """
    spec = app.api_doc if app is not None else _routes_document()
    return _convert(copy.deepcopy(spec), server)


@bp.get(
    "/openapi.json",
    endpoint="document",
    operation_id="getOpenAPI",
    tags=tag("Capabilities"),
    responses=responds(None, 500)
    | {200: {"description": "OK", "content": {OPENAPI_TYPE: {"schema": {"type": "object"}}}}},
)
def document_route() -> Response:
    """This document."""
    return Response(dumps(document(request.host_url, current_app)), mimetype=OPENAPI_TYPE)  # type: ignore[arg-type]
