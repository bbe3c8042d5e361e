"""Access: failed logins and request rates kept in the store, shared by every process of a deployment.

``login_attempts``: one row per throttled key (a user name at an address, or an address):
its failures, the last one, and until when it is locked. ``rate_buckets``: a token bucket
per key (a station account's ingests). See :mod:`web.limits`.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_attempts",
        sa.Column("key", sa.String(160), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last", sa.Float, nullable=False),
        sa.Column("locked_until", sa.Float, nullable=False),
    )
    op.create_index("ix_login_attempts_last", "login_attempts", ["last"])
    op.create_table(
        "rate_buckets",
        sa.Column("key", sa.String(160), primary_key=True),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("stamp", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_index("ix_login_attempts_last", table_name="login_attempts")
    op.drop_table("rate_buckets")
    op.drop_table("login_attempts")
