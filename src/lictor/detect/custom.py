"""Custom types an operator defines in settings: a regular expression (RE2: linear time whatever
the pattern) or a keyword list (whole words, any case), each reported as ``custom.NAME``."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from lictor.detect.base import Hit
from lictor.detect.settings import CustomPattern

__all__ = ["CustomDetector"]


class CustomDetector:
    """The operator's own patterns and keyword lists (types ``custom.*``)."""

    name = "custom"
    version = "1"

    def __init__(self, patterns: Sequence[CustomPattern]) -> None:
        import re2

        self.types = tuple(p.type for p in patterns)
        self._compiled: list[tuple[str, float, object]] = []
        for p in patterns:
            if p.pattern is not None:
                self._compiled.append((p.type, p.score, re2.compile(p.pattern)))
            if p.keywords:
                words = "|".join(re.escape(k) for k in sorted(p.keywords, key=len, reverse=True))
                self._compiled.append((p.type, p.score, re2.compile(rf"(?i)\b(?:{words})\b")))

    def scan(self, text: str) -> Iterable[Hit]:
        hits = []
        for kind, score, pattern in self._compiled:
            for m in pattern.finditer(text):  # type: ignore[attr-defined]
                if m.end() > m.start():
                    hits.append(Hit(kind, m.start(), m.end(), score))
        return hits
