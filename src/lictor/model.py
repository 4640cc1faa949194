"""The kernel's data: Action (what an AI system wants to do) and Decision (what Lictor answers).

Both are frozen dataclasses that parse strictly from JSON-shaped data (``from_dict``: an unknown field, a
wrong type or a missing required field raises :class:`~lictor.errors.InputError` naming the JSON path)
and serialise back losslessly (``to_dict``). The contract is documented in docs/policy-language.md.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lictor.errors import InputError

__all__ = [
    "KINDS",
    "MAX_SAFE_INTEGER",
    "Action",
    "Agent",
    "ApprovalRequirement",
    "Decision",
    "Finding",
    "Principal",
    "Reason",
    "Resource",
    "RuleError",
    "Verdict",
    "data_subjects",
]

JSON = Any

#: The largest integer JSON carries exactly everywhere (I-JSON); larger ones are refused.
MAX_SAFE_INTEGER = 2**53 - 1

#: Action kinds; ``name`` is required for the ones in NAMED_KINDS.
KINDS = ("tool_call", "mcp_call", "llm_request", "llm_response", "data_access", "message")
NAMED_KINDS = frozenset({"tool_call", "mcp_call", "data_access"})


class Verdict(enum.IntEnum):
    """Verdicts ordered from least to most restrictive; ``max()`` of several is the combined verdict."""

    ALLOW = 0
    LOG = 1
    CONSTRAIN = 2
    BLOCK = 3

    def __str__(self) -> str:
        return self.name

    @classmethod
    def parse(cls, value: object, *, path: str = "$") -> Verdict:
        if isinstance(value, str) and value.upper() in cls.__members__ and value == value.upper():
            return cls[value]
        raise InputError(f"expected one of ALLOW, LOG, CONSTRAIN, BLOCK, got {value!r}", path=path)


# --------------------------------------------------------------------------- strict JSON readers


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _object(value: object, path: str, known: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InputError(f"expected an object, got {_type_name(value)}", path=path)
    for key in value:
        if not isinstance(key, str):
            raise InputError(f"object keys must be strings, got {key!r}", path=path)
        if key not in known:
            allowed = ", ".join(sorted(known))
            raise InputError(f"unknown field {key!r} (allowed: {allowed})", path=f"{path}.{key}")
    return value


def _str(value: object, path: str, *, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InputError(f"expected a string, got {_type_name(value)}", path=path)
    return value


def _strings(value: object, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InputError(f"expected an array of strings, got {_type_name(value)}", path=path)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise InputError(f"expected a string, got {_type_name(item)}", path=f"{path}[{i}]")
    return tuple(value)


def _json(value: object, path: str, depth: int = 0) -> JSON:
    """Check that ``value`` is plain JSON data (no NaN, no non-string keys) and return it."""
    if depth > 64:
        raise InputError("nested deeper than 64 levels", path=path)
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise InputError("integers must be within ±(2^53 - 1) (I-JSON, RFC 7493), so that the audit "
                             "log records them exactly; send larger numbers as strings", path=path)
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError("numbers must be finite", path=path)
        return value
    if isinstance(value, list):
        return [_json(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise InputError(f"object keys must be strings, got {k!r}", path=path)
            out[k] = _json(v, f"{path}.{k}", depth + 1)
        return out
    raise InputError(f"expected JSON data, got {_type_name(value)}", path=path)


def _json_object(value: object, path: str) -> dict[str, JSON]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"expected an object, got {_type_name(value)}", path=path)
    result: dict[str, JSON] = _json(value, path)
    return result


# --------------------------------------------------------------------------- action


@dataclass(frozen=True, slots=True)
class Agent:
    """The AI agent acting."""

    id: str | None = None
    attrs: dict[str, JSON] = field(default_factory=dict)

    _FIELDS = frozenset({"id", "attrs"})

    @classmethod
    def from_dict(cls, data: object, path: str = "$.agent") -> Agent:
        obj = _object(data, path, cls._FIELDS)
        return cls(id=_str(obj.get("id"), f"{path}.id"), attrs=_json_object(obj.get("attrs"), f"{path}.attrs"))

    def to_dict(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {}
        if self.id is not None:
            out["id"] = self.id
        if self.attrs:
            out["attrs"] = self.attrs
        return out


@dataclass(frozen=True, slots=True)
class Principal:
    """The person (or service) on whose behalf the agent acts, with business roles."""

    id: str | None = None
    roles: tuple[str, ...] = ()
    attrs: dict[str, JSON] = field(default_factory=dict)

    _FIELDS = frozenset({"id", "roles", "attrs"})

    @classmethod
    def from_dict(cls, data: object, path: str = "$.principal") -> Principal:
        obj = _object(data, path, cls._FIELDS)
        return cls(
            id=_str(obj.get("id"), f"{path}.id"),
            roles=_strings(obj.get("roles"), f"{path}.roles"),
            attrs=_json_object(obj.get("attrs"), f"{path}.attrs"),
        )

    def to_dict(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {}
        if self.id is not None:
            out["id"] = self.id
        if self.roles:
            out["roles"] = list(self.roles)
        if self.attrs:
            out["attrs"] = self.attrs
        return out


@dataclass(frozen=True, slots=True)
class Resource:
    """The data or object acted on, with its sensitivity classification and labels."""

    id: str | None = None
    classification: str | None = None
    labels: tuple[str, ...] = ()
    attrs: dict[str, JSON] = field(default_factory=dict)

    _FIELDS = frozenset({"id", "classification", "labels", "attrs"})

    @classmethod
    def from_dict(cls, data: object, path: str = "$.resource") -> Resource:
        obj = _object(data, path, cls._FIELDS)
        return cls(
            id=_str(obj.get("id"), f"{path}.id"),
            classification=_str(obj.get("classification"), f"{path}.classification"),
            labels=_strings(obj.get("labels"), f"{path}.labels"),
            attrs=_json_object(obj.get("attrs"), f"{path}.attrs"),
        )

    def to_dict(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {}
        if self.id is not None:
            out["id"] = self.id
        if self.classification is not None:
            out["classification"] = self.classification
        if self.labels:
            out["labels"] = list(self.labels)
        if self.attrs:
            out["attrs"] = self.attrs
        return out


def _content(value: object, path: str) -> str | list[JSON] | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        for i, message in enumerate(value):
            mpath = f"{path}[{i}]"
            if not isinstance(message, dict):
                raise InputError(f"expected a chat message object, got {_type_name(message)}", path=mpath)
            if not isinstance(message.get("role"), str):
                raise InputError("a chat message needs a string 'role'", path=f"{mpath}.role")
        checked: list[JSON] = _json(value, path)
        return checked
    raise InputError(
        f"expected a string or an array of chat messages, got {_type_name(value)}", path=path
    )


@dataclass(frozen=True, slots=True)
class Action:
    """What an AI system wants to do. Build it with :meth:`from_dict` from untrusted JSON."""

    system: str
    kind: str
    name: str | None = None
    args: dict[str, JSON] = field(default_factory=dict)
    agent: Agent = field(default_factory=Agent)
    principal: Principal = field(default_factory=Principal)
    resource: Resource = field(default_factory=Resource)
    content: str | list[JSON] | None = None
    context: dict[str, JSON] = field(default_factory=dict)
    request_id: str | None = None
    approval: str | None = None

    _FIELDS = frozenset(
        {"system", "kind", "name", "args", "agent", "principal", "resource", "content", "context",
         "request_id", "approval"}
    )

    @classmethod
    def from_dict(cls, data: object, path: str = "$") -> Action:
        """Parse an action from JSON data; raises InputError naming the JSON path of the first problem."""
        obj = _object(data, path, cls._FIELDS)
        for required in ("system", "kind"):
            if obj.get(required) is None:
                raise InputError(f"missing required field {required!r}", path=f"{path}.{required}")
        system = _str(obj["system"], f"{path}.system", optional=False)
        kind = _str(obj["kind"], f"{path}.kind", optional=False)
        assert system is not None and kind is not None
        if not system:
            raise InputError("must not be empty", path=f"{path}.system")
        if kind not in KINDS:
            raise InputError(f"unknown kind {kind!r} (allowed: {', '.join(KINDS)})", path=f"{path}.kind")
        name = _str(obj.get("name"), f"{path}.name")
        if kind in NAMED_KINDS and not name:
            raise InputError(f"missing required field 'name' for kind {kind!r}", path=f"{path}.name")
        return cls(
            system=system,
            kind=kind,
            name=name,
            args=_json_object(obj.get("args"), f"{path}.args"),
            agent=Agent.from_dict(obj["agent"], f"{path}.agent") if obj.get("agent") is not None else Agent(),
            principal=(
                Principal.from_dict(obj["principal"], f"{path}.principal")
                if obj.get("principal") is not None
                else Principal()
            ),
            resource=(
                Resource.from_dict(obj["resource"], f"{path}.resource")
                if obj.get("resource") is not None
                else Resource()
            ),
            content=_content(obj.get("content"), f"{path}.content"),
            context=_json_object(obj.get("context"), f"{path}.context"),
            request_id=_str(obj.get("request_id"), f"{path}.request_id"),
            approval=_str(obj.get("approval"), f"{path}.approval"),
        )

    def to_dict(self) -> dict[str, JSON]:
        """The action as JSON data; ``Action.from_dict(a.to_dict()) == a``. Empty parts are omitted."""
        out: dict[str, JSON] = {"system": self.system, "kind": self.kind}
        if self.name is not None:
            out["name"] = self.name
        if self.args:
            out["args"] = self.args
        for key, part in (("agent", self.agent), ("principal", self.principal), ("resource", self.resource)):
            data = part.to_dict()
            if data:
                out[key] = data
        if self.content is not None:
            out["content"] = self.content
        if self.context:
            out["context"] = self.context
        if self.request_id is not None:
            out["request_id"] = self.request_id
        if self.approval is not None:
            out["approval"] = self.approval
        return out


# --------------------------------------------------------------------------- findings


@dataclass(frozen=True, slots=True)
class Finding:
    """A fact a content detector found: its type (``pii.email``), where (``args.note``), span and score."""

    type: str
    path: str = "content"
    start: int = 0
    end: int = 0
    score: float = 1.0
    detector: str | None = None
    version: str | None = None

    _FIELDS = frozenset({"type", "path", "start", "end", "score", "detector", "version"})

    @classmethod
    def from_dict(cls, data: object, path: str = "$") -> Finding:
        obj = _object(data, path, cls._FIELDS)
        ftype = _str(obj.get("type"), f"{path}.type", optional=False)
        assert ftype is not None
        values: dict[str, Any] = {"type": ftype}
        for key in ("start", "end"):
            if key in obj:
                v = obj[key]
                if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                    raise InputError("expected a non-negative integer", path=f"{path}.{key}")
                values[key] = v
        if "score" in obj:
            s = obj["score"]
            if not isinstance(s, (int, float)) or isinstance(s, bool) or not 0 <= s <= 1:
                raise InputError("expected a number between 0 and 1", path=f"{path}.score")
            values["score"] = float(s)
        for key in ("path", "detector", "version"):
            if key in obj:
                values[key] = _str(obj[key], f"{path}.{key}", optional=False)
        return cls(**values)

    def to_dict(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {"type": self.type, "path": self.path, "start": self.start, "end": self.end,
                                "score": self.score}
        if self.detector is not None:
            out["detector"] = self.detector
        if self.version is not None:
            out["version"] = self.version
        return out


# --------------------------------------------------------------------------- decision


@dataclass(frozen=True, slots=True)
class ApprovalRequirement:
    """What a matched ``approval`` rule asks for: who may approve, how many, for how long, how many
    times the approval may be used, and who else may act once ``escalate_after_seconds`` pass
    undecided (``escalate_to``)."""

    approvers: tuple[str, ...]
    quorum: int = 1
    ttl_seconds: int = 86400
    uses: int = 1
    escalate_after_seconds: int | None = None
    escalate_to: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {"approvers": list(self.approvers), "quorum": self.quorum,
                                "ttl_seconds": self.ttl_seconds}
        if self.uses != 1:  # the defaults are left out: older records keep their exact JSON
            out["uses"] = self.uses
        if self.escalate_after_seconds is not None:
            out["escalate_after_seconds"] = self.escalate_after_seconds
            out["escalate_to"] = list(self.escalate_to)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ApprovalRequirement:
        after = data.get("escalate_after_seconds")
        return cls(tuple(data["approvers"]), int(data["quorum"]), int(data["ttl_seconds"]),
                   int(data.get("uses", 1)), int(after) if after is not None else None,
                   tuple(data.get("escalate_to", ())))


@dataclass(frozen=True, slots=True)
class Reason:
    """One matched rule and the verdict it contributed."""

    policy: str
    rule: str
    verdict: Verdict
    message: str = ""
    approval: ApprovalRequirement | None = None

    def to_dict(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {"policy": self.policy, "rule": self.rule, "verdict": self.verdict.name,
                                "message": self.message}
        if self.approval is not None:
            out["approval"] = self.approval.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reason:
        approval = data.get("approval")
        return cls(
            policy=data["policy"], rule=data["rule"], verdict=Verdict[data["verdict"]],
            message=data.get("message", ""),
            approval=ApprovalRequirement.from_dict(approval) if approval else None,
        )


@dataclass(frozen=True, slots=True)
class RuleError:
    """A condition or obligation that could not be evaluated, and what the rule did about it."""

    policy: str
    rule: str
    message: str
    applied: bool
    location: str = ""

    def to_dict(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {"policy": self.policy, "rule": self.rule, "message": self.message,
                                "applied": self.applied}
        if self.location:
            out["location"] = self.location
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleError:
        return cls(data["policy"], data["rule"], data["message"], bool(data["applied"]),
                   data.get("location", ""))


def data_subjects(action: Action) -> list[str]:
    """The people an action concerns: its principal, and any ids the caller lists in
    ``context.data_subjects`` (for example the customer a credit decision is about). Erasure finds a
    person's payloads and review records by these ids."""
    subjects = [action.principal.id] if action.principal.id else []
    listed = action.context.get("data_subjects") if isinstance(action.context, dict) else None
    if isinstance(listed, list):
        subjects.extend(s for s in listed if isinstance(s, str) and s)
    return list(dict.fromkeys(subjects))


