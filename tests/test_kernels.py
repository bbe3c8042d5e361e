"""Drainage kernels: known answers, agreement with pyflwdir, and properties on random terrain."""

from __future__ import annotations

import numpy as np
import pyflwdir
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from twin.model import blocks, kernels

from . import synthetic


def route(dem: np.ndarray):
    """Fill, D8 and downstream-first order as the build makes them (terrain.condition)."""
    dem = np.ascontiguousarray(dem, dtype=np.float32)
    filled = np.empty_like(dem)
    d8 = np.empty(dem.shape, dtype=np.uint8)
    order = np.empty(dem.size, dtype=np.int32)
    kernels.flood(dem, filled, d8, order)
    d8 = blocks.route_filled(filled, dem)
    return filled, d8, kernels.topological_order(d8.ravel(), dem.shape[1])


def follow_to_outlet(d8: np.ndarray, start: int) -> list[int]:
    return kernels.flow_path(d8.ravel(), start, d8.shape[1], d8.size + 1).tolist()


def test_v_valley_drains_to_its_one_outlet_along_the_floor():
    dem = synthetic.v_valley(41, 31)
    filled, d8, order = route(dem)
    mid = 15
    assert np.array_equal(filled, dem)  # nothing to fill
    outlets = np.argwhere(d8 == kernels.D8_OUTLET)
    assert outlets.tolist() == [[40, mid]]
    acc = kernels.accumulate(d8.ravel(), order, 31).reshape(dem.shape)
    assert acc[40, mid] == dem.size  # the outlet's catchment is the whole grid
    # below the top row, the floor column carries the most water of every row, and flows straight south
    assert (acc[1:].argmax(axis=1) == mid).all()
    assert (d8[:40, mid] == 4).all()  # 4 = south


def test_closed_depression_is_filled_to_its_spill_level():
    dem, (pr, pc) = synthetic.closed_depression(30, 30, depth=8.0)
    filled, d8, order = route(dem)
    assert (filled >= dem).all()
    raised = filled > dem
    assert raised[pr, pc]
    # the pit fills to the lowest rim cell it must pass: a flat lake at one level
    level = filled[pr, pc]
    assert np.allclose(filled[raised], level)
    assert level == pytest.approx(dem[pr + 4 : pr + 6, pc].max(), abs=0.5)
    assert (d8 != kernels.D8_NODATA).all()
    # every pit cell drains out of the pit, to an outlet on the edge
    path = follow_to_outlet(d8, pr * 30 + pc)
    end = divmod(path[-1], 30)
    assert d8[end] == kernels.D8_OUTLET and (end[0] in (0, 29) or end[1] in (0, 29))


def test_nodata_holes_are_outlets_and_stay_nodata():
    dem = synthetic.with_holes()
    filled, d8, order = route(dem)
    hole = np.isnan(dem)
    assert (d8[hole] == kernels.D8_NODATA).all()
    assert np.isnan(filled[hole]).all()
    assert order.size == (~hole).sum()
    # the floor cell just above the hole drains into it: it is an outlet
    assert d8[9, 15] == kernels.D8_OUTLET


@pytest.mark.parametrize("seed", range(4))
def test_filled_dem_matches_pyflwdir(seed):
    dem = synthetic.random_terrain(40, 50, seed)
    if seed % 2:
        dem[10:14, 20:25] = np.nan
    filled, d8, order = route(dem)
    theirs, _ = pyflwdir.dem.fill_depressions(np.where(np.isnan(dem), -9999, dem).astype("float32"), nodata=-9999)
    theirs = np.where(np.isnan(dem), np.nan, theirs)
    np.testing.assert_array_equal(filled, theirs)
    # and pyflwdir, given our D8, finds the same upstream areas we do
    acc = kernels.accumulate(d8.ravel(), order, dem.shape[1]).reshape(dem.shape)
    ua = pyflwdir.from_array(d8, ftype="d8").upstream_area("cell")
    valid = ~np.isnan(dem)
    np.testing.assert_array_equal(acc[valid], ua[valid])


def test_topological_order_rebuilt_from_d8_is_a_valid_order():
    dem = synthetic.random_terrain(30, 40, 7)
    _, d8, order = route(dem)
    rebuilt = kernels.topological_order(d8.ravel(), 40)
    assert sorted(rebuilt.tolist()) == sorted(order.tolist())
    np.testing.assert_array_equal(
        kernels.accumulate(d8.ravel(), rebuilt, 40), kernels.accumulate(d8.ravel(), order, 40)
    )


