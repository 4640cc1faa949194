"""Globs (targets, glob(), has_finding()): the standard library's fnmatch as the reference, and
linear time on hostile input."""

from __future__ import annotations

import fnmatch

from hypothesis import given, settings
from hypothesis import strategies as st

from lictor.policy.celfuncs import compile_glob

ALPHABET = "abz-.*?[]!^"
texts = st.text(alphabet="ab-.[]!*?", max_size=12)
patterns = st.text(alphabet=ALPHABET, max_size=10)


@settings(max_examples=3000)
@given(pattern=patterns, text=texts)
def test_glob_equals_fnmatch(pattern: str, text: str) -> None:
    assert compile_glob(pattern)(text) == fnmatch.fnmatchcase(text, pattern), (pattern, text)


def test_examples() -> None:
    assert compile_glob("credit-*")("credit-scoring")
    assert not compile_glob("credit-*")("fraud-credit-x")
    assert compile_glob("*")("")
    assert compile_glob("drop_?able")("drop_table")
    assert compile_glob("[a-c]x")("bx") and not compile_glob("[!a-c]x")("bx")
    assert compile_glob("[^a]x")("^x") and not compile_glob("[^a]x")("bx")  # as fnmatch: ^ is a member
    assert compile_glob("pii.*")("pii.email") and not compile_glob("pii.*")("pii")


def test_many_stars_on_long_text() -> None:
    """A backtracking regex would not finish this in any reasonable time (polynomial of degree 8 in
    the text); the piecewise matcher is linear. Untrusted text reaches globs through glob() and
    targets, so this is a denial-of-service guard, not a speed test."""
    text = "a" * 200_000
    assert not compile_glob("*a*a*a*a*a*a*a*a*b")(text)
    assert compile_glob("*a*a*a*a*a*a*a*a*")(text)
    assert compile_glob("a*?*a")(text) and not compile_glob("a*b*a")(text)
