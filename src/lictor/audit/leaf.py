"""Audit log leaves: versioned, typed RFC 8785 JSON that holds evidence and never sensitive content.

A decision leaf records what an auditor needs (time, system, risk tier, verdict, rules, policy
revision, constraints, review, a detector summary). Everything that could identify a person or
reveal what the AI system was asked (arguments, content, context, principal, agent, resource, the
client's request id, error texts that may quote values) is represented only by a salted commitment
``base64(SHA-256(salt || canonical(value)))``. The salts and the values live in the encrypted
payload side store; destroying them there (erasure) leaves commitments that can no longer be linked
to anything, while the leaf bytes, and so the tree, stay unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, NoReturn

import msgspec
import orjson

from lictor.audit.canonical import MAX_SAFE_INTEGER, canonical_json
from lictor.errors import VerificationError
from lictor.model import Action, Decision

__all__ = [
    "LEAF_TYPES",
    "LEAF_VERSION",
    "RISK_TIERS",
    "SENSITIVE_FIELDS",
    "commit",
    "decision_leaf",
    "decode_leaf",
    "encode_leaf",
    "leaf_time",
    "new_salts",
    "sensitive_values",
    "verify_commitment",
]

LEAF_VERSION = 1
LEAF_TYPES = frozenset({"decision", "review", "config", "seal", "erasure", "prune"})
RISK_TIERS = ("high", "medium", "low")

#: The parts of a decision that are committed to, never written into a leaf.
SENSITIVE_FIELDS = ("action", "args", "content", "context", "principal", "agent", "resource", "request_id",
                    "constrained_action", "errors")

#: Longest leaf accepted (the tlog-tiles entry bundle format stores a 16-bit length).
MAX_LEAF_BYTES = 65535


def leaf_time(seconds: float | None = None) -> str:
    """A leaf's ``ts``: RFC 3339 UTC to the microsecond with a ``Z`` (now, or at epoch ``seconds``)."""
    moment = datetime.now(UTC) if seconds is None else datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"


_SHA256_STATE: Final = hashlib.sha256()


class _Entropy:
    """Random bytes from the OS, read 64 KiB at a time and each handed out once. A decision needs
    several draws (salts, a record key, nonces), and every ``os.urandom`` is a system call that lets
    go of the interpreter lock, which a busy event loop then waits to get back. A forked child
    starts from a pool of its own, never its parent's."""

    def __init__(self, chunk: int = 65536) -> None:
        self._chunk = chunk
        self._lock = threading.Lock()
        self._pool = b""
        self._at = 0
        self._hooked = False

    def take(self, size: int) -> bytes:
        with self._lock:
            if not self._hooked:
                os.register_at_fork(after_in_child=self._drop)
                self._hooked = True
            if self._at + size > len(self._pool):
                self._pool, self._at = os.urandom(max(self._chunk, size)), 0
            start = self._at
            self._at = start + size
            return self._pool[start:self._at]

    def _drop(self) -> None:
        self._lock = threading.Lock()  # another thread may have held it at the fork
        self._pool, self._at = b"", 0


_ENTROPY = _Entropy()


def random_bytes(size: int) -> bytes:
    """``size`` bytes from the operating system's CSPRNG (through a pool; never handed out twice)."""
    return _ENTROPY.take(size)


def new_salts(fields: tuple[str, ...] = SENSITIVE_FIELDS) -> dict[str, bytes]:
    """Fresh random 32-byte salts, one per committed field (kept only in the payload store)."""
    pool = random_bytes(32 * len(fields))
    return {name: pool[32 * i:32 * (i + 1)] for i, name in enumerate(fields)}


def commit(value: Any, salt: bytes) -> str:
    """``base64(SHA-256(salt || canonical_json(value)))``: hides the value, binds it exactly."""
    if len(salt) < 16:
        raise ValueError("a commitment salt must be at least 16 bytes")
    state = _SHA256_STATE.copy()  # cheaper than hashlib.sha256() (see lictor.audit.merkle)
    state.update(salt + canonical_json(value))
    digest = state.digest()
    return base64.b64encode(digest).decode("ascii")


def verify_commitment(commitment: str, value: Any, salt: bytes) -> None:
    """Raise VerificationError unless ``value`` with ``salt`` is what ``commitment`` commits to."""
    if not hmac.compare_digest(commit(value, salt), commitment):
        raise VerificationError("payload does not match the leaf's commitment", step="commitment")


