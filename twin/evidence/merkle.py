"""Merkle tree hashes of RFC 6962 (§2.1): the tree hash, audit paths and consistency proofs.

Written from the RFC's definitions, for a list of ``n`` leaves ``D[n]``::

    MTH({})          = H()                                  (the hash of nothing)
    MTH({d0})        = H(0x00 || d0)                        (a leaf)
    MTH(D[n])        = H(0x01 || MTH(D[0:k]) || MTH(D[k:n]))  k: the largest power of 2 < n

    PATH(m, D[n])    = PATH(m, D[0:k]) : MTH(D[k:n])          m < k
                     = PATH(m - k, D[k:n]) : MTH(D[0:k])      m >= k
    PROOF(m, D[n])   = SUBPROOF(m, D[n], true)
    SUBPROOF(m, D[m], true)  = {}
    SUBPROOF(m, D[m], false) = {MTH(D[m])}
    SUBPROOF(m, D[n], b)     = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])       m <= k
                             = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])  m > k

Every range the recursion visits starts at a multiple of a power of two at least as
large as the range, so its left part ``D[s:s+k]`` is a *complete* subtree: ``2^j``
leaves starting at a multiple of ``2^j``. Proofs are therefore computed here from an
oracle ``node(level, index)`` that returns the hash of the complete subtree of
``2^level`` leaves starting at leaf ``index * 2^level`` (level 0: the leaf hashes).
The log keeps those hashes in its store, so a proof reads O(log² n) of them instead
of hashing the whole log; :func:`nodes_needed` names them in advance so they can be
fetched in one query.

Appending uses the tree's *frontier* (:class:`Frontier`): the hashes of the complete
subtrees that the binary decomposition of ``n`` splits the leaves into, largest
first. Adding a leaf merges equal-sized subtrees from the right (O(log n), amortised
O(1)); the root is the frontier folded from the right, which is MTH by the
definition above.

Verification (:func:`verify_inclusion`, :func:`verify_consistency`) walks the same
recursion with the proof consumed from its end, rebuilding the root(s); a proof with
an element too many or too few fails. Hashes are ``bytes``; the hash function is
SHA-256.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"

Node = Callable[[int, int], bytes]
"""``node(level, index)``: the hash of the complete subtree of ``2**level`` leaves from leaf ``index << level``."""


class ProofError(ValueError):
    """Arguments no proof exists for (an index outside the tree, an old size larger than the new)."""


def leaf_hash(data: bytes) -> bytes:
    """``H(0x00 || data)``."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``H(0x01 || left || right)``."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def empty_root() -> bytes:
    """The tree hash of no leaves: the hash of the empty string."""
    return hashlib.sha256(b"").digest()


def split(n: int) -> int:
    """The largest power of two strictly less than ``n`` (``n`` >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_root(start: int, size: int, node: Node) -> bytes:
    """MTH of ``size`` leaves from ``start``, a range the RFC recursion visits (see the module docstring)."""
    if size & (size - 1) == 0:  # complete: a stored node
        level = size.bit_length() - 1
        return node(level, start >> level)
    k = split(size)
    return node_hash(subtree_root(start, k, node), subtree_root(start + k, size - k, node))


def root(size: int, node: Node) -> bytes:
    """MTH of the first ``size`` leaves."""
    return subtree_root(0, size, node) if size else empty_root()


def inclusion_proof(index: int, size: int, node: Node) -> list[bytes]:
    """PATH(index, D[size]): the audit path of leaf ``index`` in the tree of ``size`` leaves."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of {size} leaves (0..{size - 1})")
    out: list[bytes] = []
    start, m, n = 0, index, size
    # PATH(m, D[n]) = PATH(inner) : sibling; siblings are found top down and so collected in reverse
    while n > 1:
        k = split(n)
        if m < k:
            out.append(subtree_root(start + k, n - k, node))
            n = k
        else:
            out.append(subtree_root(start, k, node))
            start, m, n = start + k, m - k, n - k
    out.reverse()
    return out


