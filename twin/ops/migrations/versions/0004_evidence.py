"""The evidence ledger: files by hash, custody records and transfers, the Merkle log, signed tree heads.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ROWID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "evidence_log",
        sa.Column("idx", ROWID, primary_key=True, autoincrement=False),
        sa.Column("leaf_hash", sa.String(64), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("case_id", sa.String(64)),
        sa.Column("item_sha256", sa.String(64)),
    )
    op.create_index("ix_evidence_log_case", "evidence_log", ["case_id", "idx"])
    op.create_table(
        "evidence_log_nodes",
        sa.Column("id", ROWID, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    state = op.create_table(
        "evidence_log_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("frontier", sa.Text, nullable=False),
    )
    op.bulk_insert(state, [{"id": 1, "size": 0, "frontier": "[]"}])
    op.create_table(
        "evidence_heads",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tree_size", sa.BigInteger, nullable=False),
        sa.Column("root_hash", sa.String(64), nullable=False),
        sa.Column("timestamp", sa.String(40), nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("key_fingerprint", sa.String(64), nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("public_key", sa.Text, nullable=False),
    )
    op.create_table(
        "evidence_items",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sm3", sa.String(64)),
        sa.Column("stored", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "custody_records",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("item_sha256", sa.String(64), sa.ForeignKey("evidence_items.sha256"), nullable=False),
        sa.Column("category", sa.String(24), nullable=False),
        sa.Column("derived", sa.SmallInteger, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("record_sha256", sa.String(64), nullable=False),
        sa.Column("leaf_index", sa.BigInteger, sa.ForeignKey("evidence_log.idx"), nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("case_id", "item_sha256", name="uq_custody_case_item"),
        sa.UniqueConstraint("record_sha256", name="uq_custody_record_sha256"),
    )
    op.create_table(
        "custody_transfers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("record_id", sa.Integer, sa.ForeignKey("custody_records.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("from_holder", sa.Text, nullable=False),
        sa.Column("to_holder", sa.Text, nullable=False),
        sa.Column("transfer", sa.Text, nullable=False),
        sa.Column("transfer_sha256", sa.String(64), nullable=False),
        sa.Column("leaf_index", sa.BigInteger, sa.ForeignKey("evidence_log.idx"), nullable=False),
        sa.UniqueConstraint("record_id", "seq", name="uq_transfer_seq"),
    )


def downgrade() -> None:
    for name in (
        "custody_transfers",
        "custody_records",
        "evidence_items",
        "evidence_heads",
        "evidence_log_state",
        "evidence_log_nodes",
        "evidence_log",
    ):
        op.drop_table(name)
