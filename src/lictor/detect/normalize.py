# ruff: noqa: RUF001, RUF002  (look-alike characters are this module's data)
"""Folding text before detection (NFKC, confusable look-alikes, invisible characters) while keeping
a map from every folded position back to the original text, so findings point at the real span.

What folding does, character by character (so offsets stay exact):

- Unicode NFKC compatibility folding: fullwidth ``ｉｇｎｏｒｅ``, mathematical alphanumerics
  ``𝐢𝐠𝐧𝐨𝐫𝐞``, circled and squared letters, ligatures, superscripts, odd spaces;
- Latin diacritics stripped (``ïgnörë`` becomes ``ignore``; stacked "zalgo" marks vanish);
- look-alike letters from other scripts folded to Latin (Cyrillic ``іgnоrе``, Greek, Armenian,
  Cherokee, small capitals, negative squared and regional-indicator letters), typographic quotes
  and dashes to ASCII;
- invisible characters removed (zero-width spaces and joiners, soft hyphens, bidi controls,
  variation selectors, fillers);
- Unicode tag characters (U+E0020..E007E, invisible "ASCII smuggling") turned back into the ASCII
  they hide, set off by spaces, so a hidden instruction becomes visible to the detectors.

Case is kept: detectors that care lower-case for themselves. Text that is pure ASCII is returned as
is, without building a map.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass

__all__ = ["Folded", "fold"]


@dataclass(frozen=True, slots=True)
class Folded:
    """``text`` folded, and ``origin(i)``: the original index of folded index ``i`` (``i`` may be
    ``len(text)``, mapping to the original's end).

    The map is piecewise linear: at folded index ``folded_at[k]`` the original index is
    ``original_at[k]`` and grows by one per folded character until the next break. Without breaks
    (ASCII input, nothing changed) the map is the identity."""

    text: str
    original: str
    folded_at: tuple[int, ...] = ()
    original_at: tuple[int, ...] = ()

    def origin(self, i: int) -> int:
        """The original index of folded index ``i`` (clamped to ``[0, len(text)]``)."""
        i = min(max(i, 0), len(self.text))
        if i == len(self.text):
            return len(self.original)
        if not self.folded_at:
            return i
        k = bisect_right(self.folded_at, i) - 1
        if k < 0:
            return i
        return self.original_at[k] + (i - self.folded_at[k])

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of folded span ``[start, end)``: from the original character that
        produced ``start`` to the end of the one that produced ``end - 1``."""
        begin = self.origin(start)
        if end <= start:
            return begin, begin
        return begin, min(self.origin(end - 1) + 1, len(self.original))


# Look-alikes that NFKC leaves alone, folded to the Latin letter they imitate (after the Unicode
# confusables list, restricted to letters commonly used to dodge keyword filters).
_LOOKALIKES = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x",
    "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "һ": "h", "ԛ": "q", "ԝ": "w", "ӏ": "l",
    "ү": "y", "ɡ": "g", "ո": "n", "ս": "u", "օ": "o", "հ": "h", "ց": "g", "զ": "q", "ա": "w",
    "А": "A", "В": "B", "Е": "E", "Ё": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
    "С": "C", "Т": "T", "Х": "X", "У": "Y", "Ѕ": "S", "І": "I", "Ї": "I", "Ј": "J", "Ԛ": "Q",
    "Ԝ": "W", "Ү": "Y", "Ӏ": "I", "Ԁ": "D", "Һ": "H", "Ꮃ": "W",
    # Greek
    "α": "a", "β": "b", "γ": "y", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "ϲ": "c", "ϳ": "j", "ω": "w", "ς": "s",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "Ϲ": "C", "Ϳ": "J",
    # Latin variants and small capitals
    "ı": "i", "ȷ": "j", "ɑ": "a", "ɩ": "i", "ʟ": "l", "ɪ": "i", "ʀ": "r", "ʏ": "y", "ɴ": "n",
    "ɢ": "g", "ʜ": "h", "ʙ": "b", "ᴀ": "a", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ᴊ": "j", "ᴋ": "k",
    "ᴍ": "m", "ᴏ": "o", "ᴘ": "p", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ᴢ": "z", "ꜱ": "s",
    "ƅ": "b", "ɾ": "r", "ʋ": "u", "ɵ": "o", "ø": "o", "Ø": "O", "đ": "d", "ħ": "h", "ł": "l",
    "Ł": "L", "ŧ": "t", "ƚ": "l", "ɍ": "r", "ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe",
    # Cherokee capitals that copy Latin ones
    "Ꭺ": "A", "Ᏼ": "B", "Ꮯ": "C", "Ꭰ": "D", "Ꭼ": "E", "Ꮐ": "G", "Ꮋ": "H", "Ꭻ": "J", "Ꮶ": "K",
    "Ꮮ": "L", "Ꮇ": "M", "Ꮲ": "P", "Ꮪ": "S", "Ꭲ": "T", "Ꮩ": "V", "Ꮤ": "W", "Ꮓ": "Z",
    # punctuation
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "“": '"', "”": '"', "„": '"', "‟": '"',
    "″": '"', "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "―": "-", "−": "-", "⁄": "/",
    "∕": "/", "＼": "\\", "⧸": "/", "․": ".", "‧": ".", "•": "*", "·": ".",
}

