"""C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint): a log's signed tree head as a signed note.

The note text is exactly::

    <origin>
    <tree size, decimal, no leading zeros>
    <base64 of the 32-byte RFC 6962 root hash>
    [extension lines, each non-empty]

``parse_checkpoint`` reads that text strictly and raises ``VerificationError`` on anything else;
``open_checkpoint`` verifies the note's signatures first (the text means nothing until then), then
parses it and checks that the origin is the one the caller expects, so a checkpoint of one log can
never be passed off as another's.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass

from lictor.audit.note import SIGNATURE_PREFIX, Signer, Verifier, open_note, sign_note
from lictor.errors import VerificationError

__all__ = [
    "HASH_SIZE",
    "MAX_TREE_SIZE",
    "Checkpoint",
    "open_checkpoint",
    "parse_checkpoint",
    "sign_checkpoint",
]

#: Bytes in a root hash (SHA-256).
HASH_SIZE = 32

#: Largest tree size accepted (the signed 64-bit range other implementations use).
MAX_TREE_SIZE = 2**63 - 1

_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def _line_problem(line: str, what: str) -> str | None:
    """Why ``line`` cannot be one line of a checkpoint, or None."""
    if not line:
        return f"the {what} must not be empty"
    if any(ch < " " for ch in line):
        return f"the {what} contains a newline or a control character"
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return f"the {what} is not valid UTF-8"
    if line.startswith(SIGNATURE_PREFIX):
        return f"the {what} starts with the note signature prefix"
    return None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's state: its origin, its tree size and the root hash at that size."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problem = _line_problem(self.origin, "origin")
        if problem:
            raise ValueError(problem)
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise ValueError(f"the tree size must be an int, got {type(self.size).__name__}")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise ValueError(f"the tree size must be between 0 and {MAX_TREE_SIZE}, got {self.size}")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise ValueError(f"the root hash must be {HASH_SIZE} bytes")
        if not isinstance(self.extensions, tuple):
            raise ValueError("extensions must be a tuple of lines")
        for line in self.extensions:
            problem = _line_problem(line, "extension line") if isinstance(line, str) else "not a str"
            if problem:
                raise ValueError(problem)

    def body(self) -> str:
        """The note text: origin, size, base64 root, extension lines, each ending in a newline."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii"),
                 *self.extensions]
        return "".join(line + "\n" for line in lines)


def _fail(message: str) -> VerificationError:
    return VerificationError(f"malformed checkpoint: {message}", step="checkpoint")


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint's note text (no signatures) strictly; raise VerificationError if malformed."""
    if not text.endswith("\n"):
        raise _fail("the text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise _fail(f"{len(lines)} lines, a checkpoint has at least 3 (origin, size, root hash)")
    origin, size_text, root_text, *extensions = lines
    for number, (line, what) in enumerate(
            [(origin, "origin"), (size_text, "tree size"), (root_text, "root hash")]
            + [(line, "extension line") for line in extensions], 1):
        problem = _line_problem(line, what)
        if problem:
            raise _fail(f"line {number}: {problem}")
    if not _DECIMAL.fullmatch(size_text):
        raise _fail(f"the tree size {size_text[:40]!r} is not a decimal number without leading zeros")
    if len(size_text) > len(str(MAX_TREE_SIZE)) or int(size_text) > MAX_TREE_SIZE:
        raise _fail(f"the tree size is larger than {MAX_TREE_SIZE}")
    try:
        root = base64.b64decode(root_text, validate=True) if root_text.isascii() else b""
    except ValueError:
        root = b""
    if len(root) != HASH_SIZE or base64.b64encode(root).decode("ascii") != root_text:
        raise _fail(f"the root hash is not the canonical base64 of {HASH_SIZE} bytes")
    return Checkpoint(origin, int(size_text), root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, *signers: Signer) -> str:
    """The signed note of ``checkpoint`` (the log's key first, then any others, in order)."""
    if not signers:
        raise ValueError("sign_checkpoint needs at least one signer")
    return sign_note(checkpoint.body(), *signers)


def open_checkpoint(note: str | bytes, verifiers: Iterable[Verifier], origin: str) -> Checkpoint:
    """Verify a signed checkpoint and return it; raise VerificationError unless all checks pass.

    Steps: the note parses and a known key signed it (every known key's signature verifies); its
    text is a well-formed checkpoint; its origin is ``origin``.
    """
    if not origin:
        raise ValueError("the expected origin must not be empty")
    opened = open_note(note, verifiers)
    checkpoint = parse_checkpoint(opened.text)
    if checkpoint.origin != origin:
        raise VerificationError(f"checkpoint is for origin {checkpoint.origin!r}, expected {origin!r}",
                                step="checkpoint")
    return checkpoint
