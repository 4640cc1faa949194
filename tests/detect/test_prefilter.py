"""The fast paths of the detectors find exactly what their reference patterns find: digit runs
from byte classes against the run pattern over the whole text, IP address windows against the
address patterns over the whole text, base64 candidates from byte classes against the candidate
scan, and the shared prefilter's triggers against the checks they stand in for (wider, never
narrower), on texts mixing the characters where the shortcuts could go wrong (non-ASCII digits,
look-alike letters that case-insensitive matching folds, lone surrogates)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from lictor.detect import decode, national, pii, secrets, triggers

PIECES = ["1", "12", "123", "1234", "123456", "4111 1111 1111 1111", " ", "-", ".", "/", "(", ")", "+", ":",
          "::", "a", "B", "X", "GB82", "WEST", "fe80", "ff:", "1.2", ".3.4", "192.168.1.20", "2001:db8::1",
          "\u0661\u0662\u0663", "\u00e9", "\u0130", "\u0131", "\u017f", "\u212a", "\ud800", "\n", "_", "=", "%41",
          "\\x41", "aGVsbG8gd29ybGQhIQ==", "0123456789abcdef", "SGVsbG8gd29ybGQ", "password", "PASSPORT",
          "pa\u017f\u017fport", "MOB\u0130LE", "mob\u0131le", "tel", "Bearer ", "sk-", "AKIA", "bsn", "tin",
          "gur", "naq", "Vtaber", "@"]
TEXTS = st.lists(st.sampled_from(PIECES), max_size=60).map("".join)


@settings(max_examples=400, deadline=None)
@given(TEXTS)
def test_number_runs_are_the_run_pattern_over_the_whole_text(text: str) -> None:
    pii._RUNS_CACHE.clear()
    expected = [m.span() for m in pii._NUMBER.finditer(text)] if pii._has_digit(text) else []
    assert pii.number_runs(text) == expected


@settings(max_examples=400, deadline=None)
@given(TEXTS)
def test_ip_windows_find_what_the_address_patterns_find(text: str) -> None:
    chars = pii._byte_view(text)
    for pattern, table, hint in ((pii._IPV4, pii._IPV4_CLASS, pii._IPV4_HINT),
                                 (pii._IPV6, pii._IPV6_CLASS, pii._IPV6_HINT)):
        found = [m.span() for m in pii._ip_matches(text, chars, pattern, table, hint)]
        assert found == [m.span() for m in pattern.finditer(text)]


@settings(max_examples=400, deadline=None)
@given(TEXTS)
def test_encoded_candidates_are_those_of_the_candidate_scan(text: str) -> None:
    data = text.encode("utf-8", "surrogatepass")
    runs = decode._candidate_runs(text, data)
    found = [(start, end, run) for start, end, run, _kind in runs] if runs is not None else []
    expected = [(m.start(), m.end(), m.group()) for m in decode._CANDIDATES.finditer(text)]
    assert found == expected


@settings(max_examples=400, deadline=None)
@given(TEXTS)
def test_triggers_are_never_narrower_than_the_checks_they_replace(text: str) -> None:
    present = triggers.found(text)
    low = text.lower()
    if any(word in low for word in pii._PASSPORT_WORDS):
        assert "pii.passport" in present
    if pii._PHONE_KEY.search(text):
        assert "pii.phone_key" in present
    if re.search(r"\.\d{1,3}\.\d{1,3}\.", text):
        assert "pii.ipv4" in present
    if re.search(r"::|:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:", text):
        assert "pii.ipv6" in present
    if pii._IBAN.search(text):
        assert "pii.iban" in present
    if any(word in low for word in national._BSN_WORDS):
        assert "national.bsn" in present
    if any(word in low for word in national._DE_TAX_WORDS):
        assert "national.de_tax" in present
    for marker, _i in secrets._MARKERS:
        if marker in text:
            assert f"secrets.marker.{marker}" in present
    for word in secrets._ASSIGN_WORDS:
        if word in low:
            assert f"secrets.word.{word}" in present


def test_a_text_that_is_not_valid_unicode_gets_every_trigger() -> None:
    assert triggers.found("\ud800 plain words") is triggers.everything()
    assert "pii.iban" not in triggers.found("plain words")
