"""The audit store in one SQLite file: WAL, ``synchronous=FULL``, one ``BEGIN IMMEDIATE`` per batch.

One writer connection (behind a lock) appends; reader connections are pooled. Several processes may
open the same file: SQLite's file lock serialises their writers and every append reads the tree state
inside its own write transaction. All processes must be on one host (WAL needs shared memory).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from lictor.access import ApiKey
from lictor.audit.index import DecisionQuery, IndexedDecision
from lictor.audit.port import (
    AppendResult,
    Erasure,
    Payload,
    StoredCheckpoint,
    SubjectKey,
    TreeState,
)
from lictor.errors import InputError, InternalError, LictorError
from lictor.oversight import Reviewer, ReviewQuery, ReviewRequest
from lictor.store import reviews, tables
from lictor.store.batch import (
    check_batch,
    check_checkpoint,
    check_range,
    clear_runs,
    decode_frontier,
    decode_indices,
    encode_frontier,
    encode_indices,
)
from lictor.store.migrations import MIGRATIONS

__all__ = ["SqliteStore"]

T = TypeVar("T")

#: How long a writer waits for another process's write transaction before giving up.
BUSY_TIMEOUT_MS = 30_000


class SqliteStore:
    """A durable audit store in the SQLite file at ``path`` (created, and migrated, when opened)."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self._path = str(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._lock = threading.Lock()
        self._seal_lock = threading.Lock()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self._writer = self._connect()
        try:
            self._enable_wal()
            self._run(self._setup)
        except BaseException:
            self._writer.close()
            raise

    # ---------------------------------------------------------------- connections and transactions

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False,
                                   timeout=self._busy_timeout_ms / 1000)
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            raise InternalError(f"cannot open the SQLite audit store {self._path}: {exc}") from exc
        return conn

    def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one ``BEGIN IMMEDIATE`` transaction on the writer connection."""
        with self._lock:
            if self._closed:
                raise InternalError("the SQLite audit store is closed")
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except LictorError:
                raise
            except sqlite3.Error as exc:
                raise InternalError(f"the SQLite audit store {self._path} failed: {exc}") from exc
            return result

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        with self._readers_lock:
            if self._closed:
                raise InternalError("the SQLite audit store is closed")
            conn = self._readers.pop() if self._readers else None
        try:
            if conn is None:
                conn = self._connect()
            yield conn
        except sqlite3.Error as exc:
            raise InternalError(f"the SQLite audit store {self._path} failed: {exc}") from exc
        finally:
            if conn is not None:
                with self._readers_lock:
                    if self._closed:
                        conn.close()
                    else:
                        self._readers.append(conn)

    def _setup(self, conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations"
                     " (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
        applied = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
        for migration in MIGRATIONS:
            if migration.name in applied:
                continue
            for statement in migration.sqlite:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                         (migration.name, time.time()))

    def _enable_wal(self) -> None:
        # outside any transaction; a concurrent opener may hold the lock for a moment
        deadline = time.monotonic() + self._busy_timeout_ms / 1000
        while True:
            try:
                mode = self._writer.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise InternalError(f"cannot switch {self._path} to WAL: {exc}") from exc
                time.sleep(0.01)
                continue
            if str(mode).lower() != "wal":
                raise InternalError(f"{self._path} refuses WAL mode (journal_mode is {mode})")
            return

    # ---------------------------------------------------------------- the port

    def append(self, leaves: Sequence[bytes], payloads: Sequence[Payload | None]) -> AppendResult:
        batch = check_batch(leaves, payloads)

        def work(conn: sqlite3.Connection) -> AppendResult:
            first, root, frontier = _read_state(conn)
            if not batch.leaves:
                return AppendResult(first, TreeState(first, root, frontier))
            state = batch.advance(first, frontier, root)
            leaf_rows, rows, links = batch.rows(first)
            conn.executemany("INSERT INTO leaf (idx, data, hash) VALUES (?, ?, ?)", leaf_rows)
            tables.index_batch(conn, "?", batch.leaves, first)
            if rows:
                conn.executemany("INSERT INTO payload (leaf_index, ciphertext, key_id) VALUES (?, ?, ?)",
                                 rows)
            if links:
                conn.executemany("INSERT INTO subject_index (subject_ref, leaf_index, position)"
                                 " VALUES (?, ?, ?)", links)
            conn.execute("UPDATE tree_state SET size = ?, root = ?, frontier = ? WHERE id = 0",
                         (state.size, state.root, encode_frontier(state.frontier)))
            return AppendResult(first, state)

        return self._run(work)

    def state(self) -> TreeState:
        with self._reader() as conn:
            size, root, frontier = _read_state(conn)
            return TreeState(size, root, frontier)

    def leaves(self, start: int, end: int) -> list[bytes]:
        with self._reader() as conn:
            conn.execute("BEGIN")  # one snapshot for the size check and the rows
            try:
                check_range(start, end, _read_state(conn)[0])
                # CAST: a value rewritten as TEXT must reach the verifier as bytes, not fail in the driver
                rows = conn.execute("SELECT CAST(data AS BLOB) FROM leaf WHERE idx >= ? AND idx < ? ORDER BY idx",
                                    (start, end)).fetchall()
            finally:
                conn.execute("COMMIT")
        return [bytes(row[0]) for row in rows]

    def add_checkpoint(self, size: int, note: str, published_at: float) -> None:
        def work(conn: sqlite3.Connection) -> None:
            check_checkpoint(size, note, _read_state(conn)[0])
            kept = conn.execute("SELECT note FROM checkpoint WHERE size = ?", (size,)).fetchone()
            if kept is None:
                conn.execute("INSERT INTO checkpoint (size, note, published_at) VALUES (?, ?, ?)",
                             (size, note, published_at))
            elif kept[0] != note:
                raise InputError(f"a different checkpoint of size {size} is stored", path="$.note")

        self._run(work)

    def checkpoints(self) -> list[StoredCheckpoint]:
        with self._reader() as conn:
            rows = conn.execute("SELECT size, note, published_at FROM checkpoint ORDER BY size")
            return [StoredCheckpoint(int(size), str(note), float(at)) for size, note, at in rows]

    def payload(self, index: int) -> Payload | None:
        with self._reader() as conn:
            conn.execute("BEGIN")
            try:
                row = conn.execute("SELECT ciphertext, key_id FROM payload WHERE leaf_index = ?",
                                   (index,)).fetchone()
                refs = conn.execute("SELECT subject_ref FROM subject_index WHERE leaf_index = ?"
                                    " ORDER BY position", (index,)).fetchall()
            finally:
                conn.execute("COMMIT")
        if row is None or row[0] is None:
            return None
        return Payload(bytes(row[0]), str(row[1]), tuple(bytes(ref[0]) for ref in refs))

    def payloads(self, start: int, end: int) -> dict[int, bytes]:
        with self._reader() as conn:
            conn.execute("BEGIN")
            try:
                check_range(start, end, _read_state(conn)[0])
                rows = conn.execute("SELECT leaf_index, CAST(ciphertext AS BLOB) FROM payload WHERE leaf_index >= ?"
                                    " AND leaf_index < ? AND ciphertext IS NOT NULL ORDER BY leaf_index",
                                    (start, end)).fetchall()
            finally:
                conn.execute("COMMIT")
        return {int(index): bytes(data) for index, data in rows}

    def subject_key(self, subject_ref: bytes) -> SubjectKey | None:
        with self._reader() as conn:
            row = conn.execute("SELECT key_id, wrapped FROM subject_key WHERE subject_ref = ?"
                               " AND destroyed_at IS NULL", (bytes(subject_ref),)).fetchone()
        return None if row is None else SubjectKey(str(row[0]), bytes(row[1]))

    def add_subject_key(self, subject_ref: bytes, key: SubjectKey, created_at: float) -> SubjectKey:
        ref = bytes(subject_ref)

        def work(conn: sqlite3.Connection) -> SubjectKey:
            row = conn.execute("SELECT key_id, wrapped FROM subject_key WHERE subject_ref = ?"
                               " AND destroyed_at IS NULL", (ref,)).fetchone()
            if row is not None:
                return SubjectKey(str(row[0]), bytes(row[1]))
            try:
                conn.execute("INSERT INTO subject_key (key_id, subject_ref, wrapped, created_at)"
                             " VALUES (?, ?, ?, ?)", (key.key_id, ref, bytes(key.wrapped), created_at))
            except sqlite3.IntegrityError as exc:
                raise InputError(f"payload key id {key.key_id!r} is taken", path="$.key_id") from exc
            return key

        return self._run(work)

    def wrapped_key(self, key_id: str) -> bytes | None:
        with self._reader() as conn:
            row = conn.execute("SELECT wrapped FROM subject_key WHERE key_id = ?", (key_id,)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def erase_subject(self, subject_ref: bytes, erased_at: float) -> Erasure:
        ref = bytes(subject_ref)

        def work(conn: sqlite3.Connection) -> Erasure:
            conn.execute("UPDATE subject_key SET wrapped = NULL, destroyed_at = ?"
                         " WHERE subject_ref = ? AND destroyed_at IS NULL", (erased_at, ref))
            indices = tuple(int(row[0]) for row in conn.execute(
                "SELECT s.leaf_index FROM subject_index s JOIN payload p ON p.leaf_index = s.leaf_index"
                " WHERE s.subject_ref = ? AND p.ciphertext IS NOT NULL ORDER BY s.leaf_index", (ref,)))
            conn.executemany("UPDATE payload SET ciphertext = NULL, erased_at = ? WHERE leaf_index = ?",
                             [(erased_at, index) for index in indices])
            conn.executemany("DELETE FROM subject_index WHERE leaf_index = ?", [(index,) for index in indices])
            conn.execute("DELETE FROM subject_index WHERE subject_ref = ?", (ref,))
            cursor = conn.execute("INSERT INTO erasure (indices, erased_at) VALUES (?, ?)",
                                  (encode_indices(indices), erased_at))
            assert cursor.lastrowid is not None
            return Erasure(int(cursor.lastrowid), indices, erased_at)

        return self._run(work)

    def erasures(self, *, pending: bool = False) -> list[Erasure]:
        query = "SELECT id, indices, erased_at, leaf_index FROM erasure"
        query += " WHERE leaf_index IS NULL ORDER BY id" if pending else " ORDER BY id"
        with self._reader() as conn:
            rows = conn.execute(query).fetchall()
        return [Erasure(int(i), decode_indices(str(ix)), float(at), None if leaf is None else int(leaf))
                for i, ix, at, leaf in rows]

    def record_erasure_leaf(self, erasure_id: int, leaf_index: int) -> None:
        def work(conn: sqlite3.Connection) -> None:
            cursor = conn.execute("UPDATE erasure SET leaf_index = ? WHERE id = ?", (leaf_index, erasure_id))
            if cursor.rowcount != 1:
                raise InputError(f"no erasure {erasure_id}", path="$.erasure_id")

        self._run(work)

    def prune(self, below: int, pruned_at: float, keep: Sequence[int] = ()) -> int:
        def work(conn: sqlite3.Connection) -> int:
            size = _read_state(conn)[0]
            check_range(0, below, size)
            floor = int(conn.execute("SELECT pruned_below FROM tree_state WHERE id = 0").fetchone()[0])
            if below <= floor:
                return floor
            runs = clear_runs(floor, below, keep)
            if runs:
                conn.executemany("UPDATE leaf SET data = X'' WHERE idx >= ? AND idx < ?", runs)
            conn.execute("DELETE FROM subject_index WHERE leaf_index < ?", (below,))
            conn.execute("DELETE FROM payload WHERE leaf_index < ?", (below,))
            conn.execute("UPDATE tree_state SET pruned_below = ? WHERE id = 0", (below,))
            return below

        return self._run(work)

    def pruned_below(self) -> int:
        with self._reader() as conn:
            return int(conn.execute("SELECT pruned_below FROM tree_state WHERE id = 0").fetchone()[0])

    @contextmanager
    def sealing(self) -> Iterator[None]:
        """The seal lock: a thread lock, and an exclusive ``flock`` on ``FILE.seal-lock`` beside the
        database for the other processes on this host (the only ones that can share the file)."""
        with self._seal_lock:
            if self._path == ":memory:" or self._path.startswith("file::memory:"):
                yield
                return
            try:
                fd = os.open(self._path + ".seal-lock", os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise InternalError(f"cannot open the seal lock beside {self._path}: {exc}") from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the flock

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        with self._reader() as conn:
            conn.execute("BEGIN")
            try:
                check_range(start, end, _read_state(conn)[0])
                rows = conn.execute("SELECT hash FROM leaf WHERE idx >= ? AND idx < ? ORDER BY idx",
                                    (start, end)).fetchall()
            finally:
                conn.execute("COMMIT")
        return [bytes(row[0]) for row in rows]

    def close(self) -> None:
        with self._lock, self._readers_lock:
            if self._closed:
                return
            self._closed = True
            readers, self._readers = self._readers, []
            for conn in [self._writer, *readers]:
                conn.close()

    # ---------------------------------------------------------------- the decision index and keys

    def decision(self, decision_id: str) -> IndexedDecision | None:
        with self._reader() as conn:
            return tables.find_decision(conn, "?", decision_id)

    def decisions(self, query: DecisionQuery) -> list[IndexedDecision]:
        with self._reader() as conn:
            return tables.find_decisions(conn, "?", query)

    def remember_request(self, scope: str, request_id: str, decision_id: str) -> str:
        return self._run(lambda conn: tables.remember_request(conn, "?", scope, request_id, decision_id))

    def requested(self, scope: str, request_id: str) -> str | None:
        with self._reader() as conn:
            return tables.requested(conn, "?", scope, request_id)

    def add_key(self, key: ApiKey, key_hash: bytes) -> None:
        self._run(lambda conn: tables.add_key(conn, "?", key, key_hash))

    def key_by_hash(self, key_hash: bytes) -> tuple[ApiKey, bytes] | None:
        with self._reader() as conn:
            return tables.key_by_hash(conn, "?", key_hash)

    def keys(self) -> list[ApiKey]:
        with self._reader() as conn:
            return tables.list_keys(conn)

    def revoke_key(self, key_id: str, revoked_at: float) -> ApiKey | None:
        return self._run(lambda conn: tables.revoke_key(conn, "?", key_id, revoked_at))

    # ---------------------------------------------------------------- reviews

    def open_review(self, review: ReviewRequest, now: float) -> tuple[ReviewRequest, bool]:
        return self._run(lambda conn: reviews.open_review(conn, "?", review, now))

    def review(self, review_id: str) -> ReviewRequest | None:
        with self._reader() as conn:
            return reviews.find_review(conn, "?", review_id)

    def reviews(self, query: ReviewQuery) -> list[ReviewRequest]:
        with self._reader() as conn:
            return reviews.find_reviews(conn, "?", query)

    def act_on_review(self, review_id: str, reviewer: Reviewer, verdict: str, comment: str,
                      now: float) -> ReviewRequest:
        change = reviews.act_change(reviewer, verdict, comment, now)
        changed = self._run(lambda conn: reviews.change_review(conn, "?", review_id, change))
        assert changed is not None
        return changed

    def use_review(self, review_id: str, action_hash: str, now: float) -> ReviewRequest:
        change = reviews.use_change(action_hash, now)
        changed = self._run(lambda conn: reviews.change_review(conn, "?", review_id, change))
        assert changed is not None
        return changed

    def expire_review(self, review_id: str, now: float) -> ReviewRequest | None:
        change = reviews.expire_change(now)
        return self._run(lambda conn: reviews.change_review(conn, "?", review_id, change))

    def escalate_review(self, review_id: str, now: float) -> ReviewRequest | None:
        change = reviews.escalate_change(now)
        return self._run(lambda conn: reviews.change_review(conn, "?", review_id, change))

    def due_reviews(self, now: float, limit: int = 100) -> list[ReviewRequest]:
        return self._run(lambda conn: reviews.due_reviews(conn, "?", now, limit))

    def forget_subject(self, subject: str) -> int:
        return self._run(lambda conn: reviews.forget_subject(conn, "?", subject))

    # ---------------------------------------------------------------- beyond the port

    def applied_migrations(self) -> list[str]:
        """The names of the applied migrations, in the order they were applied."""
        with self._reader() as conn:
            rows = conn.execute("SELECT name FROM schema_migrations ORDER BY applied_at, name")
            return [str(row[0]) for row in rows]


def _read_state(conn: sqlite3.Connection) -> tuple[int, bytes, tuple[bytes, ...]]:
    row = conn.execute("SELECT size, root, frontier FROM tree_state WHERE id = 0").fetchone()
    if row is None:
        raise InternalError("the audit store has no tree state row")
    return int(row[0]), bytes(row[1]), decode_frontier(bytes(row[2]))
