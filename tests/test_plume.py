"""Spill plumes with known answers: a uniform channel, mass through sections, dilution, decay, output shape."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import twin
from twin.analysis import plume
from twin.analysis.plume import PlumeError, dispersion_coefficient, simulate, travel_times
from twin.errors import TwinError, UnknownReachError
from twin.model.transport import LEADING_EDGE_FRACTION, max_probable_velocity, peak_velocity

from . import synthetic

T0 = pd.Timestamp("2026-07-10T08:00")


def chain(lengths, areas_km2, slopes, runoff_mm=400.0) -> pd.DataFrame:
    """A single chain of reaches 1 → 2 → … → outlet, with qa from area × runoff."""
    n = len(lengths)
    area = np.asarray(areas_km2, float)
    return pd.DataFrame(
        {
            "reach_id": np.arange(1, n + 1),
            "next_down": np.r_[np.arange(2, n + 1), 0],
            "length_m": np.asarray(lengths, float),
            "slope": np.asarray(slopes, float),
            "upstream_area_km2": area,
            "qa_m3s": area * 1e6 * runoff_mm / 1000 / (365.25 * 86400),
        }
    )


def grid(hours: float, n: int = 40001) -> pd.DatetimeIndex:
    return T0 + pd.to_timedelta(np.linspace(0, hours * 3600, n), unit="s")


def mass_through(ds: xr.Dataset, dim: str = "reach") -> np.ndarray:
    """∫ C Q dt (kg) at each section of a Dataset from :func:`simulate`."""
    name = "concentration" if dim == "reach" else "site_concentration"
    t = (ds["time"].to_numpy() - ds["time"].to_numpy()[0]) / np.timedelta64(1, "s")
    flux = ds[name].to_numpy() / 1000.0 * ds[f"{dim}_discharge"].to_numpy()[:, None]
    return np.trapezoid(flux, t, axis=1)


@pytest.fixture
def valley(make_catalog):
    """The V-valley: reaches 1 (main stem), 2 and 3 (side streams) join in reach 4 at the outlet."""
    basin = twin.BasinTwin.build(make_catalog(synthetic.v_valley(41, 31), units=None))
    reaches = basin.network.reaches
    assert sorted(reaches.loc[reaches["next_down"] == 4, "reach_id"]) == [1, 2, 3]
    return basin


def test_uniform_channel_matches_the_analytical_solution():
    # one 20 km reach: constant velocity and dispersion, so the textbook solution holds exactly
    reaches = chain([20_000.0], [200.0], [0.002])
    row = reaches.iloc[0]
    q = row.qa_m3s
    v = float(peak_velocity(row.upstream_area_km2 * 1e6, q, q, row.slope))
    k = float(dispersion_coefficient(q, v, row.slope))
    mass = 10.0
    ds = simulate(reaches, 1, 0.0, T0, mass_kg=mass, times=grid(3 * 20_000 / v / 3600))
    t = (ds["time"].to_numpy() - np.datetime64(T0)) / np.timedelta64(1, "s")
    c = ds["concentration"].sel(reach=1).to_numpy()

    area = q / v
    tt = np.where(t > 0, t, 1.0)
    exact = mass / (area * np.sqrt(4 * np.pi * k * tt)) * np.exp(-((20_000 - v * tt) ** 2) / (4 * k * tt)) * 1000
    np.testing.assert_allclose(c, np.where(t > 0, exact, 0.0), rtol=1e-9, atol=1e-12)

    # the peak passes at L / V and its height is the Gaussian's M / (A sqrt(4 π K L/V))
    t_peak = 20_000 / v
    assert t[np.argmax(c)] == pytest.approx(t_peak, rel=0.01)
    assert c.max() == pytest.approx(mass / (area * np.sqrt(4 * np.pi * k * t_peak)) * 1000, rel=0.01)
    late = ds["reach_peak_time"].sel(reach=1).to_numpy() - np.datetime64(T0 + pd.Timedelta(seconds=t_peak), "ns")
    assert abs(late) < np.timedelta64(1, "ms")


def test_travel_times_along_a_chain():
    reaches = chain([1000.0, 3000.0, 2000.0], [5.0, 20.0, 60.0], [0.02, 0.01, 0.004])
    tt = travel_times(reaches, 1, 400.0)
    assert tt["id"].tolist() == [1, 2, 3]
    np.testing.assert_allclose(tt["distance_km"], [0.6, 3.6, 5.6])
    q = reaches["qa_m3s"].to_numpy()
    area, slope = reaches["upstream_area_km2"].to_numpy() * 1e6, reaches["slope"].to_numpy()
    vp = peak_velocity(area, q, q, slope)
    vmp = max_probable_velocity(area, q, q, slope)
    np.testing.assert_allclose(tt["peak_hours"], np.cumsum(np.array([600, 3000, 2000]) / vp) / 3600)
    np.testing.assert_allclose(tt["earliest_peak_hours"], np.cumsum(np.array([600, 3000, 2000]) / vmp) / 3600)
    np.testing.assert_allclose(tt["leading_hours"], LEADING_EDGE_FRACTION * tt["peak_hours"])
    assert (tt["earliest_peak_hours"] < tt["peak_hours"]).all()
    assert (tt["peak_hours"] < tt["trailing_hours"]).all()
    assert tt["variance_s2"].is_monotonic_increasing

    # at a higher flow the plume travels faster
    fast = travel_times(reaches, 1, 400.0, flow_ratio=3.0)
    assert (fast["peak_hours"] < tt["peak_hours"]).all()
    np.testing.assert_allclose(fast["discharge_m3s"], 3 * q)

    # bounded by distance
    short = travel_times(reaches, 1, 400.0, max_km=2.0)
    assert short["id"].tolist() == [1, 2]
    np.testing.assert_allclose(short["distance_km"], [0.6, 2.0])


def test_mass_is_conserved_through_every_section():
    reaches = chain([1000.0, 3000.0, 2000.0, 5000.0], [5.0, 20.0, 60.0, 150.0], [0.02, 0.01, 0.004, 0.002])
    sites = pd.DataFrame({"id": ["a", "b", "upstream"], "reach_id": [2, 4, 1], "measure_m": [1500.0, 10.0, 100.0]})
    end = travel_times(reaches, 1, 500.0)["trailing_hours"].max()
    ds = simulate(reaches, 1, 500.0, T0, mass_kg=25.0, sites=sites, times=grid(6 * end, 200_001))
    np.testing.assert_allclose(mass_through(ds, "reach"), 25.0, rtol=0.01)
    np.testing.assert_allclose(mass_through(ds, "site"), 25.0, rtol=0.01)
    # a site above the release sees nothing and is left out
    assert ds["site"].values.tolist() == ["a", "b"]


def test_mass_is_conserved_on_the_valley_network(valley):
    loc = valley.locate(*synthetic.cell_lonlat(5, 15))
    reaches = valley.network.reaches
    end = travel_times(reaches, loc.reach_id, loc.measure_m)["trailing_hours"].max()
    ds = simulate(reaches, loc.reach_id, loc.measure_m, T0, mass_kg=2.0, times=grid(8 * end, 200_001))
    assert ds["reach"].values.tolist() == valley.network.downstream_ids(loc.reach_id)
    np.testing.assert_allclose(mass_through(ds), 2.0, rtol=0.01)


def test_a_confluence_dilutes_by_the_discharge_ratio(valley):
    reaches = valley.network.reaches
    # just above the confluence (end of reach 1) and just below it (start of reach 4): same cloud, more water
    sites = pd.DataFrame({"id": ["below"], "reach_id": [4], "measure_m": [0.0]})
    ds = simulate(reaches, 1, 0.0, T0, mass_kg=1.0, sites=sites, times=grid(4.0, 20001))
    q1, q4 = reaches.at[1, "qa_m3s"], reaches.at[4, "qa_m3s"]
    assert q4 > q1
    above = ds["concentration"].sel(reach=1)
    below = ds["site_concentration"].sel(site="below")
    assert float(below.max()) == pytest.approx(float(above.max()) * q1 / q4, rel=1e-9)
    assert ds["site_discharge"].sel(site="below").item() == pytest.approx(q4)
    assert ds["site_distance_km"].item() == pytest.approx(ds["reach_distance_km"].sel(reach=1).item())


def test_decay_removes_the_expected_share():
    reaches = chain([5000.0, 5000.0], [50.0, 80.0], [0.005, 0.004])
    tt = travel_times(reaches, 1, 0.0)
    t_peak = tt["peak_hours"].to_numpy()
    end = tt["trailing_hours"].max()
    k = 1.0 / t_peak[-1]  # one e-folding by the time the peak reaches the outlet
    times = grid(6 * end, 200_001)
    kept = simulate(reaches, 1, 0.0, T0, mass_kg=3.0, times=times)
    gone = simulate(reaches, 1, 0.0, T0, mass_kg=3.0, decay_per_hour=k, times=times)
    np.testing.assert_allclose(mass_through(kept), 3.0, rtol=0.01)
    # M e^{-k t} with t the peak's travel time (exact for a sharp cloud; a spread cloud keeps slightly more)
    np.testing.assert_allclose(mass_through(gone), 3.0 * np.exp(-k * t_peak), rtol=0.02)
    assert (gone["reach_peak_concentration"] < kept["reach_peak_concentration"]).all()


def test_a_steady_release_reaches_rate_over_discharge():
    # a release much longer than the cloud's spread: the plateau is the fully mixed rate / Q
    reaches = chain([2000.0, 3000.0], [30.0, 90.0], [0.01, 0.005])
    rate = 0.01  # kg/s
    duration = 48 * 3600.0
    tt = travel_times(reaches, 1, 0.0)
    ds = simulate(
        reaches,
        1,
        0.0,
        T0,
        rate_kg_s=rate,
        duration_s=duration,
        times=grid(6 * tt["trailing_hours"].max() + 48, 100_001),
    )
    plateau = ds["concentration"].sel(time=T0 + pd.Timedelta(hours=24), method="nearest")
    np.testing.assert_allclose(plateau, rate / reaches["qa_m3s"].to_numpy() * 1000, rtol=1e-6)
    np.testing.assert_allclose(mass_through(ds), rate * duration, rtol=0.01)
    assert ds.attrs["mass_kg"] == pytest.approx(rate * duration)
    assert (ds["reach_peak_time"] - np.datetime64(T0) > pd.Timedelta(hours=24)).all()


def test_dataset_shape_units_and_coordinates():
    reaches = chain([1000.0, 3000.0], [5.0, 20.0], [0.02, 0.01])
    sites = pd.DataFrame({"id": ["S1", "I2"], "reach_id": [2, 1], "measure_m": [500.0, 800.0]})
    ds = simulate(reaches, 1, 0.0, "2026-07-10T08:00", mass_kg=1.0, substance="NH3-N", sites=sites)
    assert ds["concentration"].dims == ("reach", "time")
    assert ds["site_concentration"].dims == ("site", "time")
    assert ds["concentration"].attrs["units"] == "mg/L"
    assert ds["site_concentration"].attrs["units"] == "mg/L"
    assert "NH3-N" in ds["concentration"].attrs["long_name"]
    assert ds["reach"].values.tolist() == [1, 2]
    np.testing.assert_allclose(ds["reach_distance_km"], [1.0, 4.0])
    assert ds["site"].values.tolist() == ["I2", "S1"]  # in downstream order
    np.testing.assert_allclose(ds["site_distance_km"], [0.8, 1.5])
    assert ds["site_reach_id"].values.tolist() == [1, 2]
    assert ds["time"].values[0] == np.datetime64(T0, "ns")
    assert (ds["reach_leading_time"] < ds["reach_peak_time"]).all()
    assert (ds["reach_peak_time"] < ds["reach_trailing_time"]).all()
    # the default time grid covers the cloud: nearly all the mass has passed the last section by its end
    assert mass_through(ds)[-1] == pytest.approx(1.0, rel=0.01)
    # further down, the cloud is lower and later
    peaks = ds["reach_peak_concentration"].to_numpy()
    assert peaks[1] < peaks[0]
    assert ds["concentration"].sel(reach=1).idxmax().item() < ds["concentration"].sel(reach=2).idxmax().item()


def test_bad_releases_name_what_is_wrong():
    reaches = chain([1000.0], [5.0], [0.02])
    with pytest.raises(UnknownReachError, match="no reach 9"):
        simulate(reaches, 9, 0.0, T0, mass_kg=1.0)
    with pytest.raises(PlumeError, match="outside reach 1"):
        simulate(reaches, 1, 5000.0, T0, mass_kg=1.0)
    with pytest.raises(PlumeError, match="positive"):
        simulate(reaches, 1, 0.0, T0, mass_kg=-1.0)
    with pytest.raises(PlumeError, match="either mass_kg or rate_kg_s"):
        simulate(reaches, 1, 0.0, T0, mass_kg=1.0, rate_kg_s=1.0, duration_s=10)
    with pytest.raises(PlumeError, match="needs duration_s"):
        simulate(reaches, 1, 0.0, T0, rate_kg_s=1.0)
    with pytest.raises(PlumeError, match="decay_per_hour"):
        simulate(reaches, 1, 0.0, T0, mass_kg=1.0, decay_per_hour=-0.1)
    with pytest.raises(PlumeError, match="sites lack"):
        simulate(reaches, 1, 0.0, T0, mass_kg=1.0, sites=pd.DataFrame({"id": ["a"], "reach_id": [1]}))
    assert issubclass(PlumeError, TwinError) and issubclass(PlumeError, ValueError)


def test_docstring_examples_run():
    result = doctest.testmod(plume)
    assert result.attempted > 0 and result.failed == 0


def test_the_twins_own_sites_get_their_curves_at_the_twins_distances(make_saved_valley):
    basin = make_saved_valley({"up": (2, "station"), "mid": (15, "intake"), "low": (35, "station")})
    loc = basin.locate(*synthetic.cell_lonlat(8, 15))
    ds = simulate(basin.network.reaches, loc.reach_id, loc.measure_m, T0, mass_kg=1.0, sites=basin.sites)
    path = basin.network.downstream(loc)
    along = basin.model.along(path, basin.sites)
    assert ds["site"].values.tolist() == along["id"].tolist() == ["mid", "low"]
    np.testing.assert_allclose(ds["site_distance_km"], along["distance_km"], atol=1e-9)
    np.testing.assert_allclose(ds["reach_distance_km"], path["to_km"], atol=1e-9)
    assert (ds["site_peak_concentration"] > 0).all()
    # the plume's clock agrees with the network's navigation (Jobson at the same flow)
    tt = travel_times(basin.network.reaches, loc.reach_id, loc.measure_m, flow_ratio=2.0)
    nav = basin.network.downstream(loc, flow_ratio=2.0)
    np.testing.assert_allclose(tt["peak_hours"], nav["peak_h"], rtol=1e-9)
    np.testing.assert_allclose(tt["earliest_peak_hours"], nav["earliest_h"], rtol=1e-9)
    np.testing.assert_allclose(tt["leading_hours"], nav["leading_h"], rtol=1e-9)
