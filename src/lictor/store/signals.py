"""Review change signals between gateway processes: Redis pub/sub, or PostgreSQL LISTEN/NOTIFY.

A gateway that changes a review (created, approved, rejected, used, escalated, expired) publishes
its id; every gateway listening on the same Redis prefix (or the same PostgreSQL database and
schema) hears it and wakes the requests waiting on that review at once, instead of at their next
poll. A signal is a hint, never the record: listeners re-read the review from the store, and a lost
signal (Redis restarting, a dropped connection) only means waiters notice the change at their next
poll. After (re)connecting, a listener reports :data:`EVERYTHING` so that waiters re-read whatever
they wait on.

Nothing connects until the first publish or subscribe; a failure to publish is logged (without the
URL's password) and otherwise ignored.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from lictor.errors import ConfigError

__all__ = ["EVERYTHING", "PostgresReviewSignal", "RedisReviewSignal"]

#: What a listener reports after (re)connecting: any review may have changed meanwhile.
EVERYTHING = "*"
#: Seconds a listener waits before connecting again after losing its connection.
RECONNECT_DELAY = 1.0

log = logging.getLogger("lictor.store.signals")


class _Listening:
    """The subscribers and the one background thread that listens for them."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._callbacks: list[Callable[[str], None]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    def subscribe(self, callback: Callable[[str], None], *, ready_within: float = 5.0) -> None:
        """Call ``callback(review_id)`` (from a background thread) for each review changed anywhere.
        The first subscription starts the listener and waits up to ``ready_within`` seconds for it to
        listen, so that changes made after this returns are heard (when the server answers)."""
        with self._lock:
            if self._stop.is_set():
                raise ConfigError("the review signal is closed")
            self._callbacks.append(callback)
            started = self._thread is None
            if started:
                self._thread = threading.Thread(target=self._listen_forever, name=self._name, daemon=True)
                self._thread.start()
        if started:
            self._listening.wait(ready_within)

    def _tell(self, review_id: str) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(review_id)
            except Exception as exc:  # one subscriber's bug must not stop the others or the thread
                log.error("a review signal subscriber failed: %s", type(exc).__name__)

    def _listen_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:  # connection lost: say so (without secrets), wait, connect again
                log.warning("review signal listener: %s; reconnecting", self._masked(exc))
            self._listening.set()  # listening or not, nobody waits for the first attempt any longer
            self._stop.wait(RECONNECT_DELAY)

    def _started(self) -> None:
        """Called by a listener once it listens: report that anything may have changed meanwhile."""
        self._listening.set()
        self._tell(EVERYTHING)

    def _listen(self) -> None:
        raise NotImplementedError

    def _masked(self, exc: BaseException) -> str:
        return type(exc).__name__

    def _close_listener(self, timeout: float) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)


class RedisReviewSignal(_Listening):
    """Review signals on the Redis channel ``PREFIX:reviews`` of ``url`` (the prefix is the
    ``?prefix=`` of the URL, as for the ``limit`` counters)."""

    def __init__(self, url: str) -> None:
        super().__init__("lictor-review-signal-redis")
        from lictor.store.redis import connect

        self._client, prefix, self._where, self._password = connect(url)
        # the listener blocks on its socket for up to a second at a time: no read timeout of its own
        self._listen_client, _, _, _ = connect(url, timeout=None)
        self.channel = f"{prefix}:reviews"

    def publish(self, review_id: str) -> None:
        import redis

        try:
            self._client.publish(self.channel, review_id)
        except redis.RedisError as exc:
            log.warning("cannot publish a review change to Redis at %s: %s", self._where, self._masked(exc))

    def _listen(self) -> None:
        pubsub = self._listen_client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(self.channel)
            self._started()
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=1.0)
                if message is not None and message.get("type") == "message":
                    data = message.get("data")
                    self._tell(data.decode() if isinstance(data, bytes) else str(data))
        finally:
            with contextlib.suppress(Exception):
                pubsub.close()

    def _masked(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {exc}"
        return text.replace(self._password, "***") if self._password else text

    def close(self, timeout: float = 3.0) -> None:
        self._close_listener(timeout)
        self._client.close()
        self._listen_client.close()

    def __repr__(self) -> str:
        return f"RedisReviewSignal({self._where!r}, channel={self.channel!r})"


class PostgresReviewSignal(_Listening):
    """Review signals through ``NOTIFY`` on the PostgreSQL database of ``url``: one channel per
    schema (``lictor_reviews`` followed by the schema's name), so test schemas do not hear each other."""

    def __init__(self, url: str) -> None:
        super().__init__("lictor-review-signal-postgres")
        from lictor.store.postgres import split_url

        self._conninfo, schema, self._where, self._password = split_url(url)
        self.channel = f"lictor_reviews_{schema or 'public'}"[:63]
        self._publish_lock = threading.Lock()
        self._conn: Any = None

    def publish(self, review_id: str) -> None:
        import psycopg

        with self._publish_lock:
            try:
                if self._conn is None or self._conn.closed or self._conn.broken:
                    self._conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5)
                self._conn.execute("SELECT pg_notify(%s, %s)", (self.channel, review_id))
            except psycopg.Error as exc:
                log.warning("cannot publish a review change to PostgreSQL at %s: %s", self._where,
                            self._masked(exc))
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

    def _listen(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            self._started()
            while not self._stop.is_set():
                for notice in conn.notifies(timeout=1.0):
                    self._tell(notice.payload)

    def _masked(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {exc}"
        return text.replace(self._password, "***") if self._password else text

    def close(self, timeout: float = 3.0) -> None:
        self._close_listener(timeout)
        with self._publish_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __repr__(self) -> str:
        return f"PostgresReviewSignal({self._where!r}, channel={self.channel!r})"
