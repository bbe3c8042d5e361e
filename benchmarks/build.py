"""Time the twin's build against peer hydrology tools on one synthetic DEM.

What is measured
----------------
Each tool goes from the GeoTIFF on disk to D8 flow directions, upstream
area and rivers on the same seeded terrain (see ``terrain.py``):

``twin``
    ``twin.BasinTwin.build(basin.yml)``: reading the DEM and jurisdictions,
    conditioning, routing, rivers and their jurisdictions, in memory. A
    second line, ``twin+save``, times ``twin.save(folder)`` on its own.
``pyflwdir``
    read with rasterio, ``pyflwdir.from_dem`` (depression filling and D8),
    ``upstream_area(unit="km2")`` and ``streams(mask=upa > threshold)``.
``pysheds``
    ``Grid.from_raster``/``read_raster``, ``fill_pits``,
    ``fill_depressions``, ``resolve_flats``, ``flowdir``, ``accumulation``.
``richdem``
    read with rasterio into an ``rdarray`` (``LoadGDAL`` needs the GDAL
    Python bindings), ``FillDepressions(epsilon=True)`` and
    ``FlowAccumulation(method="D8")``. richdem has no wheel for Python 3.11;
    ``--python richdem=/path/to/python`` runs it with another interpreter,
    which needs richdem, numpy and rasterio. ``sh benchmarks/richdem-env.sh``
    builds one from richdem's sdist and prints its path.

How
---
The DEM and catalog are generated once into the work folder and reused
while size and seed are the same. Every tool then runs in a fresh Python
process of its own. That process first imports the tool and runs it once on
a 64 × 64 version of the terrain (reported as ``compile_s``: numba
compilation or cache loading, first-call overheads; ``import_s`` is the
import itself, which for pysheds compiles too), then runs the timed step
once. Numba's on-disk caches make the first run on a machine much slower to
import and warm up than later ones; the timed step is not affected. Around
the timed step it records

* ``wall_s``: wall-clock time (``time.perf_counter``), and ``cpu_s``: user
  plus system CPU time of the process (the machine may be shared, so a
  ``cpu_s`` well below ``wall_s`` for a single-threaded tool means it waited);
* ``peak_mem_mb``: the process's peak resident set size during the step.
  The kernel's high-water mark (``VmHWM``) is reset just before the step
  through ``/proc/self/clear_refs``, so the warm-up does not count; the
  interpreter and loaded libraries (``baseline_mem_mb``) do.
  ``bytes_per_cell`` is that peak over the number of cells and
  ``step_bytes_per_cell`` the part above the baseline;
* ``stages``: wall time of each stage of the step, where the tool has them.

Each tool prints one JSON line on stdout (logs go to stderr); a tool that
cannot be imported gives a line with ``"skipped"`` and the reason, one that
fails a line with ``"error"``. A last line summarises the speed ratios and
whether the twin meets its goals: build no slower than richdem's fill and
accumulation, at least twice as fast as pyflwdir's from_dem, upstream_area
and streams, and a peak below 60 bytes per cell (``bytes_per_cell``, the
whole process, of the build and of the save, whichever is larger).

Usage::

    python benchmarks/build.py [--size 5000] [--seed 0] [--workdir benchmarks/out]
                               [--tools twin,pyflwdir,pysheds,richdem] [--regenerate]
                               [--python richdem=/path/to/python]
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import terrain

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
TOOLS = ("twin", "twin-tiled", "pyflwdir", "pysheds", "richdem")
STREAM_THRESHOLD_KM2 = 2.0  # as in the benchmark catalog
WARMUP_SIZE = 64
WARMUP_THRESHOLD_KM2 = 0.2  # the 64 × 64 grid covers only 3.7 km²
GOAL_BYTES_PER_CELL = 60.0
GOAL_SPEEDUP_VS_PYFLWDIR = 2.0
GOAL_TILED_SPEEDUP_VS_PYFLWDIR = 3.0  # issue 13: the tiled build on this machine's cores
GOAL_TILED_TIME_VS_RICHDEM = 0.6

log = logging.getLogger("benchmarks.build")
T = TypeVar("T")


# -- inputs -------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    """A generated DEM and the catalog that refers to it."""

    dem: Path
    catalog: Path
    size: int

    @property
    def cells(self) -> int:
        return self.size * self.size


def prepare_inputs(workdir: Path, size: int, seed: int, threshold_km2: float, regenerate: bool = False) -> Inputs:
    """Generate the DEM and catalog for a size and seed, or reuse them.

    The catalog is written after the DEM, so its presence marks a complete
    pair; ``regenerate`` forces new files (after a change of ``terrain.py``).
    """
    folder = workdir / f"synthetic-n{size}-s{seed}"
    inputs = Inputs(folder / "dem.tif", folder / "basin.yml", size)
    if inputs.catalog.exists() and inputs.dem.exists() and not regenerate:
        log.info("reusing %s", folder)
        return inputs
    inputs.catalog.unlink(missing_ok=True)
    log.info("generating a %d x %d DEM (seed %d) in %s", size, size, seed, folder)
    start = time.perf_counter()
    terrain.make_dem(inputs.dem, n=size, seed=seed)
    terrain.make_catalog(folder, inputs.dem, stream_threshold_km2=threshold_km2)
    log.info("generated in %.1f s", time.perf_counter() - start)
    return inputs


# -- measuring one step inside a child process --------------------------------


def _status_kb(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), or None off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process; False where that is impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def _lifetime_peak_kb() -> int:
    """Peak RSS of this process since it started (``ru_maxrss``, kB on Linux).

    Only a fallback where the high-water mark cannot be reset: once it has
    been reset, ``ru_maxrss`` follows the reset mark too.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def measured(record: dict) -> Iterator[None]:
    """Time the enclosed step and add its wall, CPU and memory figures to ``record``.

    ``record`` must already hold ``cells``.
    """
    gc.collect()
    step_scope = _reset_peak_rss()
    baseline_kb = _status_kb("VmRSS") or 0
    cpu0, t0 = _cpu_s(), time.perf_counter()
    yield
    wall = time.perf_counter() - t0
    cpu = _cpu_s() - cpu0
    peak_kb = (_status_kb("VmHWM") if step_scope else None) or _lifetime_peak_kb()
    record.update(
        wall_s=round(wall, 3),
        cpu_s=round(cpu, 3),
        peak_mem_mb=round(peak_kb / 1024, 1),
        baseline_mem_mb=round(baseline_kb / 1024, 1),
        bytes_per_cell=round(peak_kb * 1024 / record["cells"], 2),
        step_bytes_per_cell=round(max(peak_kb - baseline_kb, 0) * 1024 / record["cells"], 2),
        peak_scope="step" if step_scope else "process",
    )


