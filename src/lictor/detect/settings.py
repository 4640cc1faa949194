"""What the ``detectors`` setting holds, validated: which detectors and types run, score thresholds,
detector options, custom patterns and keyword lists, allow lists of known-benign values, and the
same again per system (``systems: {ID: {...}}``), each key given there replacing the general one."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from lictor.errors import ConfigError

__all__ = ["AllowList", "CustomPattern", "DetectionSettings", "DetectorSettings", "parse_detection_settings"]

_KEYS = ("enabled", "types", "exclude_types", "min_score", "options", "custom", "allow", "decode_budget")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
_TYPE_GLOB = re.compile(r"[A-Za-z0-9_.*?\[\]!-]{1,128}\Z")
DEFAULT_MIN_SCORE = 0.5
DEFAULT_DECODE_BUDGET = 65536


@dataclass(frozen=True, slots=True)
class CustomPattern:
    """A custom type ``custom.NAME`` found by a regular expression (RE2 syntax: linear time) or by
    a list of keywords (whole words, any case)."""

    name: str
    pattern: str | None = None
    keywords: tuple[str, ...] = ()
    score: float = 0.9

    @property
    def type(self) -> str:
        return f"custom.{self.name}"


@dataclass(frozen=True, slots=True)
class AllowList:
    """Known-benign values never reported: exact ``values`` (any case), ``domains`` (an e-mail
    address, URL or host in one of them or a subdomain) and RE2 ``patterns`` matching the whole value."""

    values: frozenset[str] = frozenset()
    domains: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """The detection settings of one scope (everything, or one system). ``enabled`` None means every
    registered detector."""

    enabled: tuple[str, ...] | None = None
    types: tuple[str, ...] = ("*",)
    exclude_types: tuple[str, ...] = ()
    min_score: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({"*": DEFAULT_MIN_SCORE}))
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))
    custom: tuple[CustomPattern, ...] = ()
    allow: AllowList = field(default_factory=AllowList)
    decode_budget: int = DEFAULT_DECODE_BUDGET


@dataclass(frozen=True, slots=True)
class DetectionSettings:
    """The general detection settings and each system's own."""

    default: DetectorSettings = field(default_factory=DetectorSettings)
    systems: Mapping[str, DetectorSettings] = field(default_factory=lambda: MappingProxyType({}))

    def for_system(self, system: str) -> DetectorSettings:
        return self.systems.get(system, self.default)


def _fail(message: str, path: str) -> ConfigError:
    return ConfigError(message, path=path)


def _strings(value: Any, path: str, *, check: re.Pattern[str] | None = None, what: str = "") -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise _fail(f"expected a list of strings, got {type(value).__name__}", path)
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise _fail(f"expected a non-empty string, got {item!r}", f"{path}.{i}")
        if check is not None and not check.match(item):
            raise _fail(f"not a valid {what}: {item!r}", f"{path}.{i}")
    return tuple(value)


