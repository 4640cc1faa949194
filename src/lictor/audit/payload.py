"""The encrypted payload side store: per-subject keys, envelope encryption, crypto-shredding, sampling.

A decision's sensitive content (the values its leaf commits to, and their salts) is kept outside the
tree as one *payload*: a JSON document encrypted with AES-256-GCM under a fresh per-record key, and
that record key wrapped once under the key of every data subject the decision concerns. Subject keys
live in the store, themselves wrapped by the *payload master key*, which lives in a file beside the
signing key and never in the database. Erasing a subject destroys its key and the ciphertexts that
concern it; the leaf keeps the SHA-256 of the ciphertext (``payload_ref``) and the commitments, so the
tree and every signed checkpoint still verify while nothing links them to the person any more.

The same key file holds the *index key* (``subject_ref = HMAC(index key, subject id)`` finds a
subject's records without storing its id) and the *sampling key*: whether a low-risk decision keeps its
payload is ``HMAC(sampling key, decision id) < rate``, decided before the outcome is known and
recomputable by an auditor given the key (its SHA-256 is recorded in the log's ``config`` leaves).

Blob layout (all of it covered by ``payload_ref``)::

    b"LP1" | u16 header length | header (canonical JSON: {"keys": {key id: b64 wrapped record key},
                                          "nonce": b64}) | AES-256-GCM ciphertext of the document
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lictor.audit.canonical import canonical_json
from lictor.audit.leaf import random_bytes
from lictor.audit.port import AuditStore, Payload, SubjectKey
from lictor.errors import ConfigError, VerificationError

__all__ = [
    "PayloadKeys",
    "PayloadVault",
    "ShreddedPayload",
    "open_document",
    "payload_document",
    "payload_ref",
    "sampled",
    "sampling_fingerprint",
    "split_blob",
]

_MAGIC = b"LP1"
_KEY_FILE_VERSION = 1
#: How long a process trusts its cached copy of a subject's key before reading the store again (an
#: erasure in another process is seen by this one within this time).
KEY_CACHE_SECONDS = 30.0


class ShreddedPayload(VerificationError):
    """The payload cannot be opened: every key it was wrapped under was destroyed by an erasure."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise ValueError(f"{what} is not base64 text")
    return base64.b64decode(text, validate=True)


def payload_ref(blob: bytes) -> str:
    """What a leaf records of its payload: ``base64(SHA-256(blob))``."""
    return _b64(hashlib.sha256(blob).digest())


def sampled(sampling_key: bytes, decision_id: str, rate: float) -> bool:
    """Whether a decision keeps its payload at ``rate`` (0 to 1): reproducible from the key and the
    decision id alone, so it cannot depend on the verdict."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hmac.new(sampling_key, decision_id.encode("utf-8"), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") < int(rate * 2**64)


def sampling_fingerprint(sampling_key: bytes) -> str:
    """What ``config`` leaves record of a sampling key: ``base64(SHA-256(key))``."""
    return _b64(hashlib.sha256(sampling_key).digest())


def payload_document(values: Mapping[str, Any], salts: Mapping[str, bytes]) -> bytes:
    """The plaintext of a payload: every committed field's value and salt, as canonical JSON."""
    return canonical_json({"v": 1, "fields": {name: {"salt": _b64(salts[name]), "value": values[name]}
                                             for name in sorted(values)}})


def open_document(document: bytes) -> dict[str, tuple[Any, bytes]]:
    """The inverse of :func:`payload_document`: field name -> (value, salt)."""
    try:
        data = json.loads(document)
        if data.get("v") != 1 or not isinstance(data.get("fields"), dict):
            raise ValueError("unknown payload document version")
        return {name: (field["value"], _unb64(field["salt"], f"salt of {name}"))
                for name, field in data["fields"].items()}
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise VerificationError(f"payload document is malformed: {exc}", step="payload") from None


@dataclass(frozen=True, slots=True)
class PayloadKeys:
    """The three secrets of the payload key file: master (wraps subject keys), index, sampling."""

    master: bytes
    index: bytes
    sampling: bytes

    @classmethod
    def generate(cls) -> PayloadKeys:
        return cls(os.urandom(32), os.urandom(32), os.urandom(32))

    @classmethod
    def create(cls, path: str | Path) -> PayloadKeys:
        """Generate keys and write them to a new file readable by its owner only."""
        keys = cls.generate()
        target = Path(path)
        text = json.dumps({"v": _KEY_FILE_VERSION, "master": _b64(keys.master), "index": _b64(keys.index),
                           "sampling": _b64(keys.sampling)}) + "\n"
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise ConfigError(f"{target} already exists; refusing to overwrite a payload key file",
                              path="audit.payload_key_file") from None
        except OSError as exc:
            raise ConfigError(f"cannot create the payload key file {target}: {exc.strerror}",
                              path="audit.payload_key_file") from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        return keys

    @classmethod
    def load(cls, path: str | Path) -> PayloadKeys:
        target = Path(path)
        try:
            data = json.loads(target.read_text(encoding="utf-8"))
            if data.get("v") != _KEY_FILE_VERSION:
                raise ValueError(f"unknown version {data.get('v')!r}")
            keys = cls(*(_unb64(data[name], name) for name in ("master", "index", "sampling")))
        except OSError as exc:
            raise ConfigError(f"cannot read the payload key file {target}: {exc.strerror}",
                              path="audit.payload_key_file") from None
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ConfigError(f"{target} is not a payload key file: {exc}", path="audit.payload_key_file") from None
        if any(len(k) != 32 for k in (keys.master, keys.index, keys.sampling)):
            raise ConfigError(f"{target}: every payload key is 32 bytes", path="audit.payload_key_file")
        return keys

    @classmethod
    def open(cls, path: str | Path) -> PayloadKeys:
        """Load the key file, creating it on first use."""
        return cls.load(path) if Path(path).exists() else cls.create(path)

    def subject_ref(self, subject: str) -> bytes:
        """The store's handle on a data subject: a keyed hash of its id, never written into a leaf."""
        return hmac.new(self.index, b"subject\x00" + subject.encode("utf-8"), hashlib.sha256).digest()

    def sampling_fingerprint(self) -> str:
        """What ``config`` leaves record of the sampling key."""
        return sampling_fingerprint(self.sampling)