_INVISIBLE = frozenset([
    0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180B, 0x180C, 0x180D, 0x180E,
    0x180F, 0x3164, 0xFEFF, 0xFFA0, 0xE0001, 0xE007F,
    *range(0x200B, 0x2010),     # zero-width space, non-joiner, joiner; LRM, RLM
    *range(0x202A, 0x202F),     # bidi embeddings and overrides
    *range(0x2060, 0x2070),     # word joiner, invisible operators, bidi isolates
    *range(0xFE00, 0xFE10),     # variation selectors
    *range(0xFFF9, 0xFFFC),     # interlinear annotation
])

# combining marks used with Latin, Greek and Cyrillic (not the vowel signs of other scripts)
_DIACRITIC_BLOCKS = ((0x0300, 0x036F), (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF), (0x20D0, 0x20FF),
                     (0xFE20, 0xFE2F))

_TAG_FIRST, _TAG_LAST = 0xE0020, 0xE007E
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")

_cache: dict[str, str] = {}


def _is_diacritic(code: int) -> bool:
    return any(lo <= code <= hi for lo, hi in _DIACRITIC_BLOCKS)


def _step(ch: str) -> str:
    """One round of folding for one character."""
    found = _LOOKALIKES.get(ch)
    if found is not None:
        return found
    code = ord(ch)
    if code in _INVISIBLE or 0xE0100 <= code <= 0xE01EF or _is_diacritic(code):
        return ""
    if 0x1F130 <= code <= 0x1F149:  # squared capitals (NFKC handles most, not all versions)
        return chr(ord("A") + code - 0x1F130)
    if 0x1F150 <= code <= 0x1F169:  # negative circled capitals
        return chr(ord("A") + code - 0x1F150)
    if 0x1F170 <= code <= 0x1F189:  # negative squared capitals
        return chr(ord("A") + code - 0x1F170)
    if 0x1F1E6 <= code <= 0x1F1FF:  # regional indicators
        return chr(ord("A") + code - 0x1F1E6)
    compat = unicodedata.normalize("NFKC", ch)
    if compat != ch:
        return compat
    decomposed = unicodedata.normalize("NFD", ch)
    if len(decomposed) > 1:
        return "".join(c for c in decomposed if not _is_diacritic(ord(c)))
    return ch


def _fold_char(ch: str) -> str:
    """The folding of one character, iterated to a fixed point so that folding is idempotent."""
    done = _cache.get(ch)
    if done is not None:
        return done
    out = ch
    for _ in range(6):
        nxt = "".join(_step(c) for c in out)
        if nxt == out:
            break
        out = nxt
    if len(_cache) < 65536:
        _cache[ch] = out
    return out


_LAST: list[Folded] = []


def fold(text: str) -> Folded:
    """Fold ``text`` for detection, keeping the map back to ``text``. The last text's folding is
    kept: the engine and the detectors that fold for themselves fold the same string in turn."""
    if text.isascii():
        return Folded(text, text)
    last = _LAST[0] if _LAST else None
    if last is not None and last.original is text:
        return last
    folded = _fold(text)
    _LAST[:] = [folded]
    return folded


def _fold(text: str) -> Folded:
    pieces: list[str] = []
    folded_at: list[int] = []
    original_at: list[int] = []
    length = 0  # length of the folded text built so far
    last = 0    # original index up to which text has been copied
    for run in _NON_ASCII.finditer(text):
        in_tags = False
        for offset, ch in enumerate(run.group()):
            pos = run.start() + offset
            code = ord(ch)
            if _TAG_FIRST <= code <= _TAG_LAST:
                out = chr(code - 0xE0000)
                if not in_tags:
                    out = " " + out
                in_tags = True
            else:
                out = _fold_char(ch)
                if in_tags:
                    out = " " + out
                in_tags = False
            if out == ch:
                continue
            if pos > last:
                pieces.append(text[last:pos])
                length += pos - last
            # every folded character of ``out`` comes from ``pos``; the text after it from pos + 1
            for j in range(len(out)):
                folded_at.append(length + j)
                original_at.append(pos)
            pieces.append(out)
            length += len(out)
            folded_at.append(length)
            original_at.append(pos + 1)
            last = pos + 1
        if in_tags:  # a space after the hidden text, standing for the end of the tag run
            end = run.end()
            pieces.append(" ")
            folded_at.append(length)
            original_at.append(end)
            length += 1
            folded_at.append(length)
            original_at.append(end)
    pieces.append(text[last:])
    folded = "".join(pieces)
    if not folded_at:
        return Folded(text, text)
    return Folded(folded, text, tuple(folded_at), tuple(original_at))
