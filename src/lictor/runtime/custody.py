"""Custody of a stored log outside a running gateway: erasure and retention (the two ways content
leaves the log, each recorded by a leaf), the auditor's read-only access, signing key rotation and
bundle export; and the ``config`` leaf that records an administrative change."""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lictor.audit.bundle import write_bundle
from lictor.audit.checkpoint import open_checkpoint
from lictor.audit.leaf import leaf_time
from lictor.audit.log import AuditLog, Receipt, extend_tree
from lictor.audit.merkle import Tree
from lictor.audit.note import Verifier
from lictor.audit.payload import (
    PayloadKeys,
    PayloadVault,
)
from lictor.audit.port import AuditStore, Erasure
from lictor.audit.signer import STATE_SUFFIX, CheckpointSigner, FileSigner, HandoverSigner
from lictor.audit.verify import VerifyReport, verify_log
from lictor.errors import ConfigError, InputError
from lictor.oversight import ReviewStore
from lictor.store import open_store

if TYPE_CHECKING:  # httpx and the notifier load only when notifications are configured
    pass

__all__ = ["DEFAULT_KEY_FILE", "DEFAULT_PAYLOAD_KEY_FILE", "ERASURE_INDICES_PER_LEAF", "AuditReader", "Custodian", "export_bundle", "open_audit_reader", "open_custodian", "rotate_signing_key"]

DEFAULT_KEY_FILE = "lictor-audit.key"
DEFAULT_PAYLOAD_KEY_FILE = "lictor-payload.key"
#: Erasure leaves list at most this many leaf indices each (a leaf is at most 64 KiB).
ERASURE_INDICES_PER_LEAF = 4000
_BASIS = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


class Custodian:
    """Erasure of a data subject and retention pruning: the two ways content leaves the log, each
    recorded by a leaf so that the log still verifies and says what is gone and why."""

    def __init__(self, *, store: AuditStore, log: AuditLog, vault: PayloadVault) -> None:
        self._store = store
        self.log = log
        self.vault = vault
        self.reviews_forgotten = 0  # by the last erase

    def erase(self, subject: str, *, basis: str = "erasure-request") -> tuple[Erasure, list[Receipt]]:
        """Destroy the subject's payload key and every payload that concerns it, then append the
        ``erasure`` leaves that list the leaves whose payload is gone. The leaves and the tree do not
        change. ``basis`` is a short code (e.g. ``gdpr-art17``), never free text."""
        if not isinstance(subject, str) or not subject:
            raise InputError("name the data subject to erase", path="$.subject")
        if not _BASIS.fullmatch(basis):
            raise InputError("the basis is a short code (letters, digits, . _ : -), never free text that "
                             "could itself identify the person", path="$.basis")
        erasure = self._store.erase_subject(self.vault.keys.subject_ref(subject), time.time())
        self.vault.forget(subject)
        # review records keep the held action in clear for reviewers: they go too (the log keeps
        # the review leaves, which hold only commitments)
        self.reviews_forgotten = (self._store.forget_subject(subject)
                                  if isinstance(self._store, ReviewStore) else 0)
        return erasure, self._record_erasure(erasure, basis)

    def record_pending_erasures(self) -> int:
        """Append the leaves of erasures that were carried out but not yet recorded (a crash between
        the two leaves at most one duplicate erasure leaf, never an unrecorded erasure)."""
        pending = self._store.erasures(pending=True)
        for erasure in pending:
            self._record_erasure(erasure, "recovered")
        return len(pending)

    def _record_erasure(self, erasure: Erasure, basis: str) -> list[Receipt]:
        chunks = [erasure.indices[i:i + ERASURE_INDICES_PER_LEAF]
                  for i in range(0, len(erasure.indices), ERASURE_INDICES_PER_LEAF)] or [()]
        receipts = [self.log.append({
            "v": 1, "type": "erasure", "ts": leaf_time(), "erasure": erasure.id, "basis": basis,
            "erased_at": leaf_time(erasure.erased_at), "part": n + 1, "parts": len(chunks),
            "indices": list(chunk)}) for n, chunk in enumerate(chunks)]
        self._store.record_erasure_leaf(erasure.id, receipts[-1].index)
        return receipts

    def prune(self, before: datetime) -> tuple[int, Receipt | None]:
        """Retention: drop the content of leaves older than ``before`` (their hashes stay, so every
        root and proof still verifies) after appending a ``prune`` leaf that says so. ``config``,
        ``erasure`` and ``prune`` leaves keep their bytes: they are the log's own history. Returns
        the new floor (leaves below it are pruned) and the prune leaf's receipt (None if nothing was
        old enough)."""
        if before.tzinfo is None:
            raise InputError("give the retention cut-off with a time zone (e.g. 2026-01-01T00:00:00Z)",
                             path="$.before")
        floor = self._store.pruned_below()
        size = self._store.state().size
        keep: list[int] = []
        below = floor
        while below < size:
            chunk = self._store.leaves(below, min(size, below + 4096))
            stop = False
            for data in chunk:
                if data:
                    leaf = json.loads(data)
                    ts = leaf.get("ts")
                    if isinstance(ts, str) and _parse_time(ts) >= before:
                        stop = True
                        break
                    if leaf.get("type") in ("config", "erasure", "prune"):
                        keep.append(below)
                below += 1
            if stop:
                break
        if below <= floor:
            return floor, None
        receipt = self.log.append({"v": 1, "type": "prune", "ts": leaf_time(), "before": leaf_time(
            before.timestamp()), "below": below})
        return self._store.prune(below, time.time(), keep), receipt


