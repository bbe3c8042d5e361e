"""The append-only Merkle log of the evidence ledger, in the operations store.

Every custody record, transfer, access and export is a *leaf*: the canonical JSON of
the entry (:func:`twin.evidence.canonical.canonical`), hashed as RFC 6962 does
(``H(0x00 || data)``), at the next index. The log keeps, in the store:

* ``evidence_log``: index, leaf hash, data, time, actor, kind, case and item;
* ``evidence_log_nodes``: the hash of every complete subtree (2, 4, 8 ... leaves
  aligned on their size), written as appends complete them: a proof reads
  O(log² n) of them in two queries (:func:`twin.evidence.merkle.nodes_needed`);
* ``evidence_log_state``: one row holding the size and the frontier (the complete
  subtrees of the binary decomposition of the size), so an append is O(log n)
  without reading the log. Updating that row first is the append lock, in
  SQLite and in PostgreSQL alike: appends from several processes are serialised,
  each gets the next index;
* ``evidence_heads``: signed tree heads (size, root, time, agency, key, signature).

Nothing here updates or deletes a leaf. :meth:`EvidenceLog.verify` re-hashes every
leaf from its data, rebuilds every interior node and the root at each signed head's
size, and checks each head's signature: an entry changed, reordered or removed makes
every head signed after it fail.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..store import evidence_heads, evidence_log, evidence_log_nodes, evidence_log_state
from . import merkle
from .canonical import canonical
from .errors import EvidenceError, SigningKeyError, TamperError
from .keys import PublicKey, SignedHead, Signer, load_public_pem, sign_head
from .report import Report

KINDS = ("record", "transfer", "access", "export")

# An append is four small statements. Through SQLAlchemy's statement machinery (cache keys,
# compiled parameters, result objects) they cost three times what the database does, so the
# append path runs them on the DB-API cursor of the transaction's connection, written once with
# named parameters and rendered in the driver's parameter style; the tables are still the ones
# twin.store declares (5,300 → 7,500 single-transaction appends/s on SQLite).
_LOCK = "UPDATE evidence_log_state SET size = size WHERE id = 1 RETURNING size, frontier"
_SET_STATE = "UPDATE evidence_log_state SET size = :size, frontier = :frontier WHERE id = 1"
_INSERT_LEAF = (
    "INSERT INTO evidence_log (idx, leaf_hash, data, time, actor, kind, case_id, item_sha256) "
    "VALUES (:idx, :leaf_hash, :data, :time, :actor, :kind, :case_id, :item_sha256)"
)
_INSERT_NODE = "INSERT INTO evidence_log_nodes (id, hash) VALUES (:id, :hash)"
_NAMED = re.compile(r":([a-z_][a-z0-9_]*)")


@functools.lru_cache(maxsize=64)
def _render(sql: str, paramstyle: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` with ``:name`` parameters in a DB-API paramstyle, and the names in order."""
    names = tuple(_NAMED.findall(sql))
    style = {
        "qmark": lambda m: "?",
        "format": lambda m: "%s",
        "pyformat": lambda m: f"%({m.group(1)})s",
        "named": lambda m: m.group(0),
    }
    if paramstyle == "numeric":
        counter = iter(range(1, len(names) + 1))
        return _NAMED.sub(lambda m: f":{next(counter)}", sql), names
    return _NAMED.sub(style[paramstyle], sql), names


def _run(conn: sa.Connection, sql: str, params: Any = None) -> Any:
    """Execute driver SQL with named parameters (one dict, or a list of them) on a DB-API cursor
    of ``conn``'s connection, in its transaction; returns the first row, if the SQL returns any."""
    text, names = _render(sql, conn.dialect.paramstyle)
    positional = conn.dialect.paramstyle in ("qmark", "format", "numeric")

    def one(p: dict[str, Any]) -> Any:
        return tuple(p[n] for n in names) if positional else p

    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if params is None:
            cursor.execute(text)
        elif isinstance(params, list):
            cursor.executemany(text, [one(p) for p in params])
        else:
            cursor.execute(text, one(params))
        return cursor.fetchone() if cursor.description else None
    finally:
        cursor.close()


def node_id(level: int, index: int) -> int:
    return (index << 6) | level


@dataclass(frozen=True)
class Entry:
    """A leaf of the log."""

    index: int
    leaf_hash: bytes
    data: bytes
    time: int
    actor: str
    kind: str
    case_id: str | None
    item_sha256: str | None

    @property
    def value(self) -> dict[str, Any]:
        return dict(json.loads(self.data))


