"""The web face of the basin twin: a map viewer, raster tiles, OGC API – Features, slices, an OpenAPI description.

It parses requests, calls :mod:`twin` and serialises; no analysis lives here.
Build the app with :func:`create_app` and serve it with waitress
(``twin serve DIR``)::

    from twin_web import create_app
    app = create_app("twins/cevennes", tile_cache_dir="/var/cache/twin")

Blueprints (flask-openapi3's: each route declares its typed parameters and its answer
once, and :mod:`twin_web.openapi` describes them): :mod:`twin_web.viewer` (the map viewer
at ``/``), :mod:`twin_web.tiles` (``/tiles``), :mod:`twin_web.features` (``/api``, OGC API –
Features, and ``/api/index``, links to the API and the tiles), :mod:`twin_web.slices`
(``/api/slices``), :mod:`twin_web.viewer_api` (``/api/viewer``), :mod:`twin_web.openapi`
(``/api/openapi.json``), :mod:`twin_web.auth` (``/login``), :mod:`twin_web.readings_api`
(``POST /api/readings``), :mod:`twin_web.cases` (``/api/cases``, evidence) and
:mod:`twin_web.hearing` (``/hearing/<id>``).
Every request but the login page, static files and signed hearing links needs a user
whose role allows it (:mod:`twin_web.auth`). Every error is JSON (:mod:`twin_web.errors`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask_openapi3 import OpenAPI

#: configuration keys and their defaults (keyword arguments of create_app, any case)
DEFAULTS: dict[str, Any] = {
    "TILE_CACHE_BYTES": 64 * 2**20,  # in-memory LRU of rendered tiles
    "TILE_CACHE_DIR": None,  # tiles also kept on disk here (default: TWIN_CACHE_DIR/tiles if set)
    "SECRET_KEY": None,  # default: generated at first start into <twin>/secrets/web.key (0600)
    "MAX_CONTENT_LENGTH": 16 * 2**20,  # largest request body (POST /api/readings); larger: 413
    "MAX_FORM_MEMORY_SIZE": 64 * 2**10,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_SECURE": None,  # None: Secure when the request came over https
    "PERMANENT_SESSION_LIFETIME": 8 * 3600,  # a login lasts a working day
    # failed logins (web.limits): after N failures wait S seconds, doubling with each further failure
    "RATE_LOGIN": (5, 60.0),  # a user name at one address
    "RATE_LOGIN_ADDRESS": (20, 300.0),  # one address, whatever the names it tries
    "LOGIN_MAX_WAIT": 3600.0,  # the longest wait
    "LOGIN_FORGET": 86400.0,  # a key with no failure for this long starts again from nothing
    "RATE_INGEST": (60, 1.0),  # POST /api/readings per user: 60 at once, then 1 a second
}


def api() -> OpenAPI:
    """A Flask app (flask-openapi3's) with every route of the API and no twin: its routes' declarations.

    :func:`create_app` serves a twin from one; :func:`twin_web.openapi.document` describes one.
    """
    from flask_openapi3 import Info, OpenAPI

    from twin_web import (
        auth,
        cases,
        errors,
        features,
        hearing,
        openapi,
        readings_api,
        slices,
        tiles,
        viewer,
        viewer_api,
    )

    app = OpenAPI(
        __name__,
        info=Info(
            title="basin twin API",
            version="1.0.0",
            description="OGC API - Features (Core) over the twin's reaches, cross-boundary sections, "
            "jurisdictions, stations, sites, incidents and warnings; slices of the twin; XYZ raster tiles.",
        ),
        doc_ui=False,  # the document is served at /api/openapi.json (twin_web.openapi), and no UI
        validation_error_status=400,
        validation_error_callback=errors.invalid_parameters,
        validate_response_callback=openapi.check_answer,
    )
    for bp in (tiles.bp, features.bp, slices.bp, openapi.bp, viewer_api.bp, viewer.bp, auth.bp):
        app.register_api(bp)
    for bp in (readings_api.bp, cases.bp, hearing.bp):
        app.register_api(bp)
    return app


def create_app(twin_dir: str | os.PathLike[str], **config: Any) -> OpenAPI:
    """The Flask app serving one twin folder.

    Parameters
    ----------
    twin_dir:
        A twin folder (``twin build CATALOG -o DIR``).
    **config:
        Flask configuration, keys in any case: :data:`DEFAULTS`, ``TESTING``...
        ``VALIDATE_RESPONSES`` (default: ``TESTING``) checks every JSON answer against
        its declared model (:mod:`twin_web.schemas`); a mismatch is a server error.

    Raises
    ------
    TwinFolderError
        ``twin_dir`` is not a twin folder.
    """
    from twin.access import secret_key
    from twin.settings import Settings
    from twin_web import auth, errors, viewer
    from twin_web.encoding import JSONProvider
    from twin_web.limits import Backoff, Throttle
    from twin_web.state import TwinState
    from twin_web.tiles import TileService

    app = api()
    app.json = JSONProvider(app)
    app.config.from_mapping(DEFAULTS)
    app.config.from_mapping({k.upper(): v for k, v in config.items()})
    app.validate_response = bool(app.config.get("VALIDATE_RESPONSES", app.config.get("TESTING")))
    if app.config["TILE_CACHE_DIR"] is None and Settings.from_env().cache_dir:
        app.config["TILE_CACHE_DIR"] = os.path.join(Settings.from_env().cache_dir, "tiles")

    state = TwinState(twin_dir)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = secret_key(state.path)
    app.extensions["twin"] = state
    longest, forget = float(app.config["LOGIN_MAX_WAIT"]), float(app.config["LOGIN_FORGET"])
    n, wait = app.config["RATE_LOGIN"]
    n_addr, wait_addr = app.config["RATE_LOGIN_ADDRESS"]
    app.extensions["twin_limits"] = Throttle(
        lambda: state.access.engine,  # the operations store: every process of the deployment counts in it
        login=Backoff(int(n), float(wait), longest, forget),
        address=Backoff(int(n_addr), float(wait_addr), longest, forget),
        rates={"ingest": tuple(app.config["RATE_INGEST"])},
    )
    app.extensions["twin_tiles"] = TileService(state, int(app.config["TILE_CACHE_BYTES"]), app.config["TILE_CACHE_DIR"])
    app.before_request(state.refresh)
    errors.register(app)
    auth.register(app)
    viewer.check_vendor(app)
    return app


__all__ = ["api", "create_app"]
