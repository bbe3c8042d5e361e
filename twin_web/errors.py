"""Errors of the web layer, and the one table that maps every error class to an HTTP status.

Every error leaves the server as JSON in the shape of OGC API's exception
document: ``{"code": ..., "description": ..., "status": ...}``, plus
``"parameter"`` when one query or path parameter is at fault. The library knows
nothing of HTTP; :data:`STATUS` decides the status of its errors here:

==========================================  ======  ===============================
error                                       status  why
==========================================  ======  ===============================
:class:`ApiError` (and :class:`ParameterError`) its own  raised by the web layer
``rio_tiler.errors.TileOutsideBounds``       404     a tile of no data
``twin.access.NotAuthenticatedError``        401     no valid credentials
``TwinError`` that is a ``PermissionError``  403     the user's role or scope does not allow it
``TwinError`` that is a ``LookupError``      404     unknown reach, station, incident
``TwinError`` that is a ``ValueError``       400     a value the library refuses
``TwinError`` that is an ``OSError``         503     twin folder or store unusable
anything else                                500     a bug: logged with its traceback
==========================================  ======  ===============================
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, jsonify
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from twin.access import NotAuthenticatedError
from twin.errors import TwinError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with its HTTP status, OGC exception code and (optionally) the parameter at fault."""

    status = 400
    code = "InvalidParameterValue"

    def __init__(self, description: str, *, parameter: str | None = None, status: int | None = None):
        super().__init__(description)
        self.description = description
        self.parameter = parameter
        if status is not None:
            self.status = status

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "description": self.description, "status": self.status}
        if self.parameter is not None:
            out["parameter"] = self.parameter
        return out


class ParameterError(ApiError):
    """A query or path parameter that cannot be used; the message names it and what is allowed."""

    def __init__(self, parameter: str, message: str):
        super().__init__(f"{parameter}: {message}", parameter=parameter)


class NotFoundError(ApiError):
    """Something the request names that the twin does not have."""

    status = 404
    code = "NotFound"


def _rio_tiler_outside() -> type[BaseException]:
    from rio_tiler.errors import TileOutsideBounds

    return TileOutsideBounds


#: (classes an error must all be instances of, status, OGC code), first match wins
STATUS: tuple[tuple[tuple[type[BaseException], ...], int, str], ...] = (
    ((_rio_tiler_outside(),), 404, "NotFound"),
    ((NotAuthenticatedError,), 401, "Unauthorized"),
    ((TwinError, PermissionError), 403, "Forbidden"),
    ((TwinError, LookupError), 404, "NotFound"),
    ((TwinError, ValueError), 400, "InvalidParameterValue"),
    ((TwinError, OSError), 503, "ServiceUnavailable"),
)


def status_of(err: BaseException) -> tuple[int, str]:
    """The HTTP status and OGC code of an error, from :data:`STATUS` (500 if none matches)."""
    if isinstance(err, ApiError):
        return err.status, err.code
    for classes, status, code in STATUS:
        if all(isinstance(err, c) for c in classes):
            return status, code
    return 500, "ServerError"


def error_response(status: int, code: str, description: str, parameter: str | None = None) -> Response:
    body: dict[str, Any] = {"code": code, "description": description, "status": status}
    if parameter is not None:
        body["parameter"] = parameter
    resp = jsonify(body)
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _api_error(err: ApiError) -> Response:
    resp = error_response(err.status, err.code, err.description, err.parameter)
    retry_after = getattr(err, "retry_after", None)
    if retry_after is not None:
        resp.headers["Retry-After"] = str(retry_after)
    return resp


def _http_error(err: HTTPException) -> Response:
    status = err.code or 500
    resp = error_response(status, (err.name or "Error").replace(" ", ""), err.description or err.name or "")
    if status == 405:  # keep the methods that are allowed
        allow = err.get_response().headers.get("Allow")
        if allow:
            resp.headers["Allow"] = allow
    return resp


def _any_error(err: Exception) -> Response:
    status, code = status_of(err)
    if status == 500:
        current_app.logger.exception("unexpected error")
        return error_response(500, code, "internal server error; the server log has the details")
    if status >= 500:
        current_app.logger.error("%s: %s", type(err).__name__, err)
    return error_response(status, code, str(err).splitlines()[0] if str(err) else type(err).__name__)


def invalid_parameters(err: ValidationError) -> Response:
    """flask-openapi3's answer to parameters its models refuse: a :class:`ParameterError` naming the first.

    The declared parameters (:mod:`twin_web.params`) raise their own errors, with their own
    messages, before pydantic sees a value; this is for what pydantic alone refuses.
    """
    first = err.errors(include_url=False)[0]
    name = str(first["loc"][0]) if first.get("loc") else "query"
    raise ParameterError(name, str(first.get("msg", "is not valid")))


def register(app: Flask) -> None:
    """JSON for every error: the web layer's own, HTTP errors (404, 405...), library errors, bugs."""
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _any_error)
