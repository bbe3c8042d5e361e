"""The tiled depression fill against the in-memory one, on the seeded terrain of ``terrain.py``.

Lines (JSON, one per run, logs on stderr):

``flood``
    ``kernels.flood`` of the whole ``--size`` × ``--size`` grid (fill, D8 and order: the
    build's conditioning step), its wall time.
``tiled_fill``
    ``tiled.fill_tiled`` with one ``tile_size``: ``wall_s`` for the three steps, split into
    ``first_pass_s`` (every tile's summary), ``solve_s`` (the global graph, ``nodes`` and
    ``edges``) and ``second_pass_s``; ``same_as_flood`` is the bitwise check against the
    ``flood`` line's filled DEM. ``tile_peak_mb`` is the peak of allocations traced by
    ``tracemalloc`` (numba's arrays inside the kernels included) while one full tile goes
    through both of its passes, one after the other as a worker would run them: the block
    with its halo and the flood's work arrays, about 25 bytes per tile cell.

The DEM has a nodata border strip and a few nodata holes (``--nodata``), so that outlets
beside nodata are exercised; numba compiles on a 64 × 64 grid first (``compile_s``).

Usage::

    python benchmarks/tiled_fill.py [--size 2000] [--tiles 256,512,1024] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def make_dem(size: int, seed: int, nodata: bool) -> np.ndarray:
    from terrain import terrain

    dem = terrain(size, seed)
    if nodata:
        rng = np.random.default_rng(seed + 1)
        dem[:, : max(1, size // 100)] = np.nan
        for _ in range(5):
            r, c = rng.integers(0, size - size // 50, 2)
            dem[r : r + size // 50, c : c + size // 50] = np.nan
    return dem


def in_memory(dem: np.ndarray) -> tuple[float, np.ndarray]:
    from twin.model import kernels

    filled = np.empty_like(dem)
    d8 = np.empty(dem.shape, dtype=np.uint8)
    order = np.empty(dem.size, dtype=np.int32)
    t0 = time.perf_counter()
    kernels.flood(dem, filled, d8, order)
    return time.perf_counter() - t0, filled


def tiled_run(dem: np.ndarray, tile_size: int, reference: np.ndarray) -> dict:
    from twin.model import tiled

    windows = tiled.tile_windows(dem.shape, tile_size)
    t0 = time.perf_counter()
    summaries = [tiled.summarise_tile(tiled.read_block(dem, w)) for w in windows]
    t1 = time.perf_counter()
    ntile_cols = -(-dem.shape[1] // tile_size)
    waters = tiled.solve_levels(summaries, ntile_cols)
    t2 = time.perf_counter()
    out = np.empty_like(dem)
    for w, water in zip(windows, waters):
        out[w] = tiled.fill_tile(tiled.read_block(dem, w), water)
    t3 = time.perf_counter()
    nodes = 1 + sum(s.nlabels - 2 for s in summaries)
    # one full tile, both passes, under tracemalloc (apart, so the timing above is not slowed)
    full = max(windows, key=lambda w: (w[0].stop - w[0].start) * (w[1].stop - w[1].start))
    k = windows.index(full)
    tracemalloc.start()
    tiled.fill_tile(tiled.read_block(dem, full), waters[k])
    tiled.summarise_tile(tiled.read_block(dem, full))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    tile_cells = (full[0].stop - full[0].start) * (full[1].stop - full[1].start)
    return {
        "measure": "tiled_fill",
        "tile_size": tile_size,
        "cells": int(dem.size),
        "tiles": len(windows),
        "wall_s": round(t3 - t0, 3),
        "first_pass_s": round(t1 - t0, 3),
        "solve_s": round(t2 - t1, 3),
        "second_pass_s": round(t3 - t2, 3),
        "nodes": nodes,
        "edges": int(sum(s.links[0].shape[0] for s in summaries)),
        "tile_peak_mb": round(peak / 2**20, 2),
        "tile_bytes_per_cell": round(peak / tile_cells, 1),
        "same_as_flood": bool(np.array_equal(out, reference, equal_nan=True)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2000, help="rows and columns of the DEM")
    parser.add_argument("--tiles", default="256,512,1024", help="tile sizes, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-nodata", dest="nodata", action="store_false", help="no nodata strip or holes")
    args = parser.parse_args(argv)
    from twin.model import tiled

    t0 = time.perf_counter()
    warm = make_dem(64, args.seed, args.nodata)
    in_memory(warm)
    tiled.fill_tiled(warm, 16)
    compile_s = time.perf_counter() - t0
    print(f"making a {args.size} x {args.size} DEM", file=sys.stderr)
    dem = make_dem(args.size, args.seed, args.nodata)
    wall, reference = in_memory(dem)
    print(
        json.dumps(
            {"measure": "flood", "cells": int(dem.size), "wall_s": round(wall, 3), "compile_s": round(compile_s, 2)}
        ),
        flush=True,
    )
    for size in (int(s) for s in args.tiles.split(",")):
        print(json.dumps(tiled_run(dem, size, reference)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