@contextmanager
def stage(stages: dict[str, float], name: str) -> Iterator[None]:
    """Record the wall time of one stage of a step in ``stages``."""
    start = time.perf_counter()
    yield
    stages[name] = round(time.perf_counter() - start, 3)


def _timed_call(fn: Callable[[], T]) -> tuple[float, T]:
    """Call ``fn``; its wall time in seconds and its result."""
    start = time.perf_counter()
    result = fn()
    return round(time.perf_counter() - start, 3), result


def _skipped(tool: str, exc: BaseException) -> dict:
    return {"tool": tool, "skipped": f"{type(exc).__name__}: {exc}"}


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


@contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr, C level included, to a file."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


# -- the tools ------------------------------------------------------------------


def bench_twin(main: Inputs, warm: Inputs, out_dir: Path) -> list[dict]:
    """Build the twin from the catalog, then save it; warm up on the small catalog."""
    start = time.perf_counter()
    try:
        if str(REPO_ROOT) not in sys.path:
            sys.path.insert(0, str(REPO_ROOT))  # the checkout's twin, not an installed one
        import twin

        BasinTwin = twin.BasinTwin
    except Exception as exc:  # the library may not be written yet
        return [_skipped("twin", exc)]
    import_s = round(time.perf_counter() - start, 3)
    version = getattr(twin, "__version__", None)

    compile_s, warm_twin = _timed_call(lambda: BasinTwin.build(warm.catalog))
    build: dict[str, Any] = {
        "tool": "twin",
        "version": version,
        "step": "BasinTwin.build(basin.yml): read DEM and jurisdictions, condition, route, rivers, in memory",
        "cells": main.cells,
        "import_s": import_s,
        "compile_s": compile_s,
    }
    with measured(build):
        built = BasinTwin.build(main.catalog)
    records = [build]
    if not hasattr(built, "save"):
        return records + [{"tool": "twin+save", "skipped": "BasinTwin has no save()"}]

    warm_out = out_dir.parent / f"{out_dir.name}-warmup"
    shutil.rmtree(warm_out, ignore_errors=True)
    save_compile_s, _ = _timed_call(lambda: warm_twin.save(warm_out))
    shutil.rmtree(out_dir, ignore_errors=True)
    save: dict[str, Any] = {
        "tool": "twin+save",
        "version": version,
        "step": f"twin.save({out_dir.name}/)",
        "cells": main.cells,
        "compile_s": save_compile_s,
    }
    with measured(save):
        built.save(out_dir)
    save["output_mb"] = round(sum(f.stat().st_size for f in out_dir.rglob("*") if f.is_file()) / 2**20, 1)
    return records + [save]


