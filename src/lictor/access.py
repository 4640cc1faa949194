"""API keys: who may call the gateway and what for, kept hashed behind a small storage port.

A key is ``lictor_<id>_<secret>``: the id names it in lists and the audit log; the whole key is
shown once, when it is created, and only its SHA-256 is stored (the secret is 256 random bits, so a
plain hash is as strong as a slow one). Each key has one scope (what the caller may do) and, for
people, a user id and business roles (what approval rules match against).

A :class:`KeyRing` may remember the keys it authenticated for a few seconds (``cache_ttl``), so a busy
gateway does not read the store on every request. Revoking a key through the same ring forgets it at
once (a lookup that raced the revocation is not remembered); a key revoked elsewhere (another process,
``lictor keys revoke``) is still accepted by this ring for at most ``cache_ttl`` seconds. Unknown and
revoked keys are never remembered.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from lictor.errors import InputError

__all__ = ["SCOPES", "ApiKey", "KeyRing", "KeyStore", "hash_key"]

#: agent: decide; reviewer: review held actions; admin: reload and manage; auditor: read the record.
SCOPES = ("agent", "reviewer", "admin", "auditor")

_PREFIX = "lictor_"
_KEY = re.compile(r"lictor_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_ROLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_USER = re.compile(r"[^\s\x00-\x1f]{1,128}")


def hash_key(key: str) -> bytes:
    """The stored form of a key: SHA-256 of its text."""
    return hashlib.sha256(key.encode("utf-8")).digest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key, without its secret."""

    id: str
    scope: str
    user: str | None
    roles: tuple[str, ...]
    created_at: float
    revoked_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """What may be shown and logged about the key (never the secret or its hash)."""
        return {"id": self.id, "scope": self.scope, "user": self.user, "roles": list(self.roles)}


@runtime_checkable
class KeyStore(Protocol):
    """Where keys are kept (by hash)."""

    def add_key(self, key: ApiKey, key_hash: bytes) -> None:
        """Store a new key; its id and hash are unique."""
        ...

    def key_by_hash(self, key_hash: bytes) -> tuple[ApiKey, bytes] | None:
        """The key with this hash and the stored hash (to compare in constant time), or None."""
        ...

    def keys(self) -> list[ApiKey]:
        """Every key, revoked ones too, oldest first."""
        ...

    def revoke_key(self, key_id: str, revoked_at: float) -> ApiKey | None:
        """Mark the key revoked (once); the key as it is now, or None when there is no such key."""
        ...


#: The most keys a ring remembers at once (beyond it, it starts over).
_CACHE_MAX = 1024


class KeyRing:
    """Create, check, list and revoke keys over a :class:`KeyStore`, remembering authenticated keys
    for ``cache_ttl`` seconds (0: never)."""

    def __init__(self, store: KeyStore, *, cache_ttl: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if cache_ttl < 0:
            raise ValueError("cache_ttl must not be negative")
        self._store = store
        self.cache_ttl = cache_ttl
        self._clock = clock
        # hash of the key text -> (the live key, when it was read from the store; monotonic seconds)
        self._cache: dict[bytes, tuple[ApiKey, float]] = {}
        self._lock = threading.Lock()
        self._generation = 0  # bumped by every revocation through this ring

    def create(self, scope: str, *, user: str | None = None, roles: Sequence[str] = ()) -> tuple[ApiKey, str]:
        """A new key; returns it and its full text, which is never available again."""
        if scope not in SCOPES:
            raise InputError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}", path="$.scope")
        if user is not None and not _USER.fullmatch(user):
            raise InputError("a user id is 1 to 128 characters without spaces", path="$.user")
        for n, role in enumerate(roles):
            if not _ROLE.fullmatch(role):
                raise InputError(f"a role is a short name (letters, digits, . _ : -), got {role!r}",
                                 path=f"$.roles[{n}]")
        key_id = secrets.token_hex(6)
        text = f"{_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        key = ApiKey(key_id, scope, user, tuple(dict.fromkeys(roles)), time.time())
        self._store.add_key(key, hash_key(text))
        return key, text

    def authenticate(self, text: str) -> ApiKey | None:
        """The live key whose full text is ``text``, or None (unknown, malformed or revoked)."""
        if not _KEY.fullmatch(text):
            return None
        wanted = hash_key(text)
        if self.cache_ttl > 0:
            held = self._cache.get(wanted)
            if held is not None and self._clock() - held[1] < self.cache_ttl:
                return held[0]
        generation = self._generation
        read_at = self._clock()
        found = self._store.key_by_hash(wanted)
        if found is None:
            return None
        key, stored = found
        if not hmac.compare_digest(stored, wanted) or key.revoked_at is not None:
            return None
        if self.cache_ttl > 0:
            with self._lock:
                if self._generation == generation:  # no revocation ran while the store was read
                    if len(self._cache) >= _CACHE_MAX:
                        self._cache.clear()
                    self._cache[wanted] = (key, read_at)
        return key

    def list(self) -> list[ApiKey]:
        return self._store.keys()

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key by id; raises InputError when there is no such key."""
        try:
            key = self._store.revoke_key(key_id, time.time())
        finally:
            self.forget(key_id)
        if key is None:
            raise InputError(f"no key {key_id!r}", path="$.id")
        return key

    def forget(self, key_id: str) -> None:
        """Forget what this ring remembers of key ``key_id``, and any lookup of it now under way."""
        with self._lock:
            self._generation += 1
            for wanted in [h for h, (key, _) in self._cache.items() if key.id == key_id]:
                del self._cache[wanted]

    def any_live(self) -> bool:
        return any(key.revoked_at is None for key in self._store.keys())  # noqa: SIM118
