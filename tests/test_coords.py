"""Incoming coordinates: GCJ-02 both ways, and every named system to the twin's CRS.

Known answers come from published pairs (cited where used) and from geodesy a user
can check: the GCJ-02 offset is a few hundred metres over eastern China, zero
abroad, and the inverse lands on the original WGS84 point to well under a metre.
"""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from twin.errors import CRSError, TwinError
from twin.model import coords
from twin.model.coords import gcj02_to_wgs84, in_china, to_crs, wgs84_to_gcj02

GEOD = Geod(ellps="WGS84")

# Points well inside China's GCJ-02 box (its edges are 72.004–137.8347 E, 0.8293–55.8271 N).
china_lon = st.floats(min_value=73.5, max_value=135.0, allow_nan=False)
china_lat = st.floats(min_value=18.0, max_value=53.5, allow_nan=False)


def metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Geodesic distance on WGS84 between two sets of points, in metres."""
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


# ---------------------------------------------------------------------------
# forward transform: published pairs and the size of the offset
# ---------------------------------------------------------------------------
def test_forward_matches_a_published_pair():
    # Pair from dromara/hutool, hutool-core/src/test/java/cn/hutool/core/util/CoordinateUtilTest.java
    # (wgs84ToGcj02Test, itself referring to wandergis/coordtransform): WGS84 (116.404, 39.915)
    # -> GCJ-02 (116.41024449916938, 39.91640428150164). Our code is written from the formula.
    lon, lat = wgs84_to_gcj02(116.404, 39.915)
    assert lon == pytest.approx(116.41024449916938, abs=1e-9)
    assert lat == pytest.approx(39.91640428150164, abs=1e-9)


def test_tiananmen_is_shifted_north_east_by_about_half_a_kilometre():
    lon, lat = wgs84_to_gcj02(116.3912, 39.9073)
    assert lon == pytest.approx(116.3975, abs=2e-4)
    assert lat == pytest.approx(39.9087, abs=2e-4)
    assert lon > 116.3912 and lat > 39.9073
    assert 400 < metres(116.3912, 39.9073, lon, lat) < 700


@pytest.mark.parametrize(
    "city, lon, lat",
    [
        ("Beijing", 116.3912, 39.9073),
        ("Shanghai", 121.4737, 31.2304),
        ("Nanjing", 118.7969, 32.0603),
        ("Wuhan", 114.3055, 30.5928),
        ("Harbin", 126.5350, 45.8038),
    ],
)
def test_offset_in_eastern_china_is_a_few_hundred_metres(city, lon, lat):
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    assert 300 < metres(lon, lat, g_lon, g_lat) < 650, city


@pytest.mark.parametrize(
    "lon, lat",
    [(2.3522, 48.8566), (139.6917, 35.6895), (-74.006, 40.7128), (151.2093, -33.8688), (71.9, 40.0), (100.0, 56.0)],
)
def test_outside_china_both_directions_are_the_identity(lon, lat):
    assert not in_china(lon, lat)
    assert wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert gcj02_to_wgs84(lon, lat) == (lon, lat)


def test_scalars_in_floats_out_and_arrays_keep_their_shape():
    lon, lat = wgs84_to_gcj02(116.0, 40.0)
    assert type(lon) is float and type(lat) is float
    grid_lon = np.array([[116.0, 2.35], [120.0, np.nan]])
    out_lon, out_lat = gcj02_to_wgs84(grid_lon, 39.9)  # latitude broadcasts
    assert out_lon.shape == out_lat.shape == (2, 2)
    assert out_lon[0, 1] == 2.35 and out_lat[0, 1] == 39.9  # abroad: untouched
    assert np.isnan(out_lon[1, 1]) and np.isnan(out_lat[1, 1])  # NaN stays NaN
    # each element equals the scalar call
    assert out_lon[1, 0] == pytest.approx(gcj02_to_wgs84(120.0, 39.9)[0], abs=1e-12)


# ---------------------------------------------------------------------------
# inverse transform: round trips and accuracy in metres
# ---------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(lon=st.lists(china_lon, min_size=1, max_size=20), lat=st.lists(china_lat, min_size=1, max_size=20))
def test_round_trip_gcj_wgs_gcj_within_1e6_degrees(lon, lat):
    n = min(len(lon), len(lat))
    g_lon, g_lat = np.array(lon[:n]), np.array(lat[:n])
    w_lon, w_lat = gcj02_to_wgs84(g_lon, g_lat)
    back_lon, back_lat = wgs84_to_gcj02(w_lon, w_lat)
    assert np.abs(back_lon - g_lon).max() < 1e-6
    assert np.abs(back_lat - g_lat).max() < 1e-6


@settings(max_examples=200, deadline=None)
@given(lon=china_lon, lat=china_lat)
def test_inverse_lands_within_half_a_metre_of_the_true_point(lon, lat):
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    w_lon, w_lat = gcj02_to_wgs84(g_lon, g_lat)
    assert metres(lon, lat, w_lon, w_lat) < 0.5


def test_inverse_beats_the_one_step_approximation_over_china():
    lon, lat = np.meshgrid(np.linspace(74, 134, 61), np.linspace(19, 53, 35))
    lon, lat = lon.ravel(), lat.ravel()
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    # the one-step approximation: subtract the offset evaluated at the GCJ-02 point
    f_lon, f_lat = wgs84_to_gcj02(g_lon, g_lat)
    one_lon, one_lat = g_lon - (f_lon - g_lon), g_lat - (f_lat - g_lat)
    one_step = metres(lon, lat, one_lon, one_lat)
    iterated = metres(lon, lat, *gcj02_to_wgs84(g_lon, g_lat))
    assert iterated.max() < 0.01  # a centimetre at worst
    assert one_step.max() > 1.0  # what the iteration buys: metres where the offset bends


# ---------------------------------------------------------------------------
# to_crs
# ---------------------------------------------------------------------------
def test_gcj02_to_utm_equals_wgs84_of_the_recovered_point():
    w_lon, w_lat = 116.3912, 39.9073
    g_lon, g_lat = wgs84_to_gcj02(w_lon, w_lat)
    x_g, y_g = to_crs(g_lon, g_lat, "GCJ-02", "EPSG:32650")
    x_w, y_w = to_crs(w_lon, w_lat, "WGS84", "EPSG:32650")
    assert np.hypot(x_g - x_w, y_g - y_w) < 0.05
    # and the raw GCJ-02 numbers, wrongly taken as WGS84, would be hundreds of metres off
    x_bad, y_bad = to_crs(g_lon, g_lat, "WGS84", "EPSG:32650")
    assert np.hypot(x_bad - x_w, y_bad - y_w) > 300


@pytest.mark.parametrize("spelling", ["GCJ02", "GCJ-02", "gcj02", " gcj-02 "])
def test_gcj02_spellings_agree(spelling):
    assert to_crs(116.4, 39.9, spelling, 4326) == pytest.approx(gcj02_to_wgs84(116.4, 39.9), abs=1e-12)


def test_cgcs2000_and_wgs84_agree_within_centimetres():
    lon = np.array([116.3912, 121.4737, 104.0665, 87.6168])
    lat = np.array([39.9073, 31.2304, 30.5723, 43.8256])
    x_c, y_c = to_crs(lon, lat, "CGCS2000", "EPSG:3857")
    x_w, y_w = to_crs(lon, lat, "WGS84", "EPSG:3857")
    assert np.hypot(x_c - x_w, y_c - y_w).max() < 0.05


def test_an_epsg_source_goes_through_pyproj():
    # UTM 50N easting/northing back to geographic: the round trip lands where it started
    x, y = to_crs(116.3912, 39.9073, "WGS84", "EPSG:32650")
    lon, lat = to_crs(x, y, "epsg:32650", "EPSG:4326")
    assert lon == pytest.approx(116.3912, abs=1e-9)
    assert lat == pytest.approx(39.9073, abs=1e-9)


def test_to_crs_keeps_array_shape():
    x, y = to_crs(np.array([116.0, 117.0, 118.0]), np.array([39.0, 39.5, 40.0]), "GCJ02", "EPSG:32650")
    assert x.shape == y.shape == (3,)
    assert np.all(np.diff(x) > 0)


@pytest.mark.parametrize("system", ["BD09", "UTM", "", "EPSG:999999", "EPSG:abc"])
def test_unknown_system_is_refused_naming_the_allowed_ones(system):
    with pytest.raises(CRSError) as info:
        to_crs(116.0, 40.0, system, "EPSG:4326")
    assert isinstance(info.value, TwinError) and isinstance(info.value, ValueError)
    message = str(info.value)
    assert repr(system) in message
    for allowed in ("WGS84", "CGCS2000", "GCJ02", "EPSG:xxxx"):
        assert allowed in message


def test_unreadable_target_crs_is_refused():
    with pytest.raises(CRSError, match="not-a-crs"):
        to_crs(116.0, 40.0, "WGS84", "not-a-crs")


def test_docstring_examples_hold():
    result = doctest.testmod(coords, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 4
    assert result.failed == 0
