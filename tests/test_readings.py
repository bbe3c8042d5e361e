"""Readings: idempotent ingest with every rejected row kept, versions, and the xarray view."""

from __future__ import annotations

import queue
import signal
import sqlite3
import subprocess
import sys
import threading
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import twin

ROOT = Path(__file__).resolve().parent.parent
CNEMC_SAMPLE = ROOT / "data" / "cnemc" / "cnemc_sample_20260709_20260711.csv"
HEADER = "station,time,parameter,value,unit,flag\n"


@pytest.fixture
def basin(make_saved_valley):
    return make_saved_valley({"UP": (10, "station"), "LOW": (35, "intake")})


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_tidy_rows_are_stored_and_each_bad_row_is_kept_with_its_reason(basin, tmp_path):
    path = write(
        tmp_path,
        "r.csv",
        HEADER
        + "\n".join(
            [
                "UP,2026-07-10T08:00:00+08:00,NH3-N,0.40,mg/L,N",
                "UP,2026-07-10T08:00:00+08:00,TP,45,µg/L,N",
                "NOPE,2026-07-10T08:00:00+08:00,NH3-N,0.5,mg/L,N",
                "UP,2026-07-10T12:00:00,NH3-N,0.5,mg/L,N",
                "UP,2026-07-10T16:00:00Z,NH3-N,-0.1,mg/L,N",
                "UP,2026-07-10T16:00:00Z,pH,14.5,1,N",
                "UP,2026-07-10T16:00:00Z,NH3-N,abc,mg/L,N",
                "UP,2026-07-10T16:00:00Z,NH3-N,1,ppm,N",
                "LOW,2026-07-10T16:00:00Z,pH,7.2,,N",
                "LOW,2026-07-10T20:00:00Z,NH3-N",  # the file was cut here
            ]
        ),
    )
    report = basin.readings.ingest(path)
    assert report.stored == 3
    assert report.rejected_by_reason() == {
        "unknown station": 1,
        "time without zone": 1,
        "outside physical limits": 2,  # a negative concentration, pH above 14
        "not a number": 1,
        "unit not convertible": 1,
        "incomplete row": 1,
    }
    rej = basin.readings.rejected(report.batch_id).set_index("line_no")
    assert "NOPE" in rej.loc[4, "reason"] and rej.loc[4, "raw"].startswith("NOPE,")
    assert "ppm" in rej.loc[9, "reason"]
    assert rej.loc[6, "reason"].startswith("outside physical limits: NH3-N -0.1 mg/L is not in [0, 10000]")
    assert "pH 14.5" in rej.loc[7, "reason"]
    got = basin.readings.query().set_index(["station", "parameter"])
    assert got.loc[("UP", "TP"), "value"] == pytest.approx(0.045)  # µg/L → mg/L
    assert got.loc[("UP", "NH3-N"), "time"] == pd.Timestamp("2026-07-10T00:00Z")


def test_the_same_file_twice_is_stored_once_and_a_correction_is_a_new_version(basin, tmp_path):
    first = write(
        tmp_path,
        "a.csv",
        HEADER + "UP,2026-07-10T00:00:00Z,NH3-N,0.40,mg/L,N\nUP,2026-07-10T04:00:00Z,NH3-N,0.60,mg/L,N\n",
    )
    assert basin.readings.ingest(first).stored == 2
    again = basin.readings.ingest(first)
    assert (again.stored, again.duplicates, again.corrections) == (0, 2, 0)
    fixed = write(tmp_path, "b.csv", HEADER + "UP,2026-07-10T04:00:00Z,NH3-N,0.65,mg/L,N\n")
    corr = basin.readings.ingest(fixed)
    assert (corr.stored, corr.corrections) == (1, 1)
    # the view shows the correction; the store keeps both versions
    assert basin.readings.query()["value"].tolist() == [0.40, 0.65]
    with basin.store.connect() as conn:
        versions = conn.exec_driver_sql("SELECT value, version FROM readings ORDER BY time, version").all()
    assert versions == [(0.40, 1), (0.60, 1), (0.65, 2)]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=20))
def test_ingesting_twice_stores_once(basin, tmp_path_factory, values):
    folder = tmp_path_factory.mktemp("twice")
    lines = [f"LOW,2026-01-01T{k:02d}:00:00Z,COD,{v!r},mg/L,N" for k, v in enumerate(values)]
    path = write(folder, "t.csv", HEADER + "\n".join(lines) + "\n")
    before = len(basin.readings.query(["LOW"], ["COD"]))
    basin.readings.ingest(path)
    second = basin.readings.ingest(path)
    assert second.stored == 0
    assert len(basin.readings.query(["LOW"], ["COD"])) == max(before, len(values))


