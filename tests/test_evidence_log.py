"""The append-only log in the operations store: appends, proofs at many sizes, signed heads, and tampering."""

from __future__ import annotations

import json
import os
import stat
import threading
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from twin.cli import cli
from twin.evidence import EvidenceLog, init_keys, merkle
from twin.evidence.errors import EvidenceError, SigningKeyError, TamperError
from twin.evidence.keys import Signer, load_public_pem
from twin.evidence.log import iso, utc_now
from twin.ops import store
from twin.ops.store import evidence_heads, evidence_log, evidence_log_nodes


@pytest.fixture
def engine(tmp_path):
    e = store.connect(f"sqlite:///{tmp_path / 'ops.sqlite'}")
    yield e
    e.dispose()


@pytest.fixture
def signer(tmp_path):
    (tmp_path / "twin.json").write_text("{}")
    init_keys(tmp_path, "DDT-Lozere")
    return Signer(tmp_path, "DDT-Lozere")


def entry(i: int) -> dict:
    return {"kind": "access", "time": iso(utc_now()), "actor": f"user{i % 3}", "action": "get", "n": i}


def leaf_data(engine) -> list[bytes]:
    with engine.connect() as c:
        return [d.encode() for (d,) in c.execute(sa.select(evidence_log.c.data).order_by(evidence_log.c.idx))]


