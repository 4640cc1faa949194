"""Content detectors: PII, secrets, prompt injection and exfiltration found in an action's ``content``
and in every string inside its ``args``, reported as findings that policies use as data."""

from lictor.detect.base import ENTRY_POINT_GROUP, Detector, Hit

__all__ = ["ENTRY_POINT_GROUP", "Detector", "Hit"]