def _findings_summary(decision: Decision) -> dict[str, int]:
    summary: dict[str, int] = {}
    for finding in decision.findings:
        summary[finding.type] = summary.get(finding.type, 0) + 1
    return dict(sorted(summary.items()))


def sensitive_values(decision: Decision, action: Action) -> dict[str, Any]:
    """The values a decision leaf commits to (one per name in SENSITIVE_FIELDS); they go, with their
    salts, into the encrypted payload and never into the leaf."""
    return {
        "action": action.to_dict(),
        "args": action.args,
        "content": action.content,
        "context": action.context,
        "principal": action.principal.to_dict(),
        "agent": action.agent.to_dict(),
        "resource": action.resource.to_dict(),
        "request_id": action.request_id,
        "constrained_action": decision.action,
        "errors": [e.message for e in decision.errors],
    }


def decision_leaf(decision: Decision, action: Action, *, risk_tier: str, salts: Mapping[str, bytes],
                  values: Mapping[str, Any] | None = None, detail: str = "full",
                  sampling: Mapping[str, Any] | None = None, payload_ref: str | None = None) -> dict[str, Any]:
    """The leaf for one decision. ``salts`` must hold one salt per name in SENSITIVE_FIELDS;
    ``values`` are :func:`sensitive_values` when the caller already has them. ``detail`` is ``full``
    when a payload (``payload_ref``) is kept and ``summary`` when sampling left it out."""
    if risk_tier not in RISK_TIERS:
        raise ValueError(f"risk tier must be one of {RISK_TIERS}, got {risk_tier!r}")
    if detail not in ("full", "summary"):
        raise ValueError("detail is 'full' or 'summary'")
    missing = [name for name in SENSITIVE_FIELDS if name not in salts]
    if missing:
        raise ValueError(f"missing salts for {missing}")
    sensitive = sensitive_values(decision, action) if values is None else values
    leaf: dict[str, Any] = {
        "v": LEAF_VERSION,
        "type": "decision",
        "ts": decision.timestamp,
        "decision_id": decision.decision_id,
        "system": action.system,
        "kind": action.kind,
        "name": action.name,
        "risk_tier": risk_tier,
        "verdict": decision.verdict.name,
        "policy_revision": decision.policy_revision,
        "reasons": [{"policy": r.policy, "rule": r.rule, "verdict": r.verdict.name} for r in decision.reasons],
        "errors": [{"policy": e.policy, "rule": e.rule, "applied": e.applied} for e in decision.errors],
        "constraints": [
            {"policy": c.get("policy"), "rule": c.get("rule"), "op": next(k for k in c if k not in ("policy", "rule"))}
            for c in decision.constraints
        ],
        "approval_required": [
            {"approvers": list(r.approval.approvers), "quorum": r.approval.quorum}
            for r in decision.reasons if r.approval is not None
        ],
        "review": decision.review.get("id") if decision.review else None,
        "findings": _findings_summary(decision),
        "detail": detail,
        "sampling": dict(sampling) if sampling is not None else None,
        "commitments": {name: commit(sensitive[name], salts[name]) for name in SENSITIVE_FIELDS},
        "payload_ref": payload_ref,
    }
    return leaf


def encode_leaf(leaf: Mapping[str, Any]) -> bytes:
    """The exact bytes that are stored and hashed: RFC 8785 canonical JSON of a typed, versioned leaf."""
    if leaf.get("v") != LEAF_VERSION or leaf.get("type") not in LEAF_TYPES:
        raise ValueError(f"a leaf needs v={LEAF_VERSION} and a type in {sorted(LEAF_TYPES)}")
    data = canonical_json(dict(leaf))
    if len(data) > MAX_LEAF_BYTES:
        raise ValueError(f"leaf of {len(data)} bytes exceeds {MAX_LEAF_BYTES}")
    return data


class _Numbers:
    """Notes, while JSON is parsed, whether any number leaves the range where Python's own compact
    JSON output is already RFC 8785 (floats; integers beyond ±(2^53 - 1))."""

    __slots__ = ("plain",)

    def __init__(self) -> None:
        self.plain = True

    def parse_int(self, text: str) -> int:
        value = int(text)
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            self.plain = False
        return value

    def parse_float(self, text: str) -> float:
        self.plain = False
        return float(text)


