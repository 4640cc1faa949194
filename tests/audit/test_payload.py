"""The payload side store's cryptography: sealing for several subjects, shredding, sampling, key files."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lictor.audit.leaf import SENSITIVE_FIELDS, commit, new_salts
from lictor.audit.payload import (
    PayloadKeys,
    PayloadVault,
    ShreddedPayload,
    open_document,
    payload_document,
    payload_ref,
    sampled,
)
from lictor.errors import ConfigError, VerificationError
from lictor.store import open_store


def vault() -> PayloadVault:
    return PayloadVault(PayloadKeys.generate(), open_store("memory://"))


def test_a_sealed_payload_opens_to_its_document() -> None:
    v = vault()
    payload = v.seal(b'{"v":1,"fields":{}}', ["alice"])
    assert v.open(payload.ciphertext) == b'{"v":1,"fields":{}}'
    assert payload.subject_refs == (v.keys.subject_ref("alice"),)
    assert b"fields" not in payload.ciphertext  # encrypted, not encoded


def test_one_subject_key_serves_every_payload_of_that_subject() -> None:
    v = vault()
    first, second = v.seal(b"one", ["alice"]), v.seal(b"two", ["alice"])
    assert first.key_id == second.key_id
    assert v.seal(b"three", ["bob"]).key_id != first.key_id


def test_a_payload_without_subjects_is_sealed_under_the_anonymous_key() -> None:
    v = vault()
    payload = v.seal(b"nobody's", [])
    assert payload.subject_refs == ()
    assert v.open(payload.ciphertext) == b"nobody's"


def test_destroying_every_subject_key_shreds_the_payload() -> None:
    store = open_store("memory://")
    keys = PayloadKeys.generate()
    v = PayloadVault(keys, store)
    shared = v.seal(b"about alice and bob", ["alice", "bob"])
    store.erase_subject(keys.subject_ref("alice"), 1.0)
    fresh = PayloadVault(keys, store)  # no cached keys
    assert fresh.open(shared.ciphertext) == b"about alice and bob"  # bob's key still opens it
    store.erase_subject(keys.subject_ref("bob"), 2.0)
    with pytest.raises(ShreddedPayload):
        PayloadVault(keys, store).open(shared.ciphertext)


def test_after_an_erasure_the_subject_gets_a_new_key() -> None:
    store = open_store("memory://")
    keys = PayloadKeys.generate()
    v = PayloadVault(keys, store)
    before = v.seal(b"old", ["alice"])
    store.erase_subject(keys.subject_ref("alice"), 1.0)
    v.forget("alice")
    after = v.seal(b"new", ["alice"])
    assert after.key_id != before.key_id
    assert v.open(after.ciphertext) == b"new"


@pytest.mark.parametrize("position", [0, 4, 10, -1])
def test_a_changed_byte_does_not_open(position: int) -> None:
    v = vault()
    blob = bytearray(v.seal(b"secret document", ["alice"]).ciphertext)
    blob[position] ^= 0x01
    with pytest.raises(VerificationError):
        v.open(bytes(blob))


def test_the_payload_keys_of_another_deployment_do_not_open_it() -> None:
    store = open_store("memory://")
    payload = PayloadVault(PayloadKeys.generate(), store).seal(b"x", ["alice"])
    with pytest.raises(ConfigError):
        PayloadVault(PayloadKeys.generate(), store).open(payload.ciphertext)


def test_the_document_opens_every_commitment() -> None:
    salts = new_salts()
    values = {name: {"field": name} for name in SENSITIVE_FIELDS}
    fields = open_document(payload_document(values, salts))
    for name in SENSITIVE_FIELDS:
        value, salt = fields[name]
        assert commit(value, salt) == commit(values[name], salts[name])


def test_payload_ref_is_the_sha256_of_the_whole_blob() -> None:
    assert payload_ref(b"") == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


@given(st.text(min_size=1, max_size=40), st.floats(min_value=0.0, max_value=1.0))
def test_sampling_is_a_function_of_key_id_and_rate(decision_id: str, rate: float) -> None:
    key = b"k" * 32
    assert sampled(key, decision_id, rate) == sampled(key, decision_id, rate)
    assert sampled(key, decision_id, 1.0) and not sampled(key, decision_id, 0.0)
    # monotone in the rate: sampled at a rate means sampled at every higher rate
    if sampled(key, decision_id, rate):
        assert sampled(key, decision_id, min(1.0, rate + 0.25))


def test_sampling_keeps_about_the_rate() -> None:
    key = bytes(range(32))
    ids = [f"dec_{i:08x}" for i in range(20_000)]
    for rate in (0.1, 0.5):
        kept = sum(sampled(key, i, rate) for i in ids) / len(ids)
        assert abs(kept - rate) < 0.02  # a binomial with n=20,000 stays far inside this


def test_the_key_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "payload.key"
    keys = PayloadKeys.create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert PayloadKeys.load(path) == keys == PayloadKeys.open(path)
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        PayloadKeys.create(path)


@pytest.mark.parametrize("content", ["", "{}", '{"v": 2}', '{"v": 1, "master": "AA==", "index": "AA==", "sampling": "AA=="}',
                                     "not json"])
def test_a_broken_key_file_is_a_config_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "payload.key"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        PayloadKeys.load(path)
    assert info.value.path == "audit.payload_key_file"
