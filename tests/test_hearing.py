"""The hearing view: a case's bundle opened by a judge's signed, expiring link, verified in Chromium.

A copy of the demo twin after the mine-leak scenario (see :func:`tests.webauth.mine_leak_case`);
the hearing is made on the command line (``twin hearing create``), as a clerk would.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from twin.cli import cli
from twin.evidence import verify_bundle
from twin.evidence.keys import public_key
from twin_web import create_app
from twin_web.server import Server

from .test_web_browser import ARTEFACTS, CHROMIUM, CHROMIUM_ARGS, missing_requirements
from .webauth import AGENCY, CASE, CASE_LOZERE, bearer, mine_leak_case


@pytest.fixture(scope="module")
def case(demo_dir, tmp_path_factory):
    return mine_leak_case(demo_dir, tmp_path_factory.mktemp("hearing") / "cevennes")


@pytest.fixture(scope="module")
def server(case) -> Iterator[Server]:
    with Server(create_app(case["basin"].path, testing=True), threads=4) as s:
        yield s


def create(case: dict, server: Server, *extra: str) -> dict[str, Any]:
    args = ["hearing", "create", str(case["basin"].path), "--case", CASE, "--judge", "judge", "--by", "clerk"]
    out = CliRunner().invoke(cli, [*args, "--base-url", server.url, *extra])
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def hearing(case, server) -> dict[str, Any]:
    """The hearing of the scenario's case, with its overlays, for 48 hours."""
    return create(case, server, "--hours", "48")


def path_of(link: str) -> tuple[str, str]:
    parts = urlsplit(link)
    return parts.path, parts.query


def test_the_clerk_gets_a_signed_link_and_the_bundle_verifies_offline(case, hearing, server):
    assert hearing["link"].startswith(server.url + "hearing/" + hearing["hearing"] + "?exp=")
    q = parse_qs(urlsplit(hearing["link"]).query)
    assert int(q["exp"][0]) == hearing["expires"] and time.time() + 47 * 3600 < hearing["expires"]
    again = case["access"].link(case["access"].hearing(hearing["hearing"]), server.url)
    assert again == hearing["link"] and q["sig"][0]  # signed, and the same link when asked for again
    published = public_key(case["basin"].path, AGENCY).fingerprint  # what the agency publishes
    report = verify_bundle(hearing["bundle"], trusted=[published])
    assert report.ok, report.lines()


def test_the_link_opens_the_hearing_and_nothing_else(app_client, hearing, case):
    path, query = path_of(hearing["link"])
    c = app_client
    assert c.get(f"{path}?{query}").status_code == 200
    data = c.get(f"{path}/data.json?{query}").get_json()
    sha = case["shas"][CASE]
    assert [i["sha256"] for i in data["items"]] == [sha] and data["overlays"] == ["map.png", "scene.png"]
    assert any("acquired" in e["what"] for e in data["timeline"])
    assert c.get(f"{path}/files/{sha}?{query}").status_code == 200
    assert c.get(f"{path}/overlays/map.png?{query}").mimetype == "image/png"
    # not a file of another case, nor any other part of the twin
    assert c.get(f"{path}/files/{case['shas'][CASE_LOZERE]}?{query}").status_code == 404
    for url in ("/api/collections", "/tiles/", f"/api/cases/{CASE}/evidence", "/api/viewer/", f"/api/cases/?{query}"):
        assert c.get(url).status_code == 401, url
    assert c.get("/").status_code == 302
    # without the signature, or with a wrong one
    assert c.get(path).status_code == 401
    assert c.get(f"{path}?exp={hearing['expires']}&sig={'0' * 64}").status_code == 403
    assert c.get(f"{path}?exp={hearing['expires'] + 3600}&{query.split('&')[1]}").status_code == 403


@pytest.fixture
def app_client(case):
    return create_app(case["basin"].path, testing=True).test_client()


