"""Depression filling tile by tile: the first step of the tiled build (DESIGN §3).

:func:`fill_tiled` gives the same filled DEM as :func:`twin.model.kernels.flood`, bit
for bit, for any tile size, without ever flooding more than one tile at a time. It
follows Barnes (2016, "Parallel Priority-Flood depression filling for trillion cell
digital elevation models", Computers & Geosciences 96):

1. **Per tile** (:func:`summarise_tile`): a Priority-Flood of the tile alone, seeded from
   its true outlets (cells on the grid edge or beside nodata, as in ``kernels.flood``) and
   from every cell on the tile's edge, as if water could leave there. Every seed on the
   tile's edge starts a label of its own; all true outlets share label 1, the *ocean*; each
   cell takes the label of the cell that flooded it. What is kept is small: the provisional
   level and label of the tile's edge cells, and for each pair of touching labels the
   lowest *spill* between them (the higher of the two levels, over every pair of touching
   cells).
2. **Once** (:func:`solve_levels`): the labels of all tiles are the nodes of a graph whose
   edges are those spills and the spills between edge cells of neighbouring tiles. A
   Priority-Flood of the graph from the ocean gives each label its water level: the lowest
   elevation at which water standing on it can reach the ocean.
3. **Per tile** (:func:`fill_tile`): the tile is flooded again, the same way (the flood is
   deterministic, so the labels are the same), and each cell is raised to the higher of
   its provisional level and its label's water level.

Why it is exact. The filled elevation of a cell is the lowest, over paths to an outlet, of
the highest ground on the path. A provisional level can only be lower (the tile's edge is
a shortcut out), and a label's water level is a spill on some such path, so neither
exceeds the true level. Conversely, the cells of one label are joined by the flood's own
paths, never above their provisional levels, so the chain of spills that gave a label its
water level is a path to an outlet no higher than the larger of the two. Levels are
copied and compared, never computed, so the result is the same float32 values as
``kernels.flood``: every depression filled to exactly its spill level, with no gradient.

Each per-tile function is a pure function of one tile's array with a one-cell halo
(:func:`read_block`, NaN beyond the grid) and small arrays, so that each can run on a
separate worker later; only :func:`solve_levels` sees all tiles, and only their edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np
from numba import types
from numba.typed import Dict

from twin.errors import TwinError
from twin.model.kernels import DCOL, DROW, _heap_key, _heap_pop, _heap_push

MIN_TILE_SIZE = 16
OCEAN = 1  # the label every true outlet of a tile shares; 0 marks nodata


class TileError(TwinError, ValueError):
    """A tiling the tiled build does not accept (tile size too small, DEM not 2-D)."""


@dataclass(frozen=True)
class TileSummary:
    """What the global solve needs of one tile: its edge cells and the spills between its labels.

    Attributes
    ----------
    nlabels:
        Labels used by the tile, counting 0 (nodata) and 1 (the ocean).
    top, bottom, left, right:
        ``(level, label)`` of the tile's first and last row and first and last column:
        float32 provisional levels (NaN on nodata) and int32 labels.
    links:
        ``(a, b, spill)``: for each pair of touching labels ``a < b`` of the tile, the
        lowest spill between them (int32, int32, float32 arrays).
    """

    nlabels: int
    top: tuple[np.ndarray, np.ndarray]
    bottom: tuple[np.ndarray, np.ndarray]
    left: tuple[np.ndarray, np.ndarray]
    right: tuple[np.ndarray, np.ndarray]
    links: tuple[np.ndarray, np.ndarray, np.ndarray]


@nb.njit(cache=True)
def _flood_tile(block: np.ndarray):
    """Priority-Flood of ``block[1:-1, 1:-1]`` seeded from its outlets and its edge; returns (level, label, nlabels).

    The halo only tells which cells lie beside nodata (or beyond the grid, NaN too).
    Cells at or below the current level go to a plain queue, taken before the heap
    (Barnes, Lehman & Mulla 2014): the filled levels are the same, at less heap work.
    """
    h = block.shape[0] - 2
    w = block.shape[1] - 2
    n = h * w
    level = np.full(n, np.nan, dtype=np.float32)
    label = np.zeros(n, dtype=np.int32)
    visited = np.zeros(n, dtype=np.uint8)
    heap = np.empty(n, dtype=np.uint64)
    hsize = 0
    pit = np.empty(n, dtype=np.int32)
    phead = 0
    ptail = 0
    low32 = np.uint64(0xFFFFFFFF)
    nlabels = 2
    for r in range(h):
        for c in range(w):
            i = r * w + c
            z = block[r + 1, c + 1]
            if np.isnan(z):
                visited[i] = 1
                continue
            outlet = False
            for k in range(8):
                if np.isnan(block[r + 1 + DROW[k], c + 1 + DCOL[k]]):
                    outlet = True
                    break
            if outlet:
                label[i] = OCEAN
            elif r == 0 or c == 0 or r == h - 1 or c == w - 1:
                label[i] = nlabels
                nlabels += 1
            else:
                continue
            visited[i] = 1
            level[i] = z
            hsize = _heap_push(heap, hsize, _heap_key(z, i))
    while hsize > 0 or phead != ptail:
        if phead != ptail:
            i = np.int64(pit[phead])
            phead += 1
        else:
            top, hsize = _heap_pop(heap, hsize)
            i = np.int64(top & low32)
        z = level[i]
        lab = label[i]
        r = i // w
        c = i - r * w
        for k in range(8):
            rr = r + DROW[k]
            cc = c + DCOL[k]
            if rr < 0 or cc < 0 or rr >= h or cc >= w:
                continue
            j = rr * w + cc
            if visited[j]:
                continue
            visited[j] = 1
            label[j] = lab
            zj = block[rr + 1, cc + 1]
            if zj <= z:
                level[j] = z
                pit[ptail] = j
                ptail += 1
            else:
                level[j] = zj
                hsize = _heap_push(heap, hsize, _heap_key(zj, j))
    return level.reshape(h, w), label.reshape(h, w), nlabels


@nb.njit(cache=True)
def _spills(level: np.ndarray, label: np.ndarray, nlabels: int):
    """The lowest spill of each pair of touching labels of a tile: arrays (a, b, spill), a < b."""
    h, w = level.shape
    lowest = Dict.empty(key_type=types.int64, value_type=types.float32)
    for r in range(h):
        for c in range(w):
            la = label[r, c]
            if la == 0:
                continue
            for k in range(4):  # east, south-east, south, south-west: each pair once
                rr = r + DROW[k]
                cc = c + DCOL[k]
                if rr >= h or cc < 0 or cc >= w:
                    continue
                lb = label[rr, cc]
                if lb == 0 or lb == la:
                    continue
                s = max(level[r, c], level[rr, cc])
                key = np.int64(min(la, lb)) * nlabels + max(la, lb)
                if key not in lowest or s < lowest[key]:
                    lowest[key] = s
    m = len(lowest)
    a = np.empty(m, dtype=np.int32)
    b = np.empty(m, dtype=np.int32)
    spill = np.empty(m, dtype=np.float32)
    for t, (key, s) in enumerate(lowest.items()):
        a[t] = key // nlabels
        b[t] = key % nlabels
        spill[t] = s
    return a, b, spill


@nb.njit(cache=True)
def _flood_graph(indptr: np.ndarray, neighbour: np.ndarray, spill: np.ndarray) -> np.ndarray:
    """Water level of every node of the label graph (CSR), flooded from node 0, the ocean, at -inf."""
    n = indptr.shape[0] - 1
    level = np.full(n, np.inf, dtype=np.float32)
    done = np.zeros(n, dtype=np.uint8)
    heap = np.empty(neighbour.shape[0] + 1, dtype=np.uint64)  # one push per improvement, at most one per edge
    low32 = np.uint64(0xFFFFFFFF)
    level[0] = -np.inf
    hsize = _heap_push(heap, 0, _heap_key(level[0], 0))
    while hsize > 0:
        top, hsize = _heap_pop(heap, hsize)
        u = np.int64(top & low32)
        if done[u]:
            continue
        done[u] = 1
        for e in range(indptr[u], indptr[u + 1]):
            v = neighbour[e]
            if done[v]:
                continue
            s = max(level[u], spill[e])
            if s < level[v]:
                level[v] = s
                hsize = _heap_push(heap, hsize, _heap_key(s, v))
    return level


@nb.njit(cache=True)
def _raise(level: np.ndarray, label: np.ndarray, water: np.ndarray) -> np.ndarray:
    """Each cell at the higher of its provisional level and its label's water level (ocean cells as they are)."""
    out = level.copy()
    h, w = level.shape
    for r in range(h):
        for c in range(w):
            lab = label[r, c]
            if lab > OCEAN and water[lab] > out[r, c]:
                out[r, c] = water[lab]
    return out


