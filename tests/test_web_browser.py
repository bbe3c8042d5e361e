"""The map viewer in a real browser: Debian's Chromium driven by Playwright, on the demo twin after the mine-leak scenario.

The server is waitress on a free loopback port in a thread (:class:`web.server.Server`); Chromium
runs headless with SwiftShader's WebGL, so MapLibre really draws and the checks look at pixels of
screenshots, not only at the DOM. Every state is saved to ``test-artifacts/browser/`` to be looked at.

Needs ``/usr/bin/chromium`` (``apt-get install -y chromium``; ``make test`` installs it), the
``playwright`` package (its driver only: no browser is downloaded) and MapLibre GL JS vendored into
``twin_web/static/vendor`` (``sh twin_web/vendor.sh``, run by ``make setup``). Without them these tests fail,
saying what to install: they are not skipped.
"""

from __future__ import annotations

import io
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import twin
from twin.analysis import scenarios
from twin_web import create_app
from twin_web.server import Server
from twin_web.viewer import MAPLIBRE, VENDOR_COMMAND

from .webauth import PASSWORD, authorised
from .webauth import token as make_token

ROOT = Path(__file__).resolve().parent.parent
ARTEFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
TABLET = {"width": 820, "height": 1180}
#: the viewer's colours (twin_web/static/viewer.js COLOURS) that the pixel checks look for
RIVER = (0x16, 0x68, 0xB8)
DEPARTEMENT = (0x3D, 0x1F, 0x6E)


def missing_requirements() -> list[str]:
    """What the browser tests need and this machine lacks, each with how to get it."""
    missing = []
    if not CHROMIUM.is_file():
        missing.append(f"Chromium at {CHROMIUM}: apt-get install -y chromium (make test installs it)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package: .venv/bin/pip install playwright (no browser download is needed)")
    static = ROOT / "twin_web" / "static"
    absent = [f for f in MAPLIBRE if not (static / f).is_file()]
    if absent:
        missing.append(
            f"MapLibre GL JS in twin_web/static ({', '.join(absent)}): run `{VENDOR_COMMAND}` (make setup runs it)"
        )
    return missing


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scenario(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[twin.BasinTwin, dict]:
    folder = tmp_path_factory.mktemp("web-browser") / "cevennes"
    shutil.copytree(demo_dir, folder)
    basin = twin.open(str(folder))
    return basin, scenarios.run(basin.model, basin.store, "mine-leak", folder=basin.path, seed=1)


@pytest.fixture(scope="module")
def server(scenario: tuple[twin.BasinTwin, dict]) -> Iterator[Server]:
    make_token(scenario[0].path, "viewer-admin", "admin")  # the user the pages log in as
    make_token(scenario[0].path, "viewer-researcher", "researcher")
    with Server(create_app(scenario[0].path, testing=True, rate_login=(50, 1.0)), threads=4) as s:
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = missing_requirements()
    if missing:
        pytest.fail("the browser tests need: " + "; ".join(missing), pytrace=False)
    from playwright.sync_api import sync_playwright

    shutil.rmtree(ARTEFACTS, ignore_errors=True)
    ARTEFACTS.mkdir(parents=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def log_in(page: Any, name: str) -> None:
    """Through the login page, where the viewer sends a visitor without a session."""
    page.wait_for_selector("#username")
    assert "/login?next=" in page.url, page.url
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("#login")


class Viewer:
    """A page of the viewer, with what the tests ask of it: settle, find things on screen, read pixels."""

    def __init__(self, browser: Any, server: Server, viewport: dict[str, int], user: str = "viewer-admin"):
        self.page = browser.new_page(viewport=viewport)
        self.problems: list[str] = []  # console errors, uncaught exceptions, failed requests
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"uncaught: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url} {r.failure}"))
        self.page.on("response", lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status}: {r.url}"))
        self.page.set_default_timeout(60_000)
        self.page.goto(server.url)
        log_in(self.page, user)
        self.page.wait_for_function("() => window.twinViewer && window.twinViewer.ready")
        self.settle()

    def settle(self) -> None:
        """Wait until no request is pending and MapLibre has drawn every tile and source."""
        assert self.page.evaluate("() => twinViewer.whenSettled(45000)"), "the map did not settle in 45 s"

    def point(self, lon: float, lat: float) -> tuple[float, float]:
        """Where a place is on the page (CSS pixels)."""
        x, y = self.page.evaluate(
            """([lon, lat]) => {
                const p = twinViewer.map.project([lon, lat]);
                const r = twinViewer.map.getCanvas().getBoundingClientRect();
                return [p.x + r.left, p.y + r.top];
            }""",
            [lon, lat],
        )
        return float(x), float(y)

    def image(self, name: str, selector: str | None = None) -> np.ndarray:
        """A screenshot (the page, or one element) saved under test-artifacts/browser, as an RGB array."""
        from PIL import Image

        path = ARTEFACTS / f"{name}.png"
        if selector is None:
            data = self.page.screenshot(path=str(path))
        else:
            data = self.page.locator(selector).screenshot(path=str(path))
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)

    def colour_at(self, shot: np.ndarray, x: float, y: float) -> tuple[int, int, int]:
        """The median colour of the 3 × 3 pixels at a page position of a full-page screenshot."""
        r, c = round(y), round(x)
        block = shot[r - 1 : r + 2, c - 1 : c + 2].reshape(-1, 3)
        return tuple(int(v) for v in np.median(block, axis=0))  # type: ignore[return-value]

    def rendered(self, layer: str) -> int:
        """How many features of a map layer are drawn on screen."""
        return int(self.page.evaluate("(id) => twinViewer.map.queryRenderedFeatures({layers: [id]}).length", layer))

    def text(self, selector: str) -> str:
        return self.page.locator(selector).inner_text()

    def check_no_problems(self) -> None:
        assert not self.problems, "\n".join(self.problems)


