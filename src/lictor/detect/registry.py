"""Finding detectors by name through the entry point group ``lictor.detectors``: the built-in
detectors are declared there by this package exactly as a plug-in package declares its own."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from lictor.detect.base import ENTRY_POINT_GROUP, Detector
from lictor.errors import ConfigError

__all__ = ["detector_names", "load_detector"]


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
