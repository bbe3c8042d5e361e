"""RFC 6962 Merkle hashing: known answers from a naive implementation of the RFC's definitions, and properties.

The naive functions below are written straight from RFC 6962 §2.1 on lists of leaf
data (slicing, recursion), independently of :mod:`twin.evidence.merkle`, which works
from stored subtree hashes and a frontier.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.evidence import merkle

# -- the RFC's definitions, naively -------------------------------------------------------------------


def H(b: bytes) -> bytes:  # noqa: N802 - the RFC's names, so the code reads as its definitions
    return hashlib.sha256(b).digest()


def k_of(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def MTH(D: list[bytes]) -> bytes:  # noqa: N802
    n = len(D)
    if n == 0:
        return H(b"")
    if n == 1:
        return H(b"\x00" + D[0])
    k = k_of(n)
    return H(b"\x01" + MTH(D[:k]) + MTH(D[k:]))


def PATH(m: int, D: list[bytes]) -> list[bytes]:  # noqa: N802
    n = len(D)
    if n == 1:
        return []
    k = k_of(n)
    if m < k:
        return PATH(m, D[:k]) + [MTH(D[k:])]
    return PATH(m - k, D[k:]) + [MTH(D[:k])]


def SUBPROOF(m: int, D: list[bytes], b: bool) -> list[bytes]:  # noqa: N802
    n = len(D)
    if m == n:
        return [] if b else [MTH(D)]
    k = k_of(n)
    if m <= k:
        return SUBPROOF(m, D[:k], b) + [MTH(D[k:])]
    return SUBPROOF(m - k, D[k:], False) + [MTH(D[:k])]


def PROOF(m: int, D: list[bytes]) -> list[bytes]:  # noqa: N802
    return SUBPROOF(m, D, True)


def data(n: int) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(n)]


def tree(D: list[bytes]) -> merkle.MemoryTree:
    return merkle.MemoryTree([merkle.leaf_hash(d) for d in D])


# -- known answers ------------------------------------------------------------------------------------

# The eight leaves of the certificate-transparency reference tests, and the tree heads of their
# first 1..8 leaves; the naive MTH above gives the same values, so both are checked against both.
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_leaf_and_node_hashing_follow_rfc6962():
    assert merkle.leaf_hash(b"abc") == H(b"\x00abc")
    assert merkle.node_hash(b"L" * 32, b"R" * 32) == H(b"\x01" + b"L" * 32 + b"R" * 32)
    assert merkle.empty_root() == H(b"") == MTH([])
    # a leaf's hash is not the hash of a node with the same bytes: second-preimage resistance
    assert merkle.leaf_hash(b"L" * 32 + b"R" * 32) != merkle.node_hash(b"L" * 32, b"R" * 32)


@pytest.mark.parametrize("n", range(1, 9))
def test_tree_heads_of_the_reference_leaves(n):
    t = tree(CT_LEAVES)
    assert MTH(CT_LEAVES[:n]).hex() == CT_ROOTS[n - 1]
    assert t.root(n).hex() == CT_ROOTS[n - 1]
    fr = merkle.Frontier()
    fr.extend(merkle.leaf_hash(d) for d in CT_LEAVES[:n])
    assert fr.root().hex() == CT_ROOTS[n - 1]


def test_known_audit_path_of_leaf_5_in_7():
    D = data(7)
    # PATH(5, D[7]) = PATH(1, D[4:7]) : MTH(D[0:4]) = [MTH(D[4:5]), MTH(D[6:7]), MTH(D[0:4])]
    want = [MTH(D[4:5]), MTH(D[6:7]), MTH(D[0:4])]
    assert PATH(5, D) == want
    assert merkle.inclusion_proof(5, 7, tree(D).node) == want


def test_known_consistency_proofs_of_the_rfc_example():
    # RFC 6962 §2.1.3: from 3 to 7 leaves the proof is [c, d, g, l]; from 4 to 7 it is [l]; from 6 to 7 [i, j, k]
    D = data(7)
    c, d, g = MTH(D[2:3]), MTH(D[3:4]), MTH(D[0:2])
    i, j, k, l_ = MTH(D[4:6]), MTH(D[6:7]), MTH(D[0:4]), MTH(D[4:7])
    node = tree(D).node
    assert merkle.consistency_proof(3, 7, node) == PROOF(3, D) == [c, d, g, l_]
    assert merkle.consistency_proof(4, 7, node) == PROOF(4, D) == [l_]
    assert merkle.consistency_proof(6, 7, node) == PROOF(6, D) == [i, j, k]


# -- every size, every index, every old size, up to N --------------------------------------------------

N = 40


@pytest.mark.parametrize("n", range(1, N + 1))
def test_all_inclusion_and_consistency_proofs_match_the_definitions(n):
    D = data(n)
    t = tree(D)
    root = MTH(D)
    assert t.root(n) == root
    assert merkle.root(n, t.node) == root
    for m in range(n):
        path = merkle.inclusion_proof(m, n, t.node)
        assert path == PATH(m, D)
        assert merkle.verify_inclusion(merkle.leaf_hash(D[m]), m, n, path, root)
        assert not merkle.verify_inclusion(merkle.leaf_hash(D[m] + b"x"), m, n, path, root)
        if n > 1:
            assert not merkle.verify_inclusion(merkle.leaf_hash(D[m]), (m + 1) % n, n, path, root)
    for old in range(1, n + 1):
        proof = merkle.consistency_proof(old, n, t.node)
        assert proof == PROOF(old, D)
        assert merkle.verify_consistency(old, n, MTH(D[:old]), root, proof)
        if old < n:
            assert not merkle.verify_consistency(old, n, MTH(D[: old + 1]), root, proof)
            assert not merkle.verify_consistency(old, n, MTH(D[:old]), MTH(D[: n - 1]), proof)


def test_frontier_gives_every_node_the_tree_has():
    D = data(37)
    t = tree(D)
    fr = merkle.Frontier()
    made = {}
    for d in D:
        for level, index, h in fr.append(merkle.leaf_hash(d)):
            made[(level, index)] = h
        assert fr.root() == MTH(D[: fr.size])
        assert [lv for lv, _ in fr.nodes] == [lv for lv, _ in merkle.Frontier.positions(fr.size)]
    want = {(lv, i): h for lv, level in enumerate(t.levels) for i, h in enumerate(level)}
    assert made == want
    again = merkle.Frontier.load(37, t.node)
    assert again.root() == fr.root() and again.nodes == fr.nodes


def test_proofs_read_few_nodes():
    # an inclusion proof at a million leaves needs O(log^2 n) stored nodes, not the leaves
    need = merkle.nodes_needed(merkle.inclusion_proof, 123_456, 1_000_003)
    assert len(need) < 20 * 20
    assert merkle.nodes_needed(merkle.root, 1 << 20) == {(20, 0)}


def test_no_proof_outside_the_tree():
    t = tree(data(4))
    with pytest.raises(merkle.ProofError):
        merkle.inclusion_proof(4, 4, t.node)
    with pytest.raises(merkle.ProofError):
        merkle.consistency_proof(0, 4, t.node)
    with pytest.raises(merkle.ProofError):
        merkle.consistency_proof(5, 4, t.node)
    assert not merkle.verify_inclusion(b"x" * 32, 0, 0, [], merkle.empty_root())
    assert not merkle.verify_consistency(0, 4, merkle.empty_root(), t.root(), [])


# -- properties at random sizes -----------------------------------------------------------------------


@st.composite
def tree_and_index(draw):
    n = draw(st.integers(1, 3000))
    return n, draw(st.integers(0, n - 1)), draw(st.integers(1, n))


TREES: dict[int, merkle.MemoryTree] = {}


def big(n: int) -> merkle.MemoryTree:
    if 3000 not in TREES:
        TREES[3000] = tree(data(3000))
    return TREES[3000]  # the first n leaves of this tree are the tree of n leaves


@settings(max_examples=200, deadline=None)
@given(tree_and_index(), st.data())
def test_proofs_verify_and_any_change_breaks_them(case, draw):
    n, m, old = case
    t = big(n)
    root = merkle.root(n, t.node)
    leaf = t.node(0, m)
    path = merkle.inclusion_proof(m, n, t.node)
    assert merkle.verify_inclusion(leaf, m, n, path, root)
    if path:
        k = draw.draw(st.integers(0, len(path) - 1))
        bit = draw.draw(st.integers(0, 255))
        bad = list(path)
        bad[k] = bytes([bad[k][0] ^ 1]) + bad[k][1:] if bit < 128 else bad[k][:-1] + bytes([bad[k][-1] ^ 0x80])
        assert not merkle.verify_inclusion(leaf, m, n, bad, root)
        assert not merkle.verify_inclusion(leaf, m, n, path[:-1], root)
    assert not merkle.verify_inclusion(leaf, m, n, [*path, root], root)
    proof = merkle.consistency_proof(old, n, t.node)
    old_root = merkle.root(old, t.node)
    assert merkle.verify_consistency(old, n, old_root, root, proof)
    if proof:
        assert not merkle.verify_consistency(old, n, old_root, root, proof[1:])
        assert not merkle.verify_consistency(old, n, old_root, root, [*proof, root])
        k = draw.draw(st.integers(0, len(proof) - 1))
        bad = list(proof)
        bad[k] = bytes([bad[k][0] ^ 4]) + bad[k][1:]
        assert not merkle.verify_consistency(old, n, old_root, root, bad)
