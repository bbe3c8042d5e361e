"""Who is asking, and may they: logins, sessions, API tokens, and the one table of endpoint -> action.

Every request is resolved to a user before its view runs (:func:`load_user`):
``Authorization: Bearer <token>`` (API tokens, :mod:`twin.access`) or the session
cookie set by the login page. :func:`guard` then looks the endpoint up in
:data:`ENDPOINTS` and asks :func:`twin.access.can` whether the user's role may take
that action. Anonymous requests get 401 JSON under ``/api`` and ``/tiles`` and a
redirect to ``/login`` for pages; a role without the action gets 403 JSON. Open to
all: the login page, static files, and the hearing pages (which check their own signed
link, :mod:`web.hearing`). An endpoint missing from the table is for admins only.

What a user may see inside what they may use (an investigator's jurisdictions and shared
cases: which warnings, incidents, cases, evidence) is decided by one rule,
:class:`twin.access.Scope`; every view asks it through :func:`scope` and decides nothing
itself.

Hardening: the login form carries a CSRF token kept in the session; the session
cookie is HttpOnly, SameSite=Lax and Secure when the request came over https (or as
``SESSION_COOKIE_SECURE`` says); writes under ``/api`` take a bearer token only (a
cookie cannot be ridden by another site); failed logins are throttled per (user name,
address) and per address, with a growing wait, in the operations store that every process
of a deployment shares (:mod:`web.limits`), answering 429 JSON. Every response carries a
Content-Security-Policy (:data:`PAGE_CSP` for pages, :data:`DATA_CSP` for everything else;
hearing pages keep their own, stricter one).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any
from urllib.parse import urlsplit

from flask import (
    Flask,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask_openapi3 import APIBlueprint
from werkzeug.wrappers import Response as WResponse

from twin.access import ForbiddenError, NotAuthenticatedError, Scope, User, can, case_resources, station_units
from twin_web import params
from twin_web.errors import ApiError
from twin_web.openapi import public, responds, tag

bp = APIBlueprint("auth", __name__)

#: endpoint -> the action it needs; "*" after a blueprint name: all its endpoints; None: open to all;
#: "<blueprint>.*:<collection id>": that collection's routes (the one table of route -> action)
ENDPOINTS: dict[str, str | None] = {
    "static": None,
    "auth.login": None,
    "auth.logout": None,
    "hearing.*": None,  # the signed link is checked by the views
    "viewer.page": "model.read",
    "viewer_api.*": "model.read",
    "openapi.document": "model.read",
    "tiles.*": "model.read",
    "features.*": "model.read",
    "features.*:incidents": "incidents.read",
    "features.*:warnings": "warnings.read",
    "slices.index": "model.read",
    "slices.profile": "model.read",
    "slices.river": "model.read",
    "slices.downstream": "model.read",
    "slices.at_time": "readings.read",
    "slices.station_series": "readings.read",
    "slices.upstream": "readings.read",
    "readings_api.post": "readings.post",
    "cases.*": "evidence.read",
}

#: the policy of every page (the viewer, login, errors as HTML): MapLibre GL JS makes its workers from
#: blob: URLs and decodes tiles into data: and blob: images; everything else comes from this server
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "worker-src 'self' blob:; child-src blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: the policy of every other response (JSON, GeoJSON, tiles, files): nothing may run or load from it
DATA_CSP = "default-src 'none'; frame-ancestors 'none'"

CSRF_KEY = "csrf"


class UnauthorizedError(ApiError):
    status = 401
    code = "Unauthorized"


class ForbiddenApiError(ApiError):
    status = 403
    code = "Forbidden"


class TooManyRequestsError(ApiError):
    status = 429
    code = "TooManyRequests"

    def __init__(self, description: str, retry_after: float):
        super().__init__(description)
        self.retry_after = max(1, int(retry_after + 0.999))


class SessionInterface(SecureCookieSessionInterface):
    """The session cookie, Secure when the request came over https unless ``SESSION_COOKIE_SECURE`` is set."""

    def get_cookie_secure(self, app: Flask) -> bool:
        setting = app.config.get("SESSION_COOKIE_SECURE")
        if setting is None:
            return bool(request) and request.is_secure
        return bool(setting)


def action_of(endpoint: str | None, view_args: dict[str, Any] | None) -> str | None | bool:
    """The action an endpoint needs (None: open; False: not in the table, admins only)."""
    if endpoint is None:
        return None  # no route: the 404 says nothing
    if endpoint in ENDPOINTS:
        return ENDPOINTS[endpoint]
    blueprint = endpoint.split(".", 1)[0] + ".*"
    collection = (view_args or {}).get("collectionId")
    if collection is not None and f"{blueprint}:{collection}" in ENDPOINTS:
        return ENDPOINTS[f"{blueprint}:{collection}"]
    if blueprint in ENDPOINTS:
        return ENDPOINTS[blueprint]
    return False


def collection_action(collection_id: str) -> str:
    """The action a collection's routes need (from :data:`ENDPOINTS`)."""
    action = action_of("features.items", {"collectionId": collection_id})
    assert isinstance(action, str)
    return action


