"""HJ 212-2017 messages, one per line, as a data logger sends them (see :mod:`twin.ops.hj212`).

The MN (equipment number) is the station id; ``DataTime`` is Beijing time. The data
flags are mapped onto the twin's (:data:`twin.ops.flags.HJ212_FLAGS`: HJ 212's ``S``,
set by hand, becomes ``H``); a value sent without a flag has none.
"""

from __future__ import annotations

from twin.ops import flags as _flags
from twin.ops import hj212 as protocol
from twin.ops.formats.source import Context, Parsed, Source

NAME = "hj212"
MEDIA_TYPES: tuple[str, ...] = ("text/plain", "application/x-hj212")


def sniff(name: str, head: bytes) -> bool:
    """Text that starts with a message's ``##``."""
    return head.decode("utf-8-sig", errors="ignore").startswith("##")


def parse(source: Source, *, context: Context) -> Parsed:
    """Rows of HJ 212-2017 messages, one per line; the MN is the station id."""
    lines = source.read().decode("utf-8", errors="replace").splitlines()
    rows, rej = protocol.parse_lines(lines)
    rows = rows.rename(columns={"mn": "station"})
    # HJ 212's flags in the twin's vocabulary (its S, a value set by hand, is the twin's H); none sent: none
    rows["flag"] = rows["flag"].map(_flags.HJ212_FLAGS).where(rows["flag"].notna(), "")
    rows["tz_offset_min"] = 480
    rows["raw"] = rows["line_no"].map(lambda n: lines[int(n) - 1][:300] if 0 < int(n) <= len(lines) else "")
    return Parsed(rows, rej)
