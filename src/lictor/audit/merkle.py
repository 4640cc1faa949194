"""The RFC 6962 / RFC 9162 Merkle tree of the audit log: hashing, roots, proofs and their verification.

Hashing is RFC 6962 §2.1 with SHA-256: a leaf is ``SHA-256(0x00 || data)``, an interior node
``SHA-256(0x01 || left || right)``, and a tree of n > 1 leaves splits at the largest power of two
smaller than n (the right edge is promoted, never padded or duplicated).

Generators (``inclusion_proof``, ``consistency_proof``, :class:`Tree`) raise ``ValueError`` for
arguments that make no sense. Verifiers (``verify_*``) treat everything they are given as evidence:
any mismatch, including an impossible index or size, raises
:class:`~lictor.errors.VerificationError`; they never return False.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from lictor.errors import VerificationError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "Tree",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "leaf_hashes",
    "node_hash",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
    "verify_root",
]

#: Length in bytes of every hash in the tree (SHA-256).
HASH_SIZE: Final = 32
#: The root of the tree with no leaves: SHA-256 of the empty string.
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()

#: A fresh SHA-256 state to copy: with OpenSSL 3, ``hashlib.sha256(data)`` looks the algorithm up
#: again on every call, which takes as long as hashing a short leaf; a copy does not.
_SHA256_STATE: Final = hashlib.sha256()


def _sha256(data: bytes) -> hashlib._Hash:
    state = _SHA256_STATE.copy()
    state.update(data)
    return state


_LEAF: Final = b"\x00"
_NODE: Final = b"\x01"

SubtreeRoot = Callable[[int, int], bytes]


def leaf_hash(data: bytes) -> bytes:
    """The hash of one leaf: SHA-256(0x00 || data)."""
    return _sha256(_LEAF + data).digest()


def leaf_hashes(leaves: Iterable[bytes]) -> list[bytes]:
    """The hash of each leaf, in order: :func:`leaf_hash` without a Python call per leaf."""
    sha, prefix = _sha256, _LEAF
    return [sha(prefix + data).digest() for data in leaves]


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 || left || right)."""
    return _sha256(_NODE + left + right).digest()


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """The RFC 6962 Merkle Tree Hash of the given leaf hashes, level by level (no recursion)."""
    level = list(hashes)
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        odd = level[-1] if len(level) & 1 else None
        level = _parents(level)  # the odd one out, if any, is not paired
        if odd is not None:
            level.append(odd)  # an unpaired right edge is promoted unchanged
    return level[0]


def _parents(level: Sequence[bytes], start: int = 0) -> list[bytes]:
    """The parents of the pairs ``level[start], level[start + 1]``, ... (``start`` even); an unpaired
    last node has none yet."""
    sha, node = _sha256, _NODE
    pairs = zip(level[start::2], level[start + 1::2], strict=False)
    return [sha(node + left + right).digest() for left, right in pairs]


def _checked(hashes: Iterable[bytes]) -> list[bytes]:
    """Leaf hashes to append, as immutable bytes; raises ``ValueError`` (appending none) for a bad one."""
    out = list(map(bytes, hashes))
    if not all(map(HASH_SIZE.__eq__, map(len, out))):
        bad = next(h for h in out if len(h) != HASH_SIZE)
        raise ValueError(f"a leaf hash is {HASH_SIZE} bytes, not {len(bad)}")
    return out


def _heights(size: int) -> list[int]:
    """The heights of the complete subtrees a tree of ``size`` leaves splits into, largest first."""
    return [h for h in range(size.bit_length() - 1, -1, -1) if size >> h & 1]


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


