"""Access: users, hashed API tokens, cases shared across jurisdictions, hearings.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("jurisdictions", sa.Text, nullable=False),
        sa.Column("stations", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("disabled", sa.SmallInteger, nullable=False, server_default="0"),
        sa.UniqueConstraint("name", name="uq_user_name"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("revoked", sa.BigInteger),
        sa.UniqueConstraint("token_sha256", name="uq_token_sha256"),
    )
    op.create_table(
        "case_shares",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("jurisdiction", sa.String(32), nullable=False),
        sa.Column("shared_by", sa.Text, nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("leaf_index", sa.BigInteger, sa.ForeignKey("evidence_log.idx"), nullable=False),
        sa.UniqueConstraint("case_id", "jurisdiction", name="uq_case_share"),
    )
    op.create_table(
        "hearings",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("bundle_path", sa.Text, nullable=False),
        sa.Column("bundle_sha256", sa.String(64), nullable=False),
        sa.Column("judge_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("expires", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for name in ("hearings", "case_shares", "api_tokens", "users"):
        op.drop_table(name)
