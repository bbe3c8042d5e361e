"""Warnings issued, with what triggered them, their response plans, and acknowledgements.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "warnings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("station_id", sa.String(64), sa.ForeignKey("stations.id"), nullable=False),
        sa.Column("parameter", sa.String(32), nullable=False),
        sa.Column("level", sa.SmallInteger, nullable=False),
        sa.Column("start", sa.BigInteger, nullable=False),
        sa.Column("end", sa.BigInteger),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("issued", sa.BigInteger, nullable=False),
        sa.Column("acknowledged_by", sa.Text),
        sa.Column("acknowledged", sa.BigInteger),
        sa.UniqueConstraint("station_id", "parameter", "start", name="uq_warning_episode"),
    )


def downgrade() -> None:
    op.drop_table("warnings")