def _worker_peak_kb() -> int | None:
    return _status_kb("VmHWM")


def bench_twin_tiled(main: Inputs, warm: Inputs, out_dir: Path, tile_size: int = 2048, workers: int = 2) -> list[dict]:
    """The tiled build on a local dask cluster: BasinTwin.build(basin.yml, tile_size, runner).

    The cluster is started and warmed up (numba's caches loaded in every worker) on the small
    catalog first; then each worker's peak-RSS mark is reset and the main build timed. Besides
    this process's figures the line has each worker's peak RSS during the build
    (``worker_peak_mem_mb``): what bounds the memory a worker needs.
    """
    start = time.perf_counter()
    try:
        if str(REPO_ROOT) not in sys.path:
            sys.path.insert(0, str(REPO_ROOT))
        import twin
        from twin.model.cluster import open_runner
    except Exception as exc:
        return [_skipped("twin-tiled", exc)]
    import_s = round(time.perf_counter() - start, 3)
    work = out_dir.parent / f"tiles-n{main.size}"
    shutil.rmtree(work, ignore_errors=True)
    stages: dict[str, float] = {}
    marks: list[tuple[str, float]] = []
    record: dict[str, Any] = {
        "tool": "twin-tiled",
        "version": getattr(twin, "__version__", None),
        "step": f"BasinTwin.build(basin.yml, tile_size={tile_size}) on a LocalCluster of {workers} workers",
        "cells": main.cells,
        "tile_size": tile_size,
        "workers": workers,
        "import_s": import_s,
    }
    with open_runner(workers=workers) as runner:
        compile_s, _ = _timed_call(
            lambda: twin.BasinTwin.build(warm.catalog, tile_size=32, runner=runner, workdir=work / "warm")
        )
        record["compile_s"] = compile_s
        client = runner.client  # type: ignore[attr-defined]
        client.run(_reset_peak_rss)
        with measured(record):
            built = twin.BasinTwin.build(
                main.catalog,
                lambda step: marks.append((step, time.perf_counter())),
                tile_size=tile_size,
                runner=runner,
                workdir=work / "main",
            )
        end = time.perf_counter()
        for (name, t0), (_, t1) in zip(marks, marks[1:] + [("end", end)]):
            stages[name] = round(t1 - t0, 3)
        peaks = client.run(_worker_peak_kb)
    record["stages"] = stages
    record["worker_peak_mem_mb"] = sorted(round(kb / 1024, 1) for kb in peaks.values() if kb)
    record["reaches"] = len(built.model.network.reaches)
    del built
    shutil.rmtree(work, ignore_errors=True)
    return [record]