def _is_canonical(leaf: dict[str, Any], data: bytes, numbers: _Numbers) -> bool:
    """Whether ``data`` is exactly RFC 8785 for ``leaf``.

    For ASCII text without floats or large integers, Python's compact sorted JSON (C-accelerated)
    is byte for byte what RFC 8785 prescribes: the same key order (code points equal UTF-16 units in
    ASCII), the same escapes, the same integers. Everything else takes the full canonicaliser.
    """
    if numbers.plain and data.isascii():
        return json.dumps(leaf, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode() == data
    return canonical_json(leaf) == data


#: orjson's compact output with keys sorted by code point, refusing integers beyond ±(2**53 - 1).
_PLAIN_OPTIONS: Final = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_BELOW_FOUR_BYTE_LEAD: Final = bytes(range(0xF0))


class _Fraction(ValueError):
    """A number with a fraction or an exponent: left to the full canonicaliser."""


def _refuse_fraction(text: str) -> NoReturn:
    raise _Fraction(text)


_decode_without_fractions: Final = msgspec.json.Decoder(float_hook=_refuse_fraction).decode


def _plain_canonical(data: bytes) -> dict[str, Any] | None:
    """The leaf that ``data`` holds when a fast check proves ``data`` to be RFC 8785; None when it
    cannot tell (then the full check runs, and accepts or names the fault).

    The check: ``data`` parses, with no number holding a fraction or an exponent (msgspec's decoder
    hands every such literal to a hook, which refuses it), to a JSON object that orjson serialises
    back to exactly ``data``. For such values orjson's compact, key-sorted output is RFC 8785 byte
    for byte: the same escapes (``\\b \\t \\n \\f \\r``, lower-case ``\\u00xx`` for the other controls,
    ``\\"`` and ``\\\\``; everything else, non-ASCII included, as UTF-8) and the same integers (it refuses
    those beyond ±(2**53 - 1), as the canonicaliser does). Its keys are sorted by code point, which
    is RFC 8785's UTF-16 order unless a key holds a character beyond U+FFFF, so text with a
    four-byte UTF-8 sequence is left to the full check. tests/audit/test_leaf.py holds this to the
    canonicaliser, to a second RFC 8785 implementation and to the full check.
    """
    if not data.isascii() and data.translate(None, _BELOW_FOUR_BYTE_LEAD):
        return None
    try:
        leaf = _decode_without_fractions(data)
        if type(leaf) is not dict or orjson.dumps(leaf, option=_PLAIN_OPTIONS) != data:
            return None
    except (ValueError, TypeError, RecursionError):  # the decoders' and encoder's errors, _Fraction
        return None
    return leaf


def _check_kind(leaf: dict[str, Any], index: int | None) -> None:
    if leaf.get("v") != LEAF_VERSION:
        raise VerificationError(f"unknown leaf version {leaf.get('v')!r}", step="leaf", index=index)
    if leaf.get("type") not in LEAF_TYPES:
        raise VerificationError(f"unknown leaf type {leaf.get('type')!r}", step="leaf", index=index)


def decode_leaf(data: bytes, *, index: int | None = None) -> dict[str, Any]:
    """Parse stored leaf bytes, failing closed: the bytes must be canonical, the version and type
    known. Raises VerificationError naming the index."""
    leaf = _plain_canonical(data)
    if leaf is None:  # undecided by the fast check: the full check accepts or names the fault
        return _decode_checked(data, index)
    if leaf.get("v") != LEAF_VERSION or leaf.get("type") not in LEAF_TYPES:
        _check_kind(leaf, index)  # raises, naming which
    return leaf


def _decode_checked(data: bytes, index: int | None) -> dict[str, Any]:
    numbers = _Numbers()
    try:
        leaf = json.loads(data.decode("utf-8"), parse_int=numbers.parse_int, parse_float=numbers.parse_float)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        raise VerificationError(f"leaf is not JSON: {exc}", step="leaf", index=index) from None
    if not isinstance(leaf, dict):
        raise VerificationError("leaf is not a JSON object", step="leaf", index=index)
    _check_kind(leaf, index)
    try:
        canonical = _is_canonical(leaf, data, numbers)
    except (TypeError, ValueError, RecursionError) as exc:
        raise VerificationError(f"leaf cannot be canonicalised: {exc}", step="leaf", index=index) from None
    if not canonical:
        raise VerificationError("leaf bytes are not RFC 8785 canonical", step="leaf", index=index)
    return leaf
