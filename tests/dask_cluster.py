"""A real dask cluster for the tests: one ``dask scheduler`` and ``dask worker`` processes on loopback.

:func:`running` starts them as subprocesses of the test process (the ``dask`` command line
of this interpreter, ``python -m dask``), with this worktree on ``PYTHONPATH`` so that the
workers import the twin under test, and everything in one temporary folder: the scheduler
file, the workers' scratch folders, the processes' logs. On leaving the block the workers
and then the scheduler are stopped by their pids (SIGTERM, then SIGKILL if they linger),
the worker processes the nannies started are checked to be gone, and the folder is removed.
Killing a worker process in a test is fine: its nanny starts another, which stops with it.

If the test process dies without tearing down, the scheduler closes itself after
:data:`IDLE_TIMEOUT` seconds without tasks and the workers :data:`DEATH_TIMEOUT` seconds
after losing it.

The ``dask_cluster`` fixture (module scope) gives a cluster of two workers;
``with dask_cluster.running(2) as cluster:`` gives a fresh one (for a test that kills a worker).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IDLE_TIMEOUT = 600  # seconds
DEATH_TIMEOUT = 60  # seconds
START_TIMEOUT = 120.0  # seconds for the scheduler file and the workers to appear (a busy machine is slow)
STOP_TIMEOUT = 30.0


class DaskClusterError(RuntimeError):
    """The test cluster did not start (the message has the end of the processes' logs)."""


@dataclass(frozen=True)
class Cluster:
    address: str  # tcp://127.0.0.1:PORT
    folder: Path
    scheduler: subprocess.Popen
    nannies: tuple[subprocess.Popen, ...]  # one `dask worker` process each, which runs the worker process

    def worker_pids(self) -> list[int]:
        """The pids of the worker processes (the nannies' children) the scheduler knows now."""
        from dask.distributed import Client

        with Client(self.address, timeout=30, set_as_default=False) as client:
            return sorted(client.run(os.getpid).values())

    def logs(self) -> str:
        """The end of each process's log (for a test's failure message)."""
        return _logs(self.folder)


@contextmanager
def running(nworkers: int = 2) -> Iterator[Cluster]:
    """A scheduler and ``nworkers`` workers (one process, one thread each), stopped and removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="twin-test-dask-"))
    procs: list[subprocess.Popen] = []
    try:
        yield _start(folder, nworkers, procs)
    finally:
        _stop(procs)
        shutil.rmtree(folder, ignore_errors=True)


def _start(folder: Path, nworkers: int, procs: list[subprocess.Popen]) -> Cluster:
    from dask.distributed import Client

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["DASK_TEMPORARY_DIRECTORY"] = str(folder)  # the scheduler's scratch folder too, not the system's
    scheduler_file = folder / "scheduler.json"

    def start(name: str, args: list[str]) -> subprocess.Popen:
        with open(folder / f"{name}.log", "wb") as log:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(
                [sys.executable, "-m", "dask", *args],
                cwd=folder,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        procs.append(proc)
        return proc

    scheduler = start(
        "scheduler",
        [
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--dashboard-address",
            "127.0.0.1:0",
            "--scheduler-file",
            str(scheduler_file),
            "--idle-timeout",
            str(IDLE_TIMEOUT),
        ],
    )
    deadline = time.monotonic() + START_TIMEOUT
    address = None
    while address is None:
        if scheduler.poll() is not None or time.monotonic() > deadline:
            raise DaskClusterError(f"the dask scheduler did not start:\n{_logs(folder)}")
        try:
            address = json.loads(scheduler_file.read_text())["address"]
        except (OSError, ValueError, KeyError):  # not there yet, or being written
            time.sleep(0.1)
    nannies = tuple(
        start(
            f"worker{i}",
            [
                "worker",
                address,
                "--name",
                f"w{i}",
                "--nworkers",
                "1",
                "--nthreads",
                "1",
                "--no-dashboard",
                "--local-directory",
                str(folder / f"w{i}"),
                "--death-timeout",
                str(DEATH_TIMEOUT),
            ],
        )
        for i in range(nworkers)
    )
    with Client(address, timeout=30, set_as_default=False) as client:
        try:
            client.wait_for_workers(nworkers, timeout=START_TIMEOUT)
        except TimeoutError:
            raise DaskClusterError(f"{nworkers} dask workers did not join:\n{_logs(folder)}") from None
    return Cluster(address, folder, scheduler, nannies)


def _logs(folder: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in sorted(folder.glob("*.log")))


def _stop(procs: list[subprocess.Popen]) -> None:
    """Workers first (they would otherwise wait for a scheduler gone), then the scheduler, by pid.

    The worker processes the nannies started end with them; one that lingers is killed, and
    the test fails.
    """
    import psutil

    children = []
    for proc in procs:
        with suppress(psutil.NoSuchProcess):
            children += psutil.Process(proc.pid).children(recursive=True)
    for group in (procs[1:], procs[:1]):  # the workers together, then the scheduler
        for proc in group:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in group:
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    _, left = psutil.wait_procs(children, timeout=STOP_TIMEOUT)
    for child in left:
        child.kill()  # psutil checks first that the pid is still that process
    if left:
        raise DaskClusterError(f"dask worker processes {[c.pid for c in left]} outlived their nannies (killed now)")


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[Cluster]:
    """A running scheduler with two workers, shared by the tests of a module."""
    with running(2) as cluster:
        yield cluster
