"""Who may do what, over HTTP: every role against every endpoint, scoping by jurisdiction, sharing, readings, hardening.

The twin is a copy of the demo after the mine-leak scenario with two cases recorded by
Lozère (see :func:`tests.webauth.mine_leak_case`); one user per role.
"""

from __future__ import annotations

import json
import stat

import pytest
from click.testing import CliRunner

from twin.access import ROLES, Resource, User, can, codes_of
from twin.cli import cli
from twin.hj212 import frame
from web import create_app

from .webauth import CASE, CASE_LOZERE, PASSWORD, bearer, mine_leak_case


@pytest.fixture(scope="module")
def case(demo_dir, tmp_path_factory):
    return mine_leak_case(demo_dir, tmp_path_factory.mktemp("access") / "cevennes")


@pytest.fixture(scope="module")
def app(case):
    return create_app(case["basin"].path, testing=True)


def reading(station: str = "GM-MIALET", value: float = 0.012, hour: int = 6) -> dict:
    return {
        "station": station,
        "time": f"2026-09-20T{hour:02d}:00+02:00",
        "parameter": "As",
        "value": value,
        "unit": "mg/L",
    }


OK, FORBIDDEN, NONE = 200, 403, 401
#: (endpoint, method, expected status by user; missing users: 403)
ENDPOINTS = {
    "viewer page": ("GET", "/", {"admin": 200, "lozere": 200, "gard": 200, "researcher": 200}),
    "tile layers": ("GET", "/tiles/", {"admin": 200, "lozere": 200, "gard": 200, "researcher": 200}),
    "a tilejson": (
        "GET",
        "/tiles/hillshade/tilejson.json",
        {"admin": 200, "lozere": 200, "gard": 200, "researcher": 200},
    ),
    "openapi": ("GET", "/api/openapi.json", {"admin": 200, "lozere": 200, "gard": 200, "researcher": 200}),
    "reaches": (
        "GET",
        "/api/collections/reaches/items?limit=2",
        {"admin": 200, "lozere": 200, "gard": 200, "researcher": 200},
    ),
    "stations": (
        "GET",
        "/api/collections/stations/items?limit=2",
        {"admin": 200, "lozere": 200, "gard": 200, "researcher": 200},
    ),
    "station series": (
        "GET",
        "/api/slices/stations/GM-MIALET?parameter=As",
        {"admin": 200, "lozere": 200, "gard": 200, "researcher": 200},
    ),
    "viewer set-up": ("GET", "/api/viewer/", {"admin": 200, "lozere": 200, "gard": 200, "researcher": 200}),
    "incidents": ("GET", "/api/collections/incidents/items", {"admin": 200, "lozere": 200, "gard": 200}),
    "warnings": ("GET", "/api/collections/warnings/items", {"admin": 200, "lozere": 200, "gard": 200}),
    "cases": ("GET", "/api/cases/", {"admin": 200, "lozere": 200, "gard": 200}),
    "a Lozère case": ("GET", f"/api/cases/{CASE}/evidence", {"admin": 200, "lozere": 200}),
    "post readings": ("POST", "/api/readings", {"admin": 200, "mialet": 200}),
}
USERS = ["admin", "lozere", "gard", "researcher", "judge", "mialet", None]


@pytest.mark.parametrize("user", USERS, ids=lambda u: u or "no-token")
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_every_role_against_every_endpoint(app, case, endpoint, user):
    method, url, allowed = ENDPOINTS[endpoint]
    headers = bearer(case["tokens"][user]) if user else {}
    client = app.test_client()
    if method == "POST":
        resp = client.post(url, json=[reading(hour=USERS.index(user) if user else 0)], headers=headers)
    else:
        resp = client.get(url, headers=headers)
    want = (302 if url == "/" else NONE) if user is None else allowed.get(user, FORBIDDEN)
    assert resp.status_code == want, (endpoint, user, resp.get_data(as_text=True)[:300])
    if want == 302:
        assert resp.headers["Location"].startswith("/login?next=")
    elif want in (NONE, FORBIDDEN):
        assert resp.get_json()["status"] == want


