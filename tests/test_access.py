"""Who may do what, over HTTP: scoping by jurisdiction, sharing, readings, hardening (the role x endpoint
matrix is generated in tests/test_access_matrix.py).

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

from .webauth import CASE, CASE_LOZERE, PASSWORD, bearer, mine_leak_case, token


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
    # the fish kill is in Gard, but it names the scenario's case, whose evidence was taken in Lozère: the
    # case and its incident lie in both, and both investigators see them; a researcher sees neither
    for who in ("gard", "lozere"):
        got = app.test_client().get("/api/collections/incidents/items", headers=bearer(tok[who])).get_json()
        assert [f["properties"]["case_id"] for f in got["features"]] == [CASE], who
        assert app.test_client().get(f"/api/cases/{CASE}/evidence", headers=bearer(tok[who])).status_code == 200
    assert (
        app.test_client().get("/api/collections/incidents/items/1", headers=bearer(tok["researcher"])).status_code
        == 403
    )
    # the warnings are at stations in both départements
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
    # the scenario's case lies in Lozère (its items were taken there) and in Gard (its fish kill): Gard saw it
    # before; the Lozère case now shared with Gard is listed beside it
    listed = app.test_client().get("/api/cases/", headers=gard).get_json()["cases"]
    assert sorted(c["case_id"] for c in listed) == sorted([CASE, CASE_LOZERE])
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


def test_ingest_is_rate_limited_and_bodies_are_bounded(case):
    folder = case["basin"].path
    app = create_app(folder, testing=True, rate_ingest=(2, 0.01), max_content_length=2000)
    station = bearer(token(folder, "st-limited", "station", stations=["GM-MIALET"]))
    codes = [
        app.test_client().post("/api/readings", json=[reading(hour=14)], headers=station).status_code for _ in range(3)
    ]
    assert codes == [200, 200, 429]
    limited = app.test_client().post("/api/readings", json=[reading(hour=14)], headers=station)
    assert limited.get_json()["code"] == "TooManyRequests" and int(limited.headers["Retry-After"]) >= 1
    # the bucket is in the store: another process (another app on the same twin) finds it empty too
    other = create_app(folder, testing=True, rate_ingest=(2, 0.01))
    assert other.test_client().post("/api/readings", json=[reading(hour=14)], headers=station).status_code == 429
    big = app.test_client().post(
        "/api/readings", json=[reading(hour=15)] * 100, headers=bearer(case["tokens"]["admin"])
    )
    assert big.status_code == 413


def log_in(client, name: str, password: str, address: str):
    """A login through the form, from ``address``."""
    env = {"REMOTE_ADDR": address}
    page = client.get("/login", environ_base=env).get_data(as_text=True)
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    return client.post("/login", data={"username": name, "password": password, "csrf_token": csrf}, environ_base=env)


def test_wrong_passwords_from_one_address_never_lock_the_user_out_at_another(case):
    folder = case["basin"].path
    app = create_app(folder, testing=True)  # the defaults: 5 failures for a name at an address, then 60 s
    attacker = app.test_client()
    tries = [log_in(attacker, "lozere", "not the password", "203.0.113.7").status_code for _ in range(6)]
    assert tries == [401, 401, 401, 401, 401, 429]
    locked = log_in(attacker, "lozere", PASSWORD, "203.0.113.7")  # locked: the password is not even looked at
    assert locked.status_code == 429 and 30 <= int(locked.headers["Retry-After"]) <= 60
    assert "lozere" in locked.get_json()["description"]
    # the real user, from their own address, logs in at once
    assert log_in(app.test_client(), "lozere", PASSWORD, "198.51.100.20").status_code == 302
    # the count is in the store: a second process of the deployment sees the lock too
    other = create_app(folder, testing=True)
    assert log_in(other.test_client(), "lozere", "not the password", "203.0.113.7").status_code == 429
    assert log_in(other.test_client(), "lozere", PASSWORD, "198.51.100.21").status_code == 302


def test_an_address_trying_many_names_is_slowed_down_whatever_the_name(case):
    app = create_app(case["basin"].path, testing=True, rate_login_address=(4, 300.0))
    c = app.test_client()
    tries = [log_in(c, f"guess-{k}", "not the password", "203.0.113.9").status_code for k in range(5)]
    assert tries == [401, 401, 401, 401, 429]
    assert log_in(c, "gard", PASSWORD, "203.0.113.9").status_code == 429  # any name, from that address
    assert log_in(app.test_client(), "gard", PASSWORD, "198.51.100.30").status_code == 302


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
