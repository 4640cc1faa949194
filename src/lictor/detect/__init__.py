"""Content detectors: PII, secrets, prompt injection and exfiltration found in an action's ``content``
and in every string inside its ``args``, reported as findings that policies use as data."""

from lictor.detect.base import ENTRY_POINT_GROUP, Detector, Hit, detector_names, load_detector
from lictor.detect.engine import CustomDetector, Detection, Scanner, merge_findings, text_fields
from lictor.detect.settings import (
    AllowList,
    CustomPattern,
    DetectionSettings,
    DetectorSettings,
    parse_detection_settings,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "AllowList",
    "CustomDetector",
    "CustomPattern",
    "Detection",
    "DetectionSettings",
    "Detector",
    "DetectorSettings",
    "Hit",
    "Scanner",
    "detector_names",
    "load_detector",
    "merge_findings",
    "parse_detection_settings",
    "text_fields",
]
