"""Routing kernels on one block: a tile of the grid with a one-cell halo around it.

Every kernel here sees one block, never the grid, so that the tiled build (:mod:`twin.model.tiled`)
can run them tile by tile on separate workers, and the in-memory build runs them on the whole grid
as a single block whose halo is nodata. A block is a ``(h + 2, w + 2)`` array; its *interior*
``[1:-1, 1:-1]`` is the tile, its frame the neighbouring tiles' edge cells (NaN, or the given fill
value, beyond the grid). Cells are numbered within the interior, ``r * w + c``.

The flat rule
-------------
A cell of the conditioned DEM with a strictly lower neighbour drains by steepest descent; one on
the grid edge or beside nodata with none is an outlet. Every other cell lies on a *flat*: a filled
depression or level ground, at one elevation with no way down. Such a cell drains to the
neighbour at its own level from which the way out is *quickest*: the flat's cost distance
(:func:`flat_distance`) to its *drains*, the cells at its level that do have a way down (or are
outlets), where stepping into a cell costs ``FLAT_SCALE × step length / (depth + FLAT_DEPTH_M)²``
rounded to an integer (at least 1), ``depth`` being the cell's conditioned minus measured
elevation. The mean speed of a thin sheet of water grows with the square of its depth, so water
crossing a filled depression follows its deepest ground, the real channel, and on level ground
(depth 0 everywhere) it takes the shortest way out. Ties go to the first neighbour in the order
E, SE, S, SW, W, NW, N, NE.

The rule depends on the conditioned and measured DEM only, not on the order cells are visited
in, and the costs are integers, so sums are exact in any order: the tiled build gets the same
distances, hence the same D8, for any tile size.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from twin.model.kernels import CODES, D8_NODATA, D8_OUTLET, DCOL, DIST, DROW, _code_to_k

FLAT_SCALE = 10_000.0
FLAT_DEPTH_M = 0.1
UNREACHED = np.iinfo(np.int64).max  # no known way out (yet) across a flat


@nb.njit(cache=True, inline="always")
def _step_cost(filled: float, dem: float, k: int) -> np.int64:
    """Integer cost of stepping into a cell of the flat (its conditioned and measured elevation) in direction k."""
    depth = np.float64(filled) - np.float64(dem)
    if depth < 0.0:
        depth = np.float64(0.0)
    w = FLAT_SCALE * DIST[k] / ((depth + FLAT_DEPTH_M) * (depth + FLAT_DEPTH_M))
    c = np.int64(w + 0.5)
    return c if c > 1 else np.int64(1)


@nb.njit(cache=True, inline="always")
def _heap_push(keys, vals, size, key, val):
    """Push onto a growable binary min-heap of (int64 key, int64 value); returns (keys, vals, size)."""
    if size == keys.shape[0]:
        nk = np.empty(2 * size + 16, dtype=np.int64)
        nv = np.empty(2 * size + 16, dtype=np.int64)
        nk[:size] = keys[:size]
        nv[:size] = vals[:size]
        keys, vals = nk, nv
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if keys[parent] < key or (keys[parent] == key and vals[parent] <= val):
            break
        keys[i] = keys[parent]
        vals[i] = vals[parent]
        i = parent
    keys[i] = key
    vals[i] = val
    return keys, vals, size + 1


@nb.njit(cache=True, inline="always")
def _heap_pop(keys, vals, size):
    """Pop the smallest (key, value); returns (key, value, size)."""
    tk = keys[0]
    tv = vals[0]
    size -= 1
    key = keys[size]
    val = vals[size]
    i = 0
    while True:
        a = 2 * i + 1
        if a >= size:
            break
        b = a + 1
        best = a
        if b < size and (keys[b] < keys[a] or (keys[b] == keys[a] and vals[b] < vals[a])):
            best = b
        if keys[best] > key or (keys[best] == key and vals[best] >= val):
            break
        keys[i] = keys[best]
        vals[i] = vals[best]
        i = best
    if size > 0:
        keys[i] = key
        vals[i] = val
    return tk, tv, size


@nb.njit(cache=True, inline="always")
def frame_index(br: int, bc: int, h: int, w: int) -> int:
    """Position of frame cell (block row, block col) in a frame vector: top row, bottom row, left, right columns."""
    if br == 0:
        return bc
    if br == h + 1:
        return w + 2 + bc
    if bc == 0:
        return 2 * (w + 2) + br - 1
    return 2 * (w + 2) + h + br - 1


def frame_length(h: int, w: int) -> int:
    """Cells in the frame of an ``h × w`` tile."""
    return 2 * (w + 2) + 2 * h


@nb.njit(cache=True)
def _kind(filled: np.ndarray) -> np.ndarray:
    """Per interior cell: 0 nodata, 1 drains downhill, 2 outlet, 3 on a flat."""
    h = filled.shape[0] - 2
    w = filled.shape[1] - 2
    kind = np.zeros((h, w), dtype=np.uint8)
    for r in range(h):
        for c in range(w):
            z = filled[r + 1, c + 1]
            if np.isnan(z):
                continue
            lower = False
            beside_nodata = False
            for k in range(8):
                zj = filled[r + 1 + DROW[k], c + 1 + DCOL[k]]
                if np.isnan(zj):
                    beside_nodata = True
                elif zj < z:
                    lower = True
            kind[r, c] = 1 if lower else (2 if beside_nodata else 3)
    return kind


@nb.njit(cache=True)
def flat_distance(filled: np.ndarray, dem: np.ndarray, halo: np.ndarray) -> np.ndarray:
    """Cost distance of every interior cell to its flat's drains (0 off flats, UNREACHED on nodata).

    Parameters
    ----------
    filled, dem:
        Conditioned and measured elevation of the block (float32, NaN on nodata and beyond the grid).
    halo:
        int64 frame vector (:func:`frame_index`) of the neighbouring tiles' distances (UNREACHED
        where not known yet).

    Returns
    -------
    numpy.ndarray
        ``(h, w)`` int64 distances: exact where the flat's quickest way out lies in this tile or
        through a frame cell whose distance is exact.
    """
    h = filled.shape[0] - 2
    w = filled.shape[1] - 2
    kind = _kind(filled)
    dist = np.full((h, w), UNREACHED, dtype=np.int64)
    for r in range(h):
        for c in range(w):
            if kind[r, c] == 1 or kind[r, c] == 2:
                dist[r, c] = 0
    keys = np.empty(64, dtype=np.int64)
    vals = np.empty(64, dtype=np.int64)
    size = 0
    # drains bordering a flat are seeds
    for r in range(h):
        for c in range(w):
            if dist[r, c] != 0:
                continue
            z = filled[r + 1, c + 1]
            for k in range(8):
                rr = r + DROW[k]
                cc = c + DCOL[k]
                if 0 <= rr < h and 0 <= cc < w and kind[rr, cc] == 3 and filled[rr + 1, cc + 1] == z:
                    keys, vals, size = _heap_push(keys, vals, size, np.int64(0), r * w + c)
                    break
    return _settle(filled, dem, halo, kind, dist, keys, vals, size)


@nb.njit(cache=True)
def update_flat_distance(filled: np.ndarray, dem: np.ndarray, halo: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """:func:`flat_distance` again after the frame's distances fell: only what they improve is redone.

    ``dist`` is the tile's previous result (changed in place and returned).
    """
    h = filled.shape[0] - 2
    w = filled.shape[1] - 2
    kind = np.zeros((h, w), dtype=np.uint8)  # only flat cells (3) matter here: dist is 0 elsewhere
    for r in range(h):
        for c in range(w):
            if dist[r, c] > 0 and not np.isnan(filled[r + 1, c + 1]):
                kind[r, c] = 3
    keys = np.empty(64, dtype=np.int64)
    vals = np.empty(64, dtype=np.int64)
    return _settle(filled, dem, halo, kind, dist, keys, vals, 0)


@nb.njit(cache=True)
def _settle(filled, dem, halo, kind, dist, keys, vals, size):
    """Dijkstra over the flats from the seeds in the heap and from the frame's distances."""
    h = filled.shape[0] - 2
    w = filled.shape[1] - 2
    # flat cells of the tile's edge improved by the frame
    for r in range(h):
        for c in range(w):
            if (0 < r < h - 1 and 0 < c < w - 1) or kind[r, c] != 3:
                continue
            z = filled[r + 1, c + 1]
            best = dist[r, c]
            for k in range(8):
                rr = r + DROW[k]
                cc = c + DCOL[k]
                if 0 <= rr < h and 0 <= cc < w:
                    continue
                if filled[rr + 1, cc + 1] != z:
                    continue
                d = halo[frame_index(rr + 1, cc + 1, h, w)]
                if d == UNREACHED:
                    continue
                cand = d + _step_cost(filled[rr + 1, cc + 1], dem[rr + 1, cc + 1], k)
                if cand < best:
                    best = cand
            if best < dist[r, c]:
                dist[r, c] = best
                keys, vals, size = _heap_push(keys, vals, size, best, r * w + c)
    while size > 0:
        d, i, size = _heap_pop(keys, vals, size)
        r = i // w
        c = i - r * w
        if d > dist[r, c]:
            continue
        z = filled[r + 1, c + 1]
        for k in range(8):  # neighbour j steps into i in direction (k + 4) % 8
            rr = r + DROW[k]
            cc = c + DCOL[k]
            if rr < 0 or cc < 0 or rr >= h or cc >= w:
                continue
            if kind[rr, cc] != 3 or filled[rr + 1, cc + 1] != z:
                continue
            nd = d + _step_cost(z, dem[r + 1, c + 1], (k + 4) % 8)
            if nd < dist[rr, cc]:
                dist[rr, cc] = nd
                keys, vals, size = _heap_push(keys, vals, size, nd, rr * w + cc)
    return dist


