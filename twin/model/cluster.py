"""Where the tiled build's per-tile work runs: in this process, or on a dask.distributed cluster.

The tiled build (:mod:`twin.model.tiled`, DESIGN §3) is a sequence of phases. Each phase
maps a pure, picklable, module-level function over the tiles, and the client solves a
small global problem between phases. A :class:`TileRunner` is what does the mapping:

- :class:`SerialRunner` calls the function on each tile in turn, in this process (the
  default, and what most tests use);
- :class:`DaskRunner` sends the calls to the workers of a ``distributed.Client``, with
  retries, and gathers the results in the order of the tiles.

:func:`open_runner` makes one from the command line's choices: no cluster
(``workers=0``), a ``LocalCluster`` on this machine, or an existing scheduler by address.

Both runners behave the same to the caller: the results in the order of the items, the
same progress messages (``"<what>: k of n tiles done"``, at most about once a second and
once at the end), and a tile that fails becomes one :class:`ClusterError` naming the
phase, the tile and the error.

Which twin folders work with an existing cluster
------------------------------------------------
The tile functions open the sources (and write what they write) by path, so the sources,
the twin folder and any work folder of the build must be at a path that every worker
sees, under the same name:

- local disk, when every worker runs on this machine (a ``LocalCluster``, or ``dask
  worker`` processes started here);
- a shared file system mounted at the same path on every machine (NFS, Lustre, GPFS,
  CephFS, SMB...) for workers on other machines;
- fsspec URLs (``s3://``, ``gs://``...) are not supported yet: the loaders and the twin
  folder take local paths.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import socket
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from twin.errors import TwinError

if TYPE_CHECKING:
    from dask.distributed import Client, LocalCluster

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

#: Seconds to wait for a scheduler to answer before giving up on it.
CONNECT_TIMEOUT = 10.0
#: Seconds a map waits for a first worker to join a scheduler that has none.
WORKER_TIMEOUT = 60.0
#: Seconds between two progress messages of one phase (the last one always comes).
PROGRESS_INTERVAL = 1.0


class ClusterError(TwinError, RuntimeError):
    """The cluster cannot be reached, or a tile failed on it (after its retries)."""


class TileRunner(Protocol):
    """Maps a per-tile function over the tiles of one phase of the tiled build."""

    def map(self, fn: Callable[..., Any], items: Iterable[Any], /, *, what: str, **common: Any) -> list[Any]:
        """``[fn(item, **common) for item in items]``, wherever the runner runs it.

        Parameters
        ----------
        fn:
            A pure, module-level function (workers import it by name).
        items:
            One per tile: a window (a pair of row and column slices), a tuple that starts
            with one, an object with a ``window`` attribute, or anything else picklable.
        what:
            The phase, as the progress messages and errors name it (``"fill"``).
        **common:
            Keyword arguments shared by every call (a DEM source, an array): sent to the
            cluster once, not once per tile.

        Returns
        -------
        list
            The results, in the order of ``items``.

        Raises
        ------
        ClusterError
            A call failed (after its retries on a cluster); the message names the phase,
            the tile and the error, and the other calls are cancelled.
        """
        ...


class SerialRunner:
    """Runs every tile in this process, one after another.

    Parameters
    ----------
    progress:
        Called with ``"<what>: k of n tiles done"``, at most about once a second and once
        at the end of each map.

    Examples
    --------
    >>> SerialRunner().map(divmod, [7, 9], what="divide", b=4)
    [(1, 3), (2, 1)]
    """

    def __init__(self, progress: Progress | None = None) -> None:
        self._progress = progress

    def map(self, fn: Callable[..., Any], items: Iterable[Any], /, *, what: str, **common: Any) -> list[Any]:
        items = list(items)
        ticker = _Ticker(self._progress, what, len(items))
        out = []
        for i, item in enumerate(items):
            try:
                out.append(fn(item, **common))
            except Exception as err:
                raise ClusterError(_failure(what, i, item, err)) from err
            ticker.done(i + 1)
        return out


class DaskRunner:
    """Runs the tiles on the workers of a dask.distributed client.

    Parameters
    ----------
    client:
        A connected ``distributed.Client`` (of a ``LocalCluster`` or of any scheduler).
    progress:
        Called once with the dashboard's address, then with ``"<what>: k of n tiles
        done"``, at most about once a second and once at the end of each map.
    retries:
        How many times a call that raised is tried again (on any worker) before the map
        fails. A call on a worker that dies is moved to another worker without counting
        as a retry; dask gives up on a tile when the workers running it died
        ``distributed.scheduler.allowed-failures`` times (3 by default).
    worker_timeout:
        Seconds a map waits for a first worker if the scheduler has none.
    """

    def __init__(
        self,
        client: Client,
        progress: Progress | None = None,
        retries: int = 2,
        *,
        worker_timeout: float = WORKER_TIMEOUT,
    ) -> None:
        self._client = client
        self._progress = progress
        self._retries = retries
        self._worker_timeout = worker_timeout
        if progress is not None:
            progress(f"dask dashboard: {_dashboard(client)}")

    @property
    def client(self) -> Client:
        """The dask client the tiles are sent through."""
        return self._client

    def map(self, fn: Callable[..., Any], items: Iterable[Any], /, *, what: str, **common: Any) -> list[Any]:
        from dask.distributed import as_completed

        items = list(items)
        if not items:
            return []
        client = self._client
        address = client.scheduler.address if client.scheduler is not None else "?"
        try:
            client.wait_for_workers(1, timeout=self._worker_timeout)
        except TimeoutError:
            raise ClusterError(
                f"no dask worker joined the scheduler at {address} within {self._worker_timeout:g} s; "
                f"start some (dask worker {address})"
            ) from None
        # one copy of each shared argument per worker, not one per task; wrapped in a list so
        # that a list or dict is sent as one object, not item by item
        shared = {k: client.scatter([v], broadcast=True, hash=False)[0] for k, v in common.items()}
        prefix = f"{re.sub(r'[^0-9A-Za-z]+', '_', what)}-{uuid.uuid4().hex[:8]}"
        # fn and the shared arguments go through _call, so that an argument named like one of
        # client.map's own (workers, priority, key...) still reaches fn
        futures = client.map(
            _call, items, key=[f"{prefix}-{i}" for i in range(len(items))], retries=self._retries, fn=fn, common=shared
        )
        index = {f.key: i for i, f in enumerate(futures)}
        ticker = _Ticker(self._progress, what, len(items))
        out: list[Any] = [None] * len(items)
        pending = set(futures)
        try:
            for fut in as_completed(futures, loop=client.loop):
                i = index[fut.key]
                try:
                    out[i] = fut.result()
                except Exception as err:
                    raise ClusterError(_failure(what, i, items[i], err)) from err
                pending.discard(fut)
                fut.release()  # the result is here now; the worker may forget it
                ticker.done(len(items) - len(pending))
        finally:
            if pending:
                client.cancel(list(pending))
            del shared
        return out


def _call(item: Any, fn: Callable[..., Any], common: dict[str, Any]) -> Any:
    """One task on a worker (dask has replaced the futures in ``common`` by their values)."""
    return fn(item, **common)


@contextmanager
def open_runner(
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    timeout: float = CONNECT_TIMEOUT,
) -> Iterator[TileRunner]:
    """The runner the build's options ask for; its cluster is closed on leaving the block.

    Parameters
    ----------
    scheduler:
        Address of a running dask scheduler (``tcp://HOST:PORT``): its workers run the
        tiles. It is connected to at once, so that a wrong address fails before any work.
        The sources and the twin folder must be where every worker sees them (see the
        module's docstring).
    workers:
        Without ``scheduler``: the worker processes of a ``LocalCluster`` on this machine
        (default: one per core, ``os.cpu_count()``); 0 runs every tile in this process
        (:class:`SerialRunner`), with no cluster at all. Each worker has one thread:
        the per-tile kernels are numba loops that hold the GIL, so more threads in one
        process would only wait for each other, and one tile at a time per process keeps
        a worker's memory bounded by the tile size. The cluster is started by the first
        map, so a build that never tiles never starts one; its scratch folder is removed
        on leaving the block.
    progress:
        Gets the dashboard's address and the runner's progress messages.
    timeout:
        Seconds to wait for ``scheduler`` to answer.

    Raises
    ------
    ClusterError
        The scheduler did not answer within ``timeout``, or ``workers`` is given with it
        or is negative.
    """
    if scheduler is not None:
        if workers is not None:
            raise ClusterError(
                f"workers={workers} is for a local cluster; the scheduler at {scheduler} has its own workers: "
                f"give one or the other"
            )
        with _connect(scheduler, timeout) as client:
            yield DaskRunner(client, progress)
        return
    if workers is not None and workers < 0:
        raise ClusterError(f"workers={workers}: give 0 (no cluster, in this process) or a number of worker processes")
    if workers == 0:
        yield SerialRunner(progress)
        return
    runner = _LocalClusterRunner(workers or os.cpu_count() or 1, progress)
    try:
        yield runner
    finally:
        runner.close()


@contextmanager
def _connect(address: str, timeout: float) -> Iterator[Client]:
    from dask.distributed import Client

    def unreachable(reason: str) -> ClusterError:
        return ClusterError(
            f"cannot reach the dask scheduler at {address} ({reason}); "
            f"check the address and that `dask scheduler` runs there"
        )

    reason = _tcp_unreachable(address, timeout)
    if reason is not None:
        raise unreachable(reason)
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as err:
        raise unreachable(str(err).splitlines()[0] if str(err) else type(err).__name__) from None
    try:
        yield client
    finally:
        client.close()


def _tcp_unreachable(address: str, timeout: float) -> str | None:
    """Why a ``tcp://`` address cannot answer (refused, unknown host, silent), or None if it may.

    dask's client would retry a refused connection until its timeout, as for a scheduler that
    is still starting; a build given an address fails at once instead, saying why.
    """
    parts = urllib.parse.urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port or 8786  # dask's default port
    except ValueError:  # a port that is not a number
        return None  # dask's client says what is wrong with it
    if parts.scheme != "tcp" or not host:
        return None
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except ConnectionRefusedError:
        return "connection refused"
    except socket.gaierror:
        return f"unknown host {host!r}"
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except OSError as err:
        return err.strerror or type(err).__name__


class _LocalClusterRunner:
    """A DaskRunner on a LocalCluster started at the first map, closed by :meth:`close`."""

    def __init__(self, workers: int, progress: Progress | None) -> None:
        self._workers = workers
        self._progress = progress
        self._runner: DaskRunner | None = None
        self._cluster: LocalCluster | None = None
        self._scratch: str | None = None

    def map(self, fn: Callable[..., Any], items: Iterable[Any], /, *, what: str, **common: Any) -> list[Any]:
        if self._runner is None:
            self._runner = self._start()
        return self._runner.map(fn, items, what=what, **common)

    @property
    def client(self) -> Client:
        """The cluster's client (starting the cluster if no map has yet)."""
        if self._runner is None:
            self._runner = self._start()
        return self._runner.client

    def _start(self) -> DaskRunner:
        import dask
        from dask.distributed import Client, LocalCluster

        log.info("starting a local dask cluster of %d worker processes", self._workers)
        self._scratch = tempfile.mkdtemp(prefix="twin-dask-")
        # the scheduler's and the workers' scratch folders, all in one that close() removes
        try:
            with dask.config.set({"temporary-directory": self._scratch}):
                self._cluster = LocalCluster(
                    n_workers=self._workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",  # any free port: several builds may run at once
                    silence_logs=logging.ERROR,
                )
        except Exception as err:  # no free port, no memory, a worker that died at start...
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ClusterError(
                f"cannot start a local dask cluster of {self._workers} workers ({reason}); "
                f"try fewer (--workers) or none (--workers 0)"
            ) from err
        return DaskRunner(Client(self._cluster, set_as_default=False), self._progress)

    def close(self) -> None:
        if self._runner is not None:
            self._runner.client.close()
            self._runner = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None


class _Ticker:
    """Progress messages of one map: at most one per :data:`PROGRESS_INTERVAL`, and the last."""

    def __init__(self, progress: Progress | None, what: str, total: int) -> None:
        self._progress = progress
        self._what = what
        self._total = total
        self._last = time.monotonic()

    def done(self, k: int) -> None:
        if self._progress is None:
            return
        now = time.monotonic()
        if k == self._total or now - self._last >= PROGRESS_INTERVAL:
            self._last = now
            self._progress(f"{self._what}: {k} of {self._total} tiles done")


def _dashboard(client: Client) -> str:
    try:
        link = client.dashboard_link
    except (KeyError, AttributeError):  # a scheduler started without its HTTP server
        return "none (the scheduler serves no dashboard)"
    if link is None:
        return "none"
    if importlib.util.find_spec("bokeh") is None:  # dask serves the pages only with it
        return f"{link} (its pages need the bokeh package, not installed here)"
    return str(link)


def _failure(what: str, i: int, item: Any, err: BaseException) -> str:
    """One line: the phase, the tile (its index and window if it has one) and the error."""
    window = _window(item)
    where = f"tile {i}" if window is None else f"tile {i} ({window})"
    lines = str(err).strip().splitlines()
    reason = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
    return f"{what}: {where} failed: {reason}"


def _window(item: Any) -> str | None:
    """``"rows a:b, cols c:d"`` for an item that is, starts with or has a window; else None."""
    candidates = [getattr(item, "window", None), item, (getattr(item, "rows", None), getattr(item, "cols", None))]
    if _indexable(item):
        candidates.append(item[0])
    for candidate in candidates:
        if _is_window(candidate):
            rows, cols = candidate
            return f"rows {rows.start}:{rows.stop}, cols {cols.start}:{cols.stop}"
    return None


def _indexable(item: Any) -> bool:
    return isinstance(item, Sequence) and not isinstance(item, str) and len(item) > 0


def _is_window(x: Any) -> bool:
    return isinstance(x, tuple) and len(x) == 2 and all(isinstance(s, slice) for s in x)