def test_appends_and_proofs_at_every_size_match_a_tree_of_the_leaves(engine):
    log = EvidenceLog(engine)
    for i in range(70):
        log.append_one(entry(i))
        n = i + 1
        leaves = [merkle.leaf_hash(d) for d in leaf_data(engine)]
        t = merkle.MemoryTree(leaves)
        root = log.root()
        assert root == t.root(n) == log.root(n)
        for m in {0, n // 2, n - 1}:
            path = log.inclusion_proof(m, n)
            assert path == merkle.inclusion_proof(m, n, t.node)
            assert merkle.verify_inclusion(leaves[m], m, n, path, root)
        for old in {1, (n + 1) // 2, n}:
            proof = log.consistency_proof(old, n)
            assert merkle.verify_consistency(old, n, log.root(old), root, proof)
    # proofs against every older size of the grown log
    t = merkle.MemoryTree([merkle.leaf_hash(d) for d in leaf_data(engine)])
    for size in range(1, 71):
        for m in range(0, size, 7):
            assert log.inclusion_proof(m, size) == merkle.inclusion_proof(m, size, t.node)
    assert log.verify().ok


def test_a_batch_gives_the_same_tree_as_single_appends(tmp_path):
    entries = [{"kind": "record", "time": "2026-09-03T08:00:00Z", "actor": "a", "n": i} for i in range(300)]
    roots = []
    for name, batch in (("one", 1), ("many", 64)):
        e = store.connect(f"sqlite:///{tmp_path / name}.sqlite")
        log = EvidenceLog(e)
        for k in range(0, len(entries), batch):
            with e.begin() as c:
                got = log.append(c, entries[k : k + batch])
            assert [g.index for g in got] == list(range(k, min(k + batch, 300)))
        roots.append(log.root())
        assert log.verify().ok
        e.dispose()
    assert roots[0] == roots[1]


def test_concurrent_appenders_each_get_the_next_index(engine):
    log = EvidenceLog(engine)
    errors = []

    def work(w: int) -> None:
        try:
            for i in range(60):
                log.append_one(entry(1000 * w + i))
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert log.size() == 180
    assert sorted(json.loads(d)["n"] for d in leaf_data(engine)) == sorted(
        1000 * w + i for w in range(3) for i in range(60)
    )
    assert log.verify().ok


def test_bad_entries_and_sizes_are_refused(engine):
    log = EvidenceLog(engine)
    with pytest.raises(EvidenceError, match="kind"):
        log.append_one({"kind": "gossip", "time": iso(utc_now()), "actor": "x"})
    with pytest.raises(EvidenceError, match="actor"):
        log.append_one({"kind": "access", "time": iso(utc_now()), "actor": ""})
    log.append_one(entry(0))
    with pytest.raises(EvidenceError, match="no tree of 5 leaves"):
        log.inclusion_proof(0, 5)
    with pytest.raises(EvidenceError, match="not in a tree of 1"):
        log.inclusion_proof(3, 1)


# -- signed heads and tampering -----------------------------------------------------------------------


@pytest.fixture
def signed_log(engine, signer):
    """A log with heads signed at sizes 5, 10 and 20 (each head adds its own leaf: 21 leaves in all)."""
    log = EvidenceLog(engine)
    i = 0
    for size in (5, 10, 20):
        while log.size() < size:
            log.append_one(entry(i))
            i += 1
        log.sign(signer)
    return log


def head_results(report) -> dict[int, bool]:
    return {
        int(c.name.split("size ")[1].split(",")[0]): c.ok for c in report.checks if c.name.startswith("signed head")
    }


def test_signed_heads_verify(signed_log, signer):
    report = signed_log.verify(lambda agency: signer.public)
    assert report.ok, report.lines()
    assert head_results(report) == {5: True, 10: True, 20: True}
    heads = signed_log.heads()
    assert [h.tree_size for h, _ in heads] == [5, 10, 20]
    # each head is recorded by the leaf after it: who signed, the root and the signature
    for (h, _), at in zip(heads, (5, 10, 20)):
        value = signed_log.entry(at).value
        assert (value["kind"], value["tree_size"], value["root_hash"]) == ("head", h.tree_size, h.root_hash.hex())
    # heads are consistent with each other: each older tree is a prefix of the newer
    (h5, key), (h20, _) = heads[0], heads[2]
    proof = signed_log.consistency_proof(5, 20)
    assert merkle.verify_consistency(5, 20, h5.root_hash, h20.root_hash, proof)
    assert h5.verify(key) and h5.verify(signer.public)


def test_a_changed_entry_fails_every_later_head(engine, signed_log):
    with engine.begin() as c:  # rewritten, leaf hash and all, as someone with database access could
        data = json.dumps(
            {"kind": "access", "time": "2026-01-01T00:00:00Z", "actor": "nobody", "n": 7},
            separators=(",", ":"),
            sort_keys=True,
        )
        c.execute(
            evidence_log.update()
            .where(evidence_log.c.idx == 7)
            .values(data=data, leaf_hash=merkle.leaf_hash(data.encode()).hex())
        )
    report = signed_log.verify()
    assert head_results(report) == {5: True, 10: False, 20: False}
    bad = {c.name: c.detail for c in report.failures}
    assert any("some of its first 10 entries were changed, reordered or removed" in d for d in bad.values())
    assert any(name.startswith("evidence_log_nodes row ") for name in bad)  # the nodes above leaf 7
    assert bad["evidence_log row 7"] == "actor is 'user0' but its entry says 'nobody'"  # the column was left


def test_a_changed_entry_without_its_hash_is_named(engine, signed_log):
    with engine.begin() as c:
        c.execute(evidence_log.update().where(evidence_log.c.idx == 2).values(data='{"kind":"access"}'))
    report = signed_log.verify()
    row2 = [c.detail for c in report.failures if c.name == "evidence_log row 2"]
    assert any(d.startswith("leaf_hash is '") and "but its data hashes to" in d for d in row2), row2
    assert "its data is not a log entry" in row2  # it has no time or actor
    assert head_results(report) == {5: False, 10: False, 20: False}


def test_reordered_entries_fail_the_heads(engine, signed_log):
    with engine.begin() as c:
        rows = {r.idx: r for r in c.execute(sa.select(evidence_log).where(evidence_log.c.idx.in_([11, 12])))}
        for a, b in ((11, 12), (12, 11)):
            c.execute(
                evidence_log.update()
                .where(evidence_log.c.idx == a)
                .values(data=rows[b].data, leaf_hash=rows[b].leaf_hash)
            )
    report = signed_log.verify()
    assert not report.ok
    assert head_results(report) == {5: True, 10: True, 20: False}


def test_a_dropped_entry_fails_the_log(engine, signed_log):
    with engine.begin() as c:
        c.execute(evidence_log.delete().where(evidence_log.c.idx == 3))
    report = signed_log.verify()
    failed = {c.name: c.detail for c in report.failures}
    assert failed["evidence_log"] == "row 3 is missing — deleted?"
    assert head_results(report) == {5: False, 10: False, 20: False}
    with pytest.raises(TamperError, match="no hash for the subtree at level 0, index 3"):
        signed_log.inclusion_proof(2, 20)  # leaf 3 is leaf 2's sibling


def test_a_dropped_and_renumbered_tail_fails_the_last_head(engine, signed_log):
    with engine.begin() as c:  # the last entries removed and the state wound back, as a careful forger would
        c.execute(evidence_log.delete().where(evidence_log.c.idx >= 19))
        c.execute(store.evidence_log_state.update().values(size=19))
    report = signed_log.verify()
    failed = {c.name: c.detail for c in report.failures}
    assert any("covers 20 leaves but the log has 19" in d for d in failed.values())
    assert failed["evidence_heads row 3"] == "on leaf 20, which the log does not have (it has 19 leaves) — inserted?"
    assert head_results(report) == {5: True, 10: True, 20: False}


def test_a_forged_head_or_a_stored_node_is_caught(engine, signed_log, tmp_path):
    with engine.begin() as c:
        c.execute(evidence_log_nodes.update().where(evidence_log_nodes.c.id == (0 << 6 | 3)).values(hash="00" * 32))
        c.execute(
            evidence_heads.update()
            .where(evidence_heads.c.tree_size == 10)
            .values(timestamp="2030-01-01T00:00:00.000000Z")
        )
    report = signed_log.verify()
    failed = {c.name: c.detail for c in report.failures}
    assert failed["evidence_log_nodes row 3"].startswith("hash of the subtree at level 3, index 0 is '0000")
    assert any("signature does not verify" in d for d in failed.values())
    assert failed["evidence_heads row 2"].startswith("timestamp is '2030-01-01T00:00:00.000000Z' but leaf 10 says")


# -- keys -----------------------------------------------------------------------------------------------


def test_keys_init_writes_a_private_key_only_its_owner_reads(tmp_path):
    (tmp_path / "twin.json").write_text("{}")
    result = CliRunner().invoke(cli, ["keys", "init", str(tmp_path), "--agency", "EPB-Gard"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    key = tmp_path / "keys" / "EPB-Gard.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert b"PRIVATE KEY" in key.read_bytes()
    assert "PRIVATE" not in result.output and key.read_text().splitlines()[1] not in result.output
    pub = load_public_pem((tmp_path / "keys" / "EPB-Gard.pub").read_bytes())
    assert out["fingerprint"] == pub.fingerprint and len(pub.raw) == 32
    again = CliRunner().invoke(cli, ["keys", "init", str(tmp_path), "--agency", "EPB-Gard"])
    assert again.exit_code == 1 and "has a key" in again.output and "never replaced" in again.output
    bad = CliRunner().invoke(cli, ["keys", "init", str(tmp_path), "--agency", "../etc"])
    assert bad.exit_code == 1 and "agency name '../etc' is not allowed" in bad.output
    listed = CliRunner().invoke(cli, ["keys", "list", str(tmp_path)])
    assert json.loads(listed.output) == {"agency": "EPB-Gard", "fingerprint": pub.fingerprint}


def test_a_key_readable_by_others_is_refused(tmp_path):
    (tmp_path / "twin.json").write_text("{}")
    init_keys(tmp_path, "A")
    os.chmod(tmp_path / "keys" / "A.key", 0o644)
    with pytest.raises(SigningKeyError, match="readable by others.*chmod 600"):
        Signer(tmp_path, "A")
    with pytest.raises(SigningKeyError, match="no signing key for agency 'B'"):
        Signer(tmp_path, "B")
    os.chmod(tmp_path / "keys" / "A.key", 0o600)
    assert repr(Signer(tmp_path, "A")).startswith("Signer(agency='A', fingerprint=")


def test_a_head_signed_by_another_key_does_not_verify(tmp_path, engine):
    (tmp_path / "twin.json").write_text("{}")
    init_keys(tmp_path, "A")
    init_keys(tmp_path, "B")
    log = EvidenceLog(engine)
    log.append_one(entry(0))
    head = log.sign(Signer(tmp_path, "A"))
    assert head.verify(Signer(tmp_path, "A").public)
    assert not head.verify(Signer(tmp_path, "B").public)
    report = log.verify(lambda agency: Signer(tmp_path, "B").public)  # a published key that is not the signer's
    assert not report.ok and "not A's" in report.failures[0].detail


# -- the SQL: bound parameters, several processes, SQLite and PostgreSQL ------------------------------

#: texts that would break out of a quoted SQL literal, or look like a parameter of some driver's style
HOSTILE = [
    "O'Brien",
    "x'); DROP TABLE evidence_log; --",
    "'; DROP TABLE evidence_log_state; --",
    'say "hi"; DELETE FROM evidence_heads',
    "back\\slash \\' and %s %(idx)s ? :size $1",
    "案件 'C-1' — l'Hérault",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def any_engine(request, tmp_path):
    """A migrated store on SQLite, then on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ops.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_database")
    e = store.connect(url)
    yield e
    e.dispose()


def test_an_entrys_text_reaches_the_store_verbatim_as_bound_parameters(any_engine, signer):
    sent: list[tuple[str, Any]] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, parameters))

    sa.event.listen(any_engine, "before_cursor_execute", seen)
    log = EvidenceLog(any_engine)
    for text in HOSTILE:  # single appends, then a batch
        log.append_one({"kind": "access", "time": iso(utc_now()), "actor": text, "case_id": text, "action": text})
    with any_engine.begin() as c:
        log.append(c, [{"kind": "export", "time": iso(utc_now()), "actor": t, "case_id": t, "to": t} for t in HOSTILE])
    log.sign(signer)
    sa.event.remove(any_engine, "before_cursor_execute", seen)
    # what the driver got: the texts among the parameters, never in the SQL
    assert not [(sql, t) for sql, _ in sent for t in HOSTILE if t in sql]
    values = {v for _, params in sent for v in _values(params) if isinstance(v, str)}
    assert set(HOSTILE) <= values
    with any_engine.connect() as c:
        rows = c.execute(sa.select(evidence_log.c.actor, evidence_log.c.case_id).order_by(evidence_log.c.idx)).all()
    assert [tuple(r) for r in rows[: 2 * len(HOSTILE)]] == [(t, t) for t in HOSTILE * 2]  # every table still there
    assert set(sa.inspect(any_engine).get_table_names()) >= {"evidence_log", "evidence_log_state", "evidence_heads"}
    for text in HOSTILE:
        got = list(log.entries(case_id=text))
        assert [(e.kind, e.actor, e.value.get("action", e.value.get("to"))) for e in got] == [
            ("access", text, text),
            ("export", text, text),
        ]
    report = log.verify(lambda agency: signer.public)
    assert report.ok, report.lines()
    assert log.size() == 2 * len(HOSTILE) + 1


def _values(params: Any) -> list[Any]:
    """The values of a statement's parameters: one set or many, by name or by position."""
    if isinstance(params, dict):
        return list(params.values())
    if isinstance(params, list | tuple):
        return [v for p in params for v in (_values(p) if isinstance(p, dict | list | tuple) else [p])]
    return [params]


def _append_many(url: str, worker: int, n: int) -> str:
    """Append ``n`` entries one transaction each, in a process of its own; what went wrong, or ''."""
    engine = store.connect(url)
    try:
        log = EvidenceLog(engine)
        for i in range(n):
            log.append_one(entry(1000 * worker + i))
    except Exception as err:  # reported to the test, which names it
        return repr(err)
    finally:
        engine.dispose()
    return ""


def test_appends_from_several_processes_are_serialised_without_gaps(any_engine):
    """Writers in three processes at once (each a log object of its own, so each finds the state moved by
    the others), and one more in this process: every entry gets an index, none twice, none missing."""
    import multiprocessing

    url = any_engine.url.render_as_string(hide_password=False)
    here = EvidenceLog(any_engine)
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        pending = pool.starmap_async(_append_many, [(url, w, 40) for w in range(1, 4)])
        while not pending.ready():
            here.append_one(entry(-1))
        assert pending.get() == [""] * 3
    ours = here.size()
    with any_engine.connect() as c:
        indexes = c.execute(sa.select(evidence_log.c.idx).order_by(evidence_log.c.idx)).scalars().all()
    assert indexes == list(range(ours))
    ns = [json.loads(d)["n"] for d in leaf_data(any_engine)]
    assert sorted(n for n in ns if n >= 1000) == sorted(1000 * w + i for w in range(1, 4) for i in range(40))
    assert ns.count(-1) == ours - 120 > 0  # this process wrote between them
    assert log_ok(any_engine)


def log_ok(engine) -> bool:
    report = EvidenceLog(engine).verify()
    assert report.ok, report.lines()
    return True


def test_an_append_after_another_writers_finds_the_state_it_left(engine):
    """Two log objects on one store take turns: each append finds the state moved by the other."""
    a, b = EvidenceLog(engine), EvidenceLog(engine)
    got = [(a if i % 2 else b).append_one(entry(i)).index for i in range(40)]
    assert got == list(range(40))
    with engine.begin() as c:  # an append in a transaction that is rolled back leaves no trace
        a.append(c, [entry(99)])
        c.rollback()
    assert [a.append_one(entry(40)).index, b.append_one(entry(41)).index] == [40, 41]
    assert log_ok(engine) and a.size() == 42
