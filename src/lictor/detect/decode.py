"""Finding encoded runs inside text (base64, hex, ROT13, URL encoding) and decoding them so that
detectors can rescan what they hide, within a bounded budget of decoded characters.

A run is reported only when its decoding is plausible text: valid UTF-8, printable, mostly letters
and spaces. Binary payloads (images, keys, digests) therefore decode to nothing and cost one C-level
decode each. Decoded text is searched again once more (``base64`` inside ``hex`` and so on), at most
``MAX_DEPTH`` levels deep; a nested segment carries the outermost span and an ``encoding`` such as
``"hex/base64"`` (outer first).

ROT13 cannot be recognised by its characters (it is made of ordinary letters). A run of words is
reported as ROT13 when at least three of its words rotate to very common English words and none of
them is such a word as it stands; the cheap test for the rotated forms of those words runs first,
so ordinary text costs one regex pass. It finds English ROT13 only.
"""

from __future__ import annotations

import binascii
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

import re2

from lictor.detect.triggers import everything, found

__all__ = ["MAX_DEPTH", "Segment", "segments"]

MAX_DEPTH = 2
_MIN_DECODED = 6

# base64 (standard or URL-safe alphabet) and bare hex share one scan: a run of at least 16 such
# characters not preceded by one; hex with separators, ``\xNN`` escapes and %-escapes are separate
_CANDIDATES = re.compile(
    r"(?<![A-Za-z0-9+/_-])(?P<b64>[A-Za-z0-9+/_-]{16,}={0,2})"
    r"|(?P<xesc>(?:\\x[0-9A-Fa-f]{2}){6,})"
    r"|(?<![0-9A-Za-z])(?P<hexsep>(?:[0-9A-Fa-f]{2}[ :,]){7,}[0-9A-Fa-f]{2})(?![0-9A-Za-z])"
    r"|(?P<pct>(?:%[0-9A-Fa-f]{2}[^\s%\"'<>]{0,64}){2,}%[0-9A-Fa-f]{2}[^\s%\"'<>]{0,64})"
)
_URLSAFE = bytes.maketrans(b"-_", b"+/")
_PCT_STOP = frozenset(" \t\r\n%\"'<>")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_HEX_DIGITS = re.compile(r"[0-9A-Fa-f]{2}")

# cheap gates, on the UTF-8 bytes: base64 characters (16 in a row make a candidate), hex pairs
# with separators, and the ROT13 forms of very common words (the, and, you, to, is, of, all, ignore)
_B64_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-"
_B64_CLASS = bytes(0x61 if chr(i) in _B64_CHARS else 0x20 for i in range(256))
_HEX_CLASS = bytes(0x68 if chr(i) in "0123456789abcdefABCDEF" else 0x73 if chr(i) in " :," else 0x2E
                   for i in range(256))
_B64_16 = b"a" * 16
# a %-escape: the %-encoded alternative needs three of them
_PCT_ESC = re.compile(rb"%[0-9A-Fa-f]{2}")
_ROT13_CUES = ("gur", "naq", "lbh", "lbhe", "gb", "vf", "bs", "nyy", "ner", "guvf", "gung", "jvgu", "sbe",
               "zl", "nal", "abj", "vtaber", "vafgehpgvbaf")
_COMMON = frozenset((
    "the", "and", "you", "your", "to", "of", "all", "ignore", "instructions", "previous", "is",
    "are", "this", "that", "with", "for", "system", "prompt", "now", "must", "a", "in", "it", "not",
))
_ROT13 = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm",
)
_WORD = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True, slots=True)
class Segment:
    """An encoded run ``[start, end)`` of the scanned text, its ``encoding`` and ``decoded`` text."""

    start: int
    end: int
    encoding: str
    decoded: str


def _readable(raw: bytes) -> str | None:
    """``raw`` as text if it is printable UTF-8 (text, or another encoding layer), else None."""
    if len(raw) < _MIN_DECODED:
        return None
    if raw.isascii():
        text = raw.decode("ascii")
    else:  # most binary is refused here without raising: a U+FFFD that "raw" does not spell out
        text = raw.decode("utf-8", "replace")
        if "\ufffd" in text:
            if b"\xef\xbf\xbd" not in raw:
                return None
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                return None
    if text.isprintable():
        return text
    printable = sum(1 for c in text if c.isprintable() or c in "\n\r\t")
    if printable < len(text) * 0.95:
        return None
    return text


