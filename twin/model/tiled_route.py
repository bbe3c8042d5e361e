"""The tiled build's routing: fill, D8, upstream cells, rivers and sub-basins, tile by tile.

:func:`route_tiled` gives the same grids as the in-memory build (:func:`twin.model.terrain.condition`
then :meth:`twin.model.drainage.Drainage.route`) for any tile size, bit for bit, while no task holds
more than one tile and its frame. Each pass maps a function over the tiles (on a runner: this
process, or workers of a Dask cluster, :mod:`twin.model.cluster`) and keeps the tiles in a
:class:`~twin.model.tilestore.TileStore`; between passes a small global problem over the tiles'
edges is solved here:

1. **Fill** (Barnes 2016; :mod:`twin.model.tiled`): a summary of each tile, the water level of
   each of its labels from the graph of their spills, then each tile filled.
2. **Flats**: the cost distance of flat cells to their way out (:func:`twin.model.blocks.flat_distance`)
   computed in each tile from its own drains and the distances on its neighbours' edges, in rounds
   until no edge changes (a flat crossing ``k`` tiles settles in at most ``k + 1`` rounds; only
   tiles whose frame changed run again). Then D8 (:func:`twin.model.blocks.d8_block`).
3. **Upstream cells** (Barnes 2017, "Parallel non-divergent flow accumulation for trillion cell
   digital elevation models on desktops or clusters"): each tile counts its own cells and notes
   where the flow from its edge leaves it and where flow entering it goes; the graph of these
   edge cells is swept once, downstream; each tile counts again with what flows in.
4. **Rivers**: each tile cuts its river cells into pieces of reaches; the pieces are joined into
   reaches, numbered as :func:`twin.model.kernels.canonical_reach_ids` does, Strahler orders are
   swept over the reach graph, and sub-basins over the graph of edge cells; each tile paints them.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numba as nb
import numpy as np
import rasterio

from twin.model import blocks, kernels
from twin.model.cluster import SerialRunner, TileRunner
from twin.model.drainage import Drainage
from twin.model.kernels import D8_NODATA
from twin.model.loaders import Grid
from twin.model.terrain import Terrain
from twin.model.tiled import (
    TileError,
    TileSummary,
    check_tile_size,
    flood_tile,
    raise_flood,
    solve_levels,
    summarise_flood,
)
from twin.model.tilestore import TileStore, Tiling

log = logging.getLogger(__name__)

GRIDS = ("filled", "d8", "upstream_cells", "strahler", "reach", "subbasin")


class BlockSource(Protocol):
    """What the tiled build reads a DEM through: its shape and one tile at a time with a one-cell frame."""

    @property
    def shape(self) -> tuple[int, int]: ...

    def read_block(self, window: tuple[slice, slice]) -> np.ndarray: ...


@dataclass(frozen=True)
class ArraySource:
    """A DEM already in memory, read tile by tile (tests, and DEMs loaded whole)."""

    values: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape  # type: ignore[return-value]

    def read_block(self, window: tuple[slice, slice]) -> np.ndarray:
        from twin.model.tiled import read_block

        return read_block(self.values, window)


# ---------------------------------------------------------------------------
# Tasks: one tile each, module-level so that they can be sent to workers
# ---------------------------------------------------------------------------
#: GDAL's block cache in a worker, MB: a tile is read once, so the default (5 % of the machine's
#: memory) would only grow each worker with the share of the basin it has read.
WORKER_GDAL_CACHE_MB = 64


def _fill_summary(t: int, *, tiling: Tiling, source: BlockSource, store: TileStore) -> TileSummary:
    with rasterio.Env(GDAL_CACHEMAX=WORKER_GDAL_CACHE_MB):
        block = source.read_block(tiling.window(t))
    store.write("dem", t, block[1:-1, 1:-1])
    level, label, nlabels = flood_tile(block)
    store.write("level", t, level)  # kept for the second pass, which then need not flood again
    store.write("label", t, label)
    return summarise_flood(level, label, nlabels)


def _fill_write(item: tuple[int, np.ndarray], *, store: TileStore) -> None:
    t, water = item
    store.write("filled", t, raise_flood(store.read("level", t), store.read("label", t), water))


def _edges(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return values[0].copy(), values[-1].copy(), values[:, 0].copy(), values[:, -1].copy()


def _flat_first(item: tuple[int, np.ndarray], *, store: TileStore) -> tuple[np.ndarray, ...]:
    t, frame = item
    dist = blocks.flat_distance(store.block("filled", t, np.nan), store.block("dem", t, np.nan), frame)
    store.write("flat_distance", t, dist)
    return _edges(dist)


def _flat_update(item: tuple[int, np.ndarray], *, store: TileStore) -> tuple[np.ndarray, ...]:
    t, frame = item
    dist = np.array(store.read("flat_distance", t))
    dist = blocks.update_flat_distance(store.block("filled", t, np.nan), store.block("dem", t, np.nan), frame, dist)
    store.write("flat_distance", t, dist)
    return _edges(dist)


def _d8_write(item: tuple[int, np.ndarray], *, store: TileStore) -> None:
    t, frame = item
    filled = store.block("filled", t, np.nan)
    dem = store.block("dem", t, np.nan)
    store.write("d8", t, blocks.d8_block(filled, dem, np.asarray(store.read("flat_distance", t)), frame))


@dataclass(frozen=True)
class _FlowSummary:
    exits: np.ndarray  # flat cells whose flow leaves the tile
    targets: np.ndarray  # the cells they drain to
    local_acc: np.ndarray  # their upstream cells counted within the tile
    entries: np.ndarray  # flat cells receiving flow from outside the tile
    entry_exit: np.ndarray  # the exit each entry's flow reaches (-1: an outlet inside)


def _flow_summary(t: int, *, tiling: Tiling, store: TileStore) -> _FlowSummary:
    d8 = store.block("d8", t, D8_NODATA)
    order = blocks.local_order(d8)
    store.write("order", t, order.astype(np.int32))  # kept for the later passes over this tile
    h, w = d8.shape[0] - 2, d8.shape[1] - 2
    acc = blocks.accumulate_block(d8, order, np.zeros((h, w), dtype=np.int64))
    exit_of, leaving, tr, tc = blocks.exits_block(d8, order)
    cells = np.unique(blocks.entries_block(d8))
    reach = exit_of.ravel()[cells]
    return _FlowSummary(
        exits=tiling.to_global(t, leaving),
        targets=tiling.block_to_global(t, tr, tc),
        local_acc=acc.ravel()[leaving],
        entries=tiling.to_global(t, cells),
        entry_exit=np.where(reach >= 0, tiling.to_global(t, np.maximum(reach, 0)), -1),
    )


def _acc_write(item: tuple[int, np.ndarray, np.ndarray], *, tiling: Tiling, store: TileStore) -> None:
    t, cells, values = item
    d8 = store.block("d8", t, D8_NODATA)
    h, w = d8.shape[0] - 2, d8.shape[1] - 2
    inflow = np.zeros(h * w, dtype=np.int64)
    np.add.at(inflow, tiling.local(t, cells), values)
    acc = blocks.accumulate_block(d8, _order(store, t), inflow.reshape(h, w))
    if acc.size and acc.max() > np.iinfo(np.int32).max:
        raise TileError(f"tile {t}: more than 2**31 upstream cells; the twin stores upstream cells as int32")
    store.write("upstream_cells", t, acc.astype(np.int32))


@dataclass(frozen=True)
class _RiverSummary:
    first: np.ndarray  # flat cell where each piece starts
    n_in: np.ndarray  # its river donors
    first_acc: np.ndarray  # its upstream cells
    down: np.ndarray  # flat cell below the piece's last cell, -1 at an outlet
    exits: np.ndarray  # flat cells whose flow leaves the tile, and their targets
    targets: np.ndarray
    entries: np.ndarray  # flat cells receiving flow from outside the tile
    entry_piece: np.ndarray  # the piece (of this tile) each entry's flow meets first, or -1
    entry_exit: np.ndarray  # else the exit it leaves by (flat cell), or -1: an outlet


def _order(store: TileStore, t: int) -> np.ndarray:
    return np.asarray(store.read("order", t), dtype=np.int64)


def _river_summary(t: int, *, tiling: Tiling, store: TileStore, threshold: int) -> _RiverSummary:
    d8 = store.block("d8", t, D8_NODATA)
    acc = store.block("upstream_cells", t, 0).astype(np.int64)
    order = _order(store, t)
    piece_of, first, n_in, down_r, down_c, _ = blocks.river_pieces(d8, acc, order, threshold)
    meets = blocks.first_river(d8, order, piece_of)
    store.write("piece", t, piece_of)  # for the second pass
    store.write("meets", t, meets)
    meets = meets.ravel()
    _, leaving, tr, tc = blocks.exits_block(d8, order)
    cells = np.unique(blocks.entries_block(d8))
    code = meets[cells]
    out = np.where(code <= -2, -2 - code, 0)
    return _RiverSummary(
        first=tiling.to_global(t, first),
        n_in=n_in,
        first_acc=acc[1:-1, 1:-1].ravel()[first],
        down=np.where(down_r >= 0, tiling.block_to_global(t, down_r, down_c), -1),
        exits=tiling.to_global(t, leaving),
        targets=tiling.block_to_global(t, tr, tc),
        entries=tiling.to_global(t, cells),
        entry_piece=np.where(code >= 0, code, -1),
        entry_exit=np.where(code <= -2, tiling.to_global(t, out), -1),
    )


def _paint(
    item: tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    *,
    tiling: Tiling,
    store: TileStore,
) -> None:
    t, piece_reach, piece_strahler, exit_cells, exit_sub = item
    piece_of = np.asarray(store.read("piece", t))
    meets = np.asarray(store.read("meets", t))
    on = piece_of >= 0
    reach = np.zeros(piece_of.shape, dtype=np.int32)
    strahler = np.zeros(piece_of.shape, dtype=np.uint8)
    reach[on] = piece_reach[piece_of[on]]
    strahler[on] = piece_strahler[piece_of[on]]
    sub = np.zeros(piece_of.shape, dtype=np.int32)
    hit = meets >= 0
    sub[hit] = piece_reach[meets[hit]]
    leaves = meets <= -2
    if leaves.any():
        lut = dict(zip(tiling.local(t, exit_cells).tolist(), exit_sub.tolist()))
        sub[leaves] = [lut[int(-2 - m)] for m in meets[leaves]]
    store.write("reach", t, reach)
    store.write("strahler", t, strahler)
    store.write("subbasin", t, sub)


# ---------------------------------------------------------------------------
# Global solves, on the tiles' edges
# ---------------------------------------------------------------------------
def _frames(tiling: Tiling, edges: list[tuple[np.ndarray, ...]]) -> list[np.ndarray]:
    """Each tile's frame vector (:func:`twin.model.blocks.frame_index`) from its neighbours' edges."""
    out = []
    for t in range(len(tiling)):
        rows, cols = tiling.window(t)
        h, w = rows.stop - rows.start, cols.stop - cols.start
        f = np.full(blocks.frame_length(h, w), blocks.UNREACHED, dtype=np.int64)
        i, j = divmod(t, tiling.cols)

        def edge(di: int, dj: int, side: int, i: int = i, j: int = j) -> np.ndarray | None:
            n = tiling.tile_at(i + di, j + dj)
            return None if n is None else edges[n][side]

        top, bottom, left, right = 0, 1, 2, 3
        if (e := edge(-1, 0, bottom)) is not None:
            f[1 : w + 1] = e
        if (e := edge(-1, -1, bottom)) is not None:
            f[0] = e[-1]
        if (e := edge(-1, 1, bottom)) is not None:
            f[w + 1] = e[0]
        base = w + 2
        if (e := edge(1, 0, top)) is not None:
            f[base + 1 : base + w + 1] = e
        if (e := edge(1, -1, top)) is not None:
            f[base] = e[-1]
        if (e := edge(1, 1, top)) is not None:
            f[base + w + 1] = e[0]
        base = 2 * (w + 2)
        if (e := edge(0, -1, right)) is not None:
            f[base : base + h] = e
        if (e := edge(0, 1, left)) is not None:
            f[base + h : base + 2 * h] = e
        out.append(f)
    return out


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray, missing: int = -1) -> np.ndarray:
    """``values`` of ``query`` in ``keys`` (unsorted, unique), ``missing`` where absent."""
    if keys.size == 0:
        return np.full(query.shape, missing, dtype=np.int64)
    srt = np.argsort(keys, kind="stable")
    sk = keys[srt]
    pos = np.minimum(np.searchsorted(sk, query), sk.size - 1)
    return np.where(sk[pos] == query, values[srt][pos], missing)


@nb.njit(cache=True)
def _sweep_sum(local: np.ndarray, down: np.ndarray) -> np.ndarray:
    """Totals on a forest of nodes: ``total[n] = local[n] + Σ total[m]`` over nodes ``m`` with ``down[m] == n``."""
    n = local.shape[0]
    indeg = np.zeros(n, dtype=np.int64)
    for m in range(n):
        if down[m] >= 0:
            indeg[down[m]] += 1
    total = local.copy()
    queue = np.empty(n, dtype=np.int64)
    tail = 0
    for m in range(n):
        if indeg[m] == 0:
            queue[tail] = m
            tail += 1
    head = 0
    while head < tail:
        m = queue[head]
        head += 1
        d = down[m]
        if d >= 0:
            total[d] += total[m]
            indeg[d] -= 1
            if indeg[d] == 0:
                queue[tail] = d
                tail += 1
    return total


def _resolve(value: np.ndarray, pointer: np.ndarray) -> np.ndarray:
    """Follow ``pointer`` (node index, -1 at the end) to the node whose ``value`` is known (pointer -1)."""
    ptr = pointer.copy()
    val = value.copy()
    while (ptr >= 0).any():
        on = ptr >= 0
        val[on] = val[ptr[on]]
        ptr[on] = ptr[ptr[on]]
    return val


@nb.njit(cache=True)
def _strahler(down: np.ndarray) -> np.ndarray:
    """Strahler order of reaches numbered upstream-first (index 0 unused), ``down`` the reach below (0: none)."""
    n = down.shape[0]
    order = np.zeros(n, dtype=np.uint8)
    max_in = np.zeros(n, dtype=np.uint8)
    cnt = np.zeros(n, dtype=np.int64)
    for r in range(1, n):
        m = max_in[r]
        o = 1 if m == 0 else (m + 1 if cnt[r] >= 2 else m)
        order[r] = o
        d = down[r]
        if d > 0:
            if o > max_in[d]:
                max_in[d] = o
                cnt[d] = 1
            elif o == max_in[d]:
                cnt[d] += 1
    return order


@dataclass(frozen=True)
class TiledRoute:
    """The grids of a tiled routing, in ``store`` (grids :data:`GRIDS`, and ``dem``)."""

    store: TileStore
    threshold_cells: int
    flat_rounds: int

    def stitch(self, grid: Grid) -> tuple[Terrain, Drainage]:
        """The terrain and drainage of the twin, their grids memory-mapped from files in the store's folder.

        Each grid is written whole once (``<store>/grids/<name>.npy``) and mapped read-only, so a
        later step pages in only what it reads; only the cell order (4 bytes a cell) is in memory.
        """
        folder = Path(self.store.root) / "grids"
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for name in ("dem", *GRIDS):
            path = folder / f"{name}.npy"
            out = np.lib.format.open_memmap(path, mode="w+", dtype=self.store.read(name, 0).dtype, shape=grid.shape)
            self.store.assemble(name, out)
            out.flush()
            del out
            arrays[name] = np.load(path, mmap_mode="r")
        terrain = Terrain(grid, arrays["dem"], arrays["filled"])
        order = kernels.topological_order(np.asarray(arrays["d8"]).ravel(), grid.shape[1])
        drainage = Drainage(
            grid,
            arrays["d8"],
            order,
            arrays["upstream_cells"],
            arrays["strahler"],
            arrays["reach"],
            arrays["subbasin"],
            self.threshold_cells,
        )
        return terrain, drainage

    def grid(self, name: str, out: np.ndarray | None = None) -> np.ndarray:
        """One grid stitched whole, into ``out`` if given (e.g. a memory map)."""
        first = self.store.read(name, 0)
        if out is None:
            out = np.empty(self.store.tiling.shape, dtype=first.dtype)
        return self.store.assemble(name, out)


def route_tiled(
    source: BlockSource | np.ndarray,
    tile_size: int,
    threshold_cells: int,
    *,
    workdir: str | Path | None = None,
    runner: TileRunner | None = None,
) -> TiledRoute:
    """Fill, route and derive rivers tile by tile; see the module's docstring.

    Parameters
    ----------
    source:
        The DEM (float32, NaN nodata), as a :class:`BlockSource` or an array.
    tile_size:
        Rows and columns per tile, at least :data:`~twin.model.tiled.MIN_TILE_SIZE`.
    threshold_cells:
        Upstream cells from which a cell is a river cell.
    workdir:
        Folder for the tiles (every worker must see it); a temporary one if None.
    runner:
        Runs each pass's tasks (``map(fn, items, what=..., **common)``); this process if None.

    Raises
    ------
    TileError
        The tile size is below the minimum or not an integer.
    """
    check_tile_size(tile_size)
    src: BlockSource = ArraySource(np.asarray(source, dtype=np.float32)) if isinstance(source, np.ndarray) else source
    tiling = Tiling(tuple(src.shape), int(tile_size))  # type: ignore[arg-type]
    folder = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="twin-tiles-"))
    store = TileStore(str(folder), tiling)
    run = runner or SerialRunner()
    tiles = list(range(len(tiling)))

    # 1. fill
    summaries = run.map(_fill_summary, tiles, what="fill, first pass", tiling=tiling, source=src, store=store)
    water = solve_levels(summaries, tiling.cols)
    del summaries
    run.map(_fill_write, list(zip(tiles, water)), what="fill, second pass", store=store)
    store.drop("level", "label")  # here, not in the tasks: a task run twice must find its inputs

    # 2. flats, then D8
    frames = _frames(tiling, [_inf_edges(tiling, t) for t in tiles])
    edges = run.map(_flat_first, list(zip(tiles, frames)), what="flats, round 1", store=store)
    rounds = 1
    while True:
        new = _frames(tiling, edges)
        changed = [t for t in tiles if not np.array_equal(new[t], frames[t])]
        frames = new
        if not changed:
            break
        rounds += 1
        for t, e in zip(
            changed,
            run.map(_flat_update, [(t, frames[t]) for t in changed], what=f"flats, round {rounds}", store=store),
        ):
            edges[t] = e
    run.map(_d8_write, list(zip(tiles, frames)), what="D8", store=store)
    store.drop("flat_distance")
    log.info("tiled routing: %d tiles of %d cells, flats settled in %d rounds", len(tiling), tile_size, rounds)

    # 3. upstream cells
    flows = run.map(_flow_summary, tiles, what="upstream cells, first pass", tiling=tiling, store=store)
    exits = np.concatenate([f.exits for f in flows])
    targets = np.concatenate([f.targets for f in flows])
    local = np.concatenate([f.local_acc for f in flows])
    entries = np.concatenate([f.entries for f in flows])
    entry_exit = np.concatenate([f.entry_exit for f in flows])
    del flows
    reached = _lookup(entries, entry_exit, targets)  # the exit each exit's flow reaches next
    down = _lookup(exits, np.arange(exits.size), reached) if exits.size else exits
    total = _sweep_sum(local.astype(np.int64), down.astype(np.int64))
    by_tile = tiling.tiles_of(targets)
    run.map(
        _acc_write,
        [(t, targets[by_tile == t], total[by_tile == t]) for t in tiles],
        what="upstream cells, second pass",
        tiling=tiling,
        store=store,
    )

    # 4. rivers and sub-basins
    rivers = run.map(
        _river_summary, tiles, what="rivers, first pass", tiling=tiling, store=store, threshold=threshold_cells
    )
    offsets = np.cumsum([0] + [r.first.size for r in rivers])
    first = np.concatenate([r.first for r in rivers])
    n_in = np.concatenate([r.n_in for r in rivers])
    first_acc = np.concatenate([r.first_acc for r in rivers])
    pdown = np.concatenate([r.down for r in rivers])
    npiece = first.size
    nxt = _lookup(first, np.arange(npiece), pdown)  # the piece below each piece (-1 at an outlet)
    start = n_in != 1
    pred = np.full(npiece, -1, dtype=np.int64)
    cont = (nxt >= 0) & ~start[np.maximum(nxt, 0)]
    pred[nxt[cont]] = np.flatnonzero(cont)
    root = _resolve(np.arange(npiece), np.where(start, -1, pred))
    roots = np.flatnonzero(start)
    rank = np.lexsort((first[roots], first_acc[roots]))
    reach_of_root = np.zeros(npiece, dtype=np.int32)
    reach_of_root[roots[rank]] = np.arange(1, roots.size + 1, dtype=np.int32)
    piece_reach = reach_of_root[root]
    ends = (nxt >= 0) & start[np.maximum(nxt, 0)]
    reach_down = np.zeros(roots.size + 1, dtype=np.int64)
    reach_down[piece_reach[ends]] = piece_reach[nxt[ends]]
    piece_strahler = _strahler(reach_down)[piece_reach]

    rex = np.concatenate([r.exits for r in rivers])
    rtg = np.concatenate([r.targets for r in rivers])
    ren = np.concatenate([r.entries for r in rivers])
    epiece = np.concatenate(
        [np.where(r.entry_piece >= 0, r.entry_piece + offsets[k], -1) for k, r in enumerate(rivers)]
    )
    eexit = np.concatenate([r.entry_exit for r in rivers])
    del rivers
    # each exit's sub-basin: the reach its target's flow meets first, or that of the next exit
    tgt_piece = _lookup(ren, epiece, rtg)
    tgt_exit = _lookup(ren, eexit, rtg)
    value = np.append(piece_reach, 0)[tgt_piece].astype(np.int64)  # -1: no piece, reach 0
    pointer = np.where(tgt_piece >= 0, -1, _lookup(rex, np.arange(rex.size), tgt_exit))
    exit_sub = _resolve(value, pointer)
    ex_tile = tiling.tiles_of(rex)
    run.map(
        _paint,
        [
            (
                t,
                piece_reach[offsets[t] : offsets[t + 1]],
                piece_strahler[offsets[t] : offsets[t + 1]],
                rex[ex_tile == t],
                exit_sub[ex_tile == t],
            )
            for t in tiles
        ],
        what="rivers, second pass",
        tiling=tiling,
        store=store,
    )
    store.drop("order", "piece", "meets")
    return TiledRoute(store, int(threshold_cells), rounds)


def _inf_edges(tiling: Tiling, t: int) -> tuple[np.ndarray, ...]:
    rows, cols = tiling.window(t)
    h, w = rows.stop - rows.start, cols.stop - cols.start
    u = blocks.UNREACHED
    return (np.full(w, u), np.full(w, u), np.full(h, u), np.full(h, u))
