"""Readings: what the ingest checks need (issue 11).

* ``readings.qualifier``: '' for a measured value, '<' for a reading below its detection
  limit (the value is then the limit), 'ND' for "not detected" without a limit (value 0);
  with a partial index on the few qualified readings, for the xarray view.
* HJ 212's data flag ``S`` (a value set by hand) is stored as ``H`` from now on, since the
  twin's ``S`` means simulated (see :mod:`twin.ops.flags`): readings already ingested from
  HJ 212 batches with flag ``S`` are renamed.

The downgrade drops the qualifier (a below-limit reading keeps its value, the limit, and
loses the mark) and gives HJ 212 readings their ``S`` back.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_HJ212_BATCHES = "batch_id IN (SELECT id FROM batches WHERE format = 'hj212')"


def upgrade() -> None:
    with op.batch_alter_table("readings") as batch:
        batch.add_column(sa.Column("qualifier", sa.String(2), nullable=False, server_default=""))
    op.create_index(
        "ix_readings_qualified",
        "readings",
        ["datastream_id", "time"],
        sqlite_where=sa.text("qualifier <> ''"),
        postgresql_where=sa.text("qualifier <> ''"),
    )
    op.execute(f"UPDATE readings SET flag = 'H' WHERE flag = 'S' AND {_HJ212_BATCHES}")


def downgrade() -> None:
    op.execute(f"UPDATE readings SET flag = 'S' WHERE flag = 'H' AND {_HJ212_BATCHES}")
    op.drop_index("ix_readings_qualified", table_name="readings")
    with op.batch_alter_table("readings") as batch:
        batch.drop_column("qualifier")
