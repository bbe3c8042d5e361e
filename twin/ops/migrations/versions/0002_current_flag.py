"""Mark the current version of each reading, so that views need no per-row version lookup.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("readings") as batch:
        batch.add_column(sa.Column("current", sa.SmallInteger, nullable=False, server_default="1"))
    # older versions of corrected readings are not current
    op.execute(
        "UPDATE readings SET current = 0 WHERE version < "
        "(SELECT MAX(r2.version) FROM readings r2 WHERE r2.datastream_id = readings.datastream_id "
        "AND r2.time = readings.time)"
    )


def downgrade() -> None:
    with op.batch_alter_table("readings") as batch:
        batch.drop_column("current")
