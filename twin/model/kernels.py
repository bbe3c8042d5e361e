"""Drainage kernels: plain numba functions on flat numpy arrays.

The heart of the twin's speed. One priority-flood pass (:func:`flood`) fills depressions, gives every cell a
direction *and* yields an ordering of the cells in which every cell comes after
the cell it drains to. Every later step (upstream area, Strahler order, reach
ids, sub-basins, catchments) is then one linear sweep of that order, with no
sorting and no recursion. A reopened twin rebuilds the order from its D8
raster (:func:`topological_order`).

Why the order is topological: cells leave the queue in non-decreasing filled
elevation, so a neighbour with a strictly lower filled elevation left earlier;
a cell with no lower neighbour drains to the neighbour that flooded it, which
also left earlier.

D8 codes are ESRI's, as pyflwdir uses them (1 E, 2 SE, 4 S, 8 SW, 16 W, 32 NW,
64 N, 128 NE); 0 marks an outlet and 247 a nodata cell, so a twin's D8 raster
can be handed to ``pyflwdir.from_array(d8, ftype="d8")``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

D8_OUTLET = np.uint8(0)
D8_NODATA = np.uint8(247)
# neighbour k: row offset, column offset, and the D8 code of the move *to* it
DROW = np.array([0, 1, 1, 1, 0, -1, -1, -1], dtype=np.int64)
DCOL = np.array([1, 1, 0, -1, -1, -1, 0, 1], dtype=np.int64)
CODES = np.array([1, 2, 4, 8, 16, 32, 64, 128], dtype=np.uint8)
DIST = np.array([1.0, 2**0.5, 1.0, 2**0.5, 1.0, 2**0.5, 1.0, 2**0.5])


@nb.njit(cache=True)
def _code_to_k() -> np.ndarray:
    lut = np.full(256, -1, dtype=np.int8)
    for k in range(8):
        lut[CODES[k]] = k
    return lut


@nb.njit(cache=True, inline="always")
def _heap_key(z, i):
    """One uint64 whose order is (elevation, cell): the float's bits made monotone, then the index."""
    b = np.float32(z).view(np.uint32)
    b = ~b if b & np.uint32(0x80000000) else b | np.uint32(0x80000000)  # negatives reversed, below positives
    return (np.uint64(b) << np.uint64(32)) | np.uint64(i)


@nb.njit(cache=True, inline="always")
def _heap_push(h, size, key):
    """Push onto a 4-ary min-heap of uint64 keys with room for one more; returns the new size."""
    i = size
    while i > 0:
        parent = (i - 1) >> 2
        if h[parent] <= key:
            break
        h[i] = h[parent]
        i = parent
    h[i] = key
    return size + 1


@nb.njit(cache=True, inline="always")
def _heap_pop(h, size):
    """Pop the smallest key of a 4-ary min-heap; returns (key, size)."""
    top = h[0]
    size -= 1
    key = h[size]
    i = 0
    while True:
        first = 4 * i + 1
        if first >= size:
            break
        best = first
        for k in range(first + 1, min(first + 4, size)):
            if h[k] < h[best]:
                best = k
        if h[best] >= key:
            break
        h[i] = h[best]
        i = best
    if size > 0:
        h[i] = key
    return top, size


# A second heap with a value beside each key: the depression queue orders cells by measured
# elevation *then arrival*, which leaves no bits in one uint64 for the cell itself. The main
# queue packs the cell into its key and so moves half the memory; hence two small variants.
@nb.njit(cache=True, inline="always")
def _pheap_push(keys, vals, size, key, val):
    """Push onto a 4-ary min-heap of uint64 keys carrying int64 values (room for one more); returns the size."""
    i = size
    while i > 0:
        parent = (i - 1) >> 2
        if keys[parent] <= key:
            break
        keys[i] = keys[parent]
        vals[i] = vals[parent]
        i = parent
    keys[i] = key
    vals[i] = val
    return size + 1


@nb.njit(cache=True, inline="always")
def _pheap_pop(keys, vals, size):
    """Pop the value with the smallest key; returns (value, size)."""
    top = vals[0]
    size -= 1
    key = keys[size]
    val = vals[size]
    i = 0
    while True:
        first = 4 * i + 1
        if first >= size:
            break
        best = first
        for k in range(first + 1, min(first + 4, size)):
            if keys[k] < keys[best]:
                best = k
        if keys[best] >= key:
            break
        keys[i] = keys[best]
        vals[i] = vals[best]
        i = best
    if size > 0:
        keys[i] = key
        vals[i] = val
    return top, size


