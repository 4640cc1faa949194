"""The decision index and API key tables, in SQL that SQLite and PostgreSQL share.

Each function takes an open connection (``sqlite3`` or ``psycopg``, inside the caller's
transaction) and the dialect's parameter mark (``?`` or ``%s``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from lictor.access import ApiKey
from lictor.audit.index import DecisionQuery, IndexedDecision, index_entries
from lictor.errors import InputError

__all__ = ["add_key", "filters", "find_decision", "find_decisions", "index_batch", "key_by_hash", "list_keys",
           "remember_request", "requested", "revoke_key"]


class _Cursor(Protocol):
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class _Conn(Protocol):
    def execute(self, query: Any, params: Any = ..., /) -> Any: ...
    def cursor(self) -> Any: ...


_DECISION_COLUMNS = "decision_id, leaf_index, ts, system, verdict, policies"


def index_batch(conn: _Conn, mark: str, leaves: Sequence[bytes], first: int) -> None:
    """Index the decision leaves of a batch appended at ``first`` (in the append's transaction)."""
    entries = index_entries(leaves, first)
    if not entries:
        return
    cur = conn.cursor()
    cur.executemany(f"INSERT INTO decision ({_DECISION_COLUMNS}) VALUES ({', '.join([mark] * 6)})"
                    " ON CONFLICT DO NOTHING",
                    [(e.decision_id, e.leaf_index, e.ts, e.system, e.verdict, json.dumps(list(e.policies)))
                     for e in entries])
    links = [(policy, e.leaf_index) for e in entries for policy in e.policies]
    if links:
        cur.executemany(f"INSERT INTO decision_policy (policy, leaf_index) VALUES ({mark}, {mark})"
                        " ON CONFLICT DO NOTHING", links)


def _decision(row: Sequence[Any]) -> IndexedDecision:
    policies = json.loads(row[5])
    return IndexedDecision(str(row[0]), int(row[1]), str(row[2]), str(row[3]), str(row[4]),
                           tuple(str(p) for p in policies if p is not None))


def find_decision(conn: _Conn, mark: str, decision_id: str) -> IndexedDecision | None:
    row = conn.execute(f"SELECT {_DECISION_COLUMNS} FROM decision WHERE decision_id = {mark}",
                       (decision_id,)).fetchone()
    return None if row is None else _decision(row)


def filters(mark: str, equal: Sequence[tuple[str, Any]], time_column: str, since: Any,
            until: Any) -> tuple[list[str], list[Any]]:
    """The conditions and parameters of a listing query: each ``(column, value)`` whose value is
    given must equal it, and ``time_column`` lies in ``[since, until)`` (either bound may be None)."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in equal:
        if value is not None:
            where.append(f"{column} = {mark}")
            params.append(value)
    for value, condition in ((since, f"{time_column} >= {mark}"), (until, f"{time_column} < {mark}")):
        if value is not None:
            where.append(condition)
            params.append(value)
    return where, params


def find_decisions(conn: _Conn, mark: str, query: DecisionQuery) -> list[IndexedDecision]:
    if query.limit < 1:
        raise InputError("the limit is at least 1", path="$.limit")
    where, params = filters(mark, (("d.system", query.system), ("d.verdict", query.verdict)), "d.ts",
                            query.since, query.until)
    if query.after is not None:
        where.append(f"d.leaf_index > {mark}")
        params.append(query.after)
    if query.policy is not None:
        where.append(f"EXISTS (SELECT 1 FROM decision_policy p WHERE p.leaf_index = d.leaf_index"
                     f" AND p.policy = {mark})")
        params.append(query.policy)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(f"SELECT d.decision_id, d.leaf_index, d.ts, d.system, d.verdict, d.policies"
                        f" FROM decision d{clause} ORDER BY d.leaf_index LIMIT {int(query.limit)}",
                        tuple(params)).fetchall()
    return [_decision(row) for row in rows]


def remember_request(conn: _Conn, mark: str, scope: str, request_id: str, decision_id: str) -> str:
    conn.execute(f"INSERT INTO decision_request (scope, request_id, decision_id) VALUES ({mark}, {mark}, {mark})"
                 " ON CONFLICT DO NOTHING", (scope, request_id, decision_id))
    held = requested(conn, mark, scope, request_id)
    return decision_id if held is None else held


def requested(conn: _Conn, mark: str, scope: str, request_id: str) -> str | None:
    row = conn.execute(f"SELECT decision_id FROM decision_request WHERE scope = {mark} AND request_id = {mark}",
                       (scope, request_id)).fetchone()
    return None if row is None else str(row[0])


_KEY_COLUMNS = "id, scope, user_id, roles, created_at, revoked_at"


def _key(row: Sequence[Any]) -> ApiKey:
    return ApiKey(str(row[0]), str(row[1]), None if row[2] is None else str(row[2]),
                  tuple(str(r) for r in json.loads(row[3])), float(row[4]),
                  None if row[5] is None else float(row[5]))


def add_key(conn: _Conn, mark: str, key: ApiKey, key_hash: bytes) -> None:
    taken = conn.execute(f"SELECT 1 FROM api_key WHERE id = {mark} OR key_hash = {mark}",
                         (key.id, key_hash)).fetchone()
    if taken is not None:
        raise InputError(f"key id {key.id!r} is taken", path="$.id")
    conn.execute(f"INSERT INTO api_key (id, key_hash, {_KEY_COLUMNS[4:]}) VALUES ({', '.join([mark] * 7)})",
                 (key.id, key_hash, key.scope, key.user, json.dumps(list(key.roles)), key.created_at,
                  key.revoked_at))


def key_by_hash(conn: _Conn, mark: str, key_hash: bytes) -> tuple[ApiKey, bytes] | None:
    row = conn.execute(f"SELECT {_KEY_COLUMNS}, key_hash FROM api_key WHERE key_hash = {mark}",
                       (key_hash,)).fetchone()
    return None if row is None else (_key(row), bytes(row[6]))


def list_keys(conn: _Conn) -> list[ApiKey]:
    return [_key(row) for row in conn.execute(f"SELECT {_KEY_COLUMNS} FROM api_key ORDER BY created_at, id").fetchall()]


def revoke_key(conn: _Conn, mark: str, key_id: str, revoked_at: float) -> ApiKey | None:
    conn.execute(f"UPDATE api_key SET revoked_at = {mark} WHERE id = {mark} AND revoked_at IS NULL",
                 (revoked_at, key_id))
    row = conn.execute(f"SELECT {_KEY_COLUMNS} FROM api_key WHERE id = {mark}", (key_id,)).fetchone()
    return None if row is None else _key(row)
