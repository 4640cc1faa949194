"""Action and Decision: strict parsing that names the JSON path, and lossless JSON round trips."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lictor import Action, Decision, Finding, InputError, Reason, RuleError, Verdict
from lictor.model import KINDS, ApprovalRequirement

VALID = {
    "system": "credit-scoring",
    "kind": "tool_call",
    "name": "approve_credit",
    "args": {"amount": 150000, "customer_id": "C-42"},
    "agent": {"id": "loan-agent-7"},
    "principal": {"id": "alice", "roles": ["analyst"], "attrs": {"department": "retail"}},
    "resource": {"id": "crm://customers/42", "classification": "confidential", "labels": ["pii"]},
    "content": "free text",
    "context": {"confidence": 0.55, "environment": "prod"},
    "request_id": "r-1",
    "approval": "rev_1",
}


def test_design_example_parses_and_round_trips() -> None:
    action = Action.from_dict(VALID)
    assert action.to_dict() == VALID
    assert Action.from_dict(json.loads(json.dumps(action.to_dict()))) == action


@pytest.mark.parametrize(
    ("patch", "path", "fragment"),
    [
        ({"sytem": "x"}, "$.sytem", "unknown field"),
        ({"system": None}, "$.system", "missing required"),
        ({"kind": "tool"}, "$.kind", "unknown kind"),
        ({"kind": "mcp_call", "name": None}, "$.name", "missing required field 'name'"),
        ({"system": 5}, "$.system", "expected a string"),
        ({"args": []}, "$.args", "expected an object"),
        ({"args": {"a": float("nan")}}, "$.args.a", "finite"),
        ({"args": {"a": [1, 2**53]}}, "$.args.a[1]", "I-JSON"),
        ({"principal": {"roles": ["a", 3]}}, "$.principal.roles[1]", "expected a string"),
        ({"principal": {"role": ["a"]}}, "$.principal.role", "unknown field"),
        ({"resource": {"classification": 1}}, "$.resource.classification", "expected a string"),
        ({"agent": "bot"}, "$.agent", "expected an object"),
        ({"content": [{"content": "hi"}]}, "$.content[0].role", "role"),
        ({"content": 7}, "$.content", "chat messages"),
        ({"context": {"x": {1: 2}}}, "$.context.x", "keys must be strings"),
    ],
)
def test_bad_action_names_the_json_path(patch: dict[str, Any], path: str, fragment: str) -> None:
    data = {**VALID, **patch}
    with pytest.raises(InputError) as info:
        Action.from_dict(data)
    assert info.value.path == path
    assert fragment in info.value.message


def test_action_must_be_an_object() -> None:
    with pytest.raises(InputError) as info:
        Action.from_dict([VALID])
    assert info.value.path == "$"


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**53 - 1), 2**53 - 1),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=10)
names = st.text(min_size=1, max_size=10)

actions = st.builds(
    lambda kind, name, args, roles, ctx, content: {
        k: v for k, v in {
            "system": "s", "kind": kind, "name": name, "args": args, "context": ctx, "content": content,
            "principal": {"roles": roles} if roles else None,
        }.items() if v not in (None, {}, [])
    },
    st.sampled_from(KINDS), names, st.dictionaries(st.text(max_size=5), json_values, max_size=4),
    st.lists(names, max_size=3), st.dictionaries(st.text(max_size=5), json_values, max_size=3),
    st.one_of(st.none(), st.text(max_size=20), st.just([{"role": "user", "content": "hi"}])),
)


@given(actions)
def test_round_trip_is_lossless(data: dict[str, Any]) -> None:
    action = Action.from_dict(data)
    assert action.to_dict() == data
    assert Action.from_dict(json.loads(json.dumps(action.to_dict()))) == action


def test_decision_round_trips_through_json() -> None:
    decision = Decision(
        decision_id="dec_1", verdict=Verdict.BLOCK,
        reasons=(Reason("p", "r", Verdict.BLOCK, "m", ApprovalRequirement(("role:x",), 2, 60)),),
        errors=(RuleError("p", "r2", "boom", True, "f.yaml:1:2"),),
        constraints=({"policy": "p", "rule": "c", "clamp": {"path": "args.a", "max": 1}},),
        action={"system": "s", "kind": "message"},
        findings=(Finding("pii.email", "args.note", 1, 5, 0.9, "pii", "1"),),
        policy_revision="sha256:00", timestamp="2026-11-28T15:00:00.000000Z", duration_us=41,
    )
    data = json.loads(json.dumps(decision.to_dict()))
    assert data["verdict"] == "BLOCK"
    assert Decision.from_dict(data) == decision


def test_verdicts_are_ordered_least_to_most_restrictive() -> None:
    assert [v.name for v in sorted(Verdict)] == ["ALLOW", "LOG", "CONSTRAIN", "BLOCK"]
    assert max(Verdict.LOG, Verdict.CONSTRAIN) is Verdict.CONSTRAIN
    assert str(Verdict.BLOCK) == "BLOCK"


@pytest.mark.parametrize("bad", [{"type": "x", "score": 2}, {"type": "x", "start": -1}, {"path": "a"}, {"type": "x", "extra": 1}])
def test_bad_findings_are_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        Finding.from_dict(bad)
