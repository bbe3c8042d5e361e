"""The ledger's tables bound to the log: how every row is recomputed from its leaf, in one place.

The evidence log (:mod:`.log`) is the truth; the tables beside it are indexes that the
ledger reads quickly. Each table is listed here with the leaf each of its rows is bound
to, and every column is recomputed from that leaf's entry:

=================  ===================================  ================================================
table              a row is bound to                    its columns, recomputed from the leaf's entry
=================  ===================================  ================================================
evidence_log       its own entry (``data``)             leaf_hash = H(0x00 || data); time, actor, kind,
                                                        case_id, item_sha256 = the entry's
custody_records    its record leaf (kind ``record``)    id = record_id; case_id; item_sha256 = item;
                                                        category; derived; record = canonical(custody);
                                                        record_sha256; leaf_index; created = time
custody_transfers  its transfer leaf                    id = transfer_id; record_id; seq; time = the
                                                        transfer's time; from_holder = from; to_holder =
                                                        to; transfer = canonical(transfer);
                                                        transfer_sha256; leaf_index
case_shares        its share leaf (kind ``access``,     id = share_id; case_id; jurisdiction = with;
                   action ``share``)                    shared_by = actor; time; leaf_index
evidence_items     the first record leaf of its file    sha256 = item; size and sm3 from that record's
                                                        file; stored = time; leaf_index
evidence_heads     its head leaf (kind ``head``),       id = head_id; tree_size; root_hash; timestamp;
                   appended when the head is signed     time; agency; key_fingerprint; signature;
                                                        public_key; leaf_index
=================  ===================================  ================================================

``evidence_log_nodes`` and ``evidence_log_state`` are recomputed from all the leaves (the
tree and its frontier) by :meth:`twin.evidence.log.EvidenceLog.verify`.

Writers build their leaf with the ``*_entry`` functions below and insert the row that
:func:`row` recomputes from it, so what is stored is, by construction, what the check
expects; a row's id is chosen before its leaf is written (:func:`next_id`, under the log's
append lock) so that the leaf can hold it. :class:`View` compares rows and leaves both
ways: a leaf without its row (deleted), a row without its leaf or on another's (inserted),
and every column of every row against what its leaf says (edited).

Leaves written before this binding (before migration 0007: *legacy* leaves) hold the
SHA-256 of a record or transfer but neither the body nor the row's id. Their rows are
checked against everything such a leaf does hold (the body through its SHA-256, the
rest recomputed from leaf and body); only the row ids of legacy leaves are not bound,
which the check says in a note. Heads signed before the binding have no head leaf: they
are still checked against the log and their signature, but removing one would not be
noticed (the note says that too).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from twin.evidence.canonical import canonical, digest_bytes
from twin.ops.store import case_shares, custody_records, custody_transfers, evidence_heads, evidence_items

#: every table whose rows are evidence facts, in the order the check reports them
LEDGER_TABLES = (
    "evidence_log",
    "evidence_log_nodes",
    "evidence_log_state",
    "evidence_heads",
    "evidence_items",
    "custody_records",
    "custody_transfers",
    "case_shares",
)
#: the entry kinds whose leaves bind a row of some table
BOUND_KINDS = ("record", "transfer", "access", "head")
TABLES: dict[str, sa.Table] = {
    t.name: t for t in (evidence_heads, evidence_items, custody_records, custody_transfers, case_shares)
}
MAX_PROBLEMS = 20
"""Problems shown per table; the rest are counted."""


def seconds(iso_time: Any) -> int:
    """Integer seconds since 1970 UTC of an ISO 8601 time with zone (as the tables store times)."""
    return int(dt.datetime.fromisoformat(str(iso_time).replace("Z", "+00:00")).timestamp())


# -- the log's own columns ------------------------------------------------------------------------


def log_columns(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of ``evidence_log`` beside ``data``, from the entry: time, actor, kind, case_id, item_sha256."""
    return {
        "time": seconds(entry["time"]),
        "actor": str(entry["actor"]),
        "kind": entry["kind"],
        "case_id": entry.get("case_id"),
        "item_sha256": entry.get("item"),
    }


def parse_entry(data: Any) -> dict[str, Any] | None:
    """A leaf's entry from its stored data (text), or None when the data is not a log entry."""
    try:
        value = json.loads(data)
    except (TypeError, ValueError):
        return None
    if not isinstance(value, dict) or not isinstance(value.get("kind"), str) or "time" not in value:
        return None
    return value


