"""Offline log verification: a valid log passes; each kind of tampering is caught and classified."""

from __future__ import annotations

import pytest

from lictor.audit.checkpoint import Checkpoint, sign_checkpoint
from lictor.audit.leaf import encode_leaf
from lictor.audit.merkle import leaf_hash, root_from_leaf_hashes
from lictor.audit.note import Signer, Verifier, generate_key
from lictor.audit.verify import EXIT_CODES, LogVerificationError, verify_log

ORIGIN = "audit.example/test"


def make_leaves(n: int) -> list[bytes]:
    return [encode_leaf({"v": 1, "type": "seal", "ts": f"2026-11-28T15:{i // 60:02d}:{i % 60:02d}.000000Z",
                         "counts": {"ALLOW": i}}) for i in range(n)]


def checkpoint(leaves: list[bytes], size: int, signer: Signer) -> str:
    root = root_from_leaf_hashes([leaf_hash(x) for x in leaves[:size]])
    return sign_checkpoint(Checkpoint(ORIGIN, size, root), signer)


@pytest.fixture(scope="module")
def keys() -> tuple[Signer, Verifier]:
    skey, vkey = generate_key(ORIGIN)
    return Signer.from_skey(skey), Verifier.from_vkey(vkey)


def fail(leaves: list[bytes], notes: list[str], verifier: Verifier) -> LogVerificationError:
    with pytest.raises(LogVerificationError) as info:
        verify_log(leaves, notes, [verifier], origin=ORIGIN)
    return info.value


