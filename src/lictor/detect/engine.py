"""The scanning engine: runs a set of detectors over an action's ``content`` (text or chat messages)
and every string inside its ``args``, on the raw text, on its folded form (look-alikes and invisible
characters undone) and on the encoded runs it hides (base64, hex, …, within a budget), and reports
deduplicated findings whose paths and spans are those that ``redact`` constraints edit in place."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from lictor.detect.base import Detector, Hit, detector_names, load_detector
from lictor.detect.decode import segments
from lictor.detect.normalize import fold
from lictor.detect.settings import AllowList, CustomPattern, DetectionSettings, DetectorSettings
from lictor.model import Action, Finding

__all__ = ["CustomDetector", "Detection", "Scanner", "merge_findings", "text_fields"]

#: A finding seen only inside decoded text keeps this share of its score.
DECODED_SCORE = 0.9


def text_fields(content: Any, args: Mapping[str, Any] | None) -> Iterator[tuple[str, str]]:
    """Every string an action carries as (path, text): ``content`` itself when it is text, each chat
    message's ``content[i].content`` or its parts' ``content[i].content[j].text`` (every string of
    a message, in fact), and each string inside ``args`` (``args.a.b``, ``args.items[0]``)."""
    if isinstance(content, str):
        yield "content", content
    elif isinstance(content, list):
        yield from _strings(content, "content")
    if args:
        yield from _strings(args, "args")


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}[{i}]")


def _glob_matcher(globs: Sequence[str]) -> Any:
    from fnmatch import fnmatchcase

    exact = frozenset(g for g in globs if not any(c in g for c in "*?["))
    patterns = tuple(g for g in globs if g not in exact)

    def match(kind: str) -> bool:
        return kind in exact or any(fnmatchcase(kind, p) for p in patterns)

    return match


class Scanner:
    """Detectors plus what to keep of their hits: type filters, score thresholds by type glob
    (the most specific glob wins, ``*`` the fallback), an allow list, and the decoding budget per
    action (characters decoded in all; 0 turns decoding off)."""

    def __init__(self, detectors: Sequence[Detector], *, types: Sequence[str] = ("*",),
                 exclude_types: Sequence[str] = (), min_score: Mapping[str, float] | None = None,
                 allow: AllowList | None = None, decode_budget: int = 65536) -> None:
        self.detectors = tuple(detectors)
        self._include = _glob_matcher(types)
        self._exclude = _glob_matcher(exclude_types)
        thresholds = dict(min_score or {"*": 0.5})
        # most specific first: longer globs without wildcards before shorter ones
        self._thresholds = sorted(thresholds.items(), key=lambda kv: (kv[0] == "*", -len(kv[0])))
        self._threshold_cache: dict[str, float] = {}
        self._keep_cache: dict[str, bool] = {}
        self._allow = allow or AllowList()
        self._allow_patterns: list[Any] = []
        if self._allow.patterns:
            import re2

            self._allow_patterns = [re2.compile(p) for p in self._allow.patterns]
        self.decode_budget = decode_budget
        # the detectors that fold the text themselves (``folds_input``) would find in the folded
        # text exactly what they found in the raw one (folding is idempotent): not run again
        self._refold = tuple(d for d in self.detectors if not getattr(d, "folds_input", False))
        #: Shorter strings are not scanned: no detector here can find anything in them.
        self.min_length = min((int(getattr(d, "min_length", 1)) for d in self.detectors), default=1)

    # -- what is kept ------------------------------------------------------------------------------
    def _threshold(self, kind: str) -> float:
        cached = self._threshold_cache.get(kind)
        if cached is None:
            cached = 0.0
            for glob, value in self._thresholds:
                if _glob_matcher((glob,))(kind):
                    cached = value
                    break
            self._threshold_cache[kind] = cached
        return cached

    def _wanted(self, kind: str) -> bool:
        keep = self._keep_cache.get(kind)
        if keep is None:
            keep = bool(self._include(kind)) and not self._exclude(kind)
            self._keep_cache[kind] = keep
        return keep

    def _allowed(self, value: str) -> bool:
        allow = self._allow
        if value.lower() in allow.values:
            return True
        if allow.domains:
            host = _host(value)
            if host and any(host == d or host.endswith("." + d) for d in allow.domains):
                return True
        return any(p.fullmatch(value) for p in self._allow_patterns)

    # -- scanning ----------------------------------------------------------------------------------
    def scan_text(self, text: str, budget: list[int] | None = None) -> list[tuple[Hit, Detector]]:
        """The kept hits in one string (spans in ``text``), deduplicated; ``budget`` is a one-item
        list holding the decoding budget left, shared across calls."""
        if budget is None:
            budget = [self.decode_budget]
        found: list[tuple[Hit, Detector]] = []
        for detector in self.detectors:
            for hit in detector.scan(text):
                found.append((hit, detector))
        folded = fold(text)
        if folded.text != text:
            for detector in self._refold:
                for hit in detector.scan(folded.text):
                    start, end = folded.span(hit.start, hit.end)
                    found.append((Hit(hit.type, start, end, hit.score), detector))
        if budget[0] > 0:
            for segment in segments(text, budget[0]):
                if len(segment.decoded) > budget[0]:
                    break  # the action's decoding budget is spent
                budget[0] -= len(segment.decoded)
                for detector in self.detectors:
                    for hit in detector.scan(segment.decoded):
                        found.append((Hit(hit.type, segment.start, segment.end,
                                          round(hit.score * DECODED_SCORE, 4)), detector))
                if budget[0] <= 0:
                    break
        return self._keep(text, found)

    def _keep(self, text: str, found: list[tuple[Hit, Detector]]) -> list[tuple[Hit, Detector]]:
        if not found:
            return found
        best: dict[tuple[str, int, int], tuple[Hit, Detector]] = {}
        for hit, detector in found:
            if not (0 <= hit.start < hit.end <= len(text)) or not self._wanted(hit.type):
                continue
            if hit.score < self._threshold(hit.type) or self._allowed(text[hit.start:hit.end]):
                continue
            key = (hit.type, hit.start, hit.end)
            if key not in best or best[key][0].score < hit.score:
                best[key] = (hit, detector)
        kept: list[tuple[Hit, Detector]] = []
        ordered = sorted(best.values(), key=lambda hd: (hd[0].type, hd[0].start, -hd[0].end))
        for hit, detector in ordered:  # drop a hit inside another of the same type
            if kept and kept[-1][0].type == hit.type and hit.end <= kept[-1][0].end:
                continue
            kept.append((hit, detector))
        kept.sort(key=lambda hd: (hd[0].start, hd[0].end, hd[0].type))
        return kept

    def scan(self, content: Any, args: Mapping[str, Any] | None = None) -> tuple[Finding, ...]:
        """Findings in ``content`` and ``args``, in path order, then by position."""
        budget = [self.decode_budget]
        findings: list[Finding] = []
        for path, text in text_fields(content, args):
            if len(text) < self.min_length:
                continue
            for hit, detector in self.scan_text(text, budget):
                findings.append(Finding(hit.type, path, hit.start, hit.end, hit.score, detector.name,
                                        detector.version))
        return tuple(findings)

    def scan_action(self, action: Action) -> tuple[Finding, ...]:
        return self.scan(action.content, action.args)


def merge_findings(given: Sequence[Finding], detected: Sequence[Finding]) -> tuple[Finding, ...]:
    """The caller's findings, then the detected ones the caller did not already give (same type,
    path and span)."""
    if not detected:
        return tuple(given)
    if not given:
        return tuple(detected)
    seen = {(f.type, f.path, f.start, f.end) for f in given}
    return (*given, *(f for f in detected if (f.type, f.path, f.start, f.end) not in seen))


def _host(value: str) -> str:
    """The host in an e-mail address, URL or bare host name, lower case."""
    text = value.strip().lower()
    if "://" in text:
        text = text.split("://", 1)[1].split("/", 1)[0].rpartition("@")[2].split(":", 1)[0]
    elif "@" in text:
        text = text.rpartition("@")[2]
    return text.rstrip(".")


class CustomDetector:
    """The operator's own patterns and keyword lists from settings, each reported as ``custom.NAME``:
    a regular expression (RE2: linear time whatever the pattern) or keywords (whole words, any case)."""

    name = "custom"
    version = "1"

    def __init__(self, patterns: Sequence[CustomPattern]) -> None:
        import re2

        self.types = tuple(p.type for p in patterns)
        self._compiled: list[tuple[str, float, object]] = []
        for p in patterns:
            if p.pattern is not None:
                self._compiled.append((p.type, p.score, re2.compile(p.pattern)))
            if p.keywords:
                words = "|".join(re.escape(k) for k in sorted(p.keywords, key=len, reverse=True))
                self._compiled.append((p.type, p.score, re2.compile(rf"(?i)\b(?:{words})\b")))

    def scan(self, text: str) -> Iterable[Hit]:
        hits = []
        for kind, score, pattern in self._compiled:
            for m in pattern.finditer(text):  # type: ignore[attr-defined]
                if m.end() > m.start():
                    hits.append(Hit(kind, m.start(), m.end(), score))
        return hits


class Detection:
    """The scanners of a gateway: the general one and one per system with its own settings."""

    def __init__(self, default: Scanner, systems: Mapping[str, Scanner] | None = None) -> None:
        self.default = default
        self.systems = dict(systems or {})

    @classmethod
    def from_settings(cls, settings: DetectionSettings) -> Detection:
        """Build every scanner (detectors loaded by name through the registry). Raises ConfigError
        for an unknown detector or options a detector refuses."""
        cache: dict[tuple[str, str], Detector] = {}

        def build(scope: DetectorSettings) -> Scanner:
            names = scope.enabled if scope.enabled is not None else detector_names()
            detectors: list[Detector] = []
            for name in names:
                options = dict(scope.options.get(name, {}))
                key = (name, repr(sorted(options.items())))
                if key not in cache:
                    cache[key] = load_detector(name, options)
                detectors.append(cache[key])
            if scope.custom:
                detectors.append(CustomDetector(scope.custom))
            return Scanner(detectors, types=scope.types, exclude_types=scope.exclude_types,
                           min_score=scope.min_score, allow=scope.allow, decode_budget=scope.decode_budget)

        return cls(build(settings.default), {system: build(scope) for system, scope in settings.systems.items()})

    def scanner(self, system: str) -> Scanner:
        return self.systems.get(system, self.default)

    def scan(self, action: Action) -> tuple[Finding, ...]:
        """The findings in ``action``, by its system's settings."""
        return self.scanner(action.system).scan(action.content, action.args)
