"""Evidence ledger: every ledger row bound to its log leaf (the ledger work of issue 11).

Adds ``leaf_index`` to the two ledger tables that had none:

* ``evidence_items.leaf_index``: the first record leaf of the file. Filled here for
  existing twins from the log (the smallest index of a ``record`` entry of that file):
  the row was written in the same transaction as that leaf, so this is what it was
  bound to; ``twin evidence check`` then compares it with the entries themselves.
* ``evidence_heads.leaf_index``: the leaf a head is recorded by, appended when it is
  signed. Heads signed before this migration have no such leaf and none can honestly be
  made for them now: they keep an empty ``leaf_index``, are still checked against the
  log and their signatures, and the check notes that their removal would go unnoticed.

Leaves written before this migration do not hold the ids of their rows (records,
transfers, shares); the check says so in a note and verifies everything else they hold.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("evidence_items", sa.Column("leaf_index", sa.BigInteger))
    op.add_column("evidence_heads", sa.Column("leaf_index", sa.BigInteger))
    op.execute(
        "UPDATE evidence_items SET leaf_index = (SELECT MIN(l.idx) FROM evidence_log l "
        "WHERE l.kind = 'record' AND l.item_sha256 = evidence_items.sha256)"
    )


def downgrade() -> None:
    op.drop_column("evidence_heads", "leaf_index")
    op.drop_column("evidence_items", "leaf_index")