@dataclass
class State:
    """The locked log state of a write transaction: its size and frontier."""

    frontier: merkle.Frontier


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class EvidenceLog:
    """The Merkle log in the store behind ``engine``."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine

    # -- appending ------------------------------------------------------------------------------
    def lock(self, conn: sa.Connection) -> State:
        """Take the append lock in ``conn``'s transaction (first, before reading) and read the state."""
        size, frontier = _run(conn, _LOCK)
        nodes = [(int(level), bytes.fromhex(h)) for level, h in json.loads(frontier)]
        return State(merkle.Frontier(int(size), nodes))

    def append(self, conn: sa.Connection, entries: Sequence[dict[str, Any]], state: State | None = None) -> list[Entry]:
        """Append entries in ``conn``'s transaction; returns them with their indexes.

        Each entry is a JSON-able dict with at least ``kind`` (:data:`KINDS`), ``time``
        (ISO 8601 UTC) and ``actor``; ``case_id`` and ``item`` are indexed when present.
        Call :meth:`lock` first when the transaction reads anything it then appends about.
        """
        st = state or self.lock(conn)
        fr = st.frontier
        rows, nodes, out = [], [], []
        for e in entries:
            if e.get("kind") not in KINDS:
                raise EvidenceError(f"log entry kind {e.get('kind')!r} is not one of {list(KINDS)}")
            if not e.get("actor"):
                raise EvidenceError("a log entry names who did it (actor); give --by NAME")
            data = canonical(e)
            leaf = merkle.leaf_hash(data)
            when = dt.datetime.fromisoformat(str(e["time"]).replace("Z", "+00:00"))
            entry = Entry(
                fr.size, leaf, data, int(when.timestamp()), str(e["actor"]), e["kind"], e.get("case_id"), e.get("item")
            )
            for level, index, h in fr.append(leaf)[1:]:
                nodes.append({"id": node_id(level, index), "hash": h.hex()})
            rows.append(
                {
                    "idx": entry.index,
                    "leaf_hash": leaf.hex(),
                    "data": data.decode("utf-8"),
                    "time": entry.time,
                    "actor": entry.actor,
                    "kind": entry.kind,
                    "case_id": entry.case_id,
                    "item_sha256": entry.item_sha256,
                }
            )
            out.append(entry)
        if rows:
            _run(conn, _INSERT_LEAF, rows if len(rows) > 1 else rows[0])
        if nodes:
            _run(conn, _INSERT_NODE, nodes if len(nodes) > 1 else nodes[0])
        frontier = json.dumps([[level, h.hex()] for level, h in fr.nodes])
        _run(conn, _SET_STATE, {"size": fr.size, "frontier": frontier})
        return out

    def append_one(self, entry: dict[str, Any]) -> Entry:
        """Append one entry in a transaction of its own."""
        with self.engine.begin() as conn:
            return self.append(conn, [entry])[0]

    # -- reading --------------------------------------------------------------------------------
    def size(self, conn: sa.Connection | None = None) -> int:
        q = sa.select(evidence_log_state.c.size)
        if conn is not None:
            return int(conn.execute(q).scalar_one())
        with self.engine.connect() as c:
            return int(c.execute(q).scalar_one())

    def _node_reader(self, conn: sa.Connection, wanted: set[tuple[int, int]]) -> merkle.Node:
        """An oracle over the stored nodes, fetched in (at most) two queries."""
        leaves = [i for level, i in wanted if level == 0]
        inner = [node_id(level, i) for level, i in wanted if level > 0]
        found: dict[tuple[int, int], bytes] = {}
        if leaves:
            for idx, h in conn.execute(
                sa.select(evidence_log.c.idx, evidence_log.c.leaf_hash).where(evidence_log.c.idx.in_(leaves))
            ):
                found[(0, int(idx))] = bytes.fromhex(h)
        if inner:
            for nid, h in conn.execute(
                sa.select(evidence_log_nodes.c.id, evidence_log_nodes.c.hash).where(evidence_log_nodes.c.id.in_(inner))
            ):
                found[(int(nid) & 63, int(nid) >> 6)] = bytes.fromhex(h)

        def node(level: int, index: int) -> bytes:
            try:
                return found[(level, index)]
            except KeyError:
                raise TamperError(
                    f"the log store has no hash for the subtree at level {level}, index {index}: "
                    "entries or nodes were removed; run `twin evidence check` and restore the store"
                ) from None

        return node

    def _with_nodes(self, fn: Callable[..., Any], *args: int, conn: sa.Connection | None = None) -> Any:
        wanted = merkle.nodes_needed(fn, *args)
        if conn is not None:
            return fn(*args, self._node_reader(conn, wanted))
        with self.engine.connect() as c:
            return fn(*args, self._node_reader(c, wanted))

    def root(self, size: int | None = None, conn: sa.Connection | None = None) -> bytes:
        """The tree hash of the first ``size`` leaves (default: all)."""
        n = self.size(conn) if size is None else size
        self._check_size(n, conn)
        return bytes(self._with_nodes(merkle.root, n, conn=conn)) if n else merkle.empty_root()

    def inclusion_proof(self, index: int, size: int | None = None, conn: sa.Connection | None = None) -> list[bytes]:
        """The audit path of leaf ``index`` in the tree of ``size`` leaves (default: all)."""
        n = self.size(conn) if size is None else size
        self._check_size(n, conn)
        try:
            return list(self._with_nodes(merkle.inclusion_proof, index, n, conn=conn))
        except merkle.ProofError as err:
            raise EvidenceError(str(err)) from None

    def consistency_proof(
        self, old_size: int, new_size: int | None = None, conn: sa.Connection | None = None
    ) -> list[bytes]:
        """The proof that the tree of ``old_size`` leaves is a prefix of the one of ``new_size``."""
        n = self.size(conn) if new_size is None else new_size
        self._check_size(n, conn)
        try:
            return list(self._with_nodes(merkle.consistency_proof, old_size, n, conn=conn))
        except merkle.ProofError as err:
            raise EvidenceError(str(err)) from None

    def _check_size(self, n: int, conn: sa.Connection | None) -> None:
        have = self.size(conn)
        if n > have:
            raise EvidenceError(f"the log has {have} entries; no tree of {n} leaves exists yet")

    def entry(self, index: int, conn: sa.Connection | None = None) -> Entry:
        q = sa.select(evidence_log).where(evidence_log.c.idx == index)
        if conn is not None:
            row = conn.execute(q).first()
        else:
            with self.engine.connect() as c:
                row = c.execute(q).first()
        if row is None:
            raise EvidenceError(f"the log has no entry {index}")
        return _entry(row)

    def entries(
        self, case_id: str | None = None, kinds: Sequence[str] | None = None, start: int = 0
    ) -> Iterator[Entry]:
        """Entries in order, optionally of one case and of some kinds."""
        q = sa.select(evidence_log).where(evidence_log.c.idx >= start).order_by(evidence_log.c.idx)
        if case_id is not None:
            q = q.where(evidence_log.c.case_id == case_id)
        if kinds:
            q = q.where(evidence_log.c.kind.in_(list(kinds)))
        with self.engine.connect() as c:
            for row in c.execute(q):
                yield _entry(row)

    # -- signed heads ---------------------------------------------------------------------------
    def sign(self, signer: Signer, conn: sa.Connection | None = None) -> SignedHead:
        """Sign the head of the log as it is now, and keep it."""
        if conn is None:
            with self.engine.begin() as c:
                return self.sign(signer, c)
        st = self.lock(conn)
        head = sign_head(signer, st.frontier.size, st.frontier.root())
        conn.execute(
            evidence_heads.insert().values(
                tree_size=head.tree_size,
                root_hash=head.root_hash.hex(),
                timestamp=head.timestamp,
                time=int(dt.datetime.fromisoformat(head.timestamp.replace("Z", "+00:00")).timestamp()),
                agency=head.agency,
                key_fingerprint=head.key_fingerprint,
                signature=base64.b64encode(head.signature).decode("ascii"),
                public_key=signer.public.pem.decode("ascii"),
            )
        )
        return head

    def heads(self) -> list[tuple[SignedHead, PublicKey]]:
        """Signed heads, oldest first, with the public key kept beside each."""
        with self.engine.connect() as c:
            rows = c.execute(sa.select(evidence_heads).order_by(evidence_heads.c.id)).all()
        return [(_head(r), load_public_pem(r.public_key.encode("ascii"), r.agency)) for r in rows]

    # -- verification ---------------------------------------------------------------------------
    def verify(self, public_keys: Callable[[str], PublicKey | None] | None = None) -> Report:
        """Re-hash every leaf, rebuild every node and each signed head's root; check the signatures.

        ``public_keys(agency)`` gives the agency's published key (e.g. from the keys
        folder); without it (or when it returns None) the key kept with the head is
        used, which proves integrity only against someone who could not replace both.
        """
        report = Report("evidence log")
        with self.engine.connect() as c:
            state = c.execute(sa.select(evidence_log_state)).one()
            heads = c.execute(sa.select(evidence_heads).order_by(evidence_heads.c.id)).all()
            sizes = {int(h.tree_size) for h in heads}
            roots: dict[int, bytes] = {0: merkle.empty_root()}
            leaves: list[bytes] = []
            fr = merkle.Frontier()
            bad_leaves, gaps = [], []
            expect = 0
            for idx, data, stored in c.execute(
                sa.select(evidence_log.c.idx, evidence_log.c.data, evidence_log.c.leaf_hash).order_by(
                    evidence_log.c.idx
                )
            ):
                if idx != expect:
                    gaps.append((expect, int(idx)))
                    expect = int(idx)
                leaf = merkle.leaf_hash(data.encode("utf-8"))
                if leaf.hex() != stored:
                    bad_leaves.append(int(idx))
                leaves.append(leaf)
                fr.append(leaf)
                expect += 1
                if fr.size in sizes:
                    roots[fr.size] = fr.root()
            stored_nodes = dict(c.execute(sa.select(evidence_log_nodes.c.id, evidence_log_nodes.c.hash)).all())
        n = len(leaves)
        report.check(
            "leaves are contiguous",
            not gaps,
            f"{n} leaves, indexes 0..{n - 1}"
            if not gaps
            else "entries missing: " + ", ".join(f"{a}..{b - 1}" for a, b in gaps[:5]) + " (removed from the log)",
        )
        report.check(
            "leaf hashes match their data",
            not bad_leaves,
            f"{n} leaves re-hashed"
            if not bad_leaves
            else f"leaves {bad_leaves[:10]} were altered after they were written",
        )
        frontier_ok = json.loads(state.frontier) == [[level, h.hex()] for level, h in fr.nodes]
        report.check(
            "log state",
            int(state.size) == n and frontier_ok,
            f"size {n}, frontier of {len(fr.nodes)} subtrees"
            if int(state.size) == n and frontier_ok
            else f"the state says {int(state.size)} leaves, the log has {n}"
            + ("" if frontier_ok else "; its frontier is not the leaves' (appends would build a wrong tree)"),
        )
        tree = merkle.MemoryTree(leaves)
        wrong_nodes = []
        for nid, h in stored_nodes.items():
            level, index = int(nid) & 63, int(nid) >> 6
            if level >= len(tree.levels) or index >= len(tree.levels[level]) or tree.levels[level][index].hex() != h:
                wrong_nodes.append((level, index))
        expected_nodes = sum(len(lv) for lv in tree.levels[1:])
        report.check(
            "interior nodes match the leaves",
            not wrong_nodes and len(stored_nodes) == expected_nodes,
            f"{len(stored_nodes)} nodes"
            if not wrong_nodes and len(stored_nodes) == expected_nodes
            else f"{len(wrong_nodes)} stored nodes differ from the leaves (first {wrong_nodes[:3]}), "
            f"{expected_nodes - len(stored_nodes) + len(wrong_nodes)} expected",
        )
        for h in heads:
            size = int(h.tree_size)
            what = f"signed head #{h.id} (size {size}, {h.agency}, {h.timestamp})"
            if size > n:
                report.check(what, False, f"covers {size} leaves but the log has {n}: entries were removed")
                continue
            got = roots[size]
            if got.hex() != h.root_hash:
                report.check(
                    what,
                    False,
                    f"root does not match the log: some of its first {size} entries were changed, reordered or removed",
                )
                continue
            head = _head(h)
            key = public_keys(h.agency) if public_keys else None
            source = "published key"
            if key is None:
                key, source = load_public_pem(h.public_key.encode("ascii"), h.agency), "key kept with the head"
            if key.fingerprint != head.key_fingerprint:
                report.check(
                    what,
                    False,
                    f"signed with key {head.key_fingerprint[:16]}..., not {h.agency}'s {key.fingerprint[:16]}...",
                )
            elif not key.verify(head.signature, head.data):
                report.check(what, False, "Ed25519 signature does not verify: the head was altered")
            else:
                report.check(what, True, f"root matches; signature verifies ({source} {key.fingerprint[:16]}...)")
        return report


def _entry(row: Any) -> Entry:
    return Entry(
        int(row.idx),
        bytes.fromhex(row.leaf_hash),
        row.data.encode("utf-8"),
        int(row.time),
        row.actor,
        row.kind,
        row.case_id,
        row.item_sha256,
    )


def _head(row: Any) -> SignedHead:
    return SignedHead(
        int(row.tree_size),
        bytes.fromhex(row.root_hash),
        row.timestamp,
        row.agency,
        row.key_fingerprint,
        base64.b64decode(row.signature),
    )


def key_lookup(twin_dir: Any, folder: Any = None) -> Callable[[str], PublicKey | None]:
    """``agency → public key`` from the keys folder (None for an agency without one there)."""
    from .keys import public_key

    def find(agency: str) -> PublicKey | None:
        try:
            return public_key(twin_dir, agency, folder)
        except SigningKeyError:
            return None

    return find
