"""Merkle trees as RFC 9162 (Certificate Transparency 2.0) §2.1 defines them: roots, proofs, checks.

Pure functions over SHA-256 hashes; nothing here reads a database. A leaf's hash is
``SHA-256(0x00 || leaf)``, an interior node's ``SHA-256(0x01 || left || right)``, and the Merkle Tree
Hash of ``n > 1`` leaves splits them at ``k``, the largest power of two smaller than ``n``:
``MTH(D[0:n]) = node(MTH(D[0:k]), MTH(D[k:n]))``. The tree of no leaves hashes to ``SHA-256("")``.

An inclusion proof (RFC 9162 §2.1.3) shows that one leaf is at ``index`` in the tree of ``size``
leaves; a consistency proof (§2.1.4) shows that the tree of ``old_size`` leaves is a prefix of the
tree of ``size`` leaves, i.e. that nothing before ``old_size`` changed.

>>> tree = MerkleTree([leaf_hash(bytes([i])) for i in range(7)])
>>> proof = tree.inclusion_proof(3)
>>> verify_inclusion(leaf_hash(bytes([3])), 3, 7, proof, tree.root())
True
>>> verify_consistency(4, 7, tree.root(4), tree.root(), tree.consistency_proof(4))
True
>>> verify_consistency(4, 7, tree.root(3), tree.root(), tree.consistency_proof(4))
False
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleTree",
    "leaf_hash",
    "node_hash",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
#: The Merkle Tree Hash of the empty list (RFC 9162 §2.1.1): SHA-256 of no bytes.
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of one leaf."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (for ``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash of the given leaf hashes, in O(n).

    >>> root_hash([]) == EMPTY_ROOT
    True
    >>> a, b, c = (leaf_hash(x) for x in (b"a", b"b", b"c"))
    >>> root_hash([a, b, c]) == node_hash(node_hash(a, b), c)
    True
    """
    return MerkleTree(leaf_hashes).root()


class MerkleTree:
    """A tree over leaf hashes, with every complete subtree (``2**j`` leaves starting at a multiple
    of ``2**j``) hashed once when built, in O(n). A root, or any node of a proof, then costs
    O(log n) node hashes: the left part of each split is such a complete subtree."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        levels = [list(leaf_hashes)]
        while len(levels[-1]) > 1:
            below = levels[-1]
            levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
        self._levels = levels

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def leaf(self, index: int) -> bytes:
        return self._levels[0][index]

    def subtree_hash(self, start: int, end: int) -> bytes:
        """``MTH(D[start:end])``, the hash of the leaves ``start`` to ``end - 1``."""
        if not 0 <= start <= end <= self.size:
            raise ValueError(f"range [{start}, {end}) is outside a tree of {self.size} leaves")
        width = end - start
        if width == 0:
            return EMPTY_ROOT
        height = width.bit_length() - 1
        if width == 1 << height and start % width == 0:
            return self._levels[height][start >> height]
        k = _split(width)
        return node_hash(self.subtree_hash(start, start + k), self.subtree_hash(start + k, end))

    def root(self, size: int | None = None) -> bytes:
        """The root of the tree of the first ``size`` leaves (all of them by default)."""
        return self.subtree_hash(0, self.size if size is None else size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The audit path ``PATH(index, D[0:size])`` of RFC 9162 §2.1.3.1, nearest sibling first."""
        size = self.size if size is None else size
        if not 0 <= index < size <= self.size:
            raise ValueError(
                f"no leaf {index} in a tree of {size} leaves (the log holds {self.size})"
            )
        path = []
        start, end = 0, size
        while end - start > 1:
            k = _split(end - start)
            if index < start + k:
                path.append(self.subtree_hash(start + k, end))
                end = start + k
            else:
                path.append(self.subtree_hash(start, start + k))
                start += k
        path.reverse()
        return path

    def consistency_proof(self, old_size: int, size: int | None = None) -> list[bytes]:
        """``PROOF(old_size, D[0:size])`` of RFC 9162 §2.1.4.1; empty when the sizes are equal or
        ``old_size`` is 0 (there is nothing to prove)."""
        size = self.size if size is None else size
        if not 0 <= old_size <= size <= self.size:
            raise ValueError(
                f"no consistency proof from {old_size} to {size} leaves (the log holds {self.size})"
            )
        if old_size in (0, size):
            return []
        # SUBPROOF(m, D[start:start+n], complete), unrolled from the root down.
        path = []
        start, m, n, complete = 0, old_size, size, True
        while m != n:
            k = _split(n)
            if m <= k:
                path.append(self.subtree_hash(start + k, start + n))
                n = k
            else:
                path.append(self.subtree_hash(start, start + k))
                start, m, n, complete = start + k, m - k, n - k, False
        if not complete:
            path.append(self.subtree_hash(start, start + m))
        path.reverse()
        return path


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does ``path`` prove that ``leaf`` (a leaf hash) is at ``index`` in the
    tree of ``size`` leaves whose root is ``root``?"""
    if not 0 <= index < size or any(len(node) != HASH_SIZE for node in path):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and hmac.compare_digest(r, root)


def verify_consistency(
    old_size: int, size: int, old_root: bytes, root: bytes, path: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: does ``path`` prove that the tree of ``old_size`` leaves with root
    ``old_root`` is a prefix of the tree of ``size`` leaves with root ``root``?

    The RFC's algorithm is for ``0 < old_size < size``; the two trivial cases are decided here: a
    tree is consistent with itself (equal roots, empty path) and the empty tree with every tree.
    """
    if not 0 <= old_size <= size or any(len(node) != HASH_SIZE for node in path):
        return False
    if old_size == size:
        return not path and hmac.compare_digest(old_root, root)
    if old_size == 0:
        return not path and hmac.compare_digest(old_root, EMPTY_ROOT)
    if not path:
        return False
    nodes = list(path)
    if old_size & (old_size - 1) == 0:
        nodes.insert(0, old_root)
    fn, sn = old_size - 1, size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = nodes[0]
    for c in nodes[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and hmac.compare_digest(fr, old_root) and hmac.compare_digest(sr, root)
