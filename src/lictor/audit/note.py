"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys: key texts, signing and strict opening.

A signed note is a UTF-8 text ending in a newline, a blank line, then one line per signature::

    — <key name> base64(key ID (4 bytes, big-endian) || Ed25519 signature (64 bytes))

The key ID of an Ed25519 key is the first four bytes of ``SHA-256(name || 0x0A || 0x01 || public
key)``. Keys travel as text in the formats of Go's ``golang.org/x/mod/sumdb/note`` package: the
verifier key (vkey) ``<name>+<hex key ID>+base64(0x01 || public key)`` and the signer key (skey)
``PRIVATE+KEY+<name>+<hex key ID>+base64(0x01 || seed)``.

Opening a note follows the specification: signatures by keys the caller does not know are ignored,
every signature by a known key is verified and one bad signature rejects the whole note, and a note
that no known key signed is rejected. Malformed text raises ``VerificationError`` (an auditor's tool
fails closed on garbage); bad arguments from a programmer raise ``ValueError``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from lictor.errors import VerificationError

__all__ = [
    "ED25519",
    "MAX_SIGNATURES",
    "SIGNATURE_PREFIX",
    "Note",
    "Signature",
    "Signer",
    "Verifier",
    "generate_key",
    "key_id",
    "open_note",
    "sign_note",
]

#: Signature type identifier byte of Ed25519 in signed notes.
ED25519 = 0x01

#: Most signature lines a note may carry; the specification asks verifiers to accept at least 16.
MAX_SIGNATURES = 100

#: What every signature line starts with: EM DASH (U+2014) and a space.
SIGNATURE_PREFIX = "\u2014 "

_PRIVATE_PREFIX = "PRIVATE+KEY+"
_KEY_ID_HEX = re.compile(r"[0-9a-f]{8}")
_ED25519_SIGNATURE_SIZE = 64
_ED25519_KEY_SIZE = 32


def _name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid key name, or None when it is."""
    if not name:
        return "a key name must not be empty"
    if "+" in name:
        return f"key name {name!r} contains '+'"
    if any(ch.isspace() or ch < " " or ch == "\x7f" for ch in name):
        return f"key name {name!r} contains whitespace or a control character"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return f"key name {name!r} is not valid UTF-8"
    return None


def _text_problem(text: str) -> str | None:
    """Why ``text`` cannot be (part of) a note, or None: valid UTF-8, no controls but newline."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "the text is not valid UTF-8"
    for position, ch in enumerate(text):
        if ch < " " and ch != "\n":
            return f"the text contains the control character {ch!r} at offset {position}"
    return None


def _decode_base64(value: str) -> bytes | None:
    """Strict standard base64 (RFC 4648 §4): padded, canonical, nothing else; None otherwise."""
    if not value or not value.isascii():
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    if base64.b64encode(raw).decode("ascii") != value:
        return None
    return raw


def key_id(name: str, public_key: bytes) -> int:
    """The key ID of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || public key)[:4], big-endian."""
    problem = _name_problem(name)
    if problem:
        raise ValueError(problem)
    if len(public_key) != _ED25519_KEY_SIZE:
        raise ValueError(f"an Ed25519 public key is {_ED25519_KEY_SIZE} bytes, got {len(public_key)}")
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ED25519]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _split_key_text(text: str, what: str) -> tuple[str, int, bytes]:
    """Parse ``<name>+<hex key ID>+<base64 key>`` into its parts, checking only the syntax."""
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise VerificationError(f"{what} must have the form name+keyid+key", step="key")
    name, hex_id, encoded = parts
    problem = _name_problem(name)
    if problem:
        raise VerificationError(f"{what}: {problem}", step="key")
    if not _KEY_ID_HEX.fullmatch(hex_id):
        raise VerificationError(f"{what}: the key ID must be 8 lowercase hex digits, got {hex_id!r}",
                                step="key")
    raw = _decode_base64(encoded)
    if raw is None:
        raise VerificationError(f"{what}: the key is not canonical base64", step="key")
    if len(raw) != 1 + _ED25519_KEY_SIZE:
        raise VerificationError(f"{what}: the key is {len(raw)} bytes, an Ed25519 key is 33", step="key")
    if raw[0] != ED25519:
        raise VerificationError(f"{what}: unknown signature type 0x{raw[0]:02x}", step="key")
    return name, int(hex_id, 16), raw[1:]


