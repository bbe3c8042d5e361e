"""Stations, datastreams, ingest batches, readings, rejected rows, incidents.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")  # SQLite autoincrements only INTEGER keys


def upgrade() -> None:
    op.create_table(
        "stations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("water_body", sa.String(8), nullable=False),
        sa.Column("target_class", sa.SmallInteger, nullable=False),
        sa.Column("lon", sa.Float),
        sa.Column("lat", sa.Float),
        sa.Column("reach_id", sa.Integer),
        sa.Column("measure_m", sa.Float),
    )
    op.create_table(
        "datastreams",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("station_id", sa.String(64), sa.ForeignKey("stations.id"), nullable=False),
        sa.Column("parameter", sa.String(32), nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.UniqueConstraint("station_id", "parameter", name="uq_datastream"),
    )
    op.create_table(
        "batches",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64)),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("started", sa.BigInteger, nullable=False),
        sa.Column("finished", sa.BigInteger),
        sa.Column("stored", sa.Integer),
        sa.Column("duplicates", sa.Integer),
        sa.Column("corrections", sa.Integer),
        sa.Column("rejected", sa.Integer),
    )
    op.create_table(
        "readings",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("datastream_id", sa.Integer, sa.ForeignKey("datastreams.id"), nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("tz_offset_min", sa.SmallInteger, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("flag", sa.String(8), nullable=False),
        sa.Column("version", sa.SmallInteger, nullable=False),
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("batches.id"), nullable=False),
        sa.UniqueConstraint("datastream_id", "time", "version", name="uq_reading_version"),
    )
    op.create_index("ix_readings_time", "readings", ["time"])
    op.create_table(
        "rejected",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("batches.id"), nullable=False),
        sa.Column("line_no", sa.Integer),
        sa.Column("raw", sa.Text),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("observed", sa.BigInteger, nullable=False),
        sa.Column("reported", sa.BigInteger, nullable=False),
        sa.Column("reporter", sa.Text),
        sa.Column("description", sa.Text),
        sa.Column("case_id", sa.String(64)),
        sa.Column("coord_system", sa.String(16), nullable=False),
        sa.Column("geometry_input", sa.Text, nullable=False),
        sa.Column("geometry", sa.Text, nullable=False),
        sa.Column("minx", sa.Float, nullable=False),
        sa.Column("miny", sa.Float, nullable=False),
        sa.Column("maxx", sa.Float, nullable=False),
        sa.Column("maxy", sa.Float, nullable=False),
        sa.Column("jurisdictions", sa.Text, nullable=False),
        sa.Column("reach_id", sa.Integer),
        sa.Column("measure_m", sa.Float),
        sa.Column("downstream_stations", sa.Text, nullable=False),
        sa.Column("evidence_ids", sa.Text, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_incidents_observed", "incidents", ["observed"])
    op.create_table(
        "incident_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("note", sa.Text),
    )


def downgrade() -> None:
    for name in ("incident_events", "incidents", "rejected", "readings", "batches", "datastreams", "stations"):
        op.drop_table(name)