@pytest.fixture(scope="module")
def desktop(browser: Any, server: Server) -> Iterator[Viewer]:
    viewer = Viewer(browser, server, DESKTOP)
    yield viewer
    viewer.page.close()


@pytest.fixture(scope="module")
def sites(scenario: tuple[twin.BasinTwin, dict]) -> dict[str, tuple[float, float]]:
    """Each site's position as the map draws it (the features' snapped points, WGS 84)."""
    s = scenario[0].sites.to_crs("EPSG:4326")
    return {str(i): (float(g.x), float(g.y)) for i, g in zip(s["id"], s.geometry)}


def near(colour: tuple[int, ...] | np.ndarray, target: tuple[int, int, int], tol: int) -> bool:
    return bool(np.all(np.abs(np.asarray(colour) - np.asarray(target)) <= tol))


def share(img: np.ndarray, mask: np.ndarray) -> float:
    return float(mask.sum()) / float(img.shape[0] * img.shape[1])


def is_red(c: tuple[int, ...]) -> bool:
    return c[0] >= 170 and c[1] <= 80 and c[2] <= 80


def beijing(t: pd.Timestamp) -> pd.Timestamp:
    return t.tz_convert("Asia/Shanghai")


# -- the tests, in the order a user would go ---------------------------------------------------------


def test_the_page_loads_with_no_console_errors_and_draws_terrain_and_layers(desktop: Viewer):
    page = desktop.page
    assert page.evaluate("() => document.documentElement.lang") == "zh-CN"  # Chinese by default
    assert "北京时间 (UTC+8)" in desktop.text("#time-label")
    assert "砷" in desktop.text("#parameter") and "毫克/升" in desktop.text("#parameter")
    assert desktop.text(".tabs button[data-tab='layers']") == "图层"
    assert page.locator("#simulated-badge").is_visible()  # the demo's readings are labelled simulated

    desktop.image("01-loaded-2d")
    img = desktop.image("01-map-2d", "#map")
    lum = img.mean(axis=2)
    assert lum.std() > 20, "the map is (nearly) uniform: nothing was drawn"
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    green = (g > r + 10) & (g > b + 10)  # the low valleys of the terrain ramp
    brown = (r > g + 5) & (g > b + 5) & (r - b > 25)  # its slopes and summits
    assert share(img, green) > 0.05, f"too few terrain greens: {share(img, green):.3f}"
    assert share(img, brown) > 0.05, f"too few terrain browns: {share(img, brown):.3f}"
    river = np.all(np.abs(img - np.array(RIVER)) <= 40, axis=2)
    dep = np.all(np.abs(img - np.array(DEPARTEMENT)) <= 40, axis=2)
    assert river.sum() > 2000, f"the rivers are not drawn ({river.sum()} pixels)"
    assert dep.sum() > 300, f"the Lozère-Gard boundary is not drawn ({dep.sum()} pixels)"
    assert desktop.rendered("stations") == 8
    for layer in ("rivers", "boundaries-departement", "sections", "sites", "incidents"):
        assert desktop.rendered(layer) > 0, layer
    desktop.check_no_problems()