class AuditReader:
    """Read-only access to a stored log for the auditor's commands (verify, proof, checkpoint)."""

    def __init__(self, store: AuditStore) -> None:
        self._store = store

    def leaves(self) -> list[bytes]:
        return self._store.leaves(0, self._store.state().size)

    def pruned_hashes(self) -> list[bytes]:
        """The stored leaf hashes of the pruned prefix (whose bytes are gone)."""
        return self._store.leaf_hashes(0, self._store.pruned_below())

    def payloads(self, size: int) -> dict[int, bytes]:
        return self._store.payloads(0, size)

    def checkpoint_notes(self) -> list[str]:
        return [c.note for c in self._store.checkpoints()]

    def leaf_hash(self, index: int) -> str:
        """The RFC 6962 hash of leaf ``index``, in hex."""
        size = self._store.state().size
        if not 0 <= index < size:
            raise InputError(f"there is no leaf {index} (the log holds {size})", path="$.index")
        return self._store.leaf_hashes(index, index + 1)[0].hex()

    def latest_checkpoint(self) -> str | None:
        notes = self.checkpoint_notes()
        return notes[-1] if notes else None

    def verify(self, verifier: Verifier, *, origin: str, extra_checkpoints: Sequence[str] = (),
               max_seal_interval: float | None = None, payload_keys: PayloadKeys | None = None,
               sampling_key: bytes | None = None) -> VerifyReport:
        """Verify the stored log, its payloads against their leaves and, given the payload keys (the
        operator's own check), the commitments inside each payload and the sampling."""
        notes = self.checkpoint_notes()  # read before the leaves: every checkpoint is covered
        pruned = self.pruned_hashes()
        leaves = self.leaves()
        payloads = self.payloads(len(leaves))
        opener = None
        if payload_keys is not None:
            vault = PayloadVault(payload_keys, self._store)
            opener = lambda blob, index: vault.open(blob, index=index)  # noqa: E731
            sampling_key = sampling_key or payload_keys.sampling
        return verify_log(leaves, [*notes, *extra_checkpoints], [verifier], origin=origin,
                          max_seal_interval=max_seal_interval, pruned_hashes=pruned, payloads=payloads,
                          open_payload=opener, sampling_key=sampling_key)

    def proof(self, index: int, verifier: Verifier, origin: str) -> dict[str, Any]:
        """An inclusion proof of leaf ``index`` in the latest signed checkpoint, as JSON data."""
        note = self.latest_checkpoint()
        if note is None:
            raise ConfigError("the log has no signed checkpoint yet; run `lictor audit checkpoint` first")
        cp = open_checkpoint(note, [verifier], origin)
        if not 0 <= index < cp.size:
            raise ConfigError(f"index {index} is not covered by the latest checkpoint (size {cp.size})")
        tree = Tree()
        extend_tree(tree, self._store, cp.size)
        return {"index": index, "tree_size": cp.size, "leaf_hash": tree.leaf(index).hex(),
                "proof": [h.hex() for h in tree.inclusion_proof(index, cp.size)], "checkpoint": note}

    def close(self) -> None:
        self._store.close()


