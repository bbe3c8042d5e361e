"""Custody records: what a court checks is validated with errors naming the field; canonical JSON is stable."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest

from twin.evidence import canonical as canon
from twin.evidence.custody import make_record, make_transfer
from twin.evidence.errors import CustodyError, HashAlgorithmError

SHA = hashlib.sha256(b"photo").hexdigest()


def record(**changes):
    data = {
        "case_id": "2026-GARD-0042",
        "description": "outfall below the old mine, left bank",
        "category": "photo",
        "file": {
            "name": "DSC_0042.JPG",
            "format": "image/jpeg",
            "size": 5,
            "hashes": [{"algorithm": "SHA-256", "value": SHA}],
        },
        "acquired_at": "2026-09-03T10:00+02:00",
        "place": {"lon": 3.772088, "lat": 44.162342, "jurisdiction": "Lozère (48)"},
        "method": "photographed from the left bank",
        "tool": {"name": "Nikon D7500", "version": "fw 1.20"},
        "operators": ["A. Martin", "B. Roux"],
        "holder": "DDT Lozère evidence room",
        "seal": "S-0042",
    }
    data.update(changes)
    return data


def test_a_complete_record_is_accepted_and_keeps_the_zone_given():
    r = make_record(record())
    assert r.sha256 == SHA
    assert r.to_json()["acquired_at"] == "2026-09-03T10:00:00+02:00"
    assert r.acquired_at.utcoffset() == dt.timedelta(hours=2)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"operators": ["A. Martin"]}, "operators"),
        ({"operators": ["A. Martin", "a. martin"]}, "operators"),
        ({"acquired_at": "2026-09-03T10:00"}, "acquired_at"),
        ({"acquired_at": "2999-01-01T00:00Z"}, "acquired_at"),
        ({"place": None}, "place"),
        ({"case_id": "has spaces"}, "case_id"),
        ({"category": "hearsay"}, "category"),
        ({"description": "  "}, "description"),
        ({"holder": ""}, "holder"),
        ({"tool": {"name": "Nikon"}}, "tool.version"),
        ({"place": {"lon": 200.0, "lat": 44.0, "jurisdiction": "x"}}, "place.lon"),
        ({"place": {"lon": 3.0, "lat": 44.0}}, "place.jurisdiction"),
        (
            {
                "file": {
                    "name": "a.jpg",
                    "format": "image/jpeg",
                    "size": 5,
                    "hashes": [{"algorithm": "SHA-256", "value": "xyz"}],
                }
            },
            "file.hashes.0.value",
        ),
        (
            {
                "file": {
                    "name": "a.jpg",
                    "format": "image/jpeg",
                    "size": 5,
                    "hashes": [{"algorithm": "MD5", "value": SHA}],
                }
            },
            "file.hashes.0.algorithm",
        ),
        (
            {
                "file": {
                    "name": "../a.jpg",
                    "format": "image/jpeg",
                    "size": 5,
                    "hashes": [{"algorithm": "SHA-256", "value": SHA}],
                }
            },
            "file",
        ),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_records_name_the_field(changes, field):
    with pytest.raises(CustodyError) as err:
        make_record(record(**changes))
    assert f"field '{field}'" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_one_operator_is_refused_with_the_rule():
    with pytest.raises(CustodyError, match=r"field 'operators': at least two operators"):
        make_record(record(operators=["A. Martin"]))


def test_a_derived_product_may_have_no_place():
    deriv = {
        "inputs": [SHA],
        "twin_manifest_sha256": SHA,
        "function": "twin trace",
        "parameters": {"mass_kg": 40},
        "software": {"twin": "0.1.0"},
    }
    r = make_record(record(place=None, category="trace", derivation=deriv))
    assert r.derivation is not None and r.derivation.inputs == [SHA]


def test_canonical_json_is_sorted_compact_utf8_and_round_trips():
    r = make_record(record())
    body = r.canonical()
    assert body == canon.canonical(json.loads(body))
    assert canon.is_canonical(body)
    assert b'": ' not in body and b'", "' not in body and b"\n" not in body
    assert "Lozère".encode() in body  # UTF-8, not \u escapes
    keys = list(json.loads(body))
    assert keys == sorted(keys)
    # the same record, its keys given in another order, hashes the same
    shuffled = dict(reversed(list(record().items())))
    assert make_record(shuffled).digest() == r.digest()
    assert canon.canonical({"b": 1, "a": [1.5, "é"]}) == '{"a":[1.5,"é"],"b":1}'.encode()
    with pytest.raises(ValueError):
        canon.canonical({"x": float("nan")})
    assert not canon.is_canonical(b'{"b":1, "a":2}')


def test_transfers_are_checked():
    t = {
        "case_id": "C-1",
        "item": SHA,
        "record_sha256": SHA,
        "from": "DDT",
        "to": "Lab",
        "time": "2026-09-04T09:00+02:00",
        "reason": "analysis",
    }
    assert make_transfer(t).to_json()["from"] == "DDT"
    with pytest.raises(CustodyError, match="field 'to'"):
        make_transfer(t | {"to": "ddt"})
    with pytest.raises(CustodyError, match="field 'time'"):
        make_transfer(t | {"time": "2026-09-04T09:00"})
    with pytest.raises(CustodyError, match="field 'reason'"):
        make_transfer({k: v for k, v in t.items() if k != "reason"})


def test_sm3_where_the_runtime_has_it(monkeypatch, tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc")
    if canon.sm3_available():
        digests, size = canon.digest_file(f, ("SHA-256", "SM3"))
        # GB/T 32905-2016 appendix A.1: SM3("abc")
        assert digests["SM3"] == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        assert size == 3
    monkeypatch.setattr(canon, "sm3_available", lambda: False)
    with pytest.raises(HashAlgorithmError, match="SM3 is unavailable on this runtime"):
        canon.digest_file(f, ("SHA-256", "SM3"))
    with pytest.raises(HashAlgorithmError, match="unknown hash algorithm 'MD5'"):
        canon.hasher("MD5")
