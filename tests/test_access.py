"""The key ring's memory of authenticated keys: fewer store reads, and revocation still safe."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from lictor.access import ApiKey, KeyRing, KeyStore
from lictor.config import Settings
from lictor.runtime import Gateway
from lictor.store import open_store


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingKeys:
    """A real key store that counts lookups and can run something in the middle of one."""

    def __init__(self, inner: KeyStore) -> None:
        self.inner = inner
        self.lookups = 0
        self.during_lookup: Callable[[], None] | None = None

    def add_key(self, key: ApiKey, key_hash: bytes) -> None:
        self.inner.add_key(key, key_hash)

    def key_by_hash(self, key_hash: bytes) -> tuple[ApiKey, bytes] | None:
        self.lookups += 1
        found = self.inner.key_by_hash(key_hash)
        if self.during_lookup is not None:
            step, self.during_lookup = self.during_lookup, None
            step()  # e.g. a revocation that commits after this lookup read the key as live
        return found

    def keys(self) -> list[ApiKey]:
        return self.inner.keys()

    def revoke_key(self, key_id: str, revoked_at: float) -> ApiKey | None:
        return self.inner.revoke_key(key_id, revoked_at)


@pytest.fixture
def keys(tmp_path: Path) -> CountingKeys:
    store = open_store(f"sqlite:///{tmp_path / 'keys.db'}")
    assert isinstance(store, KeyStore)
    return CountingKeys(store)


def test_an_authenticated_key_is_remembered_for_the_ttl(keys: CountingKeys) -> None:
    clock = Clock()
    ring = KeyRing(keys, cache_ttl=5.0, clock=clock)
    key, text = ring.create("agent")
    assert ring.authenticate(text) == key
    assert ring.authenticate(text) == key
    assert keys.lookups == 1
    clock.now += 5.0
    assert ring.authenticate(text) == key
    assert keys.lookups == 2


def test_without_a_ttl_every_request_reads_the_store(keys: CountingKeys) -> None:
    ring = KeyRing(keys)
    _, text = ring.create("agent")
    for _ in range(3):
        assert ring.authenticate(text) is not None
    assert keys.lookups == 3


def test_a_key_revoked_through_the_ring_is_refused_at_once(keys: CountingKeys) -> None:
    ring = KeyRing(keys, cache_ttl=60.0, clock=Clock())
    key, text = ring.create("agent")
    _, other = ring.create("agent")
    assert ring.authenticate(text) == key and ring.authenticate(other) is not None
    ring.revoke(key.id)
    assert ring.authenticate(text) is None
    lookups = keys.lookups
    assert ring.authenticate(other) is not None  # the other key is still remembered
    assert keys.lookups == lookups


def test_a_lookup_that_raced_a_revocation_is_not_remembered(keys: CountingKeys) -> None:
    ring = KeyRing(keys, cache_ttl=60.0, clock=Clock())
    key, text = ring.create("agent")
    keys.during_lookup = lambda: ring.revoke(key.id)
    assert ring.authenticate(text) == key  # read before the revocation committed: served as live once
    assert ring.authenticate(text) is None  # but not remembered: the next request reads the store


def test_a_key_revoked_elsewhere_is_refused_once_the_ttl_passes(keys: CountingKeys) -> None:
    clock = Clock()
    ring = KeyRing(keys, cache_ttl=5.0, clock=clock)
    key, text = ring.create("agent")
    assert ring.authenticate(text) == key
    KeyRing(keys).revoke(key.id)  # another process (or `lictor keys revoke`)
    assert ring.authenticate(text) == key  # the documented window
    clock.now += 5.0
    assert ring.authenticate(text) is None


def test_unknown_and_revoked_keys_are_never_remembered(keys: CountingKeys) -> None:
    ring = KeyRing(keys, cache_ttl=60.0, clock=Clock())
    key, text = ring.create("agent")
    ring.revoke(key.id)
    assert ring.authenticate(text) is None
    assert ring.authenticate(text) is None
    assert keys.lookups == 2
    with pytest.raises(ValueError):
        KeyRing(keys, cache_ttl=-1)


def test_the_gateway_has_one_ring_with_the_configured_ttl(tmp_path: Path) -> None:
    base = Settings(database=f"sqlite:///{tmp_path / 'g.db'}", policies=tmp_path)
    settings = dataclasses.replace(base, audit=dataclasses.replace(
        base.audit, key_file=tmp_path / "a.key", payload_key_file=tmp_path / "p.key"))
    gateway = Gateway.from_settings(settings)
    try:
        assert gateway.keys is gateway.keys
        assert gateway.keys.cache_ttl == settings.http.key_cache_ttl == 5.0
    finally:
        gateway.close()