@nb.njit(cache=True)
def d8_block(filled: np.ndarray, dem: np.ndarray, dist: np.ndarray, halo: np.ndarray) -> np.ndarray:
    """D8 codes of the interior: steepest descent, outlets, and on flats the quickest way out.

    ``dist`` is :func:`flat_distance` of the interior with exact frame distances in ``halo`` (a frame vector).
    """
    h = filled.shape[0] - 2
    w = filled.shape[1] - 2
    d8 = np.full((h, w), D8_NODATA, dtype=np.uint8)
    for r in range(h):
        for c in range(w):
            z = filled[r + 1, c + 1]
            if np.isnan(z):
                continue
            best = 0.0
            bestk = -1
            beside_nodata = False
            for k in range(8):
                zj = filled[r + 1 + DROW[k], c + 1 + DCOL[k]]
                if np.isnan(zj):
                    beside_nodata = True
                elif zj < z:
                    s = (z - zj) / DIST[k]
                    if s > best:
                        best = s
                        bestk = k
            if bestk >= 0:
                d8[r, c] = CODES[bestk]
                continue
            if beside_nodata:
                d8[r, c] = D8_OUTLET
                continue
            cost = UNREACHED
            for k in range(8):
                rr = r + DROW[k]
                cc = c + DCOL[k]
                if filled[rr + 1, cc + 1] != z:
                    continue
                d = dist[rr, cc] if (0 <= rr < h and 0 <= cc < w) else halo[frame_index(rr + 1, cc + 1, h, w)]
                if d == UNREACHED:
                    continue
                cand = d + _step_cost(z, dem[rr + 1, cc + 1], k)
                if cand < cost:
                    cost = cand
                    bestk = k
            # a flat always has a way out once its distances are exact (the fill guarantees it)
            d8[r, c] = CODES[bestk] if bestk >= 0 else D8_OUTLET
    return d8


