"""The twin a server serves: its manifest, the model opened once, and caches keyed by what they depend on.

One :class:`TwinState` per app. The manifest is read at once (a folder that is
not a twin fails at start-up, not at the first request); the model
(:class:`twin.BasinTwin`) is opened on first need, since tiles never need it.
Opening the twin takes a second; a request must not, so it is kept for the life
of the app and shared by the server's threads (the model is not mutated after
construction). A rebuilt twin (``twin.json`` changed on disk) is picked up by
the next request.

Derived values are memoised with the key of what they depend on: the manifest
hash for the model's features, the store's :meth:`TwinState.fingerprint` for
readings, warnings and incidents.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from twin.errors import TwinFolderError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from twin.access import Access
    from twin.basin import BasinTwin

log = logging.getLogger(__name__)

T = TypeVar("T")


class TwinState:
    """The served twin folder.

    Parameters
    ----------
    path:
        The twin folder (``twin build ... -o PATH``).

    Raises
    ------
    TwinFolderError
        ``path`` has no readable ``twin.json``.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path).absolute()
        self._lock = threading.RLock()
        self._basin: BasinTwin | None = None
        self._access: Access | None = None
        self._memo: dict[str, tuple[Any, Any]] = {}
        self._locks: dict[str, threading.RLock] = {}  # one per memo name
        self._stamp: tuple[int, int] | None = None
        self.manifest: dict[str, Any] = {}
        self.manifest_hash = ""
        self._read_manifest()

    # -- the folder ------------------------------------------------------------------------------
    def _read_manifest(self) -> None:
        mf = self.path / "twin.json"
        try:
            raw = mf.read_bytes()
            st = mf.stat()
        except OSError:
            raise TwinFolderError(
                f"'{self.path}' is not a twin folder (no twin.json); build one with `twin build CATALOG -o {self.path}`"
            ) from None
        try:
            manifest = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise TwinFolderError(f"'{mf}' is not valid JSON ({err}); rebuild the twin") from None
        self.manifest = manifest
        self.manifest_hash = hashlib.sha256(raw).hexdigest()
        self._stamp = (st.st_mtime_ns, st.st_size)

    def refresh(self) -> None:
        """Reload if ``twin.json`` changed on disk (a rebuild); cheap otherwise (one stat)."""
        try:
            st = (self.path / "twin.json").stat()
        except OSError:
            return  # a rebuild swapping folders: keep serving what we have
        if (st.st_mtime_ns, st.st_size) == self._stamp:
            return
        with self._lock:
            old = self.manifest_hash
            self._read_manifest()
            if self.manifest_hash != old:
                log.info("twin %s changed on disk; reloading", self.path)
                self._basin = None
                self._memo.clear()

    def raster(self, rel: str) -> Path:
        """The path of one of the twin's rasters (``rel`` from :data:`twin.model.folder.RASTERS`, never from a request)."""
        from twin.model.folder import RASTERS

        if rel not in RASTERS:
            raise KeyError(rel)
        return self.path / rel

    # -- the model and the store -----------------------------------------------------------------
    @property
    def basin(self) -> BasinTwin:
        """The twin, opened on first use."""
        basin = self._basin
        if basin is None:
            with self._lock:
                if self._basin is None:
                    from twin.basin import BasinTwin

                    log.info("opening twin %s", self.path)
                    self._basin = BasinTwin.open(self.path)
                basin = self._basin
        return basin

    @property
    def store(self) -> sa.Engine:
        """The operations store (opened and migrated with the twin, under the lock)."""
        return self.basin.store

    @property
    def access(self) -> Access:
        """Users, tokens, shares, hearings and the evidence ledger (:class:`twin.access.Access`), opened once.

        It has its own connection to the operations store, so checking who asks never
        waits for the model to open.
        """
        access = self._access
        if access is None:
            with self._lock:
                if self._access is None:
                    from twin.access import Access

                    self._access = Access.open(self.path)
                access = self._access
        return access

    def fingerprint(self) -> tuple[int, int]:
        """What the store holds, cheaply: (highest reading id, highest incident event id).

        Every ingest, correction, new incident and change of status raises one of them.
        """
        import sqlalchemy as sa

        from twin.ops.store import incident_events, readings

        with self.store.connect() as conn:
            r = conn.execute(sa.select(sa.func.max(readings.c.id))).scalar()
            e = conn.execute(sa.select(sa.func.max(incident_events.c.id))).scalar()
        return int(r or 0), int(e or 0)

    def memo(self, name: str, key: Any, compute: Callable[[], T]) -> T:
        """``compute()`` once per ``key`` (the last value of each name is kept).

        One computation of a name at a time; computing one name never holds up another
        (the features of the reaches, built in a second, do not stall the warnings).
        """
        hit = self._memo.get(name)
        if hit is not None and hit[0] == key:
            return hit[1]
        with self._lock:
            lock = self._locks.setdefault(name, threading.RLock())
        with lock:
            hit = self._memo.get(name)
            if hit is not None and hit[0] == key:
                return hit[1]
            value = compute()
            self._memo[name] = (key, value)
            return value
