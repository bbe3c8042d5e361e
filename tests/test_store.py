"""The store's schema: the migrations build exactly the tables the code describes."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from twin.ops import store


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
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == "0009"
    engine.dispose()


def _open(url: str) -> str:
    """Open (and so migrate) the store at ``url`` in a process of its own; what went wrong, or ''."""
    try:
        store.connect(url).dispose()
    except Exception as err:  # reported to the test, which names it
        return repr(err)
    return ""


def _open_at_once(url: str, processes: int = 4) -> list[str]:
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        return pool.map(_open, [url] * processes)


def test_processes_opening_a_new_store_at_once_all_open_it(tmp_path):
    """`twin serve` workers or writers starting on a new twin: one migrates, the others wait and find it made."""
    for trial in range(3):
        url = f"sqlite:///{tmp_path / f'ops-{trial}.sqlite'}"
        assert _open_at_once(url) == [""] * 4
        engine = store.connect(url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT COUNT(*) FROM alembic_version")).scalar_one() == 1
        engine.dispose()


def test_processes_opening_a_new_store_at_once_on_postgres(postgres_database):
    assert _open_at_once(postgres_database) == [""] * 4
    engine = store.connect(postgres_database)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == "0009"
    engine.dispose()