@dataclass(frozen=True, slots=True)
class Decision:
    """What Lictor answers for one action: the verdict, its reasons and the policy revision applied."""

    decision_id: str
    verdict: Verdict
    reasons: tuple[Reason, ...] = ()
    errors: tuple[RuleError, ...] = ()
    constraints: tuple[dict[str, JSON], ...] = ()
    action: dict[str, JSON] | None = None
    findings: tuple[Finding, ...] = ()
    review: dict[str, JSON] | None = None
    audit: dict[str, JSON] | None = None
    policy_revision: str = ""
    timestamp: str = ""
    duration_us: int = 0

    @property
    def approval_required(self) -> tuple[ApprovalRequirement, ...]:
        """The approval requirements of the matched ``approval`` rules (what a review asks for)."""
        return tuple(r.approval for r in self.reasons if r.approval is not None)

    def to_dict(self) -> dict[str, JSON]:
        return {
            "decision_id": self.decision_id,
            "verdict": self.verdict.name,
            "reasons": [r.to_dict() for r in self.reasons],
            "errors": [e.to_dict() for e in self.errors],
            "constraints": list(self.constraints),
            "action": self.action,
            "findings": [f.to_dict() for f in self.findings],
            "review": self.review,
            "audit": self.audit,
            "policy_revision": self.policy_revision,
            "timestamp": self.timestamp,
            "duration_us": self.duration_us,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        return cls(
            decision_id=data["decision_id"],
            verdict=Verdict[data["verdict"]],
            reasons=tuple(Reason.from_dict(r) for r in data.get("reasons", ())),
            errors=tuple(RuleError.from_dict(e) for e in data.get("errors", ())),
            constraints=tuple(data.get("constraints", ())),
            action=data.get("action"),
            findings=tuple(Finding.from_dict(f) for f in data.get("findings", ())),
            review=data.get("review"),
            audit=data.get("audit"),
            policy_revision=data.get("policy_revision", ""),
            timestamp=data.get("timestamp", ""),
            duration_us=int(data.get("duration_us", 0)),
        )
