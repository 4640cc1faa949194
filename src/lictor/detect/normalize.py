"""Folding text before detection (NFKC, confusable look-alikes, invisible characters) while keeping
a map from every folded position back to the original text, so findings point at the real span.

PLACEHOLDER: identity folding; the real folding replaces it in this same module."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Folded", "fold"]


@dataclass(frozen=True, slots=True)
class Folded:
    """``text`` folded, and ``origin(i)``: the original index of folded index ``i`` (``i`` may be
    ``len(text)``, mapping to the original's end)."""

    text: str
    original: str

    def origin(self, i: int) -> int:
        return i

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of folded span ``[start, end)``."""
        return self.origin(start), self.origin(end)


def fold(text: str) -> Folded:
    return Folded(text, text)
