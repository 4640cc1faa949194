"""The built-in detectors on golden cases (positives and hard negatives), their check digits, and
their registration through the entry point group a plug-in would use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lictor.detect import Detection, DetectionSettings, Detector, detector_names, load_detector
from lictor.detect.checksums import (
    dni_letter,
    eleven_proof,
    iban_valid,
    luhn_valid,
    mod11_10_valid,
    shannon_entropy,
    verhoeff_valid,
)
from lictor.errors import ConfigError

GOLDEN = yaml.safe_load((Path(__file__).parent / "golden.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def scanner() -> Any:
    return Detection.from_settings(DetectionSettings()).default


@pytest.mark.parametrize("case", GOLDEN, ids=[c["text"][:40] for c in GOLDEN])
def test_golden(case: dict[str, Any], scanner: Any) -> None:
    text = case["text"]
    found = [[h.type, text[h.start:h.end]] for h, _d in scanner.scan_text(text)]
    assert sorted(found) == sorted(case["found"])


def test_check_digits() -> None:
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert iban_valid("GB82WEST12345698765432") and not iban_valid("GB82WEST12345698765433")
    assert not iban_valid("GB82WEST1234569876543")  # one character short for GB
    assert verhoeff_valid("2363") and not verhoeff_valid("2364")
    assert eleven_proof("111222333") and not eleven_proof("111222334")
    assert dni_letter(12345678) == "Z"
    assert mod11_10_valid("86095742719") and not mod11_10_valid("86095742718")
    assert shannon_entropy("aaaa") == 0 and shannon_entropy("abcd") == 2


def test_built_ins_are_registered_like_plug_ins() -> None:
    assert {"pii", "secrets", "national_id"} <= set(detector_names())
    for name in ("pii", "secrets", "national_id"):
        detector = load_detector(name)
        assert isinstance(detector, Detector) and detector.name == name and detector.types


def test_an_unknown_detector_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown detector 'nope'"):
        load_detector("nope")
    with pytest.raises(ConfigError, match="refuses its options"):
        load_detector("secrets", {"colour": "red"})


def test_every_hit_type_is_declared(scanner: Any) -> None:
    for case in GOLDEN:
        for hit, detector in scanner.scan_text(case["text"]):
            assert hit.type in detector.types