# -- the leaves writers append --------------------------------------------------------------------


def record_entry(*, time: str, actor: str, record_id: int, custody: dict[str, Any]) -> dict[str, Any]:
    """The leaf of a custody record: who recorded it when, its row id and the whole record."""
    body = canonical(custody)
    return {
        "kind": "record",
        "time": time,
        "actor": actor,
        "case_id": custody["case_id"],
        "item": custody["file"]["hashes"][0]["value"],
        "category": custody["category"],
        "record_id": int(record_id),
        "record_sha256": digest_bytes(body),
        "custody": custody,
    }


def transfer_entry(
    *, time: str, actor: str, transfer_id: int, record_id: int, seq: int, transfer: dict[str, Any]
) -> dict[str, Any]:
    """The leaf of a transfer: who recorded it when, its row id, its place in the chain and the whole transfer."""
    return {
        "kind": "transfer",
        "time": time,
        "actor": actor,
        "case_id": transfer["case_id"],
        "item": transfer["item"],
        "record_sha256": transfer["record_sha256"],
        "transfer_id": int(transfer_id),
        "record_id": int(record_id),
        "seq": int(seq),
        "transfer_sha256": digest_bytes(canonical(transfer)),
        "from": transfer["from"],
        "to": transfer["to"],
        "transfer": transfer,
    }


def share_entry(
    *, time: str, actor: str, share_id: int, case_id: str, jurisdiction: str, owners: Iterable[str]
) -> dict[str, Any]:
    """The leaf of a case shared with another unit."""
    return {
        "kind": "access",
        "action": "share",
        "time": time,
        "actor": actor,
        "case_id": case_id,
        "with": jurisdiction,
        "owners": sorted(owners),
        "share_id": int(share_id),
    }


def head_entry(*, head_id: int, head: dict[str, Any], public_key: str) -> dict[str, Any]:
    """The leaf appended when a tree head is signed: the head, its signature and the key, as stored."""
    return {
        "kind": "head",
        "time": head["timestamp"],
        "actor": head["agency"],
        "head_id": int(head_id),
        "tree_size": int(head["tree_size"]),
        "root_hash": head["root_hash"],
        "timestamp": head["timestamp"],
        "agency": head["agency"],
        "key_fingerprint": head["key_fingerprint"],
        "signature": head["signature"],
        "public_key": public_key,
    }


def next_id(conn: sa.Connection, table: sa.Table) -> int:
    """The id the next row of ``table`` gets; call it under the log's append lock.

    Ids are chosen here rather than by the database so that the leaf, written before
    its row, can hold the id (every write to these tables goes through this).
    """
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0))).scalar_one()) + 1


def row(table: str, index: int, entry: dict[str, Any]) -> dict[str, Any]:
    """The row of ``table`` that the leaf at ``index`` binds (what a writer inserts)."""
    want = BINDINGS[table].expected(index, entry, None, None)
    unbound = [c for c, v in want.items() if isinstance(v, Digest)] + [
        c.name for c in TABLES[table].columns if c.name not in want
    ]
    if unbound:
        raise ValueError(f"a {table} leaf must bind every column; {unbound} are not in it")
    return want


# -- what a row must be --------------------------------------------------------------------------


@dataclass(frozen=True)
class Digest:
    """A column bound through its SHA-256 only (the body of a legacy leaf)."""

    sha256: str

    def matches(self, value: Any) -> bool:
        return isinstance(value, str) and digest_bytes(value.encode("utf-8")) == self.sha256


