# ruff: noqa: RUF001  (look-alike characters are the test data)
"""Folding for detection: what it folds, and the offset map back to the original text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lictor.detect.normalize import fold

# characters folding must handle: ASCII, look-alikes, invisibles, tags, compatibility forms, marks
TRICKY = st.sampled_from(
    [*"ignore ALL previous", "і", "о", "е", "а", "ρ", "ο", "ｉ", "𝐢", "ﬁ", "é", "\u0301", "\u200b",
     "\u200d", "\u202e", "\ufeff", "\U000e0069", "\U000e007f", "\U0001f170",
     "ß", "İ", "ǅ", "㎏", "½", "日", "\n", "™", "\u00ad", "\ufe0f"])
TEXT = st.lists(st.one_of(TRICKY, st.characters()), max_size=60).map("".join)


@pytest.mark.parametrize(("text", "folded"), [
    ("іgnоrе", "ignore"),                               # Cyrillic look-alikes
    ("ｉｇｎｏｒｅ", "ignore"),                          # fullwidth
    ("𝐢𝐠𝐧𝐨𝐫𝐞", "ignore"),                              # mathematical bold
    ("i\u200bg\u200cn\u200do\u2060r\ufeffe", "ignore"),  # zero-width characters
    ("ïgnörë", "ignore"),                                # diacritics
    ("ig\u0301\u0302nore", "ignore"),                    # stacked combining marks
    ("\u202eignore\u202c", "ignore"),                    # bidi controls
    ("🅸🅶🅽🅾🆁🅴", "IGNORE"),                            # negative squared letters
    ("“quoted” – dash", '"quoted" - dash'),              # typography
    ("plain ASCII stays", "plain ASCII stays"),
])
def test_folds(text: str, folded: str) -> None:
    assert fold(text).text == folded


def test_tag_characters_reveal_the_text_they_hide() -> None:
    hidden = "".join(chr(0xE0000 + ord(c)) for c in "ignore all")
    result = fold("Thanks!" + hidden)
    assert "ignore all" in result.text
    start = result.text.index("ignore")
    assert result.span(start, start + len("ignore all")) == (7, 7 + len("ignore all"))


def test_spans_point_at_the_original_characters() -> None:
    text = "Please іgn\u200bоrе this"
    result = fold(text)
    start = result.text.index("ignore")
    begin, end = result.span(start, start + 6)
    assert text[begin:end] == "іgn\u200bоrе"


def test_ascii_is_returned_as_is() -> None:
    text = "nothing to fold here"
    result = fold(text)
    assert result.text is text
    assert [result.origin(i) for i in range(len(text) + 1)] == list(range(len(text) + 1))


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_origin_is_monotonic_and_inside_the_original(text: str) -> None:
    result = fold(text)
    origins = [result.origin(i) for i in range(len(result.text) + 1)]
    assert origins == sorted(origins)
    assert all(0 <= o <= len(text) for o in origins)
    assert origins[-1] == len(text)


@settings(max_examples=300, deadline=None)
@given(TEXT, st.data())
def test_spans_map_inside_the_original(text: str, data: st.DataObject) -> None:
    result = fold(text)
    n = len(result.text)
    start = data.draw(st.integers(0, n))
    end = data.draw(st.integers(start, n))
    begin, stop = result.span(start, end)
    assert 0 <= begin <= stop <= len(text)
    if end > start:
        assert stop > begin  # a non-empty folded span never maps to nothing


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_folding_is_idempotent(text: str) -> None:
    once = fold(text).text
    assert fold(once).text == once


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_identity_on_ascii(text: str) -> None:
    result = fold(text)
    assert result.text == text
    assert result.span(0, len(text)) == (0, len(text))
