"""The gateway runs the detectors on every action before its policies: findings reach conditions
and redactions, the caller's findings are merged, the audit leaf never holds a matched value, a
failing detector blocks (fail closed), and hash tags are keyed by the gateway."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest

from lictor.config import load_settings
from lictor.detect import Detection, Hit, Scanner
from lictor.errors import ConfigError
from lictor.model import Action, Finding, Verdict
from lictor.runtime import Gateway

POLICY = """\
apiVersion: lictor/v1
kind: Policy
metadata: {name: notes}
spec:
  rules:
    - name: redact-pii
      when: has_finding("pii.*")
      verdict: CONSTRAIN
      constrain:
        - redact: {paths: [args.note], findings: ["pii.*"], mode: label}
        - redact: {paths: [args.customer], findings: ["pii.email"], mode: hash}
    - name: no-keys
      when: has_finding("secret.*")
      verdict: BLOCK
"""
EMAIL = "ann@corp.example"


def _action(**args: object) -> Action:
    return Action.from_dict({"system": "crm", "kind": "tool_call", "name": "save_note", "args": args})


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "notes.yaml").write_text(POLICY, encoding="utf-8")
    (tmp_path / "lictor.yaml").write_text(
        f"database: sqlite:///{tmp_path / 'lictor.db'}\npolicies: {tmp_path / 'policies'}\n"
        f"audit: {{key_file: {tmp_path / 'audit.key'}, payload_key_file: {tmp_path / 'payload.key'}}}\n"
        "detectors: {allow: {values: [ok@corp.example]}}\n", encoding="utf-8")
    return tmp_path


def _gateway(root: Path) -> Gateway:
    return Gateway.from_settings(load_settings(root / "lictor.yaml", env={}))


def test_findings_reach_policies_and_redactions(root: Path) -> None:
    gateway = _gateway(root)
    try:
        decision = gateway.decide(_action(note=f"mail {EMAIL} today", customer=EMAIL, other="ok@corp.example"))
        assert decision.verdict is Verdict.CONSTRAIN
        assert [(f.type, f.path, f.start, f.end, f.detector) for f in decision.findings] == [
            ("pii.email", "args.note", 5, 21, "pii"), ("pii.email", "args.customer", 0, 16, "pii")]
        assert decision.action is not None
        args = decision.action["args"]
        assert args["note"] == "mail [REDACTED:pii.email] today"
        tag = args["customer"]
        assert tag.startswith("[HASH:pii.email:") and len(tag) == len("[HASH:pii.email:]") + 12
        # keyed: not the plain SHA-256 anyone could compute from a guess
        assert hashlib.sha256(EMAIL.encode()).hexdigest()[:12] not in tag
        assert args["other"] == "ok@corp.example"  # allow-listed: no finding
        leaf = json.dumps(gateway.leaf(decision.audit["index"]))
        assert EMAIL not in leaf and "corp.example" not in leaf
        assert '"pii.email"' in leaf
    finally:
        gateway.close()
    again = _gateway(root)  # the same key files: the same tag
    try:
        decision = again.decide(_action(note="x", customer=EMAIL))
        assert decision.action is not None and decision.action["args"]["customer"] == tag
    finally:
        again.close()


def test_caller_findings_are_merged_and_not_repeated(root: Path) -> None:
    gateway = _gateway(root)
    try:
        given = Finding("pii.email", "args.note", 0, 16, 0.7)
        extra = Finding("custom.case", "args.note", 0, 3, 1.0)
        decision = gateway.decide(_action(note=EMAIL), findings=[given, extra])
        assert decision.findings == (given, extra)
        decision = asyncio.run(gateway.adecide(_action(note="key AKIAIOSFODNN7EXAMPLE")))
        assert decision.verdict is Verdict.BLOCK
        assert [f.type for f in decision.findings] == ["secret.aws_access_key"]
    finally:
        gateway.close()


class _Broken:
    name, version, types = "broken", "1", ("x.*",)

    def scan(self, text: str) -> list[Hit]:
        raise RuntimeError("plug-in bug")


def test_a_failing_detector_blocks(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(POLICY, encoding="utf-8")
    gateway = Gateway.open(policies=tmp_path / "p.yaml", database=f"sqlite:///{tmp_path / 'l.db'}",
                           key_file=tmp_path / "a.key", payload_key_file=tmp_path / "p.key",
                           detection=Detection(Scanner([_Broken()])))
    try:
        decision = gateway.decide(_action(note="hello"))
        assert decision.verdict is Verdict.BLOCK
        assert "content detection failed" in decision.errors[0].message
    finally:
        gateway.close()


def test_the_detectors_setting_is_checked_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "lictor.yaml"
    path.write_text("detectors:\n  systems:\n    crm:\n      min_score: {pii.email: 7}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert f"{path}:4:" in str(caught.value) and "detectors.systems.crm.min_score.pii.email" in str(caught.value)
    path.write_text("detectors: {enabled: [pii, nope]}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown detector 'nope'"):
        load_settings(path, env={})
    settings = load_settings(env={"LICTOR_DETECTORS": "{enabled: [secrets]}"})
    assert settings.detectors.default.enabled == ("secrets",)


def test_the_configuration_example_of_the_detectors_page_loads(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "detectors.md").read_text(encoding="utf-8")
    blocks = [b.split("\n", 1)[1] for b in doc.split("```")[1::2] if b.startswith("yaml\ndetectors:")]
    assert len(blocks) == 1
    (tmp_path / "lictor.yaml").write_text(blocks[0], encoding="utf-8")
    settings = load_settings(tmp_path / "lictor.yaml", env={})
    detection = Detection.from_settings(settings.detectors)
    text = "EMP-123456 mailed ann@corp.example and eve@evil.example from 10.0.0.1"
    found = detection.scan(Action.from_dict({"system": "crm", "kind": "message", "content": text}))
    assert [(f.type, text[f.start:f.end]) for f in found] == [
        ("custom.employee_id", "EMP-123456"), ("pii.email", "eve@evil.example")]
    research = detection.scan(Action.from_dict({"system": "research-agent", "kind": "message", "content": text}))
    assert [f.type for f in research] == ["custom.employee_id"]  # secrets only, and the inherited custom types


def test_gateway_open_runs_the_built_in_detectors_unless_told_not_to(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(POLICY, encoding="utf-8")
    common = {"policies": tmp_path / "p.yaml", "database": f"sqlite:///{tmp_path / 'l.db'}",
              "key_file": tmp_path / "a.key", "payload_key_file": tmp_path / "p.key"}
    gateway = Gateway.open(**common)  # type: ignore[arg-type]
    try:
        assert gateway.decide(_action(note=f"to {EMAIL}")).verdict is Verdict.CONSTRAIN
    finally:
        gateway.close()
    gateway = Gateway.open(**common, detectors=None)  # type: ignore[arg-type]
    try:
        decision = gateway.decide(_action(note=f"to {EMAIL}"))
        assert decision.verdict is Verdict.ALLOW and decision.findings == ()
    finally:
        gateway.close()
