"""HJ 212-2017 messages: the CRC of the standard, tidy rows, and a reason for every refusal.

The CRC is checked against messages published with their CRCs (sources cited at
each one); everything else is built with :func:`twin.ops.hj212.frame`, whose CRC is the
one checked here.
"""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.errors import TwinError
from twin.ops import hj212
from twin.ops.hj212 import HJ212Error, crc16, frame, parse_line, parse_lines

# The example message of HJ 212-2017 itself (a CN=1062 "set real-time interval" command),
# reproduced by many public parsers; its CRC is 1C80.
STANDARD_EXAMPLE = (
    "##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;"
    "CP=&&RtdInterval=30&&1C80\r\n"
)

# Further messages published with their CRCs.
PUBLISHED = [
    pytest.param(STANDARD_EXAMPLE, id="HJ212-2017-example-1C80"),
    # jinuxx/hj212, src/test/java/com/hj212/T212MapperTest.java: an hourly (CN=2061) air message.
    pytest.param(
        "##0285QN=20190925181031464;ST=22;CN=2061;PW=BF470F88957588DE902D1A52;MN=Z13401000010301;Flag=5;"
        "CP=&&DataTime=20190924220000;a34006-Avg=2.69700,a34006-Flag=N;a34007-Avg=7.96600,a34007-Flag=N;"
        "a34048-Avg=3.30600,a34048-Flag=N;a34047-Avg=7.35700,a34047-Flag=N;a34049-Avg=10.66300,"
        "a34049-Flag=N&&C181\r\n",
        id="jinuxx-2061-C181",
    ),
    # same file: a real-time (CN=2011) message whose CRC is written in lower case.
    pytest.param(
        "##0453QN=20160801085000001;ST=22;CN=2011;PW=123456;MN=010000A8900016F000169DC0;Flag=7;"
        "CP=&&DataTime=20160801084000;a21005-Rtd=1.1,a21005-Flag=N;a21004-Rtd=112,a21004-Flag=N;"
        "a21026-Rtd=58,a21026-Flag=N;LA-td=50.1,LA-Flag=N;a34004-Rtd=207,a34004-Flag=N;a34002-Rtd=295,"
        "a34002-Flag=N;a01001-Rtd=12.6,a01001-Flag=N;a01002-Rtd=32,a01002-Flag=N;a01006-Rtd=101.02,"
        "a01006-Flag=N;a01007-Rtd=2.1,a01007-Flag=N;a01008-Rtd=120,a01008-Flag=N;a34001-Rtd=217,"
        "a34001-Flag=N;&&c0c1\r\n",
        id="jinuxx-2011-c0c1",
    ),
    # same file: the data-answer (CN=9014) that library writes back, with an empty CP.
    pytest.param(
        "##0087QN=20160801085000001;ST=91;CN=9014;PW=123456;MN=010000A8900016F000169DC0;Flag=4;CP=&&&&C241\r\n",
        id="jinuxx-9014-C241",
    ),
    # xiaoyao9184/hj-t212-parser, hj-t212-parser/src/test/java/com/xy/format/hbt212/core/T212MapperTest.java
    # (old-style codes, a 17-digit DataTime; the README's copy with a 14-digit DataTime does not match).
    pytest.param(
        "##0139ST=32;CN=2011;PW=123456;MN=LD130133000015;CP=&&DataTime=20160824003817000;B01-Rtd=36.91;"
        "011-Rtd=231.0,011-Flag=N;060-Rtd=1.803,060-Flag=N&&4980\r\n",
        id="xiaoyao9184-4980",
    ),
]


def segment(
    *,
    cn: str = "2011",
    mn: str = "STATION01",
    data_time: str | None = "20240710080000",
    pollutants: dict[str, dict[str, str]] | None = None,
    qn: str = "20240710080000123",
) -> str:
    """The data segment of a message; pollutants as {code: {field: value}}."""
    groups = [] if data_time is None else [f"DataTime={data_time}"]
    for code, fields in (pollutants or {}).items():
        groups.append(",".join(f"{code}-{name}={value}" for name, value in fields.items()))
    return f"QN={qn};ST=21;CN={cn};PW=123456;MN={mn};Flag=5;CP=&&{';'.join(groups)}&&"


def message(**kwargs) -> str:
    """A complete message with the right length and CRC."""
    return frame(segment(**kwargs))


GOOD = message(
    pollutants={
        "w01001": {"Rtd": "7.51", "Flag": "N"},
        "w01009": {"Rtd": "8.02", "Flag": "N"},
        "w21003": {"Rtd": "0.701", "Flag": "N"},
        "w01010": {"Rtd": "20.1", "Flag": "N"},
    }
)


