"""Sliding-window counters for ``limit`` rules in Redis, so that several gateway processes share them.

Each policy key is one sorted set, ``PREFIX:limit:`` followed by the SHA-256 of the key (any key string
is safe), whose members are the hits scored by their time. One Lua script records a hit atomically:
it drops the hits at or before ``now - window``, adds this one under a unique member, keeps at most
``cap`` of the newest and sets the key to expire once the window (plus a second's grace) has passed.
The time is the ``now`` the caller passes, never Redis's clock, so decisions stay deterministic and
the answers are exactly those of :class:`~lictor.policy.limits.InMemoryLimitStore` for the same hits
in time order. Hits that arrive out of time order (clocks of several hosts) are counted by their
time: every stored hit newer than the window's start counts.

Nothing connects until the first hit; a Redis that cannot be reached raises
:class:`~lictor.errors.InternalError`, which the ``limit`` rule turns into its ``on_error``
handling (a BLOCK rule applies: it fails closed).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis

from lictor.errors import ConfigError, InternalError

__all__ = ["DEFAULT_PREFIX", "RedisLimitStore", "connect"]

DEFAULT_PREFIX = "lictor"
#: Keys outlive their window by this much, so that hits stamped by a gateway whose clock runs a
#: little ahead of Redis's are not dropped early.
GRACE_MS = 1000
_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_DB = re.compile(r"(/[0-9]{0,5})?")

# KEYS[1] the key; ARGV: now, horizon (now - window), unique member, cap, time to live in ms
_HIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
local count = redis.call('ZCARD', KEYS[1])
local cap = tonumber(ARGV[4])
if count > cap then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, count - cap - 1)
  count = cap
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return count
"""


def connect(url: str, *, connect_timeout: float = 1.0, timeout: float | None = 1.0) -> tuple[redis.Redis, str, str, str]:
    """A client for the Redis ``url`` names (connecting on first use), as (client, key prefix,
    ``host:port/db`` to name it in messages, the password to mask in them); ConfigError when the URL
    is not one."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"not a Redis URL (scheme {parts.scheme!r}); use redis://, rediss:// or "
                          "unix://", path="redis")
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [value for key, value in query if key == "prefix"]
    prefix = prefixes[-1] if prefixes else DEFAULT_PREFIX
    if not _PREFIX.fullmatch(prefix):
        raise ConfigError(f"prefix {prefix!r} is not 1 to 64 letters, digits or _.:-", path="redis")
    others = urlencode([(k, v) for k, v in query if k != "prefix"])
    rest = url.partition("?")[0] + (f"?{others}" if others else "")  # unix:///PATH keeps its slashes
    password = parts.password or ""
    where = parts.path if parts.scheme == "unix" else parts.netloc.rpartition("@")[2] + parts.path
    if parts.scheme != "unix" and not _DB.fullmatch(parts.path):
        raise ConfigError(f"the database of a Redis URL is a number (redis://HOST:6379/0), got "
                          f"{parts.path!r}", path="redis")
    try:
        if parts.scheme != "unix":  # a port that is not a number is refused now, not at the first use
            where = f"{parts.hostname or 'localhost'}:{parts.port or 6379}/{parts.path[1:] or 0}"
        client: redis.Redis = redis.Redis.from_url(rest, socket_connect_timeout=connect_timeout,
                                                   socket_timeout=timeout)
    except (ValueError, TypeError, redis.RedisError) as exc:
        text = f"cannot use the Redis URL for {where}: {exc}"
        raise ConfigError(text.replace(password, "***") if password else text, path="redis") from exc
    return client, prefix, where, password


class RedisLimitStore:
    """A :class:`~lictor.policy.limits.LimitStore` in the Redis at ``url``.

    ``url`` is ``redis://[USER:PASSWORD@]HOST:PORT/DB``, ``rediss://…`` (TLS) or
    ``unix:///PATH?db=N``; the query parameter ``prefix=NAME`` namespaces the keys (default
    ``lictor``), every other one is the Redis client's. Thread-safe: the client holds a pool.
    """

    def __init__(self, url: str, *, connect_timeout: float = 1.0, timeout: float = 1.0) -> None:
        self._client, self.prefix, self._where, self._password = connect(
            url, connect_timeout=connect_timeout, timeout=timeout)
        self._script = self._client.register_script(_HIT)
        self._member = f"{os.getpid():x}.{os.urandom(6).hex()}."
        self._serial = itertools.count()

    def key(self, key: str) -> str:
        """The Redis key that holds the hits of policy key ``key``."""
        return f"{self.prefix}:limit:{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()}"

    def hit(self, key: str, *, now: float, window: float, cap: int) -> int:
        member = f"{self._member}{next(self._serial)}"
        ttl = max(1, math.ceil(window * 1000)) + GRACE_MS
        try:
            count = self._script(keys=[self.key(key)],
                                 args=[repr(float(now)), repr(float(now - window)), member, max(cap, 1), ttl])
        except redis.RedisError as exc:
            raise InternalError(self._message("cannot count a hit in", exc)) from exc
        return int(count)

    def ping(self) -> None:
        """Raise :class:`~lictor.errors.InternalError` unless Redis answers (for readiness checks)."""
        try:
            self._client.ping()
        except redis.RedisError as exc:
            raise InternalError(self._message("no answer from", exc)) from exc

    def clear(self) -> None:
        """Forget every hit under this store's prefix (tests, and an operator's reset)."""
        try:
            batch: list[Any] = []  # the prefix holds no glob characters
            for name in self._client.scan_iter(match=f"{self.prefix}:limit:*", count=1000):
                batch.append(name)
                if len(batch) >= 1000:
                    self._client.delete(*batch)
                    batch.clear()
            if batch:
                self._client.delete(*batch)
        except redis.RedisError as exc:
            raise InternalError(self._message("cannot clear the limits in", exc)) from exc

    def close(self) -> None:
        self._client.close()

    def _message(self, what: str, exc: BaseException) -> str:
        text = f"{what} the Redis limit store at {self._where}: {exc}".strip()
        return text.replace(self._password, "***") if self._password else text
