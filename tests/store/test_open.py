"""``open_store`` picks the backend from the URL and refuses the ones it cannot honour."""

from __future__ import annotations

from pathlib import Path

import pytest

from lictor.errors import ConfigError, InternalError
from lictor.store import MemoryStore, SqliteStore, open_store


def test_memory_and_sqlite_urls(tmp_path: Path) -> None:
    assert isinstance(open_store("memory://"), MemoryStore)
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        assert isinstance(store, SqliteStore)
        assert (tmp_path / "a.db").exists()
    finally:
        store.close()


@pytest.mark.parametrize("url", ["redis://user:s3cret@host/0", "mysql://root:s3cret@db/audit",
                                 "no-scheme-at-all", "s3cret"])
def test_an_unknown_scheme_is_named_and_no_password_is_echoed(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_store(url)
    assert "s3cret" not in str(caught.value)
    assert "scheme" in str(caught.value)
    if "://" in url:
        assert url.split("://")[0] in str(caught.value)


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://", "sqlite:///",
                                 "sqlite://host/a.db", "sqlite:///a.db?mode=ro", "memory://x"])
def test_urls_that_cannot_give_a_durable_store_are_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        open_store(url)


def test_a_bad_schema_name_is_refused() -> None:
    with pytest.raises(ConfigError):
        open_store("postgresql://postgres@127.0.0.1:5432/test?schema=Robert');DROP")


def test_an_unreachable_database_is_an_internal_error_without_the_password() -> None:
    with pytest.raises(InternalError) as caught:
        open_store("postgresql://auditor:s3cret@127.0.0.1:1/nowhere?connect_timeout=2")
    assert "s3cret" not in str(caught.value)
    assert "127.0.0.1:1/nowhere" in str(caught.value)


def test_a_store_that_is_closed_refuses_work(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    store.close()
    store.close()
    with pytest.raises(InternalError):
        store.append([b"x"], [None])
