"""Ingest robustness (issue 11): one bad value never costs the rest of its batch.

Each failure an attacker and a data clerk found has a test here: impossible times,
NetCDF times without units or in other calendars, values and times outside physical
limits, readings flagged faulty by their source, GBK files, below-detection notations,
a file whose every row is rejected, and concurrent writers.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import xarray as xr
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import twin
from twin.cli import cli
from twin.ops import flags
from twin.ops.errors import IngestError
from twin.ops.hj212 import frame
from twin.ops.parameters import PARAMETERS, physical_limits

from .test_postgres import pg_basin  # noqa: F401  (the PostgreSQL fixture, one database per test)

ROOT = Path(__file__).resolve().parent.parent
CNEMC_SAMPLE = ROOT / "data" / "cnemc" / "cnemc_sample_20260709_20260711.csv"
HEADER = "station,time,parameter,value,unit,flag\n"


@pytest.fixture
def basin(make_saved_valley):
    return make_saved_valley({"UP": (10, "station"), "LOW": (35, "station")})


def write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return path


def reasons(report) -> dict[int, str]:
    return dict(zip(report.rejected["line_no"].astype(int), report.rejected["reason"]))


def hj212_line(mn: str, data_time: str, pollutants: dict[str, tuple[str, str]], cn: str = "2061") -> str:
    field = "Rtd" if cn == "2011" else "Avg"
    cp = ";".join(f"{code}-{field}={v},{code}-Flag={f}" for code, (v, f) in pollutants.items())
    return frame(f"QN={data_time}000;ST=21;CN={cn};PW=123456;MN={mn};Flag=5;CP=&&DataTime={data_time};{cp}&&").strip()


# ---------------------------------------------------------------------------
# impossible times
# ---------------------------------------------------------------------------
SIX_ROWS = HEADER + "\n".join(
    [
        "UP,2026-07-10T08:00Z,NH3-N,0.40,mg/L,N",
        "UP,2027-02-29T10:00Z,NH3-N,0.41,mg/L,N",  # 2027 is not a leap year
        "UP,2026-07-10T12:99:00Z,NH3-N,0.42,mg/L,N",  # no minute 99
        "UP,2026-07-10T16:00Z,NH3-N,0.43,mg/L,N",
        "LOW,2026-07-10T08:00+08:00,TP,0.05,mg/L,N",
        "LOW,2026-07-10T12:00+08:00,TP,0.06,mg/L,N",
    ]
)


def test_an_impossible_time_with_a_zone_rejects_its_row_and_the_rest_is_stored(basin, tmp_path):
    report = basin.readings.ingest(write(tmp_path, "six.csv", SIX_ROWS))
    assert report.stored == 4
    why = reasons(report)
    assert why[3] == "unreadable time: 2027-02-29T10:00Z is not a valid date and time"
    assert why[4] == "unreadable time: 2026-07-10T12:99:00Z is not a valid date and time"
    raw = basin.readings.rejected(report.batch_id).set_index("line_no")["raw"]
    assert raw[3] == "UP,2027-02-29T10:00Z,NH3-N,0.41,mg/L,N"  # the row as written, kept
    assert sorted(basin.readings.query(["UP"])["value"]) == [0.40, 0.43]


def test_an_impossible_time_on_the_command_line_is_a_count_not_a_traceback(basin, tmp_path):
    out = CliRunner().invoke(cli, ["ingest", str(basin.path), str(write(tmp_path, "six.csv", SIX_ROWS))])
    assert out.exit_code == 0, out.output
    counts = json.loads(out.stdout)
    assert (counts["stored"], counts["rejected_by_reason"]) == (4, {"unreadable time": 2})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    stamps=st.lists(
        st.tuples(
            st.integers(1970, 2030), st.integers(1, 13), st.integers(1, 31), st.integers(0, 25), st.integers(0, 61)
        ),
        min_size=1,
        max_size=12,
    )
)
def test_every_readable_plausible_time_is_stored_and_every_other_is_rejected(basin, tmp_path_factory, stamps):
    folder = tmp_path_factory.mktemp("times")
    lines = [
        f"UP,{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:00Z,COD,{k},mg/L,N" for k, (y, mo, d, h, mi) in enumerate(stamps)
    ]
    report = basin.readings.ingest(write(folder, "t.csv", HEADER + "\n".join(lines) + "\n"))

    def valid(y: int, mo: int, d: int, h: int, mi: int) -> bool:
        try:
            t = pd.Timestamp(year=y, month=mo, day=d, hour=h, minute=mi, tz="UTC")
        except ValueError:
            return False
        return pd.Timestamp("1980-01-01", tz="UTC") <= t <= pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=24)

    good = sum(valid(*s) for s in stamps)
    assert report.stored + report.duplicates == good
    assert len(report.rejected) == len(stamps) - good
    assert set(report.rejected_by_reason()) <= {"unreadable time", "time outside plausible window"}


def test_a_posted_batch_with_an_impossible_time_is_answered_with_its_rejected_row(basin):
    from twin_web import create_app

    from .webauth import bearer, token

    assert basin.readings.query().empty  # the store is open, its stations registered
    tok = token(basin.path, "up-logger", "station", stations=["UP"])
    app = create_app(basin.path, testing=True)
    rows = [
        {"station": "UP", "time": t, "parameter": "NH3-N", "value": 0.5, "unit": "mg/L"}
        for t in ("2026-07-11T08:00Z", "2027-02-29T10:00Z", "2026-07-11T12:00Z", "1900-01-01T00:00Z")
    ]
    resp = app.test_client().post("/api/readings", json=rows, headers=bearer(tok))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["stored"] == 2 and body["rejected"] == 2
    assert [r["line"] for r in body["rejected_rows"]] == [3, 5]
    assert body["rejected_rows"][0]["reason"].startswith("unreadable time: 2027-02-29T10:00Z")
    assert body["rejected_rows"][1]["reason"].startswith("time outside plausible window: 1900-01-01T00:00:00Z")


# ---------------------------------------------------------------------------
# NetCDF times
# ---------------------------------------------------------------------------
def _nc(path: Path, time_values, time_attrs: dict, values=None, time_dims=("time",)) -> Path:
    n = len(time_values) if len(time_dims) == 1 else np.shape(time_values)[-1]
    values = np.array([[0.1 * (k + 1) for k in range(n)], [1.0 + k for k in range(n)]]) if values is None else values
    obs_dim = time_dims[-1]
    ds = xr.Dataset(
        {"NH3-N": (("station", obs_dim), values), "station_id": ("station", ["UP", "LOW"])},
        attrs={"featureType": "timeSeries", "Conventions": "CF-1.8"},
    )
    ds["time"] = (time_dims, np.asarray(time_values, dtype="float64"), time_attrs)
    ds["station_id"].attrs["cf_role"] = "timeseries_id"
    ds["NH3-N"].attrs["units"] = "mg/L"
    ds.to_netcdf(path)
    return path


def test_a_netcdf_time_without_units_is_refused_with_the_reason(basin, tmp_path):
    path = _nc(tmp_path / "nounits.nc", [0, 4, 8], {})
    with pytest.raises(IngestError, match="the time variable has no CF units .*hours since"):
        basin.readings.ingest(path)
    assert basin.readings.query().empty  # nothing at 1970


def test_a_noleap_calendar_is_read(basin, tmp_path):
    # day 59 of 2024 in a calendar without 29 February is 1 March
    path = _nc(tmp_path / "noleap.nc", [58, 59, 60], {"units": "days since 2024-01-01", "calendar": "noleap"})
    report = basin.readings.ingest(path)
    assert report.stored == 6
    got = basin.readings.query(["UP"])["time"].tolist()
    assert got == [pd.Timestamp(t, tz="UTC") for t in ("2024-02-28", "2024-03-01", "2024-03-02")]


def test_a_360_day_date_that_does_not_exist_rejects_only_its_rows(basin, tmp_path):
    # a 360-day calendar has 30 February: day 59 of 2024 (days 0-29 are January)
    path = _nc(tmp_path / "d360.nc", [58, 59, 60], {"units": "days since 2024-01-01", "calendar": "360_day"})
    report = basin.readings.ingest(path)
    assert report.stored == 4
    assert report.rejected_by_reason() == {"unreadable time": 2}
    assert report.rejected["raw"].tolist() == ["UP NH3-N 2024-02-30T00:00:00", "LOW NH3-N 2024-02-30T00:00:00"]


def test_a_time_along_the_obs_dimension_is_read(basin, tmp_path):
    path = _nc(tmp_path / "obs.nc", [0, 4, 8], {"units": "hours since 2026-07-10 00:00:00"}, time_dims=("obs",))
    report = basin.readings.ingest(path)
    assert report.stored == 6
    view = basin.readings.to_xarray()
    np.testing.assert_allclose(view["NH3-N"].sel(station="LOW").values, [1, 2, 3])
    assert pd.Timestamp(view["time"].values[-1]) == pd.Timestamp("2026-07-10T08:00")


def test_a_time_per_station_and_obs_is_read(basin, tmp_path):
    times = [[0, 4, 8], [1, 5, 9]]
    path = _nc(tmp_path / "tso.nc", times, {"units": "hours since 2026-07-10"}, time_dims=("station", "obs"))
    assert basin.readings.ingest(path).stored == 6
    low = basin.readings.query(["LOW"])
    assert low["time"].dt.hour.tolist() == [1, 5, 9]


# ---------------------------------------------------------------------------
# physical limits and the time window
# ---------------------------------------------------------------------------
def test_the_limits_table_covers_every_parameter_with_a_source():
    table = physical_limits()
    assert set(table.index) == set(PARAMETERS)
    assert (table["min"] < table["max"]).all()
    assert table.loc["pH", ["min", "max"]].tolist() == [0.0, 14.0]
    for p, row in table.iterrows():
        assert row["unit"] == PARAMETERS[p].unit
        assert any(word in row["source"] for word in ("definition", "physics", "ours")), p
        if PARAMETERS[p].unit in ("mg/L", "cells/L", "NTU", "µS/cm"):
            assert row["min"] == 0  # concentrations and counts are never negative


def test_values_and_times_outside_physical_limits_are_rejected_each_with_its_reason(basin, tmp_path):
    path = write(
        tmp_path,
        "bad.csv",
        HEADER
        + "\n".join(
            [
                "UP,2026-07-10T00:00Z,NH3-N,inf,mg/L,N",
                "UP,2026-07-10T01:00Z,COD,1e308,mg/L,N",
                "UP,2026-07-10T02:00Z,water_temperature,-999,°C,N",
                "UP,2026-07-10T03:00Z,DO,500,mg/L,N",
                "UP,1900-01-01T00:00Z,NH3-N,0.5,mg/L,N",
                "UP,9999-12-31T00:00Z,NH3-N,0.5,mg/L,N",
                "UP,2026-07-10T04:00Z,NH3-N,0.5,mg/L,N",
            ]
        ),
    )
    report = basin.readings.ingest(path)
    assert report.stored == 1
    why = reasons(report)
    assert why[2] == "outside physical limits: NH3-N inf mg/L is not in [0, 10000] (twin/data/physical_limits.csv)"
    assert why[3].startswith("outside physical limits: COD 1e+308 mg/L")
    assert why[4].startswith("outside physical limits: water_temperature -999 °C is not in [-5, 100]")
    assert why[5].startswith("outside physical limits: DO 500 mg/L")
    assert why[6].startswith("time outside plausible window: 1900-01-01T00:00:00Z is before 1980-01-01")
    assert why[7].startswith("time outside plausible window: 9999-12-31T00:00:00Z is after")
    # nothing of it reaches a class: the one stored reading is class II
    assert basin.classify_history()["label"].tolist() == ["II"]


def test_hj212_values_go_through_the_same_limits(basin, tmp_path):
    lines = [
        hj212_line("UP", "20260710080000", {"w21003": ("-0.3", "N"), "w01001": ("15.2", "N"), "w01009": ("8.1", "N")}),
        hj212_line("UP", "99991231080000", {"w01009": ("8.0", "N")}),
    ]
    report = basin.readings.ingest(write(tmp_path, "hj.txt", "\r\n".join(lines) + "\r\n"))
    assert report.stored == 1
    assert sorted(report.rejected["reason"].str.slice(0, 36)) == [
        "outside physical limits: NH3-N -0.3 ",
        "outside physical limits: pH 15.2 1 i",
        "time outside plausible window: 9999-",
    ]


def test_the_time_window_is_a_setting(basin, tmp_path, monkeypatch):
    path = write(tmp_path, "old.csv", HEADER + "UP,1975-06-01T00:00Z,NH3-N,0.5,mg/L,N\n")
    assert basin.readings.ingest(path).rejected_by_reason() == {"time outside plausible window": 1}
    monkeypatch.setenv("TWIN_INGEST_EARLIEST", "1970-01-01T00:00Z")
    assert basin.readings.ingest(path).stored == 1
    monkeypatch.setenv("TWIN_INGEST_EARLIEST", "1970-01-01")  # no zone
    with pytest.raises(twin.TwinError, match="ingest_earliest"):
        basin.readings.ingest(path)
    monkeypatch.setenv("TWIN_INGEST_FUTURE_HOURS", "soon")
    with pytest.raises(twin.TwinError, match="TWIN_INGEST_FUTURE_HOURS='soon' is not a float"):
        basin.readings.ingest(path)


# ---------------------------------------------------------------------------
# flags: stored, never classified, warned on or traced
# ---------------------------------------------------------------------------
def test_the_usable_flags_are_one_constant():
    assert set(flags.USABLE_FLAGS) == {"", "N", "S"}
    assert set(flags.HJ212_FLAGS.values()) - flags.USABLE_FLAGS == {"F", "M", "H", "D", "C", "T", "B"}
    assert flags.usable(pd.Series(["N", "D", None, "S", "H"])).tolist() == [True, False, True, True, False]


def test_hj212_faulty_readings_are_stored_with_their_flag_and_never_classified(basin, tmp_path):
    lines = [hj212_line("UP", "20260710080000", {"w21003": ("0.30", "N")})]  # class II
    lines += [
        hj212_line("UP", f"2026071{d}080000", {"w21003": ("5.0", f)})  # 劣V if it counted
        for d, f in zip("123456789", "FMSDCTB")
    ]
    report = basin.readings.ingest(write(tmp_path, "hj.txt", "\r\n".join(lines) + "\r\n"))
    assert report.stored == 8 and report.rejected.empty
    stored = basin.readings.query(["UP"]).sort_values("time")
    assert stored["flag"].tolist() == ["N", "F", "M", "H", "D", "C", "T", "B"]  # HJ 212's S is the twin's H
    history = basin.classify_history()
    assert history["label"].tolist() == ["II"]  # only the normal reading has a class
    at = basin.classify(at="2026-07-18T09:00Z", max_age_hours=24 * 10).set_index("station")
    assert at.loc["UP", "label"] == "II" and at.loc["UP", "NH3-N_value"] == 0.30


def test_faulty_readings_raise_no_warning(basin, tmp_path):
    from twin.analysis import alerts

    sent = [("0.30", "N"), ("6.0", "D"), ("6.0", "T"), ("6.0", "S"), ("6.0", "C"), ("0.30", "N")]  # S: set by hand
    lines = [hj212_line("UP", f"20260710{4 * h:02d}0000", {"w21003": sent[h]}) for h in range(len(sent))]
    assert basin.readings.ingest(write(tmp_path, "w.txt", "\r\n".join(lines) + "\r\n")).stored == 6
    readings = basin.readings.query()
    stations = pd.DataFrame({"id": ["UP", "LOW"], "water_body": "river", "target_class": 3})
    assert alerts.evaluate(readings, stations).empty
    normal = readings.assign(flag="N")  # the same values, had the analyser been fine
    assert not alerts.evaluate(normal, stations).empty


def test_faulty_readings_are_not_traced(basin, tmp_path):
    from twin.analysis.tracing import TraceError, trace_upstream

    rows = [f"LOW,2026-07-10T{h:02d}:00Z,As,{v},mg/L,D" for h, v in [(0, 0.002), (4, 0.5), (8, 0.9), (12, 0.3)]]
    basin.readings.ingest(write(tmp_path, "tr.csv", HEADER + "\n".join(rows) + "\n"))
    assert len(basin.readings.query(["LOW"], ["As"])) == 4  # stored
    with pytest.raises(TraceError, match="no As readings"):
        trace_upstream(basin.model, basin.store, "LOW", "As", "2026-07-10T12:00Z", window_hours=12)


def test_a_tidy_file_uses_the_twins_flags_and_an_unknown_flag_is_rejected(basin, tmp_path):
    rows = [
        "UP,2026-07-10T00:00Z,NH3-N,0.3,mg/L,S",
        "UP,2026-07-10T04:00Z,NH3-N,0.3,mg/L,X",
        "UP,2026-07-10T08:00Z,NH3-N,0.3,mg/L,",
    ]
    report = basin.readings.ingest(write(tmp_path, "f.csv", HEADER + "\n".join(rows) + "\n"))
    assert report.stored == 2
    assert reasons(report)[3].startswith("unknown flag: X (allowed: none, N, S, F, M, H, D, C, T, B")
    assert len(basin.classify_history()) == 2  # simulated and unflagged readings count


def test_a_cnemc_status_column_flags_its_row(basin, tmp_path):
    basin.readings.register_stations(pd.DataFrame({"id": ["CN-A"], "name": ["甲站"]}))
    text = (
        "断面名称,监测时间,氨氮(mg/L),总磷(mg/L),状态\n"
        "甲站,2026-07-09 20:00,0.3,0.05,正常\n"
        "甲站,2026-07-10 00:00,9.9,0.9,维护\n"
        "甲站,2026-07-10 04:00,0.3,0.05,外星人\n"
    )
    report = basin.readings.ingest(write(tmp_path, "cn.csv", text))
    assert report.stored == 4
    assert reasons(report)[4].startswith("unknown status: 状态 外星人")
    assert sorted(basin.readings.query(["CN-A"])["flag"]) == ["M", "M", "N", "N"]
    assert basin.classify_history(stations=["CN-A"])["label"].tolist() == ["II"]


# ---------------------------------------------------------------------------
# Chinese exports: GBK, dates with slashes, below-detection notations
# ---------------------------------------------------------------------------
def test_a_gbk_cnemc_export_is_read_like_the_utf8_one(basin, tmp_path):
    basin.readings.register_stations(pd.read_csv(ROOT / "data" / "cnemc" / "stations.csv"))
    text = CNEMC_SAMPLE.read_text(encoding="utf-8-sig")
    gbk = write(tmp_path, "cnemc_gbk.csv", text, encoding="gbk")
    report = basin.readings.ingest(gbk)
    assert report.format == "cnemc" and report.rejected.empty
    again = basin.readings.ingest(CNEMC_SAMPLE)  # the same readings, in UTF-8
    assert report.stored > 100 and (again.stored, again.duplicates) == (0, report.stored)


def test_a_tidy_file_in_gb18030_is_read(basin, tmp_path):
    report = basin.readings.ingest(
        write(tmp_path, "t.csv", HEADER + "UP,2026-07-10T00:00Z,water_temperature,21.5,℃,N\n", "gb18030")
    )
    assert report.stored == 1 and basin.readings.query()["value"].tolist() == [21.5]


def test_a_file_in_no_known_encoding_says_what_to_do(basin, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(HEADER.encode() + b"UP,2026-07-10T00:00Z,NH3-N,0.3,mg/L,\x80\xff\n")
    with pytest.raises(IngestError, match=r"neither UTF-8 nor GB18030.*convert it to UTF-8"):
        basin.readings.ingest(path)
    out = CliRunner().invoke(cli, ["ingest", str(basin.path), str(path)])
    assert out.exit_code == 1 and "convert it to UTF-8" in out.output and "Traceback" not in out.output


def test_cnemc_dates_with_slashes_and_no_data_dashes_are_read(basin, tmp_path):
    basin.readings.register_stations(pd.DataFrame({"id": ["CN-A"], "name": ["甲站"]}))
    text = "断面名称,监测时间,氨氮(mg/L),总磷(mg/L)\n甲站,2026/7/9 21:00,0.3,--\n甲站,2026/07/10 1:00,0.4,0.05\n"
    report = basin.readings.ingest(write(tmp_path, "cn.csv", text))
    assert (report.stored, report.rejected.empty) == (3, True)
    got = basin.readings.query(["CN-A"]).sort_values("time")["time"].tolist()
    assert got == [pd.Timestamp(t, tz="UTC") for t in ("2026-07-09T13:00", "2026-07-09T17:00", "2026-07-09T17:00")]


def test_below_detection_values_are_stored_with_their_limit(basin, tmp_path):
    rows = [
        "UP,2026-07-10T00:00Z,Hg,<0.0001,mg/L,N",
        "UP,2026-07-10T00:00Z,NH3-N,0.025L,mg/L,N",
        "UP,2026-07-10T00:00Z,Cd,ND,mg/L,N",
        "UP,2026-07-10T00:00Z,As,< 5,µg/L,N",  # the limit is converted like a value
        "UP,2026-07-10T00:00Z,pH,<1,1,N",
    ]
    report = basin.readings.ingest(write(tmp_path, "dl.csv", HEADER + "\n".join(rows) + "\n"))
    assert report.stored == 4
    assert reasons(report)[6] == "below-detection notation for a parameter without detection limit: pH <1"
    got = basin.readings.query().set_index("parameter")
    assert got.loc["Hg", ["value", "qualifier"]].tolist() == [0.0001, "<"]
    assert got.loc["NH3-N", ["value", "qualifier"]].tolist() == [0.025, "<"]
    assert got.loc["Cd", ["value", "qualifier"]].tolist() == [0.0, "ND"]
    assert got.loc["As", "value"] == pytest.approx(0.005) and got.loc["As", "qualifier"] == "<"
    # classified at the limit: the worst the true value can be (Hg below 0.0001 is at worst class III)
    sample = basin.classify_history().iloc[0]
    assert (sample["Hg_class"], sample["NH3-N_class"], sample["Cd_class"]) == (3, 1, 1)
    view = basin.readings.to_xarray()
    assert view["Hg"].attrs["ancillary_variables"] == "Hg_qualifier"
    assert view["Hg_qualifier"].attrs["flag_meanings"] == "measured below_detection_limit not_detected"
    assert int(view["Cd_qualifier"].sel(station="UP").item()) == 2
    assert "pH_qualifier" not in view
    # the same notation again is a duplicate; the measured value at the limit is a correction
    assert basin.readings.ingest(write(tmp_path, "dl2.csv", HEADER + rows[0] + "\n")).duplicates == 1
    fixed = basin.readings.ingest(write(tmp_path, "dl3.csv", HEADER + "UP,2026-07-10T00:00Z,Hg,0.0001,mg/L,N\n"))
    assert fixed.corrections == 1
    assert "Hg_qualifier" not in basin.readings.to_xarray()


# ---------------------------------------------------------------------------
# a file whose every row is rejected
# ---------------------------------------------------------------------------
def test_ingest_exits_1_with_the_counts_when_every_row_is_rejected(basin, tmp_path):
    path = write(
        tmp_path, "all.csv", HEADER + "GHOST,2026-07-10T00:00Z,NH3-N,0.3,mg/L,N\nUP,2026-07-10T00:00Z,NH3-N,-1,mg/L,N\n"
    )
    out = CliRunner().invoke(cli, ["ingest", str(basin.path), str(path)])
    assert out.exit_code == 1
    counts = json.loads(out.stdout.splitlines()[0])
    assert counts["stored"] == 0 and counts["rejected"] == 2
    assert "every row of" in out.stderr and "nothing was stored" in out.stderr
    again = write(tmp_path, "ok.csv", HEADER + "UP,2026-07-10T00:00Z,NH3-N,0.3,mg/L,N\n")
    assert CliRunner().invoke(cli, ["ingest", str(basin.path), str(again)]).exit_code == 0
    assert CliRunner().invoke(cli, ["ingest", str(basin.path), str(again)]).exit_code == 0  # all duplicates: fine


# ---------------------------------------------------------------------------
# the migration
# ---------------------------------------------------------------------------
def test_migration_0006_renames_hj212_set_values_and_downgrades(tmp_path):
    from twin.ops import store

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ops.sqlite'}")
    store.migrate(engine, "0005")
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO stations VALUES ('UP', 'Up', 'station', 'river', 3, NULL, NULL, NULL, NULL)")
        conn.exec_driver_sql("INSERT INTO datastreams (station_id, parameter, unit) VALUES ('UP', 'DO', 'mg/L')")
        for k, fmt in enumerate(("hj212", "tidy"), start=1):
            conn.exec_driver_sql(f"INSERT INTO batches (id, source, format, started) VALUES ({k}, 'x', '{fmt}', 0)")
            conn.exec_driver_sql(
                "INSERT INTO readings (datastream_id, time, tz_offset_min, value, flag, version, batch_id, current) "
                f"VALUES (1, {k}, 0, 8.0, 'S', 1, {k}, 1)"
            )
    store.migrate(engine, "head")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT flag, qualifier FROM readings ORDER BY time").all() == [
            ("H", ""),
            ("S", ""),
        ]
    store.downgrade(engine, "0005")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT flag FROM readings ORDER BY time").scalars().all() == ["S", "S"]
        assert "qualifier" not in {c["name"] for c in sa.inspect(conn).get_columns("readings")}
    engine.dispose()


# ---------------------------------------------------------------------------
# several writers
# ---------------------------------------------------------------------------
WRITERS, BATCHES = 4, 3
TIMES = pd.date_range("2026-07-10", periods=6, freq="4h", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _overlapping_batches(folder: Path) -> list[list[Path]]:
    """Per writer, batches of the same stations, parameters and times, each value its own (writer, batch)."""
    out = []
    for w in range(WRITERS):
        paths = []
        for b in range(BATCHES):
            value = 1.0 + w / 10 + b / 1000
            lines = [
                f"{s},{t},{p},{value},mg/L,N" for s in ("UP", "LOW") for p in ("NH3-N", "TP", "COD") for t in TIMES
            ]
            paths.append(write(folder, f"w{w}b{b}.csv", HEADER + "\n".join(lines) + "\n"))
        out.append(paths)
    return out


def concurrent_ingests(basin: twin.BasinTwin, folder: Path) -> None:
    """Writers ingesting overlapping batches at once: every reading of every batch is kept, versions 1..k."""
    plan = _overlapping_batches(folder)
    engine = basin.store  # opened (and migrated) once, before the writers start
    start = threading.Barrier(WRITERS)
    errors: list[BaseException] = []
    reports = []

    def writer(paths: list[Path]) -> None:
        readings = twin.ops.readings.Readings(engine)
        start.wait()
        for p in paths:
            try:
                reports.append(readings.ingest(p))
            except BaseException as err:  # reported below, with the others
                errors.append(err)

    threads = [threading.Thread(target=writer, args=(paths,)) for paths in plan]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    per_batch = 2 * 3 * len(TIMES)
    assert sorted(r.stored for r in reports) == [per_batch] * (WRITERS * BATCHES)
    with engine.connect() as conn:
        rows = pd.DataFrame(
            conn.exec_driver_sql("SELECT datastream_id, time, value, version, current FROM readings").all(),
            columns=["ds", "time", "value", "version", "current"],
        )
        streams = conn.exec_driver_sql("SELECT COUNT(*) FROM datastreams").scalar_one()
    assert streams == 6  # one per station and parameter, whoever made it first
    n = WRITERS * BATCHES
    assert len(rows) == 6 * len(TIMES) * n
    written = sorted(round(1.0 + w / 10 + b / 1000, 6) for w in range(WRITERS) for b in range(BATCHES))
    for _, g in rows.groupby(["ds", "time"]):
        assert sorted(g["version"]) == list(range(1, n + 1))  # no gap, no duplicate
        assert g["current"].sum() == 1 and int(g.loc[g["current"] == 1, "version"].iloc[0]) == n
        assert sorted(g["value"].round(6)) == written  # every batch's reading is there


def test_concurrent_ingests_on_sqlite_lose_nothing(basin, tmp_path):
    concurrent_ingests(basin, tmp_path)


def test_concurrent_ingests_on_postgres_lose_nothing(pg_basin, tmp_path):  # noqa: F811 (the imported fixture)
    assert pg_basin.store.dialect.name == "postgresql"
    concurrent_ingests(pg_basin, tmp_path)
