"""The operations store: readings, incidents and what later issues add, in a real database.

SQLAlchemy Core over SQLite (WAL mode, ``ops.sqlite`` in the twin folder) by
default, or PostgreSQL when ``TWIN_DATABASE_URL`` says so; one schema for both,
created and changed only by the Alembic migrations in ``twin/ops/migrations``.

Portable choices, named so they can be checked:

* times are stored as integer seconds since 1970-01-01 UTC (``time``), with the
  offset of the source's time zone in minutes beside them (``tz_offset_min``);
* geometries are WKT text in the twin's CRS (no spatial extension needed);
* lists (units an incident touches, stations downstream) are JSON text.

SQLite is opened with ``journal_mode=WAL`` (readers do not block the writer) and
``synchronous=NORMAL``, which keeps every committed transaction through a crash
or kill of the process (not through a power cut, which ``FULL`` would add at a
cost in speed).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from twin.errors import TwinError

log = logging.getLogger(__name__)

metadata = sa.MetaData()

stations = sa.Table(
    "stations",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    # 16 since migration 0009 on PostgreSQL ("reservoir" has 9); SQLite enforces no length and keeps its 8
    sa.Column("water_body", sa.String(16).with_variant(sa.String(8), "sqlite"), nullable=False),
    sa.Column("target_class", sa.SmallInteger, nullable=False),
    sa.Column("lon", sa.Float),
    sa.Column("lat", sa.Float),
    sa.Column("reach_id", sa.Integer),
    sa.Column("measure_m", sa.Float),
)

datastreams = sa.Table(
    "datastreams",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("station_id", sa.String(64), sa.ForeignKey("stations.id"), nullable=False),
    sa.Column("parameter", sa.String(32), nullable=False),
    sa.Column("unit", sa.String(16), nullable=False),
    sa.UniqueConstraint("station_id", "parameter", name="uq_datastream"),
)

batches = sa.Table(
    "batches",
    metadata,
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

readings = sa.Table(
    "readings",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("datastream_id", sa.Integer, sa.ForeignKey("datastreams.id"), nullable=False),
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.Column("tz_offset_min", sa.SmallInteger, nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("flag", sa.String(8), nullable=False),
    sa.Column("version", sa.SmallInteger, nullable=False),
    sa.Column("batch_id", sa.Integer, sa.ForeignKey("batches.id"), nullable=False),
    sa.Column("current", sa.SmallInteger, nullable=False, server_default="1"),  # 1 on the latest version
    sa.UniqueConstraint("datastream_id", "time", "version", name="uq_reading_version"),
)

rejected = sa.Table(
    "rejected",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("batch_id", sa.Integer, sa.ForeignKey("batches.id"), nullable=False),
    sa.Column("line_no", sa.Integer),
    sa.Column("raw", sa.Text),
    sa.Column("reason", sa.Text, nullable=False),
)

incidents = sa.Table(
    "incidents",
    metadata,
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

incident_events = sa.Table(
    "incident_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("note", sa.Text),
)


warnings_issued = sa.Table(
    "warnings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("station_id", sa.String(64), sa.ForeignKey("stations.id"), nullable=False),
    sa.Column("parameter", sa.String(32), nullable=False),
    sa.Column("level", sa.SmallInteger, nullable=False),
    sa.Column("start", sa.BigInteger, nullable=False),
    sa.Column("end", sa.BigInteger),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),  # JSON: trigger readings, level changes, response plan
    sa.Column("issued", sa.BigInteger, nullable=False),
    sa.Column("acknowledged_by", sa.Text),
    sa.Column("acknowledged", sa.BigInteger),
    sa.UniqueConstraint("station_id", "parameter", "start", name="uq_warning_episode"),
)


class StoreError(TwinError, OSError):
    """The operations store cannot be opened or migrated."""


def sqlite_url(twin_dir: str | Path) -> str:
    return f"sqlite:///{Path(twin_dir).absolute() / 'ops.sqlite'}"


BUSY_TIMEOUT_MS = 30_000
"""How long a connection to the embedded store waits for another's lock before failing."""


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA cache_size=-65536")  # 64 MB of page cache: bulk inserts keep their indexes in memory
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.close()


