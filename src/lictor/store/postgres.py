"""The audit store in PostgreSQL (psycopg 3): one transaction per batch under the tree state's row lock.

Several gateway processes may share one database: ``SELECT … FOR UPDATE`` on the single
``tree_state`` row serialises their appends, and every commit waits for the WAL flush
(``synchronous_commit = on``). Each store holds one connection behind a lock and reconnects on the
next call after the connection broke; an append whose outcome is unknown is never retried here.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

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
from lictor.errors import ConfigError, InputError, InternalError, LictorError
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

__all__ = ["PostgresStore", "split_url"]

T = TypeVar("T")
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _advisory_key(name: str) -> int:
    """A 64-bit advisory lock key for ``name`` (locks are per database; the name carries the schema)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def split_url(url: str) -> tuple[str, str | None, str, str]:
    """A ``postgresql://`` URL as (libpq connection string without ``schema``, the schema or None,
    ``host:port/db`` to name it in messages, the password to mask in them)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"not a PostgreSQL URL (scheme {parts.scheme!r})", path="audit.store")
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in query if key == "schema"]
    schema = schemas[-1] if schemas else None
    if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
        raise ConfigError(f"schema {schema!r} is not a lower-case SQL identifier", path="audit.store")
    rest = [(key, value) for key, value in query if key != "schema"]
    where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or '/'}"
    return urlunsplit(parts._replace(query=urlencode(rest))), schema, where, parts.password or ""


class PostgresStore:
    """A durable audit store in the database of ``url`` (``postgresql://user@host:port/db``).

    The query parameter ``schema=NAME`` puts the tables in that schema (created when missing);
    every other query parameter is passed to libpq.
    """

    def __init__(self, url: str, *, connect_timeout: float = 10.0) -> None:
        self._conninfo, self._schema, self._where, self._password = split_url(url)
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._closed = False
        self._seal_lock = threading.Lock()  # guards _seal_conn, held while sealing
        self._seal_conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._run(self._migrate)

    # ---------------------------------------------------------------- connections and transactions

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        try:
            conn = psycopg.connect(self._conninfo, autocommit=True,
                                   connect_timeout=max(1, round(self._connect_timeout)))
        except psycopg.Error as exc:
            raise InternalError(self._message("cannot connect to", exc)) from exc
        try:
            conn.execute("SET synchronous_commit = on")  # COMMIT returns after the WAL flush
            if self._schema is not None:
                conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema)))
        except psycopg.Error as exc:
            conn.close()
            raise InternalError(self._message("cannot set up the session with", exc)) from exc
        return conn

    def _message(self, what: str, exc: BaseException) -> str:
        text = f"{what} the PostgreSQL audit store at {self._where}: {exc}".strip()
        return text.replace(self._password, "***") if self._password else text

    def _run(self, work: Callable[[psycopg.Connection[tuple[Any, ...]]], T]) -> T:
        """Run ``work`` in one transaction on the store's connection (reconnecting when needed)."""
        with self._lock:
            if self._closed:
                raise InternalError("the PostgreSQL audit store is closed")
            if self._conn is None or self._conn.closed or self._conn.broken:
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                self._conn = self._connect()
            conn = self._conn
            try:
                with conn.transaction():
                    return work(conn)
            except LictorError:
                raise
            except psycopg.Error as exc:
                if conn.broken or conn.closed:
                    conn.close()
                    self._conn = None
                raise InternalError(self._message("a statement failed in", exc)) from exc

    def _migrate(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        scope = self._schema or "public"
        key = _advisory_key(f"lictor.store:{scope}")
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))  # concurrent openers wait here
        if self._schema is not None:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self._schema)))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations"
                     " (name TEXT PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)")
        applied = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
        for migration in MIGRATIONS:
            if migration.name in applied:
                continue
            for statement in migration.postgres:
                conn.execute(statement.encode())
            conn.execute("INSERT INTO schema_migrations (name, applied_at) VALUES (%s, %s)",
                         (migration.name, time.time()))

    # ---------------------------------------------------------------- the port

    def append(self, leaves: Sequence[bytes], payloads: Sequence[Payload | None]) -> AppendResult:
        batch = check_batch(leaves, payloads)

        def work(conn: psycopg.Connection[tuple[Any, ...]]) -> AppendResult:
            first, root, frontier = _read_state(conn, lock=True)
            if not batch.leaves:
                return AppendResult(first, TreeState(first, root, frontier))
            state = batch.advance(first, frontier, root)
            leaf_rows, rows, links = batch.rows(first)
            with conn.pipeline(), conn.cursor() as cur:  # the writes go in one round trip
                cur.executemany("INSERT INTO leaf (idx, data, hash) VALUES (%s, %s, %s)", leaf_rows)
                tables.index_batch(conn, "%s", batch.leaves, first)
                if rows:
                    cur.executemany("INSERT INTO payload (leaf_index, ciphertext, key_id)"
                                    " VALUES (%s, %s, %s)", rows)
                if links:
                    cur.executemany("INSERT INTO subject_index (subject_ref, leaf_index, position)"
                                    " VALUES (%s, %s, %s)", links)
                cur.execute("UPDATE tree_state SET size = %s, root = %s, frontier = %s WHERE id = 0",
                            (state.size, state.root, encode_frontier(state.frontier)))
            return AppendResult(first, state)

        return self._run(work)

    def state(self) -> TreeState:
        size, root, frontier = self._run(lambda conn: _read_state(conn, lock=False))
        return TreeState(size, root, frontier)

    def leaves(self, start: int, end: int) -> list[bytes]:
        def work(conn: psycopg.Connection[tuple[Any, ...]]) -> list[bytes]:
            check_range(start, end, _read_state(conn, lock=False)[0])
            rows = conn.execute("SELECT data FROM leaf WHERE idx >= %s AND idx < %s ORDER BY idx",
                                (start, end)).fetchall()
            return [bytes(row[0]) for row in rows]

        return self._run(work)

    def add_checkpoint(self, size: int, note: str, published_at: float) -> None:
        def work(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
            check_checkpoint(size, note, _read_state(conn, lock=False)[0])
            conn.execute("INSERT INTO checkpoint (size, note, published_at) VALUES (%s, %s, %s)"
                         " ON CONFLICT (size) DO NOTHING", (size, note, published_at))
            kept = conn.execute("SELECT note FROM checkpoint WHERE size = %s", (size,)).fetchone()
            if kept is None or kept[0] != note:
                raise InputError(f"a different checkpoint of size {size} is stored", path="$.note")

        self._run(work)

    def checkpoints(self) -> list[StoredCheckpoint]:
        def work(conn: psycopg.Connection[tuple[Any, ...]]) -> list[StoredCheckpoint]:
            rows = conn.execute("SELECT size, note, published_at FROM checkpoint ORDER BY size")
            return [StoredCheckpoint(int(size), str(note), float(at)) for size, note, at in rows]

        return self._run(work)

    def payload(self, index: int) -> Payload | None:
        def work(conn: psycopg.Connection[tuple[Any, ...]]) -> Payload | None:
            row = conn.execute("SELECT ciphertext, key_id FROM payload WHERE leaf_index = %s",
                               (index,)).fetchone()
            if row is None or row[0] is None:
                return None
            refs = conn.execute("SELECT subject_ref FROM subject_index WHERE leaf_index = %s"
                                " ORDER BY position", (index,)).fetchall()
            return Payload(bytes(row[0]), str(row[1]), tuple(bytes(ref[0]) for ref in refs))

        return self._run(work)

    def payloads(self, start: int, end: int) -> dict[int, bytes]:
        def work(conn: psycopg.Connection[tuple[Any, ...]]) -> dict[int, bytes]:
            check_range(start, end, _read_state(conn, lock=False)[0])
            rows = conn.execute("SELECT leaf_index, ciphertext FROM payload WHERE leaf_index >= %s"
                                " AND leaf_index < %s AND ciphertext IS NOT NULL ORDER BY leaf_index",
                                (start, end)).fetchall()
            return {int(index): bytes(data) for index, data in rows}

        return self._run(work)

    def subject_key(self, subject_ref: bytes) -> SubjectKey | None:
        def work(conn: psycopg.Connection[tuple[Any, ...]]) -> SubjectKey | None:
            row = conn.execute("SELECT key_id, wrapped FROM subject_key WHERE subject_ref = %s"
                               " AND destroyed_at IS NULL", (bytes(subject_ref),)).fetchone()
            return None if row is None else SubjectKey(str(row[0]), bytes(row[1]))

        return self._run(work)

    def add_subject_key(self, subject_ref: bytes, key: SubjectKey, created_at: float) -> SubjectKey:
        ref = bytes(subject_ref)

        def work(conn: psycopg.Connection[tuple[Any, ...]]) -> SubjectKey:
            taken = conn.execute("SELECT 1 FROM subject_key WHERE key_id = %s", (key.key_id,)).fetchone()
            if taken is not None:
                raise InputError(f"payload key id {key.key_id!r} is taken", path="$.key_id")
            # a concurrent writer may add the subject's key first: then keep theirs
            conn.execute("INSERT INTO subject_key (key_id, subject_ref, wrapped, created_at)"
                         " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                         (key.key_id, ref, bytes(key.wrapped), created_at))
            row = conn.execute("SELECT key_id, wrapped FROM subject_key WHERE subject_ref = %s"
                               " AND destroyed_at IS NULL", (ref,)).fetchone()
            if row is None:
                raise InternalError("a subject key vanished while it was being added")
            return SubjectKey(str(row[0]), bytes(row[1]))

        return self._run(work)

    def wrapped_key(self, key_id: str) -> bytes | None:
        def work(conn: psycopg.Connection[tuple[Any, ...]]) -> bytes | None:
            row = conn.execute("SELECT wrapped FROM subject_key WHERE key_id = %s", (key_id,)).fetchone()
            return None if row is None or row[0] is None else bytes(row[0])

        return self._run(work)

    def erase_subject(self, subject_ref: bytes, erased_at: float) -> Erasure:
        ref = bytes(subject_ref)

        def work(conn: psycopg.Connection[tuple[Any, ...]]) -> Erasure:
            conn.execute("UPDATE subject_key SET wrapped = NULL, destroyed_at = %s"
                         " WHERE subject_ref = %s AND destroyed_at IS NULL", (erased_at, ref))
            rows = conn.execute(
                "SELECT s.leaf_index FROM subject_index s JOIN payload p ON p.leaf_index = s.leaf_index"
                " WHERE s.subject_ref = %s AND p.ciphertext IS NOT NULL ORDER BY s.leaf_index"
                " FOR UPDATE OF p", (ref,)).fetchall()
            indices = tuple(int(row[0]) for row in rows)
            conn.execute("UPDATE payload SET ciphertext = NULL, erased_at = %s WHERE leaf_index = ANY(%s)",
                         (erased_at, list(indices)))
            conn.execute("DELETE FROM subject_index WHERE leaf_index = ANY(%s) OR subject_ref = %s",
                         (list(indices), ref))
            row = conn.execute("INSERT INTO erasure (indices, erased_at) VALUES (%s, %s) RETURNING id",
                               (encode_indices(indices), erased_at)).fetchone()
            assert row is not None
            return Erasure(int(row[0]), indices, erased_at)

        return self._run(work)

    def erasures(self, *, pending: bool = False) -> list[Erasure]:
        query = "SELECT id, indices, erased_at, leaf_index FROM erasure"
        query += " WHERE leaf_index IS NULL ORDER BY id" if pending else " ORDER BY id"

        def work(conn: psycopg.Connection[tuple[Any, ...]]) -> list[Erasure]:
            return [Erasure(int(i), decode_indices(str(ix)), float(at), None if leaf is None else int(leaf))
                    for i, ix, at, leaf in conn.execute(query.encode()).fetchall()]

        return self._run(work)

    def record_erasure_leaf(self, erasure_id: int, leaf_index: int) -> None:
        def work(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
            cursor = conn.execute("UPDATE erasure SET leaf_index = %s WHERE id = %s", (leaf_index, erasure_id))
            if cursor.rowcount != 1:
                raise InputError(f"no erasure {erasure_id}", path="$.erasure_id")

        self._run(work)

    def prune(self, below: int, pruned_at: float, keep: Sequence[int] = ()) -> int:
        def work(conn: psycopg.Connection[tuple[Any, ...]]) -> int:
            size = _read_state(conn, lock=True)[0]
            check_range(0, below, size)
            row = conn.execute("SELECT pruned_below FROM tree_state WHERE id = 0").fetchone()
            floor = int(row[0]) if row else 0
            if below <= floor:
                return floor
            runs = clear_runs(floor, below, keep)
            if runs:
                conn.cursor().executemany("UPDATE leaf SET data = ''::bytea WHERE idx >= %s AND idx < %s", runs)
            conn.execute("DELETE FROM subject_index WHERE leaf_index < %s", (below,))
            conn.execute("DELETE FROM payload WHERE leaf_index < %s", (below,))
            conn.execute("UPDATE tree_state SET pruned_below = %s WHERE id = 0", (below,))
            return below

        return self._run(work)

    def pruned_below(self) -> int:
        def work(conn: psycopg.Connection[tuple[Any, ...]]) -> int:
            row = conn.execute("SELECT pruned_below FROM tree_state WHERE id = 0").fetchone()
            return int(row[0]) if row else 0

        return self._run(work)

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        def work(conn: psycopg.Connection[tuple[Any, ...]]) -> list[bytes]:
            check_range(start, end, _read_state(conn, lock=False)[0])
            rows = conn.execute("SELECT hash FROM leaf WHERE idx >= %s AND idx < %s ORDER BY idx",
                                (start, end)).fetchall()
            return [bytes(row[0]) for row in rows]

        return self._run(work)

    @contextmanager
    def sealing(self) -> Iterator[None]:
        """The seal lock: a session advisory lock named after the schema, held on a connection of its
        own (so reads and appends go on meanwhile); every gateway on any host sharing the schema waits
        for it. It is released when the block ends, or by the server if the connection is lost."""
        key = _advisory_key(f"lictor.seal:{self._schema or 'public'}")
        with self._seal_lock:
            try:
                if self._seal_conn is None or self._seal_conn.closed or self._seal_conn.broken:
                    self._seal_conn = self._connect()
                conn = self._seal_conn
                conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            except psycopg.Error as exc:
                raise InternalError(self._message("cannot take the seal lock of", exc)) from exc
            try:
                yield
            finally:
                try:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
                except psycopg.Error:
                    conn.close()  # the server drops the lock with the session

    def close(self) -> None:
        with self._seal_lock:
            if self._seal_conn is not None:
                self._seal_conn.close()
                self._seal_conn = None
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # ---------------------------------------------------------------- the decision index and keys

    def decision(self, decision_id: str) -> IndexedDecision | None:
        return self._run(lambda conn: tables.find_decision(conn, "%s", decision_id))

    def decisions(self, query: DecisionQuery) -> list[IndexedDecision]:
        return self._run(lambda conn: tables.find_decisions(conn, "%s", query))

    def remember_request(self, scope: str, request_id: str, decision_id: str) -> str:
        return self._run(lambda conn: tables.remember_request(conn, "%s", scope, request_id, decision_id))

    def requested(self, scope: str, request_id: str) -> str | None:
        return self._run(lambda conn: tables.requested(conn, "%s", scope, request_id))

    def add_key(self, key: ApiKey, key_hash: bytes) -> None:
        self._run(lambda conn: tables.add_key(conn, "%s", key, key_hash))

    def key_by_hash(self, key_hash: bytes) -> tuple[ApiKey, bytes] | None:
        return self._run(lambda conn: tables.key_by_hash(conn, "%s", key_hash))

    def keys(self) -> list[ApiKey]:
        return self._run(tables.list_keys)

    def revoke_key(self, key_id: str, revoked_at: float) -> ApiKey | None:
        return self._run(lambda conn: tables.revoke_key(conn, "%s", key_id, revoked_at))

    # ---------------------------------------------------------------- reviews

    def open_review(self, review: ReviewRequest, now: float) -> tuple[ReviewRequest, bool]:
        def work(conn: psycopg.Connection[tuple[Any, ...]]) -> tuple[ReviewRequest, bool]:
            # one opener at a time per action, across processes, until this transaction ends
            conn.execute("SELECT pg_advisory_xact_lock(%s)",
                         (_advisory_key(f"lictor.review:{review.action_hash}:{review.agent_id or ''}"),))
            return reviews.open_review(conn, "%s", review, now)

        return self._run(work)

    def review(self, review_id: str) -> ReviewRequest | None:
        return self._run(lambda conn: reviews.find_review(conn, "%s", review_id))

    def reviews(self, query: ReviewQuery) -> list[ReviewRequest]:
        return self._run(lambda conn: reviews.find_reviews(conn, "%s", query))

    def act_on_review(self, review_id: str, reviewer: Reviewer, verdict: str, comment: str,
                      now: float) -> ReviewRequest:
        change = reviews.act_change(reviewer, verdict, comment, now)
        changed = self._run(lambda conn: reviews.change_review(conn, "%s", review_id, change, " FOR UPDATE"))
        assert changed is not None
        return changed

    def use_review(self, review_id: str, action_hash: str, now: float) -> ReviewRequest:
        change = reviews.use_change(action_hash, now)
        changed = self._run(lambda conn: reviews.change_review(conn, "%s", review_id, change, " FOR UPDATE"))
        assert changed is not None
        return changed

    def expire_review(self, review_id: str, now: float) -> ReviewRequest | None:
        change = reviews.expire_change(now)
        return self._run(lambda conn: reviews.change_review(conn, "%s", review_id, change, " FOR UPDATE"))

    def escalate_review(self, review_id: str, now: float) -> ReviewRequest | None:
        change = reviews.escalate_change(now)
        return self._run(lambda conn: reviews.change_review(conn, "%s", review_id, change, " FOR UPDATE"))

    def due_reviews(self, now: float, limit: int = 100) -> list[ReviewRequest]:
        return self._run(lambda conn: reviews.due_reviews(conn, "%s", now, limit))

    def forget_subject(self, subject: str) -> int:
        return self._run(lambda conn: reviews.forget_subject(conn, "%s", subject))

    # ---------------------------------------------------------------- beyond the port

    def applied_migrations(self) -> list[str]:
        """The names of the applied migrations, in the order they were applied."""
        def work(conn: psycopg.Connection[tuple[Any, ...]]) -> list[str]:
            rows = conn.execute("SELECT name FROM schema_migrations ORDER BY applied_at, name")
            return [str(row[0]) for row in rows]

        return self._run(work)


def _read_state(conn: psycopg.Connection[tuple[Any, ...]], *,
                lock: bool) -> tuple[int, bytes, tuple[bytes, ...]]:
    query = "SELECT size, root, frontier FROM tree_state WHERE id = 0" + (" FOR UPDATE" if lock else "")
    row = conn.execute(query).fetchone()
    if row is None:
        raise InternalError("the audit store has no tree state row")
    return int(row[0]), bytes(row[1]), decode_frontier(bytes(row[2]))