def _wordy(text: str) -> bool:
    """Whether decoded text reads like words (mostly letters and spaces)."""
    return sum(1 for c in text if c.isalpha() or c == " ") >= len(text) * 0.6


def _decode_b64(run: str) -> str | None:
    body = run.rstrip("=")
    if len(body) % 4 == 1:
        body = body[:-1]
    padded = body + "=" * (-len(body) % 4)
    urlsafe = "-" in body or "_" in body
    if urlsafe and ("+" in body or "/" in body):
        return None
    try:  # what base64.urlsafe_b64decode and base64.b64decode(validate=True) do, without their wrappers
        data = padded.encode("ascii")
        raw = (binascii.a2b_base64(data.translate(_URLSAFE)) if urlsafe
               else binascii.a2b_base64(data, strict_mode=True))
    except (binascii.Error, ValueError):
        return None
    return _readable(raw)


def _decode_hex(digits: str) -> str | None:
    try:
        return _readable(bytes.fromhex(digits))
    except ValueError:
        return None


def _decode(kind: str, run: str) -> tuple[str, str | None]:
    if kind == "b64":
        if len(run) % 2 == 0 and _HEX.fullmatch(run):
            return "hex", _decode_hex(run)
        return "base64", _decode_b64(run)
    if kind in ("xesc", "hexsep"):
        return "hex", _decode_hex("".join(_HEX_DIGITS.findall(run.replace("\\x", " "))))
    return "url", _readable(unquote_to_bytes(run.replace("+", " ")))


#: The prefilter's triggers (name, RE2 pattern): each ROT13 form of a common word, as a word.
TRIGGERS: tuple[tuple[str, str], ...] = tuple(
    (f"decode.rot13.{cue}", f"(?i)(?:^|[^a-z]){cue}(?:[^a-z]|$)") for cue in _ROT13_CUES)
_ROT13_NAMES = tuple(name for name, _pattern in TRIGGERS)


@functools.cache
def _rot13_cues() -> Any:
    """Which ROT13 forms of common words occur (as words), in one RE2 pass (for text the
    prefilter cannot read)."""
    cues = re2.Set.SearchSet()
    for _name, pattern in TRIGGERS:
        cues.Add(pattern)
    cues.Compile()
    return cues


def _rot13(text: str, data: bytes) -> Iterator[Segment]:
    """Runs of words without a common English word among them, of which at least three rotate to
    common English words; looked for only around the places where two or more different ROT13
    forms of common words occur."""
    named = found(text)
    if named is everything():  # not valid Unicode: ask the cues themselves
        present = [_ROT13_CUES[i] for i in _rot13_cues().Match(data) or ()]
    else:
        present = [cue for name, cue in zip(_ROT13_NAMES, _ROT13_CUES, strict=True) if name in named]
    if len(present) < 2:
        return
    folded = text.lower()
    if len(folded) != len(text):
        return
    spots: list[int] = []
    for cue in present:
        at = folded.find(cue)
        while at >= 0 and len(spots) < 100_000:
            spots.append(at)
            at = folded.find(cue, at + 1)
    windows: list[list[int]] = []
    for at in sorted(spots):
        lo, hi = max(0, at - 300), min(len(text), at + 300)
        if windows and lo <= windows[-1][1]:
            windows[-1][1] = hi
        else:
            windows.append([lo, hi])
    for lo, hi in windows:
        yield from _rot13_runs(text, lo, hi)


def _rot13_runs(text: str, lo: int, hi: int) -> Iterator[Segment]:
    first = last = -1
    count = 0
    for word in _WORD.finditer(text, lo, hi):
        lower = word.group().lower()
        if lower in _COMMON:
            if count >= 3:
                yield Segment(first, last, "rot13", text[first:last].translate(_ROT13))
            first, count = -1, 0
            continue
        if first < 0:
            first = word.start()
        last = word.end()
        if lower.translate(_ROT13) in _COMMON:
            count += 1
    if first >= 0 and count >= 3:
        yield Segment(first, last, "rot13", text[first:last].translate(_ROT13))


