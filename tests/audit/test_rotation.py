"""Signing key rotation: a config leaf announces the new key, a checkpoint signed by both hands over,
and the verifier enforces which key may sign which range of tree sizes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from lictor.audit.log import AuditLog
from lictor.audit.note import Verifier
from lictor.audit.signer import FileSigner
from lictor.audit.verify import LogVerificationError, verify_log
from lictor.runtime import open_audit_reader, rotate_signing_key
from lictor.store import open_store

ORIGIN = "lictor.example/rotation"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def config(vkey: str) -> dict[str, object]:
    return {"v": 1, "type": "config", "ts": now(), "vkey": vkey}


def note(n: int) -> dict[str, object]:
    return {"v": 1, "type": "review", "ts": now(), "n": n}


def write(url: str, signer: FileSigner, leaves: list[dict[str, object]]) -> str | None:
    store = open_store(url)
    log = AuditLog(store=store, signer=signer)
    try:
        for leaf in leaves:
            log.append(leaf)
        return log.checkpoint()
    finally:
        log.close()
        store.close()


def verify(url: str, pinned: Verifier, extra: tuple[str, ...] = ()) -> tuple[int, int]:
    reader = open_audit_reader(url)
    try:
        report = reader.verify(pinned, origin=ORIGIN, extra_checkpoints=extra)
    finally:
        reader.close()
    return report.keys, report.skipped_checkpoints


@pytest.fixture
def rotated(tmp_path: Path) -> tuple[str, Path, Verifier, Verifier]:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    key = tmp_path / "audit.key"
    first = FileSigner.create(key, ORIGIN)
    write(url, first, [config(first.vkey), note(1), note(2)])
    old, new, handover = rotate_signing_key(url, key_file=key)
    assert old == first.vkey and new != old
    assert handover.count("\u2014 ") == 2  # the handover checkpoint carries both signatures
    write(url, FileSigner(key), [note(3)])
    return url, tmp_path, Verifier.from_vkey(old), Verifier.from_vkey(new)


def test_an_auditor_who_pinned_the_first_key_follows_the_rotation(rotated: tuple[str, Path, Verifier, Verifier]) -> None:
    url, _, old, _ = rotated
    assert verify(url, old) == (2, 0)


def test_pinning_the_new_key_skips_what_only_the_old_key_signed(rotated: tuple[str, Path, Verifier, Verifier]) -> None:
    url, _, _, new = rotated
    keys, skipped = verify(url, new)
    assert keys == 2 and skipped == 1


def test_the_retired_key_signs_nothing_after_its_handover(rotated: tuple[str, Path, Verifier, Verifier]) -> None:
    url, tmp, old, _ = rotated
    retired = FileSigner(next(p for p in tmp.glob("audit.key.retired-*") if not p.name.endswith(".state")))
    store = open_store(url)
    state = store.state()
    store.close()
    late = retired.sign(state.size, state.root)  # a stolen old key, used after the rotation
    with pytest.raises(LogVerificationError) as info:
        verify(url, old, (late,))
    assert (info.value.outcome, info.value.step) == ("tampered", "1 signature")


def test_a_key_announced_without_a_handover_is_not_trusted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    first = FileSigner.create(tmp_path / "first.key", ORIGIN)
    intruder = FileSigner.create(tmp_path / "intruder.key", ORIGIN)
    write(url, first, [config(first.vkey), note(1)])
    # someone with write access to the database announces their own key and signs with it alone
    write(url, intruder, [config(intruder.vkey), note(2)])
    with pytest.raises(LogVerificationError) as info:
        verify(url, first.verifier)
    assert (info.value.outcome, info.value.step) == ("tampered", "1 signature")


def test_a_pinned_key_the_log_never_announced_fails(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    first = FileSigner.create(tmp_path / "first.key", ORIGIN)
    stranger = FileSigner.create(tmp_path / "stranger.key", ORIGIN)
    write(url, first, [config(first.vkey), note(1)])
    with pytest.raises(LogVerificationError) as info:
        verify(url, stranger.verifier)
    assert "pinned key is none of the signing keys" in info.value.message


def test_an_interrupted_rotation_is_refused_until_cleaned_up(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    key = tmp_path / "audit.key"
    first = FileSigner.create(key, ORIGIN)
    write(url, first, [config(first.vkey)])
    (tmp_path / "audit.key.next").write_text("left over\n")
    from lictor.errors import ConfigError

    with pytest.raises(ConfigError, match="interrupted rotation"):
        rotate_signing_key(url, key_file=key)
    assert FileSigner(key).vkey == first.vkey


def test_verify_log_accepts_a_handover_note_with_both_signatures(rotated: tuple[str, Path, Verifier, Verifier]) -> None:
    url, _, old, _ = rotated
    reader = open_audit_reader(url)
    try:
        leaves, notes = reader.leaves(), reader.checkpoint_notes()
    finally:
        reader.close()
    report = verify_log(leaves, notes, [old], origin=ORIGIN)
    assert report.checkpoints == len(notes) and report.signed_size == len(leaves)