def reasons(rejected: pd.DataFrame) -> list[str]:
    return rejected["reason"].tolist()


def modbus_crc16(data: bytes) -> int:
    """Modbus CRC-16 (same polynomial and start, XOR of the byte into the low byte)."""
    register = 0xFFFF
    for byte in data:
        register ^= byte
        for _ in range(8):
            register = (register >> 1) ^ 0xA001 if register & 1 else register >> 1
    return register


# ---------------------------------------------------------------------------
# the CRC
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("line", PUBLISHED)
def test_crc_matches_published_messages(line):
    text = line.rstrip("\r\n")
    data_segment, crc = text[6:-4], text[-4:]
    assert len(data_segment) == int(text[2:6])
    assert f"{crc16(data_segment):04X}" == crc.upper()
    assert parse_line(line).crc == crc  # and the whole frame checks out


def test_crc_is_not_the_modbus_crc():
    data_segment = STANDARD_EXAMPLE[6:-6]
    assert f"{crc16(data_segment):04X}" == "1C80"
    assert f"{modbus_crc16(data_segment.encode()):04X}" == "0759"  # what a Modbus routine would say


def test_crc_takes_bytes_and_str_alike():
    assert crc16(b"QN=1;CP=&&&&") == crc16("QN=1;CP=&&&&")


def test_frame_refuses_non_ascii():
    with pytest.raises(HJ212Error, match="non-ASCII character '站'"):
        frame("QN=1;MN=站点;CP=&&&&")


def test_frame_reproduces_the_standard_example():
    assert frame(STANDARD_EXAMPLE[6:-6]) == STANDARD_EXAMPLE


# ---------------------------------------------------------------------------
# parse_line
# ---------------------------------------------------------------------------
def test_parse_line_splits_the_standard_example():
    m = parse_line(STANDARD_EXAMPLE)
    assert (m.qn, m.st, m.cn, m.mn) == ("20160801085857223", "32", "1062", "010000A8900016F000169DC0")
    assert m.fields["PW"] == "100000" and m.fields["Flag"] == "5"
    assert m.cp == {"RtdInterval": "30"}
    assert m.pollutants == {}
    assert m.length == 101


def test_parse_line_reads_pollutants_and_time_of_a_published_hourly_message():
    m = parse_line(PUBLISHED[1].values[0])
    assert m.cn == "2061"
    assert m.pollutants["a34049"] == {"Avg": "10.66300", "Flag": "N"}
    # 22:00 Beijing time is 14:00 UTC
    assert m.data_time() == pd.Timestamp("2019-09-24T14:00:00Z")


def test_parse_line_raises_a_twin_error_that_is_a_value_error():
    with pytest.raises(HJ212Error) as info:
        parse_line(STANDARD_EXAMPLE.replace("1C80", "1C81"))
    assert isinstance(info.value, TwinError) and isinstance(info.value, ValueError)


# ---------------------------------------------------------------------------
# parse_lines: good messages
# ---------------------------------------------------------------------------
def test_good_message_gives_one_tidy_row_per_pollutant():
    rows, rejected = parse_lines([GOOD])
    assert rejected.empty
    assert list(rows.columns) == ["mn", "time", "parameter", "value", "unit", "flag", "code", "kind", "line_no"]
    by_param = rows.set_index("parameter")
    assert by_param.loc["pH", "value"] == 7.51 and by_param.loc["pH", "unit"] == "1"
    assert by_param.loc["DO", "value"] == 8.02 and by_param.loc["DO", "unit"] == "mg/L"
    assert by_param.loc["NH3-N", "value"] == 0.701 and by_param.loc["NH3-N", "code"] == "w21003"
    assert by_param.loc["water_temperature", "unit"] == "°C"
    assert set(rows["mn"]) == {"STATION01"}
    assert set(rows["flag"]) == {"N"}
    assert set(rows["kind"]) == {"realtime"}
    assert set(rows["line_no"]) == {1}
    # 08:00 Beijing time is midnight UTC
    assert str(rows["time"].dtype) == "datetime64[us, UTC]"  # microseconds: DataTime 9999... still parses
    assert (rows["time"] == pd.Timestamp("2024-07-10T00:00:00Z")).all()


