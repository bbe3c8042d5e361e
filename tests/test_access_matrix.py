"""The role x endpoint matrix, generated: every route of the OpenAPI description x every kind of user.

The routes are the operations of the API's own OpenAPI description (the viewer, slice, tile,
case and hearing routes are in it), checked against the app's ``url_map`` so that a route
added to the app and not to the description fails here. Each route is expanded into concrete
requests (every collection, every scoped feature, every station, every case, a hearing, a
tile of each layer), and each request is sent as each user: admin, an investigator of Lozère
(48), one of Gard (30), a researcher, a judge, a station account and no one.

The expected answer of every cell comes from the rule, not from a hand-made list: the route's
action from :data:`web.auth.ENDPOINTS` (through :func:`web.auth.action_of`), then
:func:`twin.access.can` and :class:`twin.access.Scope` built from the store's own data
(incidents from :class:`twin.ops.incidents.Incidents`, warnings from :func:`twin.analysis.response.warnings`,
cases from :func:`twin.access.case_resources`). For the scoped routes the body is checked too:
which features, stations' warning fields, warning periods and cases are present, and that no
warning id or case id the user may not see appears anywhere in a body.

The twin: the demo after the mine-leak scenario with its two cases (:func:`tests.webauth.mine_leak_case`),
a waste dumping recorded in Gard with no case, and a hearing of the scenario's case for the judge.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pandas as pd
import pytest

from twin.access import ACTIONS, Access, Scope, User
from twin.analysis.history import warning_id
from twin_web import create_app
from twin_web.auth import action_of
from twin_web.collections import COLLECTIONS
from twin_web.openapi import document
from twin_web.tiles import LAYERS

from .webauth import CASE, CASE_LOZERE, bearer, mine_leak_case

#: the kinds of user, and the user of mine_leak_case each is (None: no credentials)
WHO = {
    "admin": "admin",
    "investigator-48": "lozere",
    "investigator-30": "gard",
    "researcher": "researcher",
    "judge": "judge",
    "station": "mialet",
    "anonymous": None,
}
#: every operation of the OpenAPI description: (method, path template)
OPERATIONS = sorted((m.upper(), p) for p, ops in document()["paths"].items() for m in ops)
#: what "open" routes (the login page and form, logging out) answer anyone: not a refusal, not a failure
OPEN = "open"
TIME_SLICE_AT = "2026-09-03T16:00Z"  # the mine-leak plume at Mialet (Gard): warnings in both départements


@dataclass
class World:
    """The twin, the app, and what the rule says for each kind of user."""

    app: Any
    basin: Any
    access: Access
    tokens: dict[str, str]
    users: dict[str, User | None]
    rules: dict[str, Scope]
    hearing: Any
    link_query: str
    shas: dict[str, str]
    incidents: pd.DataFrame
    episodes: pd.DataFrame
    stations: list[str]
    truth: dict[str, Any]
    reading: dict[str, Any]
    everything: dict[str, dict[str, Any]] = field(default_factory=dict)  # collection id -> admin's items

    def rule(self, who: str) -> Scope:
        return self.rules[who]


@pytest.fixture(scope="module")
def world(demo_dir, tmp_path_factory) -> World:
    case = mine_leak_case(demo_dir, tmp_path_factory.mktemp("matrix") / "cevennes")
    basin, access = case["basin"], case["access"]
    # an incident of Gard alone, with no case: seen by its own units
    sites = basin.sites.to_crs("EPSG:4326").set_index("id")
    ales = sites.loc["GA-ALES"].geometry
    basin.incidents.add(
        "waste_dumping",
        "2026-09-10T09:00+02:00",
        f"POINT ({ales.x + 0.002} {ales.y + 0.002})",
        reporter="DDTM 30",
        description="tyres dumped on the bank (simulated)",
    )
    hearing = access.create_hearing(CASE, judge="judge", hours=48, by="clerk", model=basin.model)
    link = access.link(hearing)
    app = create_app(basin.path, testing=True, rate_ingest=(10_000, 100.0))
    from twin.analysis.response import warnings

    users = {who: (access.user(name) if name else None) for who, name in WHO.items()}
    rules = {
        who: access.scope(user, sites=basin.sites, levels=basin.jurisdictions.levels) for who, user in users.items()
    }
    existing = basin.readings.query(["GM-MIALET"], ["As"]).iloc[0]
    reading = {  # a reading the store holds already: posting it stores nothing new (a duplicate)
        "station": "GM-MIALET",
        "time": existing["time"].isoformat(),
        "parameter": "As",
        "value": float(existing["value"]),
        "unit": "mg/L",
        "flag": existing["flag"],
    }
    w = World(
        app=app,
        basin=basin,
        access=access,
        tokens=case["tokens"],
        users=users,
        rules=rules,
        hearing=hearing,
        link_query=link.split("?", 1)[1],
        shas=case["shas"],
        incidents=basin.incidents.list(),
        episodes=warnings(basin.model, basin.store, plans=False),
        stations=[str(s) for s in basin.sites.loc[basin.sites["kind"] == "station", "id"]],
        truth=case["truth"],
        reading=reading,
    )
    admin = app.test_client()
    for c in COLLECTIONS:
        got = admin.get(f"/api/collections/{c}/items?limit=10000", headers=bearer(w.tokens["admin"]))
        w.everything[c] = got.get_json()
    return w


# -- the rule's known answers -------------------------------------------------------------------------


def test_the_rule_gives_the_known_answers(world: World):
    r = world.rules
    inc = world.incidents.set_index("id")
    fish_kill = inc.loc[1]
    dumping = inc[inc["kind"] == "waste_dumping"].iloc[0]
    assert fish_kill["case_id"] == CASE and "30" in fish_kill["jurisdictions"]["departement"]
    # the universe the matrix checks against: what the admin is served is what the store holds
    ep = world.episodes
    assert {f["id"] for f in world.everything["warnings"]["features"]} == {
        warning_id(s, p, t) for s, p, t in zip(ep["station"], ep["parameter"], ep["start"])
    }
    assert {int(f["id"]) for f in world.everything["incidents"]["features"]} == set(inc.index)
    # a researcher, a judge and a station see no warning anywhere; admin sees every one
    for who in ("researcher", "judge", "station", "anonymous"):
        assert not any(r[who].sees_warnings_at(s) for s in world.stations), who
    assert all(r["admin"].sees_warnings_at(s) for s in world.stations)
    # Lozère sees the warnings of its two stations only, Gard those of its six
    assert {s for s in world.stations if r["investigator-48"].sees_warnings_at(s)} == {"GA-COLLET", "GM-STETIENNE"}
    assert {s for s in world.stations if r["investigator-30"].sees_warnings_at(s)} == set(world.stations) - {
        "GA-COLLET",
        "GM-STETIENNE",
    }
    # the scenario's case (evidence in Lozère, fish kill in Gard) and its incident: visible together, to both
    for who in ("investigator-48", "investigator-30"):
        assert r[who].sees_case(CASE) and r[who].sees_incident(fish_kill["jurisdictions"], CASE), who
    # the Lozère case is Lozère's until shared; the Gard dumping (no case) is Gard's
    assert r["investigator-48"].sees_case(CASE_LOZERE) and not r["investigator-30"].sees_case(CASE_LOZERE)
    assert r["investigator-30"].sees_incident(dumping["jurisdictions"], None)
    assert not r["investigator-48"].sees_incident(dumping["jurisdictions"], None)
    assert r["researcher"].permissions() == ["model.read", "readings.read"]
    assert r["admin"].permissions() == list(ACTIONS) and r["anonymous"].permissions() == []
    # the judge opens the hearing given to them, nobody else but admins
    assert [who for who in WHO if r[who].sees_hearing(world.hearing)] == ["admin", "judge"]


# -- the routes -----------------------------------------------------------------------------------


def test_the_matrix_covers_every_route_of_the_app(world: World):
    served = world.app.test_client().get("/api/openapi.json", headers=bearer(world.tokens["admin"])).get_json()
    assert sorted((m.upper(), p) for p, ops in served["paths"].items() for m in ops) == OPERATIONS
    routes = set()
    for rule in world.app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue  # open to all, checked by its own test (CSP, no credentials needed)
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)  # the routes name their variables as the document
        routes |= {(m, path) for m in (rule.methods or set()) - {"HEAD", "OPTIONS"}}
    missing = routes - set(OPERATIONS)
    assert not missing, (
        f"routes of the app missing from the matrix (declare them with flask-openapi3, as in twin_web/slices.py): {sorted(missing)}"
    )
    assert set(OPERATIONS) <= routes


def expand(world: World, method: str, template: str) -> list[tuple[str, dict[str, Any]]]:
    """Concrete requests of a route: (url, the path's arguments), with its required query parameters."""
    src = world.truth["source"]
    query = {
        "/api/slices/time": {"at": TIME_SLICE_AT, "parameter": "As"},
        "/api/slices/profile": {"line": "3.77,44.16,3.93,44.12"},
        "/api/slices/river": {"lon": src["lon"], "lat": src["lat"]},
        "/api/slices/downstream": {"lon": src["lon"], "lat": src["lat"], "at": src["time"], "mass_kg": 10},
        "/api/slices/upstream": {"station": "GM-MIALET", "parameter": "As", "at": "2026-09-04T06:00Z"},
        "/api/viewer/times": {"parameter": "As"},
        "/api/viewer/plume": {"lon": src["lon"], "lat": src["lat"], "release_at": src["time"], "mass_kg": 10},
        "/api/slices/stations/{stationId}": {"parameter": "As"},
        "/api/collections/{collectionId}/items": {"limit": 10000},
    }.get(template, {})
    values: list[dict[str, Any]] = [{}]
    if "{collectionId}" in template:
        values = [{"collectionId": c} for c in COLLECTIONS]
        if "{featureId}" in template:  # every feature of the scoped collections, the first of the others
            values = [
                {"collectionId": c, "featureId": f["id"]}
                for c in COLLECTIONS
                for f in (world.everything[c]["features"] if c in ("incidents", "warnings") else [])
                or world.everything[c]["features"][:1]
            ]
    elif "{stationId}" in template:
        values = [{"stationId": s} for s in world.stations]
    elif "{caseId}" in template:
        values = [{"caseId": c, "sha256": world.shas[c]} for c in (CASE, CASE_LOZERE)]
    elif "{hearingId}" in template:
        values = [{"hearingId": world.hearing.id, "name": "map.png", "sha256": world.shas[CASE]}]
    elif "{layer}" in template:
        import morecantile

        west, south, east, north = world.basin.manifest["summary"]["bounds_wgs84"]
        t = morecantile.tms.get("WebMercatorQuad").tile((west + east) / 2, (south + north) / 2, 9)
        values = [{"layer": layer, "z": t.z, "x": t.x, "y": t.y} for layer in LAYERS]  # over the basin's centre
    out = []
    for v in values:
        url = template
        for k, x in v.items():
            url = url.replace("{" + k + "}", str(x))
        out.append((url + ("?" + urlencode(query) if query else ""), v))
    return out


def expected(world: World, who: str, method: str, url: str) -> int | str:
    """The status the rule gives ``who`` for a request (OPEN: the route is open to all)."""
    path = url.split("?", 1)[0]
    endpoint, args = world.app.url_map.bind("twin.test").match(path, method=method)
    action = action_of(endpoint, args)
    user, rule = world.users[who], world.rules[who]
    if action is None:
        if endpoint.startswith("hearing."):  # no signed link here: the hearing's judge (and admins) only
            if user is None:
                return 401
            return 200 if rule.sees_hearing(world.hearing) else 403
        return OPEN
    if user is None:
        return 401 if path.startswith(("/api", "/tiles")) else 302
    if action is False:
        return 200 if user.role == "admin" else 403
    if not rule.may(action):
        return 403
    if endpoint == "features.item" and args["collectionId"] in ("incidents", "warnings"):
        return 200 if visible(world, who, args["collectionId"], args["featureId"]) else 404
    if endpoint.startswith("cases.") and "caseId" in args:
        return 200 if rule.sees_case(args["caseId"]) else 403
    return 200


def visible(world: World, who: str, collection: str, feature_id: str) -> bool:
    rule = world.rules[who]
    if collection == "incidents":
        row = world.incidents.set_index("id").loc[int(feature_id)]
        return rule.sees_incident(row["jurisdictions"], None if pd.isna(row["case_id"]) else row["case_id"])
    station = feature_id.split(".", 1)[0]
    return rule.sees_warnings_at(station)


def visible_ids(world: World, who: str, collection: str) -> set[str]:
    return {str(f["id"]) for f in world.everything[collection]["features"] if visible(world, who, collection, f["id"])}


def forbidden_strings(world: World, who: str) -> list[str]:
    """Ids the user may not see, which must appear in none of their answers."""
    rule = world.rules[who]
    ep = world.episodes
    out = [
        warning_id(s, p, t)
        for s, p, t in zip(ep["station"], ep["parameter"], ep["start"])
        if not rule.sees_warnings_at(str(s))
    ]
    return out + [c for c in (CASE, CASE_LOZERE) if not rule.sees_case(c)]


def check_body(world: World, who: str, endpoint: str, args: dict[str, Any], body: Any) -> None:
    """What a scoped answer must hold and leave out, by the rule."""
    rule = world.rules[who]
    if endpoint == "features.items" and args["collectionId"] in ("incidents", "warnings"):
        c = args["collectionId"]
        assert {str(f["id"]) for f in body["features"]} == visible_ids(world, who, c)
    elif endpoint == "features.collection" and args["collectionId"] in ("incidents", "warnings"):
        c = args["collectionId"]
        shown = [f for f in world.everything[c]["features"] if str(f["id"]) in visible_ids(world, who, c)]
        interval = body["extent"]["temporal"]["interval"][0]
        if not shown:
            assert interval == [None, None]
            return
        key = "observed" if c == "incidents" else "start"
        first = min(pd.Timestamp(f["properties"][key]) for f in shown)
        assert pd.Timestamp(interval[0]) == first
        xs = [f["geometry"]["coordinates"][0] for f in shown]
        ys = [f["geometry"]["coordinates"][1] for f in shown]
        want = [round(v, 6) for v in (min(xs), min(ys), max(xs), max(ys))]
        assert body["extent"]["spatial"]["bbox"][0] == pytest.approx(want, abs=1e-6)
    elif endpoint == "features.collections":
        ids = {c["id"] for c in body["collections"]}
        assert ids == {c for c in COLLECTIONS if rule.may(str(action_of("features.items", {"collectionId": c})))}
    elif endpoint == "slices.at_time":
        for row in body["stations"]:
            assert ("warning_level" in row) == ("warning" in row) == rule.sees_warnings_at(row["id"]), row["id"]
    elif endpoint == "slices.station_series":
        assert ("warnings" in body) == rule.sees_warnings_at(args["stationId"])
    elif endpoint == "viewer_api.times":
        assert ("warnings" in body) == rule.may("warnings.read")
        if "warnings" in body:
            ep = world.episodes[world.episodes["parameter"] == "As"]
            want = {str(s) for s in ep["station"] if rule.sees_warnings_at(str(s))}
            assert {w["station"] for w in body["warnings"]} == want
    elif endpoint == "viewer_api.config":
        assert body["may"] == rule.permissions()
    elif endpoint == "cases.index":
        assert sorted(c["case_id"] for c in body["cases"]) == sorted(rule.cases())


@pytest.mark.parametrize("who", list(WHO))
@pytest.mark.parametrize(("method", "template"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_route_answers_each_user_as_the_rule_says(world: World, method: str, template: str, who: str):
    client = world.app.test_client()
    headers = bearer(world.tokens[WHO[who]]) if WHO[who] else {}
    problems = []
    for url, _ in expand(world, method, template):
        want = expected(world, who, method, url)
        if method == "POST" and template == "/api/readings":
            resp = client.post(url, json=[world.reading], headers=headers)
        elif method == "POST":
            resp = client.post(url, data={}, headers=headers)
        else:
            resp = client.get(url, headers=headers)
        got = resp.status_code
        if want == OPEN:
            if got in (401, 403) or got >= 500:
                problems.append(f"{url}: open to all, got {got}")
            continue
        if got != want:
            problems.append(f"{url}: want {want}, got {got}: {resp.get_data(as_text=True)[:200]}")
            continue
        if got == 302:
            assert resp.headers["Location"].startswith("/login?next=")
        if got in (401, 403, 404) and resp.mimetype == "application/json":
            assert resp.get_json()["status"] == got
        if got == 200 and resp.mimetype in ("application/json", "application/geo+json"):
            endpoint, args = world.app.url_map.bind("twin.test").match(url.split("?", 1)[0], method=method)
            body = resp.get_json()
            try:
                check_body(world, who, endpoint, args, body)
            except AssertionError as err:
                problems.append(f"{url}: {err}")
            if not endpoint.startswith("hearing."):  # the hearing's bundle is the judge's to see
                text = json.dumps(body, ensure_ascii=False)
                leaked = [s for s in forbidden_strings(world, who) if s in text]
                if leaked:
                    problems.append(f"{url}: shows what {who} may not see: {leaked[:3]}")
    assert not problems, "\n".join(problems)


def test_a_hearing_link_opens_the_hearing_to_anyone_who_holds_it(world: World):
    """The signed link is the judge's credential in a remote hearing: with it, no account is needed."""
    c = world.app.test_client()
    base = f"/hearing/{world.hearing.id}"
    for url in (base, f"{base}/data.json", f"{base}/overlays/map.png", f"{base}/files/{world.shas[CASE]}"):
        assert c.get(f"{url}?{world.link_query}").status_code == 200, url
        assert c.get(f"{url}?exp=1&sig={'0' * 64}").status_code == 403, url
