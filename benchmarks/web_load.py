"""Load test of the web server: concurrent clients fetching tiles and slices; one JSON line per measure.

The server is ``twin serve`` (waitress) in a child process on a free loopback
port; the clients are threads in this process, each with its own keep-alive
``requests`` session, each request drawn at random from a mix:

``tile``      a tile of a random layer at zoom 10-13 around a random point of the basin
``time``      the twin at a random time of the scenario's window, for As, DO or pH
``profile``   a terrain profile along a random line across the basin
``station``   a station's As series with class bands and warning periods
``river``     the longitudinal profile from a random station to the outlet
``features``  a page of reaches in a random box (OGC API Features)

Every request expects 200; anything else (or a failed connection) is an error.
Lines: one per kind and a last one (``"kind": "all"``) with requests, errors,
requests per second and p50/p95/p99 latency in milliseconds. The run is bounded
by ``--seconds`` and talks to 127.0.0.1 only.

Without ``--twin`` the demo twin is built into a temporary folder and the
mine-leak scenario is run on it (simulated readings, an incident, warnings).

Usage::

    python benchmarks/web_load.py [--seconds 60] [--clients 50] [--threads 8] [--twin DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LAYERS = ("hillshade", "elevation", "upstream-area", "subbasins", "terrain-rgb")
KINDS = ("tile", "time", "profile", "station", "river", "features")
WEIGHTS = (0.6, 0.1, 0.08, 0.08, 0.06, 0.08)


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record, ensure_ascii=False), flush=True)


def demo_twin(folder: Path) -> Path:
    """The demo twin with the mine-leak scenario's readings, in ``folder``."""
    import twin
    from twin import scenarios

    out = folder / "cevennes"
    basin = twin.BasinTwin.build(ROOT / "data" / "cevennes" / "basin.yml")
    basin.save(out)
    scenarios.run(twin.open(str(out)), "mine-leak", seed=1)
    return out


class Mix:
    """Random requests on one twin (paths relative to the server's root), drawn with a caller's generator."""

    def __init__(self, twin_dir: Path, seed: int, points: int = 5000):
        from pyproj import Transformer

        import twin

        basin = twin.open(str(twin_dir))
        stations = basin.sites[basin.sites["kind"] == "station"]
        self.stations = stations["id"].tolist()
        self.station_ll = [(float(lon), float(lat)) for lon, lat in zip(stations["lon"], stations["lat"])]
        times = basin.readings.query(parameters=["As"])["time"]
        self.t0, self.t1 = times.min(), times.max()
        # random points of the grid, in lon/lat, made once (the clients only pick among them)
        rng = np.random.default_rng(seed)
        x0, y0, x1, y1 = basin.terrain.grid.bounds
        to_ll = Transformer.from_crs(basin.crs, "EPSG:4326", always_xy=True)
        lon, lat = to_ll.transform(rng.uniform(x0, x1, points), rng.uniform(y0, y1, points))
        self.points = list(zip(np.asarray(lon).tolist(), np.asarray(lat).tolist()))

    def request(self, kind: str, r: random.Random) -> str:
        import morecantile

        if kind == "tile":
            lon, lat = r.choice(self.points)
            t = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, r.randint(10, 13))
            return f"tiles/{r.choice(LAYERS)}/{t.z}/{t.x}/{t.y}.png"
        if kind == "time":
            at = self.t0 + (self.t1 - self.t0) * r.random()
            return f"api/slices/time?at={at.strftime('%Y-%m-%dT%H:%MZ')}&parameter={r.choice(['As', 'DO', 'pH'])}"
        if kind == "profile":
            (a, b), (c, d) = r.choice(self.points), r.choice(self.points)
            return f"api/slices/profile?line={a:.5f},{b:.5f},{c:.5f},{d:.5f}&samples=256"
        if kind == "station":
            return f"api/slices/stations/{r.choice(self.stations)}?parameter=As"
        if kind == "river":
            lon, lat = r.choice(self.station_ll)
            return f"api/slices/river?lon={lon:.6f}&lat={lat:.6f}&samples=200"
        lon, lat = r.choice(self.points)
        return f"api/collections/reaches/items?bbox={lon - 0.05:.5f},{lat - 0.05:.5f},{lon + 0.05:.5f},{lat + 0.05:.5f}"