def route_filled(filled: np.ndarray, dem: np.ndarray) -> np.ndarray:
    """D8 of a whole conditioned grid by the flat rule (the in-memory build: one block, nodata around)."""
    fb = np.pad(filled, 1, constant_values=np.nan)
    db = np.pad(dem, 1, constant_values=np.nan)
    halo = np.full(frame_length(*filled.shape), UNREACHED, dtype=np.int64)
    dist = flat_distance(fb, db, halo)
    return d8_block(fb, db, dist, halo)


# ---------------------------------------------------------------------------
# Flow within a block: order, accumulation, rivers, sub-basins
# ---------------------------------------------------------------------------
@nb.njit(cache=True)
def _down_local(d8: np.ndarray, lut: np.ndarray, r: int, c: int):
    """Block coordinates (row, col) of the cell that interior cell (r, c) drains to, (-1, -1) if none."""
    k = lut[d8[r + 1, c + 1]]
    if k < 0:
        return -1, -1
    return r + 1 + DROW[k], c + 1 + DCOL[k]


@nb.njit(cache=True)
def local_order(d8: np.ndarray) -> np.ndarray:
    """Interior cells (r * w + c) ordered upstream-first within the block (every cell before the one it drains to)."""
    h = d8.shape[0] - 2
    w = d8.shape[1] - 2
    lut = _code_to_k()
    donors = np.zeros(h * w, dtype=np.uint8)
    nvalid = 0
    for r in range(h):
        for c in range(w):
            if d8[r + 1, c + 1] == D8_NODATA:
                continue
            nvalid += 1
            br, bc = _down_local(d8, lut, r, c)
            if 1 <= br <= h and 1 <= bc <= w:
                donors[(br - 1) * w + bc - 1] += 1
    order = np.empty(nvalid, dtype=np.int64)
    tail = 0
    for r in range(h):
        for c in range(w):
            if d8[r + 1, c + 1] != D8_NODATA and donors[r * w + c] == 0:
                order[tail] = r * w + c
                tail += 1
    head = 0
    while head < tail:
        i = order[head]
        head += 1
        r = i // w
        c = i - r * w
        br, bc = _down_local(d8, lut, r, c)
        if 1 <= br <= h and 1 <= bc <= w:
            j = (br - 1) * w + bc - 1
            donors[j] -= 1
            if donors[j] == 0:
                order[tail] = j
                tail += 1
    return order[:tail]


