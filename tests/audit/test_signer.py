"""The file signer: key file handling, the no-rollback and no-equivocation rules, durable state."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
from pathlib import Path

import pytest

from lictor.audit.checkpoint import Checkpoint, open_checkpoint
from lictor.audit.note import Signer, Verifier
from lictor.audit.signer import STATE_SUFFIX, CheckpointSigner, FileSigner
from lictor.errors import ConfigError, VerificationError

ORIGIN = "lictor.example/audit/test"


def root(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "checkpoint.key"


@pytest.fixture
def signer(key_path: Path) -> FileSigner:
    return FileSigner.create(key_path, ORIGIN)


# --- creating and loading ------------------------------------------------------------------------

def test_create_writes_a_private_key_file_and_an_empty_state(signer: FileSigner, key_path: Path) -> None:
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    text = key_path.read_text()
    assert text.startswith(f"PRIVATE+KEY+{ORIGIN}+") and text.endswith("\n")
    assert Signer.from_skey(text.strip()).vkey == signer.vkey
    assert signer.state_path == key_path.with_name(key_path.name + STATE_SUFFIX)
    assert signer.last_signed() is None
    assert signer.origin == ORIGIN
    assert signer.verifier == Verifier.from_vkey(signer.vkey)
    assert isinstance(signer, CheckpointSigner)


def test_loading_gives_the_same_key(signer: FileSigner, key_path: Path) -> None:
    again = FileSigner(key_path)
    assert again.vkey == signer.vkey and again.origin == ORIGIN


def test_create_never_overwrites_a_key(signer: FileSigner, key_path: Path) -> None:
    before = key_path.read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        FileSigner.create(key_path, ORIGIN)
    assert key_path.read_bytes() == before


def test_create_refuses_to_reuse_an_old_state_file(signer: FileSigner, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="state file"):
        FileSigner.create(tmp_path / "other.key", ORIGIN, state_path=signer.state_path)
    assert not (tmp_path / "other.key").exists()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o602])
def test_a_key_file_others_can_access_is_refused(signer: FileSigner, key_path: Path, mode: int) -> None:
    os.chmod(key_path, mode)
    with pytest.raises(ConfigError, match="chmod 600") as info:
        FileSigner(key_path)
    assert info.value.path == str(key_path)


def test_a_read_only_owner_key_file_is_accepted(signer: FileSigner, key_path: Path) -> None:
    os.chmod(key_path, 0o400)
    assert FileSigner(key_path).vkey == signer.vkey


def test_missing_or_malformed_key_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        FileSigner(tmp_path / "absent.key")
    bad = tmp_path / "bad.key"
    vkey = b"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    for content in (b"not a key\n", b"\xff\xfe", vkey, b"x" * 70000):
        bad.write_bytes(content)
        os.chmod(bad, 0o600)
        with pytest.raises(ConfigError):
            FileSigner(bad, unsafe_start_without_state=True)
    with pytest.raises(ConfigError, match="regular file"):
        FileSigner(tmp_path)


def test_the_signed_note_opens_with_the_vkey(signer: FileSigner) -> None:
    note = signer.sign(10, root("ten"))
    verifier = Verifier.from_vkey(signer.vkey)
    assert open_checkpoint(note, [verifier], ORIGIN) == Checkpoint(ORIGIN, 10, root("ten"))


def test_bad_arguments_are_programmer_errors(signer: FileSigner) -> None:
    for size, value in ((-1, root("x")), (1, b"short"), (True, root("x"))):
        with pytest.raises(ValueError):
            signer.sign(size, value)
    assert signer.last_signed() is None


# --- the rules -----------------------------------------------------------------------------------

def test_growing_trees_are_signed_and_recorded(signer: FileSigner) -> None:
    signer.sign(0, hashlib.sha256(b"").digest())
    signer.sign(1, root("one"))
    signer.sign(5, root("five"))
    assert signer.last_signed() == (5, root("five"))


def test_a_smaller_tree_is_refused(signer: FileSigner) -> None:
    signer.sign(5, root("five"))
    with pytest.raises(VerificationError, match="rollback") as info:
        signer.sign(4, root("four"))
    assert info.value.step == "signer"
    assert signer.last_signed() == (5, root("five"))


def test_the_same_size_with_another_root_is_refused(signer: FileSigner) -> None:
    signer.sign(5, root("five"))
    with pytest.raises(VerificationError, match="equivocation") as info:
        signer.sign(5, root("fork"))
    assert info.value.step == "signer"
    assert signer.last_signed() == (5, root("five"))


def test_signing_the_same_tree_again_is_idempotent(signer: FileSigner) -> None:
    first = signer.sign(5, root("five"))
    state = signer.state_path.read_bytes()
    assert signer.sign(5, root("five")) == first
    assert signer.state_path.read_bytes() == state


def test_the_state_survives_a_new_instance(signer: FileSigner, key_path: Path) -> None:
    signer.sign(7, root("seven"))
    again = FileSigner(key_path)
    assert again.last_signed() == (7, root("seven"))
    with pytest.raises(VerificationError, match="rollback"):
        again.sign(6, root("six"))
    with pytest.raises(VerificationError, match="equivocation"):
        again.sign(7, root("other"))
    again.sign(8, root("eight"))
    assert signer.last_signed() == (8, root("eight"))  # the first instance rereads the state


def test_the_state_file_is_replaced_atomically_without_leftovers(signer: FileSigner, tmp_path: Path) -> None:
    for size in range(1, 6):
        signer.sign(size, root(str(size)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.key", "checkpoint.key" + STATE_SUFFIX]
    data = json.loads(signer.state_path.read_text())
    assert data == {"version": 1, "vkey": signer.vkey, "size": 5, "root": root("5").hex()}


# --- failing closed ------------------------------------------------------------------------------

def corrupt_states(signer: FileSigner) -> list[bytes]:
    good = json.loads(signer.state_path.read_text())
    variants: list[object] = [
        {**good, "size": -1}, {**good, "size": "5"}, {**good, "size": True}, {**good, "size": 2**64},
        {**good, "root": "zz" * 32}, {**good, "root": "ab"}, {**good, "root": good["root"].upper()},
        {**good, "root": None}, {**good, "version": 2}, {**good, "vkey": "other+00000000+AA=="},
        {**good, "extra": 1}, {k: v for k, v in good.items() if k != "root"}, [good], None,
    ]
    raw = [json.dumps(v).encode() for v in variants]
    return [*raw, b"", b"garbage", signer.state_path.read_bytes()[:-10], b"\xff\xfe", b" " * 70000]


def test_a_corrupted_state_file_stops_the_signer_and_is_left_alone(signer: FileSigner, key_path: Path) -> None:
    signer.sign(5, root("five"))
    for content in corrupt_states(signer):
        signer.state_path.write_bytes(content)
        with pytest.raises(VerificationError, match="corrupted") as info:
            signer.sign(6, root("six"))
        assert info.value.step == "signer"
        with pytest.raises(VerificationError, match="corrupted"):
            FileSigner(key_path)
        assert signer.state_path.read_bytes() == content  # never silently reset


def test_a_missing_state_file_stops_the_signer(signer: FileSigner, key_path: Path) -> None:
    signer.sign(5, root("five"))
    signer.state_path.unlink()
    with pytest.raises(VerificationError, match="disappeared"):
        signer.sign(6, root("six"))
    with pytest.raises(VerificationError, match="missing"):
        FileSigner(key_path)
    assert not signer.state_path.exists()
    fresh = FileSigner(key_path, unsafe_start_without_state=True)
    assert fresh.last_signed() is None


def test_a_state_file_of_another_key_is_refused(signer: FileSigner, tmp_path: Path) -> None:
    signer.sign(5, root("five"))
    other = FileSigner.create(tmp_path / "other.key", ORIGIN)
    os.replace(signer.state_path, other.state_path)
    with pytest.raises(VerificationError, match="another key"):
        other.sign(6, root("six"))


# --- concurrency ---------------------------------------------------------------------------------

def test_concurrent_signers_never_sign_two_roots_for_one_size(signer: FileSigner, key_path: Path) -> None:
    instances = [signer, FileSigner(key_path)]
    signed: list[tuple[int, bytes]] = []
    guard = threading.Lock()
    start = threading.Barrier(6)

    def worker(number: int) -> None:
        start.wait()
        for size in range(1, 16):
            value = root(f"{size}-{number % 2}")
            try:
                instances[number % 2].sign(size, value)
            except VerificationError:
                continue
            with guard:
                signed.append((size, value))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    roots: dict[int, set[bytes]] = {}
    for size, value in signed:
        roots.setdefault(size, set()).add(value)
    assert all(len(values) == 1 for values in roots.values())
    assert signer.last_signed() is not None
