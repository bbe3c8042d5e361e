"""The court bundle end to end on the demo twin with the mine-leak scenario, and tampering with every kind of member.

A copy of the demo twin gets the scenario (seed 1: its incident has case id
SCENARIO-mine-leak-1), an agency key, three items (a photo-like PNG at the old mine,
a CSV export of the arsenic readings at Mialet, and a derived trace JSON whose recorded
release re-makes the plume) and a transfer; the bundle is made and checked through
the command line, then altered one byte at a time.
"""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import twin
from twin.analysis.impact import downstream_report
from twin.analysis.scenarios import run
from twin.cli import cli
from twin.evidence import DamagedBundleError, Ledger, verify_bundle
from twin.evidence import overlays as ov
from twin.evidence.bundle import release_plume

CASE = "SCENARIO-mine-leak-1"
AGENCY = "DDT-Lozere"
TEAL = np.array(ov.MARKER_RGB)


def invoke(*args: str, ok: bool = True):
    result = CliRunner().invoke(cli, list(args))
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def case(demo_dir, tmp_path_factory):
    """A copy of the demo twin with the scenario, a key, three items, a transfer; and its bundle."""
    root = tmp_path_factory.mktemp("evidence")
    folder = root / "cevennes"
    shutil.copytree(demo_dir, folder)
    basin = twin.open(str(folder))
    truth = run(basin.model, basin.store, "mine-leak", folder=basin.path, seed=1)
    src = truth["source"]
    d = str(folder)
    fingerprint = json.loads(invoke("keys", "init", d, "--agency", AGENCY).stdout)["fingerprint"]

    rng = np.random.default_rng(1)
    photo = root / "DSC_0042.png"
    img = (rng.random((48, 64, 3)) * 60 + np.array([60, 110, 70])).astype("uint8")
    Image.fromarray(img).save(photo)
    readings = basin.readings.query(["GM-MIALET"], ["As"], truth["window"][0], truth["window"][1])
    csv = root / "mialet_as.csv"
    readings.to_csv(csv, index=False)
    report = downstream_report(basin.model, src["lon"], src["lat"], src["time"], 40.0, "As")
    trace = root / "trace.json"
    trace.write_text(
        json.dumps({"release": report["release"], "entries": report["entries"]}, default=str, sort_keys=True)
    )

    common = ["--case", CASE, "--operator", "A. Martin", "--operator", "B. Roux"]
    photo_rec = json.loads(
        invoke(
            "evidence",
            "add",
            d,
            str(photo),
            *common,
            "--category",
            "photo",
            "--description",
            "drainage from the old mine entering the Gardon",
            "--acquired-at",
            "2026-09-03T11:20+02:00",
            "--lon",
            str(src["lon"]),
            "--lat",
            str(src["lat"]),
            "--method",
            "photographed from the left bank",
            "--tool",
            "Nikon D7500",
            "--tool-version",
            "fw 1.20",
            "--holder",
            "DDT Lozère evidence room",
            "--seal",
            "S-0042",
            "--sm3",
            "--by",
            "a.martin",
        ).stdout
    )
    csv_rec = json.loads(
        invoke(
            "evidence",
            "add",
            d,
            str(csv),
            *common,
            "--category",
            "sensor_export",
            "--description",
            "arsenic readings at Mialet (simulated)",
            "--acquired-at",
            "2026-09-07T09:00Z",
            "--lon",
            "3.9517",
            "--lat",
            "44.0985",
            "--method",
            "exported from the station's logger",
            "--tool",
            "basin twin readings",
            "--tool-version",
            "0.1.0",
            "--holder",
            "DDT Gard",
            "--by",
            "b.roux",
        ).stdout
    )
    release = {"lon": src["lon"], "lat": src["lat"], "at": src["time"], "mass_kg": 40.0, "parameter": "As"}
    trace_rec = json.loads(
        invoke(
            "evidence",
            "derive",
            d,
            str(trace),
            "--case",
            CASE,
            "--category",
            "trace",
            "--description",
            "downstream trace of the release at the old mine",
            "--input",
            csv_rec["sha256"],
            "--function",
            "twin.analysis.impact.downstream_report",
            "--param",
            "release=" + json.dumps(release),
            "--operator",
            "A. Martin",
            "--operator",
            "C. Durand",
            "--holder",
            "DDT Lozère",
            "--by",
            "c.durand",
        ).stdout
    )
    invoke(
        "evidence",
        "transfer",
        d,
        photo_rec["sha256"][:12],
        "--case",
        CASE,
        "--to",
        "Laboratoire départemental",
        "--reason",
        "analysis of the deposit",
        "--at",
        "2026-09-04T09:00+02:00",
        "--by",
        "b.roux",
    )
    zpath = root / "case.zip"
    out = json.loads(invoke("evidence", "bundle", d, "--case", CASE, "-o", str(zpath), "--by", "clerk.wang").stdout)
    return {
        "dir": folder,
        "zip": zpath,
        "out": out,
        "truth": truth,
        "fingerprint": fingerprint,
        "photo": photo_rec["sha256"],
        "csv": csv_rec["sha256"],
        "trace": trace_rec["sha256"],
        "release": release,
    }


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def rewrite(src: Path, dst: Path, change: dict[str, bytes | None]) -> Path:
    """A copy of the bundle with members replaced (or removed, for None), as a careful forger would make it:
    a sound zip, its members written as the bundle's are."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = change.get(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info, data)
        for name, data in change.items():
            if name not in zin.namelist() and data is not None:
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                zout.writestr(info, data)
    return dst


def flip(data: bytes, at: int) -> bytes:
    b = bytearray(data)
    b[at] ^= 0x01
    return bytes(b)


# -- a good bundle ------------------------------------------------------------------------------------


def test_the_bundle_verifies_and_says_what_it_checked(case):
    result = invoke("evidence", "verify", str(case["zip"]), "--fingerprint", case["fingerprint"])
    lines = result.stdout.splitlines()
    ok = [ln for ln in lines if ln.startswith("ok")]
    for what in (
        "zip",
        "manifest",
        "public key",
        "trusted key",
        "tree head",
        "signature",
        "export leaf",
        "no unlisted members",
    ):
        assert any(ln.startswith(f"ok    {what}") for ln in ok), what
    for sha in (case["photo"], case["csv"], case["trace"]):
        assert any(ln.startswith(f"ok    custody custody/{sha}.json") and "included" in ln for ln in ok)
        assert any(ln.startswith(f"ok    file files/{sha}.") for ln in ok)
    assert any(
        ln.startswith(f"ok    transfer custody/{case['photo']}.transfer-1.json") and "→ Laboratoire départemental" in ln
        for ln in ok
    )
    assert any(ln.startswith(f"ok    SM3 files/{case['photo']}") for ln in ok)
    assert not [ln for ln in lines if ln.startswith("FAIL")]
    assert lines[-1].endswith("VERIFIED (" + f"{len(ok)} of {len(ok)} checks passed)")
    wrong = invoke("evidence", "verify", str(case["zip"]), "--fingerprint", "ab" * 32, ok=False)
    assert wrong.exit_code == 1
    assert (
        f"FAIL  trusted key: signed by 'DDT-Lozere' with key {case['fingerprint']}, which is not among" in wrong.output
    )
    colons = ":".join(case["fingerprint"][i : i + 2] for i in range(0, 64, 2)).upper()  # as people copy it
    assert invoke("evidence", "verify", str(case["zip"]), "--fingerprint", "ab" * 32, "--fingerprint", colons)


def test_without_a_trusted_key_verify_fails_and_says_how_to_pin_it(case, tmp_path):
    result = invoke("evidence", "verify", str(case["zip"]), ok=False)
    assert result.exit_code == 1
    (line,) = [ln for ln in result.stdout.splitlines() if ln.startswith("FAIL")]  # the only failure
    assert line.startswith("FAIL  trusted key: no key is trusted, so who signed is not known")
    pin = f"`twin evidence verify {case['zip']} --fingerprint {case['fingerprint']}`"
    assert pin in line and "--trusted-keys FILE" in line
    # what an agency publishes is a trusted keys file; the verifier passes it back
    published = tmp_path / "agencies.txt"
    invoke("keys", "export", str(case["dir"]), "-o", str(published))
    assert published.read_text().splitlines()[1:] == [f"{AGENCY} {case['fingerprint']}"]
    assert (
        invoke("evidence", "verify", str(case["zip"]), "--trusted-keys", str(published))
        .stdout.splitlines()[-1]
        .endswith("checks passed)")
    )
    # a key trusted for another agency does not vouch for this one
    (tmp_path / "other.txt").write_text(f"# published\nEPB-Gard {case['fingerprint']}\n")
    r = invoke("evidence", "verify", str(case["zip"]), "--trusted-keys", str(tmp_path / "other.txt"), ok=False)
    assert (
        f"FAIL  trusted key: key {case['fingerprint']} is EPB-Gard's, but the bundle says 'DDT-Lozere' signed it"
        in r.output
    )
    (tmp_path / "bad.txt").write_text("DDT-Lozere not-a-fingerprint\n")
    r = invoke("evidence", "verify", str(case["zip"]), "--trusted-keys", str(tmp_path / "bad.txt"), ok=False)
    assert r.exit_code == 1 and "line 1" in r.output and "is not a key fingerprint" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_a_bundle_re_signed_with_another_agency_key_fails_against_the_published_key(case, tmp_path):
    """A forger with their own key re-signs the head and swaps the key: sound in itself, not the agency's."""
    from twin.evidence.keys import Signer, init_keys, sign_head

    forger = tmp_path / "forger"
    forger.mkdir()
    init_keys(forger, AGENCY)  # the same agency name, another key
    signer = Signer(forger, AGENCY)
    m = members(case["zip"])
    head = json.loads(m["log/head.json"])
    forged = sign_head(signer, head["tree_size"], bytes.fromhex(head["root_hash"]))
    manifest = json.loads(m["manifest.json"])
    manifest["public_key"]["fingerprint"] = signer.public.fingerprint
    bad = rewrite(
        case["zip"],
        tmp_path / "resigned.zip",
        {
            "log/head.json": forged.data,
            "log/head.sig": forged.signature,
            f"keys/{AGENCY}.pub": signer.public.pem,
            "manifest.json": (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode(),
        },
    )
    report = verify_bundle(bad, trusted=[case["fingerprint"]])
    assert not report.ok
    failed = {c.name: c.detail for c in report.failures}
    assert failed["trusted key"].startswith(
        f"signed by 'DDT-Lozere' with key {signer.public.fingerprint}, which is not"
    )


def test_the_bundle_holds_files_records_proofs_head_key_overlays_and_viewer(case):
    m = members(case["zip"])
    manifest = json.loads(m["manifest.json"])
    shas = [case["photo"], case["csv"], case["trace"]]
    want = {"manifest.json", "viewer.html", "log/head.json", "log/head.sig", f"keys/{AGENCY}.pub", "proofs/export.json"}
    want |= {"overlays/map.png", "overlays/scene.png", "overlays/overlays.json"}
    want |= {f"custody/{s}.json" for s in shas} | {f"proofs/{s}.json" for s in shas}
    want |= {f"files/{case['photo']}.png", f"files/{case['csv']}.csv", f"files/{case['trace']}.json"}
    want |= {f"custody/{case['photo']}.transfer-1.json"}
    assert set(m) == want
    assert manifest["case_id"] == CASE and manifest["agency"] == AGENCY
    assert manifest["public_key"]["fingerprint"] == case["fingerprint"]
    assert manifest["incident"]["id"] == case["truth"]["incident_id"]
    assert [(i["sha256"], i["marker"], i["derived"]) for i in manifest["items"]] == [
        (case["photo"], "E1", False),
        (case["csv"], "E2", False),
        (case["trace"], None, True),
    ]
    assert manifest["items"][0]["holder"] == "Laboratoire départemental"
    # where each was acquired, in the twin's units (looked up: no --jurisdiction was given)
    assert manifest["items"][0]["place"]["jurisdiction"].startswith("Lozère (48) > Florac (48001)")
    assert manifest["items"][1]["place"]["jurisdiction"].startswith("Gard (30) > ")
    head = json.loads(m["log/head.json"])
    assert head["tree_size"] == case["out"]["tree_size"] and len(m["log/head.sig"]) == 64
    # the files are the ones recorded, byte for byte
    ledger = Ledger.open(case["dir"])
    for item in manifest["items"]:
        assert m[item["file"]] == ledger.files.read_bytes(item["sha256"])
    ledger.engine.dispose()


def test_the_overlays_show_the_case_at_the_incident_time(case):
    m = members(case["zip"])
    params = json.loads(m["overlays/overlays.json"])
    incident_time = json.loads(m["manifest.json"])["incident"]["observed"]
    assert params["markers_drawn"] == ["E1", "E2"]
    assert params["scene"]["plume"]["substance"] == "As"  # the trace's recorded release, re-run
    assert params["plume_from"]["item"] == case["trace"]
    assert params["scene"]["time"].startswith(incident_time[:16])
    assert case["truth"]["incident_id"] in params["scene"]["incidents"]
    assert "red" in {s["level"] for s in params["scene"]["stations"].values()}  # Mialet is red as the plume passes
    for name in ("overlays/map.png", "overlays/scene.png"):
        img = np.asarray(Image.open(io.BytesIO(m[name])).convert("RGB")).astype(int)
        assert img.shape == (800, 1280, 3)
        teal = (np.abs(img - TEAL) <= 12).all(axis=2)
        assert teal.sum() > 50, f"no evidence markers in {name}"


def test_the_overlays_are_re_made_byte_for_byte_from_what_the_bundle_records(case):
    params = json.loads(members(case["zip"])["overlays/overlays.json"])
    basin = twin.open(str(case["dir"]))
    again = ov.render(
        basin.model,
        basin.store,
        at=params["at"],
        incident=params["incident"],
        markers=[ov.Marker(k["label"], k["lon"], k["lat"]) for k in params["markers"]],
        plume=release_plume(basin.model, params["plume_from"]["release"]),
        size=tuple(params["size"]),
        max_triangles=params["max_triangles"],
    )
    m = members(case["zip"])
    assert again.map_png == m["overlays/map.png"]
    assert again.scene_png == m["overlays/scene.png"]


def test_reads_and_exports_are_in_the_audit(case, tmp_path):
    d = str(case["dir"])
    invoke(
        "evidence",
        "get",
        d,
        case["csv"],
        "-o",
        str(tmp_path / "x.csv"),
        "--case",
        CASE,
        "--by",
        "judge.li",
        "--purpose",
        "hearing",
    )
    lines = [json.loads(ln) for ln in invoke("audit", d, "--case", CASE).stdout.splitlines()]
    kinds = [(e["kind"], e["actor"]) for e in lines]
    assert kinds[:4] == [("record", "a.martin"), ("record", "b.roux"), ("record", "c.durand"), ("transfer", "b.roux")]
    export = next(e for e in lines if e["kind"] == "export")
    assert export["actor"] == "clerk.wang" and export["what"]["manifest_sha256"] == case["out"]["manifest_sha256"]
    assert export["index"] == case["out"]["export_leaf"]
    get = lines[-1]
    assert (get["kind"], get["actor"], get["item"], get["what"]["purpose"]) == (
        "access",
        "judge.li",
        case["csv"],
        "hearing",
    )
    only = [json.loads(ln)["kind"] for ln in invoke("audit", d, "--kind", "export").stdout.splitlines()]
    assert only == ["export"]


# -- tampering ----------------------------------------------------------------------------------------

KINDS = {
    # kind: (member, names of checks of which at least one must fail)
    "evidence file": (lambda c: f"files/{c['photo']}.png", ["file files/"]),
    "derived file": (lambda c: f"files/{c['trace']}.json", ["file files/"]),
    "custody record": (lambda c: f"custody/{c['csv']}.json", ["custody custody/", "file custody/"]),
    "transfer": (lambda c: f"custody/{c['photo']}.transfer-1.json", ["transfer custody/", "file custody/"]),
    "inclusion proof": (lambda c: f"proofs/{c['trace']}.json", ["custody custody/"]),
    "export proof": (lambda c: "proofs/export.json", ["export leaf"]),
    "tree head": (lambda c: "log/head.json", ["tree head", "signature"]),
    "signature": (lambda c: "log/head.sig", ["signature"]),
    "public key": (lambda c: f"keys/{AGENCY}.pub", ["public key", "file keys/"]),
    "manifest": (lambda c: "manifest.json", ["manifest", "export leaf"]),
    "overlay": (lambda c: "overlays/scene.png", ["file overlays/"]),
    "viewer": (lambda c: "viewer.html", ["file viewer.html"]),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_one_flipped_byte_in_any_member_fails_verification_and_says_where(case, tmp_path, kind):
    member, expected = KINDS[kind]
    name = member(case)
    data = members(case["zip"])[name]
    for k, at in enumerate((0, len(data) // 2, len(data) - 1)):
        bad = rewrite(case["zip"], tmp_path / f"bad{k}.zip", {name: flip(data, at)})
        result = invoke("evidence", "verify", str(bad), "--fingerprint", case["fingerprint"], ok=False)
        assert result.exit_code == 1, f"{kind}: byte {at} flipped and still verified"
        fails = [ln for ln in result.output.splitlines() if ln.startswith("FAIL")]
        assert any(ln[6:].startswith(tuple(expected)) for ln in fails), (kind, at, fails)
        assert "twin: error: bundle" in result.output and "failed" in result.output


def test_a_missing_or_an_added_member_fails(case, tmp_path):
    gone = rewrite(case["zip"], tmp_path / "gone.zip", {f"proofs/{case['csv']}.json": None})
    r = invoke("evidence", "verify", str(gone), ok=False)
    assert r.exit_code == 1 and f"proofs/{case['csv']}.json is missing" in r.output
    extra = rewrite(case["zip"], tmp_path / "extra.zip", {"files/extra.jpg": b"planted"})
    r = invoke("evidence", "verify", str(extra), ok=False)
    assert r.exit_code == 1 and "members not in the manifest: ['files/extra.jpg']" in r.output
    with zipfile.ZipFile(extra, "a") as zf:  # planted by a tool that writes its own times and modes
        zf.writestr("files/more.jpg", b"planted too")
    r = invoke("evidence", "verify", str(extra), ok=False)
    assert r.output == (
        "twin: error: bundle 'extra.zip' is damaged: the zip directory's entry of files/more.jpg: "
        "its disk, attributes or comment are not a bundle's (file mode 0644, nothing else)\n"
    )


def test_damaged_zip_bytes_fail(case, tmp_path):
    raw = bytearray(case["zip"].read_bytes())
    with zipfile.ZipFile(case["zip"]) as zf:
        info = zf.getinfo(f"files/{case['photo']}.png")
    name_len, extra_len = np.frombuffer(bytes(raw[info.header_offset + 26 : info.header_offset + 30]), "<u2")
    raw[info.header_offset + 30 + int(name_len) + int(extra_len) + 10] ^= 0x01  # inside the stored photo
    bad = tmp_path / "crc.zip"
    bad.write_bytes(bytes(raw))
    with pytest.raises(DamagedBundleError, match=f"member files/{case['photo']}.png: its CRC-32 does not match"):
        verify_bundle(bad, trusted=[case["fingerprint"]])
    r = invoke("evidence", "verify", str(tmp_path / "nothing.zip"), ok=False)
    assert r.exit_code == 1 and "does not exist" in r.output


def regions(data: bytes, path: Path) -> tuple[list[tuple[int, int, str]], int]:
    """Who owns each byte of a zip: (start, end, member) for each member's local header and data; and where
    the zip directory (central directory and end record) begins. Read with zipfile, not the verifier's reader."""
    with zipfile.ZipFile(path) as zf:
        infos = sorted(zf.infolist(), key=lambda i: i.header_offset)
        directory = zf.start_dir
    out = []
    for i, nxt in zip(infos, [*infos[1:], None]):
        out.append((i.header_offset, nxt.header_offset if nxt else directory, i.filename))
    return out, directory


def test_any_single_changed_byte_of_a_bundle_is_one_line_naming_what_is_damaged(case, tmp_path):
    """At least 500 copies of the real bundle, each with one byte changed (seeded), anywhere: in members'
    local headers, in their data, in the zip directory and its end record. Every one is caught: exit 1, one
    line, no traceback, naming the member whose header or data was hit, or the zip directory."""
    import random

    data = case["zip"].read_bytes()
    owners, directory = regions(data, case["zip"])
    headers = [p for start, _, name in owners for p in range(start, start + 30 + len(name) + 20)]
    rng = random.Random(11)
    positions = (
        rng.sample(range(len(data)), 250)  # anywhere: mostly data
        + rng.sample(headers, 150)  # local headers (and the first bytes of data)
        + rng.sample(range(directory, len(data) - 22), 120)  # the central directory
        + list(range(len(data) - 22, len(data)))  # every byte of the end record
    )
    assert len(positions) >= 500
    bad = tmp_path / "damaged.zip"
    seen = set()
    for at in positions:
        b = bytearray(data)
        b[at] ^= rng.randrange(1, 256)
        bad.write_bytes(bytes(b))
        result = invoke("evidence", "verify", str(bad), "--fingerprint", case["fingerprint"], ok=False)
        lines = result.output.splitlines()
        assert result.exit_code == 1 and "Traceback" not in result.output and result.exception is not None, (at, lines)
        assert len(lines) == 1, (at, lines)
        line = lines[0]
        assert line.startswith("twin: error: bundle 'damaged.zip' is damaged: "), (at, line)
        owner = next((name for start, end, name in owners if start <= at < end), None)
        if owner is not None:  # a member's header or data: that member is named
            assert f"member {owner}: " in line, (at, owner, line)
        else:  # the directory: named, as its entry of a member, or as the member whose entry it is
            assert "the zip directory" in line or line.split(": ")[3].startswith("member "), (at, line)
        seen.add(line.split(": ")[3])
    assert len(seen) > 20  # many different members and parts named, not one catch-all message


def test_reordered_or_dropped_log_entries_fail_the_ledger_check(case, tmp_path):
    invoke("evidence", "check", str(case["dir"]))
    for how in ("reorder", "drop"):
        folder = tmp_path / how
        shutil.copytree(case["dir"], folder)
        db = sqlite3.connect(folder / "ops.sqlite")
        with db:
            if how == "reorder":
                rows = dict(
                    db.execute(
                        "SELECT idx, data || char(0) || leaf_hash FROM evidence_log WHERE idx IN (1, 2)"
                    ).fetchall()
                )
                for a, b in ((1, 2), (2, 1)):
                    data, leaf = rows[b].split("\0")
                    db.execute("UPDATE evidence_log SET data = ?, leaf_hash = ? WHERE idx = ?", (data, leaf, a))
            else:
                db.execute("DELETE FROM evidence_log WHERE idx = 2")
        db.close()
        r = invoke("evidence", "check", str(folder), ok=False)
        assert r.exit_code == 1, how
        fails = [ln for ln in r.output.splitlines() if ln.startswith("FAIL")]
        assert any(ln.startswith("FAIL  signed head") and "were changed, reordered or removed" in ln for ln in fails), (
            fails
        )
        assert any(ln.startswith("FAIL  custody_records row ") for ln in fails), fails  # the records on those leaves


# -- errors -----------------------------------------------------------------------------------------


def test_bundle_errors_name_the_problem(case, tmp_path):
    d = str(case["dir"])
    r = invoke("evidence", "bundle", d, "--case", "NO-SUCH-CASE", "-o", str(tmp_path / "x.zip"), ok=False)
    assert r.exit_code == 1 and "case 'NO-SUCH-CASE' has no evidence" in r.output
    r = invoke("evidence", "bundle", d, "--case", CASE, "-o", str(tmp_path / "nope" / "x.zip"), ok=False)
    assert r.exit_code == 1 and "does not exist; create it first" in r.output
    r = invoke("evidence", "bundle", d, "--case", CASE, "-o", str(tmp_path / "x.zip"), "--agency", "EPB-Gard", ok=False)
    assert r.exit_code == 1 and "no signing key for agency 'EPB-Gard'" in r.output
    assert list(tmp_path.iterdir()) == []  # nothing half-written
    r = invoke(
        "evidence",
        "add",
        d,
        str(case["zip"]),
        "--case",
        CASE,
        "--category",
        "document",
        "--description",
        "x",
        "--acquired-at",
        "2026-09-03T11:20",
        "--lon",
        "3.9",
        "--lat",
        "44.1",
        "--method",
        "m",
        "--tool",
        "t",
        "--tool-version",
        "1",
        "--operator",
        "A",
        "--holder",
        "H",
        ok=False,
    )
    assert r.exit_code == 1 and "field 'operators'" in r.output and "field 'acquired_at'" in r.output
    r = invoke(
        "evidence",
        "add",
        d,
        str(case["zip"]),
        "--case",
        CASE,
        "--category",
        "lab_report",
        "--description",
        "x",
        "--acquired-at",
        "2026-09-05T11:20Z",
        "--lon",
        "3.88",
        "--lat",
        "43.61",
        "--method",
        "m",
        "--tool",
        "t",
        "--tool-version",
        "1",
        "--operator",
        "A",
        "--operator",
        "B",
        "--holder",
        "H",
        ok=False,
    )  # Montpellier: outside the basin's units
    assert r.exit_code == 1 and "lies in none of the twin's jurisdictions" in r.output and "--jurisdiction" in r.output


# -- the offline viewer, in a real browser ------------------------------------------------------------


def test_the_offline_viewer_marks_each_item_green_or_red(case, tmp_path):
    from playwright.sync_api import sync_playwright

    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(case["zip"]) as zf:
        zf.extractall(folder)
    html = (folder / "viewer.html").read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html  # nothing to fetch: it works offline

    def check(page, fingerprint: str = "") -> tuple[list[str], str]:
        page.goto((folder / "viewer.html").as_uri() + (f"#fingerprint={fingerprint}" if fingerprint else ""))
        page.reload()  # a new fragment alone does not reload the page
        page.set_input_files("#folder", str(folder))
        page.wait_for_selector("body[data-checked='1']", timeout=60_000)
        return [c.inner_text() for c in page.query_selector_all("#items td.mark")], page.inner_text("#head")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: errors.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
        marks, head = check(page, case["fingerprint"])
        assert marks == ["✓", "✓", "✓"]
        assert "✓ Signature: Ed25519 signature verifies" in head
        assert f"✓ Key: the bundle's key is the one you trust (fingerprint {case['fingerprint']})" in head
        assert page.inner_text("#summary") == "✓ All 3 items verified, signed with the key you trust."
        # not knowing whom to trust, the page says so: intact, signer not confirmed
        marks, head = check(page)
        assert marks == ["✓", "✓", "✓"] and page.get_attribute("body", "data-trusted") == "unknown"
        assert (
            f"? Key: the bundle's key has fingerprint {case['fingerprint']}, not compared with a key you trust" in head
        )
        assert page.inner_text("#summary").startswith("? All 3 items intact as the bundle's own key signed them")
        page.fill("#fingerprint", "ab" * 32)  # another agency's key: every item fails
        page.wait_for_selector("body[data-trusted='no']")
        assert [c.inner_text() for c in page.query_selector_all("#items td.mark")] == ["✗", "✗", "✗"]
        assert "signed with a key you do not trust" in page.inner_text("#items tbody tr:first-child")
        photo = folder / "files" / f"{case['photo']}.png"
        photo.write_bytes(flip(photo.read_bytes(), 100))
        marks, _ = check(page, case["fingerprint"])
        assert marks == ["✗", "✓", "✓"]
        assert "file altered" in page.inner_text("#items tbody tr:first-child")
        browser.close()
        assert errors == []


def test_the_log_later_still_contains_what_the_bundle_proved(case):
    """A consistency proof shows the tree the court was given is a prefix of the log signed today."""
    from twin.evidence import merkle

    d = str(case["dir"])
    head = json.loads(members(case["zip"])["log/head.json"])
    now = json.loads(invoke("evidence", "sign", d, "--agency", AGENCY).stdout)
    assert now["tree_size"] >= head["tree_size"]
    proof = json.loads(invoke("evidence", "proof", d, "--from-size", str(head["tree_size"])).stdout)
    assert proof["old_root"] == head["root_hash"] and proof["root_hash"] == now["root_hash"]
    assert merkle.verify_consistency(
        head["tree_size"],
        now["tree_size"],
        bytes.fromhex(head["root_hash"]),
        bytes.fromhex(now["root_hash"]),
        [bytes.fromhex(h) for h in proof["proof"]],
    )
    leaf = json.loads(invoke("evidence", "proof", d, "--leaf", str(case["out"]["export_leaf"])).stdout)
    assert json.loads(leaf["leaf_data"])["manifest_sha256"] == case["out"]["manifest_sha256"]
    assert merkle.verify_inclusion(
        merkle.leaf_hash(leaf["leaf_data"].encode()),
        leaf["leaf_index"],
        leaf["tree_size"],
        [bytes.fromhex(h) for h in leaf["audit_path"]],
        bytes.fromhex(now["root_hash"]),
    )