def test_the_layer_switcher_hides_layers_and_changes_the_basemap(desktop: Viewer):
    page = desktop.page
    page.click(".tabs button[data-tab='layers']")

    def greens(img: np.ndarray) -> float:
        return share(img, (img[..., 1] > img[..., 0] + 10) & (img[..., 1] > img[..., 2] + 10))

    def river_pixels(img: np.ndarray) -> int:
        return int(np.all(np.abs(img - np.array(RIVER)) <= 40, axis=2).sum())

    before = desktop.image("01-map-before-switching", "#map")
    rivers = page.locator("#overlays input[data-layer='rivers']")
    rivers.uncheck()
    desktop.settle()
    without = desktop.image("01-no-rivers", "#map")
    assert desktop.rendered("rivers") == 0
    assert river_pixels(without) < 0.2 * river_pixels(before), "hidden rivers are still drawn"
    rivers.check()
    page.locator("input[name='basemap'][value='subbasins']").check()
    desktop.settle()
    basins = desktop.image("01-subbasins", "#map")
    assert greens(basins) < 0.5 * greens(before), "the sub-basins basemap still looks like the terrain"
    page.locator("input[name='basemap'][value='terrain']").check()
    desktop.settle()
    assert desktop.rendered("rivers") > 0
    assert greens(desktop.image("01-terrain-again", "#map")) > 0.8 * greens(before)
    desktop.check_no_problems()


def test_the_time_slider_recolours_a_station(desktop: Viewer, scenario, sites):
    basin, truth = scenario
    rows = basin.readings.query(["GM-MIALET"], ["As"])
    peak = rows.loc[rows["value"].idxmax(), "time"]  # the plume's peak at Mialet, as read there
    assert abs(peak - pd.Timestamp(truth["peak_arrivals"]["GM-MIALET"])) <= pd.Timedelta(hours=2)
    mialet = desktop.point(*sites["GM-MIALET"])

    before = desktop.colour_at(desktop.image("02-slider-latest"), *mialet)
    assert not is_red(before), f"Mialet is already red at the latest reading: {before}"
    index = desktop.page.evaluate("(t) => twinViewer.times.indexOf(t)", peak.isoformat())
    assert index >= 0, f"{peak.isoformat()} is not a stop of the slider"
    desktop.page.locator("#time-slider").fill(str(index))
    desktop.settle()
    after = desktop.colour_at(desktop.image("03-slider-mialet-peak"), *mialet)
    assert is_red(after), f"Mialet at its peak {peak} should be red (class 劣V), got {after}"
    local = beijing(peak)
    assert f"{local.year}年{local.month}月{local.day}日 {local:%H:%M} 北京时间 (UTC+8)" == desktop.text("#time-label")
    # play steps the slider through the readings; pause stops it
    desktop.page.click("#play")
    desktop.page.wait_for_function("(k) => twinViewer.index > k", arg=index)
    desktop.page.click("#play")
    desktop.page.locator("#time-slider").fill(str(index))
    desktop.settle()
    assert desktop.page.evaluate("() => twinViewer.index") == index
    desktop.check_no_problems()


