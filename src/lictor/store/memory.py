"""An audit store in memory, thread-safe and with the same semantics as the durable ones (for tests)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

from lictor.access import ApiKey
from lictor.audit.index import DecisionQuery, IndexedDecision, index_entries
from lictor.audit.merkle import EMPTY_ROOT
from lictor.audit.port import (
    AppendResult,
    Erasure,
    Payload,
    StoredCheckpoint,
    SubjectKey,
    TreeState,
)
from lictor.errors import InputError
from lictor.store.batch import check_batch, check_checkpoint, check_range
from lictor.store.reviews import MemoryReviews

__all__ = ["MemoryStore"]


class MemoryStore(MemoryReviews):
    """Everything in lists and dicts behind one lock; lost when the process ends."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._seal_lock = threading.Lock()
        self._state = TreeState(size=0, root=EMPTY_ROOT, frontier=())
        self._leaves: list[bytes] = []
        self._payloads: dict[int, Payload] = {}
        self._subjects: dict[bytes, list[int]] = {}
        self._checkpoints: dict[int, StoredCheckpoint] = {}
        self._hashes: list[bytes] = []
        self._keys: dict[str, tuple[bytes, bytes | None]] = {}  # key id -> (subject ref, wrapped or None)
        self._current: dict[bytes, str] = {}  # subject ref -> current key id
        self._erasures: list[Erasure] = []
        self._pruned_below = 0
        self._decisions: dict[str, IndexedDecision] = {}
        self._requests: dict[tuple[str, str], str] = {}
        self._api_keys: dict[str, tuple[ApiKey, bytes]] = {}

    def append(self, leaves: Sequence[bytes], payloads: Sequence[Payload | None]) -> AppendResult:
        batch = check_batch(leaves, payloads)
        with self._lock:
            first = self._state.size
            state = batch.advance(first, self._state.frontier, self._state.root)
            self._leaves.extend(batch.leaves)
            self._hashes.extend(batch.hashes)
            for entry in index_entries(batch.leaves, first):
                self._decisions.setdefault(entry.decision_id, entry)
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

    def payloads(self, start: int, end: int) -> dict[int, bytes]:
        with self._lock:
            check_range(start, end, self._state.size)
            return {i: p.ciphertext for i, p in sorted(self._payloads.items()) if start <= i < end}

    def subject_key(self, subject_ref: bytes) -> SubjectKey | None:
        with self._lock:
            key_id = self._current.get(bytes(subject_ref))
            if key_id is None:
                return None
            wrapped = self._keys[key_id][1]
            assert wrapped is not None
            return SubjectKey(key_id, wrapped)

    def add_subject_key(self, subject_ref: bytes, key: SubjectKey, created_at: float) -> SubjectKey:
        ref = bytes(subject_ref)
        with self._lock:
            current = self._current.get(ref)
            if current is not None:
                wrapped = self._keys[current][1]
                assert wrapped is not None
                return SubjectKey(current, wrapped)
            if key.key_id in self._keys:
                raise InputError(f"payload key id {key.key_id!r} is taken", path="$.key_id")
            self._keys[key.key_id] = (ref, bytes(key.wrapped))
            self._current[ref] = key.key_id
            return key

    def wrapped_key(self, key_id: str) -> bytes | None:
        with self._lock:
            entry = self._keys.get(key_id)
            return None if entry is None else entry[1]

    def erase_subject(self, subject_ref: bytes, erased_at: float) -> Erasure:
        ref = bytes(subject_ref)
        with self._lock:
            for key_id, (owner, _) in list(self._keys.items()):
                if owner == ref:
                    self._keys[key_id] = (owner, None)
            self._current.pop(ref, None)
            indices = tuple(sorted(i for i in self._subjects.pop(ref, []) if i in self._payloads))
            for index in indices:
                payload = self._payloads.pop(index)  # the ciphertext is destroyed, not hidden
                for other in payload.subject_refs:
                    if other in self._subjects:
                        self._subjects[other] = [i for i in self._subjects[other] if i != index]
            erasure = Erasure(len(self._erasures) + 1, indices, erased_at)
            self._erasures.append(erasure)
            return erasure

    def erasures(self, *, pending: bool = False) -> list[Erasure]:
        with self._lock:
            return [e for e in self._erasures if not pending or e.leaf_index is None]

    def record_erasure_leaf(self, erasure_id: int, leaf_index: int) -> None:
        with self._lock:
            for n, erasure in enumerate(self._erasures):
                if erasure.id == erasure_id:
                    self._erasures[n] = replace(erasure, leaf_index=leaf_index)
                    return
            raise InputError(f"no erasure {erasure_id}", path="$.erasure_id")

    def prune(self, below: int, pruned_at: float, keep: Sequence[int] = ()) -> int:
        kept = set(keep)
        with self._lock:
            check_range(0, below, self._state.size)
            for index in range(self._pruned_below, below):
                if index not in kept:
                    self._leaves[index] = b""
                payload = self._payloads.pop(index, None)
                for ref in payload.subject_refs if payload else ():
                    self._subjects[ref] = [i for i in self._subjects.get(ref, []) if i != index]
            self._pruned_below = max(self._pruned_below, below)
            return self._pruned_below

    def pruned_below(self) -> int:
        with self._lock:
            return self._pruned_below

    @contextmanager
    def sealing(self) -> Iterator[None]:
        with self._seal_lock:
            yield

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        with self._lock:
            check_range(start, end, self._state.size)
            return self._hashes[start:end]

    def decision(self, decision_id: str) -> IndexedDecision | None:
        with self._lock:
            return self._decisions.get(decision_id)

    def decisions(self, query: DecisionQuery) -> list[IndexedDecision]:
        if query.limit < 1:
            raise InputError("the limit is at least 1", path="$.limit")
        with self._lock:
            found = sorted(self._decisions.values(), key=lambda d: d.leaf_index)
        return [d for d in found if (query.system is None or d.system == query.system)
                and (query.verdict is None or d.verdict == query.verdict)
                and (query.policy is None or query.policy in d.policies)
                and (query.since is None or d.ts >= query.since)
                and (query.until is None or d.ts < query.until)
                and (query.after is None or d.leaf_index > query.after)][:query.limit]

    def remember_request(self, scope: str, request_id: str, decision_id: str) -> str:
        with self._lock:
            return self._requests.setdefault((scope, request_id), decision_id)

    def requested(self, scope: str, request_id: str) -> str | None:
        with self._lock:
            return self._requests.get((scope, request_id))

    def add_key(self, key: ApiKey, key_hash: bytes) -> None:
        with self._lock:
            if key.id in self._api_keys or any(h == key_hash for _, h in self._api_keys.values()):
                raise InputError(f"key id {key.id!r} is taken", path="$.id")
            self._api_keys[key.id] = (key, bytes(key_hash))

    def key_by_hash(self, key_hash: bytes) -> tuple[ApiKey, bytes] | None:
        with self._lock:
            return next((entry for entry in self._api_keys.values() if entry[1] == key_hash), None)

    def keys(self) -> list[ApiKey]:
        with self._lock:
            return sorted((key for key, _ in self._api_keys.values()), key=lambda k: (k.created_at, k.id))

    def revoke_key(self, key_id: str, revoked_at: float) -> ApiKey | None:
        with self._lock:
            entry = self._api_keys.get(key_id)
            if entry is None:
                return None
            key, digest = entry
            if key.revoked_at is None:
                key = replace(key, revoked_at=revoked_at)
                self._api_keys[key_id] = (key, digest)
            return key

    def close(self) -> None:
        pass
