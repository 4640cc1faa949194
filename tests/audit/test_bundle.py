"""Auditor bundles: a written bundle reads back byte for byte, and every kind of tampering is caught."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lictor.audit.bundle import BUNDLE_FORMAT, CHUNK_SIZE, read_bundle, write_bundle
from lictor.audit.canonical import canonical_json
from lictor.audit.checkpoint import Checkpoint, sign_checkpoint
from lictor.audit.leaf import encode_leaf
from lictor.audit.merkle import leaf_hash, root_from_leaf_hashes
from lictor.audit.note import Signer, Verifier, generate_key
from lictor.audit.verify import LogVerificationError, verify_log
from lictor.errors import ConfigError

ORIGIN = "audit.example/bundle"


@pytest.fixture(scope="module")
def keys() -> tuple[Signer, Verifier]:
    skey, vkey = generate_key(ORIGIN)
    return Signer.from_skey(skey), Verifier.from_vkey(vkey)


def make_leaves(n: int) -> list[bytes]:
    return [encode_leaf({"v": 1, "type": "seal", "ts": f"2026-11-28T{i // 3600:02d}:{i // 60 % 60:02d}:"
                         f"{i % 60:02d}.000000Z", "counts": {"ALLOW": i}}) for i in range(n)]


def make_notes(leaves: list[bytes], signer: Signer) -> list[str]:
    sizes = sorted({0, len(leaves) // 2, len(leaves)})
    return [sign_checkpoint(Checkpoint(ORIGIN, size, root_from_leaf_hashes([leaf_hash(x) for x in leaves[:size]])),
                            signer) for size in sizes]


def make_bundle(path: Path, n: int, keys: tuple[Signer, Verifier]) -> tuple[list[bytes], list[str]]:
    signer, verifier = keys
    leaves = make_leaves(n)
    notes = make_notes(leaves, signer)
    write_bundle(path, leaves, notes, verifier.vkey, created_at=datetime(2026, 11, 28, 12, tzinfo=UTC))
    return leaves, notes


def rehash(path: Path) -> None:
    """Rewrite the manifest to match the files, as an attacker who can write the whole bundle would."""
    manifest = json.loads((path / "manifest.json").read_bytes())
    manifest["files"] = {p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                         for p in sorted(path.rglob("*")) if p.is_file() and p.name != "manifest.json"}
    (path / "manifest.json").write_bytes(canonical_json(manifest))


def tampered(path: Path, *, outcome: str = "tampered") -> LogVerificationError:
    with pytest.raises(LogVerificationError) as info:
        read_bundle(path)
    assert info.value.outcome == outcome and info.value.step == "0 bundle"
    return info.value


@pytest.mark.parametrize("n", [0, 1, 255, 256, 257, 600])
def test_round_trip_is_byte_for_byte(tmp_path: Path, keys: tuple[Signer, Verifier], n: int) -> None:
    out = tmp_path / "bundle"
    leaves, notes = make_bundle(out, n, keys)
    chunks = sorted(p.name for p in (out / "entries").glob("*")) if n else []
    assert chunks == [f"{k:010d}.bin" for k in range(-(-n // CHUNK_SIZE))]
    for k, name in enumerate(chunks):
        assert (out / "entries" / name).read_bytes() == b"".join(
            len(x).to_bytes(2, "big") + x for x in leaves[k * CHUNK_SIZE:(k + 1) * CHUNK_SIZE])
    bundle = read_bundle(out)
    assert list(bundle.leaves) == leaves
    assert list(bundle.checkpoint_notes) == notes
    assert (bundle.origin, bundle.tree_size, bundle.created_at) == (ORIGIN, n, "2026-11-28T12:00:00Z")
    assert bundle.vkey == keys[1].vkey and (out / "key.vkey").read_text() == keys[1].vkey + "\n"
    manifest = json.loads((out / "manifest.json").read_bytes())
    assert manifest["format"] == BUNDLE_FORMAT
    assert canonical_json(manifest) == (out / "manifest.json").read_bytes()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == sorted(
        f"{s:012d}.note" for s in {0, n // 2, n})
    report = verify_log(bundle.leaves, bundle.checkpoint_notes, [keys[1]], origin=ORIGIN)
    assert report.leaves == report.signed_size == n


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-3])


def _append(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"junk")


def _edit_manifest_hash(out: Path) -> None:
    manifest = json.loads((out / "manifest.json").read_bytes())
    manifest["files"]["entries/0000000001.bin"] = "0" * 64
    (out / "manifest.json").write_bytes(canonical_json(manifest))


TAMPERS: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "flip a byte in a chunk": (lambda out: _flip(out / "entries/0000000001.bin"), "tampered",
                               "entries/0000000001.bin does not match"),
    "delete a chunk": (lambda out: (out / "entries/0000000002.bin").unlink(), "tampered",
                       "entries/0000000002.bin is listed in manifest.json but missing"),
    "truncate a chunk": (lambda out: _truncate(out / "entries/0000000000.bin"), "tampered",
                         "entries/0000000000.bin does not match"),
    "append junk": (lambda out: _append(out / "entries/0000000002.bin"), "tampered",
                    "entries/0000000002.bin does not match"),
    "edit a checkpoint": (lambda out: _flip(out / "checkpoints/000000000300.note"), "tampered",
                          "checkpoints/000000000300.note does not match"),
    "add a file": (lambda out: (out / "entries/0000000003.bin").write_bytes(b""), "tampered",
                   "entries/0000000003.bin is not listed"),
    "delete the manifest": (lambda out: (out / "manifest.json").unlink(), "incomplete", "manifest.json is missing"),
    "edit the manifest hash": (_edit_manifest_hash, "tampered", "entries/0000000001.bin does not match"),
    "reformat the manifest": (lambda out: _append(out / "manifest.json"), "tampered", "not canonical JSON"),
    "replace the key": (lambda out: (out / "key.vkey").write_text(generate_key(ORIGIN)[1] + "\n"), "tampered",
                        "key.vkey does not match"),
}


@pytest.mark.parametrize("name", TAMPERS)
def test_tampering_is_caught_before_anything_is_trusted(tmp_path: Path, keys: tuple[Signer, Verifier],
                                                        name: str) -> None:
    out = tmp_path / "bundle"
    make_bundle(out, 600, keys)
    edit, outcome, message = TAMPERS[name]
    edit(out)
    err = tampered(out, outcome=outcome)
    assert message in err.message
    assert err.exit_code == {"tampered": 1, "incomplete": 2}[outcome]


@pytest.mark.parametrize(("edit", "message"), [
    (lambda data: data[:-1], "runs 1 bytes past the end"),
    (lambda data: data[:-(len(make_leaves(600)[599]) + 1)], "truncated entry length"),
    (lambda data: data[:-(len(make_leaves(600)[599]) + 2)], "87 entries, expected 88"),
    (lambda data: data + b"\x00", "1 trailing bytes after its 88 entries"),
    (lambda data: data + b"\x00\x00", "2 trailing bytes after its 88 entries"),
])
def test_strict_parsing_even_with_a_rewritten_manifest(tmp_path: Path, keys: tuple[Signer, Verifier],
                                                       edit: Callable[[bytes], bytes], message: str) -> None:
    out = tmp_path / "bundle"
    make_bundle(out, 600, keys)
    last = out / "entries/0000000002.bin"
    last.write_bytes(edit(last.read_bytes()))
    rehash(out)
    assert message in tampered(out).message


def test_a_consistently_rewritten_bundle_fails_against_the_pinned_key(tmp_path: Path,
                                                                      keys: tuple[Signer, Verifier]) -> None:
    out = tmp_path / "bundle"
    leaves, _ = make_bundle(out, 300, keys)
    chunk = out / "entries/0000000000.bin"
    chunk.write_bytes(chunk.read_bytes().replace(b'"ALLOW":7}', b'"ALLOW":8}'))
    rehash(out)
    bundle = read_bundle(out)
    assert list(bundle.leaves) != leaves
    with pytest.raises(LogVerificationError) as info:
        verify_log(bundle.leaves, bundle.checkpoint_notes, [keys[1]], origin=ORIGIN)
    assert info.value.outcome == "tampered" and info.value.step == "4 root"


def test_a_missing_chunk_with_a_rewritten_manifest_is_still_tampering(tmp_path: Path,
                                                                       keys: tuple[Signer, Verifier]) -> None:
    out = tmp_path / "bundle"
    make_bundle(out, 600, keys)
    (out / "entries/0000000001.bin").unlink()
    rehash(out)
    assert "entries/0000000001.bin is missing" in tampered(out).message


def test_a_checkpoint_under_the_wrong_name_is_tampering(tmp_path: Path, keys: tuple[Signer, Verifier]) -> None:
    out = tmp_path / "bundle"
    make_bundle(out, 10, keys)
    (out / "checkpoints/000000000005.note").rename(out / "checkpoints/000000000006.note")
    rehash(out)
    assert "holds a checkpoint of size 5" in tampered(out).message


def test_refuses_a_non_empty_directory_and_leaves_nothing_behind(tmp_path: Path,
                                                                 keys: tuple[Signer, Verifier]) -> None:
    out = tmp_path / "bundle"
    out.mkdir()
    make_bundle(out, 3, keys)  # an existing empty directory is fine
    with pytest.raises(ConfigError, match="not an empty directory"):
        make_bundle(out, 3, keys)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError):
        make_bundle(tmp_path / "file", 3, keys)
    with pytest.raises(ValueError, match="2-byte length"):
        write_bundle(tmp_path / "big", [b"x" * 70000], [], keys[1].vkey)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "file"]