def test_clicking_a_station_opens_its_chart(desktop: Viewer, sites):
    desktop.page.mouse.click(*desktop.point(*sites["GM-MIALET"]))
    desktop.settle()
    page = desktop.page
    assert page.locator("#tab-details").is_visible()
    assert "米亚莱" in desktop.text("#details .station-title")
    chart = page.locator("#details svg.series-chart")
    assert chart.count() == 1
    bands = {int(c) for c in chart.locator("rect[data-class]").evaluate_all("(es) => es.map((e) => e.dataset.class)")}
    assert {1, 6} <= bands, f"the GB 3838 class bands of As: I up to 0.05 mg/L, 劣V above 0.1; drawn: {bands}"
    assert chart.locator("rect.warning-period[data-level='4']").count() == 1  # Mialet's red warning
    assert chart.get_attribute("data-scale") == "log"  # background 0.002 mg/L, peak 0.9: three decades
    assert len(chart.locator("path.series").get_attribute("d") or "") > 100
    assert chart.locator("line.cursor").count() == 1
    assert "劣V类" in desktop.text("#details dl.now")
    assert "红色预警" in desktop.text("#details dl.now")
    pixels = desktop.image("04-station-chart-panel", "#details")
    assert (np.array([is_red(tuple(p)) for p in pixels.reshape(-1, 3)[::7]])).any()  # the red warning drawn
    desktop.image("04-station-chart")
    desktop.check_no_problems()


def test_switching_to_3d_tilts_the_map_over_the_terrain(desktop: Viewer):
    flat = desktop.image("05-map-2d", "#map")
    desktop.page.click("#view-mode button[data-mode='3d']")
    desktop.settle()
    page = desktop.page
    assert page.evaluate("() => twinViewer.map.getPitch()") > 30
    assert page.evaluate("() => twinViewer.map.getTerrain()?.source") == "dem"
    tilted = desktop.image("05-map-3d", "#map")
    desktop.image("05-3d")
    assert np.abs(tilted.mean(axis=2) - flat.mean(axis=2)).mean() > 10, "the 3D view looks like the 2D one"
    r, g, b = tilted[..., 0], tilted[..., 1], tilted[..., 2]
    assert share(tilted, (g > r + 10) & (g > b + 10)) > 0.05, "no terrain colours in 3D"
    # the terrain is raised from the terrain-RGB tiles: the map knows the ground's height under its centre
    assert page.evaluate("() => twinViewer.map.queryTerrainElevation(twinViewer.map.getCenter())") > 100
    for layer in ("rivers", "stations", "boundaries-departement"):
        assert desktop.rendered(layer) > 0, f"{layer} is not drawn on the terrain"
    page.click("#view-mode button[data-mode='2d']")
    desktop.settle()
    assert page.evaluate("() => twinViewer.map.getPitch()") == 0
    desktop.check_no_problems()


def test_the_trace_tool_draws_the_lozere_to_gard_path_and_a_plume(desktop: Viewer, sites, scenario):
    page = desktop.page
    page.click("#trace-tool")
    assert page.locator("#trace-hint").is_visible()
    page.mouse.click(*desktop.point(*sites["MINE-MOISSAC"]))
    desktop.settle()
    assert desktop.text("#trace-chain") == "Lozère → Gard"
    table = desktop.text("#details table.entries")
    for name in ("圣艾蒂安瓦莱弗朗塞斯", "Lozère → Gard", "米亚莱", "昂迪兹", "昂迪兹饮用水取水口"):
        assert name in table, name
    assert "小时" in table  # arrival times, in hours after the release
    assert desktop.rendered("trace") > 0
    labels = page.locator(".map-label.arrival").all_inner_texts()
    assert any(t.startswith("Lozère → Gard") for t in labels), labels
    # the plume: at the release time it has not moved; six hours on it is in the river below the mine
    index = page.evaluate("() => twinViewer.index")
    page.locator("#time-slider").fill(str(index + 3))
    desktop.settle()
    assert desktop.rendered("plume") > 0
    assert "排放后 6 小时" in desktop.text("#legend")
    desktop.image("06-trace-and-plume")
    # the path's own pixels: what changes on the map when the layer switcher hides it (labels aside)
    page.click(".tabs button[data-tab='layers']")
    # labels hidden through the CSSOM (the page's CSP refuses an injected <style>, as it should)
    labels = "(v) => document.querySelectorAll('.map-label').forEach((e) => { e.style.visibility = v; })"
    page.evaluate(labels, "hidden")
    shown = desktop.image("06-trace-path", "#map")
    try:
        page.locator("#overlays input[data-layer='trace']").uncheck()
        desktop.settle()
        page.evaluate(labels, "hidden")
        hidden = desktop.image("06-trace-path-hidden", "#map")
        page.locator("#overlays input[data-layer='trace']").check()
    finally:
        page.evaluate(labels, "")
    desktop.settle()
    changed = np.abs(shown - hidden).sum(axis=2) > 60
    assert changed.sum() > 1500, f"the traced path is not drawn ({changed.sum()} pixels)"
    pinkish = (shown[..., 0] > shown[..., 1] + 40) & (shown[..., 2] > shown[..., 1])
    assert (changed & pinkish).sum() > 0.5 * changed.sum(), "the traced path is not drawn in its colour"
    desktop.check_no_problems()