@nb.njit(cache=True)
def flood(dem: np.ndarray, filled: np.ndarray, d8: np.ndarray, order: np.ndarray) -> int:
    """Fill depressions, route every cell, and order cells downstream-first.

    Parameters
    ----------
    dem:
        2-D float32 elevation, NaN for nodata.
    filled, d8, order:
        Outputs: filled elevation (2-D float32), D8 codes (2-D uint8) and the flat
        indices of valid cells ordered downstream-first (1-D int32, length ≥ valid cells).

    Returns
    -------
    int
        Number of valid cells written to ``order``.

    Cells on the grid edge or next to nodata are outlets when no neighbour lies
    lower. The filling is Priority-Flood (Barnes, Lehman & Mulla 2014); cells
    below the current level are taken lowest measured ground first (a second
    heap), so that in filled depressions the drainage follows the real channel
    rather than an arbitrary breadth-first tree. The main priority queue is a 4-ary
    heap of single uint64 keys (elevation bits made monotone, then the cell), a
    third faster here than a binary heap over two arrays (benchmarks/build.py).
    D8 is then steepest descent on the filled DEM, or on flats the direction
    towards the cell that flooded it.

    The build keeps only ``filled`` from here: its D8 follows the flat rule of
    :mod:`twin.model.blocks`, which does not depend on the order cells are visited in
    (so that the tiled build gives the same), and its order is rebuilt from that D8
    (:func:`topological_order`). This function's own D8 and order are what the
    first version of the twin used, kept as a cross-check in the tests.
    """
    nrow, ncol = dem.shape
    n = nrow * ncol
    demf = dem.ravel()
    fil = filled.ravel()
    dd = d8.ravel()
    visited = np.zeros(n, dtype=np.uint8)
    # Every cell enters a queue once, so queues of n entries never overflow. They cost
    # address space only: pages are committed as the queues grow (np.empty).
    heap = np.empty(n, dtype=np.uint64)
    hsize = 0
    low32 = np.uint64(0xFFFFFFFF)
    offset = np.empty(8, dtype=np.int64)
    for k in range(8):
        offset[k] = DROW[k] * ncol + DCOL[k]
    # cells below the current level wait in a second heap ordered by their *measured*
    # elevation, then by arrival: the flood spreads through a depression along its lowest
    # ground first, so the drainage it leaves behind follows the real channel. Cells exactly
    # at the level (a true flat) come after them, breadth-first, from a plain queue.
    pkeys = np.empty(n, dtype=np.uint64)
    pcells = np.empty(n, dtype=np.int32)
    psize = 0
    arrivals = np.uint64(0)
    flat = np.empty(n, dtype=np.int32)
    fhead = 0
    ftail = 0
    # seeds: valid cells on the edge or beside nodata
    for r in range(nrow):
        for c in range(ncol):
            i = r * ncol + c
            z = demf[i]
            if np.isnan(z):
                dd[i] = D8_NODATA
                fil[i] = np.nan
                visited[i] = 1
                continue
            edge = r == 0 or c == 0 or r == nrow - 1 or c == ncol - 1
            if not edge:
                for k in range(8):
                    if np.isnan(demf[(r + DROW[k]) * ncol + c + DCOL[k]]):
                        edge = True
                        break
            if edge:
                visited[i] = 1
                fil[i] = z
                dd[i] = D8_OUTLET
                hsize = _heap_push(heap, hsize, _heap_key(z, i))
    count = 0
    while hsize > 0 or psize > 0 or fhead != ftail:
        if psize > 0:
            i, psize = _pheap_pop(pkeys, pcells, psize)
        elif fhead != ftail:
            i = np.int64(flat[fhead])
            fhead += 1
        else:
            top, hsize = _heap_pop(heap, hsize)
            i = np.int64(top & low32)
        order[count] = i
        count += 1
        z = fil[i]
        r = i // ncol
        c = i - r * ncol
        inner = 0 < r < nrow - 1 and 0 < c < ncol - 1
        for k in range(8):
            if not inner:
                rr = r + DROW[k]
                cc = c + DCOL[k]
                if rr < 0 or cc < 0 or rr >= nrow or cc >= ncol:
                    continue
            j = i + offset[k]
            if visited[j]:
                continue
            visited[j] = 1
            dd[j] = CODES[(k + 4) % 8]  # provisional: towards the cell that flooded it
            zj = demf[j]
            if zj < z:  # in a depression: raised to this level
                fil[j] = z
                key = (_heap_key(zj, 0) & ~low32) | (arrivals & low32)
                arrivals += np.uint64(1)
                psize = _pheap_push(pkeys, pcells, psize, key, j)
                continue
            if zj == z:  # on a flat
                fil[j] = z
                flat[ftail] = j
                ftail += 1
                continue
            fil[j] = zj
            hsize = _heap_push(heap, hsize, _heap_key(zj, j))
    # steepest descent where a strictly lower neighbour exists
    for r in range(nrow):
        for c in range(ncol):
            i = r * ncol + c
            z = fil[i]
            if np.isnan(z):
                continue
            best = 0.0
            bestk = -1
            for k in range(8):
                rr = r + DROW[k]
                cc = c + DCOL[k]
                if rr < 0 or cc < 0 or rr >= nrow or cc >= ncol:
                    continue
                zj = fil[rr * ncol + cc]
                if zj < z:  # NaN compares false
                    s = (z - zj) / DIST[k]
                    if s > best:
                        best = s
                        bestk = k
            if bestk >= 0:
                dd[i] = CODES[bestk]
    return count


