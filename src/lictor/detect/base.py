"""What a content detector is: something that scans one string and reports typed spans (hits), and the
registry through which built-in and plug-in detectors are found (entry point group ``lictor.detectors``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Protocol, runtime_checkable

from lictor.errors import ConfigError

__all__ = ["ENTRY_POINT_GROUP", "Detector", "Hit", "detector_names", "load_detector"]

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


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def detector_names() -> tuple[str, ...]:
    """The names of every registered detector, sorted."""
    return tuple(sorted(_entry_points()))


def load_detector(name: str, options: Mapping[str, Any] | None = None, *, path: str = "detectors.enabled") -> Detector:
    """Build the detector registered as ``name`` with keyword ``options``. Raises ConfigError (at
    ``path``) for an unknown name, a plug-in that does not load, bad options or an object that is
    not a detector."""
    points = _entry_points()
    point = points.get(name)
    if point is None:
        known = ", ".join(sorted(points)) or "none"
        raise ConfigError(f"unknown detector {name!r} (registered: {known})", path=path)
    try:
        factory = point.load()
    except Exception as exc:  # a plug-in's import error of any kind
        raise ConfigError(f"detector {name!r} ({point.value}) does not load: {exc}", path=path) from exc
    try:
        detector = factory(**dict(options or {}))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"detector {name!r} refuses its options: {exc}", path=f"detectors.options.{name}") from exc
    if not isinstance(detector, Detector):
        raise ConfigError(f"{point.value} is not a detector (it needs name, version, types and scan)", path=path)
    return detector