@dataclass
class View:
    """Leaves (parsed entries, by index) and the rows of the bound tables, to compare both ways.

    ``leaves`` holds every leaf of a :data:`BOUND_KINDS` kind that the rows should be
    compared with (all of the log for a full check; a case's for a reader), and, to name
    what a stray row points at, ``others`` the kind of any other leaf a row names.
    """

    leaves: dict[int, dict[str, Any]]
    rows: dict[str, list[dict[str, Any]]]
    log_size: int | None = None
    others: dict[int, tuple[Any, Any]] = field(default_factory=dict)  # index -> (kind, action)

    def __post_init__(self) -> None:
        self.record_rows_by_leaf: dict[int, dict[str, Any]] = {}
        for r in self.rows.get("custody_records", []):
            self.record_rows_by_leaf.setdefault(_int(r.get("leaf_index")), r)
        self.first_record_of: dict[str, int] = {}
        self.record_leaf_of: dict[str, int] = {}
        seqs: dict[str, int] = defaultdict(int)
        self.transfer_seq: dict[int, int] = {}
        for idx in sorted(self.leaves):
            e = self.leaves[idx]
            if e.get("kind") == "record":
                self.first_record_of.setdefault(str(e.get("item")), idx)
                self.record_leaf_of.setdefault(str(e.get("record_sha256")), idx)
            elif e.get("kind") == "transfer":
                seqs[str(e.get("record_sha256"))] += 1
                self.transfer_seq[idx] = seqs[str(e.get("record_sha256"))]

    def body(self, index: int, key: str, row: Mapping[str, Any] | None, column: str, sha: Any) -> Any:
        """The JSON body a leaf binds: in the entry, else (legacy) the row's column if it has the leaf's SHA-256."""
        entry = self.leaves.get(index, {})
        if key in entry:
            return entry[key]
        if row is not None and Digest(str(sha)).matches(row.get(column)):
            return json.loads(row[column])
        return None

    def problems(self, tables: Iterable[str]) -> list[tuple[str, str]]:
        """(check name, what is wrong) for every disagreement between the rows of ``tables`` and the leaves."""
        out: list[tuple[str, str]] = []
        for t in tables:
            found = BINDINGS[t].problems(self)
            out += found[:MAX_PROBLEMS]
            if len(found) > MAX_PROBLEMS:
                out.append((t, f"and {len(found) - MAX_PROBLEMS} more problems"))
        return out

    def legacy(self, table: str) -> list[str]:
        """Labels of the rows of ``table`` bound to legacy leaves (whose ids are not bound)."""
        b = BINDINGS[table]
        out = []
        for r in self.rows.get(table, []):
            li = r.get("leaf_index")
            e = self.leaves.get(_int(li)) if li is not None else None
            unbound_head = table == "evidence_heads" and li is None
            if unbound_head or (e is not None and b.id_field is not None and b.id_field not in e):
                out.append(b.label(r))
        return out


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def differs(column: str, have: Any, want: Any, source: str) -> str:
    """``column is X but SOURCE says Y``; for long texts, the place where they part."""
    if isinstance(have, str) and isinstance(want, str) and max(len(have), len(want)) > 72:
        at = next((i for i, (a, b) in enumerate(zip(have, want)) if a != b), min(len(have), len(want)))
        lo = max(0, at - 24)
        return (
            f"{column} differs from what {source} says at character {at}: "
            f"…{have[lo : at + 24]!r}… where it says …{want[lo : at + 24]!r}…"
        )
    return f"{column} is {have!r} but {source} says {want!r}"


def _short(sha: Any) -> str:
    return f"{str(sha)[:12]}…"