def test_xarray_view_round_trips_the_values(basin, tmp_path):
    rng = np.random.default_rng(3)
    times = pd.date_range("2026-07-01", periods=12, freq="4h", tz="UTC")
    rows = []
    for st_id in ("UP", "LOW"):
        for p, unit in (("NH3-N", "mg/L"), ("DO", "mg/L"), ("water_temperature", "°C")):
            for t in times:
                rows.append((st_id, t.strftime("%Y-%m-%dT%H:%M:%SZ"), p, round(float(rng.uniform(0, 10)), 4), unit))
    df = pd.DataFrame(rows, columns=["station", "time", "parameter", "value", "unit"]).assign(flag="N")
    path = tmp_path / "year.csv"
    df.to_csv(path, index=False)
    basin.readings.ingest(path)
    ds = basin.readings.to_xarray()
    assert set(ds.data_vars) == {"NH3-N", "DO", "water_temperature"}
    assert ds.sizes == {"station": 2, "time": 12}
    assert ds["NH3-N"].attrs["units"] == "mg/L" and ds["water_temperature"].attrs["units"] == "°C"
    assert ds["DO"].attrs["long_name"] == "dissolved oxygen"
    assert "reach_id" in ds.coords and "lon" in ds.coords
    back = ds.to_dataframe().reset_index()
    for r in df.sample(10, random_state=1).itertuples():
        t = pd.Timestamp(r.time).tz_localize(None)
        assert float(ds[r.parameter].sel(station=r.station, time=t)) == r.value
    assert len(back) == 24
    sub = basin.readings.to_xarray(
        stations=["UP"], parameters=["DO"], start="2026-07-01T08:00Z", end="2026-07-01T16:00Z"
    )
    assert list(sub.data_vars) == ["DO"] and sub.sizes == {"station": 1, "time": 3}
    last = basin.readings.latest(at="2026-07-01T09:00Z").set_index(["station", "parameter"])
    assert last.loc[("LOW", "DO"), "time"] == pd.Timestamp("2026-07-01T08:00Z")


def test_times_in_queries_need_a_zone(basin):
    with pytest.raises(twin.TwinError, match="has no zone"):
        basin.readings.query(start="2026-07-01T08:00")


