"""Auditor bundles: a self-contained directory holding a log's leaves, signed checkpoints and public key.

Layout (format ``lictor-audit-bundle/1``)::

    manifest.json                   canonical JSON: format, origin, vkey, tree_size, created_at and
                                    the SHA-256 of every other file
    key.vkey                        the log's public key (C2SP vkey) and a newline
    checkpoints/NNNNNNNNNNNN.note   every stored checkpoint note, named by its zero-padded tree size
    entries/NNNNNNNNNN.bin          the leaves in chunks of 256, each as a 2-byte big-endian length
                                    and the exact bytes (the C2SP tlog-tiles entry-bundle encoding);
                                    a leaf pruned by retention is an empty entry
    pruned.bin                      only after retention pruning: the 32-byte leaf hashes of the
                                    pruned prefix, in index order

``write_bundle`` writes to a temporary directory beside the target and renames it into place.
``read_bundle`` is strict: it checks the manifest's hashes before anything else and raises
``LogVerificationError`` (``tampered``, or ``incomplete`` without a manifest) naming the file at
fault. The bundle's own key is returned but never trusted here: the caller pins a key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lictor.audit.canonical import canonical_json
from lictor.audit.checkpoint import parse_checkpoint
from lictor.audit.note import Verifier
from lictor.audit.verify import LogVerificationError
from lictor.errors import ConfigError, VerificationError

__all__ = ["BUNDLE_FORMAT", "CHUNK_SIZE", "Bundle", "read_bundle", "write_bundle"]

BUNDLE_FORMAT = "lictor-audit-bundle/1"
#: Leaves per entries file.
CHUNK_SIZE = 256

_MANIFEST = "manifest.json"
_KEY = "key.vkey"
_CHECKPOINT_NAME = re.compile(r"checkpoints/([0-9]{12,})\.note")
_ENTRIES_NAME = re.compile(r"entries/([0-9]{10,})\.bin")
_MANIFEST_KEYS = {"format", "origin", "vkey", "tree_size", "created_at", "files"}
_STEP = "0 bundle"
_PRUNED = "pruned.bin"


@dataclass(frozen=True, slots=True)
class Bundle:
    """The contents of a bundle that passed its manifest and encoding checks (not yet verified)."""

    origin: str
    vkey: str
    tree_size: int
    created_at: str
    leaves: tuple[bytes, ...]
    checkpoint_notes: tuple[str, ...]
    pruned_hashes: tuple[bytes, ...] = ()


def _checkpoint_path(size: int) -> str:
    return f"checkpoints/{size:012d}.note"


def _entries_path(chunk: int) -> str:
    return f"entries/{chunk:010d}.bin"


def _note_size(note: str) -> int:
    """The tree size a checkpoint note states (its signatures are not checked here)."""
    body, sep, _ = note.partition("\n\n")
    if not sep:
        raise VerificationError("not a signed note: no blank line before the signatures", step="checkpoint")
    return parse_checkpoint(body + "\n").size


def _encode_chunk(leaves: Sequence[bytes]) -> bytes:
    out = bytearray()
    for leaf in leaves:
        if len(leaf) > 0xFFFF:
            raise ValueError(f"a leaf of {len(leaf)} bytes does not fit the 2-byte length of an entry bundle")
        out += len(leaf).to_bytes(2, "big") + leaf
    return bytes(out)


def _bundle_files(leaves: Sequence[bytes], notes: Sequence[str], vkey: str,
                  pruned_hashes: Sequence[bytes]) -> dict[str, bytes]:
    files = {_KEY: (vkey + "\n").encode("utf-8")}
    if pruned_hashes:
        files[_PRUNED] = b"".join(pruned_hashes)
    for note in notes:
        path = _checkpoint_path(_note_size(note))
        data = note.encode("utf-8")
        if files.setdefault(path, data) != data:
            raise ValueError(f"two different checkpoints of size {_note_size(note)} (equivocation): "
                             "run `lictor audit verify --db` instead")
    for start in range(0, len(leaves), CHUNK_SIZE):
        files[_entries_path(start // CHUNK_SIZE)] = _encode_chunk(leaves[start:start + CHUNK_SIZE])
    return files


def write_bundle(out_dir: str | Path, leaves: Sequence[bytes], checkpoint_notes: Sequence[str], vkey: str, *,
                 created_at: datetime | None = None, pruned_hashes: Sequence[bytes] = ()) -> Path:
    """Write a bundle of ``leaves`` (index order) and ``checkpoint_notes`` to ``out_dir``.

    ``out_dir`` must not exist or be an empty directory (ConfigError otherwise). Raises ValueError
    for a leaf too long to encode or two different checkpoints of one size.
    """
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} already exists and is not an empty directory; choose a new one")
    verifier = Verifier.from_vkey(vkey)
    files = _bundle_files(leaves, checkpoint_notes, verifier.vkey, pruned_hashes)
    stamp = (created_at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    manifest = {"format": BUNDLE_FORMAT, "origin": verifier.name, "vkey": verifier.vkey,
                "tree_size": len(leaves), "created_at": stamp,
                "files": {path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())}}
    files[_MANIFEST] = canonical_json(manifest)
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for path, data in files.items():
            target = temp / path
            target.parent.mkdir(exist_ok=True)
            with open(target, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        try:
            temp.rename(out)  # replaces an empty directory; fails if someone wrote into it meanwhile
        except OSError as exc:
            raise ConfigError(f"cannot move the bundle into place at {out}: {exc}") from None
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    with contextlib.suppress(OSError):  # make the rename durable where the platform allows it
        fd = os.open(out.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return out


def _tampered(message: str) -> LogVerificationError:
    return LogVerificationError(message, outcome="tampered", step=_STEP)


def _read_manifest(root: Path) -> dict[str, object]:
    path = root / _MANIFEST
    if not path.is_file():
        raise LogVerificationError(f"{_MANIFEST} is missing from {root}: not a complete bundle",
                                   outcome="incomplete", step=_STEP)
    raw = path.read_bytes()
    try:
        manifest = json.loads(raw)
        canonical = isinstance(manifest, dict) and canonical_json(manifest) == raw
    except (ValueError, TypeError):
        canonical = False
    if not canonical:
        raise _tampered(f"{_MANIFEST} is not canonical JSON")
    if set(manifest) != _MANIFEST_KEYS or manifest["format"] != BUNDLE_FORMAT:
        raise _tampered(f"{_MANIFEST} is not a {BUNDLE_FORMAT} manifest")
    return manifest  # type: ignore[no-any-return]


def _present_files(root: Path) -> set[str]:
    found = set()
    for path in root.rglob("*"):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise _tampered(f"{path.relative_to(root).as_posix()} is not a regular file")
        if path.is_file():
            found.add(path.relative_to(root).as_posix())
    found.discard(_MANIFEST)
    return found


def _check_hashes(root: Path, listed: object) -> dict[str, bytes]:
    """Every listed file present with its hash, and nothing else; returns the files' bytes."""
    if not isinstance(listed, dict) or not all(isinstance(v, str) for v in listed.values()):
        raise _tampered(f"{_MANIFEST}: files is not a map of path to SHA-256")
    present = _present_files(root)
    extra = sorted(present - set(listed))
    if extra:
        raise _tampered(f"{extra[0]} is not listed in {_MANIFEST} (an extra file)")
    contents = {}
    for path, digest in sorted(listed.items()):
        if not (path in (_KEY, _PRUNED) or _CHECKPOINT_NAME.fullmatch(path) or _ENTRIES_NAME.fullmatch(path)):
            raise _tampered(f"{_MANIFEST} lists {path!r}, which has no place in a bundle")
        if path not in present:
            raise _tampered(f"{path} is listed in {_MANIFEST} but missing")
        data = (root / path).read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise _tampered(f"{path} does not match its SHA-256 in {_MANIFEST}: it was changed")
        contents[path] = data
    return contents