def test_strahler_and_reaches_on_a_y_junction():
    # two valleys meeting: a "Y" carved into a plane sloping south
    nrow, ncol = 40, 41
    rows, cols = np.mgrid[0:nrow, 0:ncol]
    dem = (nrow - rows) * 1.0 + 200
    dem = dem + np.minimum(np.abs(cols - (10 + rows // 2)), np.abs(cols - (30 - rows // 2))) * 3
    dem[20:, :] = (nrow - rows[20:]) * 1.0 + 200 + np.abs(cols[20:] - 20) * 3
    _, d8, order = route(dem.astype("float32"))
    acc = kernels.accumulate(d8.ravel(), order, ncol)
    strahler, reach = kernels.streams(d8.ravel(), order, acc, 100, ncol)
    strahler, reach = strahler.reshape(dem.shape), reach.reshape(dem.shape)
    assert strahler.max() == 2
    assert strahler[39, 20] == 2  # below the junction
    assert strahler[9, 14] == 1 and strahler[9, 26] == 1  # the two arms
    assert strahler[25:, 20].tolist() == [2] * 15
    assert len(np.unique(reach[reach > 0])) == 3  # two arms and the trunk
    # ids are upstream-first: the trunk has the largest id
    assert reach[39, 20] == reach.max()


finite_dems = arrays(
    np.float32, st.tuples(st.integers(3, 14), st.integers(3, 14)), elements=st.floats(0, 50, width=32, allow_nan=False)
)


@settings(max_examples=60, deadline=None)
@given(dem=finite_dems, holes=st.integers(0, 3), seed=st.integers(0, 1000))
def test_properties_on_random_terrain(dem, holes, seed):
    rng = np.random.default_rng(seed)
    dem = dem.copy()
    for _ in range(holes):
        dem[rng.integers(dem.shape[0]), rng.integers(dem.shape[1])] = np.nan
    if np.isnan(dem).all():
        return
    filled, d8, order = route(dem)
    valid = ~np.isnan(dem)
    ncol = dem.shape[1]
    # conditioning only raises
    assert (filled[valid] >= dem[valid]).all()
    # every valid cell is ordered exactly once
    assert sorted(order.tolist()) == np.flatnonzero(valid.ravel()).tolist()
    down = kernels.downstream_of(d8.ravel(), np.arange(d8.size), ncol)
    # every cell drains to an outlet, never uphill on the conditioned DEM
    f = filled.ravel()
    for i in np.flatnonzero(valid.ravel()):
        path = follow_to_outlet(d8, i)
        assert len(path) <= valid.sum()
        assert d8.ravel()[path[-1]] == kernels.D8_OUTLET
        assert all(f[b] <= f[a] for a, b in zip(path, path[1:]))
    # upstream area never decreases downstream, and outlets hold every cell
    acc = kernels.accumulate(d8.ravel(), order, ncol)
    has_down = down >= 0
    assert (acc[down[has_down]] > acc[has_down]).all()
    assert acc[d8.ravel() == kernels.D8_OUTLET].sum() == valid.sum()
    # the catchment of all outlets is the whole basin
    outs = np.flatnonzero(d8.ravel() == kernels.D8_OUTLET)
    assert (kernels.catchment_mask(d8.ravel(), order, outs, ncol).astype(bool) == valid.ravel()).all()


def test_debounce_ignores_short_excursions_and_places_the_section_at_the_run_start():
    # one reach of 12 points: A A B A A B B B B B B B  (A=0, B=1), no connector
    units = np.array([0, 0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1], dtype=np.int64)
    starts = np.array([0, 12], dtype=np.int64)
    fu, tu = kernels.debounce_units(
        units, starts, np.zeros(2, np.int64), np.zeros(2, np.int64), np.array([12], np.int64), 3
    )
    assert np.flatnonzero(fu > -2).tolist() == [5]
    assert (fu[5], tu[5]) == (0, 1)


def test_drainage_in_a_filled_depression_follows_its_lowest_ground():
    # a slope to the south dammed at row 20 (spillway at column 25): the water behind the dam
    # is filled to the spillway's level; a channel runs down column 5 inside the pond
    nrow, ncol = 30, 30
    rows, cols = np.mgrid[0:nrow, 0:ncol]
    dem = (nrow - rows) * 0.2 + 100.0
    dem[20, :] += 10.0
    dem[:21, 0] += 10.0  # valley sides: the pond's only way out is the spillway
    dem[:21, -1] += 10.0
    dem[0, :] += 10.0
    dem[20, 25] = 104.0  # the spillway: rows 10-19 behind the dam are under water
    dem[1:20, 5] -= 1.0
    dem = dem.astype("float32")
    filled, d8, _ = route(dem)
    assert (filled[11:20, 1:-1] == 104.0).all()  # the pond is filled to the spillway's level
    # in the pond the channel still drains down its own bed to the dam, then along the dam
    # to the spillway, not straight across the pond (as a breadth-first flood would have it)
    assert (d8[11:18, 5] == 4).all()
    assert (d8[19, 6:24] == 1).all()