@dataclass(frozen=True, slots=True)
class Verifier:
    """An Ed25519 public key with its name and key ID; it checks signatures made by that key."""

    name: str
    key_id: int
    public_key: bytes
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        expected = key_id(self.name, self.public_key)
        if self.key_id != expected:
            raise ValueError(f"key ID {self.key_id:08x} does not match the key (expected {expected:08x})")
        object.__setattr__(self, "_key", Ed25519PublicKey.from_public_bytes(self.public_key))

    def __repr__(self) -> str:
        return f"Verifier({self.vkey!r})"

    @classmethod
    def from_vkey(cls, text: str) -> Verifier:
        """Parse a verifier key ``name+keyid+base64(0x01 || public key)``; the key ID must match."""
        name, parsed_id, public_key = _split_key_text(text, "verifier key")
        expected = key_id(name, public_key)
        if parsed_id != expected:
            raise VerificationError(f"verifier key: key ID {parsed_id:08x} does not match the key "
                                    f"(expected {expected:08x})", step="key")
        try:
            return cls(name, parsed_id, public_key)
        except ValueError as exc:
            raise VerificationError(f"verifier key: {exc}", step="key") from exc

    @property
    def vkey(self) -> str:
        """The verifier key text, as published for auditors."""
        encoded = base64.b64encode(bytes([ED25519]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id:08x}+{encoded}"

    def verify(self, message: bytes, signature: bytes) -> None:
        """Raise VerificationError unless ``signature`` is this key's Ed25519 signature of ``message``."""
        if len(signature) != _ED25519_SIGNATURE_SIZE:
            raise VerificationError(f"invalid signature for key {self.name}+{self.key_id:08x}: "
                                    f"{len(signature)} bytes, an Ed25519 signature is 64", step="signature")
        try:
            self._key.verify(signature, message)
        except InvalidSignature as exc:
            raise VerificationError(f"invalid signature for key {self.name}+{self.key_id:08x}",
                                    step="signature") from exc


@dataclass(frozen=True, slots=True)
class Signer:
    """An Ed25519 private key with its name and key ID; it never shows the key in its repr."""

    name: str
    seed: bytes = field(repr=False)
    key_id: int = field(init=False)
    _key: Ed25519PrivateKey = field(init=False, repr=False, compare=False)
    _public_key: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problem = _name_problem(self.name)
        if problem:
            raise ValueError(problem)
        if len(self.seed) != _ED25519_KEY_SIZE:
            raise ValueError(f"an Ed25519 seed is {_ED25519_KEY_SIZE} bytes, got {len(self.seed)}")
        private = Ed25519PrivateKey.from_private_bytes(self.seed)
        public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        object.__setattr__(self, "_key", private)
        object.__setattr__(self, "_public_key", public)
        object.__setattr__(self, "key_id", key_id(self.name, public))

    @classmethod
    def from_skey(cls, text: str) -> Signer:
        """Parse a signer key ``PRIVATE+KEY+name+keyid+base64(0x01 || seed)``; the key ID must match."""
        if not text.startswith(_PRIVATE_PREFIX):
            raise VerificationError("signer key must start with PRIVATE+KEY+", step="key")
        name, parsed_id, seed = _split_key_text(text[len(_PRIVATE_PREFIX):], "signer key")
        try:
            signer = cls(name, seed)
        except ValueError as exc:
            raise VerificationError(f"signer key: {exc}", step="key") from exc
        if parsed_id != signer.key_id:
            raise VerificationError(f"signer key: key ID {parsed_id:08x} does not match the key "
                                    f"(expected {signer.key_id:08x})", step="key")
        return signer

    @property
    def public_key(self) -> bytes:
        """The 32-byte Ed25519 public key."""
        return self._public_key

    @property
    def vkey(self) -> str:
        """The verifier key text for this signer's public key."""
        return self.verifier().vkey

    @property
    def skey(self) -> str:
        """The signer key text (secret: whoever holds it can sign as this key)."""
        encoded = base64.b64encode(bytes([ED25519]) + self.seed).decode("ascii")
        return f"{_PRIVATE_PREFIX}{self.name}+{self.key_id:08x}+{encoded}"

    def verifier(self) -> Verifier:
        """The matching Verifier."""
        return Verifier(self.name, self.key_id, self._public_key)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message`` (deterministic, RFC 8032)."""
        return self._key.sign(message)


def generate_key(name: str) -> tuple[str, str]:
    """A new random Ed25519 key named ``name``, as (signer key text, verifier key text)."""
    private = Ed25519PrivateKey.generate()
    signer = Signer(name, private.private_bytes_raw())
    return signer.skey, signer.vkey


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature line of a note: the key's name and ID, and the signature bytes after the ID."""

    name: str
    key_id: int
    signature: bytes

    @property
    def line(self) -> str:
        """The signature line as it appears in the note, with its final newline."""
        encoded = base64.b64encode(self.key_id.to_bytes(4, "big") + self.signature).decode("ascii")
        return f"{SIGNATURE_PREFIX}{self.name} {encoded}\n"


@dataclass(frozen=True, slots=True)
class Note:
    """An opened note: its text (with the final newline), every signature line, and who verified."""

    text: str
    signatures: tuple[Signature, ...]
    verified_by: tuple[Verifier, ...]


def sign_note(text: str, *signers: Signer) -> str:
    """Sign ``text`` with each signer, in order, and return the signed note."""
    if not signers:
        raise ValueError("sign_note needs at least one signer")
    if not text.endswith("\n"):
        raise ValueError("the text of a note must end with a newline")
    problem = _text_problem(text)
    if problem:
        raise ValueError(problem)
    if any(line.startswith(SIGNATURE_PREFIX) for line in text.split("\n")):
        raise ValueError("no line of the text may start with the signature prefix (em dash, space)")
    seen: set[tuple[str, int]] = set()
    for signer in signers:
        if (signer.name, signer.key_id) in seen:
            raise ValueError(f"key {signer.name}+{signer.key_id:08x} is given twice")
        seen.add((signer.name, signer.key_id))
    message = text.encode("utf-8")
    lines = [Signature(s.name, s.key_id, s.sign(message)).line for s in signers]
    return text + "\n" + "".join(lines)


def _parse_signature_line(line: str, number: int) -> Signature:
    """One signature line (without its newline) → Signature, or VerificationError."""
    if not line.startswith(SIGNATURE_PREFIX):
        raise VerificationError(f"malformed note: signature line {number} does not start with an em "
                                "dash and a space", step="note")
    name, space, encoded = line[len(SIGNATURE_PREFIX):].partition(" ")
    if not space:
        raise VerificationError(f"malformed note: signature line {number} has no signature",
                                step="note")
    problem = _name_problem(name)
    if problem:
        raise VerificationError(f"malformed note: signature line {number}: {problem}", step="note")
    raw = _decode_base64(encoded)
    if raw is None:
        raise VerificationError(f"malformed note: signature line {number} is not canonical base64",
                                step="note")
    if len(raw) < 5:
        raise VerificationError(f"malformed note: signature line {number} is too short", step="note")
    return Signature(name, int.from_bytes(raw[:4], "big"), raw[4:])


def _split_note(note: str) -> tuple[str, list[Signature]]:
    """Split a signed note into its text and parsed signature lines, strictly."""
    problem = _text_problem(note)
    if problem:
        raise VerificationError(f"malformed note: {problem}", step="note")
    split = note.rfind("\n\n")
    if split < 0:
        raise VerificationError("malformed note: no blank line before the signatures", step="note")
    text, block = note[: split + 1], note[split + 2:]
    if not block:
        raise VerificationError("malformed note: no signatures after the blank line", step="note")
    if not block.endswith("\n"):
        raise VerificationError("malformed note: the last signature line does not end with a newline",
                                step="note")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise VerificationError(f"malformed note: {len(lines)} signatures, at most {MAX_SIGNATURES} "
                                "are accepted", step="note")
    return text, [_parse_signature_line(line, number) for number, line in enumerate(lines, 1)]


def _index_verifiers(verifiers: Iterable[Verifier]) -> dict[tuple[str, int], Verifier]:
    known: dict[tuple[str, int], Verifier] = {}
    for verifier in verifiers:
        if not isinstance(verifier, Verifier):
            raise ValueError(f"expected Verifier objects, got {type(verifier).__name__}")
        slot = (verifier.name, verifier.key_id)
        other = known.setdefault(slot, verifier)
        if other.public_key != verifier.public_key:
            raise ValueError(f"two different keys are both named {verifier.name}+{verifier.key_id:08x}")
    return known


def open_note(note: str | bytes, verifiers: Iterable[Verifier]) -> Note:
    """Parse ``note`` and verify it: return the Note, or raise VerificationError.

    Signatures by unknown keys (name and key ID not both matching a verifier) are ignored; every
    signature by a known key must verify; at least one known key must have signed.
    """
    known = _index_verifiers(verifiers)
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise VerificationError("malformed note: not valid UTF-8", step="note") from exc
    text, signatures = _split_note(note)
    message = text.encode("utf-8")
    verified: list[Verifier] = []
    for signature in signatures:
        verifier = known.get((signature.name, signature.key_id))
        if verifier is None:
            continue
        verifier.verify(message, signature.signature)
        if verifier not in verified:
            verified.append(verifier)
    if not verified:
        names = ", ".join(f"{s.name}+{s.key_id:08x}" for s in signatures)
        raise VerificationError(f"note has no signature by a known key (signed by {names})",
                                step="signature")
    return Note(text, tuple(signatures), tuple(verified))