def test_the_policy_table_answers_for_each_role():
    assert set(ROLES) == {"admin", "investigator", "researcher", "judge", "station"}
    gard = User(1, "gard", "investigator", frozenset({"30"}))
    lozere_case = Resource(frozenset({"48", "48001"}), case_id="C")
    assert can(gard, "evidence.read") and not can(gard, "evidence.read", lozere_case)
    assert can(
        User(1, "gard", "investigator", frozenset({"30"}), shared_cases=frozenset({"C"})), "evidence.read", lozere_case
    )
    assert not can(User(2, "r", "researcher"), "incidents.read")
    assert can(User(3, "s", "station", stations=frozenset({"A"})), "readings.post", Resource(station="A"))
    assert not can(User(3, "s", "station", stations=frozenset({"A"})), "readings.post", Resource(station="B"))
    assert not can(User(4, "j", "judge"), "hearing.view", Resource(judge_id=5))
    assert not can(None, "model.read")
    assert codes_of("Lozère (48) > Florac (48001)") == {"48", "48001"}


def test_an_investigator_sees_incidents_and_warnings_of_their_jurisdictions_only(app, case):
    tok = case["tokens"]
    # the fish kill is in Gard; the warnings are at stations in both départements
    gard = app.test_client().get("/api/collections/incidents/items", headers=bearer(tok["gard"])).get_json()
    assert gard["numberMatched"] == 1
    lozere = app.test_client().get("/api/collections/incidents/items", headers=bearer(tok["lozere"])).get_json()
    assert lozere["numberMatched"] == 0
    assert app.test_client().get("/api/collections/incidents/items/1", headers=bearer(tok["lozere"])).status_code == 404
    every = app.test_client().get("/api/collections/warnings/items?limit=1000", headers=bearer(tok["admin"])).get_json()
    mine = app.test_client().get("/api/collections/warnings/items?limit=1000", headers=bearer(tok["lozere"])).get_json()
    theirs = app.test_client().get("/api/collections/warnings/items?limit=1000", headers=bearer(tok["gard"])).get_json()
    assert 0 < mine["numberMatched"] < every["numberMatched"]
    assert mine["numberMatched"] + theirs["numberMatched"] == every["numberMatched"]
    sites = case["basin"].sites.set_index("id")
    assert {sites.loc[f["properties"]["station"], "departement"] for f in mine["features"]} == {"48"}
    # a researcher does not even see that the collections exist
    listed = app.test_client().get("/api/collections", headers=bearer(tok["researcher"])).get_json()
    assert {c["id"] for c in listed["collections"]} == {"reaches", "sections", "jurisdictions", "stations", "sites"}


