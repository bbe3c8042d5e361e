"""Open a large twin and trace downstream once: eagerly, and lazily (issue 13).

What is measured
----------------
A synthetic twin of ``--size`` × ``--size`` cells (default 10000: 100 M cells) is built once
from ``terrain.py``'s DEM, as ``build.py`` builds it, and saved into the work folder (reused
while size and seed are the same). Then each mode runs in a fresh Python process:

``eager``
    ``LAZY_MIN_CELLS`` above the grid's size: every raster read whole and the D8 order
    recomputed, as every open did before issue 13.
``lazy-first``
    the twin's ``.cache/`` removed first: the open makes the ``.npy`` copies (window by
    window) and the order's copy.
``lazy-second``
    the copies of the run before are reused.

The step timed in each is ``twin.BasinTwin.open(folder, store=False)`` (the manifest check
included: every output is hashed) and one ``model.downstream`` from the middle of the reach
whose upstream area is nearest a tenth of the largest (the same point in every mode; the
line gives the path's reaches and length, which must agree). Before it the process
imports twin and opens and traces a 64 × 64 twin the same way, eagerly or lazily (numba's
caches loaded, first-call overheads). ``open_s`` and ``trace_s`` are the two parts of the
step; ``peak_mem_mb`` is the process's peak RSS during the step (the high-water mark reset
just before, as in ``build.py``; the touched file pages of memory-mapped grids count);
``cache_mb`` is the size of the twin's ``.cache/`` after the step, whichever mode made it.
Each child runs under ``/usr/bin/time -v`` where there is one: ``time_v`` gives the whole
process's elapsed time, maximum RSS, page faults and file-system blocks (import and warm-up
included).

The files are in the page cache, not cold: the rasters were just written or read, and the
copies were just made. Dropping the caches would take the whole machine's, which this does
not do.

Usage::

    python benchmarks/open.py [--size 10000] [--seed 0] [--workdir /tmp/basin-twin-bench-open]
                              [--modes eager,lazy-first,lazy-second] [--twin DIR] [--lazy-min-cells N]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import build

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
MODES = ("eager", "lazy-first", "lazy-second")
TIME_V = Path("/usr/bin/time")
TIME_V_FIELDS = {  # /usr/bin/time -v line: key in the record
    "Elapsed (wall clock) time (h:mm:ss or m:ss)": "elapsed_s",
    "Maximum resident set size (kbytes)": "max_rss_mb",
    "Major (requiring I/O) page faults": "major_faults",
    "Minor (reclaiming a frame) page faults": "minor_faults",
    "File system inputs": "fs_inputs",
    "File system outputs": "fs_outputs",
    "User time (seconds)": "user_s",
    "System time (seconds)": "system_s",
}
log = logging.getLogger("benchmarks.open")


def prepare_twin(workdir: Path, size: int, seed: int, threshold_km2: float) -> Path:
    """The saved twin of a size and seed, built in a child process (its memory is not this one's) if absent."""
    inputs = build.prepare_inputs(workdir, size, seed, threshold_km2)
    out = workdir / f"twin-n{size}-s{seed}"
    if (out / "twin.json").is_file():
        log.info("reusing %s", out)
        return out
    log.info("building and saving %s", out)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import twin; "
        "twin.BasinTwin.build(sys.argv[2]).save(sys.argv[3], overwrite=True)"
    )
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(REPO_ROOT), str(inputs.catalog), str(out)], check=True)
    log.info("built and saved in %.0f s", time.perf_counter() - t0)
    return out


def trace_point(model) -> tuple[float, float]:
    """The middle of the reach whose upstream area is nearest a tenth of the largest (twin CRS)."""
    reaches = model.network.reaches
    area = reaches["upstream_area_km2"]
    reach = reaches.loc[(area - area.max() / 10).abs().idxmin()]
    point = reach.geometry.interpolate(0.5, normalized=True)
    return float(point.x), float(point.y)


def child(mode: str, folder: Path, warm: Path, lazy_min_cells: int | None = None) -> dict[str, Any]:
    """Open and trace in this process; the record of one mode (lazy ones with ``lazy_min_cells`` if given)."""
    sys.path.insert(0, str(REPO_ROOT))
    t0 = time.perf_counter()
    import twin
    from twin.model import folder as twin_folder

    import_s = time.perf_counter() - t0
    if lazy_min_cells is not None:
        twin_folder.LAZY_MIN_CELLS = lazy_min_cells
    threshold = 2**62 if mode == "eager" else twin_folder.LAZY_MIN_CELLS
    twin_folder.LAZY_MIN_CELLS = 2**62 if mode == "eager" else 0  # the small twin opens as the large one will
    t0 = time.perf_counter()
    small = twin.BasinTwin.open(warm, store=False).model
    small.downstream(*trace_point(small), crs=small.crs)
    warm_s = time.perf_counter() - t0
    twin_folder.LAZY_MIN_CELLS = threshold
    del small
    manifest = json.loads((folder / "twin.json").read_text(encoding="utf-8"))
    record: dict[str, Any] = {
        "bench": "open",
        "mode": mode,
        "cells": manifest["shape"][0] * manifest["shape"][1],
        "lazy_min_cells": twin_folder.LAZY_MIN_CELLS,
        "import_s": round(import_s, 3),
        "warmup_s": round(warm_s, 3),
    }
    with build.measured(record):
        t0 = time.perf_counter()
        model = twin.BasinTwin.open(folder, store=False).model
        t1 = time.perf_counter()
        x, y = trace_point(model)
        path, sections, sites = model.downstream(x, y, crs=model.crs)
        t2 = time.perf_counter()
    record.update(open_s=round(t1 - t0, 3), trace_s=round(t2 - t1, 3))
    record["memmapped"] = sorted(
        name
        for name, a in {
            "dem": model.terrain.dem,
            "conditioned": model.terrain.conditioned,
            "d8": model.drainage.d8,
            "order": model.drainage.order,
            "upstream_cells": model.drainage.upstream_cells,
            "strahler": model.drainage.strahler,
            "reach": model.drainage.reach,
            "subbasin": model.drainage.subbasin,
        }.items()
        if type(a).__name__ == "memmap"
    )
    record["trace"] = {
        "start": [round(x, 1), round(y, 1)],
        "reaches": len(path),
        "first_reach": int(path["reach_id"].iloc[0]),
        "last_reach": int(path["reach_id"].iloc[-1]),
        "km": round(float(path["to_km"].max()), 3),
        "sections": len(sections),
    }
    cache = folder / twin_folder.CACHE
    record["cache_mb"] = round(sum(p.stat().st_size for p in cache.glob("*.npy")) / 2**20, 1) if cache.is_dir() else 0
    return record


