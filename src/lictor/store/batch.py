"""What one append does, shared by every backend: check the batch, hash its leaves, advance the tree."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lictor.audit.merkle import HASH_SIZE, Frontier, leaf_hash
from lictor.audit.port import Payload, TreeState
from lictor.errors import InputError, InternalError

__all__ = ["Batch", "check_batch", "check_checkpoint", "check_range", "clear_runs", "decode_frontier", "decode_indices",
           "encode_frontier", "encode_indices"]


@dataclass(frozen=True, slots=True)
class Batch:
    """A checked batch: the exact leaf bytes, their RFC 6962 leaf hashes and their payloads."""

    leaves: tuple[bytes, ...]
    hashes: tuple[bytes, ...]
    payloads: tuple[Payload | None, ...]

    def rows(self, first: int) -> tuple[list[tuple[int, bytes, bytes]], list[tuple[int, bytes, str]],
                                         list[tuple[bytes, int, int]]]:
        """The rows this batch writes when its first leaf gets index ``first``: leaves
        ``(idx, data, hash)``, payloads ``(leaf_index, ciphertext, key_id)`` and subject links
        ``(subject_ref, leaf_index, position)``."""
        leaves = [(first + i, leaf, hash_) for i, (leaf, hash_) in enumerate(zip(self.leaves, self.hashes, strict=True))]
        payloads: list[tuple[int, bytes, str]] = []
        links: list[tuple[bytes, int, int]] = []
        for offset, payload in enumerate(self.payloads):
            if payload is not None:
                payloads.append((first + offset, payload.ciphertext, payload.key_id))
                links.extend((bytes(ref), first + offset, position) for position, ref in enumerate(payload.subject_refs))
        return leaves, payloads, links

    def advance(self, size: int, frontier: Sequence[bytes], root: bytes) -> TreeState:
        """The tree after this batch, from the state read under the lock (whose root must match)."""
        try:
            edge = Frontier.from_state(size, frontier)
        except ValueError as exc:
            raise InternalError(f"the stored tree state is corrupt: {exc}") from exc
        if edge.root() != root:
            raise InternalError(f"the stored root of size {size} does not match its frontier")
        edge.extend(self.hashes)
        new_size, hashes = edge.state()
        return TreeState(size=new_size, root=edge.root(), frontier=hashes)


def check_batch(leaves: Sequence[bytes], payloads: Sequence[Payload | None]) -> Batch:
    """Refuse a malformed batch before any transaction starts; hash its leaves."""
    if isinstance(leaves, bytes | bytearray | memoryview):
        raise InputError("leaves must be a sequence of byte strings, not one byte string", path="$.leaves")
    if len(payloads) != len(leaves):
        raise InputError(
            f"{len(payloads)} payloads for {len(leaves)} leaves (give None for a leaf without one)",
            path="$.payloads",
        )
    exact: list[bytes] = []
    for i, leaf in enumerate(leaves):
        if not isinstance(leaf, bytes | bytearray | memoryview):
            raise InputError(f"a leaf is bytes, not {type(leaf).__name__}", path=f"$.leaves[{i}]")
        exact.append(bytes(leaf))
    for i, payload in enumerate(payloads):
        if payload is None:
            continue
        if not isinstance(payload, Payload):
            raise InputError(f"a payload is a Payload or None, not {type(payload).__name__}",
                             path=f"$.payloads[{i}]")
        if len(set(payload.subject_refs)) != len(payload.subject_refs):
            raise InputError("a subject is named twice", path=f"$.payloads[{i}].subject_refs")
    return Batch(tuple(exact), tuple(leaf_hash(leaf) for leaf in exact), tuple(payloads))


def check_checkpoint(size: int, note: str, tree_size: int) -> None:
    """Refuse a checkpoint that is not of a tree this store has committed."""
    if size < 0 or size > tree_size:
        raise InputError(f"a checkpoint of size {size} for a tree of size {tree_size}", path="$.size")
    if not note:
        raise InputError("a checkpoint note is empty", path="$.note")


def check_range(start: int, end: int, size: int) -> None:
    """Refuse a leaf range that is not inside the committed tree."""
    if not 0 <= start <= end <= size:
        raise InputError(f"leaves {start} to {end} of a tree of size {size}", path="$.range")


def encode_frontier(frontier: Sequence[bytes]) -> bytes:
    """The frontier hashes as one blob, largest subtree first."""
    return b"".join(frontier)


def decode_frontier(blob: bytes) -> tuple[bytes, ...]:
    """The inverse of :func:`encode_frontier`."""
    if len(blob) % HASH_SIZE:
        raise InternalError(f"a stored frontier of {len(blob)} bytes is not a list of hashes")
    return tuple(bytes(blob[i : i + HASH_SIZE]) for i in range(0, len(blob), HASH_SIZE))


def encode_indices(indices: Sequence[int]) -> str:
    """Leaf indices as stored in the erasure journal: comma-separated decimal."""
    return ",".join(str(int(index)) for index in indices)


def decode_indices(text: str) -> tuple[int, ...]:
    """The inverse of :func:`encode_indices`."""
    try:
        return tuple(int(part) for part in text.split(",")) if text else ()
    except ValueError as exc:
        raise InternalError(f"a stored erasure journal entry is corrupt: {exc}") from exc


def clear_runs(start: int, end: int, keep: Sequence[int]) -> list[tuple[int, int]]:
    """The ranges ``[a, b)`` of ``[start, end)`` left once the indices in ``keep`` are taken out."""
    runs: list[tuple[int, int]] = []
    low = start
    for index in sorted(set(keep)):
        if index < low or index >= end:
            continue
        if index > low:
            runs.append((low, index))
        low = index + 1
    if low < end:
        runs.append((low, end))
    return runs
