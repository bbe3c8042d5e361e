"""The registry of ingest formats (twin.ops.formats): how a format is told, added and used by the library,
the CLI and the web alike."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner

from twin.cli import cli
from twin.ops.errors import IngestError
from twin.ops.formats import FORMATS, Context, Formats, Parsed, Source
from twin.ops.hj212 import frame
from twin.ops.readings import Readings

from .webauth import bearer, token

HEADER = "station,time,parameter,value,unit,flag\n"
CNEMC = "断面名称,监测时间,氨氮(mg/L),总磷(mg/L)\nUp,2026-07-10 08:00,0.40,0.05\nNowhere,2026-07-10 08:00,0.40,\n"


@pytest.fixture
def basin(make_saved_valley):
    return make_saved_valley({"UP": (10, "station"), "LOW": (35, "station")})


class Toy:
    """A format of one's own: ``station|parameter|value|unit|time`` lines."""

    NAME = "toy"
    MEDIA_TYPES = ("text/x-toy",)

    @staticmethod
    def sniff(name: str, head: bytes) -> bool:
        return name.endswith(".toy")

    @staticmethod
    def parse(source: Source, *, context: Context) -> Parsed:
        cells = [line.split("|") for line in source.text().splitlines()]
        rows = pd.DataFrame(cells, columns=["station", "parameter", "value", "unit", "time"])
        return Parsed(
            rows.assign(
                time=pd.to_datetime(rows["time"], utc=True),
                tz_offset_min=0,
                flag="",
                line_no=np.arange(1, len(rows) + 1),
            )
        )


def test_a_format_of_ones_own_is_registered_and_ingested_through_the_common_checks(basin, tmp_path):
    path = tmp_path / "batch.toy"
    path.write_text(
        "UP|NH3-N|0.4|mg/L|2026-07-10T08:00Z\nNOPE|NH3-N|0.4|mg/L|2026-07-10T08:00Z\nUP|NH3-N|0.4|mg/L|2026-07-10T08:00Z\n"
    )
    readings = Readings(basin.store, formats=FORMATS.adding(Toy))
    report = readings.ingest(path)  # told by its name
    assert (report.format, report.stored, report.duplicates) == ("toy", 1, 1)
    assert report.rejected_by_reason() == {"unknown station": 1}  # check_rows, as for every format
    assert readings.rejected(report.batch_id)["line_no"].tolist() == [2]
    assert readings.query()["value"].tolist() == [pytest.approx(0.4)]
    assert "toy" not in FORMATS.names()  # the registry itself never changes
    with pytest.raises(IngestError, match=r"cannot tell the format of .*batch.toy.*--format with one of \['netcdf'"):
        basin.readings.ingest(path)


def test_the_registry_refuses_a_format_that_lacks_a_part_or_repeats_a_name():
    class Half:
        NAME = "half"
        MEDIA_TYPES = ()

        @staticmethod
        def sniff(name: str, head: bytes) -> bool:
            return False

    with pytest.raises(TypeError, match=r"lacks \['parse'\]"):
        Formats((Half,))
    with pytest.raises(TypeError, match=r"\['toy'\] given twice"):
        Formats((Toy, Toy))
    assert FORMATS.adding(Toy).names()[0] == "toy"  # sniffed before the built-in ones
    with pytest.raises(
        IngestError, match=r"unknown format 'xls'; use one of \['netcdf', 'hj212', 'cnemc', 'json', 'tidy'\]"
    ):
        FORMATS.get("xls")


HJ212 = frame("QN=20260710080000000;ST=21;CN=2061;PW=123456;MN=UP;Flag=5;CP=&&DataTime=20260710080000;w21003-Avg=0.4&&")


@pytest.mark.parametrize(
    ("name", "head", "fmt"),
    [
        ("ts.nc", b"", "netcdf"),
        ("body", b"CDF\x01\x00\x00", "netcdf"),
        ("body", b"\x89HDF\r\n\x1a\n\x00", "netcdf"),
        ("log.txt", (HJ212 + "\r\n").encode(), "hj212"),
        ("export.csv", CNEMC.encode("utf-8-sig"), "cnemc"),
        ("export.csv", CNEMC.encode("gb18030"), "cnemc"),
        ("batch.json", b"", "json"),
        ("body", b' \n[{"station": "UP"}]', "json"),
        ("r.csv", HEADER.encode(), "tidy"),
        ("body", HEADER.encode(), "tidy"),
    ],
)
def test_each_format_is_told_from_its_name_or_its_first_bytes(name, head, fmt):
    assert fmt == FORMATS.guess(Source.body(head, name)).NAME


