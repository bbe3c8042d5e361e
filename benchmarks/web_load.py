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
requests per second and p50/p95/p99/max latency in milliseconds, each with the
``mode`` it was measured in. The run is bounded by ``--seconds`` per mode and
talks to 127.0.0.1 only.

Modes (``--modes``, default ``idle``; ``--ingest`` is ``idle,ingest``), run one
after the other against the same server:

``idle``    only the clients
``ingest``  the clients while a separate process feeds the same twin's store, as
            stations posting: every ``--ingest-every`` seconds (default 1) one
            batch of ``--ingest-hours`` (default 6) of 2-hourly readings of every
            station (8 background parameters, and As, Pb and Cd with a second mine
            leak released 2 hours into the feed), each batch one commit through
            :func:`twin.ops.readings.store_rows`, the ingest path of ``twin ingest`` and
            ``POST /api/readings``. Its line (``"kind": "ingest"``) gives batches,
            rows stored, rows/s over the phase, commit times, and how many warning
            episodes the server shows afterwards that started in the fed window
            (the leak's: the ingested readings are visible).

Before the first mode, one request of each kind is made in turn (a line ``"kind":
"warmup"`` gives their milliseconds): the server's cold start (opening the model,
building the feature tables, reading the store for the warnings) is not counted in
the first mode. The feed starts 2 hours after the last reading in the store, so a
second run on the same twin continues where the last one stopped.

Without ``--twin`` the demo twin is built into a temporary folder and filled as
``make demo`` fills it (the CNEMC sample, a simulated year at the demo stations, the
mine-leak scenario: about 145,000 readings, an incident, warnings).

Usage::

    python benchmarks/web_load.py [--seconds 60] [--clients 50] [--threads 8] [--twin DIR]
                                  [--ingest | --modes idle,ingest] [--ingest-every 1] [--ingest-hours 6]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
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
MODES = ("idle", "ingest")
FEED_STEP = "2h"
FEED_LEAK = {"As": (40.0, 0.002), "Pb": (25.0, 0.002), "Cd": (1.5, 0.0002)}  # kg released, background mg/L


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record, ensure_ascii=False), flush=True)


def demo_twin(folder: Path) -> Path:
    """The demo twin as ``make demo`` fills it, in ``folder``.

    The CNEMC sample (real readings of stations off this basin), a simulated year (2025)
    of 4-hourly readings at the demo stations, then the mine-leak scenario's readings,
    incident and warnings: about 145,000 readings.
    """
    import pandas as pd

    import twin
    from twin.analysis import scenarios
    from twin.analysis.simulate import simulate_year

    out = folder / "cevennes"
    basin = twin.BasinTwin.build(ROOT / "data" / "cevennes" / "basin.yml")
    basin.save(out)
    basin = twin.open(str(out))
    cnemc = ROOT / "data" / "cnemc"
    basin.readings.register_stations(pd.read_csv(cnemc / "stations.csv", dtype={"id": str}, encoding="utf-8-sig"))
    basin.readings.ingest(cnemc / "cnemc_sample_20260709_20260711.csv")
    year = folder / "simulated-2025.csv"
    simulate_year(basin.sites.loc[basin.sites["kind"] == "station", "id"].tolist(), 2025).to_csv(year, index=False)
    basin.readings.ingest(year)
    scenarios.run(basin.model, basin.store, "mine-leak", folder=basin.path, seed=1)
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


def feed_start(twin_dir: Path) -> Any:
    """Where the feed begins: one step after the last reading in the twin's store."""
    import pandas as pd
    import sqlalchemy as sa

    import twin
    from twin.ops.store import readings

    with twin.open(str(twin_dir)).store.connect() as conn:
        last = conn.execute(sa.select(sa.func.max(readings.c.time))).scalar()
    if last is None:
        return pd.Timestamp("2026-09-01T00:00Z")
    return pd.Timestamp(int(last), unit="s", tz="UTC").ceil(FEED_STEP) + pd.Timedelta(FEED_STEP)


