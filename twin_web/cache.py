"""A cache of rendered tiles: least-recently-used in memory, optionally on disk.

Keys are tuples of validated parts (a layer name from the layer table and three
integers), never text from a request, so a disk path built from them stays
inside the cache folder. The disk cache sits under a folder named after the
twin's manifest hash: a rebuilt twin never serves an old tile.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

log = logging.getLogger(__name__)

TileKey = tuple[str, int, int, int]


class TileCache:
    """Rendered tiles by (layer, z, x, y).

    Parameters
    ----------
    max_bytes:
        Memory budget of the in-memory LRU (0: no memory cache).
    folder:
        If given, tiles are also written under ``folder/<layer>/<z>/<x>/<y>.png``
        and read back from there after a restart.
    """

    def __init__(self, max_bytes: int = 64 * 2**20, folder: Path | None = None):
        self.max_bytes = max_bytes
        self.folder = folder
        self._items: OrderedDict[TileKey, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def _path(self, key: TileKey) -> Path:
        assert self.folder is not None
        layer, z, x, y = key
        return self.folder / layer / str(int(z)) / str(int(x)) / f"{int(y)}.png"

    def get(self, key: TileKey) -> bytes | None:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return data
        if self.folder is not None:
            try:
                data = self._path(key).read_bytes()
            except OSError:
                data = None
            if data is not None:
                self._remember(key, data)
                with self._lock:
                    self.hits += 1
                return data
        with self._lock:
            self.misses += 1
        return None

    def put(self, key: TileKey, data: bytes) -> None:
        self._remember(key, data)
        if self.folder is not None:
            self._write(key, data)

    def _remember(self, key: TileKey, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._items[key] = data
            self._bytes += len(data)
            while self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped)

    def _write(self, key: TileKey, data: bytes) -> None:
        path = self._path(key)
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tile-", suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)  # atomic: a reader never sees half a tile
        except OSError as err:  # a full or read-only disk must not fail the request
            log.warning("cannot write tile cache %s: %s", path, err)
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)

    def __len__(self) -> int:
        return len(self._items)