class Frontier:
    """The right edge of a tree: one hash per complete subtree, enough to append leaves and give the root.

    It holds O(log n) hashes: for each set bit of ``size``, from the highest, the root of that
    complete subtree. :meth:`state` and :meth:`from_state` let a store persist it.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def from_state(cls, size: int, hashes: Iterable[bytes]) -> Frontier:
        """Rebuild a frontier from :meth:`state`; raises ``ValueError`` when the two do not fit."""
        stored = list(hashes)
        if size < 0:
            raise ValueError(f"size {size} is negative")
        if len(stored) != size.bit_count():
            raise ValueError(
                f"a tree of size {size} has {size.bit_count()} frontier hashes, not {len(stored)}"
            )
        if any(len(h) != HASH_SIZE for h in stored):
            raise ValueError(f"frontier hashes must be {HASH_SIZE} bytes")
        frontier = cls()
        frontier._size = size
        frontier._hashes = [bytes(h) for h in stored]
        return frontier

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def state(self) -> tuple[int, tuple[bytes, ...]]:
        """``(size, hashes)``: what :meth:`from_state` needs, largest subtree first."""
        return self._size, tuple(self._hashes)

    def append(self, hash_: bytes) -> None:
        """Append one leaf hash (see :func:`leaf_hash`)."""
        if len(hash_) != HASH_SIZE:
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes, not {len(hash_)}")
        hashes = self._hashes
        hashes.append(bytes(hash_))
        carry = self._size
        while carry & 1:  # two complete subtrees of equal height merge into one
            right = hashes.pop()
            hashes[-1] = _sha256(_NODE + hashes[-1] + right).digest()
            carry >>= 1
        self._size += 1

    def extend(self, hashes: Iterable[bytes]) -> None:
        """Append several leaf hashes in order (all or, if one is not a hash, none of them).

        It works a level at a time: the new nodes of each height are hashed in pairs in one pass,
        the first one with the frontier's node of that height when it is a right child, and an
        unpaired last one becomes the new frontier node of that height.
        """
        level = _checked(hashes)
        if not level:
            return
        size = self._size
        self._size += len(level)
        waiting = dict(zip(_heights(size), self._hashes, strict=True))  # height -> complete subtree
        kept: dict[int, bytes] = {}
        height = 0
        while level:
            if size >> height & 1:  # the first new node's left sibling is the frontier's node here
                level.insert(0, waiting.pop(height))
            if len(level) & 1:
                kept[height] = level.pop()
            level = _parents(level)
            height += 1
        kept.update(waiting)  # heights no new node reached keep their subtree
        self._hashes = [kept[h] for h in sorted(kept, reverse=True)]

    def root(self) -> bytes:
        """The root of the tree so far (``EMPTY_ROOT`` when empty)."""
        hashes = self._hashes
        if not hashes:
            return EMPTY_ROOT
        root = hashes[-1]
        for left in reversed(hashes[:-1]):
            root = _sha256(_NODE + left + root).digest()
        return root

    def __repr__(self) -> str:
        return f"Frontier(size={self._size})"


class Tree:
    """All node hashes of complete subtrees, level by level, so that roots and proofs of any size up to
    the current one cost O(log n) lookups and hashes.

    ``levels[h][i]`` is the root of the 2**h leaves from ``i * 2**h``. Memory is about two hashes a leaf.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        self.extend(leaf_hashes)

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0])

    def __len__(self) -> int:
        return len(self._levels[0])

    def append(self, hash_: bytes) -> None:
        """Append one leaf hash (see :func:`leaf_hash`)."""
        if len(hash_) != HASH_SIZE:
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes, not {len(hash_)}")
        levels = self._levels
        levels[0].append(bytes(hash_))
        index = len(levels[0]) - 1
        height = 0
        while index & 1:  # this node completes its parent
            level = levels[height]
            parent = _sha256(_NODE + level[index - 1] + level[index]).digest()
            height += 1
            if height == len(levels):
                levels.append([])
            levels[height].append(parent)
            index >>= 1

    def extend(self, hashes: Iterable[bytes]) -> None:
        """Append several leaf hashes in order (all or, if one is not a hash, none of them), each
        level's new parents hashed in one pass."""
        fresh = _checked(hashes)
        levels = self._levels
        levels[0].extend(fresh)
        height = 0
        while fresh:
            level = levels[height]
            if height + 1 == len(levels):
                if len(level) < 2:
                    break
                levels.append([])
            above = levels[height + 1]
            fresh = _parents(level, 2 * len(above))  # the pairs this extension completed
            above.extend(fresh)
            height += 1

    def leaf(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        _check_index(index, self.size)
        return self._levels[0][index]

    def root(self, size: int | None = None) -> bytes:
        """The root of the first ``size`` leaves (default: all of them)."""
        size = self.size if size is None else size
        _check_size(size, self.size)
        return self._range_root(0, size) if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The RFC 6962 audit path of leaf ``index`` in the tree of the first ``size`` leaves."""
        size = self.size if size is None else size
        _check_size(size, self.size)
        return _inclusion_path(index, size, self._range_root)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """The RFC 6962 consistency proof from the tree of ``old_size`` leaves to ``new_size``."""
        new_size = self.size if new_size is None else new_size
        _check_size(new_size, self.size)
        return _consistency_path(old_size, new_size, self._range_root)

    def _range_root(self, start: int, end: int) -> bytes:
        """Root of leaves [start, end): complete aligned subtrees, largest first, folded from the right.

        Every range the RFC recursion asks for starts at a multiple of the largest power of two not
        above its length, so its length's set bits name cached subtrees left to right.
        """
        levels = self._levels
        parts: list[bytes] = []
        while start < end:
            height = (end - start).bit_length() - 1
            parts.append(levels[height][start >> height])
            start += 1 << height
        root = parts.pop()
        while parts:
            root = _sha256(_NODE + parts.pop() + root).digest()
        return root

    def __repr__(self) -> str:
        return f"Tree(size={self.size})"


def inclusion_proof(index: int, size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(index, D[size]) over the first ``size`` of ``leaf_hashes``.

    It hashes O(size) nodes; keep a :class:`Tree` to answer many proofs in O(log size) each.
    """
    _check_size(size, len(leaf_hashes))
    return _inclusion_path(index, size, _slice_root(leaf_hashes))


def consistency_proof(old_size: int, new_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.2 PROOF(old_size, D[new_size]) over the first ``new_size`` of ``leaf_hashes``."""
    _check_size(new_size, len(leaf_hashes))
    return _consistency_path(old_size, new_size, _slice_root(leaf_hashes))


def _slice_root(leaf_hashes: Sequence[bytes]) -> SubtreeRoot:
    def root(start: int, end: int) -> bytes:
        return root_from_leaf_hashes(leaf_hashes[start:end])

    return root


def _check_size(size: int, available: int) -> None:
    if size < 0:
        raise ValueError(f"size {size} is negative")
    if size > available:
        raise ValueError(f"size {size} is larger than the {available} leaves available")


def _check_index(index: int, size: int) -> None:
    if index < 0:
        raise ValueError(f"index {index} is negative")
    if index >= size:
        raise ValueError(f"index {index} is not below the tree size {size}")


def _inclusion_path(index: int, size: int, subtree_root: SubtreeRoot) -> list[bytes]:
    _check_index(index, size)
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:  # walk from the root down to the leaf; the RFC lists siblings bottom-up
        k = _largest_power_of_two_below(end - start)
        if index - start < k:
            path.append(subtree_root(start + k, end))
            end = start + k
        else:
            path.append(subtree_root(start, start + k))
            start += k
    path.reverse()
    return path


def _consistency_path(old_size: int, new_size: int, subtree_root: SubtreeRoot) -> list[bytes]:
    if old_size <= 0:
        raise ValueError(f"old_size {old_size}: a consistency proof needs a non-empty old tree")
    if old_size > new_size:
        raise ValueError(f"old_size {old_size} is larger than new_size {new_size}")
    proof: list[bytes] = []
    start, end = 0, new_size
    complete = True  # SUBPROOF's b: is the old tree's root itself a node of this subtree?
    while old_size != end:
        k = _largest_power_of_two_below(end - start)
        if old_size - start <= k:
            proof.append(subtree_root(start + k, end))
            end = start + k
        else:
            proof.append(subtree_root(start, start + k))
            start += k
            complete = False
    if not complete:
        proof.append(subtree_root(start, end))
    proof.reverse()
    return proof


def _fail(step: str, message: str, index: int | None) -> VerificationError:
    return VerificationError(message, step=step, index=index)


def _check_hashes(step: str, index: int | None, **named: bytes) -> None:
    for name, value in named.items():
        if len(value) != HASH_SIZE:
            raise _fail(step, f"{name} is {len(value)} bytes, not {HASH_SIZE}", index)


def _check_proof(step: str, index: int | None, proof: Sequence[bytes]) -> None:
    if all(len(value) == HASH_SIZE for value in proof):
        return
    position = next(i for i, value in enumerate(proof) if len(value) != HASH_SIZE)
    raise _fail(step, f"proof[{position}] is {len(proof[position])} bytes, not {HASH_SIZE}", index)


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves whose root is ``root``.

    RFC 9162 §2.1.3.2, step by step. Raises :class:`~lictor.errors.VerificationError` with
    ``step="inclusion"`` and ``index=index`` when the proof does not verify.
    """
    step = "inclusion"
    if len(leaf_hash) != HASH_SIZE or len(root) != HASH_SIZE:
        _check_hashes(step, index, leaf_hash=leaf_hash, root=root)
    _check_proof(step, index, proof)
    # 1. The index must lie inside the tree.
    if index < 0 or index >= size:
        raise _fail(step, f"index {index} is outside a tree of size {size}", index)
    # 2-3. fn is the index, sn the last index; r starts as the leaf hash.
    fn, sn = index, size - 1
    r = leaf_hash
    sha, node = _sha256, _NODE
    # 4. Fold the path in.
    for p in proof:
        if sn == 0:
            raise _fail(step, "proof is longer than the path to the root", index)
        if fn & 1 or fn == sn:
            r = sha(node + p + r).digest()
            while fn and not fn & 1:  # fn == sn on a left edge: skip the levels with no sibling
                fn >>= 1
                sn >>= 1
        else:
            r = sha(node + r + p).digest()
        fn >>= 1
        sn >>= 1
    # 5. The path must reach the root exactly, and give its hash.
    if sn != 0:
        raise _fail(step, "proof is shorter than the path to the root", index)
    if r != root:
        raise _fail(step, "computed root does not match", index)


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``old_size`` leaves (``old_root``) is a prefix of the tree of ``new_size``.

    RFC 9162 §2.1.4.2, step by step. Equal sizes need equal roots and an empty proof. An old size of
    0 proves nothing and is refused, as is an old size larger than the new one. Raises
    :class:`~lictor.errors.VerificationError` with ``step="consistency"``.
    """
    step = "consistency"
    if len(old_root) != HASH_SIZE or len(new_root) != HASH_SIZE:
        _check_hashes(step, None, old_root=old_root, new_root=new_root)
    _check_proof(step, None, proof)
    if old_size <= 0:
        raise _fail(step, f"old_size {old_size}: there is nothing to prove for an empty old tree", None)
    if old_size > new_size:
        raise _fail(step, f"old_size {old_size} is larger than new_size {new_size}", None)
    if old_size == new_size:
        if proof:
            raise _fail(step, "proof between trees of equal size must be empty", None)
        if old_root != new_root:
            raise _fail(step, "roots of trees of equal size differ", None)
        return
    # 1. A proof between different sizes is never empty.
    if not proof:
        raise _fail(step, "proof is empty", None)
    # 2. When the old tree is complete, its root is the first node of the path.
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # 3-4. fn and sn are the last indices; skip the levels where the old tree's edge is a right child.
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. Both roots start from the first node.
    fr = sr = path[0]
    sha, node = _sha256, _NODE
    # 6. Fold in the rest.
    for c in path[1:]:
        if sn == 0:
            raise _fail(step, "proof is longer than needed", None)
        if fn & 1 or fn == sn:
            fr = sha(node + c + fr).digest()
            sr = sha(node + c + sr).digest()
            while fn and not fn & 1:  # fn == sn on a left edge: skip the levels with no sibling
                fn >>= 1
                sn >>= 1
        else:
            sr = sha(node + sr + c).digest()
        fn >>= 1
        sn >>= 1
    # 7. Both roots must match and the path must reach the new root exactly.
    if sn != 0:
        raise _fail(step, "proof is shorter than needed", None)
    if fr != old_root:
        raise _fail(step, "computed old root does not match", None)
    if sr != new_root:
        raise _fail(step, "computed new root does not match", None)


def verify_root(leaf_hashes: Sequence[bytes], expected_root: bytes) -> None:
    """Recompute the root of ``leaf_hashes`` and check it; raises VerificationError (``step="root"``)."""
    if root_from_leaf_hashes(leaf_hashes) != expected_root:
        raise _fail("root", f"root of {len(leaf_hashes)} leaves does not match", None)