def feed_rows(basin: Any, start: Any, hours: float) -> Any:
    """The tidy rows the feed posts: ``hours`` of 2-hourly simulated readings of every station from ``start``.

    The 8 background parameters of :func:`twin.analysis.simulate.simulate_year`, and As, Pb and Cd:
    their background plus a release at the mine (the mine-leak scenario's source) 2 hours
    after ``start``, carried to the stations by :func:`twin.analysis.scenarios.release_signal`.
    """
    import pandas as pd

    from twin.analysis.scenarios import release_signal
    from twin.analysis.simulate import SIMULATED_FLAG, simulate_year

    stations = basin.sites[basin.sites["kind"] == "station"]["id"].tolist()
    times = pd.date_range(start, periods=max(1, int(np.ceil(hours / 2))), freq=FEED_STEP)
    years = range(times[0].year, times[-1].year + 1)
    back = pd.concat([simulate_year(stations, year=y, seed=y, freq=FEED_STEP) for y in years], ignore_index=True)
    back["time"] = pd.to_datetime(back["time"], utc=True)
    back = back[back["time"].isin(times)]
    mine = basin.sites.set_index("id").loc["MINE-MOISSAC"]
    leak, _ = release_signal(
        basin,
        int(mine["reach_id"]),
        float(mine["measure_m"]),
        times[0] + pd.Timedelta(hours=2),
        {p: kg for p, (kg, _) in FEED_LEAK.items()},
        times,
    )
    rng = np.random.default_rng(int(times[0].timestamp()))
    level = leak["parameter"].map({p: bg for p, (_, bg) in FEED_LEAK.items()}).to_numpy()
    leak["value"] = np.round(leak["value"] + level * (1 + 0.15 * rng.standard_normal(len(leak))).clip(0.5), 6)
    leak = leak.assign(unit="mg/L", flag=SIMULATED_FLAG)
    rows = pd.concat([back, leak], ignore_index=True).sort_values("time", kind="stable").reset_index(drop=True)
    return rows.assign(tz_offset_min=0, line_no=np.arange(len(rows)) + 1)


def feed(twin_dir: str, start: Any, every: float, hours: float, seconds: float, ready: Any, go: Any, out: Any) -> None:
    """The ingest process: after ``go``, one batch of ``hours`` of readings every ``every`` s for ``seconds``."""
    import pandas as pd

    import twin
    from twin.ops.readings import store_rows

    basin = twin.open(twin_dir)
    n = int(seconds / every) + 2
    rows = feed_rows(basin, start, hours * n)
    empty = pd.DataFrame(columns=["line_no", "raw", "reason"])
    engine = basin.store
    ready.set()
    go.wait()
    t0 = time.monotonic()
    commits: list[float] = []
    stored = rejected = 0
    last = start
    for k in range(n):
        due = t0 + k * every
        if due >= t0 + seconds:
            break
        time.sleep(max(0.0, due - time.monotonic()))
        a, b = start + pd.Timedelta(hours=k * hours), start + pd.Timedelta(hours=(k + 1) * hours)
        batch = rows[(rows["time"] >= a) & (rows["time"] < b)]
        t = time.perf_counter()
        report = store_rows(engine, batch, empty, source=f"web-load feed {k + 1}", fmt="feed")
        commits.append(time.perf_counter() - t)
        stored += report.stored
        rejected += len(report.rejected)
        last = b
    elapsed = time.monotonic() - t0
    out.put(
        {
            "batches": len(commits),
            "rows_stored": stored,
            "rows_rejected": rejected,
            "rows_per_s": round(stored / elapsed, 1) if elapsed > 0 else None,
            "commit_p50_ms": round(float(np.median(commits)) * 1000, 1) if commits else None,
            "commit_max_ms": round(float(max(commits)) * 1000, 1) if commits else None,
            "fed_from": pd.Timestamp(start).isoformat(),
            "fed_to": pd.Timestamp(last).isoformat(),
        }
    )


class Feed:
    """The ingest process of the ``ingest`` mode, started and ready (its rows made) before the clients start."""

    def __init__(self, twin_dir: Path, every: float, hours: float, seconds: float):
        ctx = mp.get_context("spawn")
        self.start_time = feed_start(twin_dir)
        self._ready, self._go, self._out = ctx.Event(), ctx.Event(), ctx.Queue()
        self._proc = ctx.Process(
            target=feed,
            args=(str(twin_dir), self.start_time, every, hours, seconds, self._ready, self._go, self._out),
            name="web-load-feed",
        )
        self._proc.start()
        if not self._ready.wait(timeout=300):
            self.stop()
            raise RuntimeError("the ingest process did not get ready in 300 s")

    def go(self) -> None:
        self._go.set()

    def result(self) -> dict[str, Any]:
        try:
            return dict(self._out.get(timeout=120))
        finally:
            self.stop()

    def stop(self) -> None:
        if self._proc.is_alive():
            self._proc.join(timeout=30)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join()