def test_the_warning_list_shows_response_plans_per_jurisdiction(desktop: Viewer):
    page = desktop.page
    page.click(".tabs button[data-tab='warnings']")
    items = page.locator("#warning-list [data-warning]")
    assert items.count() == 9  # As, Pb and Cd at Saint-Étienne, Mialet and Anduze
    page.click("[data-warning='GM-MIALET.As.20260903T1400Z']")
    desktop.settle()
    details = desktop.text("#details")
    assert "红色预警 · 米亚莱" in details
    assert "各辖区响应预案" in details
    plans = page.locator("#details section.plan")
    assert plans.count() >= 1
    assert "Gard" in plans.first.inner_text()
    assert "关闭饮用水取水口" in plans.first.inner_text()  # the red action, in Chinese
    assert "昂迪兹饮用水取水口" in plans.first.inner_text()  # the intake downstream, with its arrival
    desktop.image("07-warning-plan")
    desktop.check_no_problems()


def test_an_incident_shows_its_details_and_downstream_report(desktop: Viewer):
    page = desktop.page
    page.click(".tabs button[data-tab='warnings']")
    page.click("#incident-list [data-incident='1']")
    desktop.settle()
    details = desktop.text("#details")
    assert "事件 #1：死鱼" in details
    assert "下游影响报告" in details
    assert "昂迪兹饮用水取水口" in desktop.text("#details table.entries")
    desktop.image("08-incident")
    desktop.check_no_problems()


def test_the_language_switch_changes_labels_dates_and_units(desktop: Viewer):
    page = desktop.page
    page.click("#language button[data-lang='en']")
    desktop.settle()
    assert page.evaluate("() => document.documentElement.lang") == "en"
    assert desktop.text(".tabs button[data-tab='layers']") == "Layers"
    assert desktop.text("#time-label").endswith("Beijing time (UTC+8)")
    assert "arsenic (As) · mg/L" in desktop.text("#parameter")
    assert "Incident #1: fish kill" in desktop.text("#details")
    assert "Downstream report" in desktop.text("#details")
    assert "Worse than V" in desktop.text("#legend")
    assert "Mialet" in page.locator(".station-label").all_inner_texts()
    assert "km" in desktop.text(".maplibregl-ctrl-scale")
    desktop.image("09-english")
    page.click("#language button[data-lang='zh']")
    desktop.settle()
    assert desktop.text(".tabs button[data-tab='layers']") == "图层"
    assert "公里" in desktop.text(".maplibregl-ctrl-scale")
    desktop.check_no_problems()


