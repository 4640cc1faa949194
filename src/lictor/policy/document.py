"""Policy documents: validate YAML data into Policy and PolicyTest objects, collecting every problem.

Each problem becomes a Diagnostic at the offending key or value; nothing stops at the first error.
CEL conditions are compiled here too (the compiler needs their positions to report
``file:line:column`` inside a multi-line ``when``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lictor.errors import Diagnostic
from lictor.model import KINDS, Verdict
from lictor.policy.cel import CelCompileError, CelProgram, compile_cel
from lictor.policy.celfuncs import compile_regex, parse_duration, parse_timestamp
from lictor.policy.celrt import CelEvalError
from lictor.policy.source import Located, SourceDocument

__all__ = [
    "API_VERSION",
    "CEL_VARIABLES",
    "FIELDS",
    "Approval",
    "Limit",
    "Obligation",
    "Policy",
    "PolicyTest",
    "Rule",
    "Target",
    "TestCase",
    "parse_document",
]

API_VERSION = "lictor/v1"

#: The names a condition may use.
CEL_VARIABLES = frozenset(
    {"system", "kind", "name", "args", "agent", "principal", "resource", "content", "context", "findings",
     "now"}
)

#: Every field the policy language accepts, by object (kept in step with docs/policy-language.md).
FIELDS: dict[str, tuple[str, ...]] = {
    "document": ("apiVersion", "kind", "metadata", "spec"),
    "metadata": ("name", "description", "controls", "labels"),
    "policy.spec": ("target", "rules"),
    "target": ("systems", "kinds", "names", "agents", "roles"),
    "rule": ("name", "when", "verdict", "message", "approval", "constrain", "limit", "on_error"),
    "approval": ("approvers", "quorum", "ttl", "uses", "escalate_after", "escalate_to"),
    "limit": ("key", "max", "per"),
    "constrain": ("redact", "clamp", "remove", "set"),
    "redact": ("paths", "pattern", "findings", "replacement", "mode"),
    "clamp": ("path", "min", "max"),
    "set": ("path", "value"),
    "test.spec": ("now", "cases"),
    "case": ("name", "action", "findings", "repeat", "expect"),
    "expect": ("verdict", "rules", "action", "errors"),
}

#: How ``redact`` rewrites what it removes (``replacement`` gives fixed text instead).
REDACT_MODES = ("label", "mask", "hash")

_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}\Z")
_PATH_RE = re.compile(r"(args|context)(\.[A-Za-z_][A-Za-z0-9_-]*|\[\d+\])+\Z|content\Z")


_NOWHERE = Located("<memory>", 1, 1)


@dataclass(frozen=True, slots=True)
class Target:
    systems: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, list[str]]:
        return {k: list(getattr(self, k)) for k in FIELDS["target"] if getattr(self, k)}


@dataclass(frozen=True, slots=True)
class Approval:
    approvers: tuple[str, ...]
    quorum: int = 1
    ttl_seconds: int = 86400
    uses: int = 1
    escalate_after_seconds: int | None = None
    escalate_to: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"approvers": list(self.approvers), "quorum": self.quorum,
                               "ttl_seconds": self.ttl_seconds}
        if self.uses != 1:  # defaults left out, so the revision of existing policies does not change
            out["uses"] = self.uses
        if self.escalate_after_seconds is not None:
            out["escalate_after_seconds"] = self.escalate_after_seconds
            out["escalate_to"] = list(self.escalate_to)
        return out


@dataclass(frozen=True, slots=True)
class Limit:
    key: str
    max: int
    per_seconds: float
    key_program: CelProgram | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Obligation:
    """One CONSTRAIN step: ``op`` is redact, clamp, remove or set; ``spec`` its validated arguments."""

    op: str
    spec: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    verdict: Verdict
    when: str | None = None
    message: str = ""
    approval: Approval | None = None
    constrain: tuple[Obligation, ...] = ()
    limit: Limit | None = None
    on_error: str = "apply"
    location: Located = _NOWHERE
    program: CelProgram | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "verdict": self.verdict.name, "on_error": self.on_error}
        if self.when is not None:
            out["when"] = self.when
        if self.message:
            out["message"] = self.message
        if self.approval:
            out["approval"] = self.approval.to_dict()
        if self.constrain:
            out["constrain"] = [{o.op: o.spec} for o in self.constrain]
        if self.limit:
            out["limit"] = {"key": self.limit.key, "max": self.limit.max, "per_seconds": self.limit.per_seconds}
        return out


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    rules: tuple[Rule, ...]
    target: Target = Target()
    description: str = ""
    controls: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    location: Located = _NOWHERE

    def to_dict(self) -> dict[str, Any]:
        """Normalised content (no file positions): what the policy revision hashes."""
        return {
            "name": self.name,
            "description": self.description,
            "controls": list(self.controls),
            "labels": dict(sorted(self.labels.items())),
            "target": self.target.to_dict(),
            "rules": [r.to_dict() for r in self.rules],
        }


@dataclass(frozen=True, slots=True)
class TestCase:
    name: str
    action: dict[str, Any]
    expect: dict[str, Any]
    findings: tuple[dict[str, Any], ...] = ()
    repeat: int = 1
    location: Located = _NOWHERE


@dataclass(frozen=True, slots=True)
class PolicyTest:
    name: str
    cases: tuple[TestCase, ...]
    now: datetime | None = None
    location: Located = _NOWHERE


# --------------------------------------------------------------------------- reader


class _Reader:
    """Reads one document; every check appends a Diagnostic and returns a safe fallback."""

    def __init__(self, doc: SourceDocument, errors: list[Diagnostic]) -> None:
        self.doc = doc
        self.errors = errors

    def error(self, path: tuple[str | int, ...], message: str, *, key: bool = False) -> None:
        loc = self.doc.key_at(path) if key else self.doc.at(path)
        self.errors.append(loc.diagnostic(message))

    def mapping(self, value: Any, path: tuple[str | int, ...], allowed: tuple[str, ...], what: str,
                required: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.error(path, f"{what} must be a mapping, got {_kind(value)}")
            return {}
        for key in value:
            if key not in allowed:
                hint = _suggest(str(key), allowed)
                self.error((*path, key), f"unknown field {key!r} in {what}{hint}", key=True)
        for key in required:
            if key not in value:
                self.error(path, f"{what} is missing required field {key!r}")
        return value

    def string(self, value: Any, path: tuple[str | int, ...], what: str, *, empty: bool = False) -> str | None:
        if not isinstance(value, str):
            self.error(path, f"{what} must be a string, got {_kind(value)}")
            return None
        if not empty and not value.strip():
            self.error(path, f"{what} must not be empty")
            return None
        return value

    def strings(self, value: Any, path: tuple[str | int, ...], what: str) -> tuple[str, ...]:
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list):
            self.error(path, f"{what} must be a list of strings, got {_kind(value)}")
            return ()
        out = []
        for i, item in enumerate(value):
            s = self.string(item, (*path, i), f"{what}[{i}]")
            if s is not None:
                out.append(s)
        return tuple(out)

    def integer(self, value: Any, path: tuple[str | int, ...], what: str, minimum: int) -> int | None:
        if not isinstance(value, int) or isinstance(value, bool):
            self.error(path, f"{what} must be an integer, got {_kind(value)}")
            return None
        if value < minimum:
            self.error(path, f"{what} must be at least {minimum}")
            return None
        return value

    def number(self, value: Any, path: tuple[str | int, ...], what: str) -> float | int | None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            self.error(path, f"{what} must be a number, got {_kind(value)}")
            return None
        return value

    def duration(self, value: Any, path: tuple[str | int, ...], what: str) -> float | None:
        text = self.string(value, path, what)
        if text is None:
            return None
        text = text.strip()
        days = re.fullmatch(r"(\d+)d", text)  # whole days are allowed here, though not in CEL
        try:
            seconds = int(days.group(1)) * 86400.0 if days else parse_duration(text).total_seconds()
        except CelEvalError:
            seconds = -1.0
        if seconds <= 0:
            self.error(path, f"{what} must be a positive duration such as 30s, 15m, 4h or 1d, got {text!r}")
            return None
        return seconds

    def cel(self, source: str, path: tuple[str | int, ...]) -> CelProgram | None:
        try:
            return compile_cel(source, variables=CEL_VARIABLES)
        except CelCompileError as exc:
            self.errors.append(self._cel_location(source, path, exc).diagnostic(exc.message))
            return None

    def _cel_location(self, source: str, path: tuple[str | int, ...], exc: CelCompileError) -> Located:
        """Map a position inside the expression to the file, exactly for plain and block scalars."""
        base = self.doc.at(path)
        lines = self.doc_lines()
        if 0 < base.line <= len(lines):
            first = lines[base.line - 1]
            start_col = base.column - 1
            text_at = first[start_col:]
            if text_at.startswith(("|", ">")):
                # block scalar: content starts on the next line, at the block's indentation
                first_content = next((ln for ln in lines[base.line:] if ln.strip()), "")
                indent = len(first_content) - len(first_content.lstrip())
                line_no = base.line + exc.line if text_at.startswith("|") else base.line + 1
                return Located(base.file, line_no, indent + exc.column)
            elif exc.line == 1:
                quote = 1 if text_at[:1] in ("'", '"') else 0
                return Located(base.file, base.line, base.column + quote + exc.column - 1)
        return Located(base.file, base.line + exc.line - 1, exc.column if exc.line > 1 else base.column)

    _lines_cache: list[str] | None = None

    def doc_lines(self) -> list[str]:
        if self._lines_cache is None:
            try:
                with open(self.doc.file, encoding="utf-8") as fh:
                    self._lines_cache = fh.read().splitlines()
            except OSError:
                self._lines_cache = []
        return self._lines_cache


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a mapping"}.get(type(value), type(value).__name__)


def _suggest(key: str, allowed: tuple[str, ...]) -> str:
    import difflib

    close = difflib.get_close_matches(key, allowed, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(allowed)})"


# --------------------------------------------------------------------------- documents


def parse_document(doc: SourceDocument, errors: list[Diagnostic]) -> Policy | PolicyTest | None:
    """Validate one document into a Policy or PolicyTest; None when it has errors (all reported)."""
    r = _Reader(doc, errors)
    before = len(errors)
    data = r.mapping(doc.data, (), FIELDS["document"], "document", required=("apiVersion", "kind", "metadata", "spec"))
    if not data:
        return None
    if "apiVersion" in data and data["apiVersion"] != API_VERSION:
        r.error(("apiVersion",), f"apiVersion must be {API_VERSION!r}, got {data['apiVersion']!r}")
    kind = data.get("kind")
    if kind not in ("Policy", "PolicyTest"):
        if "kind" in data:
            r.error(("kind",), f"kind must be 'Policy' or 'PolicyTest', got {kind!r}")
        return None
    meta = r.mapping(data.get("metadata", {}), ("metadata",), FIELDS["metadata"], "metadata", required=("name",))
    name = r.string(meta.get("name"), ("metadata", "name"), "metadata.name") if "name" in meta else None
    if name is not None and not _NAME_RE.match(name):
        r.error(("metadata", "name"), "metadata.name must use lowercase letters, digits, '.', '-' and '_' "
                "(at most 128 characters)")
        name = None
    description = ""
    if "description" in meta:
        description = r.string(meta["description"], ("metadata", "description"), "metadata.description", empty=True) or ""
    controls = r.strings(meta.get("controls", []), ("metadata", "controls"), "metadata.controls")
    labels: dict[str, str] = {}
    if "labels" in meta:
        raw = meta["labels"]
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            r.error(("metadata", "labels"), "metadata.labels must map strings to strings")
        else:
            labels = dict(raw)
    location = doc.at(())
    if kind == "Policy":
        spec = r.mapping(data.get("spec", {}), ("spec",), FIELDS["policy.spec"], "spec", required=("rules",))
        target = _target(r, spec.get("target")) if "target" in spec else Target()
        rules = _rules(r, spec.get("rules"))
        if len(errors) > before or name is None:
            return None
        return Policy(name=name, rules=rules, target=target, description=description, controls=controls,
                      labels=labels, location=location)
    spec = r.mapping(data.get("spec", {}), ("spec",), FIELDS["test.spec"], "spec", required=("cases",))
    now = _timestamp(r, spec["now"], ("spec", "now")) if "now" in spec else None
    cases = _cases(r, spec.get("cases"))
    if len(errors) > before or name is None:
        return None
    return PolicyTest(name=name, cases=cases, now=now, location=location)


def _target(r: _Reader, value: Any) -> Target:
    t = r.mapping(value, ("spec", "target"), FIELDS["target"], "target")
    fields = {k: r.strings(t[k], ("spec", "target", k), f"target.{k}") for k in FIELDS["target"] if k in t}
    for i, kind in enumerate(fields.get("kinds", ())):
        if not any(ch in kind for ch in "*?[") and kind not in KINDS:
            r.error(("spec", "target", "kinds", i), f"unknown kind {kind!r} (kinds: {', '.join(KINDS)})")
    return Target(**fields)


def _rules(r: _Reader, value: Any) -> tuple[Rule, ...]:
    if not isinstance(value, list) or not value:
        r.error(("spec", "rules"), "spec.rules must be a non-empty list of rules")
        return ()
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(value):
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str) and name in seen:
            r.error(("spec", "rules", i, "name"), f"duplicate rule name {name!r} (first at rule {seen[name] + 1})")
        elif isinstance(name, str):
            seen[name] = i
        rule = _rule(r, item, ("spec", "rules", i))
        if rule is not None:
            rules.append(rule)
    return tuple(rules)


def _rule(r: _Reader, value: Any, path: tuple[str | int, ...]) -> Rule | None:
    before = len(r.errors)
    d = r.mapping(value, path, FIELDS["rule"], "rule", required=("name", "verdict"))
    if not d:
        return None
    name = r.string(d.get("name"), (*path, "name"), "rule name") if "name" in d else None
    if name is not None and not _NAME_RE.match(name):
        r.error((*path, "name"), "rule names use lowercase letters, digits, '.', '-' and '_'")
    verdict: Verdict | None = None
    if "verdict" in d:
        v = d["verdict"]
        if isinstance(v, str) and v in Verdict.__members__:
            verdict = Verdict[v]
        else:
            r.error((*path, "verdict"), f"verdict must be one of ALLOW, LOG, CONSTRAIN, BLOCK, got {v!r}")
    when: str | None = None
    program = None
    if "when" in d:
        w = d["when"]
        if isinstance(w, bool):
            w = "true" if w else "false"
        when = r.string(w, (*path, "when"), "when")
        if when is not None:
            program = r.cel(when, (*path, "when"))
    message = ""
    if "message" in d:
        message = r.string(d["message"], (*path, "message"), "message", empty=True) or ""
    approval = _approval(r, d["approval"], (*path, "approval")) if "approval" in d else None
    if approval is not None and verdict is not None and verdict is not Verdict.BLOCK:
        r.error((*path, "approval"), "approval is only allowed on BLOCK rules (blocked unless approved)", key=True)
    constrain: tuple[Obligation, ...] = ()
    if "constrain" in d:
        constrain = _constrain(r, d["constrain"], (*path, "constrain"))
        if verdict is not None and verdict is not Verdict.CONSTRAIN:
            r.error((*path, "constrain"), "constrain is only allowed on CONSTRAIN rules", key=True)
    elif verdict is Verdict.CONSTRAIN:
        r.error(path, "a CONSTRAIN rule needs a constrain list (what to change in the action)")
    limit = _limit(r, d["limit"], (*path, "limit")) if "limit" in d else None
    on_error = "apply" if verdict in (Verdict.BLOCK, Verdict.CONSTRAIN) else "skip"
    if "on_error" in d:
        oe = d["on_error"]
        if oe not in ("apply", "skip"):
            r.error((*path, "on_error"), f"on_error must be 'apply' or 'skip', got {oe!r}")
        else:
            on_error = oe
    if len(r.errors) > before or name is None or verdict is None:
        return None
    return Rule(name=name, verdict=verdict, when=when, message=message, approval=approval, constrain=constrain,
                limit=limit, on_error=on_error, location=r.doc.at(path), program=program)


def _approval(r: _Reader, value: Any, path: tuple[str | int, ...]) -> Approval | None:
    d = r.mapping(value, path, FIELDS["approval"], "approval", required=("approvers",))
    if not d:
        return None
    approvers = _approvers(r, d, path, "approvers")
    if "approvers" in d and not approvers:
        r.error((*path, "approvers"), "approval.approvers must name at least one approver")
    quorum = r.integer(d.get("quorum", 1), (*path, "quorum"), "approval.quorum", 1) or 1
    ttl = r.duration(d["ttl"], (*path, "ttl"), "approval.ttl") if "ttl" in d else 86400.0
    uses = r.integer(d.get("uses", 1), (*path, "uses"), "approval.uses", 1) or 1
    ttl_seconds = int(ttl or 86400)
    after: int | None = None
    escalate_to: tuple[str, ...] = ()
    if "escalate_after" in d or "escalate_to" in d:
        if "escalate_after" not in d or "escalate_to" not in d:
            missing = "escalate_to" if "escalate_after" in d else "escalate_after"
            given = "escalate_after" if missing == "escalate_to" else "escalate_to"
            r.error(path, f"approval.{given} needs approval.{missing} too")
        else:
            seconds = r.duration(d["escalate_after"], (*path, "escalate_after"), "approval.escalate_after")
            escalate_to = _approvers(r, d, path, "escalate_to")
            if not escalate_to:
                r.error((*path, "escalate_to"), "approval.escalate_to must name at least one approver")
            if seconds is not None:
                after = max(1, int(seconds))
                if after >= ttl_seconds:
                    r.error((*path, "escalate_after"), f"approval.escalate_after ({after} s) must be shorter "
                            f"than the ttl ({ttl_seconds} s), or the review expires before it escalates")
    return Approval(approvers=approvers, quorum=quorum, ttl_seconds=ttl_seconds, uses=uses,
                    escalate_after_seconds=after, escalate_to=escalate_to)


def _approvers(r: _Reader, d: dict[str, Any], path: tuple[str | int, ...], name: str) -> tuple[str, ...]:
    entries = r.strings(d.get(name, []), (*path, name), f"approval.{name}")
    for i, a in enumerate(entries):
        if not re.fullmatch(r"(role|user):[^\s:]+", a):
            r.error((*path, name, i), f"approvers are 'role:NAME' or 'user:ID', got {a!r}")
    return entries


def _limit(r: _Reader, value: Any, path: tuple[str | int, ...]) -> Limit | None:
    d = r.mapping(value, path, FIELDS["limit"], "limit", required=("key", "max", "per"))
    if not d or not {"key", "max", "per"} <= set(d):
        return None
    key = r.string(d["key"], (*path, "key"), "limit.key")
    program = r.cel(key, (*path, "key")) if key else None
    maximum = r.integer(d["max"], (*path, "max"), "limit.max", 0)
    per = r.duration(d["per"], (*path, "per"), "limit.per")
    if key is None or program is None or maximum is None or per is None:
        return None
    return Limit(key=key, max=maximum, per_seconds=per, key_program=program)


def _path(r: _Reader, value: Any, path: tuple[str | int, ...], *, content: bool = False) -> str | None:
    text = r.string(value, path, "path")
    if text is None:
        return None
    if not _PATH_RE.match(text) or (text == "content" and not content):
        allowed = "args.…, context.… or content" if content else "args.… or context.…"
        r.error(path, f"invalid path {text!r}: paths are {allowed} (e.g. args.note, args.items[0].price)")
        return None
    return text


def _constrain(r: _Reader, value: Any, path: tuple[str | int, ...]) -> tuple[Obligation, ...]:
    if not isinstance(value, list) or not value:
        r.error(path, "constrain must be a non-empty list of obligations (redact, clamp, remove, set)")
        return ()
    out: list[Obligation] = []
    for i, item in enumerate(value):
        p = (*path, i)
        d = r.mapping(item, p, FIELDS["constrain"], "obligation")
        if len(d) != 1:
            if d:
                r.error(p, "each obligation has exactly one of redact, clamp, remove, set")
            continue
        op, arg = next(iter(d.items()))
        ob = _obligation(r, op, arg, (*p, op))
        if ob is not None:
            out.append(ob)
    return tuple(out)


def _obligation(r: _Reader, op: str, arg: Any, path: tuple[str | int, ...]) -> Obligation | None:
    before = len(r.errors)
    if op == "remove":
        paths = r.strings(arg, path, "remove")
        checked = [_path(r, p, (*path, i)) for i, p in enumerate(paths)]
        return Obligation("remove", {"paths": checked}) if len(r.errors) == before else None
    if op == "redact":
        d = r.mapping(arg, path, FIELDS["redact"], "redact", required=("paths",))
        paths = r.strings(d.get("paths", []), (*path, "paths"), "redact.paths")
        checked = [_path(r, p, (*path, "paths", i), content=True) for i, p in enumerate(paths)]
        spec: dict[str, Any] = {"paths": checked, "replacement": "[REDACTED]"}
        if "pattern" in d:
            pattern = r.string(d["pattern"], (*path, "pattern"), "redact.pattern")
            if pattern is not None:
                try:
                    compile_regex(pattern)
                    spec["pattern"] = pattern
                except CelEvalError as exc:
                    r.error((*path, "pattern"), exc.message)
        if "findings" in d:
            spec["findings"] = list(r.strings(d["findings"], (*path, "findings"), "redact.findings"))
        if "replacement" in d:
            spec["replacement"] = r.string(d["replacement"], (*path, "replacement"), "redact.replacement",
                                           empty=True)
        if "mode" in d:
            mode = r.string(d["mode"], (*path, "mode"), "redact.mode")
            if mode is not None and mode not in REDACT_MODES:
                r.error((*path, "mode"), f"redact.mode must be one of {', '.join(REDACT_MODES)}, got {mode!r}")
            elif "replacement" in d:
                r.error((*path, "mode"), "give either redact.mode or redact.replacement, not both")
            else:
                spec["mode"] = mode
        return Obligation("redact", spec) if len(r.errors) == before else None
    if op == "clamp":
        d = r.mapping(arg, path, FIELDS["clamp"], "clamp", required=("path",))
        spec = {"path": _path(r, d.get("path"), (*path, "path")) if "path" in d else None}
        for bound in ("min", "max"):
            if bound in d:
                spec[bound] = r.number(d[bound], (*path, bound), f"clamp.{bound}")
        if "min" not in d and "max" not in d:
            r.error(path, "clamp needs min, max or both")
        elif spec.get("min") is not None and spec.get("max") is not None and spec["min"] > spec["max"]:
            r.error(path, "clamp.min is greater than clamp.max")
        return Obligation("clamp", spec) if len(r.errors) == before else None
    d = r.mapping(arg, path, FIELDS["set"], "set", required=("path", "value"))
    spec = {"path": _path(r, d.get("path"), (*path, "path")) if "path" in d else None, "value": d.get("value")}
    return Obligation("set", spec) if len(r.errors) == before else None


def _timestamp(r: _Reader, value: Any, path: tuple[str | int, ...]) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = r.string(value, path, "timestamp")
    if text is None:
        return None
    try:
        return parse_timestamp(text)
    except CelEvalError:
        r.error(path, f"expected an RFC 3339 timestamp such as 2026-11-28T15:00:00Z, got {text!r}")
        return None


def _cases(r: _Reader, value: Any) -> tuple[TestCase, ...]:
    if not isinstance(value, list) or not value:
        r.error(("spec", "cases"), "spec.cases must be a non-empty list of test cases")
        return ()
    out: list[TestCase] = []
    for i, item in enumerate(value):
        p: tuple[str | int, ...] = ("spec", "cases", i)
        d = r.mapping(item, p, FIELDS["case"], "test case", required=("name", "action", "expect"))
        if not {"name", "action", "expect"} <= set(d):
            continue
        name = r.string(d["name"], (*p, "name"), "case name")
        if not isinstance(d["action"], dict):
            r.error((*p, "action"), "action must be a mapping")
        findings = d.get("findings", [])
        if not isinstance(findings, list) or not all(isinstance(f, dict) for f in findings):
            r.error((*p, "findings"), "findings must be a list of mappings")
            findings = []
        repeat = r.integer(d.get("repeat", 1), (*p, "repeat"), "repeat", 1) or 1
        expect = r.mapping(d["expect"], (*p, "expect"), FIELDS["expect"], "expect", required=("verdict",))
        if "verdict" in expect and expect["verdict"] not in Verdict.__members__:
            r.error((*p, "expect", "verdict"), f"verdict must be one of ALLOW, LOG, CONSTRAIN, BLOCK, got {expect['verdict']!r}")
        if "rules" in expect:
            r.strings(expect["rules"], (*p, "expect", "rules"), "expect.rules")
        if "errors" in expect:
            r.integer(expect["errors"], (*p, "expect", "errors"), "expect.errors", 0)
        if name is not None and isinstance(d["action"], dict):
            out.append(TestCase(name=name, action=d["action"], expect=expect, findings=tuple(findings),
                                repeat=repeat, location=r.doc.at(p)))
    return tuple(out)