def start_server(twin_dir: Path, threads: int, log: Any) -> tuple[subprocess.Popen[str], str]:
    """``twin serve`` on a free loopback port (its log into ``log``); returns the process and its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "twin.cli", "serve", str(twin_dir), "--port", "0", "--threads", str(threads)]
        + ["--no-tile-cache"],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if " at http://127.0.0.1:" not in line:
        proc.kill()
        raise RuntimeError(f"twin serve did not start: {line!r}")
    url = line.split(" at ", 1)[1].split(" ", 1)[0]
    return proc, url


def load_token(twin_dir: Path) -> str:
    """An API token of the twin's ``web-load`` admin (made on first use): every request needs a user."""
    from twin.access import Access, UnknownUserError

    access = Access.open(twin_dir)
    try:
        access.user("web-load")
    except UnknownUserError:
        access.add_user("web-load", "admin")
    return access.new_token("web-load")


def run(url: str, mix: Mix, seconds: float, clients: int, token: str = "") -> dict[str, list[tuple[float, bool]]]:
    """``clients`` threads requesting for ``seconds``; (latency s, ok) per request, by kind."""
    import requests

    if not url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise ValueError(f"{url}: the load test talks to loopback addresses only")
    results: dict[str, list[tuple[float, bool]]] = {k: [] for k in KINDS}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(seed: int) -> None:
        r = random.Random(seed)
        mine: list[tuple[str, float, bool]] = []
        with requests.Session() as s:
            if token:
                s.headers["Authorization"] = f"Bearer {token}"
            while time.monotonic() < deadline:
                kind = r.choices(KINDS, WEIGHTS)[0]
                path = mix.request(kind, r)
                t = time.perf_counter()
                try:
                    ok = s.get(url + path, timeout=60).status_code == 200
                except requests.RequestException:
                    ok = False
                mine.append((kind, time.perf_counter() - t, ok))
        with lock:
            for kind, dt, ok in mine:
                results[kind].append((dt, ok))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def summary(kind: str, rows: list[tuple[float, bool]], seconds: float, clients: int) -> dict[str, Any]:
    lat = np.array([dt for dt, _ in rows]) * 1000.0
    out: dict[str, Any] = {
        "kind": kind,
        "clients": clients,
        "seconds": seconds,
        "requests": len(rows),
        "errors": sum(1 for _, ok in rows if not ok),
        "rps": round(len(rows) / seconds, 1),
    }
    for q in (50, 95, 99):
        out[f"p{q}_ms"] = round(float(np.percentile(lat, q)), 1) if len(lat) else None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="how long the clients run (default 60)")
    ap.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    ap.add_argument("--threads", type=int, default=8, help="the server's worker threads (default 8)")
    ap.add_argument("--twin", type=Path, default=None, help="a twin folder with readings (default: demo + scenario)")
    ap.add_argument("--token", default=None, help="an API token (default: one of a `web-load` admin made in the twin)")
    args = ap.parse_args(argv)
    if not 0 < args.seconds <= 3600 or not 0 < args.clients <= 500:
        ap.error("--seconds must be in (0, 3600] and --clients in (0, 500]")
    with tempfile.TemporaryDirectory(prefix="web-load-") as tmp:
        twin_dir = args.twin or demo_twin(Path(tmp))
        mix = Mix(twin_dir, seed=0)
        log_path = Path(tmp) / "server.log"
        with open(log_path, "w") as log:
            proc, url = start_server(twin_dir, args.threads, log)
        try:
            results = run(url, mix, args.seconds, args.clients, args.token or load_token(twin_dir))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        # waitress says when requests queue up (expected under this load); anything else is shown
        queued = 0
        for line in log_path.read_text().splitlines():
            if "Task queue depth" in line:
                queued += 1
            else:
                print(line, file=sys.stderr)
    every: list[tuple[float, bool]] = []
    for kind in KINDS:
        emit(summary(kind, results[kind], args.seconds, args.clients))
        every += results[kind]
    total = summary("all", every, args.seconds, args.clients)
    total.update(server_threads=args.threads, cores=os.cpu_count(), queue_warnings=queued)
    emit(total)
    return 0 if total["requests"] and total["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
