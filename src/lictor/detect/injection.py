"""Prompt-injection and jailbreak detection: scored combinations of cues (an override verb with an
instruction object, a reveal verb with the system prompt, a persona with a bypass, text addressed
to the model inside tool output) found in folded, de-leeted, de-spaced text.

How a scan goes:

1. ``fold`` (NFKC, look-alikes, invisible characters), then lower case and leetspeak folded
   (``0→o 1→i 3→e 4→a 5→s 7→t 8→b $→s``; a second view reads ``1`` as ``l`` and ``@`` as ``a``
   when the text has either, so e-mail addresses survive in the first);
   letters spaced or dotted apart (``i g n o r e``, ``i.g.n.o.r.e``) are joined, a wider gap
   becoming one space. Every view keeps an exact map back to the original text.
2. All cues in one RE2 set: one linear pass over each view tells which cues match at all. For
   text without cues (almost all benign text) that pass is the whole cost.
3. The cues that matched, each alone in RE2, say where. Every cue has a weight and a type; the
   patterns are bounded, and RE2 runs in time linear in the text whatever the pattern.
4. Each cue's score is raised by the other cues near it (within ``window`` characters):
   ``s + (1 - s) * 0.6 * support`` where ``support`` is the noisy-or of their weights. A weak cue
   alone ("pretend you are", "no restrictions") stays below the threshold; together they pass it.
5. Cues at or above ``threshold`` become hits; overlapping hits of one type are merged.
"""

from __future__ import annotations

import functools
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import re2

from lictor.detect.base import Hit
from lictor.detect.injection_cues import CUES, Cue
from lictor.detect.injection_cues import compiled as compiled_cues
from lictor.detect.normalize import Folded, fold
from lictor.errors import ConfigError

__all__ = ["TYPES", "InjectionDetector"]

TYPES = (
    "injection.delimiter",
    "injection.jailbreak",
    "injection.override",
    "injection.roleplay",
    "injection.system_prompt",
    "injection.tool_output",
)

_LEET_I = bytes.maketrans(b"0134578$", b"oieastbs")    # keeps "@": e-mail addresses are cues too
_LEET_L = bytes.maketrans(b"0134578@$", b"oleastbas")
# letters (after leet folding) standing alone, separated by 1-3 separator characters, 4 or more
_SPACED = re.compile(r"(?<![a-z])[a-z](?:[ .\-_*|/\\,:;+~'\"`]{1,3}[a-z](?![a-z])){3,}")
_SPACED_GAP = re.compile(r"[ .\-_*|/\\,:;+~'\"`]{1,3}")
_CLASS = bytes(0x61 if chr(i).isascii() and (chr(i).isalnum() or chr(i) in "@$") else 0x20 for i in range(256))


@dataclass(frozen=True, slots=True)
class _Found:
    type: str
    weight: float
    start: int  # in the original text
    end: int


@functools.cache
def _spaced_re2() -> Any:
    """``_SPACED`` for ASCII text in RE2: the boundaries are consumed, then trimmed off."""
    return re2.compile(r"(?:^|[^a-z])[a-z](?:[ .\-_*|/\\,:;+~'\"`]{1,3}[a-z]){3,}(?:[^a-z]|$)")


def _spaced_runs(text: str) -> Iterator[tuple[int, int]]:
    """The runs of letters written apart in ``text``, linear time."""
    if not text.isascii():
        for match in _SPACED.finditer(text):
            yield match.span()
        return
    for match in _spaced_re2().finditer(text):
        start, end = match.span()
        if not "a" <= text[start] <= "z":
            start += 1
        if not "a" <= text[end - 1] <= "z":
            end -= 1
        yield start, end


