"""HJ 212-2017 messages: what field analysers and data loggers send, turned into tidy readings.

HJ 212-2017 (污染物在线监控（监测）系统数据传输标准) is the Chinese transmission
protocol of online monitoring systems. One message per line::

    ##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&1C80\\r\\n

* ``##``, then the length of the data segment as 4 decimal digits;
* the data segment: ``QN`` (request id), ``ST`` (system), ``CN`` (command), ``PW``
  (password), ``MN`` (equipment number: the station id here), ``Flag``, and last
  ``CP=&&...&&``, the command parameters;
* 4 hex digits of CRC over the data segment, then CR LF.

Inside ``CP``, groups are separated by ``;`` and items within a group by ``,``:
``DataTime=YYYYMMDDhhmmss;w21003-Rtd=0.52,w21003-Flag=N;...``. Real-time data
(CN=2011) carries ``code-Rtd``; minute (2051), hour (2061) and day (2031) data carry
``code-Avg`` (with ``-Min``, ``-Max``); each may carry ``code-Flag``, the data flag.

The CRC
-------
The standard's appendix gives the checksum as C code: a 16-bit register starting
at 0xFFFF; for each byte, the register becomes ``(register >> 8) XOR byte``, then 8
times: shift right by one and, if the bit shifted out was 1, XOR with 0xA001. The
register is sent as 4 upper-case hex digits. Note the first step: the register's
*high* byte is shifted down before the XOR, which makes this differ from the
Modbus CRC-16 (``register XOR byte``) with the same polynomial and start value —
a Modbus routine gives 0759 for the standard's own example, whose CRC is 1C80.
:func:`crc16` implements the appendix and is checked against that example and
other messages published with their CRCs.

Times
-----
``DataTime`` is Beijing time (UTC+8) unless the caller says otherwise (``tz=``);
rows carry tz-aware UTC times. For minute, hour and day data the time is
``DataTime`` as sent, which labels the period.

Pollutant codes and units
-------------------------
:data:`POLLUTANTS` maps the water codes of HJ 212-2017 Appendix B (table B.1)
that the twin knows onto :mod:`twin.ops.parameters` ids, with the unit the table
gives for the code; values are converted to the parameter's canonical unit with
:func:`twin.ops.parameters.convert`. Note that the table gives the toxic metals in
µg/L (总汞, 总镉, 六价铬, 总砷, 总铅) but 总锌, 砷 (w20141) and 铅 (w20144) in mg/L; a
station configured otherwise is handled with ``units={"w20119": "mg/L"}``.
Turbidity (w01003, 浑浊度) is not in table B.1; its code is from HJ 525-2009,
the water pollutant code list, and it is sent in NTU by surface-water stations.
Codes that are not listed are rejected by name, never guessed.

What is checked here and what is not
------------------------------------
This module parses: a message with a bad frame, CRC, command or time is refused
whole, a pollutant with an unknown code, a missing or non-numeric value or an
unknown data flag alone. Whether a value is physically possible (a negative
concentration, pH 15, -999 °C) is not a parsing question; it is checked with the
rows of every other format by :func:`twin.ops.readings.check_rows`, against
``twin/data/physical_limits.csv``. The data flags are returned as sent; the ingest
maps them onto the twin's vocabulary (:mod:`twin.ops.flags`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo

import numpy as np
import pandas as pd

from twin.errors import TwinError
from twin.ops.parameters import PARAMETERS, convert

__all__ = [
    "BEIJING",
    "DATA_COMMANDS",
    "DATA_FLAGS",
    "HJ212Error",
    "Message",
    "POLLUTANTS",
    "crc16",
    "frame",
    "parse_line",
    "parse_lines",
]

BEIJING = timezone(timedelta(hours=8), "UTC+08:00")

# code -> (twin parameter id, unit the code is sent in per HJ 212-2017 table B.1).
POLLUTANTS: dict[str, tuple[str, str]] = {
    "w01001": ("pH", "1"),  # pH值, 无量纲
    "w01003": ("turbidity", "NTU"),  # 浑浊度 (HJ 525-2009 code; not in table B.1)
    "w01009": ("DO", "mg/L"),  # 溶解氧
    "w01010": ("water_temperature", "°C"),  # 水温
    "w01014": ("conductivity", "µS/cm"),  # 电导率, 微西[门子]/厘米
    "w01017": ("BOD5", "mg/L"),  # 五日生化需氧量
    "w01018": ("COD", "mg/L"),  # 化学需氧量
    "w01019": ("CODMn", "mg/L"),  # 高锰酸盐指数
    "w20111": ("Hg", "µg/L"),  # 总汞
    "w20115": ("Cd", "µg/L"),  # 总镉
    "w20117": ("Cr6", "µg/L"),  # 六价铬
    "w20119": ("As", "µg/L"),  # 总砷
    "w20120": ("Pb", "µg/L"),  # 总铅
    "w20123": ("Zn", "mg/L"),  # 总锌
    "w20139": ("Zn", "mg/L"),  # 锌
    "w20141": ("As", "mg/L"),  # 砷
    "w20142": ("Hg", "µg/L"),  # 汞
    "w20143": ("Cd", "µg/L"),  # 镉
    "w20144": ("Pb", "mg/L"),  # 铅
    "w21001": ("TN", "mg/L"),  # 总氮
    "w21003": ("NH3-N", "mg/L"),  # 氨氮
    "w21011": ("TP", "mg/L"),  # 总磷
    "w22001": ("petroleum", "mg/L"),  # 石油类
}

# The data flags of HJ 212-2017 (数据标记).
DATA_FLAGS: dict[str, str] = {
    "N": "normal",
    "F": "analyser stopped",
    "M": "maintenance",
    "S": "value set by hand",
    "D": "analyser fault",
    "C": "calibration",
    "T": "above the measuring range",
    "B": "communication failure between analyser and data logger",
}

# Data uploads: CN -> (kind of series, the CP field that holds the value).
DATA_COMMANDS: dict[str, tuple[str, str]] = {
    "2011": ("realtime", "Rtd"),
    "2051": ("minute", "Avg"),
    "2061": ("hour", "Avg"),
    "2031": ("day", "Avg"),
}

_ROW_COLUMNS = ["mn", "time", "parameter", "value", "unit", "flag", "code", "kind", "line_no"]
_REJECT_COLUMNS = ["line_no", "raw", "reason"]
_RAW_CHARS = 300
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")


class HJ212Error(TwinError, ValueError):
    """A line is not a valid HJ 212 message, or an argument of the parser is wrong."""


@dataclass(frozen=True)
class Message:
    """One HJ 212 message, split into its fields; values are the strings as sent.

    Attributes
    ----------
    length : int
        The length field.
    segment : str
        The data segment (what the length and the CRC cover).
    crc : str
        The CRC as sent (checked already).
    fields : dict
        The fields before ``CP``: ``QN``, ``ST``, ``CN``, ``PW``, ``MN``, ``Flag``.
    cp : dict
        The items of ``CP`` that belong to no pollutant, e.g. ``DataTime``.
    pollutants : dict
        Pollutant code -> {field: value}, e.g. ``{"w21003": {"Rtd": "0.52", "Flag": "N"}}``.
    repeated : tuple of str
        Pollutant codes with a field given more than once (their values are not trusted).
    """

    length: int
    segment: str
    crc: str
    fields: dict[str, str]
    cp: dict[str, str]
    pollutants: dict[str, dict[str, str]]
    repeated: tuple[str, ...] = field(default=())

    @property
    def cn(self) -> str | None:
        return self.fields.get("CN")

    @property
    def mn(self) -> str | None:
        return self.fields.get("MN")

    @property
    def qn(self) -> str | None:
        return self.fields.get("QN")

    @property
    def st(self) -> str | None:
        return self.fields.get("ST")

    def data_time(self, tz: tzinfo = BEIJING) -> pd.Timestamp:
        """``DataTime`` of the message as a tz-aware UTC timestamp.

        Parameters
        ----------
        tz : tzinfo
            The zone the sender's clock keeps; Beijing time unless the station says otherwise.

        Raises
        ------
        HJ212Error
            ``DataTime`` is missing or not ``YYYYMMDDhhmmss`` (an appended ``zzz`` of
            milliseconds, as some loggers send, is accepted).
        """
        text = self.cp.get("DataTime")
        if text is None:
            raise HJ212Error("missing DataTime in CP")
        if not (text.isdigit() and len(text) in (14, 17)):
            raise HJ212Error(f"DataTime '{text}' is not a YYYYMMDDhhmmss time")
        try:
            local = datetime.strptime(text[:14], "%Y%m%d%H%M%S")
        except ValueError:
            raise HJ212Error(f"DataTime '{text}' is not a valid YYYYMMDDhhmmss time") from None
        if len(text) == 17:
            local += timedelta(milliseconds=int(text[14:]))
        return pd.Timestamp(local.replace(tzinfo=tz)).tz_convert("UTC")


def crc16(data: str | bytes) -> int:
    """The HJ 212-2017 CRC of a data segment (the algorithm of the standard's appendix).

    Parameters
    ----------
    data : str or bytes
        The data segment, from ``QN=`` (or the first field) through the closing ``&&``.
        A ``str`` must be ASCII.

    Examples
    --------
    The standard's own example message:

    >>> f"{crc16('QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&'):04X}"
    '1C80'
    """
    try:
        raw = data.encode("ascii") if isinstance(data, str) else bytes(data)
    except UnicodeEncodeError as err:
        raise HJ212Error(
            f"non-ASCII character {err.object[err.start]!r} in data segment: HJ 212 messages are ASCII"
        ) from None
    register = 0xFFFF
    for byte in raw:
        register = (register >> 8) ^ byte
        for _ in range(8):
            carry = register & 1
            register >>= 1
            if carry:
                register ^= 0xA001
    return register


def frame(segment: str) -> str:
    """A complete message around a data segment: ``##``, length, segment, CRC, CR LF.

    Examples
    --------
    >>> frame("QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&")[-6:]
    '1C80\\r\\n'
    """
    if len(segment) > 9999:
        raise HJ212Error(f"data segment of {len(segment)} characters does not fit the 4-digit length field")
    return f"##{len(segment):04d}{segment}{crc16(segment):04X}\r\n"


def parse_line(line: str) -> Message:
    """One HJ 212 message, checked (header, length, CRC) and split into its fields.

    Parameters
    ----------
    line : str
        The message, with or without its trailing CR LF.

    Returns
    -------
    Message

    Raises
    ------
    HJ212Error
        The line is not a well-formed message; the message says what is wrong,
        e.g. ``"CRC mismatch: message says 1C80, computed 4F21"`` or
        ``"truncated message: length field says 0101 but data segment has 87 characters"``.

    Examples
    --------
    >>> m = parse_line("##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&1C80")
    >>> m.cn, m.mn, m.cp
    ('1062', '010000A8900016F000169DC0', {'RtdInterval': '30'})
    """
    text = line.rstrip("\r\n")
    for i, ch in enumerate(text):
        if ord(ch) > 127:
            raise HJ212Error(f"non-ASCII character {ch!r} at column {i + 1}: HJ 212 messages are ASCII")
    if not text.startswith("##"):
        raise HJ212Error("no '##' header: an HJ 212 message starts with ## and a 4-digit length")
    length_field = text[2:6]
    if not (len(length_field) == 4 and length_field.isdigit()):
        raise HJ212Error(f"length field '{length_field}' is not 4 digits")
    declared = int(length_field)
    body = text[6:]

    cp_start = body.find("CP=&&")
    close = body.rfind("&&")
    if cp_start < 0 or close < cp_start + 5:
        # no complete CP: a cut line, or a message without CP
        if len(body) < declared + 4:
            raise HJ212Error(
                f"truncated message: length field says {length_field} but data segment has {len(body)} characters"
            )
        raise HJ212Error("missing CP=&&...&& field at the end of the data segment")
    segment, tail = body[: close + 2], body[close + 2 :]
    if len(segment) < declared:
        raise HJ212Error(
            f"truncated message: length field says {length_field} but data segment has {len(segment)} characters"
        )
    if len(segment) > declared:
        raise HJ212Error(
            f"length mismatch: length field says {length_field} but data segment has {len(segment)} characters"
        )
    if not tail:
        raise HJ212Error("missing CRC after the data segment")
    if not _HEX4.fullmatch(tail):
        raise HJ212Error(f"CRC field '{tail}' is not 4 hex digits")
    computed = f"{crc16(segment):04X}"
    if tail.upper() != computed:
        raise HJ212Error(f"CRC mismatch: message says {tail}, computed {computed}")

    fields: dict[str, str] = {}
    for item in segment[:cp_start].split(";"):
        if not item:
            continue
        key, eq, value = item.partition("=")
        if not eq:
            raise HJ212Error(f"malformed field '{item}' (expected KEY=value)")
        fields[key.strip()] = value.strip()

    cp: dict[str, str] = {}
    pollutants: dict[str, dict[str, str]] = {}
    repeated: list[str] = []
    for group in segment[cp_start + 5 : close].split(";"):
        for item in group.split(","):
            if not item.strip():
                continue
            key, eq, value = item.partition("=")
            if not eq:
                raise HJ212Error(f"malformed CP item '{item}' (expected KEY=value)")
            key, value = key.strip(), value.strip()
            code, dash, sub = key.partition("-")
            if dash:
                entry = pollutants.setdefault(code, {})
                if sub in entry and code not in repeated:
                    repeated.append(code)
                entry[sub] = value
            else:
                cp[key] = value
    return Message(
        length=declared,
        segment=segment,
        crc=tail,
        fields=fields,
        cp=cp,
        pollutants=pollutants,
        repeated=tuple(repeated),
    )


def parse_lines(
    lines: Iterable[str | bytes],
    *,
    tz: tzinfo = BEIJING,
    units: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tidy readings from HJ 212 data messages, and what was refused and why.

    Parameters
    ----------
    lines : iterable of str (or bytes)
        One message per line, as read from a file or a socket log; blank lines are skipped.
    tz : tzinfo
        The zone of ``DataTime``; Beijing time (UTC+8) unless the stations say otherwise.
    units : mapping, optional
        Pollutant code -> unit it is actually sent in, for stations that depart
        from the standard's table (e.g. ``{"w20119": "mg/L"}``).

    Returns
    -------
    rows : pandas.DataFrame
        One row per pollutant value: ``mn``, ``time`` (tz-aware UTC), ``parameter``
        (a :mod:`twin.ops.parameters` id), ``value`` (float, canonical unit), ``unit``,
        ``flag`` (the data flag letter, see :data:`DATA_FLAGS`; missing if not sent),
        ``code`` (the pollutant code as sent), ``kind`` (``realtime``, ``minute``,
        ``hour`` or ``day``), ``line_no`` (1-based).
    rejected : pandas.DataFrame
        ``line_no``, ``raw`` (the line, cut to 300 characters) and ``reason``, a
        sentence. A bad message is one row; a bad pollutant inside a good message
        rejects that pollutant alone.

    Raises
    ------
    HJ212Error
        ``units`` names a code that is not in :data:`POLLUTANTS` or a unit that
        cannot be converted to the parameter's unit.

    Examples
    --------
    >>> msg = frame("QN=20240710080000000;ST=21;CN=2011;PW=123456;MN=STATION01;Flag=5;"
    ...             "CP=&&DataTime=20240710080000;w21003-Rtd=0.52,w21003-Flag=N&&")
    >>> rows, rejected = parse_lines([msg])
    >>> rows[["mn", "parameter", "value", "unit", "flag"]].to_dict("records")
    [{'mn': 'STATION01', 'parameter': 'NH3-N', 'value': 0.52, 'unit': 'mg/L', 'flag': 'N'}]
    >>> str(rows["time"][0])
    '2024-07-10 00:00:00+00:00'
    """
    sent_units = _units_table(units)
    records: list[dict[str, object]] = []
    rejects: list[dict[str, object]] = []
    for line_no, item in enumerate(lines, start=1):
        line = item.decode("ascii", errors="replace") if isinstance(item, bytes) else item
        if not line.strip():
            continue
        raw = line.rstrip("\r\n")[:_RAW_CHARS]
        try:
            message = parse_line(line)
            kind, value_field = _data_command(message)
            mn = message.mn
            if not mn:
                raise HJ212Error("missing MN (equipment number) field")
            time = message.data_time(tz)
        except HJ212Error as err:
            rejects.append({"line_no": line_no, "raw": raw, "reason": str(err)})
            continue
        for code, entry in message.pollutants.items():
            try:
                records.append(
                    _reading(code, entry, value_field, code in message.repeated, sent_units)
                    | {"mn": mn, "time": time, "code": code, "kind": kind, "line_no": line_no}
                )
            except HJ212Error as err:
                rejects.append({"line_no": line_no, "raw": raw, "reason": str(err)})
    return _rows_frame(records), _rejects_frame(rejects)


def _units_table(units: Mapping[str, str] | None) -> dict[str, str]:
    """The unit each code is sent in: the standard's, with the caller's overrides checked."""
    table = {code: unit for code, (_, unit) in POLLUTANTS.items()}
    for code, unit in (units or {}).items():
        if code not in POLLUTANTS:
            raise HJ212Error(f"units: pollutant code {code!r} is not one the twin maps; known: {sorted(POLLUTANTS)}")
        parameter = POLLUTANTS[code][0]
        try:
            convert(parameter, 1.0, unit)
        except ValueError as err:
            raise HJ212Error(f"units: {code} ({parameter}) cannot be sent in {unit!r}: {err}") from None
        table[code] = unit
    return table


def _data_command(message: Message) -> tuple[str, str]:
    """(kind, value field) of a data upload; other commands are refused."""
    cn = message.cn
    if cn is None:
        raise HJ212Error("missing CN (command) field")
    if cn not in DATA_COMMANDS:
        raise HJ212Error(
            f"CN={cn} is not a data upload (supported: 2011 real-time, 2051 minute, 2061 hour, 2031 day data)"
        )
    return DATA_COMMANDS[cn]


def _reading(
    code: str, entry: Mapping[str, str], value_field: str, repeated: bool, sent_units: Mapping[str, str]
) -> dict[str, object]:
    """Parameter, value (canonical unit), unit and flag of one pollutant; HJ212Error if it is refused."""
    if code not in POLLUTANTS:
        raise HJ212Error(f"unknown pollutant code {code}")
    if repeated:
        raise HJ212Error(f"{code} is given more than once in the message")
    parameter = POLLUTANTS[code][0]
    text = entry.get(value_field)
    if text is None:
        raise HJ212Error(f"{code} has no {value_field} value")
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if not np.isfinite(number):
        raise HJ212Error(f"value '{text}' of {code} is not a number")
    flag = entry.get("Flag")
    if flag is not None and flag not in DATA_FLAGS:
        raise HJ212Error(f"unknown data flag '{flag}' for {code} (allowed: {', '.join(DATA_FLAGS)})")
    unit = PARAMETERS[parameter].unit
    # physical limits (a negative concentration, pH 15, -999 °C) are checked with every other format's rows,
    # by twin.ops.readings.check_rows: this parser only parses
    value = float(convert(parameter, number, sent_units[code]))
    return {"parameter": parameter, "value": value, "unit": unit, "flag": flag}


def _rows_frame(records: list[dict[str, object]]) -> pd.DataFrame:
    frame_ = pd.DataFrame.from_records(records, columns=_ROW_COLUMNS)
    return frame_.astype(
        {
            "mn": "object",
            "time": "datetime64[us, UTC]",  # years beyond 2262 parse (and are rejected by the checks)
            "parameter": "object",
            "value": "float64",
            "unit": "object",
            "flag": "object",
            "code": "object",
            "kind": "object",
            "line_no": "int64",
        }
    )


def _rejects_frame(rejects: list[dict[str, object]]) -> pd.DataFrame:
    return pd.DataFrame.from_records(rejects, columns=_REJECT_COLUMNS).astype(
        {"line_no": "int64", "raw": "object", "reason": "object"}
    )