def test_a_gard_investigator_sees_a_lozere_case_only_once_it_is_shared(app, case):
    url = f"/api/cases/{CASE_LOZERE}/evidence"
    gard = bearer(case["tokens"]["gard"])
    refused = app.test_client().get(url, headers=gard)
    assert refused.status_code == 403 and "twin case share" in refused.get_json()["description"]
    folder = str(case["basin"].path)
    # only someone who sees the case may share it
    nope = CliRunner().invoke(cli, ["case", "share", folder, "--case", CASE_LOZERE, "--with", "30", "--by", "gard"])
    assert nope.exit_code == 1 and "may not share" in nope.output
    done = CliRunner().invoke(cli, ["case", "share", folder, "--case", CASE_LOZERE, "--with", "30", "--by", "lozere"])
    assert done.exit_code == 0, done.output
    shared = json.loads(done.stdout)
    assert shared["with"] == "30" and shared["by"] == "lozere"
    got = app.test_client().get(url, headers=gard)
    assert got.status_code == 200
    sha = case["shas"][CASE_LOZERE]
    assert [i["sha256"] for i in got.get_json()["items"]] == [sha]
    file = app.test_client().get(f"{url}/{sha}", headers=gard)
    assert file.status_code == 200 and file.mimetype == "image/png"
    # the scenario's case stays Lozère's (its items were taken there), though its fish kill is in Gard
    assert [c["case_id"] for c in app.test_client().get("/api/cases/", headers=gard).get_json()["cases"]] == [
        CASE_LOZERE
    ]
    # the share, the listing and the read are in the evidence log, with who
    audit = CliRunner().invoke(cli, ["audit", folder, "--case", CASE_LOZERE])
    entries = [json.loads(line) for line in audit.stdout.splitlines()]
    acts = [(e["actor"], e["what"].get("action")) for e in entries if e["kind"] == "access"]
    assert ("lozere", "share") in acts and ("gard", "list") in acts and ("gard", "get") in acts
    read = next(e for e in entries if e["actor"] == "gard" and e["what"].get("action") == "get")
    assert read["item"] == sha and read["time"]


def test_a_station_posts_its_readings_in_each_format_through_the_ingest_path(app, case):
    station = bearer(case["tokens"]["mialet"])
    c = app.test_client()
    as_json = c.post("/api/readings", json=[reading(value=0.02, hour=9), reading(value=0.02, hour=9)], headers=station)
    assert as_json.status_code == 200, as_json.get_data(as_text=True)
    report = as_json.get_json()
    assert report["stored"] == 1 and report["duplicates"] == 1 and report["source"] == "http:mialet"
    csv = "station,time,parameter,value,unit,flag\nGM-MIALET,2026-09-20T10:00+02:00,As,0.03,mg/L,\nGM-MIALET,2026-09-20T11:00,As,0.03,mg/L,\n"
    as_csv = c.post("/api/readings", data=csv, content_type="text/csv", headers=station).get_json()
    assert as_csv["stored"] == 1 and as_csv["rejected"] == 1 and as_csv["rejected_rows"][0]["line"] == 3
    line = frame(
        "QN=20260920120000000;ST=21;CN=2061;PW=123456;MN=GM-MIALET;Flag=5;CP=&&DataTime=20260920120000;w01001-Avg=7.4,w01001-Flag=N&&"
    )
    as_hj212 = c.post("/api/readings", data=line + "\r\n", content_type="text/plain", headers=station).get_json()
    assert as_hj212["stored"] == 1 and as_hj212["format"] == "hj212"
    stored = case["basin"].readings.query(["GM-MIALET"], ["As"], "2026-09-20T00:00Z", "2026-09-21T00:00Z")
    assert {round(v, 3) for v in stored["value"]} >= {0.02, 0.03}


def test_a_station_posting_for_another_station_is_refused_whole(app, case):
    station = bearer(case["tokens"]["mialet"])
    before = len(case["basin"].readings.query(["GM-MIALET"], ["As"]))
    resp = app.test_client().post(
        "/api/readings", json=[reading(value=0.5, hour=13), reading("GM-STETIENNE", 0.5, 13)], headers=station
    )
    assert resp.status_code == 403 and "GM-STETIENNE" in resp.get_json()["description"]
    assert len(case["basin"].readings.query(["GM-MIALET"], ["As"])) == before
    bad = app.test_client().post("/api/readings", data="x", content_type="image/png", headers=station)
    assert bad.status_code == 415
    assert (
        app.test_client()
        .post("/api/readings", data="[1]", content_type="application/json", headers=station)
        .status_code
        == 400
    )


