"""The scanning engine: which strings of an action are scanned and under which path, folded and
decoded text mapped back to the original span, deduplication, filters, thresholds, allow lists,
custom patterns and per-system settings."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from lictor.detect import (
    Detection,
    Hit,
    Scanner,
    load_detector,
    parse_detection_settings,
    text_fields,
)
from lictor.detect import engine as engine_module
from lictor.detect.decode import Segment
from lictor.errors import ConfigError
from lictor.model import Action

EMAIL = "ann@corp.example"


def pii() -> Scanner:
    return Scanner([load_detector("pii"), load_detector("secrets")])


def test_paths_follow_the_redact_syntax() -> None:
    content = [{"role": "user", "content": f"mail {EMAIL}"},
               {"role": "user", "content": [{"type": "text", "text": f"again {EMAIL}"}]}]
    args = {"note": f"to {EMAIL}", "items": [{"to": EMAIL}, "x"], "n": 3}
    paths = [p for p, _t in text_fields(content, args)]
    assert paths == ["content[0].role", "content[0].content", "content[1].role", "content[1].content[0].type",
                     "content[1].content[0].text", "args.note", "args.items[0].to", "args.items[1]"]
    found = {(f.path, f.start, f.end) for f in pii().scan(content, args)}
    assert found == {("content[0].content", 5, 21), ("content[1].content[0].text", 6, 22),
                     ("args.note", 3, 19), ("args.items[0].to", 0, 16)}
    assert {(f.path, f.type) for f in pii().scan(f"hi {EMAIL}")} == {("content", "pii.email")}


def test_findings_carry_detector_and_version() -> None:
    (finding,) = pii().scan(None, {"note": EMAIL})
    assert (finding.type, finding.detector, finding.version, finding.score) == ("pii.email", "pii", "1", 0.99)


@dataclass(frozen=True)
class _Folded:
    """A stand-in folding: removes zero-width spaces, mapping positions back."""

    text: str
    original: str
    index: tuple[int, ...]

    def origin(self, i: int) -> int:
        return self.index[i] if i < len(self.index) else len(self.original)

    def span(self, start: int, end: int) -> tuple[int, int]:
        return self.origin(start), self.origin(end - 1) + 1


def _fold(text: str) -> _Folded:
    kept = [(i, ch) for i, ch in enumerate(text) if ch != "\u200b"]
    return _Folded("".join(ch for _i, ch in kept), text, tuple(i for i, _c in kept))


def test_folded_findings_point_at_the_original_span(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "fold", _fold)
    text = "key AKIA\u200bIOSFODNN7EXAMPLE end"
    (finding,) = pii().scan(text)
    assert finding.type == "secret.aws_access_key"
    assert text[finding.start:finding.end] == "AKIA\u200bIOSFODNN7EXAMPLE"


def _segments(text: str, budget: int = 65536) -> Iterator[Segment]:
    for m in re.finditer(r"b64:(\S+)", text):
        decoded = base64.b64decode(m.group(1)).decode()
        if len(decoded) <= budget:
            yield Segment(m.start(1), m.end(1), "base64", decoded)


def test_decoded_findings_span_the_encoded_run_within_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "segments", _segments)
    encoded = base64.b64encode(f"mail {EMAIL}".encode()).decode()
    text = f"payload b64:{encoded} b64:{encoded}"
    findings = pii().scan(text)
    assert [(text[f.start:f.end], f.score) for f in findings] == [(encoded, round(0.99 * 0.9, 4))] * 2
    tight = Scanner([load_detector("pii")], decode_budget=30)
    assert len(tight.scan(text)) == 1  # the budget is spent on the first run
    assert Scanner([load_detector("pii")], decode_budget=0).scan(text) == ()


class _Twice:
    name, version, types = "twice", "1", ("test.*",)

    def scan(self, text: str) -> list[Hit]:
        return [Hit("test.x", 0, 4, 0.4), Hit("test.x", 0, 4, 0.8), Hit("test.x", 1, 3, 0.9), Hit("test.y", 0, 2, 0.2)]


def test_duplicates_and_contained_hits_collapse_and_thresholds_apply() -> None:
    scanner = Scanner([_Twice()], min_score={"*": 0.5, "test.y": 0.1})
    assert [(f.type, f.start, f.end, f.score) for f in scanner.scan("abcdef")] == [
        ("test.y", 0, 2, 0.2), ("test.x", 0, 4, 0.8)]
    assert [(f.start, f.end) for f in Scanner([_Twice()], min_score={"*": 0.85}).scan("abcdef")] == [(1, 3)]
    assert [f.type for f in Scanner([_Twice()], exclude_types=["test.x"], min_score={"*": 0}).scan("abcdef")] == [
        "test.y"]


def test_allow_lists_values_domains_and_patterns() -> None:
    settings = parse_detection_settings({"allow": {"domains": ["corp.example"], "values": ["10.0.0.1"],
                                                   "patterns": [r"192\.168\..*"]}})
    scanner = Detection.from_settings(settings).default
    text = f"{EMAIL} bob@mail.corp.example eve@evil.example 10.0.0.1 192.168.4.4 8.8.8.8"
    assert [text[f.start:f.end] for f in scanner.scan(text)] == ["eve@evil.example", "8.8.8.8"]


def test_custom_patterns_keywords_and_systems() -> None:
    settings = parse_detection_settings({
        "custom": {"employee": {"pattern": r"EMP-\d{6}"}, "project": {"keywords": ["Falcon", "osprey"]}},
        "systems": {"hr": {"enabled": ["secrets"], "custom": {}}}})
    detection = Detection.from_settings(settings)
    text = "EMP-123456 works on falcon, not falconry; mail ann@corp.example"
    general = detection.scan(Action.from_dict({"system": "crm", "kind": "message", "content": text}))
    assert [(f.type, text[f.start:f.end]) for f in general] == [
        ("custom.employee", "EMP-123456"), ("custom.project", "falcon"), ("pii.email", "ann@corp.example")]
    hr = detection.scan(Action.from_dict({"system": "hr", "kind": "message", "content": text}))
    assert hr == ()


@pytest.mark.parametrize(("value", "message"), [
    ({"enabled": ["nope"]}, "unknown detector 'nope'"),
    ({"min_score": {"*": 2}}, "a score is a number from 0 to 1"),
    ({"custom": {"x": {"pattern": "("}}}, "invalid regular expression"),
    ({"custom": {"Bad Name": "x"}}, "a custom type name"),
    ({"systems": {"crm": {"bogus": 1}}}, "unknown field 'bogus'"),
    ({"allow": {"hosts": []}}, "unknown field 'hosts'"),
])
def test_bad_settings_name_the_place(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_detection_settings(value, ("national_id", "pii", "secrets"))
