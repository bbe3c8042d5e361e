"""Time the evidence ledger: log appends, proofs at 100,000 leaves, a 200-file court bundle and its verification.

What is measured
----------------
``append``
    100,000 entries appended to the Merkle log of a fresh SQLite store (WAL), two ways:
    ``single`` (each entry its own transaction: lock, leaf, nodes, state, commit: what
    recording one item costs) and ``batch`` (1,000 entries per transaction: a bulk
    import). ``appends_per_s`` for each; goal >= 5,000/s.
``proof``
    At 100,000 leaves: an inclusion proof of a random leaf read from the store and
    verified against the root (median and worst of 1,000), and a consistency proof
    from a random older size; goal < 5 ms. Also the full log verification (every leaf
    re-hashed, every node rebuilt) as ``log_verify_s``.
``bundle``
    A copy of the demo twin (``twins/cevennes`` if it exists, else built from
    ``data/cevennes/basin.yml``) with the mine-leak scenario and an agency key gets
    200 files of 1 MB (seeded random bytes, recorded with ``Ledger.add``: ``add_s``);
    then ``make_bundle`` for the case, with the overlays rendered (``bundle_s``) and
    without (``bundle_no_overlays_s``), and ``verify_bundle`` of the zip
    (``verify_s``). Goals: bundle and verify each < 10 s.

Before and after
----------------
``--against REV`` times the appends of this checkout and of the twin package as of git
revision ``REV`` (taken with ``git archive`` into a temporary folder and run in a child
process, on the same interpreter), one right after the other, so that both figures come
from the same minute of a machine whose load changes; each ``append`` line says which
code it timed (``code``: ``checkout`` or the revision and its commit).

Usage::

    python benchmarks/evidence.py [--entries 100000] [--files 200] [--file-mb 1] [--skip-single]
                                  [--benches append,proof,bundle] [--against REV]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checkout's twin, not an installed one

log = logging.getLogger("benchmarks.evidence")
GOAL_APPENDS = 5000.0
GOAL_PROOF_MS = 5.0
GOAL_BUNDLE_S = 10.0


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def entry(i: int) -> dict:
    from twin.evidence.log import iso, utc_now

    return {"kind": "access", "time": iso(utc_now()), "actor": f"bench{i % 7}", "action": "get", "n": i}


def bench_appends(work: Path, entries: int, single: bool, code: str = "checkout") -> Path:
    import twin
    from twin.evidence import EvidenceLog
    from twin.ops import store

    kept = None
    for mode in (["single"] if single else []) + ["batch"]:
        db = work / f"log-{mode}.sqlite"
        engine = store.connect(f"sqlite:///{db}")
        lg = EvidenceLog(engine)
        start, cpu = time.perf_counter(), time.process_time()
        if mode == "single":
            for i in range(entries):
                lg.append_one(entry(i))
        else:
            for k in range(0, entries, 1000):
                with engine.begin() as conn:
                    lg.append(conn, [entry(i) for i in range(k, min(k + 1000, entries))])
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        rate = entries / elapsed
        emit(
            {
                "bench": "append",
                "code": code,
                "twin": str(Path(twin.__file__).parent),
                "mode": mode,
                "entries": entries,
                "seconds": round(elapsed, 3),
                "appends_per_s": round(rate),
                "appends_per_cpu_s": round(entries / cpu),  # this process's CPU: robust to other load
                "goal_appends_per_s": GOAL_APPENDS,
                "goal_met": rate >= GOAL_APPENDS,
            }
        )
        engine.dispose()
        kept = db
    assert kept is not None
    return kept


def bench_proofs(db: Path, samples: int = 1000) -> None:
    from twin.evidence import EvidenceLog, merkle
    from twin.ops import store

    engine = store.connect(f"sqlite:///{db}")
    lg = EvidenceLog(engine)
    n = lg.size()
    root = lg.root()
    rng = random.Random(0)
    times, ctimes = [], []
    for _ in range(samples):
        m = rng.randrange(n)
        t0 = time.perf_counter()
        path = lg.inclusion_proof(m, n)
        leaf = lg.entry(m).leaf_hash
        ok = merkle.verify_inclusion(leaf, m, n, path, root)
        times.append(time.perf_counter() - t0)
        assert ok
    for _ in range(samples // 10):
        old = rng.randrange(1, n)
        t0 = time.perf_counter()
        proof = lg.consistency_proof(old, n)
        old_root = lg.root(old)
        ok = merkle.verify_consistency(old, n, old_root, root, proof)
        ctimes.append(time.perf_counter() - t0)
        assert ok
    t0 = time.perf_counter()
    report = lg.verify()
    verify_s = time.perf_counter() - t0
    assert report.ok, report.lines()
    med, worst = statistics.median(times) * 1000, max(times) * 1000
    emit(
        {
            "bench": "proof",
            "leaves": n,
            "inclusion_ms_median": round(med, 3),
            "inclusion_ms_max": round(worst, 3),
            "consistency_ms_median": round(statistics.median(ctimes) * 1000, 3),
            "samples": samples,
            "log_verify_s": round(verify_s, 3),
            "goal_ms": GOAL_PROOF_MS,
            "goal_met": med < GOAL_PROOF_MS,
        }
    )
    engine.dispose()


def demo_twin(work: Path) -> Path:
    import twin

    folder = work / "cevennes"
    src = ROOT / "twins" / "cevennes"
    if (src / "twin.json").is_file():
        shutil.copytree(src, folder, ignore=shutil.ignore_patterns("ops.sqlite*", "evidence", "keys", "scenarios"))
    else:
        twin.BasinTwin.build(ROOT / "data" / "cevennes" / "basin.yml").save(folder)
    return folder


def bench_bundle(work: Path, files: int, file_mb: float) -> None:
    import numpy as np

    import twin
    from twin.analysis.scenarios import run
    from twin.evidence import Ledger, init_keys, make_bundle, verify_bundle

    folder = demo_twin(work)
    basin = twin.open(str(folder))
    truth = run(basin.model, basin.store, "mine-leak", folder=basin.path, seed=1)
    case = f"SCENARIO-mine-leak-{truth['seed']}"
    init_keys(folder, "DDT-Lozere")
    ledger = Ledger.open(folder, engine=basin.store)
    rng = np.random.default_rng(0)
    inputs = work / "inputs"
    inputs.mkdir()
    size = int(file_mb * (1 << 20))
    start = time.perf_counter()
    for i in range(files):
        f = inputs / f"ortho_{i:03d}.tif"
        f.write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        ledger.add(
            f,
            case_id=case,
            category="orthophoto",
            description=f"drone orthophoto tile {i}",
            acquired_at="2026-09-03T10:00+02:00",
            lon=3.77 + 0.001 * (i % 20),
            lat=44.16 - 0.001 * (i // 20),
            jurisdiction="Lozère (48)",
            method="drone survey",
            tool="DJI Mavic 3E",
            tool_version="fw 10.01",
            operators=["A. Martin", "B. Roux"],
            holder="DDT Lozère evidence room",
            by="bench",
        )
    add_s = time.perf_counter() - start
    out = work / "case.zip"
    start = time.perf_counter()
    res = make_bundle(ledger, case, out, by="bench", model=basin.model)
    bundle_s = time.perf_counter() - start
    start = time.perf_counter()
    make_bundle(ledger, case, work / "case-plain.zip", by="bench", overlays=False)
    plain_s = time.perf_counter() - start
    start = time.perf_counter()
    report = verify_bundle(out, trusted=[ledger.signer().public.fingerprint])
    verify_s = time.perf_counter() - start
    assert report.ok, report.summary()
    emit(
        {
            "bench": "bundle",
            "files": files,
            "file_mb": file_mb,
            "bundle_mb": round(res.bytes / (1 << 20), 1),
            "add_s": round(add_s, 2),
            "bundle_s": round(bundle_s, 2),
            "bundle_no_overlays_s": round(plain_s, 2),
            "verify_s": round(verify_s, 2),
            "checks": len(report.checks),
            "goal_s": GOAL_BUNDLE_S,
            "goal_met": bundle_s < GOAL_BUNDLE_S and verify_s < GOAL_BUNDLE_S,
        }
    )
    ledger.engine.dispose()


def bench_appends_at(rev: str, work: Path, entries: int, single: bool) -> None:
    """:func:`bench_appends` on the twin package of git revision ``rev``, in a child process."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    code = work / f"twin-{commit[:12]}"
    code.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "twin"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(code)], input=archive.stdout, check=True)
    args = ["--benches", "append", "--entries", str(entries), "--code", str(code), "--label", f"{rev} ({commit[:12]})"]
    subprocess.run([sys.executable, __file__, *args, *([] if single else ["--skip-single"])], check=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--file-mb", type=float, default=1.0)
    parser.add_argument("--skip-single", action="store_true", help="Time batched appends only.")
    parser.add_argument(
        "--benches", default="append,proof,bundle", help="Which to run, of append, proof, bundle (comma-separated)."
    )
    parser.add_argument(
        "--against", metavar="REV", help="Also time the appends of git revision REV, right before this checkout's."
    )
    parser.add_argument("--code", help=argparse.SUPPRESS)  # the folder holding the twin package to time
    parser.add_argument("--label", default="checkout", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    benches = set(args.benches.split(","))
    unknown = benches - {"append", "proof", "bundle"}
    if unknown:
        parser.error(f"--benches: {sorted(unknown)} are not benches; choose among append, proof, bundle")
    if args.code:
        sys.path.insert(0, args.code)  # before the checkout (put first at import)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="twin-bench-evidence-") as tmp:
        work = Path(tmp)
        if args.against:
            bench_appends_at(args.against, work, args.entries, single=not args.skip_single)
        db = None
        if "append" in benches or "proof" in benches:
            db = bench_appends(work, args.entries, single=not args.skip_single, code=args.label)
        if "proof" in benches and db is not None:
            bench_proofs(db)
        if "bundle" in benches:
            bench_bundle(work, args.files, args.file_mb)


if __name__ == "__main__":
    main()
