"""Detectors stay linear and local: long repetitive (adversarial) inputs are scanned consistently,
and scanning a text twice over, with a separator no pattern can cross, finds exactly each copy's
hits. (Speed itself is measured by bench/detect.py, never asserted here.)"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lictor.detect import Detection, DetectionSettings

# fragments that open many candidate matches without completing them, and values that complete them
WORDS = ["1", "12", "1234", "-", ".", " ", ":", "::", "@", "a", "ab.", "a@b", "(", ")", "/", "+", "=", "_",
         "AKIA", "eyJ", "sk-", "ghp_", "xox", "GB82", "WEST", "https://", "u:p@", "password", "passport",
         "SSN", "BSN", "-----BEGIN PRIVATE KEY-----", "4111 1111 1111 1111", "ann@corp.example",
         "+44 20 7946 0958", "123-45-6789", "AKIAIOSFODNN7EXAMPLE", "192.168.1.20", "GB82 WEST 1234 5698 7654 32",
         "X1234567", "password=Xk9#mQ2$vL8p", "2001:db8::1", "12345678Z", "\n"]
SEPARATOR = "\n\n" + "~" * 64 + "\n\n"  # longer than any keyword window; in no pattern's classes


@pytest.fixture(scope="module")
def scanner() -> Any:
    return Detection.from_settings(DetectionSettings()).default


def _hits(scanner: Any, text: str) -> list[tuple[str, int, int]]:
    return sorted((h.type, h.start, h.end) for h, _d in scanner.scan_text(text))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(WORDS), max_size=120))
def test_doubled_input_finds_each_copy_exactly(scanner: Any, words: list[str]) -> None:
    text = "".join(words)
    once = _hits(scanner, text)
    shift = len(text) + len(SEPARATOR)
    expected = sorted(once + [(t, s + shift, e + shift) for t, s, e in once])
    assert _hits(scanner, text + SEPARATOR + text) == expected
    for _t, start, end in once:
        assert 0 <= start < end <= len(text)


@pytest.mark.parametrize("unit", ["1", "1 ", "1-", "a", "a.", "a@", "@a.", ":", "f:", "1.", "AKIA", "eyJ",
                                  "eyJa.", "sk-", "password=", "x://a:", "GB82 ", "4111 ", "(1", "A1",
                                  "-----BEGIN PRIVATE KEY-----", "passport 1", "SSN 1", "\u200b"])
def test_long_repetitive_inputs_scan_consistently(scanner: Any, unit: str) -> None:
    # a catastrophic pattern would take hours here; linear ones take milliseconds
    text = unit * (20000 // len(unit))
    first = _hits(scanner, text)
    assert first == _hits(scanner, text)
    doubled = _hits(scanner, text + SEPARATOR + text)
    shift = len(text) + len(SEPARATOR)
    assert doubled == sorted(first + [(t, s + shift, e + shift) for t, s, e in first])