def check_tile_size(tile_size: object) -> None:
    """Refuse a tile size that is not an integer of at least :data:`MIN_TILE_SIZE` (TileError, one line)."""
    if isinstance(tile_size, bool) or not isinstance(tile_size, int | np.integer):
        raise TileError(f"tile size {tile_size!r} is not an integer; give a number of cells, at least {MIN_TILE_SIZE}")
    if tile_size < MIN_TILE_SIZE:
        raise TileError(
            f"tile size {tile_size} is below the minimum of {MIN_TILE_SIZE} cells; give at least {MIN_TILE_SIZE} "
            f"(smaller tiles make most cells edge cells and the global graph as large as the grid)"
        )


def tile_windows(shape: tuple[int, int], tile_size: int) -> list[tuple[slice, slice]]:
    """The tiles of a grid, row by row, as ``(rows, cols)`` slices; the last row and column of tiles may be smaller."""
    nrow, ncol = shape
    return [
        (slice(r, min(r + tile_size, nrow)), slice(c, min(c + tile_size, ncol)))
        for r in range(0, nrow, tile_size)
        for c in range(0, ncol, tile_size)
    ]


def read_block(dem: np.ndarray, window: tuple[slice, slice]) -> np.ndarray:
    """One tile of ``dem`` with a one-cell halo, NaN beyond the grid (a boundless windowed read)."""
    rows, cols = window
    nrow, ncol = dem.shape
    r0, r1 = max(rows.start - 1, 0), min(rows.stop + 1, nrow)
    c0, c1 = max(cols.start - 1, 0), min(cols.stop + 1, ncol)
    block = np.full((rows.stop - rows.start + 2, cols.stop - cols.start + 2), np.nan, dtype=np.float32)
    block[r0 - rows.start + 1 : r1 - rows.start + 1, c0 - cols.start + 1 : c1 - cols.start + 1] = dem[r0:r1, c0:c1]
    return block