def connect(url: str) -> sa.Engine:
    """An engine for the store at ``url``, its schema migrated to the latest version."""
    try:
        engine = sa.create_engine(url, future=True)
    except (sa.exc.ArgumentError, ImportError) as err:
        raise StoreError(f"cannot use database URL {url!r} ({err}); give sqlite:///path or postgresql://...") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        migrate(engine)
    except sa.exc.OperationalError as err:
        raise StoreError(f"cannot open the operations store at {engine.url!r}: {err.orig}") from None
    return engine


#: Alembic's migration context is one per process (a module global): one migration at a time
_MIGRATING = threading.Lock()
#: the PostgreSQL advisory lock key every process takes while it migrates ("twin" in ASCII)
_PG_MIGRATION_LOCK = 0x7477696E


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the schema to an Alembic revision (the latest by default).

    Safe when several threads or processes open a new store at once: threads take a
    process lock (Alembic's context is global), processes on PostgreSQL a transaction
    advisory lock, on SQLite the write lock of a ``BEGIN IMMEDIATE``; whoever comes
    second finds the schema made and does nothing.
    """
    from alembic import command

    with _migrating(engine) as conn:
        command.upgrade(_alembic(conn), revision)


def downgrade(engine: sa.Engine, revision: str) -> None:
    """Take the schema back to an older Alembic revision (what each step's ``downgrade`` undoes)."""
    from alembic import command

    with _migrating(engine) as conn:
        command.downgrade(_alembic(conn), revision)


@contextlib.contextmanager
def _migrating(engine: sa.Engine) -> Iterator[sa.Connection]:
    """One transaction holding the store's migration lock (see :func:`migrate`)."""
    with _MIGRATING:
        if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            # pysqlite begins a transaction only before the first DML, so two processes would both read
            # "no schema" and both create it; an engine of its own that begins with BEGIN IMMEDIATE
            # takes the write lock first (SQLAlchemy's recipe for pysqlite transactions)
            locked = sa.create_engine(engine.url, connect_args={"isolation_level": None}, poolclass=sa.pool.NullPool)
            event.listen(locked, "connect", _sqlite_pragmas)
            event.listen(locked, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
            try:
                with locked.begin() as conn:
                    yield conn
            finally:
                locked.dispose()
            return
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
            yield conn


def _alembic(conn: sa.Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.attributes["connection"] = conn
    return cfg


# -- the evidence ledger (twin.evidence): files by hash, custody, the Merkle log, signed heads --------

evidence_log = sa.Table(
    "evidence_log",
    metadata,
    sa.Column("idx", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=False),
    sa.Column("leaf_hash", sa.String(64), nullable=False),  # hex of H(0x00 || data)
    sa.Column("data", sa.Text, nullable=False),  # canonical JSON of the entry
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # record, transfer, access, export
    sa.Column("case_id", sa.String(64)),
    sa.Column("item_sha256", sa.String(64)),
)

evidence_log_nodes = sa.Table(
    "evidence_log_nodes",
    metadata,
    # (index << 6) | level of a complete subtree of 2**level leaves (level >= 1; leaves are in evidence_log)
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

evidence_log_state = sa.Table(
    "evidence_log_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),  # one row, id 1: also the append lock
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("frontier", sa.Text, nullable=False),  # JSON [[level, hex], ...], largest subtree first
)

evidence_heads = sa.Table(
    "evidence_heads",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tree_size", sa.BigInteger, nullable=False),
    sa.Column("root_hash", sa.String(64), nullable=False),
    sa.Column("timestamp", sa.String(40), nullable=False),  # ISO 8601 UTC, as signed
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.Column("agency", sa.String(64), nullable=False),
    sa.Column("key_fingerprint", sa.String(64), nullable=False),
    sa.Column("signature", sa.Text, nullable=False),  # base64 of the 64-byte Ed25519 signature
    sa.Column("public_key", sa.Text, nullable=False),  # PEM, kept with the head
)

evidence_items = sa.Table(
    "evidence_items",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sm3", sa.String(64)),
    sa.Column("stored", sa.BigInteger, nullable=False),
)

custody_records = sa.Table(
    "custody_records",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(64), nullable=False),
    sa.Column("item_sha256", sa.String(64), sa.ForeignKey("evidence_items.sha256"), nullable=False),
    sa.Column("category", sa.String(24), nullable=False),
    sa.Column("derived", sa.SmallInteger, nullable=False),
    sa.Column("record", sa.Text, nullable=False),  # canonical JSON, never changed
    sa.Column("record_sha256", sa.String(64), nullable=False),
    sa.Column("leaf_index", sa.BigInteger, sa.ForeignKey("evidence_log.idx"), nullable=False),
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("case_id", "item_sha256", name="uq_custody_case_item"),
    sa.UniqueConstraint("record_sha256", name="uq_custody_record_sha256"),
)

custody_transfers = sa.Table(
    "custody_transfers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("record_id", sa.Integer, sa.ForeignKey("custody_records.id"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),  # 1, 2, ... per record
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.Column("from_holder", sa.Text, nullable=False),
    sa.Column("to_holder", sa.Text, nullable=False),
    sa.Column("transfer", sa.Text, nullable=False),  # canonical JSON
    sa.Column("transfer_sha256", sa.String(64), nullable=False),
    sa.Column("leaf_index", sa.BigInteger, sa.ForeignKey("evidence_log.idx"), nullable=False),
    sa.UniqueConstraint("record_id", "seq", name="uq_transfer_seq"),
)


# -- the ledger bound to its log (issue 11, migration 0007): every row carries the index of its leaf ----
# (twin.evidence.binding says how each row is recomputed from its leaf; no foreign key: SQLite cannot
# add one to an existing table, and the check compares the rows with the leaves anyway)

evidence_items.append_column(sa.Column("leaf_index", sa.BigInteger))  # the first record leaf of the file
evidence_heads.append_column(sa.Column("leaf_index", sa.BigInteger))  # the head's leaf; empty if signed before 0007


# -- access (twin.access): users, API tokens, cases shared across jurisdictions, hearings ------------

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),  # admin, investigator, researcher, judge, station
    sa.Column("jurisdictions", sa.Text, nullable=False),  # JSON list of unit codes (investigators)
    sa.Column("stations", sa.Text, nullable=False),  # JSON list of station ids (station accounts)
    sa.Column("password_hash", sa.Text),  # werkzeug.security hash; null: token only
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.Column("disabled", sa.SmallInteger, nullable=False, server_default="0"),
    sa.UniqueConstraint("name", name="uq_user_name"),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("token_sha256", sa.String(64), nullable=False),  # hex SHA-256 of the token; the token is never kept
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.Column("revoked", sa.BigInteger),
    sa.UniqueConstraint("token_sha256", name="uq_token_sha256"),
)

case_shares = sa.Table(
    "case_shares",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(64), nullable=False),
    sa.Column("jurisdiction", sa.String(32), nullable=False),
    sa.Column("shared_by", sa.Text, nullable=False),
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.Column("leaf_index", sa.BigInteger, sa.ForeignKey("evidence_log.idx"), nullable=False),
    sa.UniqueConstraint("case_id", "jurisdiction", name="uq_case_share"),
)

hearings = sa.Table(
    "hearings",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("case_id", sa.String(64), nullable=False),
    sa.Column("bundle_path", sa.Text, nullable=False),
    sa.Column("bundle_sha256", sa.String(64), nullable=False),
    sa.Column("judge_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("expires", sa.BigInteger, nullable=False),
)


# -- throttling (web.limits): failed logins and request rates, shared by every process ---------------

login_attempts = sa.Table(
    "login_attempts",
    metadata,
    sa.Column("key", sa.String(160), primary_key=True),  # "name\x1faddress" or "address\x1faddress"
    sa.Column("failures", sa.Integer, nullable=False),  # since the key was last forgotten or cleared
    sa.Column("last", sa.Float, nullable=False),  # the last failure, seconds since 1970 UTC
    sa.Column("locked_until", sa.Float, nullable=False),  # no attempt is checked before this
)

rate_buckets = sa.Table(
    "rate_buckets",
    metadata,
    sa.Column("key", sa.String(160), primary_key=True),  # "<limit>\x1f<who>", e.g. ingest per station user
    sa.Column("tokens", sa.Float, nullable=False),
    sa.Column("stamp", sa.Float, nullable=False),  # when ``tokens`` was counted, seconds since 1970 UTC
)


# -- ingest checks (issue 11, migration 0006): below-detection readings ---------------------------------

# '' for a measured value, '<' below the detection limit (the value is the limit), 'ND' not detected with
# the limit not given (the value is 0); see twin.ops.readings.QUALIFIERS
readings.append_column(sa.Column("qualifier", sa.String(2), nullable=False, server_default=""))
