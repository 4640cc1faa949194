"""CONSTRAIN obligations: redact, clamp, remove and set, applied to a copy of the action's data.

Paths are ``args.a.b``, ``args.items[0].price``, ``context.x`` or ``content``. An absent path does
nothing; an obligation that cannot be applied (clamping a string) raises ObligationError, which the
evaluator turns into a BLOCK with the error listed.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import re
from collections.abc import Iterator, Sequence
from typing import Any

from lictor.model import Finding
from lictor.policy.celfuncs import compile_glob, compile_regex
from lictor.policy.document import Obligation

__all__ = ["ObligationError", "apply_obligations", "split_path"]

_SEGMENT = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]")


class ObligationError(Exception):
    """An obligation that cannot be applied to this action."""


def split_path(path: str) -> list[str | int]:
    """``args.items[0].price`` -> ``["args", "items", 0, "price"]``."""
    head, _, rest = path.partition(".") if not path.startswith("content") else ("content", "", "")
    if "[" in head:
        head, bracket = head.split("[", 1)
        rest = "[" + bracket + ("." + rest if rest else "")
    elif rest:
        rest = "." + rest
    out: list[str | int] = [head]
    for m in _SEGMENT.finditer(rest):
        out.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
    return out


def _parent(data: dict[str, Any], parts: list[str | int], *, create: bool = False) -> tuple[Any, str | int] | None:
    node: Any = data
    for part in parts[:-1]:
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return None
            node = node[part]
        else:
            if not isinstance(node, dict):
                return None
            if part not in node:
                if not create:
                    return None
                node[part] = {}
            node = node[part]
    last = parts[-1]
    if isinstance(last, int):
        return (node, last) if isinstance(node, list) and last < len(node) else None
    if not isinstance(node, dict):
        return None
    return node, last


def _existing(data: dict[str, Any], path: str) -> tuple[Any, str | int] | None:
    """(container, key) of the value at ``path`` when it is present, else None."""
    loc = _parent(data, split_path(path))
    if loc is None:
        return None
    container, key = loc
    if isinstance(key, str) and key not in container:
        return None
    return loc


def _strings(value: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    """Every string inside ``value`` as (path, container, key); the root itself is yielded by callers."""
    if isinstance(value, dict):
        for k, v in value.items():
            sub = f"{path}.{k}"
            if isinstance(v, str):
                yield sub, value, k
            else:
                yield from _strings(v, sub)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            sub = f"{path}[{i}]"
            if isinstance(v, str):
                yield sub, value, i
            else:
                yield from _strings(v, sub)


_SEPARATORS = frozenset(" -./")


def _mask(value: str) -> str:
    """``*`` for every character but separators; a value of digits (and separators) keeps its last
    four digits, as on a payment card receipt."""
    digits = [ch for ch in value if ch not in _SEPARATORS]
    keep = 4 if digits and all(ch.isdigit() for ch in digits) and len(digits) > 4 else 0
    out = []
    for ch in reversed(value):
        if ch in _SEPARATORS:
            out.append(ch)
        elif keep:
            out.append(ch)
            keep -= 1
        else:
            out.append("*")
    return "".join(reversed(out))


def _hash_tag(value: str, kind: str, key: bytes | None) -> str:
    """A short tag that stands for ``value``: HMAC-SHA-256 under the gateway's key when there is one
    (equal values give equal tags, yet nobody without the key can test guesses against a tag), else
    plain SHA-256 (offline policy tests), 12 hex digits either way."""
    data = value.encode("utf-8")
    digest = hmac.new(key, data, hashlib.sha256).hexdigest() if key else hashlib.sha256(data).hexdigest()
    return f"[HASH:{kind}:{digest[:12]}]" if kind else f"[HASH:{digest[:12]}]"


def _replace(value: str, kind: str, spec: dict[str, Any], key: bytes | None) -> str:
    mode = spec.get("mode")
    if mode == "label":
        return f"[REDACTED:{kind}]" if kind else "[REDACTED]"
    if mode == "mask":
        return _mask(value)
    if mode == "hash":
        return _hash_tag(value, kind, key)
    return str(spec.get("replacement", "[REDACTED]"))


def _redact_text(text: str, path: str, spec: dict[str, Any], findings: Sequence[Finding],
                 key: bytes | None = None) -> str:
    globs = spec.get("findings")
    pattern = spec.get("pattern")
    if globs is None and pattern is None:
        return _replace(text, "", spec, key)
    if globs:
        matchers = [compile_glob(g) for g in globs]
        spans = sorted(
            {(f.start, f.end, f.type) for f in findings
             if f.path == path and any(match(f.type) for match in matchers) and 0 <= f.start < f.end <= len(text)},
            key=lambda s: (s[0], -s[1], s[2]), reverse=True,
        )
        last_start = len(text) + 1
        for start, end, kind in spans:  # right to left, skipping overlaps
            if end > last_start:
                continue
            text = text[:start] + _replace(text[start:end], kind, spec, key) + text[end:]
            last_start = start
    if pattern is not None:
        text = compile_regex(pattern).sub(lambda m: _replace(m.group(), "", spec, key), text)
    return text


def _redact(data: dict[str, Any], path: str, spec: dict[str, Any], findings: Sequence[Finding],
            hash_key: bytes | None = None) -> None:
    loc = _existing(data, path)
    if loc is None:
        return
    container, key = loc
    value = container[key]
    if isinstance(value, str):
        container[key] = _redact_text(value, path, spec, findings, hash_key)
        return
    for sub, holder, k in list(_strings(value, path)):
        holder[k] = _redact_text(holder[k], sub, spec, findings, hash_key)


def _clamp(data: dict[str, Any], spec: dict[str, Any]) -> None:
    loc = _existing(data, spec["path"])
    if loc is None:
        return
    container, key = loc
    value = container[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ObligationError(f"cannot clamp {spec['path']}: it is not a number")
    lo, hi = spec.get("min"), spec.get("max")
    if lo is not None and value < lo:
        container[key] = lo
    elif hi is not None and value > hi:
        container[key] = hi


def _remove(data: dict[str, Any], paths: Sequence[str]) -> None:
    for path in paths:
        loc = _parent(data, split_path(path))
        if loc is None:
            continue
        container, key = loc
        if isinstance(container, dict):
            container.pop(key, None)
        else:
            del container[key]


def _set(data: dict[str, Any], spec: dict[str, Any]) -> None:
    loc = _parent(data, split_path(spec["path"]), create=True)
    if loc is None:
        raise ObligationError(f"cannot set {spec['path']}: a parent on the path is not an object")
    container, key = loc
    container[key] = copy.deepcopy(spec["value"])


def apply_obligations(action: dict[str, Any], obligations: Sequence[Obligation],
                      findings: Sequence[Finding] = (), *, hash_key: bytes | None = None) -> dict[str, Any]:
    """Return a constrained copy of ``action`` (JSON data); the input is not modified. ``hash_key``
    keys the tags of ``redact`` in ``mode: hash``."""
    data = copy.deepcopy(action)
    data.setdefault("args", {})
    data.setdefault("context", {})
    for ob in obligations:
        if ob.op == "redact":
            for path in ob.spec["paths"]:
                _redact(data, path, ob.spec, findings, hash_key)
        elif ob.op == "clamp":
            _clamp(data, ob.spec)
        elif ob.op == "remove":
            _remove(data, ob.spec["paths"])
        elif ob.op == "set":
            _set(data, ob.spec)
    if not data["args"]:
        del data["args"]
    if not data["context"]:
        del data["context"]
    return data