def bench_pyflwdir(main: Inputs, warm: Inputs, out_dir: Path) -> list[dict]:
    """pyflwdir's from_dem, upstream_area and streams, from the GeoTIFF."""
    start = time.perf_counter()
    try:
        import pyflwdir
        import rasterio
    except Exception as exc:
        return [_skipped("pyflwdir", exc)]
    import_s = round(time.perf_counter() - start, 3)

    def pipeline(inputs: Inputs, threshold_km2: float, stages: dict[str, float]) -> int:
        with stage(stages, "read"), rasterio.open(inputs.dem) as src:
            dem, transform, nodata = src.read(1), src.transform, src.nodata
        with stage(stages, "from_dem"):
            flw = pyflwdir.from_dem(dem, nodata=nodata, transform=transform, latlon=False)
        with stage(stages, "upstream_area"):
            upa = flw.upstream_area(unit="km2")
        with stage(stages, "streams"):
            streams = flw.streams(mask=upa > threshold_km2)
        return len(streams)

    compile_s, _ = _timed_call(lambda: pipeline(warm, WARMUP_THRESHOLD_KM2, {}))
    stages: dict[str, float] = {}
    record: dict[str, Any] = {
        "tool": "pyflwdir",
        "version": _version("pyflwdir"),
        "step": f"read + from_dem + upstream_area(km2) + streams(upa > {STREAM_THRESHOLD_KM2} km2)",
        "cells": main.cells,
        "import_s": import_s,
        "compile_s": compile_s,
    }
    with measured(record):
        record["n_streams"] = pipeline(main, STREAM_THRESHOLD_KM2, stages)
    record["stages"] = stages
    return [record]


def bench_pysheds(main: Inputs, warm: Inputs, out_dir: Path) -> list[dict]:
    """pysheds' conditioning (pits, depressions, flats), D8 and accumulation."""
    start = time.perf_counter()
    try:
        import numpy as np

        if not hasattr(np, "in1d"):  # pysheds 0.5 still calls np.in1d, removed in numpy 2.4
            setattr(np, "in1d", np.isin)  # noqa: B010 (an attribute numpy no longer declares)
        from pysheds.grid import Grid
    except Exception as exc:
        return [_skipped("pysheds", exc)]
    import_s = round(time.perf_counter() - start, 3)

    def pipeline(inputs: Inputs, stages: dict[str, float]) -> None:
        with stage(stages, "read"):
            grid = Grid.from_raster(str(inputs.dem))
            dem = grid.read_raster(str(inputs.dem))
        with stage(stages, "fill_pits"):
            dem = grid.fill_pits(dem)
        with stage(stages, "fill_depressions"):
            dem = grid.fill_depressions(dem)
        with stage(stages, "resolve_flats"):
            dem = grid.resolve_flats(dem)
        with stage(stages, "flowdir"):
            fdir = grid.flowdir(dem)
        del dem
        with stage(stages, "accumulation"):
            grid.accumulation(fdir)

    compile_s, _ = _timed_call(lambda: pipeline(warm, {}))
    stages: dict[str, float] = {}
    record: dict[str, Any] = {
        "tool": "pysheds",
        "version": _version("pysheds"),
        "step": "from_raster + fill_pits + fill_depressions + resolve_flats + flowdir + accumulation",
        "cells": main.cells,
        "import_s": import_s,
        "compile_s": compile_s,
    }
    with measured(record):
        pipeline(main, stages)
    record["stages"] = stages
    return [record]


def bench_richdem(main: Inputs, warm: Inputs, out_dir: Path) -> list[dict]:
    """richdem's epsilon depression filling and D8 accumulation.

    richdem draws progress bars on the terminal; they go to
    ``richdem.log`` next to ``out_dir``.
    """
    start = time.perf_counter()
    try:
        import rasterio
        import richdem as rd
    except Exception as exc:  # no wheel for recent Pythons
        record = _skipped("richdem", exc)
        record["skipped"] += "; to run it: sh benchmarks/richdem-env.sh, then --python richdem=<the path it prints>"
        return [record]
    import_s = round(time.perf_counter() - start, 3)
    chatter = out_dir.parent / "richdem.log"
    chatter.unlink(missing_ok=True)

    def pipeline(inputs: Inputs, stages: dict[str, float]) -> None:
        with stage(stages, "read"), rasterio.open(inputs.dem) as src:
            dem = rd.rdarray(src.read(1), no_data=src.nodata)
            dem.geotransform = src.transform.to_gdal()
        with _output_to(chatter):
            with stage(stages, "fill_depressions"):
                rd.FillDepressions(dem, epsilon=True, in_place=True)
            with stage(stages, "flow_accumulation"):
                rd.FlowAccumulation(dem, method="D8")

    compile_s, _ = _timed_call(lambda: pipeline(warm, {}))
    stages: dict[str, float] = {}
    record: dict[str, Any] = {
        "tool": "richdem",
        "version": _version("richdem"),
        "step": "read (rasterio) + FillDepressions(epsilon) + FlowAccumulation(D8)",
        "cells": main.cells,
        "import_s": import_s,
        "compile_s": compile_s,
    }
    with measured(record):
        pipeline(main, stages)
    record["stages"] = stages
    return [record]