def test_a_tablet_sized_screen_stacks_the_panel_under_the_map(browser: Any, server: Server, sites):
    tablet = Viewer(browser, server, TABLET)
    try:
        page = tablet.page
        map_box = page.locator("#map").bounding_box()
        panel_box = page.locator("#panel").bounding_box()
        assert map_box and panel_box
        assert panel_box["y"] >= map_box["y"] + map_box["height"] - 1, "the panel should be under the map"
        assert map_box["width"] >= TABLET["width"] - 2 and map_box["height"] > 400
        assert page.evaluate("() => document.documentElement.scrollWidth") <= TABLET["width"]
        timebar = page.locator("#timebar").bounding_box()
        assert timebar and timebar["x"] >= 0 and timebar["x"] + timebar["width"] <= TABLET["width"]
        img = tablet.image("10-tablet-map", "#map")
        assert img.mean(axis=2).std() > 20
        page.mouse.click(*tablet.point(*sites["GM-STETIENNE"]))
        tablet.settle()
        assert page.locator("#details svg.series-chart").is_visible()
        tablet.image("10-tablet-station")
        page.click("#panel-toggle")
        tablet.settle()
        assert not page.locator("#panel").is_visible()
        assert page.locator("#map").bounding_box()["height"] > map_box["height"] + 300  # type: ignore[index]
        tablet.image("10-tablet-panel-collapsed")
        tablet.check_no_problems()
    finally:
        tablet.page.close()


def test_without_the_vendored_library_the_page_names_the_command(scenario, tmp_path, caplog):
    app = create_app(scenario[0].path, testing=True)
    app.static_folder = str(tmp_path)  # a static folder without twin_web/static/vendor
    with caplog.at_level(logging.WARNING, logger="twin_web.viewer"):
        page = authorised(app.test_client(), make_token(scenario[0].path, "viewer-admin", "admin")).get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert VENDOR_COMMAND in html and 'id="vendor-missing"' in html
    assert '<script src="/static/vendor' not in html  # no script tag for a missing file
    assert any(VENDOR_COMMAND in r.getMessage() for r in caplog.records)


# -- the routes the viewer added (twin_web/viewer_api.py), through Flask's test client ---------------------


@pytest.fixture(scope="module")
def client(scenario):
    tok = make_token(scenario[0].path, "viewer-admin", "admin")
    return authorised(create_app(scenario[0].path, testing=True).test_client(), tok)


def test_the_viewer_opens_on_the_parameter_of_the_latest_warning_at_its_last_reading(client, scenario):
    basin, _ = scenario
    setup = client.get("/api/viewer/").get_json()
    assert setup["default"]["parameter"] == "As"  # the mine-leak's red warnings are on As, Pb and Cd
    last = basin.readings.query(None, ["As"])["time"].max()
    assert setup["default"]["at"] == last.isoformat()
    params = {p["id"]: p for p in setup["parameters"]}
    assert {"As", "Pb", "Cd", "DO", "pH"} <= set(params)
    assert params["As"]["unit"] == "mg/L" and params["As"]["name_zh"] == "砷" and params["As"]["classified"]
    assert setup["simulated"] is True
    assert setup["levels"][0] == "departement"
    assert client.get("/api/viewer/?x=1").status_code == 400


def test_the_slider_stops_at_every_reading_time_with_the_warning_periods(client, scenario):
    basin, _ = scenario
    body = client.get("/api/viewer/times?parameter=As").get_json()
    read = basin.readings.query(None, ["As"])["time"]
    assert body["time"] == [t.isoformat() for t in sorted(read.unique())]
    assert {(w["station"], w["level_name"]) for w in body["warnings"]} == {
        ("GM-STETIENNE", "red"),
        ("GM-MIALET", "red"),
        ("GD-ANDUZE", "red"),
    }
    bad = client.get("/api/viewer/times?parameter=arsenic")
    assert bad.status_code == 400 and bad.get_json()["parameter"] == "parameter"


