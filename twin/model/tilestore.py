"""Where the tiled build keeps its grids between passes: one ``.npy`` file per tile and grid.

Each tile's array is a file of its own (``<root>/<grid>/<tile>.npy``), written to a temporary name
and renamed into place, so that workers never share a file, a retried task simply writes its
tile again, and a reader never sees half a tile. A block (a tile with its one-cell frame, see
:mod:`twin.model.blocks`) is read from the tile and the edges of its eight neighbours through
memory maps, so a worker touches only the pages it needs. Any folder every worker sees will do:
local disk for a LocalCluster, NFS or another shared file system for a cluster of machines.
Zarr would do the same with a chunk per tile; plain files cost no compression and no dependency.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Tiling:
    """A grid cut into square tiles of ``size`` cells, row by row (the last row and column may be smaller)."""

    shape: tuple[int, int]
    size: int

    @property
    def rows(self) -> int:
        """Rows of tiles."""
        return -(-self.shape[0] // self.size)

    @property
    def cols(self) -> int:
        """Columns of tiles."""
        return -(-self.shape[1] // self.size)

    def __len__(self) -> int:
        return self.rows * self.cols

    def window(self, t: int) -> tuple[slice, slice]:
        """Rows and columns of tile ``t``."""
        i, j = divmod(t, self.cols)
        r0, c0 = i * self.size, j * self.size
        return slice(r0, min(r0 + self.size, self.shape[0])), slice(c0, min(c0 + self.size, self.shape[1]))

    def tile_at(self, i: int, j: int) -> int | None:
        """Tile in row ``i`` and column ``j`` of tiles, None outside the grid."""
        if 0 <= i < self.rows and 0 <= j < self.cols:
            return i * self.cols + j
        return None

    def tiles_of(self, cells: np.ndarray) -> np.ndarray:
        """Tile of each flat cell index."""
        r, c = np.divmod(cells, self.shape[1])
        return (r // self.size) * self.cols + c // self.size

    def local(self, t: int, cells: np.ndarray) -> np.ndarray:
        """Flat cell indices of the grid as indices within tile ``t`` (row-major in the tile)."""
        rows, cols = self.window(t)
        r, c = np.divmod(cells, self.shape[1])
        return (r - rows.start) * (cols.stop - cols.start) + (c - cols.start)

    def to_global(self, t: int, local: np.ndarray) -> np.ndarray:
        """Indices within tile ``t`` as flat cell indices of the grid."""
        rows, cols = self.window(t)
        r, c = np.divmod(np.asarray(local, dtype=np.int64), cols.stop - cols.start)
        return (r + rows.start) * self.shape[1] + c + cols.start

    def block_to_global(self, t: int, br: np.ndarray, bc: np.ndarray) -> np.ndarray:
        """Block coordinates of tile ``t`` (its frame included) as flat cell indices of the grid."""
        rows, cols = self.window(t)
        return (np.asarray(br) - 1 + rows.start) * self.shape[1] + np.asarray(bc) - 1 + cols.start


@dataclass(frozen=True)
class TileStore:
    """Grids of a tiled build, tile by tile, in a folder every worker sees."""

    root: str
    tiling: Tiling

    def _path(self, grid: str, t: int) -> Path:
        return Path(self.root) / grid / f"{t:07d}.npy"

    def write(self, grid: str, t: int, values: np.ndarray) -> None:
        """Store tile ``t`` of ``grid`` (atomically: a reader sees the old file or the new one)."""
        path = self._path(grid, t)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(values))
        os.replace(tmp, path)

    def drop(self, *grids: str) -> None:
        """Delete every tile of these grids (intermediates no later pass reads)."""
        for grid in grids:
            shutil.rmtree(Path(self.root) / grid, ignore_errors=True)

    def read(self, grid: str, t: int) -> np.ndarray:
        """Tile ``t`` of ``grid`` (memory-mapped, read-only)."""
        return np.load(self._path(grid, t), mmap_mode="r")

    def block(self, grid: str, t: int, fill: float | int | np.generic) -> np.ndarray:
        """Tile ``t`` with a one-cell frame from its neighbours, ``fill`` beyond the grid."""
        tiling = self.tiling
        rows, cols = tiling.window(t)
        h, w = rows.stop - rows.start, cols.stop - cols.start
        inner = self.read(grid, t)
        out = np.full((h + 2, w + 2), fill, dtype=inner.dtype)
        out[1:-1, 1:-1] = inner
        i, j = divmod(t, tiling.cols)
        parts = {
            (-1, -1): (slice(0, 1), slice(0, 1), (slice(-1, None), slice(-1, None))),
            (-1, 0): (slice(0, 1), slice(1, -1), (slice(-1, None), slice(None))),
            (-1, 1): (slice(0, 1), slice(-1, None), (slice(-1, None), slice(0, 1))),
            (0, -1): (slice(1, -1), slice(0, 1), (slice(None), slice(-1, None))),
            (0, 1): (slice(1, -1), slice(-1, None), (slice(None), slice(0, 1))),
            (1, -1): (slice(-1, None), slice(0, 1), (slice(0, 1), slice(-1, None))),
            (1, 0): (slice(-1, None), slice(1, -1), (slice(0, 1), slice(None))),
            (1, 1): (slice(-1, None), slice(-1, None), (slice(0, 1), slice(0, 1))),
        }
        for (di, dj), (br, bc, src) in parts.items():
            n = tiling.tile_at(i + di, j + dj)
            if n is not None:
                out[br, bc] = self.read(grid, n)[src]
        return out

    def assemble(self, grid: str, out: np.ndarray) -> np.ndarray:
        """Copy every tile of ``grid`` into ``out`` (an array or a memory map of the grid's shape)."""
        for t in range(len(self.tiling)):
            out[self.tiling.window(t)] = self.read(grid, t)
        return out