def flood_tile(block: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The tile's own Priority-Flood (with its halo): provisional levels, labels and the number of labels."""
    level, label, nlabels = _flood_tile(block)
    return level, label, int(nlabels)


def summarise_tile(block: np.ndarray) -> TileSummary:
    """First pass over one tile (with its halo, :func:`read_block`): its edge cells and the spills between its labels."""
    return summarise_flood(*flood_tile(block))


def summarise_flood(level: np.ndarray, label: np.ndarray, nlabels: int) -> TileSummary:
    """:func:`summarise_tile` of a tile already flooded (:func:`flood_tile`)."""
    return TileSummary(
        nlabels=int(nlabels),
        top=(level[0].copy(), label[0].copy()),
        bottom=(level[-1].copy(), label[-1].copy()),
        left=(level[:, 0].copy(), label[:, 0].copy()),
        right=(level[:, -1].copy(), label[:, -1].copy()),
        links=_spills(level, label, nlabels),
    )


def _global_ids(label: np.ndarray, base: int) -> np.ndarray:
    """Node ids in the global graph: the ocean is 0, label ``l >= 2`` of a tile is ``base + l - 2``, nodata -1.

    ``base`` is the node of the tile's label 2.
    """
    ids = np.where(label > OCEAN, base + label.astype(np.int64) - 2, 0)
    return np.where(label == 0, -1, ids)


def _touching(first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray]):
    """Edges between two parallel lines of cells where cell ``i`` of one touches cells ``i-1..i+1`` of the other."""
    (fa, ia), (fb, ib) = first, second
    m = ia.shape[0]
    us, vs, ss = [], [], []
    for d in (-1, 0, 1):
        a = slice(max(0, -d), m - max(0, d))
        b = slice(max(0, d), m - max(0, -d))
        us.append(ia[a])
        vs.append(ib[b])
        ss.append(np.maximum(fa[a], fb[b]))
    return np.concatenate(us), np.concatenate(vs), np.concatenate(ss)


