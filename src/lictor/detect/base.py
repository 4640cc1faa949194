"""What a content detector is: something that scans one string and reports typed spans (hits), and the
registry through which built-in and plug-in detectors are found (entry point group ``lictor.detectors``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["ENTRY_POINT_GROUP", "Detector", "Hit"]

ENTRY_POINT_GROUP = "lictor.detectors"


@dataclass(frozen=True, slots=True)
class Hit:
    """One thing a detector found in one string: its ``type`` (``pii.email``), the span
    ``[start, end)`` in that string, and a ``score`` between 0 and 1."""

    type: str
    start: int
    end: int
    score: float = 1.0


@runtime_checkable
class Detector(Protocol):
    """A detector: a ``name`` and ``version`` recorded with every finding, the type globs it may
    report (``types``), and ``scan`` over one string. ``scan`` must run in time linear in the
    length of the text; it never raises on any input."""

    name: str
    version: str
    types: tuple[str, ...]

    def scan(self, text: str) -> Iterable[Hit]: ...
