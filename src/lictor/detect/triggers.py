"""The shared prefilter of the built-in detectors: the cues each of them starts from (provider key
prefixes, names such as ``password`` or ``passport``, the shape of an IBAN or of an IP address,
the ROT13 forms of common words for decoding), all matched in one RE2 set pass over a text, so
that a detector whose cues are absent skips that work entirely.

Every trigger is a necessary condition, never a decision: a detector asks whether a trigger is
present and, when it is, runs exactly the checks it ran before (a trigger may match more widely,
for instance RE2's case folding is wider than ``str.lower``, never more narrowly). The answers for
the last two texts are kept, since the scanning engine runs every detector on the same string in
turn. A text that is not valid Unicode (lone surrogates) gets every trigger (``everything()``), so
nothing is skipped.
"""

from __future__ import annotations

import functools
from typing import Any

import re2

__all__ = ["everything", "found"]

_LAST: list[tuple[str, frozenset[str]]] = []


@functools.cache
def _compiled() -> tuple[Any, tuple[str, ...]]:
    """The RE2 set of every built-in detector's triggers, and the name of each of its patterns."""
    from lictor.detect import decode, national, pii, secrets

    names: list[str] = []
    found_set = re2.Set.SearchSet()
    for name, pattern in (*pii.TRIGGERS, *national.TRIGGERS, *secrets.TRIGGERS, *decode.TRIGGERS):
        found_set.Add(pattern)
        names.append(name)
    found_set.Compile()
    return found_set, tuple(names)


@functools.cache
def everything() -> frozenset[str]:
    """What ``found`` answers for a text it cannot read (every trigger, this very object)."""
    return frozenset(_compiled()[1])


def found(text: str) -> frozenset[str]:
    """The names of the triggers that occur in ``text`` (one linear pass; the last text's answer
    are kept)."""
    for cached_text, cached in tuple(_LAST):
        if cached_text is text:
            return cached
    compiled, names = _compiled()
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: RE2 would read them as no character at all
        result = everything()
    else:
        matched = compiled.Match(data)
        result = frozenset(names[i] for i in matched) if matched else frozenset()
    _LAST[:] = [(text, result), *_LAST[:1]]  # two texts: a detector may look at a part in between
    return result
