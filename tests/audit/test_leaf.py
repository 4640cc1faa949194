"""Decision leaves: auditor fields present, sensitive content absent, commitments binding, decoding
fail-closed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lictor import Action, Finding, VerificationError, load_policies
from lictor.audit.leaf import (
    LEAF_VERSION,
    SENSITIVE_FIELDS,
    commit,
    decision_leaf,
    decode_leaf,
    encode_leaf,
    new_salts,
    verify_commitment,
)

NOW = datetime(2026, 11, 28, 15, tzinfo=UTC)
POLICY = """apiVersion: lictor/v1
kind: Policy
metadata: {name: credit}
spec:
  rules:
    - name: large
      when: args.amount > 100000
      verdict: BLOCK
      approval: {approvers: ["role:credit-officer"]}
    - name: parse-code
      when: int(args.code) > 5
      verdict: LOG
    - name: mask
      when: has_finding("pii.*")
      verdict: CONSTRAIN
      constrain: [{redact: {paths: [args.note], findings: ["pii.*"]}}]
"""


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> object:
    d: Path = tmp_path_factory.mktemp("p")
    (d / "p.yaml").write_text(POLICY)
    return load_policies(d)


def decide(policies: object, data: dict[str, object], findings: tuple[Finding, ...] = ()) -> tuple[object, Action]:
    action = Action.from_dict(data)
    return policies.evaluate(action, now=NOW, findings=findings), action  # type: ignore[attr-defined]


def test_auditor_fields_are_in_the_leaf(policies: object) -> None:
    decision, action = decide(policies, {"system": "credit-scoring", "kind": "tool_call", "name": "approve_credit",
                                         "args": {"amount": 150000, "code": "7"}})
    leaf = decision_leaf(decision, action, risk_tier="high", salts=new_salts())  # type: ignore[arg-type]
    assert leaf["v"] == LEAF_VERSION and leaf["type"] == "decision"
    assert leaf["verdict"] == "BLOCK"
    assert leaf["ts"] == "2026-11-28T15:00:00.000000Z"
    assert leaf["policy_revision"].startswith("sha256:")
    assert [(r["policy"], r["rule"]) for r in leaf["reasons"]] == [("credit", "large"), ("credit", "parse-code")]
    assert leaf["approval_required"] == [{"approvers": ["role:credit-officer"], "quorum": 1}]
    assert leaf["risk_tier"] == "high"
    assert set(leaf["commitments"]) == set(SENSITIVE_FIELDS)


markers = st.text(alphabet="QWXZJKV", min_size=12, max_size=16)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(marker=markers)
def test_no_sensitive_value_reaches_the_leaf_bytes(policies: object, marker: str) -> None:
    data = {
        "system": "credit-scoring", "kind": "tool_call", "name": "approve_credit",
        "args": {"amount": 5, "code": marker, "note": f"mail {marker}@example.com"},
        "principal": {"id": marker, "roles": ["analyst"], "attrs": {"email": marker}},
        "agent": {"id": marker}, "resource": {"id": marker, "classification": "confidential"},
        "content": f"please process {marker}", "context": {"customer": marker}, "request_id": marker,
    }
    findings = (Finding("pii.email", "args.note", 5, 5 + len(marker) + 12),)
    decision, action = decide(policies, data, findings)
    assert decision.errors  # int(args.code) fails, and its message quotes the value
    assert any(marker in e.message for e in decision.errors)  # type: ignore[attr-defined]
    leaf_bytes = encode_leaf(decision_leaf(decision, action, risk_tier="low", salts=new_salts()))  # type: ignore[arg-type]
    assert marker.encode() not in leaf_bytes
    assert marker.lower().encode() not in leaf_bytes.lower()


def test_commitments_bind_the_exact_value() -> None:
    salt = b"s" * 32
    c = commit({"amount": 150000}, salt)
    verify_commitment(c, {"amount": 150000}, salt)
    for other_value, other_salt in (({"amount": 150001}, salt), ({"amount": 150000}, b"t" * 32)):
        with pytest.raises(VerificationError):
            verify_commitment(c, other_value, other_salt)
    assert commit({"a": 1, "b": 2}, salt) == commit({"b": 2, "a": 1}, salt)  # canonical, order-free
    with pytest.raises(ValueError):
        commit(1, b"short")


def test_leaf_round_trips_and_decoding_fails_closed(policies: object) -> None:
    decision, action = decide(policies, {"system": "s", "kind": "tool_call", "name": "t", "args": {"amount": 1, "code": "1"}})
    data = encode_leaf(decision_leaf(decision, action, risk_tier="medium", salts=new_salts()))  # type: ignore[arg-type]
    assert encode_leaf(decode_leaf(data)) == data
    leaf = json.loads(data)
    for bad, fragment in (
        ({**leaf, "v": 2}, "unknown leaf version"),
        ({**leaf, "type": "decisions"}, "unknown leaf type"),
    ):
        with pytest.raises(VerificationError, match=fragment) as info:
            decode_leaf(json.dumps(bad, separators=(",", ":"), sort_keys=True).encode(), index=7)
        assert info.value.index == 7
    with pytest.raises(VerificationError, match="not RFC 8785 canonical"):
        decode_leaf(json.dumps(leaf, indent=1).encode())
    with pytest.raises(VerificationError, match="not JSON"):
        decode_leaf(b"\xff\x00")
    with pytest.raises(VerificationError, match="not a JSON object"):
        decode_leaf(b"[]")


def test_encode_refuses_untyped_leaves() -> None:
    with pytest.raises(ValueError):
        encode_leaf({"v": 1, "type": "gossip"})
    with pytest.raises(ValueError):
        encode_leaf({"type": "seal"})


json_keys = st.text(max_size=6)
json_values = st.recursive(
    # integral doubles from 2^53 print as plain digits and read back as integers beyond I-JSON: leaves never hold them
    st.one_of(st.none(), st.booleans(), st.integers(-(2**60), 2**60),
              st.floats(min_value=-1e15, max_value=1e15), st.floats(min_value=1e21, max_value=1e300),
              st.text(max_size=8)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(json_keys, inner, max_size=3), max_leaves=12)


@settings(max_examples=400)
@given(body=st.dictionaries(json_keys, json_values, max_size=5),
       spacing=st.sampled_from([(",", ":"), (", ", ": ")]), sort=st.booleans(), ascii_only=st.booleans())
def test_fast_canonical_check_agrees_with_the_canonicaliser(
        body: dict[str, object], spacing: tuple[str, str], sort: bool, ascii_only: bool) -> None:
    """decode_leaf's fast path must accept exactly the RFC 8785 bytes, whatever the JSON it is given."""
    from lictor.audit.canonical import canonical_json

    leaf = {**body, "v": 1, "type": "seal"}
    try:
        canonical = canonical_json(leaf)
    except (TypeError, ValueError):
        canonical = None
    data = json.dumps(leaf, separators=spacing, sort_keys=sort, ensure_ascii=ascii_only).encode()
    if canonical is not None and data == canonical:
        assert decode_leaf(data) == json.loads(data)
    else:
        with pytest.raises(VerificationError):
            decode_leaf(data)
    if canonical is not None:
        assert decode_leaf(canonical) == json.loads(canonical)
