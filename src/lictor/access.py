"""API keys: who may call the gateway and what for, kept hashed behind a small storage port.

A key is ``lictor_<id>_<secret>``: the id names it in lists and the audit log; the whole key is
shown once, when it is created, and only its SHA-256 is stored (the secret is 256 random bits, so a
plain hash is as strong as a slow one). Each key has one scope (what the caller may do) and, for
people, a user id and business roles (what approval rules match against).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Sequence
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


class KeyRing:
    """Create, check, list and revoke keys over a :class:`KeyStore`."""

    def __init__(self, store: KeyStore) -> None:
        self._store = store

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
        found = self._store.key_by_hash(wanted)
        if found is None:
            return None
        key, stored = found
        if not hmac.compare_digest(stored, wanted) or key.revoked_at is not None:
            return None
        return key

    def list(self) -> list[ApiKey]:
        return self._store.keys()

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key by id; raises InputError when there is no such key."""
        key = self._store.revoke_key(key_id, time.time())
        if key is None:
            raise InputError(f"no key {key_id!r}", path="$.id")
        return key

    def any_live(self) -> bool:
        return any(key.revoked_at is None for key in self._store.keys())  # noqa: SIM118