BENCHES = {
    "twin": bench_twin,
    "twin-tiled": bench_twin_tiled,
    "pyflwdir": bench_pyflwdir,
    "pysheds": bench_pysheds,
    "richdem": bench_richdem,
}


def child_main(args: argparse.Namespace) -> int:
    """Run one tool in this (fresh) process and print its JSON lines.

    The lines go to the original stdout; anything else written to stdout
    (by the tool or its libraries) is sent to stderr so it cannot mix in.
    """
    sys.stdout.flush()
    results = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    main = Inputs(Path(args.dem), Path(args.catalog), args.size)
    warm = Inputs(Path(args.warm_dem), Path(args.warm_catalog), WARMUP_SIZE)
    tool = args.child
    try:
        if tool == "twin-tiled":
            records = bench_twin_tiled(main, warm, Path(args.out), int(args.tile_size), int(args.workers))
        else:
            records = BENCHES[tool](main, warm, Path(args.out))
    except Exception as exc:
        traceback.print_exc()
        records = [{"tool": tool, "error": f"{type(exc).__name__}: {exc}"}]
    for record in records:
        record.setdefault("size", args.size)
        print(json.dumps(record), file=results)
    return 0


# -- the parent: inputs, one child per tool, summary ---------------------------


def run_tool(
    tool: str,
    main: Inputs,
    warm: Inputs,
    workdir: Path,
    python: str = sys.executable,
    tile_size: int = 2048,
    workers: int = 2,
) -> list[dict]:
    """Run one tool's benchmark in a fresh Python process and collect its lines."""
    out_dir = workdir / f"twin-n{main.size}"
    command = [
        python,
        str(Path(__file__).resolve()),
        "--child", tool,
        "--size", str(main.size),
        "--dem", str(main.dem),
        "--catalog", str(main.catalog),
        "--warm-dem", str(warm.dem),
        "--warm-catalog", str(warm.catalog),
        "--out", str(out_dir),
        "--tile-size", str(tile_size),
        "--workers", str(workers),
    ]  # fmt: skip
    log.info("running %s with %s", tool, python)
    proc = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0:  # e.g. -9 when the kernel kills it for memory
        records.append(
            {"tool": tool, "size": main.size, "error": f"benchmark process exited with status {proc.returncode}"}
        )
    return records


