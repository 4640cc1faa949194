"""The storage the audit log needs, as a small port that every backend (memory, SQLite, PostgreSQL)
implements and one contract test suite checks.

The log's integrity does not depend on the store: leaves are hashed into the Merkle tree and
checkpoints are signed outside it. The store's duties are durability, atomic batches and gapless,
serialised index assignment (never a database sequence, which can leave gaps).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

__all__ = ["AppendResult", "AuditStore", "Erasure", "Payload", "StoredCheckpoint", "SubjectKey", "TreeState"]


@dataclass(frozen=True, slots=True)
class TreeState:
    """The tree as of the last committed batch: its size, root and right edge (``Frontier.state()``)."""

    size: int
    root: bytes
    frontier: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Payload:
    """The encrypted side record of one leaf: never hashed into the tree, erasable.

    ``subject_refs`` are keyed hashes of the data subjects the payload concerns (to find them for an
    access or erasure request); they are never written into a leaf.
    """

    ciphertext: bytes
    key_id: str
    subject_refs: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Where a batch landed: the index of its first leaf and the tree after it."""

    first_index: int
    state: TreeState


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    size: int
    note: str
    published_at: float


@dataclass(frozen=True, slots=True)
class SubjectKey:
    """A data subject's payload key, wrapped (encrypted) by a key the store never holds."""

    key_id: str
    wrapped: bytes


@dataclass(frozen=True, slots=True)
class Erasure:
    """An erasure the store carried out: the payloads of ``indices`` are destroyed and the subject's
    keys too. The ``erasure`` leaf that records it is appended afterwards; ``leaf_index`` is None
    until :meth:`AuditStore.record_erasure_leaf` notes where it landed."""

    id: int
    indices: tuple[int, ...]
    erased_at: float
    leaf_index: int | None = None


class AuditStore(Protocol):
    """Durable, append-only storage of leaves, tree state, checkpoints and payloads."""

    def append(self, leaves: Sequence[bytes], payloads: Sequence[Payload | None]) -> AppendResult:
        """In ONE transaction: lock the tree state, give the leaves the next indices, store them and
        their payloads, extend the tree (RFC 6962 leaf hashes of the exact bytes) and store the new
        state. Returns only after the transaction is durable. Concurrent callers (threads or
        processes sharing the database) are serialised; indices never have gaps or repeats."""
        ...

    def state(self) -> TreeState:
        """The committed tree state (size 0 with the empty root when nothing was appended)."""
        ...

    def leaves(self, start: int, end: int) -> list[bytes]:
        """The exact stored bytes of leaves ``start`` to ``end - 1``; a pruned leaf is ``b""``."""
        ...

    def add_checkpoint(self, size: int, note: str, published_at: float) -> None:
        """Keep a signed checkpoint note (all are kept; the verifier checks them pairwise)."""
        ...

    def checkpoints(self) -> list[StoredCheckpoint]:
        """Every stored checkpoint, smallest tree first."""
        ...

    def payload(self, index: int) -> Payload | None:
        """The payload of leaf ``index``, or None when there is none or it was erased."""
        ...

    def payloads(self, start: int, end: int) -> dict[int, bytes]:
        """The ciphertexts of the live (not erased, not pruned) payloads of leaves ``start`` to ``end - 1``."""
        ...

    def subject_key(self, subject_ref: bytes) -> SubjectKey | None:
        """The subject's current (not destroyed) payload key, if it has one."""
        ...

    def add_subject_key(self, subject_ref: bytes, key: SubjectKey, created_at: float) -> SubjectKey:
        """Make ``key`` the subject's current key unless another writer gave it one first; return the
        current key either way (so concurrent writers agree)."""
        ...

    def wrapped_key(self, key_id: str) -> bytes | None:
        """A payload key by id, or None when it is unknown or was destroyed by an erasure."""
        ...

    def erase_subject(self, subject_ref: bytes, erased_at: float) -> Erasure:
        """In ONE transaction: destroy the subject's keys and the live payloads that concern it (the
        ciphertext, whoever else it concerns, and the subject links), and journal the erasure with
        the leaf indices affected, so its ``erasure`` leaf can be appended even after a crash."""
        ...

    def erasures(self, *, pending: bool = False) -> list[Erasure]:
        """Journalled erasures, oldest first; with ``pending``, only those without a recorded leaf."""
        ...

    def record_erasure_leaf(self, erasure_id: int, leaf_index: int) -> None:
        """Note the index of the ``erasure`` leaf that records erasure ``erasure_id``."""
        ...

    def prune(self, below: int, pruned_at: float, keep: Sequence[int] = ()) -> int:
        """Retention: drop the bytes of leaves below index ``below`` except those in ``keep`` (their
        hashes stay, so the tree still verifies) and all their payloads. Returns the new pruning
        floor (it never goes down)."""
        ...

    def sealing(self) -> AbstractContextManager[None]:
        """Hold the store's seal lock: while it is held no other log sharing this store (another
        thread, process or host) writes a seal, so a seal's counts and ``size_before`` can be read
        from the store and stay true until it is appended and signed. Ordinary appends go on."""
        ...

    def pruned_below(self) -> int:
        """Leaves below this index were pruned: only their hashes are kept (0 when nothing was)."""
        ...

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        """The stored RFC 6962 leaf hashes of leaves ``start`` to ``end - 1`` (kept after pruning)."""
        ...

    def close(self) -> None:
        ...