@nb.njit(cache=True)
def accumulate_block(d8: np.ndarray, order: np.ndarray, inflow: np.ndarray) -> np.ndarray:
    """Upstream cells of every interior cell counted within the block, plus ``inflow`` (h, w) from outside it."""
    h = d8.shape[0] - 2
    w = d8.shape[1] - 2
    lut = _code_to_k()
    acc = np.zeros((h, w), dtype=np.int64)
    for t in range(order.shape[0]):
        i = order[t]
        r = i // w
        c = i - r * w
        acc[r, c] += 1 + inflow[r, c]
        br, bc = _down_local(d8, lut, r, c)
        if 1 <= br <= h and 1 <= bc <= w:
            acc[br - 1, bc - 1] += acc[r, c]
    return acc


@nb.njit(cache=True)
def exits_block(d8: np.ndarray, order: np.ndarray):
    """Where the flow from each interior cell leaves the block.

    Returns
    -------
    exit_of:
        ``(h, w)`` int64: the interior cell (r * w + c) of the block's edge whose flow leaves the
        block that this cell's flow reaches, or -1 if it ends at an outlet inside.
    leaving:
        int64 interior cells draining into the frame (the exits), and ``target_r``, ``target_c``
        their downstream cells in block coordinates.
    """
    h = d8.shape[0] - 2
    w = d8.shape[1] - 2
    lut = _code_to_k()
    exit_of = np.full((h, w), -1, dtype=np.int64)
    nexit = 0
    for t in range(order.shape[0] - 1, -1, -1):  # downstream first
        i = order[t]
        r = i // w
        c = i - r * w
        br, bc = _down_local(d8, lut, r, c)
        if br < 0:
            continue
        if 1 <= br <= h and 1 <= bc <= w:
            exit_of[r, c] = exit_of[br - 1, bc - 1]
        else:
            exit_of[r, c] = i
            nexit += 1
    leaving = np.empty(nexit, dtype=np.int64)
    tr = np.empty(nexit, dtype=np.int64)
    tc = np.empty(nexit, dtype=np.int64)
    m = 0
    for r in range(h):
        for c in range(w):
            if exit_of[r, c] == r * w + c:
                br, bc = _down_local(d8, lut, r, c)
                leaving[m] = r * w + c
                tr[m] = br
                tc[m] = bc
                m += 1
    return exit_of, leaving, tr, tc


@nb.njit(cache=True)
def entries_block(d8: np.ndarray) -> np.ndarray:
    """Interior cells (r * w + c) that receive flow from the frame, once per donor."""
    h = d8.shape[0] - 2
    w = d8.shape[1] - 2
    lut = _code_to_k()
    cells = []
    for br in range(h + 2):
        for bc in range(w + 2):
            if 1 <= br <= h and 1 <= bc <= w:
                continue
            k = lut[d8[br, bc]]
            if k < 0:
                continue
            rr = br + DROW[k]
            cc = bc + DCOL[k]
            if 1 <= rr <= h and 1 <= cc <= w:
                cells.append((rr - 1) * w + cc - 1)
    return np.array(cells, dtype=np.int64)


