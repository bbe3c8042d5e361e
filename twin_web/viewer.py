"""The map viewer: one page at ``/`` (blueprint ``viewer``), its script, styles and strings under ``/static``.

The page (``templates/viewer.html``) loads everything from this server:
MapLibre GL JS from ``/static/vendor/maplibre-gl/`` (copied there from the npm
registry by ``twin_web/vendor.sh``, which ``make setup`` runs; never from a CDN),
raster tiles from ``/tiles/``, features from ``/api/collections/``, slices from
``/api/slices/`` and its set-up, slider times and plumes from ``/api/viewer/``
(:mod:`web.viewer_api`). ``static/viewer.js`` draws it; ``static/i18n/zh.json``
and ``static/i18n/en.json`` hold every label in Chinese (the default) and English.

When the vendored library is missing the page says which command to run, and
the server logs a warning at start-up.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

from flask import Flask, current_app, render_template
from flask_openapi3 import APIBlueprint

from twin_web import params
from twin_web.openapi import responds, tag

log = logging.getLogger(__name__)

bp = APIBlueprint("viewer", __name__)

#: the vendored library, relative to the app's static folder
MAPLIBRE = ("vendor/maplibre-gl/maplibre-gl.js", "vendor/maplibre-gl/maplibre-gl.css")
VENDOR_COMMAND = "sh twin_web/vendor.sh"
LANGUAGES = ("zh", "en")


def vendor_missing(app: Flask) -> list[str]:
    """The vendored files the page needs that are not in the app's static folder."""
    static = Path(app.static_folder or "")
    return [f for f in MAPLIBRE if not (static / f).is_file()]


def check_vendor(app: Flask) -> None:
    """Log a warning naming the command to run when MapLibre GL JS has not been vendored."""
    missing = vendor_missing(app)
    if missing:
        log.warning(
            "the map viewer's library is missing (%s under %s); run `%s` (npm, once) or `make setup`",
            ", ".join(missing),
            app.static_folder,
            VENDOR_COMMAND,
        )


class PageQuery(params.LooseQuery):
    lang: Annotated[str | None, params.Text("The page's language: zh (the default) or en")] = None


@bp.get("/", operation_id="getViewer", tags=tag("Viewer"), responses=responds(None, 500, media="text/html"))
def page(query: PageQuery) -> Any:
    """The map viewer (an HTML page; Chinese by default, ?lang=en)."""
    missing = vendor_missing(current_app)
    if missing:
        check_vendor(current_app)
    lang = query.lang
    m = current_app.extensions["twin"].manifest
    return render_template(
        "viewer.html",
        lang=lang if lang in LANGUAGES else "zh",
        title=m.get("title") or m.get("name") or "",
        vendor_missing=missing,
        vendor_command=VENDOR_COMMAND,
    )
