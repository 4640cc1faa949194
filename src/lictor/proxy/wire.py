"""The OpenAI wire format as the proxy speaks it: error bodies the SDKs raise, and server-sent events.

Every error the proxy answers is ``{"error": {"message", "type", "code", "param"}}`` (the shape the
OpenAI SDKs turn into an ``APIError`` subclass by HTTP status), with a ``lictor`` member inside
``error`` carrying the decision when a policy was the cause. Streams are ``data: {json}\\n\\n``
events ending with ``data: [DONE]\\n\\n``; an error in the middle of a stream is one
``data: {"error": ...}`` event, which the SDKs raise as an ``APIError``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import orjson

from lictor.model import Decision

__all__ = ["DONE", "ProxyError", "blocked_error", "decision_summary", "dumps", "loads", "sse", "sse_data", "why"]

#: The last event of every stream.
DONE = b"data: [DONE]\n\n"

#: Nineteen digits in a row: a number orjson may read as a float where Python keeps an integer (beyond
#: 64 bits), so such documents go to the standard parser (digits inside a string do no harm).
_LONG_NUMBER = re.compile(rb"\d{19}")


def loads(data: bytes) -> Any:
    """A JSON document read as the standard parser reads it (orjson when it may, being several times
    faster); raises ValueError when ``data`` is not JSON."""
    if not _LONG_NUMBER.search(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # NaN, lone surrogates, UTF-16 ...: the standard parser reads them or says what is wrong
    return json.loads(data)


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON (orjson, or the standard encoder for what orjson refuses, such
    as an integer beyond 64 bits)."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class ProxyError(Exception):
    """An error answered in the OpenAI shape: HTTP ``status``, ``message``, ``type`` and ``code``;
    ``lictor`` adds the decision that caused it, when one did."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None,
                 lictor: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.lictor = lictor

    def body(self) -> dict[str, Any]:
        """The response body: ``{"error": {...}}``."""
        error: dict[str, Any] = {"message": self.message, "type": self.type, "code": self.code,
                                 "param": self.param}
        if self.lictor is not None:
            error["lictor"] = self.lictor
        return {"error": error}


def decision_summary(decision: Decision) -> dict[str, Any]:
    """What a client is told of a decision: its id, verdict, reasons, review and audit index (never
    the findings' spans or the constrained action, which may quote what was redacted)."""
    summary: dict[str, Any] = {"decision_id": decision.decision_id, "verdict": decision.verdict.name,
                               "reasons": [{"policy": r.policy, "rule": r.rule, "verdict": r.verdict.name,
                                            "message": r.message} for r in decision.reasons]}
    if decision.errors:
        summary["errors"] = [e.message for e in decision.errors]
    if decision.review is not None:
        summary["review"] = decision.review
    if decision.audit is not None:
        summary["audit_index"] = decision.audit.get("index")
    return summary


def why(decision: Decision) -> str:
    """One line saying why a decision is what it is: its reasons' messages, or its rules' names."""
    parts = [r.message or f"{r.policy}/{r.rule}" for r in decision.reasons if r.verdict >= decision.verdict]
    parts += [e.message for e in decision.errors if e.applied]
    return "; ".join(dict.fromkeys(parts)) or "no rule allowed it"


def blocked_error(decision: Decision, what: str) -> ProxyError:
    """The error for a BLOCK of ``what`` (``the request``, ``the response``): 403, with the review to
    approve when a person may lift it."""
    review = decision.review or {}
    if not decision.reasons and decision.errors:  # no rule blocked it: Lictor failed, and failed closed
        return ProxyError(503, f"Lictor could not decide or record {what}, so it is blocked (fail closed): "
                          f"{why(decision)} (decision {decision.decision_id}).", type="lictor_error",
                          code="decision_failed", lictor=decision_summary(decision))
    if review.get("id") and review.get("status") == "pending":
        message = (f"Lictor held {what} for approval: {why(decision)}. Review {review['id']} is pending; once "
                   f"it is approved, send the same request again with the header 'Lictor-Approval: "
                   f"{review['id']}'.")
        code = "approval_required"
    else:
        message = f"Lictor blocked {what}: {why(decision)} (decision {decision.decision_id})."
        code = "policy_blocked"
    return ProxyError(403, message, type="policy_violation", code=code, lictor=decision_summary(decision))


def sse_data(payload: dict[str, Any]) -> bytes:
    """One server-sent event carrying ``payload`` as JSON."""
    return b"data: " + dumps(payload) + b"\n\n"


async def sse(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str | None, str]]:
    """Server-sent events from text lines: ``(event name or None, data)`` per event."""
    event: str | None = None
    data: list[str] = []
    async for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = None, []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "data":
                data.append(value)
            elif field == "event":
                event = value
    if data:
        yield event, "\n".join(data)
