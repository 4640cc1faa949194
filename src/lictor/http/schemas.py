"""The OpenAPI descriptions of request bodies and error responses that the routes parse by hand.

The routes read bodies themselves (to count their bytes and to name the JSON path of a fault in
the model's own words), so the schemas here document the same rules as :class:`lictor.model.Action`.
"""

from __future__ import annotations

from typing import Any

from lictor.access import SCOPES
from lictor.model import KINDS

__all__ = ["ACTION_SCHEMA", "KEY_REQUEST_SCHEMA", "PROBLEM_SCHEMA", "problem_responses"]

_STRINGS = {"type": "array", "items": {"type": "string"}}
_OBJECT = {"type": "object", "additionalProperties": True}

ACTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Action",
    "description": "What an AI system wants to do. Unknown fields are refused.",
    "required": ["system", "kind"],
    "additionalProperties": False,
    "properties": {
        "system": {"type": "string", "minLength": 1, "description": "The AI system's id."},
        "kind": {"type": "string", "enum": list(KINDS)},
        "name": {"type": ["string", "null"], "description": "Required for tool_call, mcp_call and data_access."},
        "args": _OBJECT,
        "agent": {"type": "object", "additionalProperties": False,
                  "properties": {"id": {"type": ["string", "null"]}, "attrs": _OBJECT}},
        "principal": {"type": "object", "additionalProperties": False,
                      "properties": {"id": {"type": ["string", "null"]}, "roles": _STRINGS, "attrs": _OBJECT}},
        "resource": {"type": "object", "additionalProperties": False,
                     "properties": {"id": {"type": ["string", "null"]}, "classification": {"type": ["string", "null"]},
                                    "labels": _STRINGS, "attrs": _OBJECT}},
        "content": {"description": "Free text or a list of chat messages.",
                    "anyOf": [{"type": "string"}, {"type": "array"}, {"type": "null"}]},
        "context": _OBJECT,
        "request_id": {"type": ["string", "null"], "description": "A client id; a repeat gets the first decision."},
        "approval": {"type": ["string", "null"], "description": "A review id whose approval the caller presents."},
    },
}

KEY_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "KeyRequest",
    "required": ["scope"],
    "additionalProperties": False,
    "properties": {"scope": {"type": "string", "enum": list(SCOPES)}, "user": {"type": ["string", "null"]},
                   "roles": _STRINGS},
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail", "instance"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "required": ["path", "message"], "properties": {
            "path": {"type": "string"}, "message": {"type": "string"}}}},
    },
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entries of the problem documents a route may answer with."""
    return {status: {"description": "A problem", "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}}}
            for status in statuses}