def record_change(log: AuditLog, change: str, details: Mapping[str, Any]) -> Receipt:
    """A ``config`` leaf naming an administrative change and its (never secret) details."""
    return log.append({"v": 1, "type": "config", "ts": leaf_time(), "change": change, **details})


def _parse_time(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)  # an unreadable time is never "old enough" to prune
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@contextlib.contextmanager
def open_custodian(database: str, *, key_file: str | Path = DEFAULT_KEY_FILE,
                   payload_key_file: str | Path = DEFAULT_PAYLOAD_KEY_FILE) -> Iterator[Custodian]:
    """A custodian over an existing deployment's log (for ``lictor audit erase|prune``). Both key
    files must exist; on leaving, the log is sealed and a checkpoint signed so the new leaves are
    covered at once."""
    for path, what in ((key_file, "signing key"), (payload_key_file, "payload key")):
        if not Path(path).exists():
            raise ConfigError(f"the {what} file {path} does not exist", path="audit.key_file"
                              if what == "signing key" else "audit.payload_key_file")
    keys = PayloadKeys.load(payload_key_file)
    with writing_log(database, FileSigner(Path(key_file))) as (store, log):
        custodian = Custodian(store=store, log=log, vault=PayloadVault(keys, store))
        custodian.record_pending_erasures()
        yield custodian


@contextlib.contextmanager
def writing_log(database: str, signer: CheckpointSigner) -> Iterator[tuple[AuditStore, AuditLog]]:
    """The store and a log writing to it, for one administrative change; on a clean exit the log is
    sealed and a checkpoint signed so the change's leaves are covered at once."""
    store = open_store(database)
    log = AuditLog(store=store, signer=signer)
    try:
        yield store, log
        log.checkpoint()
    finally:
        log.close()
        store.close()


def rotate_signing_key(database: str, *, key_file: str | Path = DEFAULT_KEY_FILE) -> tuple[str, str, str]:
    """Replace the log's checkpoint signing key: a ``config`` leaf announces the new key, one
    checkpoint over it is signed by both keys (the handover), and the new key takes the key file's
    place (the old one is kept beside it as ``KEYFILE.retired-KEYID``, to be archived or destroyed).
    Gateways using the key file must be stopped while this runs and started again after it.
    Returns (old vkey, new vkey, the handover checkpoint note)."""
    key = Path(key_file)
    old = FileSigner(key)
    staging = key.with_name(key.name + ".next")
    for leftover in (staging, staging.with_name(staging.name + STATE_SUFFIX)):
        if leftover.exists():
            raise ConfigError(f"{leftover} is left from an interrupted rotation; move it away first",
                              path="audit.key_file")
    new = FileSigner.create(staging, old.origin)
    store = open_store(database)
    log = AuditLog(store=store, signer=HandoverSigner(old, new))
    try:
        record_change(log, "key-rotation", {"previous_vkey": old.vkey, "vkey": new.vkey})
        note = log.checkpoint()
    finally:
        log.close()
        store.close()
    if note is None:
        raise ConfigError("the handover checkpoint was not signed; the old key stays in force")
    retired = key.with_name(f"{key.name}.retired-{old.verifier.key_id:08x}")
    os.replace(old.state_path, retired.with_name(retired.name + STATE_SUFFIX))
    os.replace(key, retired)
    os.replace(new.state_path, old.state_path)
    os.replace(staging, key)
    return old.vkey, new.vkey, note


def open_audit_reader(database: str) -> AuditReader:
    return AuditReader(open_store(database))


def export_bundle(database: str, out_dir: str | Path, vkey: str) -> tuple[Path, int, int]:
    """Write the stored log to an auditor bundle at ``out_dir``; returns (path, leaves, checkpoints).

    The checkpoints are read before the leaves, so every exported checkpoint is covered by the
    exported leaves even while a gateway keeps appending. Pruned leaves go as their hashes."""
    reader = open_audit_reader(database)
    try:
        notes = reader.checkpoint_notes()
        pruned = reader.pruned_hashes()
        leaves = reader.leaves()
    finally:
        reader.close()
    return write_bundle(out_dir, leaves, notes, vkey, pruned_hashes=pruned), len(leaves), len(notes)