def consistency_proof(old_size: int, new_size: int, node: Node) -> list[bytes]:
    """PROOF(old_size, D[new_size]): that the tree of ``old_size`` leaves is a prefix of the new one."""
    if not 0 < old_size <= new_size:
        raise ProofError(f"no consistency proof from size {old_size} to {new_size}; need 0 < old <= new")
    out: list[bytes] = []
    start, m, n, whole = 0, old_size, new_size, True
    while m != n:
        k = split(n)
        if m <= k:
            out.append(subtree_root(start + k, n - k, node))
            n = k
        else:
            out.append(subtree_root(start, k, node))
            start, m, n, whole = start + k, m - k, n - k, False
    if not whole:
        out.append(subtree_root(start, m, node))
    out.reverse()
    return out


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], expected_root: bytes) -> bool:
    """Whether ``path`` proves that ``leaf`` (a leaf hash) is leaf ``index`` of the tree with ``expected_root``."""
    if not 0 <= index < size:
        return False
    # the recursion from the top, recording which side each sibling is on, then folding from the leaf up
    sides: list[bool] = []  # True: the sibling is on the right
    m, n = index, size
    while n > 1:
        k = split(n)
        if m < k:
            sides.append(True)
            n = k
        else:
            sides.append(False)
            m, n = m - k, n - k
    if len(sides) != len(path):
        return False
    h = leaf
    for sibling, right in zip(path, reversed(sides)):
        h = node_hash(h, sibling) if right else node_hash(sibling, h)
    return h == expected_root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """Whether ``proof`` shows the tree (``old_size``, ``old_root``) is a prefix of (``new_size``, ``new_root``)."""
    if not 0 < old_size <= new_size:
        return False
    steps: list[bool] = []  # per level from the top: True when the old tree lies in the left part
    m, n, whole = old_size, new_size, True
    while m != n:
        k = split(n)
        if m <= k:
            steps.append(True)
            n = k
        else:
            steps.append(False)
            m, n, whole = m - k, n - k, False
    rest = list(proof)
    if len(rest) != len(steps) + (0 if whole else 1):
        return False
    if whole:  # SUBPROOF(m, D[m], true) = {}: the bottom of the recursion is the old tree itself
        old_h = new_h = old_root
    else:
        old_h = new_h = rest[0]
        rest = rest[1:]
    for sibling, left_part in zip(rest, reversed(steps)):
        if left_part:  # the old tree is inside the left part; the sibling is the new right part
            new_h = node_hash(new_h, sibling)
        else:  # the sibling is a complete left part that both trees share
            old_h = node_hash(sibling, old_h)
            new_h = node_hash(sibling, new_h)
    return old_h == old_root and new_h == new_root


def nodes_needed(fn: Callable[..., object], *args: int) -> set[tuple[int, int]]:
    """The ``(level, index)`` nodes that ``fn(*args, node)`` reads (e.g. ``inclusion_proof``), to fetch at once."""
    seen: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        seen.add((level, index))
        return bytes(HASH_SIZE)

    fn(*args, record)
    return seen


@dataclass
class Frontier:
    """The complete subtrees of a tree of ``size`` leaves, largest first, as ``(level, hash)``.

    ``append`` returns the nodes it completes as ``(level, index, hash)`` (the leaf itself
    first), which the log stores for its proofs.
    """

    size: int = 0
    nodes: list[tuple[int, bytes]] = field(default_factory=list)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        index = self.size
        made = [(0, index, leaf)]
        level, h = 0, leaf
        while self.nodes and self.nodes[-1][0] == level:
            _, left = self.nodes.pop()
            h = node_hash(left, h)
            level += 1
            made.append((level, index >> level, h))
        self.nodes.append((level, h))
        self.size += 1
        return made

    def extend(self, leaves: Iterable[bytes]) -> list[tuple[int, int, bytes]]:
        made: list[tuple[int, int, bytes]] = []
        for leaf in leaves:
            made += self.append(leaf)
        return made

    def root(self) -> bytes:
        if not self.nodes:
            return empty_root()
        h = self.nodes[-1][1]
        for _, left in reversed(self.nodes[:-1]):
            h = node_hash(left, h)
        return h

    @staticmethod
    def positions(size: int) -> list[tuple[int, int]]:
        """The ``(level, index)`` of the frontier of a tree of ``size`` leaves, largest first."""
        out, start = [], 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                out.append((level, start >> level))
                start += 1 << level
        return out

    @classmethod
    def load(cls, size: int, node: Node) -> Frontier:
        """The frontier of a stored tree, from its nodes."""
        return cls(size, [(level, node(level, index)) for level, index in cls.positions(size)])


class MemoryTree:
    """All node hashes of a list of leaf hashes, in memory: an oracle for proofs (tests, bundles)."""

    def __init__(self, leaves: Sequence[bytes]):
        self.levels: list[list[bytes]] = [list(leaves)]
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            self.levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])

    def node(self, level: int, index: int) -> bytes:
        return self.levels[level][index]

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def root(self, size: int | None = None) -> bytes:
        return root(self.size if size is None else size, self.node)
