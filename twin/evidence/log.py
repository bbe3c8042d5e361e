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
* ``evidence_heads``: signed tree heads (size, root, time, agency, key, signature). A
  head is itself recorded by a leaf (kind ``head``) appended right after it is signed,
  so a head row removed or changed is noticed like any other row
  (:mod:`twin.evidence.binding`).

Nothing here updates or deletes a leaf. :meth:`EvidenceLog.verify` re-hashes every
leaf from its data, recomputes every column of ``evidence_log`` from the entry, rebuilds
every interior node, the frontier and the root at each signed head's size, compares
each head row with its leaf and checks its signature: an entry changed, reordered or
removed makes every head signed after it fail, and each failure names the table and
row at fault. What no local check can notice is the removal of the newest leaves that
no signed head covers yet together with the state row rewound: that is what heads
held elsewhere (bundles, other agencies' witnesses) are for.

Readers (:meth:`EvidenceLog.entries`, :class:`Entry`) take time, actor, kind, case and
item from the entry itself, never from the columns beside it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from twin.evidence import binding, merkle
from twin.evidence.canonical import canonical
from twin.evidence.errors import EvidenceError, SigningKeyError, TamperError
from twin.evidence.keys import PublicKey, SignedHead, Signer, load_public_pem, sign_head
from twin.evidence.report import Report
from twin.ops.store import evidence_heads, evidence_log, evidence_log_nodes, evidence_log_state

KINDS = ("record", "transfer", "access", "export", "head")

# The append path in SQLAlchemy Core, every value a bound parameter. Each statement is built once
# here, so the engine finds it compiled in its statement cache; even so, Core costs 15-20 µs a
# statement above the driver on this project's machine (execution context, parameters, result
# object), and an append is three or four statements: lock, leaf, nodes (every other append),
# state. The lock is an UPDATE of the state row that changes nothing and returns it: in SQLite it
# takes the database's write lock, in PostgreSQL the row's, so appenders queue there and each
# reads the size the last one left. A log object that committed the last append itself skips the
# lock (:meth:`EvidenceLog.append_one`): its state UPDATE names the size and frontier it left,
# which takes the same lock, and changes nothing when another writer came first (the lock is then
# taken as usual). The rows of a batch go in one executemany per table.
_STATE = evidence_log_state.c
_LOCK = (
    sa.update(evidence_log_state).where(_STATE.id == 1).values(size=_STATE.size).returning(_STATE.size, _STATE.frontier)
)
_SET_STATE = sa.update(evidence_log_state).where(_STATE.id == 1)  # SET size, frontier: the parameters given
_SWAP_STATE = _SET_STATE.where(
    _STATE.size == sa.bindparam("seen_size"), _STATE.frontier == sa.bindparam("seen_frontier")
)
_INSERT_LEAF = sa.insert(evidence_log)
_INSERT_NODE = sa.insert(evidence_log_nodes)
_SCAN = sa.select(
    *(evidence_log.c[name] for name in ("idx", "leaf_hash", "data", "time", "actor", "kind", "case_id", "item_sha256"))
).order_by(evidence_log.c.idx)
_NODES = sa.select(evidence_log_nodes.c.id, evidence_log_nodes.c.hash)


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
        return binding.parse_entry(self.data) or {}


@dataclass
class State:
    """The locked log state of a write transaction: its size and frontier."""

    frontier: merkle.Frontier


@dataclass(frozen=True)
class _Seen:
    """A state of the log as stored: its size, the frontier's text and nodes."""

    size: int
    text: str
    nodes: tuple[tuple[int, bytes], ...]

    def frontier(self) -> merkle.Frontier:
        return merkle.Frontier(self.size, list(self.nodes))


def _state(size: Any, text: str) -> State:
    nodes = [(int(level), bytes.fromhex(h)) for level, h in json.loads(text)]
    return State(merkle.Frontier(int(size), nodes))


@dataclass
class _Batch:
    """Entries made leaves on a frontier: the rows and nodes to insert, and the frontier after them."""

    entries: list[Entry]
    rows: list[dict[str, Any]]
    nodes: list[dict[str, Any]]
    state: _Seen

    @property
    def frontier(self) -> str:
        return self.state.text

    @classmethod
    def of(cls, entries: Sequence[dict[str, Any]], fr: merkle.Frontier) -> _Batch:
        """Check and hash ``entries`` as the next leaves after ``fr`` (which they extend)."""
        rows, nodes, out = [], [], []
        for e in entries:
            if e.get("kind") not in KINDS:
                raise EvidenceError(f"log entry kind {e.get('kind')!r} is not one of {list(KINDS)}")
            if not e.get("actor"):
                raise EvidenceError("a log entry names who did it (actor); give --by NAME")
            data = canonical(e)
            leaf = merkle.leaf_hash(data)
            cols = binding.log_columns(e)
            entry = Entry(
                fr.size, leaf, data, cols["time"], cols["actor"], cols["kind"], cols["case_id"], cols["item_sha256"]
            )
            for level, index, h in fr.append(leaf)[1:]:
                nodes.append({"id": node_id(level, index), "hash": h.hex()})
            rows.append({"idx": entry.index, "leaf_hash": leaf.hex(), "data": data.decode("utf-8")} | cols)
            out.append(entry)
        text = json.dumps([[level, h.hex()] for level, h in fr.nodes])
        return cls(out, rows, nodes, _Seen(fr.size, text, tuple(fr.nodes)))

    def insert(self, conn: sa.Connection) -> None:
        """The leaves and the nodes they complete, one statement (an executemany) per table."""
        if self.rows:
            conn.execute(_INSERT_LEAF, self.rows)
        if self.nodes:
            conn.execute(_INSERT_NODE, self.nodes)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class EvidenceLog:
    """The Merkle log in the store behind ``engine``."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self._seen: _Seen | None = None  # the state this object's last append_one committed

    # -- appending ------------------------------------------------------------------------------
    def lock(self, conn: sa.Connection) -> State:
        """Take the append lock in ``conn``'s transaction (first, before reading) and read the state."""
        row = conn.execute(_LOCK).first()
        if row is None:
            raise TamperError(
                "the log's state (evidence_log_state row 1) is missing, so nothing can be appended; "
                "run `twin evidence check` and restore the store"
            )
        return _state(row.size, row.frontier)

    def append(self, conn: sa.Connection, entries: Sequence[dict[str, Any]], state: State | None = None) -> list[Entry]:
        """Append entries in ``conn``'s transaction; returns them with their indexes.

        Each entry is a JSON-able dict with at least ``kind`` (:data:`KINDS`), ``time``
        (ISO 8601 UTC) and ``actor``; ``case_id`` and ``item`` are indexed when present.
        Call :meth:`lock` first when the transaction reads anything it then appends about.
        """
        st = state or self.lock(conn)
        batch = _Batch.of(entries, st.frontier)
        batch.insert(conn)
        conn.execute(_SET_STATE, {"size": st.frontier.size, "frontier": batch.frontier})
        return batch.entries

    def append_one(self, entry: dict[str, Any]) -> Entry:
        """Append one entry in a transaction of its own.

        When the state this log committed last is still the store's, the lock is the state's
        own update (see the note above :data:`_LOCK`); otherwise it is taken as :meth:`append` does.
        """
        seen = self._seen
        with self.engine.begin() as conn:
            swapped = None
            if seen is not None:
                batch = _Batch.of([entry], seen.frontier())
                params = {"seen_size": seen.size, "seen_frontier": seen.text}
                if conn.execute(_SWAP_STATE, {"size": seen.size + 1, "frontier": batch.frontier} | params).rowcount:
                    swapped = batch
            if swapped is None:  # first append here, or another writer came first: lock and read
                st = self.lock(conn)
                batch = _Batch.of([entry], st.frontier)
                conn.execute(_SET_STATE, {"size": st.frontier.size, "frontier": batch.frontier})
            batch.insert(conn)
        self._seen = batch.state
        return batch.entries[0]

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
        """Entries in order, optionally of one case and of some kinds, as the entries say.

        The case and kind are those of each entry, not of the columns beside it (which
        only a check vouches for), so every entry is read: an edited column neither hides
        an entry nor shows it under another case.
        """
        q = sa.select(evidence_log.c.idx, evidence_log.c.leaf_hash, evidence_log.c.data).where(
            evidence_log.c.idx >= start
        )
        wanted = set(kinds) if kinds else None
        with self.engine.connect() as c:
            for row in c.execute(q.order_by(evidence_log.c.idx)):
                e = _entry(row)
                if (case_id is None or e.case_id == case_id) and (wanted is None or e.kind in wanted):
                    yield e

    # -- signed heads ---------------------------------------------------------------------------
    def sign(self, signer: Signer, conn: sa.Connection | None = None) -> SignedHead:
        """Sign the head of the log as it is now, and keep it."""
        if conn is None:
            with self.engine.begin() as c:
                return self.sign(signer, c)
        st = self.lock(conn)
        head = sign_head(signer, st.frontier.size, st.frontier.root())
        entry = binding.head_entry(
            head_id=binding.next_id(conn, evidence_heads),
            head=head.to_json(),
            public_key=signer.public.pem.decode("ascii"),
        )
        (leaf,) = self.append(conn, [entry], st)  # the head's own record, covered by the next head
        conn.execute(evidence_heads.insert(), binding.row("evidence_heads", leaf.index, entry))
        return head

    def heads(self) -> list[tuple[SignedHead, PublicKey]]:
        """Signed heads, oldest first, with the public key kept beside each.

        Raises
        ------
        TamperError
            A head row is not as its leaf says (see :meth:`verify`).
        """
        with self.engine.connect() as c:
            rows = [dict(r._mapping) for r in c.execute(sa.select(evidence_heads).order_by(evidence_heads.c.id))]
            at = [int(r["leaf_index"]) for r in rows if isinstance(r["leaf_index"], int)]
            leaves = {}
            if at:
                q = sa.select(evidence_log.c.idx, evidence_log.c.data).where(evidence_log.c.idx.in_(at))
                leaves = {int(i): binding.parse_entry(d) or {} for i, d in c.execute(q)}
        view = binding.View({i: e for i, e in leaves.items() if e.get("kind") == "head"}, {"evidence_heads": rows})
        bad = [p for p in view.problems(["evidence_heads"]) if p[0] != "evidence_heads" or "has no row" not in p[1]]
        if bad:
            raise TamperError(f"{bad[0][0]}: {bad[0][1]}; run `twin evidence check`")
        return [(_head(r), load_public_pem(r["public_key"].encode("ascii"), r["agency"])) for r in rows]

    # -- verification ---------------------------------------------------------------------------
    def verify(self, public_keys: Callable[[str], PublicKey | None] | None = None) -> Report:
        """Re-hash every leaf, recompute its columns, rebuild every node and each signed head's root;
        compare each head row with its leaf; check the signatures.

        ``public_keys(agency)`` gives the agency's published key (e.g. from the keys
        folder); without it (or when it returns None) the key kept with the head is
        used, which proves integrity only against someone who could not replace both.
        Each failure is a check of its own, named after the table and row at fault.
        """
        return self.verify_entries(public_keys)[0]

    def verify_entries(
        self, public_keys: Callable[[str], PublicKey | None] | None = None
    ) -> tuple[Report, binding.View]:
        """:meth:`verify`, and the view it read: every leaf of a kind that binds a row of
        some table (:data:`twin.evidence.binding.BOUND_KINDS`), parsed, for the ledger's
        own checks; read in the same single pass over the log."""
        report = Report("evidence log")
        bound: dict[int, dict[str, Any]] = {}
        others: dict[int, tuple[Any, Any]] = {}
        problems: list[tuple[str, str]] = []
        with self.engine.connect() as c:
            states = [dict(r._mapping) for r in c.execute(sa.select(evidence_log_state))]
            heads = [dict(r._mapping) for r in c.execute(sa.select(evidence_heads).order_by(evidence_heads.c.id))]
            sizes = {_int(h["tree_size"]) for h in heads}
            leaves: list[bytes] = []
            gaps = []
            expect = 0
            one = [s for s in states if s["id"] == 1]
            size = _int(one[0]["size"]) if one else -1
            if size < 0:  # no usable state: every row counts
                last = c.execute(sa.select(sa.func.coalesce(sa.func.max(evidence_log.c.idx), -1))).scalar_one()
                size = int(last) + 1
            beyond = []
            leaf_hash, parse, columns = merkle.leaf_hash, binding.parse_entry, binding.log_columns
            # one pass over the log, fetched in batches rather than held whole
            for idx, stored, text, *have in c.execute(_SCAN.execution_options(yield_per=10_000)):
                if idx >= size:
                    beyond.append(idx)
                    continue
                if idx != expect:
                    gaps.append((expect, idx))
                    expect = idx
                data = text if isinstance(text, bytes) else str(text).encode("utf-8")
                leaf = leaf_hash(data)
                if leaf.hex() != stored:
                    problems.append(
                        (f"evidence_log row {idx}", f"leaf_hash is {stored!r} but its data hashes to {leaf.hex()!r}")
                    )
                entry = parse(text)
                try:
                    cols = columns(entry) if entry is not None else None
                except (KeyError, TypeError, ValueError):
                    cols = None
                if cols is None:
                    problems.append((f"evidence_log row {idx}", "its data is not a log entry"))
                else:
                    assert entry is not None
                    if have != list(cols.values()):
                        for (name, want), got in zip(cols.items(), have):
                            if got != want:
                                problems.append(
                                    (f"evidence_log row {idx}", binding.differs(name, got, want, "its entry"))
                                )
                    kind = entry["kind"]
                    if kind in binding.BOUND_KINDS and (kind != "access" or entry.get("action") == "share"):
                        bound[idx] = entry
                    else:
                        others[idx] = (kind, entry.get("action"))
                leaves.append(leaf)
                expect += 1
            stored_nodes = [tuple(r) for r in c.execute(_NODES)]
        tree = merkle.MemoryTree(leaves)
        fr = merkle.Frontier.load(len(leaves), tree.node)
        roots = {size: tree.root(size) for size in sizes if 0 <= size <= len(leaves)}
        n = len(leaves)
        missing = [
            (
                "evidence_log",
                f"rows {a}..{b - 1} are missing — deleted?" if b - 1 > a else f"row {a} is missing — deleted?",
            )
            for a, b in gaps
        ]
        if expect < size and n:  # the last rows are gone and the state was not rewound, or the state is wrong
            what = f"rows {expect}..{size - 1}" if size - 1 > expect else f"row {expect}"
            missing.append(("evidence_log", f"{what}, counted by evidence_log_state, are missing — deleted?"))
        extra = [
            (f"evidence_log row {i}", f"lies beyond the log's size in evidence_log_state ({size}) — inserted?")
            for i in beyond
        ]
        report_problems(
            report,
            "evidence_log",
            missing + extra + problems,
            f"{n} leaves, indexes 0..{n - 1}, each as its entry says",
        )
        report_problems(
            report,
            "evidence_log_state",
            self._check_state(states, n, fr),
            f"size {n}, frontier of {len(fr.nodes)} subtrees, as the leaves give",
        )
        report_problems(
            report,
            "evidence_log_nodes",
            _node_problems(stored_nodes, tree),
            f"{len(stored_nodes)} nodes, as the leaves give",
        )
        view = binding.View(bound, {"evidence_heads": heads}, log_size=n, others=others)
        head_problems = view.problems(["evidence_heads"])
        report_problems(report, "evidence_heads", head_problems, f"{len(heads)} heads, each as its head leaf says")
        legacy = view.legacy("evidence_heads")
        if legacy:
            report.note(
                f"{len(legacy)} signed heads ({', '.join(x.split(' row ')[1] for x in legacy[:5])}"
                f"{'...' if len(legacy) > 5 else ''}) were signed before heads were recorded in the log "
                "(migration 0007): they are checked against the log and their signatures, but their removal "
                "would not be noticed"
            )
        for h in heads:
            self._check_head(report, h, n, roots, public_keys)
        covered = max((_int(h["tree_size"]) for h in heads), default=0)
        if n - covered > 1:
            report.note(
                f"leaves {covered}..{n - 1} are not yet covered by a signed head; sign one (`twin evidence sign`) "
                "so that their removal could be noticed"
            )
        return report, view

    @staticmethod
    def _check_state(states: list[dict[str, Any]], n: int, fr: merkle.Frontier) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        frontier = [[level, h.hex()] for level, h in fr.nodes]
        one = [s for s in states if s["id"] == 1]
        for s in states:
            if s["id"] != 1:
                problems.append(
                    (
                        f"evidence_log_state row {s['id']}",
                        "the log's state is one row, id 1; this one was inserted or renumbered",
                    )
                )
        if not one:
            problems.append(("evidence_log_state", "row 1 is missing — deleted? (appends need it)"))
            return problems
        s = one[0]
        if s["size"] != n:
            problems.append(("evidence_log_state row 1", f"size is {s['size']!r} but the log has {n} leaves"))
        try:
            ok = json.loads(s["frontier"]) == frontier
        except (TypeError, ValueError):
            ok = False
        if not ok:
            problems.append(
                ("evidence_log_state row 1", "frontier is not the leaves' (appends would build a wrong tree)")
            )
        return problems

    @staticmethod
    def _check_head(
        report: Report,
        h: dict[str, Any],
        n: int,
        roots: dict[int, bytes],
        public_keys: Callable[[str], PublicKey | None] | None,
    ) -> None:
        size = _int(h["tree_size"])
        what = f"signed head #{h['id']} (size {h['tree_size']}, {h['agency']}, {h['timestamp']})"
        if size > n or size < 0:
            report.check(what, False, f"covers {size} leaves but the log has {n}: entries were removed")
            return
        got = roots.get(size)
        if got is None or got.hex() != h["root_hash"]:
            report.check(
                what,
                False,
                f"root does not match the log: some of its first {size} entries were changed, reordered or removed",
            )
            return
        try:
            head = _head(h)
            kept = load_public_pem(str(h["public_key"]).encode("ascii", "replace"), str(h["agency"]))
        except TamperError as err:
            report.check(what, False, str(err))
            return
        key = public_keys(str(h["agency"])) if public_keys else None
        source = "published key"
        if key is None:
            key, source = kept, "key kept with the head"
        if key.fingerprint != head.key_fingerprint:
            report.check(
                what,
                False,
                f"signed with key {head.key_fingerprint[:16]}..., not {h['agency']}'s {key.fingerprint[:16]}...",
            )
        elif not key.verify(head.signature, head.data):
            report.check(what, False, "Ed25519 signature does not verify: the head was altered")
        else:
            report.check(what, True, f"root matches; signature verifies ({source} {key.fingerprint[:16]}...)")


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def report_problems(report: Report, table: str, problems: list[tuple[str, str]], ok_detail: str) -> None:
    """One passing check for a table, or one failing check per problem (the first few, then a count)."""
    if not problems:
        report.check(table, True, ok_detail)
        return
    for name, detail in problems[: binding.MAX_PROBLEMS]:
        report.check(name, False, detail)
    if len(problems) > binding.MAX_PROBLEMS:
        report.check(table, False, f"and {len(problems) - binding.MAX_PROBLEMS} more problems")


def _node_problems(stored: list[tuple[Any, Any]], tree: merkle.MemoryTree) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    seen = set()
    n = len(tree.levels[0]) if tree.levels else 0
    for nid, h in stored:
        level, index = _int(nid) & 63, _int(nid) >> 6
        name = f"evidence_log_nodes row {nid}"
        if level < 1 or level >= len(tree.levels) or index >= len(tree.levels[level]) or _int(nid) < 0:
            out.append((name, f"no subtree at level {level}, index {index} in a log of {n} leaves — inserted?"))
            continue
        seen.add((level, index))
        want = tree.levels[level][index].hex()
        if h != want:
            out.append(
                (name, f"hash of the subtree at level {level}, index {index} is {h!r} but the leaves give {want!r}")
            )
    if len(seen) == sum(len(lv) for lv in tree.levels[1:]):
        return out
    for level in range(1, len(tree.levels)):
        for index in range(len(tree.levels[level])):
            if (level, index) not in seen:
                out.append(
                    (
                        "evidence_log_nodes",
                        f"row {node_id(level, index)} (the subtree at level {level}, index {index}) is missing — deleted?",
                    )
                )
    return out


def _entry(row: Any) -> Entry:
    """An entry from its row: time, actor, kind, case and item as the entry's data says."""
    data = row.data if isinstance(row.data, bytes) else str(row.data).encode("utf-8")
    value = binding.parse_entry(data) or {}
    try:
        cols = binding.log_columns(value)
    except (KeyError, TypeError, ValueError):
        cols = {"time": 0, "actor": "", "kind": "", "case_id": None, "item_sha256": None}
    return Entry(
        int(row.idx),
        bytes.fromhex(row.leaf_hash) if _is_hex(row.leaf_hash) else b"",
        data,
        cols["time"],
        cols["actor"],
        cols["kind"],
        cols["case_id"],
        cols["item_sha256"],
    )


def _is_hex(value: Any) -> bool:
    try:
        bytes.fromhex(value)
    except (TypeError, ValueError):
        return False
    return True


def _head(row: Any) -> SignedHead:
    """A signed head from its row (a mapping); :class:`TamperError` when a field is not of its form."""
    try:
        return SignedHead(
            int(row["tree_size"]),
            bytes.fromhex(row["root_hash"]),
            str(row["timestamp"]),
            str(row["agency"]),
            str(row["key_fingerprint"]),
            base64.b64decode(row["signature"], validate=True),
        )
    except (TypeError, ValueError) as err:
        raise TamperError(f"the head row is not a signed head ({err})") from None


def key_lookup(twin_dir: Any, folder: Any = None) -> Callable[[str], PublicKey | None]:
    """``agency → public key`` from the keys folder (None for an agency without one there)."""
    from twin.evidence.keys import public_key

    def find(agency: str) -> PublicKey | None:
        try:
            return public_key(twin_dir, agency, folder)
        except SigningKeyError:
            return None

    return find