def test_a_body_goes_to_the_format_of_its_content_type_and_among_csvs_to_the_one_that_sniffs_it():
    def pick(kind: str, body: str) -> str | None:
        found = FORMATS.for_media_type(kind, Source.body(body.encode()))
        return found.NAME if found else None

    assert pick("text/csv", CNEMC) == "cnemc"
    assert pick("text/csv", HEADER) == "tidy"
    assert pick("text/csv", "station,value\n") == "tidy"  # the most generic, which says what is missing
    assert pick("application/json", "[]") == "json"
    assert pick("text/plain", HJ212) == "hj212"
    assert pick("image/png", "x") is None
    assert FORMATS.media_types()[:2] == ["application/netcdf", "application/x-netcdf"]


def test_a_json_batch_is_read_as_the_tidy_csv_it_stands_for(basin, tmp_path):
    rows = [
        {"station": "UP", "time": "2026-07-10T08:00Z", "parameter": "NH3-N", "value": 0.4, "unit": "mg/L"},
        {"station": "UP", "time": "2026-07-10T09:00", "parameter": "NH3-N", "value": 0.4, "unit": "mg/L"},
        {"station": "UP", "time": "2026-07-10T10:00Z", "parameter": "NH3-N", "value": "<0.02", "unit": "mg/L"},
        {"station": "UP", "time": "2026-07-10T11:00Z", "parameter": "NH3-N", "value": None, "unit": "mg/L"},
    ]
    as_json = FORMATS.get("json").parse(Source.body(json.dumps({"readings": rows}).encode()), context=Context())
    csv = HEADER + "\n".join(
        ",".join("" if r.get(f) is None else str(r.get(f, "")) for f in HEADER.strip().split(",")) for r in rows
    )
    as_csv = FORMATS.get("tidy").parse(Source.body(csv.encode()), context=Context())
    pd.testing.assert_frame_equal(as_json.rows.reset_index(drop=True), as_csv.rows.reset_index(drop=True))
    pd.testing.assert_frame_equal(as_json.rejected, as_csv.rejected)
    assert as_json.rejected["line_no"].tolist() == [5, 3]  # incomplete row, then time without zone
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(rows))
    result = CliRunner().invoke(cli, ["ingest", str(basin.path), str(path)])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output)
    assert (counts["format"], counts["stored"], counts["rejected"]) == ("json", 2, 2)
    for bad, why in [(b"{", "is not JSON"), (b'{"rows": []}', "send a list of readings"), (b"[1]", "reading 0 is not")]:
        with pytest.raises(IngestError, match=why):
            FORMATS.get("json").parse(Source.body(bad), context=Context())


def _netcdf(path: Path) -> Path:
    times = pd.date_range("2026-07-10T00:00", periods=3, freq="h")
    ds = xr.Dataset(
        {"NH3-N": (("station", "time"), np.array([[0.1, 0.2, 0.3], [1.0, 2.0, np.nan]]))},
        coords={"time": times, "station_id": ("station", ["UP", "LOW"])},
        attrs={"featureType": "timeSeries", "Conventions": "CF-1.8"},
    )
    ds["station_id"].attrs["cf_role"] = "timeseries_id"
    ds["NH3-N"].attrs["units"] = "mg/L"
    ds.to_netcdf(path)
    return path


def test_the_web_reads_other_formats_from_the_body_as_uploaded(basin, tmp_path):
    from twin_web import create_app

    path = _netcdf(tmp_path / "ts.nc")
    from_file = FORMATS.get("netcdf").parse(Source.file(path), context=Context())
    in_memory = FORMATS.get("netcdf").parse(Source.body(path.read_bytes()), context=Context())
    pd.testing.assert_frame_equal(from_file.rows, in_memory.rows)
    basin.readings.query()  # the store is open, its stations registered
    app = create_app(basin.path, testing=True)
    client = app.test_client()
    admin = bearer(token(basin.path))
    got = client.post("/api/readings", data=path.read_bytes(), content_type="application/netcdf", headers=admin)
    assert got.status_code == 200, got.get_data(as_text=True)
    assert (got.get_json()["format"], got.get_json()["stored"]) == ("netcdf", 5)
    got = client.post("/api/readings", data=CNEMC.encode(), content_type="text/csv", headers=admin).get_json()
    assert (got["format"], got["stored"], got["rejected"]) == ("cnemc", 2, 1)
    assert got["rejected_rows"] == [{"line": 3, "reason": "unknown station: name Nowhere is not in the station list"}]
    broken = client.post("/api/readings", data=b"CDF\x01broken", content_type="application/netcdf", headers=admin)
    assert broken.status_code == 400 and "not a readable NetCDF file" in broken.get_json()["description"]
    refused = client.post("/api/readings", data=b"x", content_type="image/png", headers=admin).get_json()
    assert refused["status"] == 415 and "application/json" in refused["description"]