def test_hourly_2061_message_takes_the_average():
    line = message(
        cn="2061",
        data_time="20240710070000",
        pollutants={
            "w21003": {"Min": "0.40", "Avg": "0.52", "Max": "0.61", "Flag": "N"},
            "w21011": {"Min": "0.08", "Avg": "0.11", "Max": "0.15", "Flag": "N"},
        },
    )
    rows, rejected = parse_lines([line])
    assert rejected.empty
    assert dict(zip(rows["parameter"], rows["value"])) == {"NH3-N": 0.52, "TP": 0.11}
    assert set(rows["kind"]) == {"hour"}
    assert (rows["time"] == pd.Timestamp("2024-07-09T23:00:00Z")).all()


@pytest.mark.parametrize("cn, kind", [("2051", "minute"), ("2031", "day")])
def test_minute_and_day_data_take_the_average_too(cn, kind):
    rows, rejected = parse_lines([message(cn=cn, pollutants={"w01018": {"Avg": "15.2", "Flag": "N"}})])
    assert rejected.empty
    assert rows[["parameter", "value", "kind"]].values.tolist() == [["COD", 15.2, kind]]


def test_an_average_message_without_avg_rejects_that_pollutant():
    rows, rejected = parse_lines([message(cn="2061", pollutants={"w21003": {"Rtd": "0.5"}})])
    assert rows.empty
    assert reasons(rejected) == ["w21003 has no Avg value"]


def test_metals_are_converted_from_the_standards_micrograms():
    line = message(pollutants={"w20119": {"Rtd": "12.5", "Flag": "N"}, "w20123": {"Rtd": "0.05", "Flag": "N"}})
    rows, _ = parse_lines([line])
    values = dict(zip(rows["parameter"], rows["value"]))
    assert values["As"] == pytest.approx(0.0125)  # 总砷 is sent in µg/L
    assert values["Zn"] == pytest.approx(0.05)  # 总锌 in mg/L
    assert set(rows["unit"]) == {"mg/L"}


def test_units_override_for_stations_that_send_mg_per_litre():
    line = message(pollutants={"w20119": {"Rtd": "0.0125", "Flag": "N"}})
    rows, _ = parse_lines([line], units={"w20119": "mg/L"})
    assert rows["value"].tolist() == [pytest.approx(0.0125)]


@pytest.mark.parametrize(
    "units, match",
    [({"w99999": "mg/L"}, "code 'w99999' is not one the twin maps"), ({"w21003": "NTU"}, "cannot be sent in 'NTU'")],
)
def test_a_bad_units_override_is_refused(units, match):
    with pytest.raises(HJ212Error, match=match):
        parse_lines([GOOD], units=units)


def test_flags_other_than_normal_are_kept_and_a_missing_flag_stays_missing():
    line = message(pollutants={"w21003": {"Rtd": "0.0", "Flag": "D"}, "w21011": {"Rtd": "0.2"}})
    rows, rejected = parse_lines([line])
    assert rejected.empty
    flags = dict(zip(rows["code"], rows["flag"]))
    assert flags["w21003"] == "D"
    assert pd.isna(flags["w21011"])


def test_time_zone_can_be_overridden():
    rows, _ = parse_lines([GOOD], tz=UTC)
    assert (rows["time"] == pd.Timestamp("2024-07-10T08:00:00Z")).all()


def test_a_data_time_with_milliseconds_is_accepted():
    rows, rejected = parse_lines([message(data_time="20240710080000500", pollutants={"w01001": {"Rtd": "7"}})])
    assert rejected.empty
    assert rows["time"].iloc[0] == pd.Timestamp("2024-07-10T00:00:00.5Z")


def test_blank_lines_are_skipped_and_line_numbers_count_from_one():
    rows, rejected = parse_lines(["", GOOD, "   ", "##garbage"])
    assert set(rows["line_no"]) == {2}
    assert rejected["line_no"].tolist() == [4]


def test_lines_without_crlf_and_bytes_lines_parse_alike():
    rows_a, _ = parse_lines([GOOD.rstrip("\r\n")])
    rows_b, _ = parse_lines([GOOD.encode("ascii")])
    pd.testing.assert_frame_equal(rows_a, rows_b)
    assert len(rows_a) == 4


def test_no_input_gives_empty_frames_with_their_columns():
    rows, rejected = parse_lines([])
    assert rows.empty and rejected.empty
    assert "time" in rows.columns and str(rows["time"].dtype) == "datetime64[us, UTC]"
    assert list(rejected.columns) == ["line_no", "raw", "reason"]


