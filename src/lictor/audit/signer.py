"""The checkpoint signer: the only component that holds the log's private key.

``FileSigner`` keeps the key in a file (the signer key text, mode 0600) and, beside it, a state file
recording the last checkpoint it signed. Before signing it checks the request against that state:

* a tree smaller than the last one signed is refused (a rollback);
* the same size with a different root is refused (equivocation: two views of one log);
* the same size and root again is allowed (signing is idempotent).

tlog-checkpoint says a log MUST NOT sign a checkpoint inconsistent with one it signed before. The
signer has no proofs, so it enforces the part it can see (no rollback, no fork at the same size);
the log that calls it must only ask for trees that extend the last one.

The new state is written durably (temporary file, fsync, rename, fsync of the directory) before the
signed checkpoint is returned, so a crash can never leave a published signature the state does not
know about. A missing, unreadable or inconsistent state file stops the signer with an error: it never
starts again from nothing on its own.

Concurrency: calls are serialised by a lock shared by every FileSigner in the process that uses the
same state file, and the state file is read again under that lock before each signature. Across
processes this class does not lock: gateways sharing one key sign only under the audit store's seal
lock (``AuditStore.sealing()``, taken by ``AuditLog``), which serialises them.
The permission check on the key file assumes POSIX file modes.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

from lictor.audit.checkpoint import HASH_SIZE, MAX_TREE_SIZE, Checkpoint, sign_checkpoint
from lictor.audit.note import Signer, Verifier, generate_key
from lictor.errors import ConfigError, VerificationError

__all__ = ["STATE_SUFFIX", "CheckpointSigner", "FileSigner", "HandoverSigner"]

#: Suffix added to the key file's name to name its state file.
STATE_SUFFIX = ".state"

_STATE_VERSION = 1
_MAX_FILE_BYTES = 64 * 1024

_locks_guard = threading.Lock()
_locks: dict[str, threading.Lock] = {}


def _lock_for(path: Path) -> threading.Lock:
    """The one lock of this process for the state file at ``path``."""
    key = os.path.realpath(path)
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


@runtime_checkable
class CheckpointSigner(Protocol):
    """Signs checkpoints of one log; implementations keep the private key to themselves."""

    @property
    def origin(self) -> str:
        """The log's origin line (also the key name)."""
        ...

    @property
    def vkey(self) -> str:
        """The verifier key text auditors pin."""
        ...

    def sign(self, size: int, root: bytes) -> str:
        """The signed checkpoint note for the tree of ``size`` leaves with root hash ``root``."""
        ...


