"""End to end on the real demo basin (Cévennes: NASA SRTM, IGN boundaries)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from pyproj import Transformer

# Village centres on the Gardon rivers (WGS 84, from public gazetteers, about ±300 m):
# none of them was used to derive the network. Alès is left out: its valley floor is a
# wide town whose SRTM surface is roofs and bridges, with no channel to check against.
VALLEY_POINTS = {
    "Anduze (Gardon d'Anduze)": (3.9856, 44.0514),
    "Saint-Jean-du-Gard (Gardon de Saint-Jean)": (3.8853, 44.1044),
    "Le Collet-de-Dèze (Gardon d'Alès)": (3.9242, 44.2517),
    "La Grand-Combe (Gardon d'Alès)": (4.0283, 44.2122),
}


def test_summary_matches_the_demo(demo):
    info = demo.info()
    assert info["cells"] == 1596 * 1654 == 2_639_784
    assert info["crs"] == "EPSG:32631"
    assert info["elevation_m"] == [85.0, 1672.0]
    assert 300 < info["reaches"] < 1500
    assert 800 < info["stream_length_km"] < 2500
    assert info["jurisdictions_crossed"]["departement"] == ["30 Gard", "48 Lozère"]
    assert len(info["jurisdictions_crossed"]["commune"]) > 100
    lz_to_gard = [s for s in info["top_level_sections"] if s["from"] == "48 Lozère" and s["to"] == "30 Gard"]
    assert len(lz_to_gard) >= 3
    assert len(info["sites"]) == 11  # 8 stations, 1 intake, 1 old mine and 1 old dump (both illustrative)


@pytest.mark.parametrize("name", list(VALLEY_POINTS))
def test_main_rivers_follow_the_valley_floors(demo, name):
    lon, lat = VALLEY_POINTS[name]
    loc = demo.locate(lon, lat, max_distance_m=800, min_upstream_km2=80)
    assert loc.snap_distance_m < 800
    assert demo.network.reach(loc.reach_id)["upstream_area_km2"] > 80
    # the main river runs on the valley floor: within 1 km, less than a tenth of the terrain
    # lies below the river's median elevation (true of 3 % of random cells of the basin)
    g = demo.terrain.grid
    row, col = (int(v) for v in g.rowcol(loc.x, loc.y))
    window = (slice(max(0, row - 33), row + 34), slice(max(0, col - 33), col + 34))
    terrain = demo.terrain.dem[window]
    river = (demo.drainage.reach[window] > 0) & (demo.drainage.upstream_area.values[window] >= 80)
    assert (terrain < np.median(terrain[river])).mean() < 0.1


@pytest.mark.parametrize(("station", "published_km2"), [("GD-ANDUZE", 543.0), ("GA-ALES", 315.0)])
def test_catchment_areas_match_published_gauges(demo, station, published_km2):
    # Banque Hydro gauges: le Gardon d'Anduze à Anduze (543 km2), le Gardon d'Alès à Alès (315 km2)
    s = demo.sites.set_index("id").loc[station]
    c = demo.catchment(s["lon"], s["lat"])
    assert c["area_km2"].iloc[0] == pytest.approx(published_km2, rel=0.08)


def test_release_in_lozere_reaches_gard_with_the_section_reported(demo):
    s = demo.sites.set_index("id")
    assert s.loc["GM-STETIENNE", "departement"] == "48"
    start = s.loc["GM-STETIENNE"]
    path, sections, sites = demo.downstream(start["lon"], start["lat"])
    dep = sections[sections["level"] == "departement"]
    assert dep[["from_name", "to_name"]].values.tolist()[0] == ["Lozère", "Gard"]
    assert path["departement"].iloc[-1] == "30"
    passed = sites["id"].tolist()
    assert passed.index("GM-MIALET") < passed.index("GD-ANDUZE") < passed.index("INT-ANDUZE")
    assert dep["distance_km"].iloc[0] < sites.set_index("id").loc["GM-MIALET", "distance_km"]
    # the Gardon d'Alès also runs from Lozère into Gard
    c = s.loc["GA-COLLET"]
    _, sec2, sites2 = demo.downstream(c["lon"], c["lat"], max_km=30)
    assert ["Lozère", "Gard"] in sec2.loc[sec2["level"] == "departement", ["from_name", "to_name"]].values.tolist()
    assert "GA-STCECILE" in sites2["id"].tolist()


def test_sites_lie_in_their_departements(demo):
    dep = demo.sites.set_index("id")["departement"]
    lozere = ["GA-COLLET", "GM-STETIENNE", "MINE-MOISSAC", "DUMP-COLLET"]
    assert dep[lozere].tolist() == ["48", "48", "48", "48"]
    assert (dep.drop(lozere) == "30").all()


def test_upstream_area_shares_at_anduze_split_between_departements(demo):
    rid = int(demo.sites.set_index("id").loc["GD-ANDUZE", "reach_id"])
    sh = demo.jurisdictions.shares
    at = sh[(sh["reach_id"] == rid) & (sh["level"] == "departement")].set_index("code")["share"]
    assert set(at.index) == {"30", "48"}
    assert at.sum() == pytest.approx(1.0, abs=0.01)
    assert 0.1 < at["48"] < 0.6


def test_cli_downstream_on_the_demo(demo_dir):
    to_ll = Transformer.from_crs("EPSG:4326", "EPSG:4326", always_xy=True)
    lon, lat = to_ll.transform(3.84482, 44.15832)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "twin.cli",
            "downstream",
            str(demo_dir),
            "--lon",
            str(lon),
            "--lat",
            str(lat),
            "--max-km",
            "25",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    fc = json.loads(out.stdout)
    kinds = [f["properties"]["kind"] for f in fc["features"]]
    assert "section" in kinds and "reach" in kinds
    assert fc["properties"]["length_km"] == pytest.approx(25.0)
    xs = [c[0] for f in fc["features"] if f["properties"]["kind"] == "reach" for c in f["geometry"]["coordinates"]]
    assert min(xs) > 3.8 and max(xs) < 4.2  # WGS 84 longitudes
