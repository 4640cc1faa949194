"""An audit store in memory, thread-safe and with the same semantics as the durable ones (for tests)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace

from lictor.audit.merkle import EMPTY_ROOT
from lictor.audit.port import AppendResult, Payload, StoredCheckpoint, TreeState
from lictor.errors import InputError
from lictor.store.batch import check_batch, check_checkpoint, check_range

__all__ = ["MemoryStore"]


class MemoryStore:
    """Everything in lists and dicts behind one lock; lost when the process ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = TreeState(size=0, root=EMPTY_ROOT, frontier=())
        self._leaves: list[bytes] = []
        self._payloads: dict[int, Payload] = {}
        self._subjects: dict[bytes, list[int]] = {}
        self._checkpoints: dict[int, StoredCheckpoint] = {}

    def append(self, leaves: Sequence[bytes], payloads: Sequence[Payload | None]) -> AppendResult:
        batch = check_batch(leaves, payloads)
        with self._lock:
            first = self._state.size
            state = batch.advance(first, self._state.frontier, self._state.root)
            self._leaves.extend(batch.leaves)
            for offset, payload in enumerate(batch.payloads):
                if payload is not None:
                    index = first + offset
                    self._payloads[index] = replace(payload, subject_refs=tuple(payload.subject_refs))
                    for ref in payload.subject_refs:
                        self._subjects.setdefault(bytes(ref), []).append(index)
            self._state = state
            return AppendResult(first_index=first, state=state)

    def state(self) -> TreeState:
        with self._lock:
            return self._state

    def leaves(self, start: int, end: int) -> list[bytes]:
        with self._lock:
            check_range(start, end, self._state.size)
            return self._leaves[start:end]

    def add_checkpoint(self, size: int, note: str, published_at: float) -> None:
        with self._lock:
            check_checkpoint(size, note, self._state.size)
            kept = self._checkpoints.get(size)
            if kept is not None:
                if kept.note != note:
                    raise InputError(f"a different checkpoint of size {size} is stored", path="$.note")
                return
            self._checkpoints[size] = StoredCheckpoint(size, note, published_at)

    def checkpoints(self) -> list[StoredCheckpoint]:
        with self._lock:
            return [self._checkpoints[size] for size in sorted(self._checkpoints)]

    def payload(self, index: int) -> Payload | None:
        with self._lock:
            return self._payloads.get(index)

    def erase_payloads(self, subject_ref: bytes, erased_at: float) -> list[int]:
        with self._lock:
            indices = sorted(self._subjects.pop(bytes(subject_ref), []))
            for index in indices:
                self._payloads.pop(index, None)  # the ciphertext is destroyed, not hidden
            return indices

    def close(self) -> None:
        pass
