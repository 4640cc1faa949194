"""Golden decision cases (decisions.yaml): the combination, error and constraint semantics as data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from lictor import Action, Finding, Verdict, load_policies

CASES: list[dict[str, Any]] = yaml.safe_load((Path(__file__).parent / "decisions.yaml").read_text())
NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden_decision(case: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "policies.yaml").write_text(case["policies"])
    policies = load_policies(
        tmp_path, default_verdict=Verdict[case.get("default_verdict", "ALLOW")]
    )
    action = Action.from_dict(case["action"])
    findings = [Finding.from_dict(f) for f in case.get("findings", [])]
    now = datetime.fromisoformat(case["now"].replace("Z", "+00:00")) if "now" in case else NOW
    decision = None
    for _ in range(case.get("repeat", 1)):
        decision = policies.evaluate(action, now=now, findings=findings)
    assert decision is not None
    want = case["want"]
    assert decision.verdict is Verdict[want["verdict"]]
    assert [f"{r.policy}/{r.rule}" for r in decision.reasons] == want["rules"]
    if "errors" in want:
        assert [[f"{e.policy}/{e.rule}", e.applied] for e in decision.errors] == want["errors"]
        assert all(e.message for e in decision.errors)
    if "action" in want:
        assert decision.action == want["action"]
    if decision.verdict is not Verdict.CONSTRAIN:
        assert decision.action is None
    if "approval" in want:
        (req,) = decision.approval_required
        assert [list(req.approvers), req.quorum, req.ttl_seconds] == want["approval"]
    assert decision.policy_revision == policies.revision
    assert decision.timestamp.endswith("Z")
    assert decision.decision_id.startswith("dec_")
