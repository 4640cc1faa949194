"""Test settings and fixtures shared by the whole suite.

PostgreSQL is expected at ``LICTOR_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/test``);
``postgres_url`` gives each test a fresh schema ``lictor_test_<random>``, dropped afterwards. When the
server is not reachable the tests that use it fail: they are never skipped. Redis is expected at
``LICTOR_TEST_REDIS`` (default ``redis://127.0.0.1:6379/0``); ``redis_url`` gives each test its own key
prefix ``lictor-test-<random>``, whose keys are deleted afterwards (and no others).

Hypothesis explores new examples on every local run; under CI (``CI`` set) it runs a fixed, derandomized
set so that a run is reproducible, while the local runs keep searching (and keep what they find in
``.hypothesis/``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import settings
from psycopg import sql

POSTGRES = os.environ.get("LICTOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("LICTOR_TEST_REDIS", "redis://127.0.0.1:6379/0")

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


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


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A URL naming a fresh key prefix in the test Redis."""
    from lictor.store.redis import RedisLimitStore

    url = f"{REDIS}{'&' if '?' in REDIS else '?'}prefix=lictor-test-{secrets.token_hex(6)}"
    cleaner = RedisLimitStore(url)
    cleaner.ping()
    try:
        yield url
    finally:
        cleaner.clear()
        cleaner.close()

