"""Shared fixtures: synthetic DEMs and catalogs in temp dirs, the demo twin (built once), a PostgreSQL server.

PostgreSQL: a test that needs a server asks for the ``postgres_database`` fixture (the URL of
a new empty database, dropped afterwards) or ``postgres_url`` (the server's ``postgres``
database, where it may create its own); it never reads ``TWIN_TEST_POSTGRES_URL`` itself.
That variable, when set, names the server to use; otherwise a throwaway cluster is started
for the session (:mod:`tests.pg_cluster`: initdb in a temporary folder, a Unix socket
there, stopped and removed at the end). Without PostgreSQL's server binaries those tests
fail, saying what to install: they do not skip.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from . import pg_cluster, synthetic

#: pytester for the tests of the skip policy; the skip policy itself (tests/skips.py)
pytest_plugins = ("pytester", "tests.skips")

ROOT = Path(__file__).resolve().parent.parent
DEMO_CATALOG = ROOT / "data" / "cevennes" / "basin.yml"


def _square(x0: float, y0: float, x1: float, y1: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


@pytest.fixture
def make_catalog(tmp_path):
    """Factory: write a DEM and a catalog into a temp dir, return the catalog path.

    ``make_catalog(dem, units="halves", sites=[...], extra={...})``; ``units`` =
    "halves" splits the grid into a north unit "N" and a south unit "S" at
    ``split_row``.
    """

    def make(
        dem: np.ndarray,
        *,
        name: str = "synthetic",
        units: str | None = "halves",
        split_row: int | None = None,
        sites: list[dict] | None = None,
        parameters: dict | None = None,
        extra: dict | None = None,
        dem_crs: str | None = synthetic.CRS,
    ) -> Path:
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        synthetic.write_dem(folder / "dem.tif", dem, crs=dem_crs)
        cat: dict = {
            "name": name,
            "crs": synthetic.CRS,
            "parameters": {"stream_threshold_km2": 0.02, **(parameters or {})},
            "sources": {"dem": {"role": "dem", "path": "dem.tif"}},
        }
        if units == "halves":
            nrow, ncol = dem.shape
            split = nrow // 2 if split_row is None else split_row
            x0, y0 = synthetic.ORIGIN
            c = synthetic.CELL
            ymid = y0 - split * c
            fc = {
                "type": "FeatureCollection",
                "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32631"}},
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"code": "N", "name": "North"},
                        "geometry": _square(x0 - c, ymid, x0 + (ncol + 1) * c, y0 + c),
                    },
                    {
                        "type": "Feature",
                        "properties": {"code": "S", "name": "South"},
                        "geometry": _square(x0 - c, y0 - (nrow + 1) * c, x0 + (ncol + 1) * c, ymid),
                    },
                ],
            }
            (folder / "units.geojson").write_text(json.dumps(fc))
            cat["sources"]["regions"] = {
                "role": "jurisdictions",
                "level": "region",
                "path": "units.geojson",
                "crs": synthetic.CRS,
            }
        if sites is not None:
            lines = ["id,name,kind,lon,lat"] + [
                f"{s['id']},{s['name']},{s.get('kind', 'station')},{s['lon']},{s['lat']}" for s in sites
            ]
            (folder / "sites.csv").write_text("\n".join(lines) + "\n")
            cat["sources"]["stations"] = {"role": "sites", "path": "sites.csv", "crs": "EPSG:4326"}
        if extra:
            cat.update(extra)
        path = folder / "basin.yml"
        path.write_text(yaml.safe_dump(cat, allow_unicode=True))
        return path

    return make


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    """The demo twin, built once per test session and saved to a temp folder."""
    import twin

    out = tmp_path_factory.mktemp("demo") / "cevennes"
    twin.BasinTwin.build(DEMO_CATALOG).save(out)
    return out


@pytest.fixture(scope="session")
def demo(demo_dir):
    import twin

    return twin.BasinTwin.open(demo_dir)


@pytest.fixture
def make_saved_valley(make_catalog, tmp_path):
    """Factory: the V-valley (units North/South at row 20) with sites {id: (row, kind)}, saved to a folder."""
    import twin

    def make(sites: dict[str, tuple[int, str]]):
        rows = []
        for sid, (row, kind) in sites.items():
            lon, lat = synthetic.cell_lonlat(row, 15)
            rows.append({"id": sid, "name": sid.title(), "kind": kind, "lon": lon, "lat": lat})
        basin = twin.BasinTwin.build(make_catalog(synthetic.v_valley(41, 31), split_row=20, sites=rows))
        return twin.BasinTwin.open(basin.save(tmp_path / "twin"))

    return make


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a PostgreSQL server's ``postgres`` database, as a role that may create databases.

    ``TWIN_TEST_POSTGRES_URL`` if set, else a throwaway cluster for the session (see the module's docstring).
    """
    url = os.environ.get("TWIN_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    try:
        with pg_cluster.running() as cluster:
            yield cluster.url
    except pg_cluster.ClusterError as err:  # no server binaries: the tests that need one fail, saying so
        pytest.fail(str(err), pytrace=False)


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """SQLAlchemy URL of a new empty database on the ``postgres_url`` server, dropped after the test."""
    import sqlalchemy as sa

    name = f"twin_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()
