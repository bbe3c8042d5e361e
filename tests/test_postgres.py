"""The operations store on a real PostgreSQL server: same schema, same queries, same answers.

Each test gets a database of its own (the ``postgres_database`` fixture of conftest.py:
on ``TWIN_TEST_POSTGRES_URL`` if set, else on a throwaway cluster the session starts).
"""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from .synthetic import cell_lonlat

HEADER = "station,time,parameter,value,unit,flag\n"


@pytest.fixture
def pg_basin(make_saved_valley, monkeypatch, postgres_database):
    monkeypatch.setenv("TWIN_DATABASE_URL", postgres_database)
    basin = make_saved_valley({"UP": (10, "station"), "LOW": (35, "station")})
    yield basin
    basin.store.dispose()


def test_store_lives_in_postgres_with_the_migrated_schema(pg_basin):
    assert pg_basin.store.dialect.name == "postgresql"
    assert not (pg_basin.path / "ops.sqlite").exists()
    tables = set(sa.inspect(pg_basin.store).get_table_names())
    assert {"stations", "datastreams", "readings", "rejected", "batches", "incidents", "alembic_version"} <= tables
    with pg_basin.store.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == "0009"


def test_ingest_is_idempotent_and_keeps_corrections_on_postgres(pg_basin, tmp_path):
    a = tmp_path / "a.csv"
    a.write_text(
        HEADER + "UP,2026-07-10T00:00:00Z,NH3-N,0.4,mg/L,N\nUP,2026-07-10T04:00:00Z,NH3-N,1.2,mg/L,N\n"
        "UP,2026-07-10T04:00:00Z,pH,15,1,N\nGHOST,2026-07-10T04:00:00Z,pH,7,1,N\n"
    )
    first = pg_basin.readings.ingest(a)
    assert (first.stored, first.rejected_by_reason()) == (2, {"outside physical limits": 1, "unknown station": 1})
    assert pg_basin.readings.ingest(a).duplicates == 2
    b = tmp_path / "b.csv"
    b.write_text(HEADER + "UP,2026-07-10T04:00:00Z,NH3-N,1.1,mg/L,N\n")
    assert pg_basin.readings.ingest(b).corrections == 1
    assert pg_basin.readings.query()["value"].tolist() == [0.4, 1.1]
    ds = pg_basin.readings.to_xarray()
    assert float(ds["NH3-N"].sel(station="UP", time=pd.Timestamp("2026-07-10T04:00"))) == 1.1
    at = pg_basin.classify(at="2026-07-10T05:00Z").set_index("station")
    assert at.loc["UP", "label"] == "IV"


def test_incidents_on_postgres(pg_basin):
    rec = pg_basin.incidents.add("spill", "2026-07-10T06:00Z", cell_lonlat(8, 15))
    assert rec["jurisdictions"] == {"region": ["N"]}
    assert pg_basin.incidents.list(jurisdiction="N")["id"].tolist() == [rec["id"]]
    assert pg_basin.incidents.close(rec["id"])["status"] == "closed"