def test_a_judges_link_stops_working_at_its_expiry(case, server, app_client):
    h = create(case, server, "--hours", "1", "--no-overlays")
    path, query = path_of(h["link"])
    assert app_client.get(f"{path}?{query}").status_code == 200
    access = case["access"]
    moved = access.set_expiry(h["hearing"], int(time.time()) - 60)  # as if its hour had passed
    expired = access.link(moved, "/")
    resp = app_client.get(expired)
    assert resp.status_code == 403 and "expired" in resp.get_json()["description"]
    assert app_client.get(f"{path}?{query}").status_code == 403  # the old link is no longer the hearing's
    judge = bearer(case["tokens"]["judge"])
    assert app_client.get(path, headers=judge).status_code == 403


def test_a_judge_sees_their_hearings_only_and_nothing_else(case, hearing, app_client):
    path, _ = path_of(hearing["link"])
    judge, other = bearer(case["tokens"]["judge"]), bearer(case["tokens"]["judge2"])
    assert app_client.get(path, headers=judge).status_code == 200
    assert app_client.get(path, headers=other).status_code == 403
    for url in ("/api/collections", "/tiles/", "/api/cases/", f"/api/cases/{CASE}/evidence"):
        assert app_client.get(url, headers=judge).status_code == 403, url


def test_opening_and_reading_the_hearing_is_logged(case, hearing, app_client):
    path, query = path_of(hearing["link"])
    sha = case["shas"][CASE]
    app_client.get(f"{path}/files/{sha}?{query}")
    out = CliRunner().invoke(cli, ["audit", str(case["basin"].path), "--case", CASE, "--kind", "access"])
    entries = [json.loads(line) for line in out.stdout.splitlines()]
    reads = [e for e in entries if e["what"].get("action") == "hearing-file" and e["item"] == sha]
    assert reads and reads[-1]["actor"] == f"judge (hearing link {hearing['hearing']})"
    assert reads[-1]["what"]["hearing"] == hearing["hearing"]
    exports = CliRunner().invoke(cli, ["audit", str(case["basin"].path), "--case", CASE, "--kind", "export"]).stdout
    assert "clerk" in exports  # the hearing's bundle is an export, by who made it


# -- in the browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = missing_requirements()
    if missing:
        pytest.fail("the browser tests need: " + "; ".join(missing), pytrace=False)
    from playwright.sync_api import sync_playwright

    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_hearing(browser: Any, link: str, shot: str) -> tuple[Any, list[dict[str, str]]]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(60_000)
    page.goto(link)
    page.wait_for_function("() => window.twinHearing && window.twinHearing.ready")
    page.wait_for_function("() => [...document.images].every((i) => i.complete && i.naturalWidth > 0)")
    rows = page.eval_on_selector_all(
        "#evidence tbody tr",
        "rows => rows.map(r => ({sha: r.dataset.sha256, status: r.dataset.status, text: r.querySelector('td.check').textContent}))",
    )
    page.screenshot(path=str(ARTEFACTS / f"{shot}.png"), full_page=True)
    return page, rows


def test_in_the_browser_every_item_verifies_and_a_tampered_file_fails(browser, case, hearing):
    page, rows = open_hearing(browser, hearing["link"], "hearing-verified")
    try:
        assert rows and all(r["status"] == "verified" and r["text"].startswith("✓") for r in rows), rows
        assert page.locator("#timeline li").count() >= 3
        assert "all 1 items verified" in page.inner_text("#summary")
    finally:
        page.close()
    sha = case["shas"][CASE]
    stored = case["access"].ledger.files.path(sha)  # the file the page fetches
    mode = stored.stat().st_mode
    original = stored.read_bytes()
    os.chmod(stored, 0o600)
    try:
        stored.write_bytes(original[:100] + bytes([original[100] ^ 0x01]) + original[101:])
        page, rows = open_hearing(browser, hearing["link"], "hearing-tampered")
        try:
            assert [(r["sha"], r["status"]) for r in rows] == [(sha, "failed")]
            assert rows[0]["text"].startswith("✗")
            assert "FAILED" in page.inner_text("#summary")
        finally:
            page.close()
    finally:
        stored.write_bytes(original)
        os.chmod(stored, mode)
