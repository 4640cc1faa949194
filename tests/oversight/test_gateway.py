"""Human oversight through the gateway: each rule of the review issue, end to end on a real log."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lictor.access import ApiKey
from lictor.errors import InputError, ReviewError
from lictor.model import Action, Verdict
from lictor.oversight import ReviewQuery
from lictor.policy import load_policies
from lictor.runtime import Gateway

POLICY = """\
apiVersion: lictor/v1
kind: Policy
metadata: {name: credit}
spec:
  target: {names: [approve_credit]}
  rules:
    - name: large
      when: args.amount > 100000
      verdict: BLOCK
      message: needs a credit officer
      approval: {approvers: ["role:credit-officer", "user:carol"], quorum: QUORUM, ttl: 1h}
    - name: log-credit
      when: "true"
      verdict: LOG
    - name: blocked-customer
      when: args.customer_id == "C-666"
      verdict: BLOCK
"""

ACTION = {"system": "credit-scoring", "kind": "tool_call", "name": "approve_credit",
          "args": {"amount": 150000, "customer_id": "C-42"}, "agent": {"id": "loan-agent-7"},
          "principal": {"id": "alice", "roles": ["analyst"]}}


def key(user: str, *roles: str) -> ApiKey:
    return ApiKey(f"k{abs(hash(user)) % 10**12:012d}", "reviewer", user, roles, 0.0)


BOB = key("bob", "credit-officer")
DAN = key("dan", "credit-officer")


def open_gateway(tmp_path: Path, quorum: int = 1) -> Gateway:
    (tmp_path / "p").mkdir(exist_ok=True)
    (tmp_path / "p" / "credit.yaml").write_text(POLICY.replace("QUORUM", str(quorum)))
    return Gateway.open(policies=load_policies(tmp_path / "p"), database="memory://",
                        key_file=tmp_path / "audit.key", payload_key_file=tmp_path / "payload.key")


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    g = open_gateway(tmp_path)
    yield g
    g.close()


def act(**changes: object) -> Action:
    return Action.from_dict({**ACTION, **changes})


def review_leaves(gateway: Gateway) -> list[dict[str, Any]]:
    leaves: list[dict[str, Any]] = []
    index = 0
    while True:
        try:
            leaf = gateway.leaf(index)
        except InputError:  # past the end
            return leaves
        if leaf.get("type") == "review":
            leaves.append(leaf)
        index += 1


def test_a_held_action_raises_one_pending_review(gateway: Gateway) -> None:
    first = gateway.decide(act())
    assert first.verdict is Verdict.BLOCK
    assert first.review is not None and first.review["status"] == "pending"
    assert first.review["approvers"] == ["role:credit-officer", "user:carol"]
    again = gateway.decide(act(request_id="other"))
    assert again.review is not None and again.review["id"] == first.review["id"]
    small = gateway.decide(act(args={"amount": 10, "customer_id": "C-42"}))
    assert small.verdict is Verdict.LOG and small.review is None
    review = gateway.show_review(str(first.review["id"]))
    assert review.context["action"]["args"]["amount"] == 150000 and review.context["risk_tier"] == "high"
    assert review.principal_id == "alice" and review.agent_id == "loan-agent-7"


def test_an_approval_lifts_the_rule_once_and_records_who(gateway: Gateway) -> None:
    review_id = str(gateway.decide(act()).review["id"])  # type: ignore[index]
    gateway.act_on_review(review_id, BOB, "approve", "checked the file")
    granted = gateway.decide(act(approval=review_id))
    assert granted.verdict is Verdict.LOG  # the next most restrictive of the other rules
    assert granted.review is not None and granted.review["approved_by"][0]["user"] == "bob"
    assert [r.rule for r in granted.reasons] == ["large", "log-credit"]
    replay = gateway.decide(act(approval=review_id))
    assert replay.verdict is Verdict.BLOCK and "(used)" in replay.errors[-1].message
    events = [leaf["event"] for leaf in review_leaves(gateway)]
    assert events == ["created", "approved", "used", "created"]  # the replay asks for a new review
    approved = review_leaves(gateway)[1]
    text = json.dumps(approved)
    assert "bob" not in text and "checked the file" not in text and approved["reviewer"]["key_id"] == BOB.id


def test_a_changed_action_is_blocked(gateway: Gateway) -> None:
    review_id = str(gateway.decide(act()).review["id"])  # type: ignore[index]
    gateway.act_on_review(review_id, BOB, "approve")
    changed = gateway.decide(act(args={"amount": 150001, "customer_id": "C-42"}, approval=review_id))
    assert changed.verdict is Verdict.BLOCK and "(action_changed)" in changed.errors[-1].message
    other_agent = gateway.decide(act(agent={"id": "other"}, approval=review_id))
    assert other_agent.verdict is Verdict.BLOCK
    assert gateway.decide(act(approval=review_id)).verdict is Verdict.LOG  # still unused


def test_other_blocking_rules_still_block_and_keep_the_approval(gateway: Gateway) -> None:
    action = act(args={"amount": 150000, "customer_id": "C-666"})
    review_id = str(gateway.decide(action).review["id"])  # type: ignore[index]
    gateway.act_on_review(review_id, BOB, "approve")
    blocked = gateway.decide(Action.from_dict({**action.to_dict(), "approval": review_id}))
    assert blocked.verdict is Verdict.BLOCK
    assert gateway.show_review(review_id).uses == 0


def test_unapproved_unknown_and_rejected_approvals_block(gateway: Gateway) -> None:
    review_id = str(gateway.decide(act()).review["id"])  # type: ignore[index]
    pending = gateway.decide(act(approval=review_id))
    assert pending.verdict is Verdict.BLOCK and "(not_approved)" in pending.errors[-1].message
    unknown = gateway.decide(act(args={"amount": 5, "customer_id": "C-42"}, approval="rev_nothing"))
    assert unknown.verdict is Verdict.BLOCK and "(not_found)" in unknown.errors[-1].message
    with pytest.raises(ReviewError) as exc:
        gateway.act_on_review(review_id, BOB, "reject", "  ")
    assert exc.value.reason == "comment_required"
    gateway.act_on_review(review_id, BOB, "reject", "customer under investigation")
    with pytest.raises(ReviewError) as exc:
        gateway.act_on_review(review_id, DAN, "approve")
    assert exc.value.reason == "final"
    assert gateway.decide(act(approval=review_id)).verdict is Verdict.BLOCK


def test_self_approval_and_strangers_are_refused(gateway: Gateway) -> None:
    review_id = str(gateway.decide(act()).review["id"])  # type: ignore[index]
    with pytest.raises(ReviewError) as exc:
        gateway.act_on_review(review_id, key("alice", "credit-officer"), "approve")
    assert exc.value.reason == "self_approval"
    with pytest.raises(ReviewError) as exc:
        gateway.act_on_review(review_id, key("eve", "analyst"), "approve")
    assert exc.value.reason == "not_approver"
    assert gateway.act_on_review(review_id, key("carol"), "approve").status == "approved"  # user:carol


def test_expiry(gateway: Gateway) -> None:
    start = datetime.now(UTC)
    review_id = str(gateway.decide(act(), now=start).review["id"])  # type: ignore[index]
    gateway.act_on_review(review_id, BOB, "approve")
    late = gateway.decide(act(approval=review_id), now=start + timedelta(hours=2))
    assert late.verdict is Verdict.BLOCK and "(expired)" in late.errors[0].message
    assert gateway.show_review(review_id).status == "expired"
    assert [leaf["event"] for leaf in review_leaves(gateway)] == ["created", "approved", "expired", "created"]


def test_quorum_counts_distinct_reviewers(tmp_path: Path) -> None:
    gateway = open_gateway(tmp_path, quorum=2)
    try:
        review_id = str(gateway.decide(act()).review["id"])  # type: ignore[index]
        assert gateway.act_on_review(review_id, BOB, "approve").status == "pending"
        with pytest.raises(ReviewError) as exc:
            gateway.act_on_review(review_id, key("bob", "credit-officer", "x"), "approve")
        assert exc.value.reason == "already_acted"
        assert gateway.decide(act(approval=review_id)).verdict is Verdict.BLOCK
        assert gateway.act_on_review(review_id, DAN, "approve").status == "approved"
        assert gateway.decide(act(approval=review_id)).verdict is Verdict.LOG
    finally:
        gateway.close()


def test_two_callers_racing_with_one_approval(gateway: Gateway) -> None:
    review_id = str(gateway.decide(act()).review["id"])  # type: ignore[index]
    gateway.act_on_review(review_id, BOB, "approve")
    barrier = threading.Barrier(6)
    verdicts: list[Verdict] = []

    def use() -> None:
        barrier.wait()
        verdicts.append(gateway.decide(act(approval=review_id)).verdict)

    threads = [threading.Thread(target=use) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(verdicts) == [Verdict.LOG] + [Verdict.BLOCK] * 5


def test_adecide_uses_the_same_rules(gateway: Gateway) -> None:
    decision = asyncio.run(gateway.adecide(act()))
    assert decision.review is not None
    gateway.act_on_review(str(decision.review["id"]), BOB, "approve")
    granted = asyncio.run(gateway.adecide(act(approval=str(decision.review["id"]))))
    assert granted.verdict is Verdict.LOG


def test_a_listed_review_past_its_expiry_is_marked_expired(gateway: Gateway) -> None:
    start = datetime.now(UTC) - timedelta(hours=2)
    review_id = str(gateway.decide(act(), now=start).review["id"])  # type: ignore[index]
    assert gateway.list_reviews(ReviewQuery(status="pending")) == []
    assert [r.id for r in gateway.list_reviews(ReviewQuery(status="expired"))] == [review_id]


def test_two_gateways_on_one_postgresql_database_share_reviews(tmp_path: Path, postgres_url: str) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "credit.yaml").write_text(POLICY.replace("QUORUM", "2"))
    gateways = [Gateway.open(policies=load_policies(tmp_path / "p"), database=postgres_url,
                             key_file=tmp_path / "audit.key", payload_key_file=tmp_path / "payload.key")
                for _ in range(2)]
    try:
        first = gateways[0].decide(act())
        again = gateways[1].decide(act())
        assert first.review is not None and again.review is not None and first.review["id"] == again.review["id"]
        review_id = str(first.review["id"])
        barrier = threading.Barrier(2)

        def approve(n: int) -> None:
            barrier.wait()
            gateways[n].act_on_review(review_id, (BOB, DAN)[n], "approve")

        threads = [threading.Thread(target=approve, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert gateways[1].show_review(review_id).status == "approved"
        verdicts: list[Verdict] = []

        def use(n: int) -> None:
            barrier.wait()
            verdicts.append(gateways[n].decide(act(approval=review_id)).verdict)

        threads = [threading.Thread(target=use, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(verdicts) == [Verdict.LOG, Verdict.BLOCK]
    finally:
        for g in gateways:
            g.close()
