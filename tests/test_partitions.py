"""Readings at national scale on PostgreSQL: partitioned by year (migration 0009), written and read by binary COPY."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from twin.ops import pgcopy, readings, store

STATIONS = pd.DataFrame({"id": ["S1", "S2"], "name": ["One", "Two"], "water_body": ["river", "reservoir"]})


def tidy(times: list[str], values: list[float], station: str = "S1", parameter: str = "NH3-N") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "station": station,
            "time": pd.to_datetime(times, utc=True),
            "parameter": parameter,
            "value": values,
            "unit": "mg/L",
        }
    )


@pytest.fixture
def pg(postgres_database):
    engine = store.connect(postgres_database)
    r = readings.Readings(engine)
    r.register_stations(STATIONS)
    yield engine, r
    engine.dispose()


def partition_rows(engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT tableoid::regclass::text, COUNT(*) FROM readings GROUP BY 1").all()
    return {name: n for name, n in rows}


def test_readings_land_in_the_partition_of_their_year(pg, monkeypatch):
    engine, r = pg
    monkeypatch.setenv("TWIN_INGEST_EARLIEST", "1970-01-01T00:00Z")  # an archive older than the partitions
    report = r.store(
        tidy(["2024-12-31T23:00Z", "2025-01-01T00:00Z", "2025-07-01T00:00Z", "1975-03-01T00:00Z"], [1, 2, 3, 4])
    )
    assert report.stored == 4
    assert partition_rows(engine) == {"readings_y2024": 1, "readings_y2025": 2, "readings_default": 1}
    year = r.query(start="2025-01-01T00:00Z", end="2025-12-31T23:59Z")
    assert year["value"].tolist() == [2.0, 3.0]


def test_a_bulk_load_then_corrections_and_duplicates_through_copy(pg):
    engine, r = pg
    times = pd.date_range("2022-01-01", periods=5000, freq="4h", tz="UTC")
    values = np.round(np.linspace(0.1, 2.0, len(times)), 4)
    first = r.store(tidy(list(times.astype(str)), list(values)))
    assert (first.stored, first.duplicates, first.corrections) == (5000, 0, 0)
    again = tidy(list(times[:100].astype(str)), list(values[:100]))
    again.loc[10, "value"] = 9.5  # one correction among 99 duplicates
    second = r.store(again)
    assert (second.stored, second.duplicates, second.corrections) == (1, 99, 1)
    series = r.query(["S1"])
    assert len(series) == 5000 and series["value"].iloc[10] == 9.5
    ds = r.to_xarray(stations=["S1"])
    np.testing.assert_array_equal(ds["NH3-N"].sel(station="S1").to_numpy()[:12], np.r_[values[:10], 9.5, values[11]])


def test_one_bad_row_is_rejected_and_the_rest_of_the_batch_copied(pg):
    engine, r = pg
    frame = tidy(["2025-01-01T00:00Z", "2025-01-01T04:00Z", "2025-01-01T08:00Z"], [0.5, -3.0, 0.7])
    frame.loc[2, "station"] = "S2"
    report = r.store(frame)
    assert report.stored == 2
    assert report.rejected_by_reason() == {"outside physical limits": 1}
    assert sorted(r.query()["station"]) == ["S1", "S2"]


def test_a_table_without_a_needed_column_is_refused_in_one_line(pg):
    _, r = pg
    with pytest.raises(readings.IngestError, match="no column unit"):
        r.store(tidy(["2025-01-01T00:00Z"], [1.0]).drop(columns="unit"))


def test_the_migration_moves_existing_readings_into_partitions_and_back(postgres_database):
    engine = store.connect(postgres_database)
    r = readings.Readings(engine)
    r.register_stations(STATIONS)
    r.store(tidy(["2019-05-01T00:00Z", "2025-05-01T00:00Z"], [1.0, 2.0]))
    store.downgrade(engine, "0008")
    with engine.connect() as conn:
        kind = conn.exec_driver_sql("SELECT relkind FROM pg_class WHERE relname = 'readings'").scalar_one()
    assert kind == "r"  # one plain table again
    assert r.query()["value"].tolist() == [1.0, 2.0]
    store.migrate(engine)
    assert partition_rows(engine) == {"readings_y2019": 1, "readings_y2025": 1}
    r.store(tidy(["2025-06-01T00:00Z"], [3.0]))  # the id sequence goes on from where it was
    with engine.connect() as conn:
        ids = [i for (i,) in conn.exec_driver_sql("SELECT id FROM readings ORDER BY id").all()]
    assert ids == sorted(set(ids)) and len(ids) == 3
    engine.dispose()


def test_binary_copy_round_trips_numbers_and_texts(postgres_database):
    engine = sa.create_engine(postgres_database)
    rng = np.random.default_rng(0)
    n = 20_000
    cols = {
        "a": (rng.integers(-(2**31), 2**31 - 1, n), "int4"),
        "b": (rng.integers(-(2**62), 2**62, n), "int8"),
        "c": (rng.standard_normal(n), "float8"),
        "f": (rng.choice(np.array(["", "N", "MM", "水"], dtype=object), n), "text"),
    }
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (a INTEGER, b BIGINT, c DOUBLE PRECISION, f TEXT)")
        assert pgcopy.copy_in(conn.connection.dbapi_connection, "t", cols) == n
    (table,) = readings.read_postgres(engine, ["SELECT a, b, c FROM t ORDER BY b"])
    a, b, c = (table.column(k).to_numpy() for k in range(3))
    with engine.connect() as conn:
        texts = conn.exec_driver_sql("SELECT f, COUNT(*) FROM t GROUP BY f").all()
    order = np.argsort(cols["b"][0])
    np.testing.assert_array_equal(b, cols["b"][0][order])
    np.testing.assert_array_equal(a, cols["a"][0][order])
    np.testing.assert_array_equal(c, cols["c"][0][order])
    assert dict(texts) == dict(zip(*np.unique(cols["f"][0].astype(str), return_counts=True)))
    engine.dispose()
