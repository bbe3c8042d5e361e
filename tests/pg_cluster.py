"""A throwaway PostgreSQL cluster for the tests: ``initdb`` in a temporary folder, a server on a Unix socket there.

The ``postgres_url`` fixture of ``conftest.py`` starts one per test session when
``TWIN_TEST_POSTGRES_URL`` is not set, so ``python -m pytest`` alone runs the PostgreSQL
tests and no system service is needed. The server listens on no TCP port (no conflict
with any other server on the machine): only on a socket in its own folder (mode 0700),
where ``trust`` authentication is safe because nobody else can reach the socket.
Durability is off (``fsync``, ``synchronous_commit``, ``full_page_writes``): nothing in
it outlives the session, and transactions and locks behave as on any server.

PostgreSQL refuses to run as root: as root, ``initdb`` and ``pg_ctl`` run as the
``postgres`` user (Debian's package creates it) or else ``nobody``, which own the folder.

Stopped and removed at the end in every case: a watchdog process (in a session of its
own, deaf to Ctrl-C and SIGTERM) waits for the end of a pipe held by the test process
and then stops the server and deletes the folder. The pipe ends when the fixture
finishes, when the tests are interrupted, and when the test process is killed outright.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INSTALL = "sudo apt-get install -y postgresql"
SETTINGS = {
    "listen_addresses": "''",
    "port": "5432",  # names the socket file only
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}

_WATCHDOG = r"""
import os, shutil, signal, subprocess, sys

for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(sig, signal.SIG_IGN)
pg_ctl, data, folder, uid, gid = sys.argv[1:]
sys.stdin.buffer.read()  # returns when the test process closes the pipe or dies
ids = {} if uid == "-" else {"user": int(uid), "group": int(gid), "extra_groups": []}
if os.path.exists(os.path.join(data, "postmaster.pid")):
    subprocess.run([pg_ctl, "-D", data, "-m", "fast", "-w", "stop"], cwd=folder,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, **ids)
shutil.rmtree(folder, ignore_errors=True)
"""


class ClusterError(RuntimeError):
    """The throwaway cluster cannot be made: no server binaries, or initdb/pg_ctl failed."""


@dataclass(frozen=True)
class Cluster:
    folder: Path  # the socket directory; the data directory is folder / "data"
    bindir: Path

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``postgres`` database as superuser ``postgres``, over the socket."""
        return f"postgresql+psycopg://postgres@/postgres?host={self.folder}"


def find_bindir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: ``pg_config --bindir``, Debian's newest, or the PATH."""
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(out.stdout.strip()))
    debian = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()]
    candidates += sorted(debian, key=lambda p: int(p.parent.name), reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def server_user() -> tuple[int, int] | None:
    """(uid, gid) to run the server as when this process is root (PostgreSQL refuses root), else None."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    raise ClusterError("running as root and no `postgres` or `nobody` user to run PostgreSQL as; create one")


@contextmanager
def running(settings: dict[str, str] | None = None) -> Iterator[Cluster]:
    """A started cluster, stopped and removed on exit (and by its watchdog if this process dies).

    ``settings`` adds to or overrides :data:`SETTINGS` (``benchmarks/readings.py`` gives the
    server more memory for its bulk loads).
    """
    bindir = find_bindir()
    if bindir is None:
        raise ClusterError(
            "the PostgreSQL tests need the server's initdb and pg_ctl (looked in `pg_config --bindir`, "
            f"/usr/lib/postgresql/*/bin and the PATH); install them with `{INSTALL}` (make test does), "
            "or set TWIN_TEST_POSTGRES_URL to a server where the tests may create databases"
        )
    ids = server_user()
    folder = Path(tempfile.mkdtemp(prefix="twin-pg-"))
    data = folder / "data"
    as_user: dict[str, Any] = {} if ids is None else {"user": ids[0], "group": ids[1], "extra_groups": []}
    watchdog = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(bindir / "pg_ctl"), str(data), str(folder)]
        + (["-", "-"] if ids is None else [str(ids[0]), str(ids[1])]),
        stdin=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        if ids is not None:
            os.chown(folder, *ids)

        def run(*args: str) -> None:
            done = subprocess.run(args, cwd=folder, capture_output=True, text=True, check=False, **as_user)
            if done.returncode != 0:
                log = folder / "server.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise ClusterError(f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr.strip()} {tail}")

        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "-N")
        conf = {**SETTINGS, **(settings or {}), "unix_socket_directories": f"'{folder}'"}
        with open(data / "postgresql.conf", "a", encoding="utf-8") as fh:
            fh.write("".join(f"{key} = {value}\n" for key, value in conf.items()))
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w", "start")
        yield Cluster(folder, bindir)
    finally:
        assert watchdog.stdin is not None
        watchdog.stdin.close()  # the watchdog stops the server and removes the folder
        watchdog.wait()