def current_user() -> User | None:
    return g.get("user")


def load_user() -> None:
    """Resolve the request's user (``g.user``) from its bearer token or session; an invalid token is a 401."""
    g.user = None
    g.by_token = False
    access = current_app.extensions["twin"].access
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UnauthorizedError("give an API token as `Authorization: Bearer TOKEN`")
        try:
            g.user = access.authenticate_token(token.strip())
        except NotAuthenticatedError as err:
            raise UnauthorizedError(str(err)) from None
        g.by_token = True
        return
    uid = session.get("uid")
    if isinstance(uid, int):
        from twin.access import UnknownUserError

        try:
            g.user = access.user_by_id(uid)
        except UnknownUserError:
            session.clear()


def guard() -> WResponse | None:
    """Refuse the request unless the user's role may take its endpoint's action (see :data:`ENDPOINTS`)."""
    action = action_of(request.endpoint, request.view_args)
    if action is None:
        return None
    user = current_user()
    if user is None:
        if request.path.startswith(("/api", "/tiles")):
            raise UnauthorizedError("log in first: send `Authorization: Bearer TOKEN` (ask an admin for a token)")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if request.method not in ("GET", "HEAD", "OPTIONS") and request.path.startswith("/api") and not g.by_token:
        raise ForbiddenApiError("writes to the API take `Authorization: Bearer TOKEN`, not a session cookie")
    if action is False:
        if user.role != "admin":
            raise ForbiddenApiError(f"a {user.role} may not use {request.path[:80]}")
        return None
    assert isinstance(action, str)
    if not can(user, action):
        raise ForbiddenApiError(f"a {user.role} may not use {request.path[:80]} ({action})")
    return None


def _case_index(st: Any) -> Any:
    """Every case of the store as a resource, kept until evidence or an incident is added (both append only)."""
    import sqlalchemy as sa

    from twin.ops.store import custody_records, incidents

    engine = st.access.engine
    with engine.connect() as conn:
        key = conn.execute(
            sa.select(sa.select(sa.func.max(custody_records.c.id)).scalar_subquery(), sa.func.max(incidents.c.id))
        ).one()
    return st.memo("access:cases", tuple(key), lambda: case_resources(engine))


def scope() -> Scope:
    """The scope rule for this request's user (:class:`twin.access.Scope`), made once per request."""
    found = g.get("scope")
    if found is None:
        st = current_app.extensions["twin"]

        def stations() -> Any:
            return st.memo(
                "access:stations",
                st.manifest_hash,
                lambda: station_units(st.basin.sites, st.basin.jurisdictions.levels),
            )

        found = g.scope = Scope(current_user(), cases=lambda: _case_index(st), stations=stations)
    return found


def require(action: str, resource: Any = None, message: str | None = None) -> User:
    """The user, if they may take ``action`` on ``resource``; else 401/403."""
    user = current_user()
    if user is None:
        raise UnauthorizedError("log in first")
    if not can(user, action, resource):
        raise ForbiddenError(message or f"a {user.role} may not do this ({action})")
    return user


def csrf_token() -> str:
    token = session.get(CSRF_KEY)
    if not isinstance(token, str):
        token = session[CSRF_KEY] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    sent = request.form.get("csrf_token", "")
    want = session.get(CSRF_KEY)
    if not isinstance(want, str) or not hmac.compare_digest(sent.encode(), want.encode()):
        raise ApiError("the form's CSRF token is missing or stale; reload the login page", parameter="csrf_token")