def test_the_plume_over_time_travels_downstream_from_the_release(client, scenario):
    _, truth = scenario
    src = truth["source"]
    query = f"lon={src['lon']}&lat={src['lat']}&release_at=2026-09-03T00:00Z&mass_kg=40&parameter=As"
    body = client.get(f"/api/viewer/plume?{query}").get_json()
    conc = np.array(body["concentration_mg_l"], dtype=float)
    assert conc.shape == (len(body["time"]), len(body["lon"])) == (len(body["time"]), 200)
    assert body["time"][0] == "2026-09-03T00:00:00+00:00"
    assert np.all(conc[0, 1:] == 0)  # nothing has travelled yet
    distance = np.array(body["distance_km"])
    hours = (pd.to_datetime(body["time"]) - pd.Timestamp("2026-09-03T00:00Z")).total_seconds() / 3600
    early = [k for k in range(1, len(hours)) if hours[k] <= 20]
    where = [distance[np.argmax(conc[k])] for k in early]
    assert all(b >= a for a, b in zip(where, where[1:])), "the peak should only move downstream"
    assert where[-1] > 15  # past the Lozère → Gard boundary (14.8 km below the mine) within 20 h
    assert conc.max() == pytest.approx(max(body["peak_mg_l"]))
    assert {b["label"] for b in body["class_bands"]} == {"I", "IV", "劣V"}
    for q, parameter in (
        ("lon=3.77&lat=44.16&release_at=2026-09-03T00:00Z", "mass_kg"),
        ("lon=10&lat=50&release_at=2026-09-03T00:00Z&mass_kg=1", "lon,lat"),
        (f"{query}&duration_h=40&step_minutes=1", "step_minutes"),  # over 40 h, 1 min is more than 2,000 steps
        (f"{query}&samples=1", "samples"),
    ):
        bad = client.get(f"/api/viewer/plume?{q}")
        assert bad.status_code == 400 and bad.get_json()["parameter"] == parameter, q


def test_a_researcher_gets_the_model_and_readings_but_no_incidents_or_warnings(browser: Any, server: Server, sites):
    viewer = Viewer(browser, server, DESKTOP, user="viewer-researcher")
    try:
        page = viewer.page
        shot = viewer.image("11-researcher")
        assert viewer.rendered("stations") >= 8  # the stations are drawn and coloured
        counts = page.evaluate("() => [twinViewer.incidents.features.length, twinViewer.warnings.features.length]")
        assert counts == [0, 0]
        assert shot.std() > 10  # the map is drawn, not a blank page
        # the panels say the lists are not permitted, not that there are none
        page.click(".tabs button[data-tab='warnings']")
        assert viewer.text("#incident-list") == "您的角色无权查看"
        assert viewer.text("#warning-list") == "您的角色无权查看"
        assert page.locator("#colour-by option[value='warning']").is_disabled()
        page.mouse.click(*viewer.point(*sites["GM-MIALET"]))
        viewer.settle()
        assert "您的角色无权查看" in viewer.text("#details dl.now")  # the station's warning
        assert "您的角色无权查看" in viewer.text("#details ul.periods")
        assert "红色预警" not in viewer.text("#details")
        page.click("#language button[data-lang='en']")
        viewer.settle()
        page.click(".tabs button[data-tab='warnings']")
        assert viewer.text("#incident-list") == "Not permitted for your role"
        assert viewer.text("#warning-list") == "Not permitted for your role"
        viewer.image("11-researcher-not-permitted")
        page.click("#language button[data-lang='zh']")
        viewer.check_no_problems()  # no 403 was asked for, nothing failed, no CSP violation
    finally:
        viewer.page.close()


def test_every_page_the_viewer_loads_runs_under_its_content_security_policy(desktop: Viewer, server: Server):
    """The page carries the policy, MapLibre runs under it (no violation reached the console), inline script is refused."""
    page = desktop.page
    policy = page.evaluate(
        "async () => (await fetch(location.href, {credentials: 'same-origin'})).headers.get('content-security-policy')"
    )
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "worker-src 'self' blob:" in policy
    ran = page.evaluate(
        """() => new Promise((resolve) => {
            window.__inlineRan = false;
            const s = document.createElement('script');
            s.textContent = 'window.__inlineRan = true';
            document.addEventListener('securitypolicyviolation', () => resolve(window.__inlineRan), {once: true});
            document.body.appendChild(s);
        })"""
    )
    assert ran is False  # an injected inline script is refused
    desktop.problems[:] = [p for p in desktop.problems if "Content Security Policy" not in p]  # that one, on purpose
    desktop.check_no_problems()
