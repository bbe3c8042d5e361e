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

from twin import store
from twin.access import Access
from twin.cli import cli
from twin.evidence import Ledger, TamperError, make_bundle
from twin.evidence.binding import LEDGER_TABLES
from twin.evidence.keys import init_keys, public_key

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
        function="twin.impact.downstream_report",
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