def _safe_next(target: str | None) -> str:
    """Only a path on this server (no scheme, no host, no //) may follow a login."""
    if not target:
        return url_for("viewer.page")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("viewer.page")
    return target


def client_address() -> str:
    return request.remote_addr or "?"


class LoginQuery(params.LooseQuery):
    next: Annotated[str | None, params.Text("The page to go on to after logging in (a path on this server)")] = None


LOGIN_FORM = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "properties": {
                    "username": {"type": "string"},
                    "password": {"type": "string"},
                    "csrf_token": {"type": "string"},
                },
            }
        }
    },
}
LOGOUT_FORM = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {"type": "object", "properties": {"csrf_token": {"type": "string"}}}
        }
    },
}


@bp.get(
    "/login",
    operation_id="getLogin",
    summary="The login page",
    description="A form posted to this same path; `next` is the page to go on to.",
    tags=tag("Access"),
    responses=responds(None, 500, media="text/html"),
    openapi_extensions=public(),
)
@bp.post(
    "/login",
    operation_id="postLogin",
    summary="Log in (form: username, password, csrf_token); sets the session cookie",
    description="The form is read by the view itself (its CSRF token first), not by the library.",
    tags=tag("Access"),
    responses=responds(None, 400, 401, 429, 500, media="text/html")
    | {302: {"description": "Done: on to the page asked for"}},
    openapi_extensions=public() | {"requestBody": LOGIN_FORM},
)
def login(query: LoginQuery) -> Any:
    """The login page; posted (form: username, password, csrf_token), it sets the session cookie.

    The form is read by the view itself (its CSRF token first), not by the library.
    """
    error = None
    status = 200
    if request.method == "POST":
        check_csrf()
        name = request.form.get("username", "")[:64]
        password = request.form.get("password", "")[:256]
        throttle = current_app.extensions["twin_limits"]
        address = client_address()
        wait = throttle.login_wait(name, address)
        if wait:
            raise TooManyRequestsError(
                f"too many failed logins for {name[:64]!r} from here; wait {int(wait) + 1} s", wait
            )
        access = current_app.extensions["twin"].access
        try:
            user = access.authenticate_password(name, password)
        except NotAuthenticatedError as err:
            throttle.login_failed(name, address)
            error, status = str(err), 401
        else:
            throttle.login_succeeded(name, address)
            target = _safe_next(request.args.get("next"))
            session.clear()
            session.permanent = True
            session["uid"] = user.id
            return redirect(target)
    m = current_app.extensions["twin"].manifest
    page = render_template(
        "login.html",
        csrf_token=csrf_token(),
        error=error,
        title=m.get("title") or m.get("name") or "",
        next=request.args.get("next", ""),
    )
    return page, status, {"Cache-Control": "no-store"}


@bp.post(
    "/logout",
    operation_id="postLogout",
    tags=tag("Access"),
    responses=responds(None, 400, 500, media="text/html") | {302: {"description": "Done: on to the page asked for"}},
    openapi_extensions=public() | {"requestBody": LOGOUT_FORM},
)
def logout() -> Any:
    """Log out (form: csrf_token)."""
    check_csrf()
    session.clear()
    return redirect(url_for("auth.login"))


def register(app: Flask) -> None:
    """Sessions, the user of each request and the guard, security headers."""
    app.session_interface = SessionInterface()
    app.before_request(load_user)
    app.before_request(guard)

    @app.context_processor
    def _who() -> dict[str, Any]:
        return {"current_user": current_user()}

    @app.after_request
    def _headers(resp: WResponse) -> WResponse:
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")  # hearing links carry their signature
        resp.headers.setdefault("X-Frame-Options", "DENY")
        if "Content-Security-Policy" not in resp.headers:
            page = resp.mimetype == "text/html"
            resp.headers["Content-Security-Policy"] = PAGE_CSP if page else DATA_CSP
        if resp.status_code == 401 and request.path.startswith(("/api", "/tiles")):
            resp.headers.setdefault("WWW-Authenticate", 'Bearer realm="basin twin"')
        return resp
