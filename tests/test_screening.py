"""Warnings screened in the database equal the warnings evaluated over every reading (twin.analysis.screening)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin.analysis import alerts, screening
from twin.ops import readings, store

START, END = pd.Timestamp("2025-03-01T00:00Z"), pd.Timestamp("2025-04-30T23:59:59Z")
#: parameter -> (clean value, bad value) in canonical units: bad is worse than class V (or pH outside 6-9)
VALUES = {"NH3-N": (0.2, 4.0), "DO": (8.0, 1.0), "pH": (7.5, 10.0), "TP": (0.05, 0.9), "CODMn": (2.0, 20.0)}
UNITS = {"pH": "1"}
STATIONS = pd.DataFrame(
    {
        "id": ["A", "B", "C", "D", "E"],
        "water_body": ["river", "river", "lake", "river", "reservoir"],
        "target_class": [2, 3, 3, 4, 2],
    }
)


def history(seed: int) -> pd.DataFrame:
    """Random series: 4-hourly or daily, with gaps, bursts of bad values of 1-8 readings, some unusable readings."""
    rng = np.random.default_rng(seed)
    frames = []
    for station in STATIONS["id"]:
        for parameter, (clean, bad) in VALUES.items():
            step = "4h" if rng.random() < 0.8 else "1D"
            times = pd.date_range(START, END, freq=step)
            keep = rng.random(len(times)) > 0.15
            for _ in range(rng.integers(0, 3)):  # a gap of up to 3 days
                at = rng.integers(0, len(times))
                keep[at : at + rng.integers(1, 19)] = False
            times = times[keep]
            value = clean * rng.uniform(0.7, 1.3, len(times))
            for _ in range(rng.integers(0, 4)):  # bursts, some of a grade between clean and bad
                at, size = rng.integers(0, len(times)), rng.integers(1, 9)
                value[at : at + size] = (
                    rng.choice([bad, (clean + bad) / 2]) * rng.uniform(0.9, 1.1, size)[: len(value[at : at + size])]
                )
            flag = np.where(rng.random(len(times)) < 0.03, "M", "N")
            frames.append(
                pd.DataFrame(
                    {
                        "station": station,
                        "time": times,
                        "parameter": parameter,
                        "value": value.round(4),
                        "unit": UNITS.get(parameter, "mg/L"),
                        "flag": flag,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def stored(engine, frame: pd.DataFrame) -> readings.Readings:
    r = readings.Readings(engine)
    r.register_stations(STATIONS.assign(name=STATIONS["id"]))
    report = r.store(frame)
    assert report.stored == len(frame)
    return r


def full_evaluation(engine) -> pd.DataFrame:
    rows = readings.query(engine, start=START, end=END, usable_only=True)
    return alerts.evaluate(rows, STATIONS, until=END)


def assert_same_episodes(a: pd.DataFrame, b: pd.DataFrame) -> None:
    key = ["start", "station", "parameter"]
    a, b = a.sort_values(key).reset_index(drop=True), b.sort_values(key).reset_index(drop=True)
    assert a[key + ["level", "end", "end_reason", "rule"]].equals(b[key + ["level", "end", "end_reason", "rule"]])
    assert a["changes"].tolist() == b["changes"].tolist()
    assert a["trigger"].tolist() == b["trigger"].tolist()
    np.testing.assert_array_equal(a["peak_value"].to_numpy(float), b["peak_value"].to_numpy(float))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), bucket_h=st.sampled_from([4, 24, 168]))
def test_screened_warnings_equal_the_full_evaluation(seed, bucket_h):
    with tempfile.TemporaryDirectory() as tmp:
        engine = store.connect(store.sqlite_url(Path(tmp)))
        try:
            stored(engine, history(seed))
            full = full_evaluation(engine)
            screened, counts = screening.warnings_over(engine, STATIONS, START, END, bucket_s=bucket_h * 3600)
            assert_same_episodes(screened, full)
            assert counts["read"] <= counts["readings"]
        finally:
            engine.dispose()


@pytest.mark.parametrize("seed", [1, 2])
def test_screening_reads_a_fraction_of_a_mostly_clean_history(tmp_path, seed):
    engine = store.connect(store.sqlite_url(tmp_path))
    stored(engine, history(seed))
    full = full_evaluation(engine)
    screened, counts = screening.warnings_over(engine, STATIONS, START, END)
    assert len(full) > 5  # the history has warnings to find
    assert_same_episodes(screened, full)
    assert counts["read"] < 0.8 * counts["readings"]
    engine.dispose()


def test_a_policy_that_warns_on_a_rise_alone_reads_everything_and_stays_exact(tmp_path):
    policy = alerts.load_policy()
    data = policy.model_dump()
    data["levels"]["orange"].append({"id": "orange-any-rise", "rise_per_hour": 0.2})
    rise_only = alerts.parse_policy(data)
    engine = store.connect(store.sqlite_url(tmp_path))
    stored(engine, history(3))
    rows = readings.query(engine, start=START, end=END, usable_only=True)
    full = alerts.evaluate(rows, STATIONS, rise_only, until=END)
    screened, counts = screening.warnings_over(engine, STATIONS, START, END, rise_only)
    assert_same_episodes(screened, full)
    watched = rows[rows["parameter"].isin(rise_only.watched())]
    assert counts["read"] == len(watched)
    engine.dispose()


def test_screened_warnings_on_postgres_equal_the_full_evaluation(postgres_database):
    engine = store.connect(postgres_database)
    stored(engine, history(4))
    full = full_evaluation(engine)
    screened, counts = screening.warnings_over(engine, STATIONS, START, END)
    assert len(full) > 5
    assert_same_episodes(screened, full)
    assert counts["read"] < counts["readings"]
    engine.dispose()