def _despace(text: str) -> Folded | None:
    """Join letters written apart (``i g n o r e``); a gap wider than the narrowest one in the run
    becomes one space (a word break). None when there are none. The map points into ``text``."""
    pieces: list[str] = []
    folded_at: list[int] = []
    original_at: list[int] = []
    last = length = 0
    for run_start, run_end in _spaced_runs(text):
        gaps = list(_SPACED_GAP.finditer(text, run_start, run_end))
        narrow = min(g.end() - g.start() for g in gaps)
        kinds = [g.group() for g in gaps]
        usual = max(set(kinds), key=kinds.count)
        pieces.append(text[last:run_start])
        length += run_start - last
        at = run_start
        for gap in gaps:
            folded_at.append(length)
            original_at.append(at)
            pieces.append(text[at])  # the letter before this gap
            length += 1
            if gap.end() - gap.start() > narrow or (gap.group() != usual and " " in gap.group()
                                                     and " " not in usual):
                folded_at.append(length)
                original_at.append(gap.start())
                pieces.append(" ")
                length += 1
            at = gap.end()
        folded_at.append(length)
        original_at.append(at)
        pieces.append(text[at])  # the last letter
        length += 1
        folded_at.append(length)
        original_at.append(run_end)
        last = run_end
    if not pieces:
        return None
    pieces.append(text[last:])
    return Folded("".join(pieces), text, tuple(folded_at), tuple(original_at))


class InjectionDetector:
    """Prompt injection and jailbreak attempts (types in ``TYPES``).

    Options: ``threshold`` (0..1, default 0.5) below which a cue is not reported; ``window``
    (characters, default 300) within which cues support each other; ``extra_cues``, a mapping from
    a type to a list of regular expressions (RE2 syntax, matched against the folded, lower-cased,
    de-leeted text) added as strong cues of that type; ``disabled_types``, types never reported."""

    name = "injection"
    version = "1"
    types: tuple[str, ...] = ("injection.*",)
    #: It folds the text itself: the engine need not scan the folded text with it again.
    folds_input = True

    def __init__(self, *, threshold: float = 0.5, window: int = 300,
                 extra_cues: dict[str, list[str]] | None = None,
                 disabled_types: Iterable[str] = ()) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"must be between 0 and 1, not {threshold!r}", path="threshold")
        if window < 0:
            raise ConfigError(f"must not be negative, not {window!r}", path="window")
        self.threshold = float(threshold)
        self.window = int(window)
        self.disabled = frozenset(disabled_types)
        self.custom: list[tuple[str, Any]] = []  # (type, RE2 pattern): linear time, whatever is configured
        for type_, patterns in (extra_cues or {}).items():
            if not type_.startswith("injection."):
                raise ConfigError(f"a cue type must start with 'injection.', not {type_!r}",
                                  path="extra_cues")
            for i, pattern in enumerate(patterns):
                try:
                    compiled = re2.compile(pattern)
                except re2.error as exc:
                    raise ConfigError(f"not a regular expression RE2 accepts: {exc}",
                                      path=f"extra_cues.{type_}[{i}]") from exc
                self.custom.append((type_, compiled))
        self.engine = compiled_cues()

    def _views(self, folded: Folded) -> list[tuple[bytes, Folded | None]]:
        """The texts to match, as UTF-8 (lower case, leet folded, de-spaced), with the map of the
        de-spaced one into ``folded`` (the others have the same character offsets)."""
        lower = folded.text.lower()
        if len(lower) != len(folded.text):  # a lower case that changes length: keep the case
            lower = folded.text
        data = lower.encode("utf-8")
        views: list[tuple[bytes, Folded | None]] = [(data.translate(_LEET_I), None)]
        if b"1" in data or b"@" in data:
            views.append((data.translate(_LEET_L), None))
        # both leet views have the same character classes ("1" and "@" become letters in either),
        # so one test tells whether either has letters written apart
        if b"a a a a" in views[0][0].translate(_CLASS):
            for view, _ in list(views):
                spaced = _despace(view.decode("utf-8"))
                if spaced is not None:
                    views.append((spaced.text.encode("utf-8"), spaced))
        return views

    def scan(self, text: str) -> list[Hit]:
        if not text:
            return []
        folded = fold(text)
        found: list[_Found] = []
        seen: set[tuple[str, int, int]] = set()
        for view, inner in self._views(folded):
            for type_, weight, start, end in self._matches(view):
                if inner is not None:
                    start, end = inner.span(start, end)
                start, end = folded.span(start, end)
                key = (type_, start, end)
                if key not in seen:
                    seen.add(key)
                    found.append(_Found(type_, weight, start, end))
        return self._score(found)

    def _matches(self, data: bytes) -> Iterator[tuple[str, float, int, int]]:
        """Every cue match in the UTF-8 text ``data``, in character offsets: the RE2 set says which
        cues match (one linear pass, the whole cost for text without cues), then those cues alone
        say where."""
        matched = self.engine.set.Match(data)
        if matched:
            spans: list[tuple[Cue, int, int]] = []
            for index in sorted(matched):
                cue = CUES[index]
                if cue.type not in self.disabled:
                    spans.extend((cue, *self.engine.trim(index, data, *m.span()))
                                 for m in self.engine.regexes[index].finditer(data))
            chars = None if data.isascii() else _CharOffsets(data)
            for cue, start, end in spans:
                if chars is not None:
                    start, end = chars(start), chars(end)
                yield cue.type, cue.weight, start, end
        if self.custom:
            chars = None if data.isascii() else _CharOffsets(data)
            for type_, pattern in self.custom:
                for found in pattern.finditer(data):
                    start, end = found.span()
                    if chars is not None:
                        start, end = chars(start), chars(end)
                    yield type_, 0.9, start, end

    def _score(self, found: list[_Found]) -> list[Hit]:
        """Each cue's weight raised by the other cues starting within ``window`` of it."""
        if not found:
            return []
        found.sort(key=lambda f: f.start)
        starts = [f.start for f in found]
        hits: list[Hit] = []
        for i, cue in enumerate(found):
            miss = 1.0
            lo = bisect_left(starts, cue.start - self.window)
            hi = bisect_right(starts, cue.start + self.window)
            for j in range(lo, hi):
                other = found[j]
                if j != i and (other.type != cue.type or other.start >= cue.end or other.end <= cue.start):
                    miss *= 1.0 - other.weight
            score = cue.weight + (1.0 - cue.weight) * 0.6 * (1.0 - miss)
            if score >= self.threshold:
                hits.append(Hit(cue.type, cue.start, cue.end, round(min(score, 1.0), 3)))
        return _merge(hits)