def _fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable (no-op where directories can't be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _read_key_file(path: Path) -> str:
    """The key file's text, refusing files that others than the owner may read or write."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError as exc:
        raise ConfigError("key file not found", path=str(path)) from exc
    except OSError as exc:
        raise ConfigError(f"cannot open key file: {exc.strerror}", path=str(path)) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError("key file is not a regular file", path=str(path))
        if info.st_mode & 0o077:
            raise ConfigError(f"key file is accessible by group or others (mode {stat.S_IMODE(info.st_mode):04o}); "
                              "it must be 0600 or stricter: chmod 600 it", path=str(path))
        raw = os.read(fd, _MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(raw) > _MAX_FILE_BYTES:
        raise ConfigError("key file is too large to be a signer key", path=str(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError("key file is not UTF-8 text", path=str(path)) from exc
    return text[:-1] if text.endswith("\n") else text


class FileSigner:
    """A CheckpointSigner whose key lives in a file and who remembers the last checkpoint it signed.

    Errors: problems with the key file raise ConfigError; a missing or corrupted state file and
    every refusal to sign raise VerificationError with ``step="signer"``.
    """

    __slots__ = ("_key_path", "_lock", "_signer", "_state_path")

    def __init__(self, key_path: str | os.PathLike[str], *, state_path: str | os.PathLike[str] | None = None,
                 unsafe_start_without_state: bool = False) -> None:
        """Load the key at ``key_path``; its state file is ``key_path`` + ``.state`` unless given.

        The state file must exist (``create`` writes it). ``unsafe_start_without_state`` lets a
        signer start without one, trusting that no checkpoint signed by this key was ever
        published: only for a key whose state was never written.
        """
        self._key_path = Path(key_path)
        self._state_path = Path(state_path) if state_path is not None else \
            self._key_path.with_name(self._key_path.name + STATE_SUFFIX)
        text = _read_key_file(self._key_path)
        try:
            self._signer = Signer.from_skey(text)
        except VerificationError as exc:
            raise ConfigError(f"key file does not hold a valid signer key: {exc.message}",
                              path=str(self._key_path)) from exc
        self._lock = _lock_for(self._state_path)
        with self._lock:
            if not self._state_path.exists():
                if not unsafe_start_without_state:
                    raise VerificationError(
                        f"state file {self._state_path} is missing; refusing to sign without knowing the "
                        "last checkpoint signed (restore it from a backup, or see unsafe_start_without_state)",
                        step="signer")
                self._write_state(None)
            else:
                self._read_state()

    @classmethod
    def create(cls, key_path: str | os.PathLike[str], origin: str, *,
               state_path: str | os.PathLike[str] | None = None) -> FileSigner:
        """Generate a new key named ``origin`` into a new key file (mode 0600) and an empty state."""
        path = Path(key_path)
        state = Path(state_path) if state_path is not None else path.with_name(path.name + STATE_SUFFIX)
        if state.exists():
            raise ConfigError(f"state file {state} already exists; refusing to start a new key over it",
                              path=str(path))
        skey, _ = generate_key(origin)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as exc:
            raise ConfigError("key file already exists; refusing to overwrite a key", path=str(path)) from exc
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (skey + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_directory(path.parent)
        return cls(path, state_path=state, unsafe_start_without_state=True)

    @property
    def origin(self) -> str:
        """The log's origin, which is the key's name."""
        return self._signer.name

    @property
    def vkey(self) -> str:
        """The verifier key text to give auditors."""
        return self._signer.vkey

    @property
    def verifier(self) -> Verifier:
        """The Verifier of this signer's key."""
        return self._signer.verifier()

    @property
    def key_path(self) -> Path:
        """Where the key file is."""
        return self._key_path

    @property
    def state_path(self) -> Path:
        """Where the state file is."""
        return self._state_path

    def last_signed(self) -> tuple[int, bytes] | None:
        """The (size, root) of the last checkpoint signed, or None before the first."""
        with self._lock:
            return self._read_state()

    def sign(self, size: int, root: bytes) -> str:
        """Sign the checkpoint (origin, size, root) unless it would roll back or fork the log."""
        checkpoint = Checkpoint(self.origin, size, root)
        with self._lock:
            last = self._read_state()
            if last is not None:
                last_size, last_root = last
                if size < last_size:
                    raise VerificationError(
                        f"refusing to sign tree size {size}: already signed size {last_size} (rollback)",
                        step="signer")
                if size == last_size and root != last_root:
                    raise VerificationError(
                        f"refusing to sign tree size {size} with root {root.hex()}: already signed that size "
                        f"with root {last_root.hex()} (equivocation)", step="signer")
            note = sign_checkpoint(checkpoint, self._signer)
            if last != (size, root):
                self._write_state((size, root))
            return note

    def _read_state(self) -> tuple[int, bytes] | None:
        """The state file's (size, root), or None when nothing was signed; VerificationError if bad."""
        path = self._state_path

        def corrupt(reason: str) -> VerificationError:
            return VerificationError(f"state file {path} is corrupted ({reason}); refusing to sign until "
                                     "it is restored", step="signer")

        try:
            with open(path, "rb") as handle:
                raw = handle.read(_MAX_FILE_BYTES + 1)
        except FileNotFoundError as exc:
            raise VerificationError(f"state file {path} has disappeared; refusing to sign",
                                    step="signer") from exc
        except OSError as exc:
            raise VerificationError(f"cannot read state file {path}: {exc.strerror}", step="signer") from exc
        if len(raw) > _MAX_FILE_BYTES:
            raise corrupt("too large")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise corrupt("not JSON") from exc
        if not isinstance(data, dict) or set(data) != {"version", "vkey", "size", "root"}:
            raise corrupt("unexpected fields")
        if data["version"] != _STATE_VERSION or isinstance(data["version"], bool):
            raise corrupt(f"unknown version {data['version']!r}")
        if data["vkey"] != self._signer.vkey:
            raise corrupt("it belongs to another key")
        size, root = data["size"], data["root"]
        if size is None and root is None:
            return None
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_TREE_SIZE:
            raise corrupt("bad size")
        if not isinstance(root, str) or len(root) != 2 * HASH_SIZE or root != root.lower():
            raise corrupt("bad root")
        try:
            return size, bytes.fromhex(root)
        except ValueError as exc:
            raise corrupt("bad root") from exc

    def _write_state(self, last: tuple[int, bytes] | None) -> None:
        """Replace the state file atomically and durably."""
        size, root = (last[0], last[1].hex()) if last is not None else (None, None)
        data = {"version": _STATE_VERSION, "vkey": self._signer.vkey, "size": size, "root": root}
        payload = (json.dumps(data, sort_keys=True) + "\n").encode("utf-8")
        directory = self._state_path.parent
        fd, temporary = tempfile.mkstemp(prefix=self._state_path.name + ".", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self._state_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        _fsync_directory(directory)


class HandoverSigner:
    """Key rotation's one checkpoint signed by both keys: the outgoing key vouches for the tree
    that announces the incoming key (in a ``config`` leaf), and the incoming key signs the same
    checkpoint, so an auditor can follow the chain from the key they pinned. Both signers' own
    rollback and fork checks apply."""

    def __init__(self, outgoing: FileSigner, incoming: FileSigner) -> None:
        if outgoing.origin != incoming.origin:
            raise ConfigError(f"the new key signs for {incoming.origin!r}, not {outgoing.origin!r}",
                              path=str(incoming.key_path))
        self.outgoing = outgoing
        self.incoming = incoming

    @property
    def origin(self) -> str:
        return self.outgoing.origin

    @property
    def vkey(self) -> str:
        return self.outgoing.vkey

    def sign(self, size: int, root: bytes) -> str:
        first = self.outgoing.sign(size, root)
        second = self.incoming.sign(size, root)
        text = first[:first.rfind("\n\n") + 1]
        if not second.startswith(text + "\n"):
            raise VerificationError("the two keys signed different checkpoint texts", step="signer")
        return first + second[len(text) + 1:]
