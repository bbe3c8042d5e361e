"""The ledger's tables are bound to the log: every row is recomputed from its leaf, and any change to them is caught.

A tiny twin folder (a manifest, an agency key, no model) gets a case with records (the
same photo also in a second case), a derived product, transfers, a share, reads, an
export (a bundle) and signed heads. Then, one at a time on a copy of its store, every
ledger table (:data:`twin.evidence.binding.LEDGER_TABLES`) has a row deleted, a forged
row inserted, and each of its columns edited (the columns are taken from the table, not
listed here): ``twin evidence check`` must fail naming that table and row, and
``bundle`` must refuse.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from twin.access import Access
from twin.cli import cli
from twin.evidence import Ledger, TamperError, make_bundle
from twin.evidence.binding import LEDGER_TABLES
from twin.evidence.keys import init_keys, public_key
from twin.ops import store

AGENCY = "DDT-Lozere"
CASE, OTHER = "C-1", "C-2"


def invoke(*args: str, ok: bool = True):
    result = CliRunner().invoke(cli, list(args))
    if ok:
        assert result.exit_code == 0, result.output
    return result


def record(ledger: Ledger, path: Path, case_id: str, by: str, **kw: Any) -> dict:
    fields = {
        "category": "photo",
        "description": "drainage from the old mine entering the Gardon",
        "acquired_at": "2026-09-03T11:20+02:00",
        "lon": 3.8012,
        "lat": 44.2851,
        "jurisdiction": "Lozère (48) > Florac (481)",
        "method": "photographed from the left bank",
        "tool": "Nikon D7500",
        "tool_version": "fw 1.20",
        "operators": ["A. Martin", "B. Roux"],
        "holder": "DDT Lozère evidence room",
    }
    return ledger.add(path, case_id=case_id, by=by, **(fields | kw))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("ledger")
    folder = root / "tiny"
    folder.mkdir()
    (folder / "twin.json").write_text(json.dumps({"name": "tiny", "title": "a tiny twin"}), encoding="utf-8")
    init_keys(folder, AGENCY)
    access = Access.open(folder)
    access.add_user("lozere", "investigator", jurisdictions=["48"])
    ledger = access.ledger
    rng = np.random.default_rng(7)
    photo, csv, trace = root / "DSC_0042.jpg", root / "mialet_as.csv", root / "trace.json"
    photo.write_bytes(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    csv.write_text("time,As\n2026-09-07T09:00Z,0.12\n", encoding="utf-8")
    trace.write_text('{"release": "at the old mine"}', encoding="utf-8")
    p = record(ledger, photo, CASE, "a.martin", seal="S-0042")
    c = record(ledger, csv, CASE, "b.roux", category="sensor_export", description="arsenic at Mialet (simulated)")
    d = ledger.derive(
        trace,
        case_id=CASE,
        category="trace",
        description="downstream trace of the release",
        inputs=[c["sha256"]],
        function="twin.analysis.impact.downstream_report",
        parameters={"mass_kg": 40.0},
        operators=["A. Martin", "C. Durand"],
        holder="DDT Lozère",
        by="c.durand",
    )
    record(ledger, photo, OTHER, "a.martin")  # the same file in a second case: one evidence_items row
    ledger.transfer(
        p["sha256"],
        case_id=CASE,
        to="Laboratoire départemental",
        reason="analysis",
        time="2026-09-04T09:00+02:00",
        by="b.roux",
    )
    ledger.transfer(
        p["sha256"], case_id=CASE, to="Tribunal de Mende", reason="hearing", time="2026-09-10T09:00+02:00", by="b.roux"
    )
    access.share_case(CASE, "30", by="lozere")
    ledger.records(CASE, by="gard.reader")
    ledger.export_file(c["sha256"], root / "out.csv", by="judge.li", case_id=CASE, purpose="hearing")
    bundle = make_bundle(ledger, CASE, root / "case.zip", by="clerk", overlays=False)
    ledger.sign(AGENCY)
    ledger.engine.dispose()
    with sqlite3.connect(folder / "ops.sqlite") as db:  # everything in the main file, for copies
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return {
        "dir": folder,
        "root": root,
        "photo": p["sha256"],
        "csv": c["sha256"],
        "trace": d["sha256"],
        "bundle": bundle,
        "fingerprint": public_key(folder, AGENCY).fingerprint,
    }


def copy_store(tiny: dict, name: str) -> Path:
    db = tiny["root"] / "stores" / f"{name}.sqlite"
    db.parent.mkdir(exist_ok=True)
    shutil.copyfile(tiny["dir"] / "ops.sqlite", db)
    return db


def open_copy(tiny: dict, db: Path) -> Ledger:
    return Ledger.open(tiny["dir"], database_url=f"sqlite:///{db}")


def fails(report) -> list[str]:
    return [ln for ln in report.lines() if ln.startswith("FAIL")]


# -- a sound ledger -----------------------------------------------------------------------------------


def test_a_sound_ledger_checks_and_every_row_is_what_its_leaf_says(tiny):
    result = invoke("evidence", "check", str(tiny["dir"]))
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("evidence ledger: VERIFIED")
    for table in LEDGER_TABLES:
        assert any(ln.startswith(f"ok    {table}: ") for ln in lines), table
    assert not [ln for ln in lines if ln.startswith(("FAIL", "note"))]
    ledger = Ledger.open(tiny["dir"])
    with ledger.engine.connect() as c:
        leaves = {int(i): json.loads(d) for i, d in c.execute(sa.text("SELECT idx, data FROM evidence_log"))}
        rec = c.execute(sa.select(store.custody_records).where(store.custody_records.c.case_id == CASE)).first()
        shares = c.execute(sa.select(store.case_shares)).all()
        heads = c.execute(sa.select(store.evidence_heads)).all()
    leaf = leaves[rec.leaf_index]  # the leaf holds the whole record and its row id
    assert (
        leaf["record_id"] == rec.id
        and json.dumps(leaf["custody"], sort_keys=True, separators=(",", ":"), ensure_ascii=False) == rec.record
    )
    (share,) = shares
    assert leaves[share.leaf_index] | {"time": 0} == {
        "kind": "access",
        "action": "share",
        "time": 0,
        "actor": "lozere",
        "case_id": CASE,
        "with": "30",
        "owners": ["48", "481"],
        "share_id": share.id,
    }
    assert [leaves[h.leaf_index]["kind"] for h in heads] == ["head", "head"]
    assert [leaves[h.leaf_index]["signature"] for h in heads] == [h.signature for h in heads]
    # the case's items, from the log: the photo's two transfers in order, the shared photo once per case
    items = ledger.case_items(CASE)
    assert [r["item_sha256"] for r, _ in items] == [tiny["photo"], tiny["csv"], tiny["trace"]]
    assert [t["to_holder"] for t in items[0][1]] == ["Laboratoire départemental", "Tribunal de Mende"]
    assert [r["item_sha256"] for r, _ in ledger.case_items(OTHER)] == [tiny["photo"]]
    ledger.engine.dispose()


# -- tampering with the store, one change at a time ---------------------------------------------------


def pk_of(table: sa.Table) -> str:
    (col,) = table.primary_key.columns
    return col.name


def forged(value: Any, column: sa.Column) -> Any:
    """A different value of the same form, as someone editing the table would write."""
    if value is None:
        return 7 if isinstance(column.type, sa.Integer) else "forged"
    if isinstance(value, int):
        return value + 1000
    text = str(value)
    i = len(text) // 2
    ch = text[i]
    hexdigits = "0123456789abcdef"
    new = hexdigits[(hexdigits.index(ch) + 1) % 16] if ch in hexdigits else ("x" if ch != "x" else "y")
    return text[:i] + new + text[i + 1 :]


def label(table: str, value: Any) -> str:
    return str(value)


def first_row(db: sqlite3.Connection, table: sa.Table) -> dict[str, Any]:
    cur = db.execute(f"SELECT * FROM {table.name} ORDER BY {pk_of(table)} LIMIT 1")
    names = [d[0] for d in cur.description]
    return dict(zip(names, cur.fetchone()))


def tampers() -> list[tuple[str, str, str | None]]:
    out = []
    for name in LEDGER_TABLES:
        table = store.metadata.tables[name]
        out += [(name, "delete", None), (name, "insert", None)]
        out += [(name, "edit", c.name) for c in table.columns]
    return out


def tamper(db: sqlite3.Connection, table: sa.Table, how: str, column: str | None) -> set[str]:
    """Change the store as asked; returns the labels under which the change may be named."""
    pk = pk_of(table)
    row = first_row(db, table)
    key = row[pk]
    if how == "delete":
        db.execute(f"DELETE FROM {table.name} WHERE {pk} = ?", (key,))
        return {label(table.name, key)}
    if how == "insert":
        new = dict(row)
        unique = {c.name for u in table.constraints if isinstance(u, sa.UniqueConstraint) for c in u.columns}
        for name in unique | {pk}:
            if isinstance(row[name], int):
                top = db.execute(f"SELECT MAX({name}) FROM {table.name}").fetchone()[0]
                new[name] = top + 1
            else:
                new[name] = forged(row[name], table.c[name])
        cols = ", ".join(new)
        db.execute(f"INSERT INTO {table.name} ({cols}) VALUES ({', '.join('?' * len(new))})", tuple(new.values()))
        return {label(table.name, new[pk])}
    assert column is not None
    value = forged(row[column], table.c[column])
    db.execute(f"UPDATE {table.name} SET {column} = ? WHERE {pk} = ?", (value, key))
    return {label(table.name, key)} | ({label(table.name, value)} if column == pk else set())


def names_row(line: str, table: str, labels: set[str]) -> bool:
    body = line[len("FAIL  ") :]
    if not body.startswith(table):
        return False
    return any(re.search(rf"\brow {re.escape(lab)}(?!\d)", body) for lab in labels)


@pytest.mark.parametrize(("table", "how", "column"), tampers(), ids=lambda v: str(v))
def test_every_deletion_insertion_and_edit_of_a_ledger_table_is_caught(tiny, tmp_path, table, how, column):
    db_path = copy_store(tiny, f"{table}-{how}-{column}")
    with sqlite3.connect(db_path) as db:
        labels = tamper(db, store.metadata.tables[table], how, column)
    ledger = open_copy(tiny, db_path)
    try:
        report = ledger.check(files=False)
        bad = fails(report)
        assert not report.ok, f"{how} {table}.{column} was not noticed"
        assert any(names_row(ln, table, labels) for ln in bad), (labels, bad)
        with pytest.raises(TamperError, match="the evidence ledger does not verify, so it is not exported"):
            make_bundle(ledger, CASE, tmp_path / "case.zip", by="clerk", overlays=False)
        assert not (tmp_path / "case.zip").exists()
    finally:
        ledger.engine.dispose()


# -- what readers show ----------------------------------------------------------------------------------


def test_audit_shows_what_the_leaves_say_not_the_columns_beside_them(tiny):
    db_path = copy_store(tiny, "audit-forged-actor")
    with sqlite3.connect(db_path) as db:  # the photo's record, its actor and case rewritten in the columns only
        db.execute("UPDATE evidence_log SET actor = 'mallory', case_id = ? WHERE idx = 0", (OTHER,))
    ledger = open_copy(tiny, db_path)
    try:
        entries = ledger.audit(CASE)
        first = entries[0]
        assert (first["index"], first["kind"], first["actor"], first["item"]) == (
            0,
            "record",
            "a.martin",
            tiny["photo"],
        )
        assert all(e["actor"] != "mallory" for e in ledger.audit())
        assert 0 not in [e["index"] for e in ledger.audit(OTHER)]  # not moved to the other case either
        result = invoke("audit", str(tiny["dir"]), "--case", CASE, "--kind", "record")
        assert [json.loads(ln)["actor"] for ln in result.stdout.splitlines()] == ["a.martin", "b.roux", "c.durand"]
        assert not ledger.check(files=False).ok
    finally:
        ledger.engine.dispose()


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        (
            "UPDATE custody_transfers SET to_holder = 'Mallory' WHERE id = 1",
            "custody_transfers row 1: to_holder is 'Mallory'",
        ),
        ("UPDATE custody_records SET category = 'map' WHERE id = 2", "custody_records row 2: category is 'map'"),
        ("DELETE FROM custody_transfers WHERE id = 2", "custody_transfers: leaf 5 (transfer of sha256"),
        ("DELETE FROM custody_records WHERE id = 3", "custody_records: leaf 2 (record of sha256"),
    ],
)
def test_listing_a_case_refuses_rows_that_are_not_what_their_leaves_say(tiny, sql, named):
    db_path = copy_store(tiny, f"reader-{abs(hash(sql))}")
    with sqlite3.connect(db_path) as db:
        db.execute(sql)
    ledger = open_copy(tiny, db_path)
    try:
        with pytest.raises(TamperError, match=re.escape(named)):
            ledger.records(CASE)
        with pytest.raises(TamperError, match="does not verify, so it is not exported: .*" + re.escape(named)):
            ledger.case_items(CASE)
        assert [r["sha256"] for r in ledger.records(OTHER)] == [tiny["photo"]]  # the other case is untouched
    finally:
        ledger.engine.dispose()


def test_one_items_custody_and_shares_are_checked_before_they_are_shown(tiny):
    db_path = copy_store(tiny, "reader-item")
    with sqlite3.connect(db_path) as db:
        db.execute("UPDATE custody_transfers SET transfer = replace(transfer, 'analysis', 'nothing') WHERE id = 1")
        db.execute("UPDATE case_shares SET jurisdiction = '12' WHERE id = 1")
    ledger = open_copy(tiny, db_path)
    try:
        with pytest.raises(TamperError, match="custody_transfers row 1: transfer differs from what leaf 4 says"):
            ledger.record(tiny["photo"], CASE)
        with pytest.raises(TamperError, match="custody_transfers row 1"):  # no transfer built on a forged chain
            ledger.transfer(tiny["photo"], case_id=CASE, to="X", reason="y", time="2026-09-11T09:00Z", by="z")
        assert ledger.record(tiny["csv"], CASE)["holder"] == "DDT Lozère evidence room"  # its rows are sound
        with pytest.raises(TamperError, match="case_shares row 1: jurisdiction is '12' but leaf 6 says '30'"):
            ledger.shares(CASE)
    finally:
        ledger.engine.dispose()


# -- a ledger written before the binding ----------------------------------------------------------------


def test_a_ledger_from_before_the_binding_is_migrated_and_still_checked(tmp_path):
    """Migration 0007 on a store whose leaves hold no row ids and whose heads have no leaf."""
    from twin.evidence import EvidenceLog, make_record
    from twin.evidence.canonical import digest_bytes
    from twin.evidence.keys import Signer, sign_head

    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "twin.json").write_text('{"name": "old"}', encoding="utf-8")
    init_keys(folder, AGENCY)
    url = f"sqlite:///{folder / 'ops.sqlite'}"
    engine = sa.create_engine(url)
    store.migrate(engine, "0006")
    sha = "ab" * 32
    body = make_record(
        {
            "case_id": CASE,
            "description": "an outfall",
            "category": "photo",
            "file": {
                "name": "a.jpg",
                "format": "image/jpeg",
                "size": 10,
                "hashes": [{"algorithm": "SHA-256", "value": sha}],
            },
            "acquired_at": "2026-09-03T11:20+02:00",
            "place": {"lon": 3.8, "lat": 44.3, "jurisdiction": "Lozère (48)"},
            "method": "photographed",
            "tool": {"name": "Nikon", "version": "1"},
            "operators": ["A", "B"],
            "holder": "DDT",
        }
    ).canonical()
    log = EvidenceLog(engine)
    with engine.begin() as conn:  # as the ledger wrote them before migration 0007
        leaf = log.append(
            conn,
            [
                {
                    "kind": "record",
                    "time": "2026-09-03T10:00:00.000000Z",
                    "actor": "a.martin",
                    "case_id": CASE,
                    "item": sha,
                    "record_sha256": digest_bytes(body),
                    "category": "photo",
                }
            ],
        )[0]
        conn.execute(
            sa.text("INSERT INTO evidence_items (sha256, size, sm3, stored) VALUES (:s, 10, NULL, :t)"),
            {"s": sha, "t": leaf.time},
        )
        conn.execute(
            sa.text(
                "INSERT INTO custody_records (id, case_id, item_sha256, category, derived, record, record_sha256, leaf_index, created) "
                "VALUES (7, :c, :s, 'photo', 0, :r, :d, :i, :t)"
            ),
            {"c": CASE, "s": sha, "r": body.decode(), "d": digest_bytes(body), "i": leaf.index, "t": leaf.time},
        )
        st = log.lock(conn)
        head = sign_head(Signer(folder, AGENCY), st.frontier.size, st.frontier.root())
        conn.execute(
            sa.text(
                "INSERT INTO evidence_heads (tree_size, root_hash, timestamp, time, agency, key_fingerprint, signature, public_key) "
                "VALUES (:n, :r, :ts, 0, :a, :f, :s, :p)"
            ),
            {
                "n": head.tree_size,
                "r": head.root_hash.hex(),
                "ts": head.timestamp,
                "a": AGENCY,
                "f": head.key_fingerprint,
                "s": head.to_json()["signature"],
                "p": public_key(folder, AGENCY).pem.decode(),
            },
        )
    engine.dispose()
    ledger = Ledger.open(folder)  # migrates to the latest revision
    with ledger.engine.connect() as c:
        assert c.execute(sa.text("SELECT leaf_index FROM evidence_items")).scalar_one() == 0  # from the record leaf
        assert c.execute(sa.text("SELECT leaf_index FROM evidence_heads")).scalar_one() is None  # none is honest
    report = ledger.check(files=False)
    assert not [ln for ln in report.lines() if ln.startswith("FAIL")]
    notes = " ".join(report.notes)
    assert "custody_records: 1 rows (7) were written before the ledger's binding" in notes
    assert "1 signed heads (1) were signed before heads were recorded in the log" in notes
    ledger.transfer(sha, case_id=CASE, to="Lab", reason="analysis", time="2026-09-04T09:00+02:00", by="b.roux")
    assert ledger.check(files=False).ok  # a new transfer continues the old record
    with ledger.engine.begin() as c:  # and the old rows are still held to what their leaves say
        c.execute(sa.text("UPDATE custody_records SET category = 'map'"))
    assert "custody_records row 7: category is 'map' but leaf 0 says 'photo'" in "\n".join(
        ledger.check(files=False).lines()
    )
    ledger.engine.dispose()
    engine = sa.create_engine(url)
    store.downgrade(engine, "0006")
    with engine.connect() as c:
        assert "leaf_index" not in {col["name"] for col in sa.inspect(c).get_columns("evidence_items")}
    engine.dispose()


def test_the_command_line_names_the_row_and_refuses_to_bundle(tiny, tmp_path, monkeypatch):
    db_path = copy_store(tiny, "cli")
    with sqlite3.connect(db_path) as db:  # the three: a record row deleted, an actor and a case edited
        db.execute("DELETE FROM custody_records WHERE id = 3")
        db.execute("UPDATE evidence_log SET actor = 'x' WHERE idx = 1")
        db.execute("UPDATE case_shares SET case_id = 'C-9'")
    monkeypatch.setenv("TWIN_DATABASE_URL", f"sqlite:///{db_path}")
    d = str(tiny["dir"])
    r = invoke("evidence", "check", d, "--no-files", ok=False)
    assert r.exit_code == 1
    fails = [ln for ln in r.stdout.splitlines() if ln.startswith("FAIL")]
    assert (
        f"FAIL  custody_records: leaf 2 (record of sha256 {tiny['trace'][:12]}… in case C-1) lost its row 3 — deleted?"
        in fails
    )
    assert "FAIL  evidence_log row 1: actor is 'x' but its entry says 'b.roux'" in fails
    assert "FAIL  case_shares row 1: case_id is 'C-9' but leaf 6 says 'C-1'" in fails
    assert r.stdout.splitlines()[-1].startswith("evidence ledger: FAILED")
    assert r.stderr.startswith("twin: error: evidence ledger failed")
    out = tmp_path / "case.zip"
    r = invoke("evidence", "bundle", d, "--case", CASE, "-o", str(out), "--no-overlays", ok=False)
    assert r.exit_code == 1 and not out.exists()
    assert "twin: error: the evidence ledger does not verify, so it is not exported" in r.stderr
    assert "lost its row 3 — deleted?" in r.stderr