class _CharOffsets:
    """Character offsets of UTF-8 byte offsets into ``data``, for offsets asked in any order;
    linear overall: the count of continuation bytes is kept per 4 KB block."""

    _BLOCK = 4096

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.before: list[int] = [0]  # continuation bytes before each block
        for at in range(0, len(data), self._BLOCK):
            chunk = data[at:at + self._BLOCK]
            self.before.append(self.before[-1] + len(chunk) - len(chunk.translate(None, _CONTINUATION)))

    def __call__(self, offset: int) -> int:
        block = offset // self._BLOCK
        chunk = self.data[block * self._BLOCK:offset]
        return offset - self.before[block] - (len(chunk) - len(chunk.translate(None, _CONTINUATION)))


_CONTINUATION = bytes(range(0x80, 0xC0))


def _merge(hits: list[Hit]) -> list[Hit]:
    """Overlapping hits of one type become one, with the higher score."""
    out: list[Hit] = []
    for hit in sorted(hits, key=lambda h: (h.type, h.start, h.end)):
        if out and out[-1].type == hit.type and hit.start < out[-1].end:
            last = out[-1]
            out[-1] = Hit(last.type, last.start, max(last.end, hit.end), max(last.score, hit.score))
        else:
            out.append(hit)
    return sorted(out, key=lambda h: (h.start, h.type))