def warnings_since(url: str, token: str, start: Any) -> int:
    """How many warning episodes the server shows that started at or after ``start``."""
    import requests

    got = requests.get(
        url + "api/collections/warnings/items",
        params={"datetime": f"{start.isoformat().replace('+00:00', 'Z')}/..", "limit": 10000},
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )
    got.raise_for_status()
    import pandas as pd

    starts = [pd.Timestamp(f["properties"]["start"]) for f in got.json()["features"]]
    return sum(1 for t in starts if t >= start)


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


def warm_up(url: str, mix: Mix, token: str) -> dict[str, float]:
    """One request of each kind, one after the other, before the clock starts; milliseconds each.

    The first requests open the model, build the feature tables and read the store's
    readings for the warnings: a cold start, measured here rather than in the first mode.
    """
    import requests

    out: dict[str, float] = {}
    r = random.Random(-1)
    with requests.Session() as s:
        s.headers["Authorization"] = f"Bearer {token}"
        for kind in KINDS:
            t = time.perf_counter()
            got = s.get(url + mix.request(kind, r), timeout=300)
            out[kind] = round((time.perf_counter() - t) * 1000, 1)
            if got.status_code != 200:
                raise RuntimeError(f"warm-up request of kind {kind} failed: {got.status_code} {got.text[:200]}")
    return out


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
    out["max_ms"] = round(float(lat.max()), 1) if len(lat) else None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="how long the clients run per mode (default 60)")
    ap.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    ap.add_argument("--threads", type=int, default=8, help="the server's worker threads (default 8)")
    ap.add_argument("--twin", type=Path, default=None, help="a twin folder with readings (default: demo + scenario)")
    ap.add_argument("--token", default=None, help="an API token (default: one of a `web-load` admin made in the twin)")
    ap.add_argument("--modes", default="idle", help="modes to run in turn, of idle, ingest (default idle)")
    ap.add_argument("--ingest", action="store_true", help="the same as --modes idle,ingest")
    ap.add_argument("--ingest-every", type=float, default=1.0, help="seconds between the feed's batches (default 1)")
    ap.add_argument("--ingest-hours", type=float, default=6.0, help="hours of readings per batch (default 6)")
    args = ap.parse_args(argv)
    modes = ["idle", "ingest"] if args.ingest else [m.strip() for m in args.modes.split(",") if m.strip()]
    if not 0 < args.seconds <= 3600 or not 0 < args.clients <= 500:
        ap.error("--seconds must be in (0, 3600] and --clients in (0, 500]")
    if not modes or set(modes) - set(MODES):
        ap.error(f"--modes takes a comma-separated list of {', '.join(MODES)}; got {args.modes!r}")
    if not 0 < args.ingest_every <= 60 or not 0 < args.ingest_hours <= 24 * 31:
        ap.error("--ingest-every must be in (0, 60] seconds and --ingest-hours in (0, 744]")
    lines: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="web-load-") as tmp:
        twin_dir = args.twin or demo_twin(Path(tmp))
        mix = Mix(twin_dir, seed=0)
        token = args.token or load_token(twin_dir)
        log_path = Path(tmp) / "server.log"
        with open(log_path, "w") as log:
            proc, url = start_server(twin_dir, args.threads, log)
        try:
            lines.append({"mode": "warmup", "kind": "warmup", "ms": warm_up(url, mix, token)})
            for mode in modes:
                feeder = (
                    Feed(twin_dir, args.ingest_every, args.ingest_hours, args.seconds) if mode == "ingest" else None
                )
                if feeder is not None:
                    feeder.go()
                results = run(url, mix, args.seconds, args.clients, token)
                every: list[tuple[float, bool]] = []
                for kind in KINDS:
                    lines.append({"mode": mode, **summary(kind, results[kind], args.seconds, args.clients)})
                    every += results[kind]
                total = {"mode": mode, **summary("all", every, args.seconds, args.clients)}
                total.update(server_threads=args.threads, cores=os.cpu_count())
                lines.append(total)
                if feeder is not None:
                    fed = feeder.result()
                    fed["warnings_from_ingest"] = warnings_since(url, token, feeder.start_time)
                    lines.append({"mode": mode, "kind": "ingest", **fed})
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
    ok = True
    for rec in lines:
        if rec["kind"] == "all":
            rec["queue_warnings"] = queued  # over the whole run: waitress's log does not say which mode
            ok = ok and rec["requests"] > 0 and rec["errors"] == 0
        emit(rec)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