def test_valid_log_verifies(keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = keys
    leaves = make_leaves(40)
    notes = [checkpoint(leaves, size, signer) for size in (0, 1, 7, 32, 40)]
    report = verify_log(leaves, notes, [verifier], origin=ORIGIN)
    assert (report.leaves, report.checkpoints, report.signed_size) == (40, 5, 40)
    assert report.leaf_types == {"seal": 40}
    assert report.summary().startswith("valid: 40 leaves")


def test_unsigned_tail_is_reported_not_hidden(keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = keys
    leaves = make_leaves(10)
    report = verify_log(leaves, [checkpoint(leaves, 6, signer)], [verifier], origin=ORIGIN)
    assert "the last 4 leaves are not yet covered" in report.summary()


def test_every_single_bit_flip_in_the_leaves_is_tampering(keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = keys
    leaves = make_leaves(9)
    notes = [checkpoint(leaves, 4, signer), checkpoint(leaves, 9, signer)]
    for i, data in enumerate(leaves):
        for bit in range(0, len(data) * 8, 7):
            bad = bytearray(data)
            bad[bit // 8] ^= 1 << (bit % 8)
            err = fail([*leaves[:i], bytes(bad), *leaves[i + 1:]], notes, verifier)
            assert err.outcome == "tampered" and err.exit_code == 1
            assert err.index is not None and err.index <= i


@pytest.mark.parametrize("edit", ["delete", "insert", "swap", "truncate"])
def test_structural_edits_are_tampering(keys: tuple[Signer, Verifier], edit: str) -> None:
    signer, verifier = keys
    leaves = make_leaves(12)
    notes = [checkpoint(leaves, 5, signer), checkpoint(leaves, 12, signer)]
    changed = {
        "delete": leaves[:3] + leaves[4:],
        "insert": leaves[:3] + make_leaves(1) + leaves[3:],
        "swap": [leaves[0], leaves[2], leaves[1], *leaves[3:]],
        "truncate": leaves[:10],
    }[edit]
    err = fail(changed, notes, verifier)
    assert err.outcome == "tampered"
    if edit == "truncate":
        assert err.index == 10 and "missing" in err.message


def test_auditors_saved_checkpoint_catches_a_rewritten_history(keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = keys
    leaves = make_leaves(8)
    saved = checkpoint(leaves, 8, signer)  # the auditor kept this one
    rewritten = make_leaves(5)  # the operator rebuilt a shorter log and re-signed it
    err = fail(rewritten, [checkpoint(rewritten, 5, signer), saved], verifier)
    assert err.outcome == "tampered" and "truncation" in err.message


def test_equivocation(keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = keys
    leaves = make_leaves(6)
    other = [*leaves[:5], encode_leaf({"v": 1, "type": "seal", "ts": "2026-11-28T16:00:00.000000Z"})]
    err = fail(leaves, [checkpoint(leaves, 6, signer), checkpoint(other, 6, signer)], verifier)
    assert err.step == "2 equivocation"


def test_wrong_key_and_wrong_origin(keys: tuple[Signer, Verifier]) -> None:
    _signer, verifier = keys
    leaves = make_leaves(3)
    other_signer = Signer.from_skey(generate_key(ORIGIN)[0])
    assert fail(leaves, [checkpoint(leaves, 3, other_signer)], verifier).step == "1 signature"
    foreign = sign_checkpoint(Checkpoint("audit.example/other", 3, root_from_leaf_hashes(
        [leaf_hash(x) for x in leaves])), Signer.from_skey(generate_key("audit.example/other")[0]))
    assert fail(leaves, [foreign], verifier).outcome == "tampered"


def test_no_checkpoint_is_incomplete(keys: tuple[Signer, Verifier]) -> None:
    _, verifier = keys
    err = fail(make_leaves(3), [], verifier)
    assert err.outcome == "incomplete" and err.exit_code == EXIT_CODES["incomplete"]


def test_unknown_leaf_type_fails_closed(keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = keys
    leaves = make_leaves(3)
    leaves[1] = b'{"type":"gossip","v":1}'
    err = fail(leaves, [checkpoint(leaves, 3, signer)], verifier)
    assert err.step == "3 leaf" and err.index == 1


def test_time_running_backwards_is_a_policy_violation(keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = keys
    leaves = make_leaves(3)
    leaves.append(encode_leaf({"v": 1, "type": "seal", "ts": "2026-11-28T14:00:00.000000Z"}))
    err = fail(leaves, [checkpoint(leaves, 4, signer)], verifier)
    assert err.outcome == "policy" and err.exit_code == 3 and err.index == 3


def test_a_time_without_a_zone_running_back_is_a_policy_violation_not_a_crash(keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = keys
    leaves = make_leaves(3)
    leaves.append(encode_leaf({"v": 1, "type": "seal", "ts": "2026-11-28T14:00:00"}))
    err = fail(leaves, [checkpoint(leaves, 4, signer)], verifier)
    assert err.outcome == "policy" and err.index == 3


def sealed_log(signer: Signer, counts: dict[str, object] | None = None) -> tuple[list[bytes], list[str]]:
    """Two decisions (ALLOW, BLOCK), a config leaf, then a seal counting them, and a checkpoint."""
    leaves = [
        encode_leaf({"v": 1, "type": "config", "ts": "2026-11-28T15:00:00.000000Z"}),
        encode_leaf({"v": 1, "type": "decision", "ts": "2026-11-28T15:00:01.000000Z", "verdict": "ALLOW"}),
        encode_leaf({"v": 1, "type": "decision", "ts": "2026-11-28T15:00:02.000000Z", "verdict": "BLOCK"}),
    ]
    real = {"types": {"config": 1, "decision": 2}, "verdicts": {"ALLOW": 1, "BLOCK": 1}}
    leaves.append(encode_leaf({"v": 1, "type": "seal", "ts": "2026-11-28T15:20:00.000000Z", "size_before": 3,
                               "counts": counts if counts is not None else real}))
    return leaves, [checkpoint(leaves, len(leaves), signer)]


def test_seal_counts_must_match_the_leaves_they_cover(keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = keys
    leaves, notes = sealed_log(signer)
    verify_log(leaves, notes, [verifier], origin=ORIGIN)
    leaves, notes = sealed_log(signer, {"types": {"config": 1, "decision": 2}, "verdicts": {"ALLOW": 2}})
    err = fail(leaves, notes, verifier)
    assert err.outcome == "policy" and err.step == "5 seal" and err.index == 3


def test_a_silence_longer_than_the_seal_interval_is_a_policy_violation(keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = keys
    leaves, notes = sealed_log(signer)  # the seal comes 20 minutes after the first leaf
    verify_log(leaves, notes, [verifier], origin=ORIGIN, max_seal_interval=1800)
    with pytest.raises(LogVerificationError) as info:
        verify_log(leaves, notes, [verifier], origin=ORIGIN, max_seal_interval=900)
    assert info.value.outcome == "policy" and "no seal between" in info.value.message


def test_real_writer_seals_verify(tmp_path: object) -> None:
    """Seals written by AuditLog (counts, size_before) pass the verifier's count check."""
    from lictor.audit.log import AuditLog
    from lictor.store import open_store

    skey, vkey = generate_key(ORIGIN)
    store = open_store("memory://")

    class KeySigner:
        origin = ORIGIN
        vkey_text = vkey

        def __init__(self) -> None:
            self.signer = Signer.from_skey(skey)

        def sign(self, size: int, root: bytes) -> str:
            return sign_checkpoint(Checkpoint(ORIGIN, size, root), self.signer)

    log = AuditLog(store=store, signer=KeySigner())  # type: ignore[arg-type]
    from datetime import UTC, datetime

    for i in range(5):
        ts = datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z"  # the writer's seals use the clock
        log.append({"v": 1, "type": "decision", "ts": ts, "verdict": "BLOCK" if i % 2 else "ALLOW"})
        if i == 2:
            log.checkpoint()
    log.checkpoint()
    log.close()
    report = verify_log(store.leaves(0, store.state().size), [c.note for c in store.checkpoints()],
                        [Verifier.from_vkey(vkey)], origin=ORIGIN)
    assert report.leaf_types == {"decision": 5, "seal": 2}


def test_the_first_fault_in_index_order_is_reported(keys: tuple[Signer, Verifier]) -> None:
    """Leaves are hashed in batches between checkpoint sizes; a root is still checked before any leaf
    beyond it is decoded, so the fault reported is the first one a leaf-by-leaf walk meets."""
    signer, verifier = keys
    leaves = make_leaves(12)
    notes = [checkpoint(leaves, 4, signer), checkpoint(leaves, 9, signer)]
    changed = encode_leaf({"v": 1, "type": "seal", "ts": "2026-11-28T15:00:02.000000Z", "counts": {}})
    not_json = b"{"
    err = fail([*leaves[:2], changed, *leaves[3:6], not_json, *leaves[7:]], notes, verifier)
    assert (err.step, err.index) == ("4 root", 0) and "leaves 0..3" in err.message
    err = fail([*leaves[:2], not_json, *leaves[3:6], changed, *leaves[7:]], notes, verifier)
    assert (err.step, err.index) == ("3 leaf", 2)
    err = fail([*leaves[:6], changed, *leaves[7:]], notes, verifier)
    assert (err.step, err.index) == ("4 root", 4) and "leaves 4..8" in err.message
    err = fail([*leaves[:10], not_json, leaves[11]], notes, verifier)  # past the last checkpoint
    assert (err.step, err.index) == ("3 leaf", 10)
