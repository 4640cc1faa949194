"""The oversight rules as pure functions: approvers, four eyes, quorum per requirement, use, expiry."""

from __future__ import annotations

import pytest

from lictor.errors import ReviewError
from lictor.model import Action, ApprovalRequirement, Decision, Reason, Verdict
from lictor.oversight import (
    Reviewer,
    ReviewRequest,
    action_hash,
    apply_act,
    apply_use,
    expire,
    matches,
    new_review,
)

ACTION = Action.from_dict({"system": "s", "kind": "tool_call", "name": "pay", "args": {"amount": 5, "to": "X"},
                           "principal": {"id": "alice"}, "request_id": "r-1"})
CREDIT = ApprovalRequirement(("role:credit-officer",), 1, 3600)
SECURITY = ApprovalRequirement(("role:secops", "user:sam"), 2, 600)


def review(*requirements: ApprovalRequirement) -> ReviewRequest:
    reasons = tuple(Reason("p", f"r{n}", Verdict.BLOCK, "", r) for n, r in enumerate(requirements))
    return new_review(Decision("dec_1", Verdict.BLOCK, reasons), ACTION, 1000.0)


def test_the_hash_ignores_only_approval_and_request_id() -> None:
    same = Action.from_dict({**ACTION.to_dict(), "request_id": "other", "approval": "rev_1"})
    assert action_hash(same) == action_hash(ACTION)
    for change in ({"args": {"amount": 6, "to": "X"}}, {"args": {"amount": 5, "to": "Y"}},
                   {"principal": {"id": "bob"}}, {"agent": {"id": "a"}}, {"context": {"x": 1}}):
        assert action_hash(Action.from_dict({**ACTION.to_dict(), **change})) != action_hash(ACTION)


def test_approvers_match_users_and_roles() -> None:
    assert matches(["role:a"], Reviewer("k", "u", ("a",)))
    assert matches(["user:u"], Reviewer("k", "u", ()))
    assert not matches(["user:u", "role:a"], Reviewer("k", "v", ("b",)))
    assert not matches(["role:u"], Reviewer("k", "u", ()))


def test_every_requirement_needs_its_own_quorum_of_distinct_users() -> None:
    r = review(CREDIT, SECURITY)
    assert r.expires_at == 1600.0 and r.quorum == 2
    r = apply_act(r, Reviewer("k1", "olga", ("credit-officer",)), "approve", "", 1001)
    assert r.status == "pending"
    r = apply_act(r, Reviewer("k2", "sam", ()), "approve", "", 1002)
    assert r.status == "pending"  # secops needs two
    with pytest.raises(ReviewError):
        apply_act(r, Reviewer("k3", "sam", ("secops",)), "approve", "", 1003)  # the same user again
    r = apply_act(r, Reviewer("k4", "sid", ("secops",)), "approve", "", 1004)
    assert r.status == "approved"
    used = apply_use(r, action_hash(ACTION), 1005)
    assert used.status == "used" and used.uses == 1
    with pytest.raises(ReviewError) as exc:
        apply_use(used, action_hash(ACTION), 1006)
    assert exc.value.reason == "used"


def test_uses_expiry_and_reviewers_without_a_user() -> None:
    r = review(CREDIT)
    with pytest.raises(ReviewError) as exc:
        apply_act(r, Reviewer("k", None, ("credit-officer",)), "approve", "", 1001)
    assert exc.value.reason == "not_approver"
    approved = apply_act(r, Reviewer("k", "olga", ("credit-officer",)), "approve", "", 1001)
    with pytest.raises(ReviewError) as exc:
        apply_use(approved, action_hash(ACTION), 4600)
    assert exc.value.reason == "expired"
    assert expire(approved, 4599) is None
    expired = expire(approved, 4600)
    assert expired is not None and expired.status == "expired"
    with pytest.raises(ReviewError) as exc:
        apply_act(r, Reviewer("k", "olga", ("credit-officer",)), "approve", "", 4600)
    assert exc.value.reason == "expired"