@nb.njit(cache=True)
def downstream_of(d8: np.ndarray, cells: np.ndarray, ncol: int) -> np.ndarray:
    """Flat index of the downstream cell of each of ``cells`` (-1 for outlets and nodata)."""
    lut = _code_to_k()
    out = np.empty(cells.shape[0], dtype=np.int64)
    for t in range(cells.shape[0]):
        i = cells[t]
        k = lut[d8[i]]
        out[t] = -1 if k < 0 else i + DROW[k] * ncol + DCOL[k]
    return out


@nb.njit(cache=True)
def _down(i, d8, lut, ncol):
    k = lut[d8[i]]
    if k < 0:
        return -1
    return i + DROW[k] * ncol + DCOL[k]


@nb.njit(cache=True)
def accumulate(d8: np.ndarray, order: np.ndarray, ncol: int) -> np.ndarray:
    """Upstream cell count (the cell itself included), int32; 0 on nodata."""
    lut = _code_to_k()
    acc = np.zeros(d8.size, dtype=np.int32)
    for t in range(order.shape[0]):
        acc[order[t]] = 1
    for t in range(order.shape[0] - 1, -1, -1):
        i = order[t]
        j = _down(i, d8, lut, ncol)
        if j >= 0:
            acc[j] += acc[i]
    return acc


@nb.njit(cache=True)
def streams(d8: np.ndarray, order: np.ndarray, acc: np.ndarray, threshold: int, ncol: int):
    """Strahler order and reach ids of river cells (acc ≥ threshold).

    A reach runs from a head or a confluence down to the next confluence or
    outlet. Returns ``(strahler uint8, reach int32)``; reach ids start at 1,
    numbered upstream-first, and both are 0 off the rivers.
    """
    lut = _code_to_k()
    n = d8.size
    strahler = np.zeros(n, dtype=np.uint8)
    reach = np.zeros(n, dtype=np.int32)
    max_in = np.zeros(n, dtype=np.uint8)
    cnt_max = np.zeros(n, dtype=np.uint8)
    n_in = np.zeros(n, dtype=np.uint8)
    last_in = np.zeros(n, dtype=np.int32)
    nreach = 0
    for t in range(order.shape[0] - 1, -1, -1):
        i = order[t]
        if acc[i] < threshold:
            continue
        m = max_in[i]
        if m == 0:
            o = 1
        elif cnt_max[i] >= 2:
            o = m + 1
        else:
            o = m
        strahler[i] = o
        if n_in[i] == 1:
            reach[i] = last_in[i]
        else:
            nreach += 1
            reach[i] = nreach
        j = _down(i, d8, lut, ncol)
        if j >= 0:
            if o > max_in[j]:
                max_in[j] = o
                cnt_max[j] = 1
            elif o == max_in[j] and cnt_max[j] < 255:
                cnt_max[j] += 1
            if n_in[j] < 255:
                n_in[j] += 1
            last_in[j] = reach[i]
    return strahler, reach