def test_cnemc_sample_is_ingested_with_station_names_mapped(basin, tmp_path):
    stations = pd.read_csv(ROOT / "data" / "cnemc" / "stations.csv")
    basin.readings.register_stations(stations.drop(columns=["id"]).assign(id=stations["id"]).iloc[:-1])  # not 鲢鱼溪
    report = basin.readings.ingest(CNEMC_SAMPLE)
    assert report.format == "cnemc"
    # 鲢鱼溪 is not registered: its 4 rows are reported, the rest stored
    assert report.rejected_by_reason() == {"unknown station": 4}
    assert "鲢鱼溪" in report.rejected["reason"].iloc[0]
    raw = pd.read_csv(CNEMC_SAMPLE, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    kept = raw[raw["断面名称"] != "鲢鱼溪"]
    measured = sum((kept[c].str.strip() != "").sum() for c in twin.ops.parameters.CNEMC_HEADERS if c in kept)
    assert report.stored == measured
    got = basin.readings.query(["CN-GZ-MAOTAI"], ["DO"]).iloc[0]
    assert got["time"] == pd.Timestamp("2026-07-09T13:00Z")  # 21:00 Beijing time
    assert got["value"] == 8.06
    assert basin.readings.ingest(CNEMC_SAMPLE).stored == 0


def test_netcdf_cf_time_series_round_trip(basin, tmp_path):
    times = pd.date_range("2026-07-10", periods=6, freq="4h")
    ds = xr.Dataset(
        {
            "NH3-N": (("station", "time"), np.array([[0.1, 0.2, 0.3, 0.4, 0.5, np.nan], [1, 2, 3, 4, 5, 6]])),
            "TP": (("station", "time"), np.full((2, 6), 30.0)),
        },
        coords={"time": times, "station_id": ("station", ["UP", "LOW"])},
        attrs={"featureType": "timeSeries", "Conventions": "CF-1.8"},
    )
    ds["station_id"].attrs["cf_role"] = "timeseries_id"
    ds["NH3-N"].attrs["units"] = "mg/L"
    ds["TP"].attrs["units"] = "ug/L"
    path = tmp_path / "ts.nc"
    ds.to_netcdf(path)
    report = basin.readings.ingest(path)
    assert (report.format, report.stored) == ("netcdf", 11 + 12)
    view = basin.readings.to_xarray()
    np.testing.assert_allclose(view["NH3-N"].sel(station="LOW").values, [1, 2, 3, 4, 5, 6])
    np.testing.assert_allclose(view["TP"].values, 0.03)


def test_netcdf_of_another_feature_type_is_refused(basin, tmp_path):
    path = tmp_path / "grid.nc"
    xr.Dataset({"x": ("t", [1.0])}, attrs={"featureType": "trajectory"}).to_netcdf(path)
    with pytest.raises(twin.TwinError, match="only timeSeries"):
        basin.readings.ingest(path)


#: The child of the kill test: ingests the small files one by one, saying "committed BATCH STORED" after
#: each commit, then the big file, saying "writing BATCH" once its readings are inserted but not committed,
#: and holding that transaction open until it is killed (it gives up without committing if its stdin closes).
KILLED_INGEST = """
import os, sys
import sqlalchemy as sa
import twin

basin = twin.open(sys.argv[1])
for path in sys.argv[2:-1]:
    report = basin.readings.ingest(path)
    print("committed", report.batch_id, report.stored, flush=True)

def hold(conn, cursor, statement, parameters, context, executemany):
    if statement.lstrip().upper().startswith("INSERT INTO READINGS"):
        batch = conn.execute(sa.text("SELECT MAX(id) FROM batches")).scalar_one()
        print("writing", batch, flush=True)
        sys.stdin.read()
        os._exit(3)

sa.event.listen(basin.store, "after_cursor_execute", hold)
basin.readings.ingest(sys.argv[-1])
"""
#: How long the kill test waits for each line of its child before failing: a bound, not a measure
#: (on a loaded machine the child's imports alone take several seconds)
CHILD_WAIT_S = 300


def test_a_killed_ingest_leaves_the_store_as_its_commits_left_it(basin, tmp_path):
    first = write(tmp_path, "first.csv", HEADER + "UP,2026-01-01T00:00:00Z,COD,12,mg/L,N\n")
    assert basin.readings.ingest(first).stored == 1
    small = [
        write(tmp_path, f"small-{k}.csv", HEADER + f"UP,2026-02-0{k}T00:00:00Z,COD,{k},mg/L,N\n") for k in (1, 2, 3)
    ]
    n = 50_000
    big = pd.DataFrame(
        {
            "station": "LOW",
            "time": pd.date_range("2020-01-01", periods=n, freq="min", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
            "parameter": "COD",
            "value": 10.0,
            "unit": "mg/L",
            "flag": "N",
        }
    )
    big.to_csv(tmp_path / "big.csv", index=False)
    log = tmp_path / "child.log"
    lines: queue.Queue[str] = queue.Queue()
    command = [sys.executable, "-c", KILLED_INGEST, str(basin.path), *map(str, small), str(tmp_path / "big.csv")]
    with (
        open(log, "w") as stderr,
        subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=ROOT
        ) as proc,
    ):

        def forward() -> None:  # the child's lines, as they come, to a queue the test can wait on with a bound
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)
            lines.put("")  # the child's end

        def next_line(waiting_for: str) -> list[str]:
            try:
                line = lines.get(timeout=CHILD_WAIT_S)
            except queue.Empty:
                line = None
            if not line:
                said = f"ended (status {proc.wait()})" if line == "" else f"said nothing for {CHILD_WAIT_S} s"
                pytest.fail(f"the ingest process {said} before {waiting_for!r}; its stderr:\n{log.read_text()[-3000:]}")
            return line.split()

        reader = threading.Thread(target=forward, daemon=True)
        reader.start()
        try:
            committed = {}
            for _ in small:
                word, batch, stored = next_line("committed")
                assert word == "committed", (word, log.read_text()[-3000:])
                committed[int(batch)] = int(stored)
            word, killed_batch = next_line("writing")
            assert word == "writing"
        finally:
            proc.kill()  # SIGKILL, mid-transaction (nothing if the child has already exited)
            proc.wait()
            reader.join()
    assert proc.returncode == -signal.SIGKILL
    assert committed and all(stored == 1 for stored in committed.values())
    with closing(sqlite3.connect(basin.path / "ops.sqlite")) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        batches = dict(con.execute("SELECT id, stored FROM batches WHERE finished IS NOT NULL").fetchall())
        unfinished = con.execute("SELECT COUNT(*) FROM batches WHERE finished IS NULL").fetchone()[0]
        rows = con.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
    # every commit the ingest reported is there as it reported it; of the killed batch, nothing at all
    assert committed.items() <= batches.items() and len(batches) == 1 + len(committed)
    assert int(killed_batch) not in batches and unfinished == 0
    assert rows == sum(batches.values()) == 1 + len(small)
    with basin.store.connect() as conn:
        assert conn.execute(sa.text("SELECT value FROM readings WHERE time = 1767225600")).scalar_one() == 12.0
    # and the file whose ingest was killed goes in whole when it is ingested again
    again = basin.readings.ingest(tmp_path / "big.csv")
    assert (again.stored, again.duplicates) == (n, 0)


