"""Decision leaves: auditor fields present, sensitive content absent, commitments binding, decoding
fail-closed."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lictor import Action, Finding, VerificationError, load_policies
from lictor.audit.canonical import MAX_SAFE_INTEGER, canonical_json
from lictor.audit.leaf import (
    _PLAIN_OPTIONS,
    LEAF_VERSION,
    SENSITIVE_FIELDS,
    _decode_checked,
    _plain_canonical,
    commit,
    decision_leaf,
    decode_leaf,
    encode_leaf,
    new_salts,
    random_bytes,
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


# --- decode_leaf's fast path (msgspec's decoder and orjson's encoder) against the full check -----------
# The fast path may only accept bytes the full check accepts, with the same value, and must leave every
# failure to the full check so that the error names the same fault.

TRICKY_TEXT = ["", "\x00", "\x1f", "\x7f", "\b\t\n\f\r", '"', "\\", "/", "\u2028\u2029", "é", "€", "\ufeff",
               "\ue000", "\uffff", "\U0001f600", "\U0010ffff", "a\x00b"]
bmp_keys = st.text(alphabet=st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)), max_size=5)
any_keys = st.one_of(st.text(max_size=5), st.sampled_from(TRICKY_TEXT))


def plain_values(keys: st.SearchStrategy[str]) -> st.SearchStrategy[object]:
    """JSON values without fractions or integers beyond I-JSON: the ones the fast path may decide."""
    return st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER),
                  st.sampled_from([0, -1, MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER]), st.text(max_size=8),
                  st.sampled_from(TRICKY_TEXT)),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=16)


any_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**64), 2**64),
              st.sampled_from([MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1, 2**63, 2**64]),
              st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([1.0, -0.0, 1e16, 1e21, 0.5, 2.0**53]),
              st.text(max_size=8), st.sampled_from(TRICKY_TEXT)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_keys, inner, max_size=4), max_leaves=16)


def encodings(value: object) -> list[bytes]:
    """The value as bytes in several ways: canonical where it has a canonical form, and near misses."""
    out = [json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode(),
           json.dumps(value, separators=(",", ":"), sort_keys=True).encode(),
           json.dumps(value, separators=(", ", ": "), ensure_ascii=False).encode()]
    for option in (orjson.OPT_SORT_KEYS, 0):
        with contextlib.suppress(TypeError):  # integers beyond 64 bits
            out.append(orjson.dumps(value, option=option))
    with contextlib.suppress(TypeError, ValueError):  # values without a canonical form
        out.append(canonical_json(value))
    return out


def outcome(decode: Callable[[], dict[str, Any]]) -> object:
    try:
        return ("ok", decode())
    except VerificationError as exc:
        return ("error", exc.message, exc.step, exc.index)


def assert_same_as_full_check(data: bytes) -> None:
    fast = _plain_canonical(data)
    if fast is not None:  # what the fast path accepts is RFC 8785, by both implementations
        assert data == canonical_json(fast) == rfc8785.dumps(fast)
        assert fast == json.loads(data)
    assert outcome(lambda: decode_leaf(data, index=3)) == outcome(lambda: _decode_checked(data, 3))


@settings(max_examples=500, deadline=None)
@given(value=plain_values(bmp_keys))
def test_orjson_sorted_compact_output_is_rfc8785_for_plain_values(value: object) -> None:
    """The claim the fast path rests on: without fractions, big integers or keys beyond U+FFFF, orjson's
    compact sorted output is RFC 8785 (control characters, escapes, non-ASCII, integer bounds)."""
    expected = rfc8785.dumps(value)
    assert orjson.dumps(value, option=_PLAIN_OPTIONS) == expected == canonical_json(value)
    leaf = {"v": LEAF_VERSION, "type": "seal", "x": value}
    data = canonical_json(leaf)
    if max(data) < 0xF0:  # no character beyond U+FFFF: decided by the fast path, not left to the full check
        assert _plain_canonical(data) == leaf
    assert decode_leaf(data) == leaf


@settings(max_examples=500, deadline=None)
@given(value=any_values, kind=st.sampled_from([("v", 1), ("v", 2), ("type", "seal"), ("type", "gossip")]))
def test_decode_leaf_agrees_with_the_full_check(value: object, kind: tuple[str, object]) -> None:
    for leaf in ({"v": LEAF_VERSION, "type": "seal", "x": value}, {"v": 1, "type": "config", kind[0]: kind[1]},
                 value):
        for data in encodings(leaf):
            assert_same_as_full_check(data)


@pytest.mark.parametrize("data", [
    b'{"n":9007199254740991,"type":"seal","v":1}',  # the integer bounds of I-JSON
    b'{"n":-9007199254740991,"type":"seal","v":1}',
    b'{"n":9007199254740992,"type":"seal","v":1}',  # one beyond: orjson refuses it, the full check too
    b'{"n":-9007199254740992,"type":"seal","v":1}',
    b'{"n":18446744073709551616,"type":"seal","v":1}',
    b'{"n":1' + b"0" * 400 + b',"type":"seal","v":1}',
    b'{"n":1.0,"type":"seal","v":1}',  # orjson's own float forms, not RFC 8785's
    b'{"n":1e16,"type":"seal","v":1}',
    b'{"n":1e+21,"type":"seal","v":1}',
    b'{"n":[0.5,1e-7],"type":"seal","v":1}',
    b'{"n":1.5,"type":"seal","v":1}',  # canonical with a fraction: accepted by the full check
    b'{"n":-0,"type":"seal","v":1}',
    b'{"n":0,"type":"seal","v":1.0}',
    b'{"n":"\\/","type":"seal","v":1}',  # escapes RFC 8785 does not use
    b'{"n":"\\u001F","type":"seal","v":1}',
    b'{"n":"\\u001f","type":"seal","v":1}',
    b'{"n":"\\u00e9","type":"seal","v":1}',
    b'{"n":"\\ud800","type":"seal","v":1}',  # a lone surrogate
    b'{"n":"\xed\xa0\x80","type":"seal","v":1}',
    b'{"n":"\xff","type":"seal","v":1}',
    b'{"n":"\x01","type":"seal","v":1}',
    b'{"n":"\x7f\xe2\x80\xa8","type":"seal","v":1}',
    b'{"\xee\x80\x80":1,"\xf0\x9f\x98\x80":2,"type":"seal","v":1}',  # code point order, not UTF-16 order
    b'{"\xf0\x9f\x98\x80":2,"\xee\x80\x80":1,"type":"seal","v":1}',  # RFC 8785's UTF-16 order
    b'{"a":1,"a":1,"type":"seal","v":1}',
    b'{"type":"seal","v":1} ',
    b' {"type":"seal","v":1}',
    b'\xef\xbb\xbf{"type":"seal","v":1}',
    b'{"type":"seal","v":1}{}',
    b'{"type":"seal","v":NaN}',
    b'{"type":"seal","v":true}',
    b'{"type":"seal"}',
    b'{"type":"seal","v":1,"x":' + b"[" * 300 + b"]" * 300 + b"}",  # deeper than orjson writes
    b'{"type":"seal","v":1,"x":' + b"[" * 5000 + b"]" * 5000 + b"}",  # deeper than either parser reads
    b"[]",
    b"1",
    b"",
])
def test_decode_leaf_edge_cases_agree_with_the_full_check(data: bytes) -> None:
    assert_same_as_full_check(data)


def test_decision_leaves_take_the_fast_path(policies: object) -> None:
    decision, action = decide(policies, {"system": "credit-scoring", "kind": "tool_call", "name": "approve_credit",
                                         "args": {"amount": 150000, "code": "7"}})
    data = encode_leaf(decision_leaf(decision, action, risk_tier="high", salts=new_salts()))  # type: ignore[arg-type]
    assert _plain_canonical(data) == json.loads(data)


def test_random_bytes_are_never_handed_out_twice_not_even_across_a_fork() -> None:
    drawn = [random_bytes(32) for _ in range(8000)]  # several refills of the pool
    assert len(set(drawn)) == len(drawn) and all(len(b) == 32 for b in drawn)
    assert len(random_bytes(100_000)) == 100_000  # larger than the pool
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        os.write(write, random_bytes(32))
        os._exit(0)
    os.close(write)
    from_child = os.read(read, 32)
    os.close(read)
    os.waitpid(child, 0)
    assert len(from_child) == 32 and from_child != random_bytes(32)
