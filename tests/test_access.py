"""Who may do what, over HTTP: scoping by jurisdiction, sharing, readings, hardening (the role x endpoint
matrix is generated in tests/test_access_matrix.py).

The twin is a copy of the demo after the mine-leak scenario with two cases recorded by
Lozère (see :func:`tests.webauth.mine_leak_case`); one user per role.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
import stat
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from itsdangerous import TimestampSigner

from twin.access import (
    ROLES,
    ForbiddenError,
    Hearing,
    NotAuthenticatedError,
    Resource,
    User,
    can,
    check_link,
    codes_of,
    sign_link,
)
from twin.cli import cli
from twin.ops.hj212 import frame
from twin_web import create_app

from .webauth import CASE, CASE_LOZERE, PASSWORD, bearer, mine_leak_case, token


@pytest.fixture(scope="module")
def case(demo_dir, tmp_path_factory):
    """The mine-leak twin, with a waste dumping recorded in Gard a week later (no case: Gard's alone)."""
    made = mine_leak_case(demo_dir, tmp_path_factory.mktemp("access") / "cevennes")
    ales = made["basin"].sites.to_crs("EPSG:4326").set_index("id").loc["GA-ALES"].geometry
    made["dumping"] = made["basin"].incidents.add(
        "waste_dumping", DUMPED, f"POINT ({ales.x + 0.002} {ales.y + 0.002})", reporter="DDTM 30"
    )
    return made


DUMPED = "2026-09-10T07:00Z"
#: the stations of each département in the demo (data/cevennes/stations.csv)
LOZERE_STATIONS = {"GA-COLLET", "GM-STETIENNE"}


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


CREATED = 1_790_000_000  # 2026-09-21T14:13:20Z


def hearing_of(**changes) -> Hearing:
    h = Hearing("a1b2c3d4e5f60718", "C-1", Path("h.zip"), "0" * 64, 5, "judge", CREATED, CREATED + 3600)
    return dataclasses.replace(h, **changes)


def test_a_hearing_link_opens_its_hearing_of_its_case_until_its_expiry_only():
    key = secrets.token_bytes(32)
    h = hearing_of()
    exp, sig = str(h.expires), sign_link(key, h)
    assert sign_link(key, h) == sig  # the clerk may ask for the link again: it is the same
    for now in (CREATED - 30, CREATED, h.expires - 0.001):  # a server clock a little behind, too
        check_link(key, h, exp, sig, now=now)
    for now in (h.expires, h.expires + 86400):
        with pytest.raises(ForbiddenError, match="expired at 2026-09-21T15:13Z"):
            check_link(key, h, exp, sig, now=now)
    # another hearing, another case, another secret, an expiry pushed later: the signature does not match
    tampered = [(key, hearing_of(id="ffffffffffffffff"), exp), (key, hearing_of(case_id="C-2"), exp)]
    tampered += [(secrets.token_bytes(32), h, exp), (key, h, str(h.expires + 3600))]
    for k, other, e in tampered:
        with pytest.raises(ForbiddenError, match="signature does not match"):
            check_link(k, other, e, sig, now=CREATED)
    for bad in ("0" * 64, sig[:-1], sig + "A", "", sig.split(".")[1]):
        with pytest.raises(ForbiddenError):
            check_link(key, h, exp, bad, now=CREATED)
    with pytest.raises(NotAuthenticatedError, match="needs its signed link"):
        check_link(key, h, None, sig, now=CREATED)
    # a new expiry, later or sooner, revokes the old link; the new one holds until it
    for moved in (h.expires + 3600, CREATED + 60):
        h2 = dataclasses.replace(h, expires=moved)
        with pytest.raises(ForbiddenError, match="not this hearing's current link"):
            check_link(key, h2, exp, sig, now=CREATED + 1)
        check_link(key, h2, str(moved), sign_link(key, h2), now=moved - 1)
    # the same secret signs sessions: a signature made with another salt is not a link's
    value = f"hearing:{h.id}:{h.case_id}:{exp}"
    session = TimestampSigner(key, salt="cookie-session", digest_method=hashlib.sha256).sign(value).decode()
    with pytest.raises(ForbiddenError, match="signature does not match"):
        check_link(key, h, exp, session.removeprefix(value + "."), now=CREATED)


def test_an_investigator_sees_incidents_and_warnings_of_their_jurisdictions_only(app, case):
    tok = case["tokens"]
    # the fish kill is in Gard, but it names the scenario's case, whose evidence was taken in Lozère: the
    # case and its incident lie in both, and both investigators see them; a researcher sees neither
    # the dumping, in Gard with no case, is Gard's alone
    for who, want in (("gard", [CASE, None]), ("lozere", [CASE])):
        got = app.test_client().get("/api/collections/incidents/items", headers=bearer(tok[who])).get_json()
        assert [f["properties"]["case_id"] for f in got["features"]] == want, who
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


# -- the failures of issue 11 ("Access"), one test each ----------------------------------------------


def get(app, url: str, who: str, case: dict, status: int = 200) -> dict:
    resp = app.test_client().get(url, headers=bearer(case["tokens"][who]))
    assert resp.status_code == status, (who, url, resp.get_data(as_text=True)[:300])
    return resp.get_json()


def test_a_time_slice_shows_warnings_only_to_who_may_see_them(app, case):
    url = "/api/slices/time?at=2026-09-03T16:00Z&parameter=As"  # the plume at Mialet, in Gard
    every = {s["id"]: s for s in get(app, url, "admin", case)["stations"]}
    assert every["GM-MIALET"]["warning"] == "red"
    researcher = get(app, url, "researcher", case)["stations"]
    assert all("warning" not in s and "warning_level" not in s for s in researcher)  # no level, not even 0
    assert {s["id"]: s["class"] for s in researcher} == {k: s["class"] for k, s in every.items()}  # readings: yes
    for s in get(app, url, "lozere", case)["stations"]:
        assert ("warning_level" in s) == (s["id"] in LOZERE_STATIONS), s
    gard = {s["id"]: s for s in get(app, url, "gard", case)["stations"]}
    assert gard["GM-MIALET"]["warning"] == "red" and "warning" not in gard["GM-STETIENNE"]


def test_a_station_series_shows_its_warning_periods_only_to_who_may_see_them(app, case):
    url = "/api/slices/stations/GM-MIALET?parameter=As"
    assert [w["level_name"] for w in get(app, url, "gard", case)["warnings"]].count("red") == 1
    for who in ("researcher", "lozere"):
        body = get(app, url, who, case)
        assert "warnings" not in body and len(body["value"]) > 50, who  # the readings, not the warnings
    assert "warnings" in get(app, "/api/slices/stations/GM-STETIENNE?parameter=As", "lozere", case)


def test_the_slider_times_carry_only_the_warnings_the_user_may_see(app, case):
    url = "/api/viewer/times?parameter=As"
    assert "warnings" not in get(app, url, "researcher", case)
    assert {w["station"] for w in get(app, url, "lozere", case)["warnings"]} == {"GM-STETIENNE"}
    assert {w["station"] for w in get(app, url, "gard", case)["warnings"]} == {"GM-MIALET", "GD-ANDUZE"}
    assert {w["station"] for w in get(app, url, "admin", case)["warnings"]} == {
        "GM-STETIENNE",
        "GM-MIALET",
        "GD-ANDUZE",
    }
    assert get(app, "/api/viewer/", "researcher", case)["may"] == ["model.read", "readings.read"]


def test_a_collections_extent_spans_only_what_the_user_may_see(app, case):
    fish_kill = case["basin"].incidents.get(1)
    lozere = get(app, "/api/collections/incidents", "lozere", case)["extent"]
    assert lozere["temporal"]["interval"] == [[fish_kill["observed"], fish_kill["observed"]]]
    assert lozere["spatial"]["bbox"][0] == pytest.approx([fish_kill["lon"], fish_kill["lat"]] * 2, abs=1e-5)
    gard = get(app, "/api/collections/incidents", "gard", case)["extent"]
    assert pd.Timestamp(gard["temporal"]["interval"][0][1]) == pd.Timestamp(DUMPED)  # Gard's dumping is in Gard's
    listed = {c["id"]: c for c in get(app, "/api/collections", "lozere", case)["collections"]}
    assert listed["incidents"]["extent"] == lozere
    # warnings: the span of Saint-Étienne's (Lozère) episodes, not of Gard's, which end later downstream
    mine = get(app, "/api/collections/warnings/items?limit=1000", "lozere", case)["features"]
    every = get(app, "/api/collections/warnings", "admin", case)["extent"]["temporal"]["interval"][0]
    span = get(app, "/api/collections/warnings", "lozere", case)["extent"]["temporal"]["interval"][0]
    assert pd.Timestamp(span[0]) == min(pd.Timestamp(f["properties"]["start"]) for f in mine)
    assert span != every


def test_a_case_and_its_incident_are_visible_by_the_same_rule(app, case):
    for who in ("gard", "lozere"):
        incident = get(app, "/api/collections/incidents/items/1", who, case)
        assert incident["properties"]["case_id"] == CASE
        assert get(app, f"/api/cases/{CASE}/evidence", who, case)["items"], who
    for who in ("researcher", "judge", "mialet"):  # neither, by role
        assert (
            app.test_client().get("/api/collections/incidents/items/1", headers=bearer(case["tokens"][who])).status_code
            == 403
        )
        assert (
            app.test_client().get(f"/api/cases/{CASE}/evidence", headers=bearer(case["tokens"][who])).status_code == 403
        )


def test_every_response_carries_a_content_security_policy(app, case):
    from twin_web.auth import DATA_CSP, PAGE_CSP

    admin = bearer(case["tokens"]["admin"])
    c = app.test_client()
    answers = {
        "viewer page": (c.get("/", headers=admin), PAGE_CSP),
        "login page": (c.get("/login"), PAGE_CSP),
        "a redirect to login": (c.get("/"), PAGE_CSP),
        "API JSON": (c.get("/api/viewer/", headers=admin), DATA_CSP),
        "GeoJSON": (c.get("/api/collections/stations/items?limit=1", headers=admin), DATA_CSP),
        "a tile": (c.get("/tiles/hillshade/0/0/0.png", headers=admin), DATA_CSP),
        "a 404": (c.get("/api/nothing-here", headers=admin), DATA_CSP),
        "a 401": (c.get("/api/viewer/"), DATA_CSP),
        "a 400": (c.get("/api/slices/time?at=0454-01-01T00:00Z&parameter=As", headers=admin), DATA_CSP),
        "a static file": (c.get("/static/viewer.js"), DATA_CSP),
    }
    for what, (resp, policy) in answers.items():
        resp.close()
        assert resp.headers.get("Content-Security-Policy") == policy, what
    assert "frame-ancestors 'none'" in PAGE_CSP and "default-src 'self'" in PAGE_CSP
    assert "'unsafe-inline'" not in PAGE_CSP and "'unsafe-eval'" not in PAGE_CSP
    assert DATA_CSP == "default-src 'none'; frame-ancestors 'none'"


def test_a_time_out_of_bounds_is_a_400_naming_its_parameter(app, case):
    src = case["truth"]["source"]
    where = f"lon={src['lon']}&lat={src['lat']}&mass_kg=10"
    for url, name in (
        ("/api/slices/time?at=0454-01-01T00:00Z&parameter=As", "at"),
        ("/api/slices/time?at=9999-01-01T00:00Z&parameter=As", "at"),
        ("/api/slices/stations/GM-MIALET?parameter=As&start=1600-01-01T00:00Z", "start"),
        ("/api/slices/stations/GM-MIALET?parameter=As&end=2300-01-01T00:00Z", "end"),
        (f"/api/slices/downstream?{where}&at=0454-01-01T00:00Z", "at"),
        (f"/api/slices/river?{where}&release_at=0454-01-01T00:00Z&at=2026-09-03T00:00Z", "release_at"),
        (f"/api/viewer/plume?{where}&release_at=1900-01-01T00:00Z", "release_at"),
        ("/api/slices/upstream?station=GM-MIALET&parameter=As&at=0001-01-01T00:00Z", "at"),
        ("/api/collections/incidents/items?datetime=0454-01-01/..", "datetime"),
        ("/api/collections/warnings/items?datetime=1969-12-31T23:00Z", "datetime"),
    ):
        body = get(app, url, "admin", case, status=400)
        assert body["parameter"] == name and "1970-01-01" in body["description"], url


def test_a_station_series_comes_in_pages(app, case):
    stored = case["basin"].readings.query(["GM-MIALET"], ["As"])
    first = get(app, "/api/slices/stations/GM-MIALET?parameter=As&limit=10", "gard", case)
    assert len(first["time"]) == 10 and first["limit"] == 10 and first["time"][0] == stored["time"].min().isoformat()
    times, values, url, pages = [], [], first["next"], 1
    times += first["time"]
    values += first["value"]
    while url:
        page = app.test_client().get(url, headers=bearer(case["tokens"]["gard"])).get_json()
        times += page["time"]
        values += page["value"]
        url, pages = page.get("next"), pages + 1
    assert pages == -(-len(stored) // 10)
    assert times == [t.isoformat() for t in stored.sort_values("time")["time"]]
    assert len(set(times)) == len(times)
    whole = get(app, "/api/slices/stations/GM-MIALET?parameter=As", "gard", case)  # the default: the most, 10 000
    assert whole["limit"] == 10_000 and len(whole["time"]) == len(stored) and "next" not in whole
    bad = get(app, "/api/slices/stations/GM-MIALET?parameter=As&limit=10001", "gard", case, status=400)
    assert bad["parameter"] == "limit"


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


def test_a_share_or_a_place_forged_on_the_store_grants_nothing(demo_dir, tmp_path):
    """Access is decided from the evidence log's leaves, not from the rows beside them: a share row
    inserted, or a custody record's place edited, on the store gives Gard nothing (and the check names it)."""
    import sqlalchemy as sa

    import twin
    from twin.ops.store import case_shares, custody_records

    folder = tmp_path / "cevennes"
    case = mine_leak_case(demo_dir, folder)
    engine = twin.open(str(folder)).store
    with engine.begin() as conn:
        conn.execute(
            case_shares.insert().values(
                case_id=CASE_LOZERE, jurisdiction="30", shared_by="lozere", time=1_790_000_000, leaf_index=0
            )
        )
        row = conn.execute(sa.select(custody_records).where(custody_records.c.case_id == CASE_LOZERE)).first()
        record = json.loads(row.record)
        record["place"]["jurisdiction"] = "Gard (30)"
        conn.execute(custody_records.update().where(custody_records.c.id == row.id).values(record=json.dumps(record)))
    forged = create_app(folder, testing=True)
    got = forged.test_client().get(f"/api/cases/{CASE_LOZERE}/evidence", headers=bearer(case["tokens"]["gard"]))
    assert got.status_code == 403
    listed = forged.test_client().get("/api/cases/", headers=bearer(case["tokens"]["gard"])).get_json()["cases"]
    assert CASE_LOZERE not in [c["case_id"] for c in listed]
    check = CliRunner().invoke(cli, ["evidence", "check", str(folder)])
    assert check.exit_code == 1 and "case_shares" in check.output and "custody_records" in check.output


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