def _decode_chunk(path: str, data: bytes, expected: int) -> list[bytes]:
    leaves: list[bytes] = []
    pos = 0
    while pos < len(data):
        if len(leaves) == expected:
            raise _tampered(f"{path}: {len(data) - pos} trailing bytes after its {expected} entries")
        if pos + 2 > len(data):
            raise _tampered(f"{path}: truncated entry length at byte {pos}")
        length = int.from_bytes(data[pos:pos + 2], "big")
        pos += 2
        if pos + length > len(data):
            raise _tampered(f"{path}: entry {len(leaves)} runs {pos + length - len(data)} bytes past the end")
        leaves.append(data[pos:pos + length])
        pos += length
    if len(leaves) != expected:
        raise _tampered(f"{path}: {len(leaves)} entries, expected {expected} (truncated)")
    return leaves


def _text(path: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _tampered(f"{path} is not UTF-8 text") from None


def read_bundle(bundle_dir: str | Path) -> Bundle:
    """Read and structurally check the bundle at ``bundle_dir``; raise LogVerificationError if it is
    incomplete (no manifest) or tampered (a file changed, missing, extra or malformed)."""
    root = Path(bundle_dir)
    manifest = _read_manifest(root)
    contents = _check_hashes(root, manifest["files"])
    origin, vkey, tree_size, created_at = (manifest[k] for k in ("origin", "vkey", "tree_size", "created_at"))
    if not (isinstance(origin, str) and isinstance(vkey, str) and isinstance(created_at, str)
            and isinstance(tree_size, int) and not isinstance(tree_size, bool) and tree_size >= 0):
        raise _tampered(f"{_MANIFEST}: origin, vkey, tree_size or created_at has the wrong type")
    if contents.get(_KEY) != (vkey + "\n").encode("utf-8"):
        raise _tampered(f"{_KEY} is missing or differs from the key named in {_MANIFEST}")
    try:
        key_name = Verifier.from_vkey(vkey).name
    except VerificationError as exc:
        raise _tampered(f"{_KEY}: {exc.message}") from None
    if key_name != origin:
        raise _tampered(f"{_MANIFEST}: origin {origin!r} is not the key's name {key_name!r}")
    chunks = -(-tree_size // CHUNK_SIZE)
    leaves: list[bytes] = []
    for chunk in range(chunks):
        path = _entries_path(chunk)
        if path not in contents:
            raise _tampered(f"{path} is missing: {tree_size} leaves need {chunks} entries files")
        expected = min(CHUNK_SIZE, tree_size - chunk * CHUNK_SIZE)
        leaves.extend(_decode_chunk(path, contents[path], expected))
    notes = []
    for path, data in contents.items():
        if (m := _ENTRIES_NAME.fullmatch(path)) is not None:
            chunk = int(m.group(1))
            if path != _entries_path(chunk) or chunk >= chunks:
                raise _tampered(f"{path} has no place in a bundle of {tree_size} leaves")
        elif _CHECKPOINT_NAME.fullmatch(path):
            note = _text(path, data)
            try:
                size = _note_size(note)
            except VerificationError as exc:
                raise _tampered(f"{path}: {exc.message}") from None
            if path != _checkpoint_path(size):
                raise _tampered(f"{path} holds a checkpoint of size {size}")
            notes.append(note)
    pruned = contents.get(_PRUNED, b"")
    if len(pruned) % 32 or len(pruned) // 32 > tree_size:
        raise _tampered(f"{_PRUNED} is not a list of at most {tree_size} 32-byte hashes")
    hashes = tuple(pruned[i:i + 32] for i in range(0, len(pruned), 32))
    return Bundle(origin=origin, vkey=vkey, tree_size=tree_size, created_at=created_at, leaves=tuple(leaves),
                  checkpoint_notes=tuple(notes), pruned_hashes=hashes)