def canonical_reach_ids(reach: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """New id of every reach id: reaches numbered by (upstream cells, flat index) of their first cell.

    Upstream cells grow strictly downstream, so the numbering stays upstream-first; and it
    depends on the rivers alone, not on the order a build visited the cells in, so a tiled
    build numbers the reaches the same (:mod:`twin.model.tiled`).

    Parameters
    ----------
    reach, acc:
        Flat reach ids (0 off the rivers) and upstream cells.

    Returns
    -------
    numpy.ndarray
        int32 lookup: ``lut[old_id]`` is the new id (``lut[0] == 0``).
    """
    cells = np.flatnonzero(reach)
    ids = reach[cells]
    up = acc[cells]
    n = int(ids.max()) if ids.size else 0
    o = np.lexsort((cells, up, ids))
    head = o[np.r_[True, ids[o][1:] != ids[o][:-1]]] if o.size else o
    rank = np.lexsort((cells[head], up[head]))
    lut = np.zeros(n + 1, dtype=np.int32)
    lut[ids[head][rank]] = np.arange(1, rank.size + 1, dtype=np.int32)
    return lut


@nb.njit(cache=True)
def label_subbasins(d8: np.ndarray, order: np.ndarray, reach: np.ndarray, ncol: int) -> np.ndarray:
    """Each cell's sub-basin: the reach it first drains into (0 where it reaches no river)."""
    lut = _code_to_k()
    sub = np.zeros(d8.size, dtype=np.int32)
    for t in range(order.shape[0]):
        i = order[t]
        if reach[i] > 0:
            sub[i] = reach[i]
        else:
            j = _down(i, d8, lut, ncol)
            if j >= 0:
                sub[i] = sub[j]
    return sub


@nb.njit(cache=True)
def catchment_mask(d8: np.ndarray, order: np.ndarray, targets: np.ndarray, ncol: int) -> np.ndarray:
    """Cells draining to any of the target cells (targets included), as uint8."""
    lut = _code_to_k()
    inside = np.zeros(d8.size, dtype=np.uint8)
    for t in range(targets.shape[0]):
        inside[targets[t]] = 1
    for t in range(order.shape[0]):
        i = order[t]
        if inside[i]:
            continue
        j = _down(i, d8, lut, ncol)
        if j >= 0 and inside[j]:
            inside[i] = 1
    return inside


@nb.njit(cache=True)
def flow_path(d8: np.ndarray, start: int, ncol: int, max_steps: int) -> np.ndarray:
    """Flat indices from ``start`` down to its outlet (at most ``max_steps`` cells)."""
    lut = _code_to_k()
    out = np.empty(max_steps, dtype=np.int64)
    i = start
    m = 0
    while i >= 0 and m < max_steps:
        out[m] = i
        m += 1
        i = _down(i, d8, lut, ncol)
    return out[:m]


@nb.njit(cache=True)
def fill_slivers(units: np.ndarray, rows: np.ndarray, cols: np.ndarray, radius: int) -> None:
    """Give river cells outside every unit (-1) the nearest unit within ``radius`` cells, in place."""
    nrow, ncol = units.shape
    for t in range(rows.shape[0]):
        r = rows[t]
        c = cols[t]
        if units[r, c] >= 0:
            continue
        best = -1
        bestd = radius * radius + 1
        for dr in range(-radius, radius + 1):
            for dc in range(-radius, radius + 1):
                rr = r + dr
                cc = c + dc
                if rr < 0 or cc < 0 or rr >= nrow or cc >= ncol:
                    continue
                u = units[rr, cc]
                d = dr * dr + dc * dc
                if u >= 0 and d < bestd:
                    bestd = d
                    best = u
        if best >= 0:
            units[r, c] = best


def topological_order(d8: np.ndarray, ncol: int) -> np.ndarray:
    """Valid cells ordered downstream-first (outlets, then what drains to them...).

    Used when a twin is reopened and after a tiled build: the order is rebuilt from the D8
    raster rather than stored, by a breadth-first walk up from the outlets. The indices are
    int32, or int64 on a grid of more than 2**31 - 1 cells.
    """
    nvalid = int(np.count_nonzero(d8 != D8_NODATA))
    out = np.empty(nvalid, dtype=np.int32 if d8.size < 2**31 else np.int64)
    return out[: _topological_order(d8, ncol, out)]


@nb.njit(cache=True)
def _topological_order(d8: np.ndarray, ncol: int, order: np.ndarray) -> int:
    n = d8.size
    nrow = n // ncol
    tail = 0
    for i in range(n):
        if d8[i] == D8_OUTLET:
            order[tail] = i
            tail += 1
    head = 0
    while head < tail:
        i = int(order[head])
        head += 1
        r = i // ncol
        c = i - r * ncol
        for k in range(8):
            rr = r + DROW[k]
            cc = c + DCOL[k]
            if rr < 0 or cc < 0 or rr >= nrow or cc >= ncol:
                continue
            j = rr * ncol + cc
            if d8[j] == CODES[(k + 4) % 8]:
                order[tail] = j
                tail += 1
    return tail


@nb.njit(cache=True)
def debounce_units(
    units: np.ndarray,
    starts: np.ndarray,
    main_up: np.ndarray,
    next_down: np.ndarray,
    body_end: np.ndarray,
    min_run: int,
):
    """Where rivers really change unit: runs shorter than ``min_run`` points are ignored.

    A river that follows a boundary crosses it back and forth every few cells on
    a raster; counting each of those as a hand-over would bury the real ones.
    Walking each reach's points downstream (reaches in id order, which is
    upstream-first), the *effective* unit changes only once the river has stayed
    ``min_run`` points in the new unit; the section is put at the first point of
    that run. A reach starts from the state its main upstream reach (the one with
    the largest upstream area) ended in; a tributary whose effective unit differs
    from the main river's at the confluence gets a section at its connector point.

    Parameters
    ----------
    units:
        Unit index of every chain point (-1 outside every unit).
    starts:
        Chain start of each reach (reach k = points ``starts[k-1]:starts[k]``).
    main_up, next_down:
        Main upstream reach and downstream reach of each reach (0 for none), indexed by reach id.
    body_end:
        End (exclusive) of each reach's own points (its connector excluded), per reach index.

    Returns
    -------
    from_unit, to_unit
        For each chain point where a section lies: the units before and after; -2 elsewhere.
    """
    nreach = starts.shape[0] - 1
    from_u = np.full(units.shape[0], -2, dtype=np.int64)
    to_u = np.full(units.shape[0], -2, dtype=np.int64)
    end_eff = np.empty(nreach + 1, dtype=np.int64)
    end_cand = np.empty(nreach + 1, dtype=np.int64)
    end_run = np.zeros(nreach + 1, dtype=np.int64)
    end_runstart = np.zeros(nreach + 1, dtype=np.int64)
    for r in range(1, nreach + 1):
        a = starts[r - 1]
        b = body_end[r - 1]
        m = main_up[r]
        if m > 0:
            eff = end_eff[m]
            cand = end_cand[m]
            run = end_run[m]
            runstart = end_runstart[m]
        else:
            eff = units[a]
            cand = units[a]
            run = 0
            runstart = a
        for p in range(a, b):
            u = units[p]
            if u == eff:
                run = 0
                cand = u
                continue
            if u == cand and run > 0:
                run += 1
            else:
                cand = u
                run = 1
                runstart = p
            if run >= min_run:
                from_u[runstart] = eff
                to_u[runstart] = u
                eff = u
                run = 0
        end_eff[r] = eff
        end_cand[r] = cand
        end_run[r] = run
        end_runstart[r] = runstart
    for r in range(1, nreach + 1):
        d = next_down[r]
        if d > 0 and main_up[d] != r and end_eff[r] != end_eff[main_up[d]]:
            conn = starts[r] - 1
            from_u[conn] = end_eff[r]
            to_u[conn] = end_eff[main_up[d]]
    return from_u, to_u


@nb.njit(cache=True)
def pair_counts(a: np.ndarray, b: np.ndarray, nb_: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells per (a, b) pair with a > 0 and 0 <= b < nb_, as sorted sparse columns (a, b, count).

    One pass over the cells; a run of cells with the same pair (sub-basins and units are
    patches, so runs are long) costs one look-up in a hash table. Memory goes with the
    pairs present, not with a dense a × b table: used for the cells of each sub-basin in
    each jurisdiction unit.
    """
    table = nb.typed.Dict.empty(key_type=nb.types.int64, value_type=nb.types.int64)
    run_key, run = np.int64(-1), 0
    for t in range(a.shape[0]):
        x = np.int64(a[t])
        y = np.int64(b[t])
        key = x * nb_ + y if x > 0 and 0 <= y < nb_ else np.int64(-1)
        if key != run_key:
            if run_key >= 0:
                table[run_key] = table.get(run_key, 0) + run
            run_key, run = key, 0
        run += 1
    if run_key >= 0:
        table[run_key] = table.get(run_key, 0) + run
    keys = np.empty(len(table), dtype=np.int64)
    counts = np.empty(len(table), dtype=np.int64)
    for k, (key, c) in enumerate(table.items()):
        keys[k] = key
        counts[k] = c
    order = np.argsort(keys)
    keys, counts = keys[order], counts[order]
    return keys // nb_, keys % nb_, counts


@nb.njit(cache=True)
def accumulate_pairs(
    next_down: np.ndarray, local_ptr: np.ndarray, local_b: np.ndarray, local_count: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse counts per (reach, b) summed downstream: each reach's own and those of every reach above it.

    Reaches are 1..n, numbered upstream-first (a reach's upstream reaches have lower
    ids); ``next_down[r - 1]`` is the reach below reach r (0 at an outlet). The local counts
    are CSR rows: reach r's are ``local_b[local_ptr[r]:local_ptr[r + 1]]`` (sorted) with
    their counts. Returns the accumulated CSR (ptr, b, count), each row sorted by b: the
    work and memory go with the pairs present, not with reaches × units.
    """
    n = next_down.shape[0]
    # the reaches directly above each reach, as CSR
    n_up = np.zeros(n + 2, dtype=np.int64)
    for r in range(1, n + 1):
        d = next_down[r - 1]
        if d > 0:
            n_up[d + 1] += 1
    up_ptr = np.cumsum(n_up)
    up = np.empty(up_ptr[-1], dtype=np.int64)
    fill = up_ptr.copy()
    for r in range(1, n + 1):
        d = next_down[r - 1]
        if d > 0:
            up[fill[d]] = r
            fill[d] += 1
    ptr = np.zeros(n + 2, dtype=np.int64)
    cap = max(16, 2 * local_b.shape[0])
    out_b = np.empty(cap, dtype=np.int64)
    out_c = np.empty(cap, dtype=np.int64)
    used = 0
    for r in range(1, n + 1):
        m = local_ptr[r + 1] - local_ptr[r]
        for k in range(up_ptr[r], up_ptr[r + 1]):
            u = up[k]
            m += ptr[u + 1] - ptr[u]
        gb = np.empty(m, dtype=np.int64)
        gc = np.empty(m, dtype=np.int64)
        g = 0
        for t in range(local_ptr[r], local_ptr[r + 1]):
            gb[g], gc[g] = local_b[t], local_count[t]
            g += 1
        for k in range(up_ptr[r], up_ptr[r + 1]):
            u = up[k]
            for t in range(ptr[u], ptr[u + 1]):
                gb[g], gc[g] = out_b[t], out_c[t]
                g += 1
        order = np.argsort(gb, kind="mergesort")
        if used + m > cap:
            cap = max(2 * cap, used + m)
            nb2 = np.empty(cap, dtype=np.int64)
            nc2 = np.empty(cap, dtype=np.int64)
            nb2[:used] = out_b[:used]
            nc2[:used] = out_c[:used]
            out_b, out_c = nb2, nc2
        ptr[r] = used
        last = -1
        for t in range(m):
            b = gb[order[t]]
            if b != last:
                out_b[used] = b
                out_c[used] = gc[order[t]]
                used += 1
                last = b
            else:
                out_c[used - 1] += gc[order[t]]
        ptr[r + 1] = used
    return ptr, out_b[:used].copy(), out_c[:used].copy()
