"""The web face of the basin twin: a map viewer, raster tiles, OGC API – Features, slices, an OpenAPI description.

It parses requests, calls :mod:`twin` and serialises; no analysis lives here.
Build the app with :func:`create_app` and serve it with waitress
(``twin serve DIR``)::

    from twin_web import create_app
    app = create_app("twins/cevennes", tile_cache_dir="/var/cache/twin")

Blueprints: :mod:`web.viewer` (the map viewer at ``/``), :mod:`web.tiles`
(``/tiles``), :mod:`web.features` (``/api``, OGC API – Features), :mod:`web.slices`
(``/api/slices``), :mod:`web.viewer_api` (``/api/viewer``), :mod:`web.openapi`
(``/api/openapi.json``), :mod:`web.auth` (``/login``), :mod:`web.readings_api`
(``POST /api/readings``), :mod:`web.cases` (``/api/cases``, evidence) and
:mod:`web.hearing` (``/hearing/<id>``); ``/api/index`` links the API and the tiles.
Every request but the login page, static files and signed hearing links needs a user
whose role allows it (:mod:`web.auth`). Every error is JSON (:mod:`web.errors`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

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


def create_app(twin_dir: str | os.PathLike[str], **config: Any) -> Flask:
    """The Flask app serving one twin folder.

    Parameters
    ----------
    twin_dir:
        A twin folder (``twin build CATALOG -o DIR``).
    **config:
        Flask configuration, keys in any case: :data:`DEFAULTS`, ``TESTING``...

    Raises
    ------
    TwinFolderError
        ``twin_dir`` is not a twin folder.
    """
    from flask import Flask

    from twin.access import secret_key
    from twin.settings import Settings
    from twin_web import auth, errors
    from twin_web.encoding import JSONProvider
    from twin_web.limits import Backoff, Throttle
    from twin_web.state import TwinState
    from twin_web.tiles import TileService

    app = Flask(__name__)
    app.json = JSONProvider(app)
    app.config.from_mapping(DEFAULTS)
    app.config.from_mapping({k.upper(): v for k, v in config.items()})
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

    from twin_web import cases, features, hearing, openapi, readings_api, slices, tiles, viewer, viewer_api

    app.register_blueprint(tiles.bp)
    app.register_blueprint(features.bp)
    app.register_blueprint(slices.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(viewer_api.bp)
    app.register_blueprint(viewer.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(readings_api.bp)
    app.register_blueprint(cases.bp)
    app.register_blueprint(hearing.bp)
    viewer.check_vendor(app)

    @app.get("/api/index")
    def index() -> Any:
        from flask import url_for

        return {
            "title": state.manifest.get("title") or state.manifest.get("name"),
            "links": [
                {"rel": "service", "href": url_for("features.landing", _external=True), "title": "OGC API"},
                {"rel": "tiles", "href": url_for("tiles.index", _external=True), "title": "raster tiles"},
            ],
        }

    return app


__all__ = ["create_app"]