# ---------------------------------------------------------------------------
# parse_lines: refusals, each with its reason
# ---------------------------------------------------------------------------
def test_wrong_crc_rejects_the_message():
    bad = GOOD[:-6] + "0000\r\n"
    rows, rejected = parse_lines([bad])
    assert rows.empty
    computed = GOOD[-6:-2]
    assert reasons(rejected) == [f"CRC mismatch: message says 0000, computed {computed}"]
    assert rejected["raw"].tolist() == [bad.rstrip("\r\n")]


def test_a_changed_value_breaks_the_crc():
    tampered = GOOD.replace("w21003-Rtd=0.701", "w21003-Rtd=0.101")
    _, rejected = parse_lines([tampered])
    assert reasons(rejected)[0].startswith("CRC mismatch: message says ")


def test_truncated_line_is_rejected_with_both_lengths():
    cut = STANDARD_EXAMPLE[:70]
    _, rejected = parse_lines([cut])
    assert reasons(rejected) == ["truncated message: length field says 0101 but data segment has 64 characters"]


def test_length_field_that_disagrees_with_the_segment():
    _, rejected = parse_lines([STANDARD_EXAMPLE.replace("##0101", "##0100")])
    assert reasons(rejected) == ["length mismatch: length field says 0100 but data segment has 101 characters"]


def test_length_field_that_is_not_a_number():
    _, rejected = parse_lines([STANDARD_EXAMPLE.replace("##0101", "##01a1")])
    assert reasons(rejected) == ["length field '01a1' is not 4 digits"]


@pytest.mark.parametrize(
    "line, reason",
    [
        ("QN=1;CN=2011", "no '##' header: an HJ 212 message starts with ## and a 4-digit length"),
        (STANDARD_EXAMPLE[:-6], "missing CRC after the data segment"),
        (STANDARD_EXAMPLE.replace("1C80", "1CXY"), "CRC field '1CXY' is not 4 hex digits"),
        (frame("QN=1;ST=21;CN=2011;MN=S1"), "missing CP=&&...&& field at the end of the data segment"),
        (frame("QN=1;ST=21;CN=2011;PW=1;Flag=5;CP=&&DataTime=20240710080000;w21003-Rtd=1&&"), "missing MN"),
        (frame("QN=1;ST=21;PW=1;MN=S1;CP=&&DataTime=20240710080000;w21003-Rtd=1&&"), "missing CN"),
        (frame("QN=1;MN=S1;CN=2011;CP=&&DataTime=2024071008;w21003-Rtd=1&&"), "not a YYYYMMDDhhmmss"),
        (frame("QN=1;MN=S1;CN=2011;CP=&&DataTime=20241310080000;w21003-Rtd=1&&"), "not a valid YYYYMMDDhhmmss"),
        (frame("QN=1;MN=S1;CN=2011;CP=&&DataTime=20240710080000;w21003&&"), "malformed CP item 'w21003'"),
        (STANDARD_EXAMPLE, "CN=1062 is not a data upload"),
        ("##0101QN=20160801085857223;ST=32;MN=站点", "non-ASCII character '站' at column 37"),
    ],
)
def test_malformed_messages_are_rejected_whole_with_a_reason(line, reason):
    rows, rejected = parse_lines([line])
    assert rows.empty
    assert len(rejected) == 1
    assert reason in rejected["reason"].iloc[0]


def test_missing_data_time_rejects_the_message():
    rows, rejected = parse_lines([message(data_time=None, pollutants={"w21003": {"Rtd": "0.5", "Flag": "N"}})])
    assert rows.empty
    assert reasons(rejected) == ["missing DataTime in CP"]


@pytest.mark.parametrize(
    "code, fields, reason",
    [
        ("w99999", {"Rtd": "1.0", "Flag": "N"}, "unknown pollutant code w99999"),
        ("w21003", {"Rtd": "abc", "Flag": "N"}, "value 'abc' of w21003 is not a number"),
        ("w21003", {"Rtd": "nan", "Flag": "N"}, "value 'nan' of w21003 is not a number"),
        ("w21003", {"Rtd": "0.5", "Flag": "X"}, "unknown data flag 'X' for w21003 (allowed: N, F, M, S, D, C, T, B)"),
        ("w21003", {"Flag": "N"}, "w21003 has no Rtd value"),
    ],
)
def test_a_bad_pollutant_rejects_only_itself(code, fields, reason):
    line = message(pollutants={"w01009": {"Rtd": "8.0", "Flag": "N"}, code: fields, "w21011": {"Rtd": "0.1"}})
    rows, rejected = parse_lines([line])
    assert reasons(rejected) == [reason]
    assert rejected["line_no"].tolist() == [1]
    assert sorted(rows["parameter"]) == ["DO", "TP"]  # the rest of the message is kept


