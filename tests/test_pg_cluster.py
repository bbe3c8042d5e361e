"""The throwaway PostgreSQL cluster of the tests (tests/pg_cluster.py): it serves, and it leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from . import pg_cluster

ROOT = Path(__file__).resolve().parent.parent
#: a test process that starts a cluster, says where, and waits to be stopped
HOLDER = """
import sys
import sqlalchemy as sa
from tests import pg_cluster

with pg_cluster.running() as cluster:
    with sa.create_engine(cluster.url).connect() as conn:
        assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1
    pid = (cluster.folder / "data" / "postmaster.pid").read_text().split()[0]
    print(cluster.folder, pid, flush=True)
    sys.stdin.read()
"""


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    return fields[0] != "Z"


def test_the_cluster_serves_on_a_socket_in_its_folder_and_is_removed_after():
    with pg_cluster.running() as cluster:
        engine = sa.create_engine(cluster.url)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW listen_addresses").scalar_one() == ""  # no TCP port
            assert conn.exec_driver_sql("SHOW unix_socket_directories").scalar_one() == str(cluster.folder)
            assert conn.exec_driver_sql("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").scalar_one()
        engine.dispose()
        owner = cluster.folder.stat().st_uid
        assert owner != 0  # PostgreSQL refuses root: as root the server runs as postgres (or nobody)
        assert oct(cluster.folder.stat().st_mode & 0o777) == "0o700"  # nobody else reaches the socket
    assert not cluster.folder.exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["interrupted", "killed"])
def test_an_interrupted_or_killed_test_process_leaves_no_server_and_no_folder(sig):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER], cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout is not None
        folder, pid = holder.stdout.readline().split()
        assert Path(folder).is_dir() and alive(int(pid))
        holder.send_signal(sig)
        holder.wait()
    for _ in range(600):  # a guard against a hang, not a time limit: the watchdog's pg_ctl stop waits for the server
        if not Path(folder).exists() and not alive(int(pid)):
            break
        time.sleep(0.5)
    assert not alive(int(pid)), "the server outlived the test process"
    assert not Path(folder).exists(), "the cluster's folder outlived the test process"


def test_without_the_server_binaries_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setattr(pg_cluster, "find_bindir", lambda: None)
    with pytest.raises(pg_cluster.ClusterError, match="sudo apt-get install -y postgresql"), pg_cluster.running():
        pass
