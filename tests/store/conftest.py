"""Fixtures that open the same audit store contract on every backend: memory, SQLite and PostgreSQL
(a fresh schema per test, from the suite's ``postgres_url`` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lictor.audit.port import AuditStore
from lictor.store import open_store


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