def summarize(records: list[dict], size: int) -> dict:
    """Speed ratios of the twin against its peers and whether its goals hold.

    A goal is None when a tool it needs did not run.
    """
    timed = {r["tool"]: r for r in records if "wall_s" in r}
    twin = timed.get("twin")

    def speedup(peer: str) -> float | None:
        if twin is None or peer not in timed:
            return None
        return round(timed[peer]["wall_s"] / twin["wall_s"], 2)

    twin_lines = [r for r in records if r["tool"] in ("twin", "twin+save") and "bytes_per_cell" in r]
    vs_pyflwdir, vs_richdem = speedup("pyflwdir"), speedup("richdem")
    goals = {
        "twin_build_le_richdem": None if vs_richdem is None else vs_richdem >= 1.0,
        "twin_2x_faster_than_pyflwdir": None if vs_pyflwdir is None else vs_pyflwdir >= GOAL_SPEEDUP_VS_PYFLWDIR,
        "twin_peak_lt_60_bytes_per_cell": (
            max(r["bytes_per_cell"] for r in twin_lines) < GOAL_BYTES_PER_CELL if twin_lines else None
        ),
    }
    tiled = timed.get("twin-tiled")

    def tiled_ratio(peer: str) -> float | None:
        if tiled is None or peer not in timed:
            return None
        return round(timed[peer]["wall_s"] / tiled["wall_s"], 2)

    tiled_vs_pyflwdir, tiled_vs_richdem = tiled_ratio("pyflwdir"), tiled_ratio("richdem")
    goals["tiled_3x_faster_than_pyflwdir"] = (
        None if tiled_vs_pyflwdir is None else tiled_vs_pyflwdir >= GOAL_TILED_SPEEDUP_VS_PYFLWDIR
    )
    goals["tiled_le_0.6_of_richdem_time"] = (
        None if tiled_vs_richdem is None else 1.0 / tiled_vs_richdem <= GOAL_TILED_TIME_VS_RICHDEM
    )
    checked = [v for v in goals.values() if v is not None]
    return {
        "summary": True,
        "size": size,
        "cells": size * size,
        "twin_bytes_per_cell": max((r["bytes_per_cell"] for r in twin_lines), default=None),
        "twin_step_bytes_per_cell": max((r["step_bytes_per_cell"] for r in twin_lines), default=None),
        "twin_speedup_vs_pyflwdir": vs_pyflwdir,
        "twin_speedup_vs_richdem": vs_richdem,
        "twin_speedup_vs_pysheds": speedup("pysheds"),
        "tiled_speedup_vs_pyflwdir": tiled_vs_pyflwdir,
        "tiled_speedup_vs_richdem": tiled_vs_richdem,
        "tiled_worker_peak_mem_mb": tiled["worker_peak_mem_mb"] if tiled else None,
        "goals": goals,
        "all_checked_goals_met": all(checked) if checked else None,
        "goals_unchecked": [k for k, v in goals.items() if v is None],
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_1min": round(os.getloadavg()[0], 2),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time the basin twin's build against pyflwdir, pysheds and richdem on a synthetic DEM; "
        "one JSON line per tool on stdout."
    )
    parser.add_argument("--size", type=int, default=5000, help="rows and columns of the DEM (default 5000)")
    parser.add_argument("--seed", type=int, default=0, help="terrain seed (default 0)")
    parser.add_argument(
        "--workdir", type=Path, default=BENCH_DIR / "out", help="where inputs and outputs go (default benchmarks/out)"
    )
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated subset of {','.join(TOOLS)}")
    parser.add_argument("--regenerate", action="store_true", help="write the DEM and catalog again even if present")
    parser.add_argument("--tile-size", type=int, default=2048, help="tile size of twin-tiled (default 2048)")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="local dask workers of twin-tiled (default: cores)"
    )
    parser.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="TOOL=PATH",
        help="run TOOL with another Python interpreter (e.g. richdem=/opt/rd/bin/python); repeatable",
    )
    # Internal: run one tool in this process (used by the parent for each child).
    for name in ("--child", "--dem", "--catalog", "--warm-dem", "--warm-catalog", "--out"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = sorted(set(tools) - set(TOOLS))
    if unknown:
        parser.error(f"unknown tool(s) {unknown}; choose from {','.join(TOOLS)}")
    args.tools = tools
    interpreters = {}
    for item in args.python:
        tool, sep, path = item.partition("=")
        if not sep or tool not in TOOLS:
            parser.error(f"--python takes TOOL=PATH with TOOL one of {','.join(TOOLS)}, got {item!r}")
        interpreters[tool] = path
    args.python = interpreters
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING,  # the tools' own INFO chatter stays out
        format=f"%(asctime)s {args.child or 'build'}: %(message)s",
        datefmt="%H:%M:%S",
    )
    log.setLevel(logging.INFO)
    if args.child:
        return child_main(args)

    workdir = args.workdir.resolve()
    warm = prepare_inputs(workdir, WARMUP_SIZE, args.seed, WARMUP_THRESHOLD_KM2, args.regenerate)
    main_inputs = prepare_inputs(workdir, args.size, args.seed, STREAM_THRESHOLD_KM2, args.regenerate)
    records: list[dict] = []
    for tool in args.tools:
        python = args.python.get(tool, sys.executable)
        for record in run_tool(tool, main_inputs, warm, workdir, python, args.tile_size, args.workers):
            print(json.dumps(record), flush=True)
            records.append(record)
    print(json.dumps(summarize(records, args.size)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
