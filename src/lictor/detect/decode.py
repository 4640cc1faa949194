"""Finding encoded runs inside text (base64, hex, ROT13, URL encoding) and decoding them so that
detectors can rescan what they hide, within a bounded budget of decoded characters.

PLACEHOLDER: finds nothing; the real decoder replaces it in this same module."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Segment", "segments"]


@dataclass(frozen=True, slots=True)
class Segment:
    """An encoded run ``[start, end)`` of the scanned text, its ``encoding`` and ``decoded`` text."""

    start: int
    end: int
    encoding: str
    decoded: str


def segments(text: str, budget: int = 65536) -> Iterator[Segment]:
    """Yield the encoded runs of ``text`` whose decoding is plausible text, decoding at most
    ``budget`` characters in all."""
    return iter(())
