"""The store's schema: the migrations build exactly the tables the code describes."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from twin import store


def test_migrations_build_the_schema_the_code_queries(tmp_path):
    engine = store.connect(f"sqlite:///{tmp_path / 'ops.sqlite'}")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), store.metadata)
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    # indexes live only in the migrations (the code needs no index objects); columns and tables must agree
    assert [d for d in diff if d[0] not in ("add_index", "remove_index")] == []
    assert mode == "wal"
    engine.dispose()


def test_reopening_a_store_runs_no_migration_twice(tmp_path):
    url = f"sqlite:///{tmp_path / 'ops.sqlite'}"
    store.connect(url).dispose()
    engine = store.connect(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == "0008"
    engine.dispose()