@functools.cache
def _candidates_re2() -> Any:
    """The candidate scan for ASCII text in RE2 (a DFA pass instead of a backtracking one): the
    boundaries the Python pattern checks by look-behind are implied by leftmost-longest runs."""
    options = re2.Options()
    options.max_mem = 32 << 20
    return re2.compile(
        r"(?P<b64>[A-Za-z0-9+/_-]{16,}={0,2})"
        r"|(?P<xesc>(?:\\x[0-9A-Fa-f]{2}){6,})"
        r"|\b(?P<hexsep>(?:[0-9A-Fa-f]{2}[ :,]){7,}[0-9A-Fa-f]{2})\b"
        r"|(?P<pct>(?:%[0-9A-Fa-f]{2}[^\s%\"'<>]{0,64}){2,}%[0-9A-Fa-f]{2}[^\s%\"'<>]{0,64})",
        options=options)


def _kind(run: str) -> str:
    """Which alternative of the candidate scan matched ``run`` (their alphabets tell them apart)."""
    if "%" in run:
        return "pct"
    if run.startswith("\\x"):
        return "xesc"
    if " " in run or ":" in run or "," in run:
        return "hexsep"
    return "b64"


def _b64_runs(data: bytes, classes: bytes) -> Iterator[tuple[int, int, str, str]]:
    """The candidates of ASCII text that can hold only base64 or bare hex runs (no ``%``, no ``\\x``,
    no separated hex pairs): every maximal run of 16 base64 characters or more and up to two ``=``
    after it, exactly what the candidate scan finds there, located by C-speed searches in the
    character classes of ``data`` (base64 character or not) instead of a regex pass."""
    at = classes.find(_B64_16)
    while at != -1:
        start = classes.rfind(b" ", 0, at) + 1
        end = classes.find(b" ", at)
        if end == -1:
            end = len(classes)
        stop = end
        while stop < len(data) and stop - end < 2 and data[stop] == 0x3D:  # "="
            stop += 1
        yield start, stop, data[start:stop].decode("ascii"), "b64"
        at = classes.find(_B64_16, stop)


def _candidate_runs(text: str, data: bytes) -> Iterator[tuple[int, int, str, str]] | None:
    """(start, end, run, kind) of each candidate in ``text`` (``data`` its UTF-8), or None when there is
    none (a few C-level passes rule most text out)."""
    ascii_only = len(data) == len(text)
    # one byte per character (every other character becomes "?", in none of the alphabets)
    chars = data if ascii_only else text.encode("ascii", "replace")
    classes = chars.translate(_B64_CLASS)
    hexsep = b"hhshhshhshhshhshhshh" in chars.translate(_HEX_CLASS)
    escapes = b"\\x" in chars or _PCT_ESC.search(chars) is not None
    if not (hexsep or escapes):
        return _b64_runs(chars, classes) if _B64_16 in classes else None
    if not ascii_only:
        return ((m.start(), m.end(), m.group(), _kind(m.group())) for m in _CANDIDATES.finditer(text))
    return ((m.start(), m.end(), m.group(), _kind(m.group())) for m in _candidates_re2().finditer(text))


def _scan(text: str, depth: int, budget: list[int]) -> Iterator[tuple[int, int, str, str]]:
    data = text.encode("utf-8", "surrogatepass")
    runs = _candidate_runs(text, data)
    if runs is None:
        return
    for start, match_end, run, kind in runs:
        if budget[0] <= 0:
            return
        if kind == "pct":  # take in the word the first escape is glued to
            floor = max(0, start - 64)
            while start > floor and text[start - 1] not in _PCT_STOP:
                start -= 1
            run = text[start:match_end]
        encoding, decoded = _decode(kind, run)
        if decoded is None or decoded == run:
            continue
        budget[0] -= len(decoded)
        if budget[0] < 0:
            decoded = decoded[: len(decoded) + budget[0]]
        if _wordy(decoded):
            yield start, match_end, encoding, decoded
        if depth + 1 < MAX_DEPTH:
            for _, _, inner, again in _scan(decoded, depth + 1, budget):
                yield start, match_end, f"{encoding}/{inner}", again


def segments(text: str, budget: int = 65536) -> Iterator[Segment]:
    """Yield the encoded runs of ``text`` whose decoding is plausible text, decoding at most
    ``budget`` characters in all (nested decodings count too). Linear in ``len(text)``."""
    left = [budget]
    for start, end, encoding, decoded in _scan(text, 0, left):
        yield Segment(start, end, encoding, decoded)
    if left[0] > 0:
        for seg in _rot13(text, text.encode("utf-8", "surrogatepass")):
            if left[0] <= 0:
                return
            left[0] -= len(seg.decoded)
            yield seg