def parse_time_v(text: str) -> dict[str, Any]:
    """The figures of ``/usr/bin/time -v`` that matter here, from its report."""
    out: dict[str, Any] = {}
    for line in text.splitlines():
        label, sep, value = line.strip().rpartition(": ")
        if not sep or label not in TIME_V_FIELDS:
            continue
        key = TIME_V_FIELDS[label]
        if key == "elapsed_s":
            parts = [float(p) for p in value.split(":")]
            out[key] = round(sum(p * 60**i for i, p in enumerate(reversed(parts))), 2)
        elif key == "max_rss_mb":
            out[key] = round(int(value) / 1024, 1)
        else:
            out[key] = float(value) if "." in value else int(value)
    return out


def run_mode(mode: str, folder: Path, warm: Path, lazy_min_cells: int | None = None) -> dict[str, Any]:
    """One mode in a fresh process (under ``/usr/bin/time -v`` if present); its record."""
    if mode == "lazy-first":
        shutil.rmtree(folder / ".cache", ignore_errors=True)
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        mode,
        "--twin",
        str(folder),
        "--warm",
        str(warm),
    ]
    if lazy_min_cells is not None:
        command += ["--lazy-min-cells", str(lazy_min_cells)]
    with tempfile.NamedTemporaryFile("w+", suffix=".time") as report:
        if TIME_V.exists():
            command = [str(TIME_V), "-v", "-o", report.name, *command]
        proc = subprocess.run(command, stdout=subprocess.PIPE, text=True)
        report.seek(0)
        time_v = parse_time_v(report.read())
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip().startswith("{")]
    record = lines[-1] if lines else {"bench": "open", "mode": mode}
    if proc.returncode != 0:
        record["error"] = f"benchmark process exited with status {proc.returncode}"
    if time_v:
        record["time_v"] = time_v
    return record


def summarize(records: list[dict]) -> dict[str, Any]:
    """Lazy against eager: memory and time ratios, and whether every mode traced the same path."""
    by = {r["mode"]: r for r in records if "wall_s" in r}
    eager = by.get("eager")

    def ratio(mode: str, key: str) -> float | None:
        if eager is None or mode not in by or not by[mode].get(key):
            return None
        return round(eager[key] / by[mode][key], 2)

    traces = {json.dumps(r["trace"], sort_keys=True) for r in by.values()}
    return {
        "summary": True,
        "cells": records[0].get("cells") if records else None,
        "peak_mem_mb": {m: r["peak_mem_mb"] for m, r in by.items()},
        "wall_s": {m: r["wall_s"] for m, r in by.items()},
        "eager_over_lazy_second_peak_mem": ratio("lazy-second", "peak_mem_mb"),
        "eager_over_lazy_second_wall": ratio("lazy-second", "wall_s"),
        "same_trace_in_every_mode": len(traces) == 1 if traces else None,
        "loadavg_1min": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=10000, help="rows and columns of the DEM (default 10000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "basin-twin-bench-open")
    ap.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {','.join(MODES)}")
    ap.add_argument("--twin", type=Path, help="an existing twin folder instead of the synthetic one")
    ap.add_argument(
        "--lazy-min-cells", type=int, help="LAZY_MIN_CELLS of the lazy modes (default the library's; 0 on a tiny twin)"
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--warm", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s open: %(message)s")
    if args.child:
        print(json.dumps(child(args.child, args.twin, args.warm, args.lazy_min_cells)), flush=True)
        return 0
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        ap.error(f"unknown mode(s) {unknown}; choose from {','.join(MODES)}")
    workdir = args.workdir.resolve()
    warm = prepare_twin(workdir, build.WARMUP_SIZE, args.seed, build.WARMUP_THRESHOLD_KM2)
    folder = (
        args.twin.resolve() if args.twin else prepare_twin(workdir, args.size, args.seed, build.STREAM_THRESHOLD_KM2)
    )
    records = []
    for mode in modes:
        log.info("%s", mode)
        record = run_mode(mode, folder, warm, args.lazy_min_cells)
        print(json.dumps(record), flush=True)
        records.append(record)
    print(json.dumps(summarize(records)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
