"""What the frozen Model costs to read: grid views without copies, and the hash check of an open.

Lines (JSON, one per measure):

``grid_view``
    The peak of Python allocations (``tracemalloc``) while ``terrain.elevation``,
    ``terrain.conditioned_elevation`` and ``drainage.stream_order`` are read as DataArrays
    on a ``--size`` × ``--size`` grid (default 5000: 25 M cells, the build benchmark's DEM
    size), against the bytes of one array: ``peak_over_array`` is at most 1.1 when nothing is
    copied (issue 12's bound); the line before the change (three ``rio.write_*`` copies) was 3.
``open_check``
    ``twin.open`` of a twin folder with and without the manifest check (every raster and the
    vectors hashed, sha256), best of ``--repeat``, and ``hash_s``, the hashing alone (the
    difference of two opens is within the noise of a loaded machine); the folder is the demo twin, built into the
    work folder once, or ``--twin DIR``.

Usage::

    python benchmarks/model.py [--size 5000] [--twin DIR] [--repeat 3] [--workdir benchmarks/out]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from affine import Affine
from pyproj import CRS

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def grid_view(size: int) -> dict:
    from twin.model.drainage import Drainage
    from twin.model.loaders import Grid
    from twin.model.terrain import Terrain

    grid = Grid((size, size), Affine(30.0, 0, 500_000.0, 0, -30.0, 4_900_000.0), CRS.from_epsg(32631))
    rng = np.random.default_rng(0)
    dem = rng.random((size, size), dtype=np.float32) * 1000
    terrain = Terrain(grid, dem, dem.copy())
    d8 = np.zeros((size, size), np.uint8)
    ints = np.zeros((size, size), np.int32)
    drainage = Drainage(grid, d8, np.arange(1, dtype=np.int32), ints, np.zeros((size, size), np.uint8), ints, ints, 2)
    out = {}
    for name, read in (
        ("elevation", lambda: terrain.elevation),
        ("conditioned_elevation", lambda: terrain.conditioned_elevation),
        ("stream_order", lambda: drainage.stream_order),
    ):
        tracemalloc.start()
        t0 = time.perf_counter()
        da = read()
        wall = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        nbytes = da.values.nbytes
        out[name] = {"peak_bytes": peak, "array_bytes": nbytes, "peak_over_array": round(1 + peak / nbytes, 4), "wall_s": round(wall, 4)}
        del da
    return {"bench": "grid_view", "cells": size * size, "reads": out}


def open_check(folder: Path, repeat: int) -> dict:
    import twin

    def best(check: bool) -> float:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            twin.BasinTwin.open(folder, store=False, check=check)
            times.append(time.perf_counter() - t0)
        return min(times)

    manifest = json.loads((folder / "twin.json").read_text(encoding="utf-8"))
    from twin.model.catalog import sha256_file
    from twin.model.folder import READ

    hashed = sum(o["bytes"] for o in manifest["outputs"] if o["path"] in READ)
    with_check, without = best(True), best(False)
    hash_times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for rel in READ:
            sha256_file(folder / rel)
        hash_times.append(time.perf_counter() - t0)
    return {
        "bench": "open_check",
        "twin": manifest["name"],
        "cells": manifest["shape"][0] * manifest["shape"][1],
        "hashed_mb": round(hashed / 1e6, 2),
        "open_s": round(without, 4),
        "open_checked_s": round(with_check, 4),
        "check_s": round(with_check - without, 4),
        "hash_s": round(min(hash_times), 4),  # the check itself: sha256 of every file read
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=5000)
    ap.add_argument("--twin", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "out")
    args = ap.parse_args()
    print(json.dumps(grid_view(args.size)), flush=True)
    folder = args.twin
    if folder is None:
        import twin

        folder = args.workdir / "model-bench-cevennes"
        if not (folder / "twin.json").is_file():
            twin.BasinTwin.build(ROOT / "data" / "cevennes" / "basin.yml").save(folder, overwrite=True)
    print(json.dumps(open_check(folder, args.repeat)), flush=True)


if __name__ == "__main__":
    main()