class PayloadVault:
    """Seals payloads for the write path and opens them for the operator's own verification.

    Subject keys are created on first use (concurrent processes agree through the store) and cached
    for :data:`KEY_CACHE_SECONDS`. A decision concerning no subject is sealed under the key of the
    anonymous subject ``""``, which cannot be erased by subject.
    """

    def __init__(self, keys: PayloadKeys, store: AuditStore, *, clock: Callable[[], float] = time.monotonic,
                 cache_seconds: float = KEY_CACHE_SECONDS) -> None:
        self.keys = keys
        self._store = store
        self._master = AESGCM(keys.master)
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, str, AESGCM]] = {}  # subject -> (expires, key id, cipher)
        self._opened: dict[str, AESGCM | None] = {}  # key id -> cipher (None: destroyed), for reading
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- subject keys

    def _wrap(self, key_id: str, key: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._master.encrypt(nonce, key, b"lictor subject key\x00" + key_id.encode())

    def _unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        try:
            return self._master.decrypt(wrapped[:12], wrapped[12:], b"lictor subject key\x00" + key_id.encode())
        except InvalidTag:
            raise ConfigError(f"subject key {key_id} does not open with this payload key file",
                              path="audit.payload_key_file") from None

    def _subject_cipher(self, subject: str) -> tuple[str, AESGCM]:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(subject)
        if cached is not None and cached[0] > now:
            return cached[1], cached[2]
        ref = self.keys.subject_ref(subject)
        current = self._store.subject_key(ref)
        if current is None:
            key_id = secrets.token_hex(16)
            current = self._store.add_subject_key(ref, SubjectKey(key_id, self._wrap(key_id, os.urandom(32))),
                                                  time.time())
        cipher = AESGCM(self._unwrap(current.key_id, current.wrapped))
        with self._lock:
            self._cache[subject] = (now + self._cache_seconds, current.key_id, cipher)
        return current.key_id, cipher

    def forget(self, subject: str) -> None:
        """Drop this process's cached key of a subject (after erasing it)."""
        with self._lock:
            self._cache.pop(subject, None)

    # ---------------------------------------------------------------- sealing and opening

    def seal(self, document: bytes, subjects: Sequence[str]) -> Payload:
        """Encrypt ``document`` for ``subjects`` (in order, without repeats; none means anonymous)."""
        named = list(dict.fromkeys(subjects)) or [""]
        record_key = random_bytes(32)
        wraps: dict[str, str] = {}
        for subject in named:
            key_id, cipher = self._subject_cipher(subject)
            nonce = random_bytes(12)
            wraps[key_id] = _b64(nonce + cipher.encrypt(nonce, record_key, key_id.encode()))
        nonce = random_bytes(12)
        header = canonical_json({"keys": wraps, "nonce": _b64(nonce)})
        body = AESGCM(record_key).encrypt(nonce, document, header)
        blob = _MAGIC + len(header).to_bytes(2, "big") + header + body
        refs = tuple(self.keys.subject_ref(s) for s in named if s)
        return Payload(ciphertext=blob, key_id=next(iter(wraps)), subject_refs=refs)

    def _key_cipher(self, key_id: str) -> AESGCM | None:
        with self._lock:
            if key_id in self._opened:
                return self._opened[key_id]
        wrapped = self._store.wrapped_key(key_id)
        cipher = None if wrapped is None else AESGCM(self._unwrap(key_id, wrapped))
        with self._lock:
            self._opened[key_id] = cipher
        return cipher

    def open(self, blob: bytes, *, index: int | None = None) -> bytes:
        """Decrypt a payload blob. Raises ShreddedPayload when every key it names was destroyed and
        VerificationError when it is malformed or does not authenticate."""
        header, keys, nonce, body = split_blob(blob, index=index)
        for key_id, wrapped in keys.items():
            cipher = self._key_cipher(key_id)
            if cipher is None:
                continue
            try:
                record_key = cipher.decrypt(wrapped[:12], wrapped[12:], key_id.encode())
                return AESGCM(record_key).decrypt(nonce, body, header)
            except InvalidTag:
                raise VerificationError("payload does not authenticate under its key", step="payload",
                                        index=index) from None
        raise ShreddedPayload("every key of this payload was destroyed", step="payload", index=index)


def split_blob(blob: bytes, *, index: int | None = None) -> tuple[bytes, dict[str, bytes], bytes, bytes]:
    """A payload blob's header bytes, wrapped record keys, nonce and ciphertext."""
    try:
        if blob[:3] != _MAGIC or len(blob) < 5:
            raise ValueError("not a payload blob")
        size = int.from_bytes(blob[3:5], "big")
        header = blob[5:5 + size]
        data = json.loads(header)
        keys = {str(k): _unb64(v, "wrapped key") for k, v in data["keys"].items()}
        nonce = _unb64(data["nonce"], "nonce")
        if not keys or len(nonce) != 12 or any(len(w) < 13 for w in keys.values()):
            raise ValueError("payload header is incomplete")
        return header, keys, nonce, blob[5 + size:]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise VerificationError(f"payload is malformed: {exc}", step="payload", index=index) from None