@dataclass(frozen=True)
class Binding:
    """How the rows of one table are bound to leaves (see the module docstring)."""

    table: str
    kind: str  # what the leaves are called in messages
    is_leaf: Callable[[int, dict[str, Any], View], bool]
    expected: Callable[[int, dict[str, Any], Mapping[str, Any] | None, View | None], dict[str, Any]]
    describe: Callable[[dict[str, Any]], str]
    key: str = "id"
    id_field: str | None = None

    def label(self, r: Mapping[str, Any]) -> str:
        return f"{self.table} row {r.get(self.key)}"

    def problems(self, view: View) -> list[tuple[str, str]]:
        rows: list[Mapping[str, Any]] = list(view.rows.get(self.table, []))
        by_leaf: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
        loose: list[Mapping[str, Any]] = []
        for r in rows:
            if r.get("leaf_index") is None:
                loose.append(r)
            else:
                by_leaf[_int(r["leaf_index"])].append(r)
        out: list[tuple[str, str]] = []
        for idx in sorted(i for i, e in view.leaves.items() if self.is_leaf(i, e, view)):
            leaf = view.leaves[idx]
            mine = by_leaf.pop(idx, [])
            if not mine:
                out.append(
                    (self.table, f"leaf {idx} ({self.describe(leaf)}) lost its row{self._hint(leaf)} — deleted?")
                )
                continue
            diffs = [(r, self._diff(idx, leaf, r, view)) for r in mine]
            good = [r for r, d in diffs if not d]
            for r, d in diffs:
                if not d:
                    continue
                if good:
                    out.append((self.label(r), f"on leaf {idx}, which binds {self.label(good[0])} — inserted?"))
                else:
                    out += [(self.label(r), p) for p in d]
            if len(mine) > 1 and not good:
                names = " and ".join(self.label(r).split(" row ")[1] for r in mine)
                out.append((self.table, f"rows {names} are all on leaf {idx}"))
        for idx, rs in sorted(by_leaf.items()):
            for r in rs:
                out.append((self.label(r), f"on leaf {r['leaf_index']}, {self._what(idx, view)} — inserted?"))
        out += self._loose(loose, view)
        return out

    def _diff(self, idx: int, entry: dict[str, Any], r: Mapping[str, Any], view: View) -> list[str]:
        try:
            want = self.expected(idx, entry, r, view)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
            return [f"leaf {idx} is not a well-formed {self.kind} entry ({type(err).__name__}: {err})"]
        out = []
        for column in (c.name for c in TABLES[self.table].columns):
            if column not in want:
                continue  # not bound by a legacy leaf (see View.legacy)
            have, exp = r.get(column), want[column]
            if isinstance(exp, Digest):
                if not exp.matches(have):
                    out.append(f"{column} is not the text whose SHA-256 leaf {idx} holds ({_short(exp.sha256)})")
            elif have != exp:
                out.append(differs(column, have, exp, f"leaf {idx}"))
        return out

    def _hint(self, entry: Mapping[str, Any]) -> str:
        """The id of the row a leaf binds, as the messages name it (nothing for a legacy leaf)."""
        if self.key == "sha256":
            return f" {entry.get('item')}"
        return f" {entry[self.id_field]}" if self.id_field and self.id_field in entry else ""

    def _what(self, idx: int, view: View) -> str:
        if idx in view.leaves:
            e = view.leaves[idx]
            return f"which is not a {self.kind} leaf (it is {_kind(e)})"
        if idx in view.others:
            kind, action = view.others[idx]
            return f"which is not a {self.kind} leaf (it is {_kind({'kind': kind, 'action': action})})"
        if view.log_size is not None:
            return f"which the log does not have (it has {view.log_size} leaves)"
        return "which the log does not have"

    def _loose(self, rows: list[Mapping[str, Any]], view: View) -> list[tuple[str, str]]:
        if self.table != "evidence_heads":
            return [(self.label(r), "has no leaf (leaf_index is empty) — inserted?") for r in rows]
        # heads signed before the binding have no leaf; any other head row without one was inserted
        bound = [_int(e.get("head_id")) for i, e in view.leaves.items() if e.get("kind") == "head"]
        first = min(bound) if bound else None
        out = []
        seen: set[tuple[Any, ...]] = set()
        for r in rows:
            what = (r.get("tree_size"), r.get("root_hash"), r.get("timestamp"), r.get("signature"))
            if first is not None and _int(r.get("id")) >= first:
                out.append((self.label(r), "has no head leaf but was signed after heads were bound — inserted?"))
            elif what in seen:
                out.append((self.label(r), "repeats another head row — inserted?"))
            seen.add(what)
        return out


def _kind(e: Mapping[str, Any]) -> str:
    kind = e.get("kind")
    if kind == "access":
        return f"an access entry ({e.get('action')})"
    return f"a {kind} entry"


# -- the tables -----------------------------------------------------------------------------------


def _records(idx: int, e: dict[str, Any], r: Mapping[str, Any] | None, view: View | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "case_id": e["case_id"],
        "item_sha256": e["item"],
        "category": e["category"],
        "record_sha256": e["record_sha256"],
        "leaf_index": idx,
        "created": seconds(e["time"]),
    }
    if "custody" in e:
        out["record"] = canonical(e["custody"]).decode("utf-8")
        body = e["custody"]
    else:
        out["record"] = Digest(e["record_sha256"])
        body = view.body(idx, "custody", r, "record", e["record_sha256"]) if view is not None else None
    if body is not None:
        out["derived"] = int(body.get("derivation") is not None)
    if "record_id" in e:
        out["id"] = int(e["record_id"])
    return out