def solve_levels(summaries: list[TileSummary], ntile_cols: int) -> list[np.ndarray]:
    """Global pass: the water level of every label of every tile, from the tiles' summaries.

    Parameters
    ----------
    summaries:
        One per tile, in the row-by-row order of :func:`tile_windows`.
    ntile_cols:
        Tiles per row of tiles.

    Returns
    -------
    list of numpy.ndarray
        Per tile, float32 water levels indexed by the tile's labels (``-inf`` for the ocean).
    """
    ntiles = len(summaries)
    ntile_rows = ntiles // ntile_cols
    bases = np.zeros(ntiles + 1, dtype=np.int64)
    bases[1:] = np.cumsum([s.nlabels - 2 for s in summaries])
    bases += 1  # node 0 is the ocean
    nnodes = int(bases[-1])
    if nnodes >= 2**32:  # the heap packs a node into 32 bits
        raise TileError(f"the tiling makes {nnodes} labels, more than 2**32; use larger tiles")

    def ids(t: int, side: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return side[0], _global_ids(side[1], int(bases[t]))

    us, vs, ss = [], [], []
    for t, s in enumerate(summaries):
        a, b, spill = s.links
        us.append(_global_ids(a, int(bases[t])))
        vs.append(_global_ids(b, int(bases[t])))
        ss.append(spill)
    for i in range(ntile_rows - 1):  # across the boundary below row of tiles i
        row = range(i * ntile_cols, (i + 1) * ntile_cols)
        above = [ids(t, summaries[t].bottom) for t in row]
        below = [ids(t + ntile_cols, summaries[t + ntile_cols].top) for t in row]
        u, v, s_ = _touching(_joined(above), _joined(below))
        us.append(u)
        vs.append(v)
        ss.append(s_)
    for j in range(ntile_cols - 1):  # across the boundary right of column of tiles j
        col = range(j, ntiles, ntile_cols)
        left = [ids(t, summaries[t].right) for t in col]
        right = [ids(t + 1, summaries[t + 1].left) for t in col]
        u, v, s_ = _touching(_joined(left), _joined(right))
        us.append(u)
        vs.append(v)
        ss.append(s_)
    u = np.concatenate(us)
    v = np.concatenate(vs)
    spill = np.concatenate(ss).astype(np.float32)
    keep = (u >= 0) & (v >= 0) & (u != v)
    u, v, spill = u[keep], v[keep], spill[keep]
    src = np.concatenate([u, v])
    dst = np.concatenate([v, u])
    spill = np.concatenate([spill, spill])
    by_src = np.argsort(src, kind="stable")
    indptr = np.zeros(nnodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=nnodes), out=indptr[1:])
    water = _flood_graph(indptr, dst[by_src], spill[by_src])
    out = []
    for t, s in enumerate(summaries):
        lv = np.full(s.nlabels, np.nan, dtype=np.float32)
        lv[OCEAN] = -np.inf
        lv[2:] = water[bases[t] : bases[t] + s.nlabels - 2]
        out.append(lv)
    return out


def _joined(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def fill_tile(block: np.ndarray, water: np.ndarray) -> np.ndarray:
    """Second pass over one tile (with its halo): its filled elevation, given its labels' water levels."""
    level, label, _ = _flood_tile(block)
    return _raise(level, label, water)


def raise_flood(level: np.ndarray, label: np.ndarray, water: np.ndarray) -> np.ndarray:
    """:func:`fill_tile` from the tile's first flood (:func:`flood_tile`) kept from the first pass."""
    return _raise(level, label, water)


def fill_tiled(dem: np.ndarray, tile_size: int) -> np.ndarray:
    """Fill every depression of a DEM to its spill level, tile by tile.

    Parameters
    ----------
    dem:
        2-D float32 elevation, NaN for nodata (other dtypes are cast to float32).
    tile_size:
        Rows and columns of a tile (the last tiles of a row or column may be smaller);
        at least :data:`MIN_TILE_SIZE`.

    Returns
    -------
    numpy.ndarray
        The filled elevation, float32, NaN on nodata: the same array as the ``filled``
        output of :func:`twin.model.kernels.flood`, for every tile size.

    Raises
    ------
    TileError
        If ``dem`` is not 2-D, or ``tile_size`` is not an integer or is below
        :data:`MIN_TILE_SIZE`: smaller tiles make most cells edge cells (a 16-cell tile
        has 60 of 256), so the global graph would no longer be small beside the grid.

    Examples
    --------
    >>> dem = np.full((40, 40), 10.0, dtype=np.float32)
    >>> dem[20, 20] = 0.0
    >>> float(fill_tiled(dem, 16)[20, 20])
    10.0
    """
    dem = np.asarray(dem)
    if dem.ndim != 2:
        raise TileError(f"the DEM has {dem.ndim} dimensions; the tiled fill takes a 2-D grid")
    check_tile_size(tile_size)
    return _fill(np.ascontiguousarray(dem, dtype=np.float32), int(tile_size))


def _fill(dem: np.ndarray, tile_size: int) -> np.ndarray:
    """:func:`fill_tiled` without the checks (the tests also run it on tiles of a few cells)."""
    out = np.empty_like(dem)
    if dem.size == 0:
        return out
    windows = tile_windows(dem.shape, tile_size)
    summaries = [summarise_tile(read_block(dem, w)) for w in windows]
    ntile_cols = -(-dem.shape[1] // tile_size)
    for w, water in zip(windows, solve_levels(summaries, ntile_cols)):
        out[w] = fill_tile(read_block(dem, w), water)
    return out
