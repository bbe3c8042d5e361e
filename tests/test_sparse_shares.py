"""Upstream-area shares per jurisdiction unit, kept sparse (kernels.pair_counts, kernels.accumulate_pairs).

A national basin has 10^6 reaches and thousands of units: a dense reaches × units table
would not fit. The sparse kernels must give what the dense table gives.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.model import kernels


def dense_pairs(a: np.ndarray, b: np.ndarray, na: int, nb: int) -> np.ndarray:
    out = np.zeros((na, nb), dtype=np.int64)
    ok = (a > 0) & (b >= 0) & (b < nb)
    np.add.at(out, (a[ok], b[ok]), 1)
    return out


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60), units=st.integers(1, 9), cells=st.integers(0, 400))
def test_sparse_shares_equal_the_dense_table(seed, n, units, cells):
    rng = np.random.default_rng(seed)
    # a random river tree numbered upstream-first: each reach flows into a higher id, or out
    next_down = np.array([rng.integers(r + 1, n + 1) if r < n and rng.random() < 0.8 else 0 for r in range(1, n + 1)])
    # cells in patches (runs), with nodata (sub-basin 0, unit -1) among them
    a = np.repeat(rng.integers(0, n + 1, max(1, cells // 5)), 5)[:cells]
    b = np.repeat(rng.integers(-1, units, max(1, cells // 3)), 3)[: len(a)]
    a = a[: len(b)]
    sub, unit, count = kernels.pair_counts(a, b, units)
    dense = dense_pairs(a, b, n + 1, units)
    assert np.array_equal(np.argwhere(dense > 0), np.c_[sub, unit])
    assert np.array_equal(dense[sub, unit], count)
    for r in range(1, n + 1):  # the dense accumulation downstream
        if next_down[r - 1]:
            dense[next_down[r - 1]] += dense[r]
    ptr, k, acc = kernels.accumulate_pairs(
        next_down.astype(np.int64), np.searchsorted(sub, np.arange(n + 2)), unit, count
    )
    reach = np.repeat(np.arange(n + 1), np.diff(ptr)[: n + 1])
    assert np.array_equal(np.argwhere(dense > 0), np.c_[reach, k])
    assert np.array_equal(dense[reach, k], acc)