def _transfers(idx: int, e: dict[str, Any], r: Mapping[str, Any] | None, view: View | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "from_holder": e["from"],
        "to_holder": e["to"],
        "transfer_sha256": e["transfer_sha256"],
        "leaf_index": idx,
    }
    if "transfer" in e:
        out["transfer"] = canonical(e["transfer"]).decode("utf-8")
        body = e["transfer"]
    else:
        out["transfer"] = Digest(e["transfer_sha256"])
        body = view.body(idx, "transfer", r, "transfer", e["transfer_sha256"]) if view is not None else None
    if body is not None:
        out["time"] = seconds(body["time"])
    if "transfer_id" in e:
        out["id"], out["record_id"], out["seq"] = int(e["transfer_id"]), int(e["record_id"]), int(e["seq"])
    elif view is not None:
        rec_leaf = view.record_leaf_of.get(str(e["record_sha256"]))
        rec = view.record_rows_by_leaf.get(rec_leaf) if rec_leaf is not None else None
        if rec is not None:
            out["record_id"] = rec.get("id")
        out["seq"] = view.transfer_seq.get(idx)
    return out


def _shares(idx: int, e: dict[str, Any], r: Mapping[str, Any] | None, view: View | None) -> dict[str, Any]:
    out = {
        "case_id": e["case_id"],
        "jurisdiction": e["with"],
        "shared_by": e["actor"],
        "time": seconds(e["time"]),
        "leaf_index": idx,
    }
    if "share_id" in e:
        out["id"] = int(e["share_id"])
    return out


def _items(idx: int, e: dict[str, Any], r: Mapping[str, Any] | None, view: View | None) -> dict[str, Any]:
    out: dict[str, Any] = {"sha256": e["item"], "stored": seconds(e["time"]), "leaf_index": idx}
    if "custody" in e:
        body = e["custody"]
    else:
        rec = view.record_rows_by_leaf.get(idx) if view is not None else None
        body = view.body(idx, "custody", rec, "record", e["record_sha256"]) if view is not None else None
    if body is not None:
        hashes = body["file"]["hashes"]
        out["size"] = int(body["file"]["size"])
        out["sm3"] = next((h["value"] for h in hashes if h["algorithm"] == "SM3"), None)
    return out


def _heads(idx: int, e: dict[str, Any], r: Mapping[str, Any] | None, view: View | None) -> dict[str, Any]:
    return {
        "id": int(e["head_id"]),
        "tree_size": int(e["tree_size"]),
        "root_hash": e["root_hash"],
        "timestamp": e["timestamp"],
        "time": seconds(e["timestamp"]),
        "agency": e["agency"],
        "key_fingerprint": e["key_fingerprint"],
        "signature": e["signature"],
        "public_key": e["public_key"],
        "leaf_index": idx,
    }


BINDINGS: dict[str, Binding] = {
    "custody_records": Binding(
        "custody_records",
        "record",
        lambda i, e, v: e.get("kind") == "record",
        _records,
        lambda e: f"record of sha256 {_short(e.get('item'))} in case {e.get('case_id')}",
        id_field="record_id",
    ),
    "custody_transfers": Binding(
        "custody_transfers",
        "transfer",
        lambda i, e, v: e.get("kind") == "transfer",
        _transfers,
        lambda e: (
            f"transfer of sha256 {_short(e.get('item'))} in case {e.get('case_id')}, {e.get('from')} → {e.get('to')}"
        ),
        id_field="transfer_id",
    ),
    "case_shares": Binding(
        "case_shares",
        "share",
        lambda i, e, v: e.get("kind") == "access" and e.get("action") == "share",
        _shares,
        lambda e: f"share of case {e.get('case_id')} with {e.get('with')} by {e.get('actor')}",
        id_field="share_id",
    ),
    "evidence_items": Binding(
        "evidence_items",
        "first record",
        lambda i, e, v: e.get("kind") == "record" and v.first_record_of.get(str(e.get("item"))) == i,
        _items,
        lambda e: f"the first record of file {_short(e.get('item'))}, in case {e.get('case_id')}",
        key="sha256",
    ),
    "evidence_heads": Binding(
        "evidence_heads",
        "head",
        lambda i, e, v: e.get("kind") == "head",
        _heads,
        lambda e: f"head of size {e.get('tree_size')} signed by {e.get('agency')}",
        id_field="head_id",
    ),
}
