"""The storage the audit log needs, as a small port that every backend (memory, SQLite, PostgreSQL)
implements and one contract test suite checks.

The log's integrity does not depend on the store: leaves are hashed into the Merkle tree and
checkpoints are signed outside it. The store's duties are durability, atomic batches and gapless,
serialised index assignment (never a database sequence, which can leave gaps).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["AppendResult", "AuditStore", "Payload", "StoredCheckpoint", "TreeState"]


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
        """The exact stored bytes of leaves ``start`` to ``end - 1``."""
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

    def erase_payloads(self, subject_ref: bytes, erased_at: float) -> list[int]:
        """Destroy the payloads that concern a subject (ciphertext and subject link); return the leaf
        indices affected, in order."""
        ...

    def close(self) -> None:
        ...