def test_classes_from_the_store_agree_with_the_official_cnemc_classes(basin):
    basin.readings.register_stations(pd.read_csv(ROOT / "data" / "cnemc" / "stations.csv"))
    basin.readings.ingest(CNEMC_SAMPLE)
    got = basin.classify_history()
    raw = pd.read_csv(CNEMC_SAMPLE, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    names = basin.readings.station_names()
    official = pd.DataFrame(
        {
            "station": raw["断面名称"].map(names),
            "time": pd.to_datetime(raw["监测时间"]).dt.tz_localize("Asia/Shanghai").dt.tz_convert("UTC"),
            "official": raw["水质类别"].astype(int),
        }
    )
    both = official.merge(got[["station", "time", "class"]], on=["station", "time"], how="left")
    measured = both["official"] > 0
    assert measured.sum() == 156
    assert (both.loc[measured, "class"] == both.loc[measured, "official"]).all()
    assert both.loc[~measured, "class"].isna().all()  # rows with nothing measured have no sample at all


def test_classify_at_a_time_uses_each_station_s_latest_readings(basin, tmp_path):
    path = write(
        tmp_path,
        "c.csv",
        HEADER
        + "\n".join(
            [
                "UP,2026-07-10T00:00:00Z,NH3-N,0.4,mg/L,N",  # class II
                "UP,2026-07-10T04:00:00Z,NH3-N,1.2,mg/L,N",  # class IV
                "UP,2026-07-10T04:00:00Z,DO,7.6,mg/L,N",  # class I
                "LOW,2026-07-09T00:00:00Z,TP,0.5,mg/L,N",  # 劣V, but stale at the time asked
            ]
        ),
    )
    basin.readings.ingest(path)
    at = basin.classify(at="2026-07-10T05:00Z").set_index("station")
    assert at.loc["UP", "label"] == "IV" and at.loc["UP", "deciding"] == "NH3-N"
    assert bool(at.loc["UP", "exceeds"])  # the default target class is III
    assert at.loc["UP", "NH3-N_multiple"] == pytest.approx(1.2 / 1.0 - 1)
    assert "LOW" not in at.index
    earlier = basin.classify(at="2026-07-10T01:00Z").set_index("station")
    assert earlier.loc["UP", "label"] == "II"


def test_hj212_messages_are_ingested_and_a_bad_crc_is_rejected(basin, tmp_path):
    from twin.ops.hj212 import frame

    def seg(mn: str, t: str, nh3: str, ph: str = "7.4") -> str:
        return (
            f"QN={t}000;ST=21;CN=2011;PW=123456;MN={mn};Flag=5;CP=&&DataTime={t};"
            f"w21003-Rtd={nh3},w21003-Flag=N;w01001-Rtd={ph},w01001-Flag=N&&"
        )

    good = frame(seg("UP", "20260710080000", "0.42")).strip()
    bad_crc = good[:-4] + ("0000" if good[-4:] != "0000" else "1111")
    lines = [
        good,
        bad_crc,
        frame(seg("GHOST", "20260710080000", "0.3")).strip(),
        frame(seg("UP", "20260710120000", "-0.2", ph="15.1")).strip(),
    ]
    path = write(tmp_path, "hj.txt", "\r\n".join(lines) + "\r\n")
    report = basin.readings.ingest(path)
    assert report.format == "hj212"
    assert report.stored == 2  # NH3-N and pH at 08:00; the last message has only bad values
    reasons = report.rejected["reason"].tolist()
    assert any("CRC" in r for r in reasons)
    assert any("GHOST" in r for r in reasons)
    assert any("NH3-N -0.2" in r for r in reasons) and any("pH 15.1" in r for r in reasons)
    got = basin.readings.query(["UP"], ["NH3-N"])
    assert got["value"].tolist() == [0.42]
    assert got["time"].iloc[0] == pd.Timestamp("2026-07-10T00:00Z")  # 08:00 Beijing time


def test_a_simulated_year_is_plausible_and_flagged(basin, tmp_path):
    from twin.analysis.simulate import simulate_year

    df = simulate_year(["UP", "LOW"], 2025, freq="1D")
    path = tmp_path / "sim.csv"
    df.to_csv(path, index=False)
    report = basin.readings.ingest(path)
    assert report.stored == len(df) and report.rejected.empty
    assert set(basin.readings.query()["flag"]) == {"S"}
    ds = basin.readings.to_xarray()
    assert ds.sizes["time"] == 365
    summer = float(ds["water_temperature"].sel(time="2025-07").mean())
    winter = float(ds["water_temperature"].sel(time="2025-01").mean())
    assert summer > winter + 8
    classes = basin.classify_history()
    assert classes["class"].between(1, 3).mean() > 0.95  # a clean river, mostly class I-II
