"""What only the PostgreSQL store does: reconnect after its connection is lost, never retry an append."""

from __future__ import annotations

import psycopg
import pytest

from lictor.errors import InternalError
from lictor.store.postgres import PostgresStore
from tests.conftest import POSTGRES


def test_a_lost_connection_fails_one_call_and_the_next_reconnects(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    try:
        store.append([b"a"], [None])
        pid = store._run(lambda conn: conn.info.backend_pid)
        with psycopg.connect(POSTGRES, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(InternalError) as caught:
            store.append([b"b"], [None])
        assert isinstance(caught.value.__cause__, psycopg.Error)
        assert store.append([b"c"], [None]).first_index == 1
        assert store.leaves(0, 2) == [b"a", b"c"]
    finally:
        store.close()
