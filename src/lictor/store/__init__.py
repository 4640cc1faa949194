"""Storage backends of the audit log behind :class:`~lictor.audit.port.AuditStore`, chosen by URL.

::

    memory://                                   in this process only (tests)
    sqlite:////var/lib/lictor/audit.db          one file, one host (an absolute path: four slashes)
    sqlite:///audit.db                          a path relative to the working directory
    postgresql://user@host:5432/db?schema=NAME  several gateway processes (``pip install lictor[postgres]``)

``sqlite:///:memory:`` is refused: an audit store that vanishes with its connection is no audit store
(use ``memory://`` in tests). The PostgreSQL backend and its driver are imported only when used.

Review change signals between gateway processes (:func:`open_review_signal`) use Redis pub/sub
when Redis is configured, PostgreSQL ``LISTEN``/``NOTIFY`` otherwise on PostgreSQL.

The counters of ``limit`` rules (:class:`~lictor.policy.limits.LimitStore`) are opened the same way
by :func:`open_limit_store`: ``memory://`` in this process, ``redis://HOST:6379/0`` (or
``rediss://``, ``unix://``) shared by several gateway processes (``pip install lictor[redis]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from lictor.audit.port import AuditStore
from lictor.errors import ConfigError
from lictor.store.memory import MemoryStore
from lictor.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from lictor.oversight.port import ReviewSignal
    from lictor.policy.limits import LimitStore

__all__ = ["MemoryStore", "SqliteStore", "open_limit_store", "open_review_signal", "open_store"]

_SCHEMES = ("memory", "sqlite", "postgresql", "postgres")
_LIMIT_SCHEMES = ("memory", "redis", "rediss", "unix")


def open_store(url: str) -> AuditStore:
    """Open (creating and migrating when needed) the audit store that ``url`` names."""
    scheme = _scheme(url, _SCHEMES, _SCHEMES[:3], "audit store", "audit.store")
    if scheme == "memory":
        return MemoryStore()
    if scheme == "sqlite":
        return SqliteStore(_sqlite_path(url))
    try:
        from lictor.store.postgres import PostgresStore
    except ImportError as exc:
        raise ConfigError("the PostgreSQL audit store needs psycopg: install lictor[postgres]",
                          path="audit.store") from exc
    return PostgresStore(url)


def open_limit_store(url: str) -> LimitStore:
    """Review change signals between gateway processes (:func:`open_review_signal`) use Redis pub/sub
when Redis is configured, PostgreSQL ``LISTEN``/``NOTIFY`` otherwise on PostgreSQL.

The counters of ``limit`` rules that ``url`` names; a Redis store connects on its first hit."""
    scheme = _scheme(url, _LIMIT_SCHEMES, _LIMIT_SCHEMES, "limit store", "redis")
    if scheme == "memory":
        from lictor.policy.limits import InMemoryLimitStore
        return InMemoryLimitStore()
    try:
        from lictor.store.redis import RedisLimitStore
    except ImportError as exc:
        raise ConfigError("the Redis limit store needs the redis client: install lictor[redis]",
                          path="redis") from exc
    return RedisLimitStore(url)


def open_review_signal(database: str, redis: str | None) -> ReviewSignal | None:
    """How gateway processes tell each other that a review changed: Redis pub/sub when ``redis`` is
    set, else PostgreSQL ``LISTEN``/``NOTIFY`` when ``database`` is PostgreSQL, else None (one
    process, or waiters that poll). Nothing connects until it is used."""
    if redis is not None:
        _scheme(redis, _LIMIT_SCHEMES[1:], _LIMIT_SCHEMES[1:], "Redis", "redis")
        from lictor.store.signals import RedisReviewSignal
        return RedisReviewSignal(redis)
    if _scheme(database, _SCHEMES, _SCHEMES[:3], "audit store", "audit.store") in ("postgresql", "postgres"):
        from lictor.store.signals import PostgresReviewSignal
        return PostgresReviewSignal(database)
    return None


def _scheme(url: str, schemes: tuple[str, ...], shown: tuple[str, ...], what: str, setting: str) -> str:
    """The URL's scheme (lower case) when it is one of ``schemes``; ConfigError naming ``setting``
    otherwise, or for a ``memory://`` URL with a path."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in schemes:
        raise ConfigError(f"unknown {what} URL scheme {scheme if sep else '(none)'!r}; use one of "
                          f"{', '.join(s + '://' for s in shown)}", path=setting)
    if scheme == "memory" and rest:
        raise ConfigError("memory:// takes no path", path=setting)
    return scheme


def _sqlite_path(url: str) -> str:
    parts = urlsplit(url)
    if parts.netloc or parts.query or parts.fragment:
        raise ConfigError("a SQLite URL is sqlite:///PATH (no host, query or fragment)",
                          path="audit.store")
    path = parts.path[1:]  # sqlite:///rel.db -> rel.db, sqlite:////abs.db -> /abs.db
    if not path:
        raise ConfigError("a SQLite URL needs a file path: sqlite:///PATH", path="audit.store")
    if path == ":memory:" or path.startswith("file:") or "mode=memory" in path:
        raise ConfigError("an in-memory SQLite database is not durable; use memory:// in tests",
                          path="audit.store")
    return path