def _score(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise _fail(f"a score is a number from 0 to 1, got {value!r}", path)
    return float(value)


def _regex(pattern: str, path: str) -> str:
    import re2

    try:
        re2.compile(pattern)
    except Exception as exc:  # re2 raises its own error type; any failure means the pattern is unusable
        raise _fail(f"invalid regular expression (RE2 syntax): {exc}", path) from None
    return pattern


def _custom(value: Any, path: str) -> tuple[CustomPattern, ...]:
    if not isinstance(value, Mapping):
        raise _fail("expected a mapping of name to {pattern | keywords, score}", path)
    out = []
    for name, entry in value.items():
        where = f"{path}.{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise _fail(f"a custom type name is lower case letters, digits and _, got {name!r}", where)
        if isinstance(entry, str):
            entry = {"pattern": entry}
        if not isinstance(entry, Mapping):
            raise _fail("expected {pattern: REGEX} or {keywords: [WORD, ...]}", where)
        unknown = set(entry) - {"pattern", "keywords", "score"}
        if unknown:
            raise _fail(f"unknown field {sorted(unknown)[0]!r} (allowed: keywords, pattern, score)", where)
        pattern = entry.get("pattern")
        keywords = _strings(entry.get("keywords", []), f"{where}.keywords")
        if pattern is None and not keywords:
            raise _fail("give a pattern or a list of keywords", where)
        if pattern is not None:
            if not isinstance(pattern, str) or not pattern:
                raise _fail("expected a regular expression", f"{where}.pattern")
            _regex(pattern, f"{where}.pattern")
        score = _score(entry.get("score", 0.9), f"{where}.score")
        out.append(CustomPattern(name, pattern, keywords, score))
    return tuple(out)


def _allow(value: Any, path: str) -> AllowList:
    if not isinstance(value, Mapping):
        raise _fail("expected {values: [...], domains: [...], patterns: [...]}", path)
    unknown = set(value) - {"values", "domains", "patterns"}
    if unknown:
        raise _fail(f"unknown field {sorted(unknown)[0]!r} (allowed: domains, patterns, values)", path)
    values = _strings(value.get("values", []), f"{path}.values")
    domains = _strings(value.get("domains", []), f"{path}.domains")
    patterns = _strings(value.get("patterns", []), f"{path}.patterns")
    for i, pattern in enumerate(patterns):
        _regex(pattern, f"{path}.patterns.{i}")
    return AllowList(frozenset(v.lower() for v in values), tuple(d.lower().lstrip(".") for d in domains), patterns)


def _scope(value: Any, path: str, base: DetectorSettings, known: tuple[str, ...]) -> DetectorSettings:
    if not isinstance(value, Mapping):
        raise _fail("expected a mapping", path)
    changes: dict[str, Any] = {}
    for key, item in value.items():
        where = f"{path}.{key}" if path else str(key)
        if key == "enabled":
            names = _strings(item, where)
            for i, name in enumerate(names):
                if known and name not in known:
                    raise _fail(f"unknown detector {name!r} (registered: {', '.join(known)})", f"{where}.{i}")
            changes["enabled"] = names
        elif key in ("types", "exclude_types"):
            changes[key] = _strings(item, where, check=_TYPE_GLOB, what="type glob")
        elif key == "min_score":
            if not isinstance(item, Mapping):
                item = {"*": item}
            changes[key] = MappingProxyType({str(k): _score(v, f"{where}.{k}") for k, v in item.items()})
        elif key == "options":
            if not isinstance(item, Mapping) or not all(isinstance(v, Mapping) for v in item.values()):
                raise _fail("expected a mapping of detector name to its options", where)
            for name in item:
                if known and name not in known:
                    raise _fail(f"unknown detector {name!r} (registered: {', '.join(known)})", f"{where}.{name}")
            changes[key] = MappingProxyType({str(k): MappingProxyType(dict(v)) for k, v in item.items()})
        elif key == "custom":
            changes[key] = _custom(item, where)
        elif key == "allow":
            changes[key] = _allow(item, where)
        elif key == "decode_budget":
            if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item <= 16_777_216:
                raise _fail(f"expected a number of characters from 0 to 16777216, got {item!r}", where)
            changes[key] = item
        else:
            allowed = ", ".join(_KEYS + (("systems",) if not path else ()))
            raise _fail(f"unknown field {key!r} (allowed: {allowed})", where)
    return replace(base, **changes)


def parse_detection_settings(value: Any, known: tuple[str, ...] = ()) -> DetectionSettings:
    """Validate the ``detectors`` setting; ``known`` lists the registered detector names (an empty
    tuple skips that check). Raises ConfigError whose ``path`` is the part at fault, relative to the
    setting (``systems.crm.min_score``)."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise _fail(f"expected a mapping, got {type(value).__name__}", "")
    general = {k: v for k, v in value.items() if k != "systems"}
    default = _scope(general, "", DetectorSettings(), known)
    systems_value = value.get("systems", {}) or {}
    if not isinstance(systems_value, Mapping):
        raise _fail("expected a mapping of system id to detector settings", "systems")
    systems = {str(system): _scope(entry, f"systems.{system}", default, known)
               for system, entry in systems_value.items()}
    return DetectionSettings(default, MappingProxyType(systems))
