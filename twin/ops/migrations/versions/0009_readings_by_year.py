"""Readings at the scale of a national network: on PostgreSQL, ``readings`` partitioned by year (issue 13).

A national network (3,600 stations × 9 parameters every 4 hours) stores 7×10^7 readings
a year. On PostgreSQL ``readings`` becomes a table partitioned by range of ``time``: one
partition per calendar year (UTC) from :data:`FIRST_YEAR` to :data:`LAST_YEAR`, named
``readings_yYYYY``, and ``readings_default`` for any time outside them (readings before
1980 are rejected unless the ``ingest_earliest`` setting is lowered). A query of a year
reads that year's partition only; dropping or archiving a year is dropping a partition.

What changes on PostgreSQL, and why:

* the primary key is ``(id, time)``: a partitioned table's unique keys must hold the
  partition key. ``id`` still comes from the same sequence and stays unique;
* ``ix_readings_time`` is a BRIN index (block ranges): readings arrive roughly in time
  order, so a few kilobytes per year of readings find a time range, where a B-tree cost
  about a fifth of the table and slowed every insert;
* the two foreign keys (``datastream_id``, ``batch_id``) are not kept on the readings:
  PostgreSQL checks a foreign key with a trigger per inserted row, which cost more than
  the COPY itself. The only writer of readings, :func:`twin.ops.readings.store_rows`,
  takes its datastream ids from the datastream table in the same transaction (made
  there if missing, and locked) and its batch id from the batch row it has just
  inserted; datastreams and batches are never deleted.

SQLite keeps its single table. On PostgreSQL, ``stations.water_body`` also widens from 8
to 16 characters: ``reservoir`` (9), one of the water bodies GB 3838 classes, could not be
stored there (SQLite does not enforce a length, so its column is left as it was). The downgrade moves the
readings back into one table with the keys of revision 0008 (and keeps the wider
column: narrowing it would cut the reservoirs' name).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

FIRST_YEAR = 1980
LAST_YEAR = 2050

_COLUMNS = (
    "id BIGINT NOT NULL DEFAULT nextval('readings_id_seq'::regclass), datastream_id INTEGER NOT NULL, "
    "time BIGINT NOT NULL, tz_offset_min SMALLINT NOT NULL, value DOUBLE PRECISION NOT NULL, "
    "flag VARCHAR(8) NOT NULL, version SMALLINT NOT NULL, batch_id INTEGER NOT NULL, "
    "current SMALLINT NOT NULL DEFAULT 1, qualifier VARCHAR(2) NOT NULL DEFAULT ''"
)
_NAMES = "id, datastream_id, time, tz_offset_min, value, flag, version, batch_id, current, qualifier"


def year_start(year: int) -> int:
    """Seconds since 1970 (UTC) at the start of ``year``: a partition's lower bound."""
    return int(pd.Timestamp(year=year, month=1, day=1, tz="UTC").timestamp())


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite: no length is enforced (and a batch rebuild of stations would trip its foreign keys)
    op.alter_column("stations", "water_body", type_=sa.String(16), existing_type=sa.String(8), existing_nullable=False)
    op.execute("ALTER SEQUENCE readings_id_seq OWNED BY NONE")
    op.execute("ALTER TABLE readings RENAME TO readings_0008")
    for name in ("readings_pkey", "uq_reading_version", "ix_readings_time", "ix_readings_qualified"):
        op.execute(f"ALTER INDEX {name} RENAME TO {name}_0008")
    op.execute(f"CREATE TABLE readings ({_COLUMNS}) PARTITION BY RANGE (time)")
    for year in range(FIRST_YEAR, LAST_YEAR + 1):
        op.execute(
            f"CREATE TABLE readings_y{year} PARTITION OF readings "
            f"FOR VALUES FROM ({year_start(year)}) TO ({year_start(year + 1)})"
        )
    op.execute("CREATE TABLE readings_default PARTITION OF readings DEFAULT")
    op.execute(f"INSERT INTO readings ({_NAMES}) SELECT {_NAMES} FROM readings_0008")
    op.execute("DROP TABLE readings_0008")
    op.execute("ALTER TABLE readings ADD CONSTRAINT readings_pkey PRIMARY KEY (id, time)")
    op.execute("ALTER TABLE readings ADD CONSTRAINT uq_reading_version UNIQUE (datastream_id, time, version)")
    op.execute("CREATE INDEX ix_readings_time ON readings USING brin (time)")
    op.execute("CREATE INDEX ix_readings_qualified ON readings (datastream_id, time) WHERE qualifier <> ''")
    op.execute("ALTER SEQUENCE readings_id_seq OWNED BY readings.id")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER SEQUENCE readings_id_seq OWNED BY NONE")
    op.execute("ALTER TABLE readings RENAME TO readings_0009")
    for name in ("readings_pkey", "uq_reading_version", "ix_readings_time", "ix_readings_qualified"):
        op.execute(f"ALTER INDEX {name} RENAME TO {name}_0009")
    op.execute(f"CREATE TABLE readings ({_COLUMNS})")
    op.execute(f"INSERT INTO readings ({_NAMES}) SELECT {_NAMES} FROM readings_0009")
    op.execute("DROP TABLE readings_0009")  # drops its partitions with it
    op.execute("ALTER TABLE readings ADD CONSTRAINT readings_pkey PRIMARY KEY (id)")
    op.execute("ALTER TABLE readings ADD CONSTRAINT uq_reading_version UNIQUE (datastream_id, time, version)")
    op.execute("ALTER TABLE readings ADD FOREIGN KEY (datastream_id) REFERENCES datastreams (id)")
    op.execute("ALTER TABLE readings ADD FOREIGN KEY (batch_id) REFERENCES batches (id)")
    op.execute("CREATE INDEX ix_readings_time ON readings (time)")
    op.execute("CREATE INDEX ix_readings_qualified ON readings (datastream_id, time) WHERE qualifier <> ''")
    op.execute("ALTER SEQUENCE readings_id_seq OWNED BY readings.id")