def test_a_pollutant_given_twice_is_not_trusted():
    seg = "QN=1;ST=21;CN=2011;PW=1;MN=S1;Flag=5;CP=&&DataTime=20240710080000;w21003-Rtd=0.5;w21003-Rtd=5.0;w21011-Rtd=0.1&&"
    rows, rejected = parse_lines([frame(seg)])
    assert reasons(rejected) == ["w21003 is given more than once in the message"]
    assert rows["parameter"].tolist() == ["TP"]


def test_published_air_message_is_refused_code_by_code():
    # our table is for surface water; the air codes of a real message are named, not guessed
    rows, rejected = parse_lines([PUBLISHED[1].values[0]])
    assert rows.empty
    assert reasons(rejected) == [
        f"unknown pollutant code {c}" for c in ("a34006", "a34007", "a34048", "a34047", "a34049")
    ]


def test_raw_is_cut_to_300_characters():
    long_bad = "##9999" + "x" * 1000
    _, rejected = parse_lines([long_bad])
    assert len(rejected["raw"].iloc[0]) == 300


def test_good_and_bad_lines_mixed():
    lines = [GOOD, GOOD[:50], message(pollutants={"w01001": {"Rtd": "abc"}}), GOOD]
    rows, rejected = parse_lines(lines)
    assert sorted(set(rows["line_no"])) == [1, 4]
    assert rejected["line_no"].tolist() == [2, 3]


# ---------------------------------------------------------------------------
# property: whatever the helper builds parses back to the same values
# ---------------------------------------------------------------------------
# code -> (low, high) of values a station may send, in the code's own unit
_RANGES = {
    "w01001": (0.0, 14.0),
    "w01009": (0.0, 20.0),
    "w01010": (-5.0, 40.0),
    "w01014": (0.0, 5000.0),
    "w01003": (0.0, 1000.0),
    "w01019": (0.0, 50.0),
    "w21003": (0.0, 30.0),
    "w21011": (0.0, 2.0),
    "w21001": (0.0, 30.0),
    "w20119": (0.0, 500.0),
    "w20111": (0.0, 5.0),
}
_FACTORS = {"w20119": 1e-3, "w20111": 1e-3}  # µg/L in the message, mg/L in the rows


@st.composite
def data_messages(draw):
    cn = draw(st.sampled_from(sorted(hj212.DATA_COMMANDS)))
    value_field = hj212.DATA_COMMANDS[cn][1]
    mn = draw(st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=1, max_size=24))
    when = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)))
    when = when.replace(microsecond=0)
    codes = draw(st.lists(st.sampled_from(sorted(_RANGES)), min_size=1, max_size=len(_RANGES), unique=True))
    pollutants: dict[str, dict[str, str]] = {}
    expected: dict[str, tuple[float, str]] = {}
    for code in codes:
        low, high = _RANGES[code]
        value = draw(st.floats(min_value=low, max_value=high, allow_nan=False))
        decimals = draw(st.integers(min_value=0, max_value=4))
        text = f"{value:.{decimals}f}"
        if float(text) < low or float(text) > high:  # rounding pushed it out of range
            text = f"{low:.{decimals}f}"
        flag = draw(st.sampled_from(sorted(hj212.DATA_FLAGS)))
        pollutants[code] = {value_field: text, "Flag": flag}
        expected[code] = (float(text) * _FACTORS.get(code, 1.0), flag)
    line = message(cn=cn, mn=mn, data_time=when.strftime("%Y%m%d%H%M%S"), pollutants=pollutants)
    return line, mn, when, hj212.DATA_COMMANDS[cn][0], expected


@settings(max_examples=200, deadline=None)
@given(data_messages())
def test_built_messages_parse_back_to_the_same_values(built):
    line, mn, when, kind, expected = built
    rows, rejected = parse_lines([line])
    assert rejected.empty, reasons(rejected)
    assert len(rows) == len(expected)
    assert set(rows["mn"]) == {mn}
    assert set(rows["kind"]) == {kind}
    utc = pd.Timestamp(when - timedelta(hours=8), tz="UTC")
    assert (rows["time"] == utc).all()
    for row in rows.itertuples():
        value, flag = expected[row.code]
        assert row.value == pytest.approx(value, rel=1e-12, abs=1e-15)
        assert row.flag == flag
        assert row.parameter == hj212.POLLUTANTS[row.code][0]
    assert np.isfinite(rows["value"]).all()


def test_docstring_examples_hold():
    result = doctest.testmod(hj212)
    assert result.attempted >= 6
    assert result.failed == 0
