"""The offline 3D page (``scene.save("x.html")``) in a real browser: opened from disk, network off, it draws.

Debian's Chromium driven by Playwright, with the launch flags of the viewer's browser tests
(SwiftShader's WebGL 2, so the page's own WebGL viewer really draws). The page is opened as a
``file://`` URL in a context with the network disabled; every request the page makes is recorded,
and the only one allowed is the file itself. The screenshot, with the HTML labels and captions
hidden so that only the canvas counts, is saved to ``test-artifacts/scene-viewer/``.

Needs ``/usr/bin/chromium`` and the ``playwright`` package (no browser download); without them the
test fails saying what to install: it is not skipped.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from twin.scene import style

from .test_web_browser import CHROMIUM, CHROMIUM_ARGS

ARTEFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "scene-viewer"
SIZE = (640, 400)
#: what the page has drawn once every label has been placed by its draw() (only draw() sets their display)
DRAWN = """() => {
  const labels = [...document.querySelectorAll(".label")];
  return labels.length > 0 && labels.every((l) => l.style.display !== "");
}"""
#: two animation frames: the frame drawn has reached the screen
TWO_FRAMES = "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"


def test_the_offline_scene_page_draws_the_valley_with_the_network_off(make_saved_valley, tmp_path):
    missing = [f"Chromium at {CHROMIUM}: apt-get install -y chromium"] if not CHROMIUM.is_file() else []
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("the playwright package: .venv/bin/pip install playwright (no browser download is needed)")
    if missing:
        pytest.fail("the scene's browser test needs: " + "; ".join(missing), pytrace=False)

    basin = make_saved_valley({"UP": (10, "station"), "LOW": (35, "intake")})
    with basin.scene(size=SIZE) as scene:
        page_file = scene.save(tmp_path / "valley.html")
        labels = len(scene.labels)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(offline=True, viewport={"width": SIZE[0], "height": SIZE[1]})
            requests: list[str] = []
            problems: list[str] = []
            context.on("request", lambda r: requests.append(r.url))
            page = context.new_page()
            page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
            page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
            page.set_default_timeout(60_000)
            page.goto(page_file.as_uri())
            page.wait_for_function(DRAWN)
            page.evaluate(TWO_FRAMES)
            error = page.locator("#error").inner_text()
            placed = page.locator(".label").count()
            page.add_style_tag(content="#captions, .label, #error { visibility: hidden !important; }")
            shot = page.locator("#view").screenshot(path=str(ARTEFACTS / "valley.png"))
        finally:
            browser.close()

    assert requests == [page_file.as_uri()], "requests beyond the page's own file"
    assert problems == [] and error == ""
    assert placed == labels > 0
    img = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).astype(int)
    assert img.shape[:2] == (SIZE[1], SIZE[0])
    colours = len(np.unique(img.reshape(-1, 3), axis=0))
    assert colours > 100, f"{colours} colours: the canvas is blank or flat"  # a blank canvas has one
    terrain = np.any(img != style.BACKGROUND, axis=2).mean()
    assert terrain > 0.25, f"only {terrain:.0%} of the canvas is drawn on"  # the overview frames the valley
    river = np.all(np.abs(img - style.RIVER_RGB[0]) <= 12, axis=2).sum()
    assert river > 50, f"{river} pixels of the river's colour"  # its first-order river, down the valley floor
