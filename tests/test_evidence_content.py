"""The content-addressed store and the ledger's writes: stored once, read-only, verified on read, never half-written."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import pytest
import sqlalchemy as sa

from twin.evidence import ContentStore, Ledger
from twin.evidence.errors import CustodyError, DuplicateEvidenceError, EvidenceError, TamperError, UnknownEvidenceError
from twin.ops.store import custody_records, evidence_items


@pytest.fixture
def ledger(tmp_path):
    folder = tmp_path / "twin"
    folder.mkdir()
    (folder / "twin.json").write_text(json.dumps({"format": "basin-twin", "name": "t"}))
    led = Ledger.open(folder, database_url=f"sqlite:///{folder / 'ops.sqlite'}")
    yield led
    led.engine.dispose()


def add(ledger, path, case="C-1", **changes):
    kw = {
        "case_id": case,
        "category": "photo",
        "description": "outfall",
        "acquired_at": "2026-09-03T10:00+02:00",
        "lon": 3.77,
        "lat": 44.16,
        "jurisdiction": "Lozère (48)",
        "method": "photographed",
        "tool": "camera",
        "tool_version": "1.0",
        "operators": ["A. Martin", "B. Roux"],
        "holder": "evidence room",
        "by": "a.martin",
    }
    kw.update(changes)
    return ledger.add(path, **kw)


def stored_files(ledger):
    return sorted(ledger.files)


def test_the_same_file_twice_is_stored_once(tmp_path):
    store = ContentStore(tmp_path / "evidence")
    f = tmp_path / "a.bin"
    f.write_bytes(b"evidence bytes")
    first, second = store.put(f), store.put_bytes(b"evidence bytes")
    sha = hashlib.sha256(b"evidence bytes").hexdigest()
    assert first.sha256 == second.sha256 == sha
    assert first.new and not second.new
    assert list(store) == [sha]
    assert store.path(sha) == tmp_path / "evidence" / "sha256" / sha[:2] / sha[2:]
    assert list((tmp_path / "evidence" / "tmp").iterdir()) == []  # nothing left behind


def test_a_stored_file_is_read_only_and_never_replaced(tmp_path):
    store = ContentStore(tmp_path / "evidence")
    s = store.put_bytes(b"sealed")
    mode = stat.S_IMODE(s.path.stat().st_mode)
    assert mode == 0o444
    before = s.path.stat().st_ino
    store.put_bytes(b"sealed")
    assert s.path.stat().st_ino == before  # the same file, not a copy written over it


def test_a_corrupted_stored_file_is_detected_on_read(tmp_path, ledger):
    f = tmp_path / "photo.jpg"
    f.write_bytes(b"\xff\xd8 a photo of the outfall")
    rec = add(ledger, f)
    sha = rec["sha256"]
    path = ledger.files.path(sha)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[3] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(TamperError, match="altered after it was stored"):
        ledger.files.read_bytes(sha)
    dest = tmp_path / "out.jpg"
    with pytest.raises(TamperError):
        ledger.export_file(sha, dest, by="judge.clerk", case_id="C-1", purpose="hearing")
    assert not dest.exists() and list(tmp_path.glob(".out.jpg.partial-*")) == []
    last = ledger.audit("C-1", ["access"])[-1]
    assert last["actor"] == "judge.clerk" and last["what"]["result"] == "altered"
    report = ledger.check()
    assert not report.ok
    assert [c.name for c in report.failures] == ["stored files match their hashes"]
    # the same store, repaired from the original, verifies again (stored copies are replaceable only by hand)
    path.write_bytes(f.read_bytes())
    assert ledger.check().ok


def test_reads_are_logged_with_who_when_and_why(tmp_path, ledger):
    f = tmp_path / "report.pdf"
    f.write_bytes(b"%PDF-1.7 lab report")
    sha = add(ledger, f, category="lab_report")["sha256"]
    out = ledger.export_file(sha, tmp_path / "copy.pdf", by="procurator.li", case_id="C-1", purpose="review")
    assert out.read_bytes() == f.read_bytes()
    ledger.records("C-1", by="judge.wang")
    kinds = [(e["kind"], e["actor"], e["what"].get("action")) for e in ledger.audit("C-1")]
    assert kinds == [("record", "a.martin", None), ("access", "procurator.li", "get"), ("access", "judge.wang", "list")]
    get = ledger.audit("C-1", ["access"])[0]
    assert get["item"] == sha and get["what"]["purpose"] == "review" and get["time"].endswith("Z")


def test_a_rejected_record_leaves_no_file_and_no_log_entry(tmp_path, ledger):
    f = tmp_path / "photo.jpg"
    f.write_bytes(b"a photo")
    with pytest.raises(CustodyError, match="operators"):
        add(ledger, f, operators=["A. Martin"])
    with pytest.raises(CustodyError, match="acquired_at"):
        add(ledger, f, acquired_at="2026-09-03 10:00")
    assert stored_files(ledger) == []
    assert ledger.log.size() == 0


def test_a_failed_transaction_leaves_no_file(tmp_path, ledger, monkeypatch):
    f = tmp_path / "photo.jpg"
    f.write_bytes(b"another photo")

    def fail(*args, **kwargs):
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(ledger.log.__class__, "append", fail)
    with pytest.raises(sa.exc.OperationalError):
        add(ledger, f)
    monkeypatch.undo()
    assert stored_files(ledger) == []
    with ledger.engine.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(custody_records)).scalar_one() == 0
        assert c.execute(sa.select(sa.func.count()).select_from(evidence_items)).scalar_one() == 0
    assert ledger.log.size() == 0


def test_the_same_file_in_two_cases_is_stored_once_and_recorded_twice(tmp_path, ledger):
    f = tmp_path / "sample.csv"
    f.write_bytes(b"station,time,As\nGM-MIALET,2026-09-03T14:00Z,0.8\n")
    a = add(ledger, f, case="C-1", category="sensor_export")
    b = add(ledger, f, case="C-2", category="sensor_export")
    assert a["sha256"] == b["sha256"] and a["record_id"] != b["record_id"]
    assert stored_files(ledger) == [a["sha256"]]
    with pytest.raises(DuplicateEvidenceError, match="already recorded in case C-1"):
        add(ledger, f, case="C-1", category="sensor_export")
    assert ledger.log.size() == 2


def test_transfers_continue_the_chain_of_holders(tmp_path, ledger):
    f = tmp_path / "bottle.txt"
    f.write_bytes(b"sample bottle 17 label")
    sha = add(ledger, f, category="sample_record")["sha256"]
    rec = ledger.transfer(sha, case_id="C-1", to="Lab", reason="analysis", time="2026-09-04T09:00+02:00", by="b.roux")
    assert rec["holder"] == "Lab" and rec["transfers"][0]["from"] == "evidence room"
    with pytest.raises(CustodyError, match="field 'from'.*its holder is 'Lab'"):
        ledger.transfer(sha, case_id="C-1", to="Court", reason="x", time="2026-09-05T09:00Z", from_="evidence room")
    with pytest.raises(CustodyError, match="field 'time'.*before"):
        ledger.transfer(sha, case_id="C-1", to="Court", reason="x", time="2026-09-01T09:00Z")
    with pytest.raises(UnknownEvidenceError):
        ledger.transfer(sha, case_id="C-9", to="Court", reason="x", time="2026-09-05T09:00Z")
    rec = ledger.transfer(sha, case_id="C-1", to="Court", reason="hearing", time="2026-09-05T09:00Z", by="lab")
    assert [t["to"] for t in rec["transfers"]] == ["Lab", "Court"]
    assert ledger.check().ok


def test_derived_products_record_what_remakes_them(tmp_path, ledger):
    f = tmp_path / "readings.csv"
    f.write_bytes(b"station,time,As\n")
    sha = add(ledger, f, category="sensor_export")["sha256"]
    rec = ledger.derive(
        b'{"peak_mg_l": 0.8}',
        name="trace.json",
        case_id="C-1",
        category="trace",
        description="downstream trace",
        inputs=[sha],
        function="twin.analysis.impact.downstream_report",
        parameters={"lon": 3.77, "lat": 44.16, "mass_kg": 40},
        operators=["A. Martin", "C. Durand"],
        holder="DDT",
        by="c.durand",
    )
    deriv = ledger.record(rec["sha256"], "C-1")["custody"]["derivation"]
    assert deriv["inputs"] == [sha]
    assert deriv["twin_manifest_sha256"] == hashlib.sha256((ledger.twin_dir / "twin.json").read_bytes()).hexdigest()
    assert deriv["parameters"] == {"lon": 3.77, "lat": 44.16, "mass_kg": 40}
    assert deriv["software"]["python"]
    with pytest.raises(UnknownEvidenceError, match="not recorded evidence"):
        ledger.derive(
            b"x",
            name="y.json",
            case_id="C-1",
            category="trace",
            description="d",
            inputs=["0" * 64],
            function="f",
            parameters={},
            operators=["A", "B"],
            holder="H",
        )
    with pytest.raises(EvidenceError, match="does not exist"):
        add(ledger, tmp_path / "missing.jpg")
