"""The decision index and API key contract, run against memory, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from lictor.access import ApiKey, KeyRing, KeyStore
from lictor.audit.canonical import canonical_json
from lictor.audit.index import DecisionIndex, DecisionQuery, IndexedDecision
from lictor.errors import InputError
from lictor.store import open_store
from tests.store.conftest import Backend


def leaf(n: int, *, system: str = "s", verdict: str = "ALLOW", policies: tuple[str, ...] = (),
         ts: str | None = None) -> bytes:
    return canonical_json({"v": 1, "type": "decision", "decision_id": f"dec_{n}", "system": system,
                           "verdict": verdict, "ts": ts or f"2026-11-28T15:00:{n:02d}.000000Z",
                           "reasons": [{"policy": p, "rule": "r", "verdict": verdict} for p in policies]})


CONFIG = canonical_json({"v": 1, "type": "config", "ts": "2026-11-28T15:00:00.000000Z"})


def index_of(store: object) -> DecisionIndex:
    assert isinstance(store, DecisionIndex)
    return store


def test_decision_leaves_are_indexed_with_the_append(backend: Backend) -> None:
    store = backend.open()
    leaves = [CONFIG, leaf(1, policies=("a", "b", "a")), leaf(2, system="t", verdict="BLOCK", policies=("b",)),
              b"not json", leaf(3)]
    store.append(leaves, [None] * len(leaves))
    index = index_of(store)
    assert index.decision("dec_1") == IndexedDecision("dec_1", 1, "2026-11-28T15:00:01.000000Z", "s", "ALLOW",
                                                      ("a", "b"))
    assert index.decision("dec_9") is None
    ids = lambda q: [d.decision_id for d in index.decisions(q)]  # noqa: E731
    assert ids(DecisionQuery()) == ["dec_1", "dec_2", "dec_3"]
    assert ids(DecisionQuery(system="t")) == ["dec_2"]
    assert ids(DecisionQuery(verdict="ALLOW")) == ["dec_1", "dec_3"]
    assert ids(DecisionQuery(policy="b")) == ["dec_1", "dec_2"]
    assert ids(DecisionQuery(policy="zzz")) == []
    assert ids(DecisionQuery(since="2026-11-28T15:00:02.000000Z")) == ["dec_2", "dec_3"]
    assert ids(DecisionQuery(until="2026-11-28T15:00:02.000000Z")) == ["dec_1"]
    assert ids(DecisionQuery(after=1, limit=1)) == ["dec_2"]
    assert ids(DecisionQuery(after=2, limit=5)) == ["dec_3"]
    with pytest.raises(InputError):
        index.decisions(DecisionQuery(limit=0))


def test_the_first_decision_for_a_request_id_holds(backend: Backend) -> None:
    index = index_of(backend.open())
    assert index.requested("key1", "r1") is None
    assert index.remember_request("key1", "r1", "dec_a") == "dec_a"
    assert index.remember_request("key1", "r1", "dec_b") == "dec_a"
    assert index.remember_request("key2", "r1", "dec_c") == "dec_c"
    assert index.requested("key1", "r1") == "dec_a"


def test_keys_are_kept_hashed_and_revoked_once(backend: Backend) -> None:
    store = backend.open()
    assert isinstance(store, KeyStore)
    ring = KeyRing(store)
    key, text = ring.create("agent", user="alice", roles=["credit-officer", "analyst"])
    assert ring.authenticate(text) == key
    assert ring.authenticate(text + "x") is None
    assert ring.authenticate(text[:-1] + ("A" if text[-1] != "A" else "B")) is None
    other, _ = ring.create("auditor")
    assert [k.id for k in ring.list()] == [key.id, other.id]
    assert ring.any_live()
    revoked = ring.revoke(key.id)
    assert revoked.revoked_at is not None
    assert ring.revoke(key.id).revoked_at == revoked.revoked_at
    assert ring.authenticate(text) is None
    with pytest.raises(InputError):
        ring.revoke("nope")
    with pytest.raises(InputError):
        ring.create("root")
    with pytest.raises(InputError):
        ring.create("agent", roles=["bad role"])
    with pytest.raises(InputError):
        store.add_key(ApiKey(other.id, "agent", None, (), 0.0), b"\x00" * 32)
    assert text not in json.dumps(key.to_dict())


def test_an_older_log_is_indexed_when_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = open_store(f"sqlite:///{path}")
    store.append([CONFIG, leaf(1, policies=("a",)), leaf(2)], [None] * 3)
    store.close()
    with sqlite3.connect(path) as conn:  # back to the schema before the index
        conn.execute("DELETE FROM decision")
        conn.execute("DELETE FROM decision_policy")
        conn.execute("DELETE FROM schema_migrations WHERE name = '0003_decision_index_and_api_keys'")
        for table in ("decision", "decision_policy", "decision_request", "api_key"):
            conn.execute(f"DROP TABLE {table}")
    store = open_store(f"sqlite:///{path}")
    try:
        index = index_of(store)
        assert [d.decision_id for d in index.decisions(DecisionQuery())] == ["dec_1", "dec_2"]
        assert [d.decision_id for d in index.decisions(DecisionQuery(policy="a"))] == ["dec_1"]
    finally:
        store.close()


def test_an_older_postgres_log_is_indexed_when_migrated(postgres_url: str) -> None:
    import psycopg

    store = open_store(postgres_url)
    store.append([CONFIG, leaf(1, policies=("a",)), leaf(2)], [None] * 3)
    store.close()
    base, schema = postgres_url.split("?schema=")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {schema}")
        conn.execute("DELETE FROM schema_migrations WHERE name = '0003_decision_index_and_api_keys'")
        for table in ("decision", "decision_policy", "decision_request", "api_key"):
            conn.execute(f"DROP TABLE {table}")
    store = open_store(postgres_url)
    try:
        index = index_of(store)
        assert [d.decision_id for d in index.decisions(DecisionQuery())] == ["dec_1", "dec_2"]
        assert [d.decision_id for d in index.decisions(DecisionQuery(policy="a"))] == ["dec_1"]
    finally:
        store.close()