@nb.njit(cache=True)
def river_pieces(d8: np.ndarray, acc: np.ndarray, order: np.ndarray, threshold: int):
    """Cut the block's river cells into pieces of reaches.

    A reach starts at a river cell with no river donor (a head) or several (a confluence) and
    runs down to the cell before the next start, or to an outlet. Within a block it is cut
    where it enters (a river cell whose one river donor lies in the frame) and where it leaves.

    Parameters
    ----------
    d8, acc:
        Blocks (with frames) of D8 codes and upstream cells (int64); ``order`` from :func:`local_order`.

    Returns
    -------
    piece_of:
        ``(h, w)`` int32 piece of each interior river cell (-1 elsewhere), pieces numbered 0.. in
        the order of their first cells in ``order``.
    first, n_in, down_r, down_c, ncells:
        Per piece: its first interior cell, that cell's number of river donors (0 head, 1 a
        continuation from the frame, ≥ 2 a confluence), the block coordinates of the cell below
        its last cell (-1, -1 at an outlet), and its number of cells.
    """
    h = d8.shape[0] - 2
    w = d8.shape[1] - 2
    lut = _code_to_k()
    n_in = np.zeros((h, w), dtype=np.int64)
    donor_inside = np.zeros((h, w), dtype=np.uint8)
    for br in range(h + 2):
        for bc in range(w + 2):
            if acc[br, bc] < threshold:
                continue
            k = lut[d8[br, bc]]
            if k < 0:
                continue
            rr = br + DROW[k]
            cc = bc + DCOL[k]
            if 1 <= rr <= h and 1 <= cc <= w:
                n_in[rr - 1, cc - 1] += 1
                if 1 <= br <= h and 1 <= bc <= w:
                    donor_inside[rr - 1, cc - 1] = 1
    piece_of = np.full((h, w), -1, dtype=np.int32)
    firsts: list[int] = []
    nins: list[int] = []
    for t in range(order.shape[0]):
        i = order[t]
        r = i // w
        c = i - r * w
        if acc[r + 1, c + 1] < threshold:
            continue
        if n_in[r, c] != 1 or donor_inside[r, c] == 0:
            piece_of[r, c] = len(firsts)
            firsts.append(i)
            nins.append(n_in[r, c])
    npiece = len(firsts)
    down_r = np.full(npiece, -1, dtype=np.int64)
    down_c = np.full(npiece, -1, dtype=np.int64)
    ncells = np.zeros(npiece, dtype=np.int64)
    for p in range(npiece):
        i = firsts[p]
        r = i // w
        c = i - r * w
        while True:
            piece_of[r, c] = p
            ncells[p] += 1
            br, bc = _down_local(d8, lut, r, c)
            if br < 0:
                break
            if not (1 <= br <= h and 1 <= bc <= w) or n_in[br - 1, bc - 1] != 1:
                down_r[p] = br
                down_c[p] = bc
                break
            r = br - 1
            c = bc - 1
    return (
        piece_of,
        np.array(firsts, dtype=np.int64),
        np.array(nins, dtype=np.int64),
        down_r,
        down_c,
        ncells,
    )


@nb.njit(cache=True)
def first_river(d8: np.ndarray, order: np.ndarray, piece_of: np.ndarray) -> np.ndarray:
    """Per interior cell, the first river piece its flow meets in the block (≥ 0), or ``-2 - exit`` for the
    exit cell through which it leaves first, or -1 if it meets none and ends at an outlet."""
    h = d8.shape[0] - 2
    w = d8.shape[1] - 2
    lut = _code_to_k()
    out = np.full((h, w), -1, dtype=np.int64)
    for t in range(order.shape[0] - 1, -1, -1):
        i = order[t]
        r = i // w
        c = i - r * w
        if piece_of[r, c] >= 0:
            out[r, c] = piece_of[r, c]
            continue
        br, bc = _down_local(d8, lut, r, c)
        if br < 0:
            continue
        if 1 <= br <= h and 1 <= bc <= w:
            out[r, c] = out[br - 1, bc - 1]
        else:
            out[r, c] = -2 - i
    return out
