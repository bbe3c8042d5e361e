"""Time the 3D scene: build, PNG render and glTF size, on the demo twin and on a 25-million-cell DEM.

What is measured
----------------
``demo``
    The demo twin (``twins/cevennes`` if it exists, else built from
    ``data/cevennes/basin.yml`` into a temporary folder): ``build_scene`` (overview,
    no time given), then the PNG render, the ``.glb`` and the HTML page.
``large``
    The seeded 5000 × 5000 synthetic DEM of ``build.py`` (made by its
    ``prepare_inputs``, or reused from ``--workdir``), built into a twin in memory
    (``twin_build_s``, not part of the goal), then the same steps.

Each line has ``build_s`` (the scene's layers, with the terrain's decimation and
its error over every cell), ``png_s`` (the off-screen render and PNG encoding),
``glb_mb`` and ``html_mb``, the decimation (stride, triangles, ``max_error_m``,
``rms_error_m``), and whether the goals of the issue are met: demo build + render
< 3 s, large build + render < 15 s, glTF < 30 MB. pyvista and VTK are imported
(and the first render window made) before any timing, as ``import_s``.

Usage::

    python benchmarks/scene.py [--size 5000] [--seed 0] [--workdir benchmarks/out] [--image 1280x800] [--no-large]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))  # the checkout's twin, not an installed one

from build import STREAM_THRESHOLD_KM2, prepare_inputs  # noqa: E402  (benchmarks/build.py, beside this file)

log = logging.getLogger("benchmarks.scene")
GOALS = {"demo": 3.0, "large": 15.0}
GOAL_GLB_MB = 30.0


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def warm_up() -> float:
    """Import pyvista/VTK and render once, so the figures are the scene's own."""
    start = time.perf_counter()
    from twin.scene.layers import pyvista

    pv = pyvista()
    plotter = pv.Plotter(off_screen=True, window_size=[64, 64])
    plotter.add_mesh(pv.Sphere())
    plotter.screenshot(return_img=True)
    plotter.close()
    return round(time.perf_counter() - start, 3)


def measure(case: str, basin: Any, size: str, extra: dict[str, Any]) -> dict[str, Any]:
    """Build, render, export one scene of a twin; one record."""

    start = time.perf_counter()
    scene = basin.scene(size=size)
    built = time.perf_counter()
    png = scene.png()
    rendered = time.perf_counter()
    glb = scene.glb()
    exported = time.perf_counter()
    page = scene.html().encode("utf-8")
    scene.close()
    terrain = scene.metadata["terrain"]
    total = rendered - start
    glb_mb = len(glb) / 2**20
    return {
        "case": case,
        **extra,
        "cells": terrain["cells"],
        "image": size,
        "build_s": round(built - start, 3),
        "png_s": round(rendered - built, 3),
        "build_and_render_s": round(total, 3),
        "glb_s": round(exported - rendered, 3),
        "png_kb": round(len(png) / 1024, 1),
        "glb_mb": round(glb_mb, 2),
        "html_mb": round(len(page) / 2**20, 2),
        "stride": terrain["stride"],
        "triangles": terrain["triangles"],
        "max_triangles": terrain["max_triangles"],
        "max_error_m": round(terrain["max_error_m"], 2),
        "rms_error_m": round(terrain["rms_error_m"], 3),
        "layers": len(scene.metadata["layers"]),
        "goal_build_and_render_s": GOALS[case],
        "goal_glb_mb": GOAL_GLB_MB,
        "goal_met": total < GOALS[case] and glb_mb < GOAL_GLB_MB,
    }


def demo_twin(tmp: Path) -> tuple[Any, dict[str, Any]]:
    import twin

    folder = ROOT / "twins" / "cevennes"
    if (folder / "twin.json").is_file():
        return twin.open(str(folder)), {"twin": "twins/cevennes"}
    log.info("building the demo twin into %s", tmp)
    twin.BasinTwin.build(ROOT / "data" / "cevennes" / "basin.yml").save(tmp / "cevennes")
    return twin.open(str(tmp / "cevennes")), {"twin": "built from data/cevennes/basin.yml"}


def large_twin(workdir: Path, size: int, seed: int) -> tuple[Any, dict[str, Any]]:
    import twin

    inputs = prepare_inputs(workdir, size, seed, STREAM_THRESHOLD_KM2)
    start = time.perf_counter()
    basin = twin.BasinTwin.build(inputs.catalog)
    return basin, {
        "twin": f"synthetic {size} x {size}, seed {seed}",
        "twin_build_s": round(time.perf_counter() - start, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=5000, help="rows and columns of the large DEM (default 5000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=BENCH_DIR / "out", help="where the large DEM is made or found")
    ap.add_argument("--image", default="1280x800", help="image size (default 1280x800)")
    ap.add_argument("--no-large", action="store_true", help="the demo only")
    args = ap.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s scene: %(message)s", datefmt="%H:%M:%S"
    )
    import_s = warm_up()
    with tempfile.TemporaryDirectory() as tmp:
        basin, extra = demo_twin(Path(tmp))
        emit(measure("demo", basin, args.image, {**extra, "import_s": import_s}))
    if not args.no_large:
        basin, extra = large_twin(args.workdir.resolve(), args.size, args.seed)
        emit(measure("large", basin, args.image, extra))
    return 0


if __name__ == "__main__":
    sys.exit(main())