def test_ingest_and_login_are_rate_limited_and_bodies_are_bounded(case):
    folder = case["basin"].path
    app = create_app(folder, testing=True, rate_ingest=(2, 0.01), rate_login=(3, 0.01), max_content_length=2000)
    station = bearer(case["tokens"]["mialet"])
    codes = [
        app.test_client().post("/api/readings", json=[reading(hour=14)], headers=station).status_code for _ in range(3)
    ]
    assert codes == [200, 200, 429]
    limited = app.test_client().post("/api/readings", json=[reading(hour=14)], headers=station)
    assert limited.get_json()["code"] == "TooManyRequests" and int(limited.headers["Retry-After"]) >= 1
    big = app.test_client().post(
        "/api/readings", json=[reading(hour=15)] * 100, headers=bearer(case["tokens"]["admin"])
    )
    assert big.status_code == 413
    c = app.test_client()
    page = c.get("/login").get_data(as_text=True)
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    tries = [
        c.post("/login", data={"username": "admin", "password": "wrong password", "csrf_token": csrf}).status_code
        for _ in range(4)
    ]
    assert tries == [401, 401, 401, 429]


def test_the_login_form_needs_its_csrf_token_and_sets_a_safe_cookie(case):
    app = create_app(case["basin"].path, testing=True)
    c = app.test_client()
    assert c.post("/login", data={"username": "lozere", "password": PASSWORD}).status_code == 400
    page = c.get("/login?next=/api/viewer/").get_data(as_text=True)
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    resp = c.post("/login?next=/api/viewer/", data={"username": "lozere", "password": PASSWORD, "csrf_token": csrf})
    assert resp.status_code == 302 and resp.headers["Location"] == "/api/viewer/"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert c.get("/api/viewer/").status_code == 200  # the session works
    # writes under /api take a token, never the cookie
    assert c.post("/api/readings", json=[reading()]).status_code == 403
    # no open redirect after login
    https = app.test_client()
    page = https.get("/login", base_url="https://twin.example").get_data(as_text=True)
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    resp = https.post(
        "/login?next=//evil.example/",
        data={"username": "lozere", "password": PASSWORD, "csrf_token": csrf},
        base_url="https://twin.example",
    )
    assert resp.headers["Location"] == "/" and "Secure" in resp.headers["Set-Cookie"]


def test_the_secret_is_made_at_first_start_with_strict_modes(case):
    folder = case["basin"].path
    secrets = folder / "secrets"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    assert stat.S_IMODE((secrets / "web.key").stat().st_mode) == 0o600
    access = case["access"]
    assert all(len(t) > 40 for t in case["tokens"].values())
    with access.engine.connect() as conn:
        import sqlalchemy as sa

        stored = conn.execute(sa.text("SELECT token_sha256 FROM api_tokens")).scalars().all()
        hashes = conn.execute(sa.text("SELECT password_hash FROM users")).scalars().all()
    assert not set(case["tokens"].values()) & set(stored)
    assert all(h.startswith(("scrypt:", "pbkdf2:")) for h in hashes if h)


def test_users_on_the_command_line_print_their_secret_once(case, tmp_path):
    folder = str(case["basin"].path)
    out = CliRunner().invoke(cli, ["users", "add", folder, "clerk", "--role", "researcher"])
    assert out.exit_code == 0, out.output
    made = json.loads(out.stdout)
    assert made["role"] == "researcher" and len(made["password"]) >= 12
    assert case["access"].authenticate_password("clerk", made["password"]).name == "clerk"
    station = json.loads(
        CliRunner().invoke(cli, ["users", "add", folder, "st-2", "--role", "station", "--station", "GM-MIALET"]).stdout
    )
    assert "password" not in station and station["token"].startswith("twt_")
    bad = CliRunner().invoke(cli, ["users", "add", folder, "x", "--role", "investigator"])
    assert bad.exit_code == 1 and "jurisdiction" in bad.output
    tok = json.loads(CliRunner().invoke(cli, ["users", "token", folder, "clerk"]).stdout)["token"]
    assert case["access"].authenticate_token(tok).name == "clerk"
    listed = CliRunner().invoke(cli, ["users", "list", folder]).stdout
    assert made["password"] not in listed and tok not in listed
