"""Fixtures that open the same audit store contract on every backend: memory, SQLite and PostgreSQL.

PostgreSQL is expected at ``LICTOR_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/test``);
each test gets a fresh schema ``lictor_test_<random>``, dropped afterwards. When the server is not
reachable the PostgreSQL tests fail: they are never skipped.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from lictor.audit.port import AuditStore
from lictor.store import open_store

POSTGRES = os.environ.get("LICTOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class Backend:
    """A store location; :meth:`open` gives a new store instance on it, closed after the test."""

    name: str
    url: str
    opened: list[AuditStore] = field(default_factory=list)

    def open(self) -> AuditStore:
        store = open_store(self.url)
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL naming a fresh, empty schema of the test database."""
    schema = f"lictor_test_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield f"{POSTGRES}?schema={schema}"
    finally:
        with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def _backend(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if name == "memory":
        url = "memory://"
    elif name == "sqlite":
        url = f"sqlite:///{tmp_path / 'audit.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    backend = Backend(name, url)
    try:
        yield backend
    finally:
        backend.close_all()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Every backend."""
    yield from _backend(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", "postgres"])
def durable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The backends that outlive a store instance (and a process)."""
    yield from _backend(request.param, request, tmp_path)
