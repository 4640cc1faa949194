"""Escalation, expiry recorded by the sweep, approvals good for several uses, notification outcomes as
evidence, and the oversight statistics, through a real gateway and log with the clock passed in."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from lictor.access import ApiKey
from lictor.errors import PolicyError, ReviewError
from lictor.model import Action, ApprovalRequirement, Verdict
from lictor.oversight import Act, ReviewQuery, ReviewRequest, decided_at, percentile, review_stats
from lictor.policy import load_policies
from lictor.runtime import Gateway
from lictor.webhooks import Endpoint, WebhookNotifier

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
      approval: {approvers: ["role:credit-officer"], ttl: 2h, escalate_after: 30m, escalate_to: ["role:cro"],
                 uses: USES}
"""
ACTION = {"system": "credit-scoring", "kind": "tool_call", "name": "approve_credit",
          "args": {"amount": 150000}, "agent": {"id": "loan-agent-7"}, "principal": {"id": "alice"}}
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
SECRET = "hook-secret-0123"
HOOK = "https://hooks.example.com/private-token-xyz"


def key(user: str, *roles: str) -> ApiKey:
    return ApiKey(f"key-{user}", "reviewer", user, roles, 0.0)


BOB = key("bob", "credit-officer")
CAROL = key("carol", "cro")


def open_gateway(tmp_path: Path, uses: int = 1) -> Gateway:
    (tmp_path / "p").mkdir(exist_ok=True)
    (tmp_path / "p" / "credit.yaml").write_text(POLICY.replace("USES", str(uses)))
    return Gateway.open(policies=load_policies(tmp_path / "p"), database=f"sqlite:///{tmp_path / 'audit.db'}",
                        key_file=tmp_path / "audit.key", payload_key_file=tmp_path / "payload.key")


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    g = open_gateway(tmp_path)
    yield g
    g.close()


def review_leaves(gateway: Gateway) -> list[dict[str, Any]]:
    leaves = (gateway.leaf(i) for i in range(gateway.log.state.size))
    return [leaf for leaf in leaves if leaf.get("type") == "review"]


def hold(gateway: Gateway, at: datetime = T0) -> str:
    decision = gateway.decide(Action.from_dict(ACTION), now=at)
    assert decision.verdict is Verdict.BLOCK and decision.review is not None
    return str(decision.review["id"])


def at(minutes: float) -> float:
    return (T0 + timedelta(minutes=minutes)).timestamp()


# --------------------------------------------------------------------------- the policy fields


@pytest.mark.parametrize(("approval", "message"), [
    ('{approvers: ["role:a"], escalate_after: 30m}', "approval.escalate_after needs approval.escalate_to too"),
    ('{approvers: ["role:a"], escalate_to: ["role:b"]}', "approval.escalate_to needs approval.escalate_after too"),
    ('{approvers: ["role:a"], ttl: 1h, escalate_after: 2h, escalate_to: ["role:b"]}', "must be shorter than the ttl"),
    ('{approvers: ["role:a"], escalate_after: 30m, escalate_to: ["cro"]}', "approvers are 'role:NAME' or 'user:ID'"),
    ('{approvers: ["role:a"], escalate_after: 30m, escalate_to: []}', "escalate_to must name at least one approver"),
    ('{approvers: ["role:a"], uses: 0}', "approval.uses"),
    ('{approvers: ["role:a"], escalate_after: soon, escalate_to: ["role:b"]}', "approval.escalate_after"),
])
def test_bad_approval_fields_are_reported_where_they_are(tmp_path: Path, approval: str, message: str) -> None:
    (tmp_path / "p.yaml").write_text(POLICY.split("      approval:")[0] + f"      approval: {approval}\n")
    with pytest.raises(PolicyError) as caught:
        load_policies(tmp_path / "p.yaml")
    assert message in str(caught.value)
    assert "p.yaml:" in str(caught.value)


def test_the_rule_carries_its_escalation_and_uses(gateway: Gateway) -> None:
    decision = gateway.decide(Action.from_dict(ACTION), now=T0)
    requirement = decision.reasons[0].approval
    assert requirement == ApprovalRequirement(("role:credit-officer",), 1, 7200, 1, 1800, ("role:cro",))
    assert ApprovalRequirement.from_dict(requirement.to_dict()) == requirement


def test_policies_without_the_new_fields_keep_their_revision(tmp_path: Path) -> None:
    plain = POLICY.replace(', escalate_after: 30m, escalate_to: ["role:cro"],\n                 uses: USES', "")
    (tmp_path / "a.yaml").write_text(plain)
    (tmp_path / "b.yaml").write_text(plain.replace('ttl: 2h}', 'ttl: 2h, uses: 1}'))
    assert load_policies(tmp_path / "a.yaml").revision == load_policies(tmp_path / "b.yaml").revision


# --------------------------------------------------------------------------- escalation


def test_the_second_group_may_act_only_after_escalation(gateway: Gateway) -> None:
    assert gateway.desk is not None
    review_id = hold(gateway)
    assert gateway.desk.sweep(at(29)) == 0  # not due yet
    with pytest.raises(ReviewError) as caught:
        gateway.desk.act(review_id, _reviewer(CAROL), "approve", "", at(29))
    assert caught.value.reason == "not_approver"
    assert gateway.desk.sweep(at(31)) == 1
    assert gateway.desk.sweep(at(32)) == 0  # recorded once
    escalated = [leaf for leaf in review_leaves(gateway) if leaf["event"] == "escalated"]
    assert len(escalated) == 1 and escalated[0]["escalate_to"] == ["role:cro"]
    assert escalated[0]["approvers"] == ["role:credit-officer", "role:cro"]
    review = gateway.desk.act(review_id, _reviewer(CAROL), "approve", "urgent", at(40))
    assert review.status == "approved"
    granted = gateway.decide(Action.from_dict({**ACTION, "approval": review_id}), now=T0 + timedelta(minutes=41))
    assert granted.verdict is Verdict.ALLOW
    assert granted.review is not None and granted.review["approved_by"][0]["user"] == "carol"


def test_escalation_is_also_found_on_access(gateway: Gateway) -> None:
    assert gateway.desk is not None
    review_id = hold(gateway)
    assert gateway.desk.review(review_id, at(45)).escalated_at == at(45)
    assert [leaf["event"] for leaf in review_leaves(gateway)] == ["created", "escalated"]


def test_a_decided_review_does_not_escalate(gateway: Gateway) -> None:
    assert gateway.desk is not None
    review_id = hold(gateway)
    gateway.desk.act(review_id, _reviewer(BOB), "approve", "", at(5))
    assert gateway.desk.sweep(at(31)) == 0
    assert "escalated" not in [leaf["event"] for leaf in review_leaves(gateway)]


def test_the_escalation_webhook_goes_to_the_second_group(tmp_path: Path) -> None:
    received: list[tuple[str, dict[str, Any]]] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append((str(request.url), json.loads(request.content)))
        return httpx.Response(204)

    gateway = open_gateway(tmp_path)
    assert gateway.hub is not None
    notifier = WebhookNotifier({"role:credit-officer": [Endpoint("https://officers.example.com/h", SECRET)],
                                "role:cro": [Endpoint("https://cro.example.com/h", SECRET)]},
                               public_url="https://lictor.example.com", transport=httpx.MockTransport(receiver),
                               on_result=gateway.hub.outcome)
    gateway.notify_reviews_to(notifier)
    assert gateway.desk is not None
    try:
        hold(gateway)
        gateway.desk.sweep(at(31))
    finally:
        gateway.close()  # drains the notifier first
    sent = {(url, body["type"]) for url, body in received}
    assert sent == {("https://officers.example.com/h", "review.created"),
                    ("https://cro.example.com/h", "review.escalated")}


# --------------------------------------------------------------------------- expiry


def test_the_sweep_records_an_expiry_nobody_asked_about(gateway: Gateway) -> None:
    assert gateway.desk is not None
    review_id = hold(gateway)
    assert gateway.desk.sweep(at(119)) == 1  # the escalation only
    assert gateway.desk.sweep(at(121)) == 1
    assert gateway.desk.sweep(at(122)) == 0
    events = [(leaf["event"], leaf["review"]) for leaf in review_leaves(gateway)]
    assert events == [("created", review_id), ("escalated", review_id), ("expired", review_id)]
    assert gateway.desk.review(review_id, at(130)).status == "expired"


def test_two_gateways_sweeping_one_store_record_each_step_once(tmp_path: Path) -> None:
    one = open_gateway(tmp_path)
    two = Gateway.open(policies=one.policies, database=f"sqlite:///{tmp_path / 'audit.db'}",
                       key_file=tmp_path / "audit.key", payload_key_file=tmp_path / "payload.key")
    try:
        hold(one)
        assert one.desk is not None and two.desk is not None
        threads = [threading.Thread(target=desk.sweep, args=(at(200),)) for desk in (one.desk, two.desk)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        events = [leaf["event"] for leaf in review_leaves(one)]
        assert events.count("expired") == 1 and "escalated" not in events  # past expiry: no escalation
    finally:
        two.close()
        one.close()


def test_an_approved_but_unused_approval_expires_too(gateway: Gateway) -> None:
    assert gateway.desk is not None
    review_id = hold(gateway)
    gateway.desk.act(review_id, _reviewer(BOB), "approve", "", at(5))
    gateway.desk.sweep(at(121))
    assert gateway.desk.review(review_id, at(121)).status == "expired"
    late = gateway.decide(Action.from_dict({**ACTION, "approval": review_id}), now=T0 + timedelta(minutes=122))
    assert late.verdict is Verdict.BLOCK and any("(expired)" in e.message for e in late.errors)


# --------------------------------------------------------------------------- uses


def test_an_approval_grants_its_uses_and_no_more(tmp_path: Path) -> None:
    gateway = open_gateway(tmp_path, uses=2)
    try:
        assert gateway.desk is not None
        review_id = hold(gateway)
        gateway.desk.act(review_id, _reviewer(BOB), "approve", "", at(1))
        presented = Action.from_dict({**ACTION, "approval": review_id})
        verdicts = [gateway.decide(presented, now=T0 + timedelta(minutes=2 + n)).verdict for n in range(3)]
        assert verdicts == [Verdict.ALLOW, Verdict.ALLOW, Verdict.BLOCK]
        used = [leaf for leaf in review_leaves(gateway) if leaf["event"] == "used"]
        assert [leaf["uses"] for leaf in used] == [1, 2] and used[-1]["status"] == "used"
        changed = Action.from_dict({**ACTION, "args": {"amount": 150001}, "approval": review_id})
        assert gateway.decide(changed, now=T0 + timedelta(minutes=9)).verdict is Verdict.BLOCK
    finally:
        gateway.close()


# --------------------------------------------------------------------------- notification outcomes


@pytest.mark.parametrize(("answer", "outcome", "attempts"), [(204, "delivered", 1), (500, "failed", 2),
                                                            (410, "failed", 1)])
def test_each_delivery_outcome_is_a_notified_leaf(tmp_path: Path, answer: int, outcome: str, attempts: int) -> None:
    gateway = open_gateway(tmp_path)
    assert gateway.hub is not None
    notifier = WebhookNotifier({"role:credit-officer": [Endpoint(HOOK, SECRET)]}, public_url="https://lictor.example.com",
                               transport=httpx.MockTransport(lambda request: httpx.Response(answer)),
                               max_attempts=2, sleep=lambda _seconds: None, on_result=gateway.hub.outcome)
    gateway.notify_reviews_to(notifier)
    try:
        review_id = hold(gateway)
    finally:
        gateway.close()
    gateway = open_gateway(tmp_path)
    try:
        notified = [leaf for leaf in review_leaves(gateway) if leaf["event"] == "notified"]
        raw = json.dumps([gateway.leaf(i) for i in range(gateway.log.state.size)])
    finally:
        gateway.close()
    assert len(notified) == 1
    leaf = notified[0]
    assert leaf["review"] == review_id and leaf["notification"] == "review.created"
    assert (leaf["group"], leaf["outcome"], leaf["attempts"], leaf["http_status"]) == (
        "role:credit-officer", outcome, attempts, answer)
    assert SECRET not in raw and "private-token-xyz" not in raw and "hooks.example.com" not in raw


# --------------------------------------------------------------------------- statistics


def _review(n: int, acts: tuple[Act, ...], status: str, created: float = 0.0, quorum: int = 1,
            escalated: float | None = None) -> ReviewRequest:
    requirement = ApprovalRequirement(("role:credit-officer",), quorum, 3600, 1, 600, ("role:cro",))
    return ReviewRequest(id=f"rev_{n}", action_hash="sha256:x", system="credit-scoring", decision_id=f"dec_{n}",
                         rules=(("credit", "large"),), requirements=(requirement,), created_at=created,
                         expires_at=created + 3600, status=status, acts=acts, escalated_at=escalated)


def _act(verdict: str, user: str, seconds: float, *groups: str) -> Act:
    return Act(verdict, user, f"key-{user}", seconds, "why", groups or ("role:credit-officer",))


def test_statistics_count_outcomes_times_and_reviewers() -> None:
    reviews = [
        _review(1, (_act("approve", "bob", 60),), "used"),
        _review(2, (_act("approve", "bob", 100), _act("approve", "dan", 300)), "approved", quorum=2),
        _review(3, (_act("reject", "dan", 30),), "rejected"),
        _review(4, (), "pending", escalated=700.0),
        _review(5, (_act("approve", "carol", 900, "role:cro"),), "approved", escalated=650.0),
        _review(6, (), "pending", created=-7200.0),  # past its expiry at the time asked
    ]
    stats = review_stats(reviews, now=1000.0)
    assert stats["total"] == 6
    assert stats["by_status"] == {"pending": 1, "approved": 2, "rejected": 1, "expired": 1, "used": 1}
    assert stats["decided"] == {"approved": 3, "rejected": 1, "approval_rate": 0.75}
    assert stats["time_to_decision"] == {"count": 4, "median": 60.0, "p90": 900.0, "max": 900.0}
    assert stats["reviewers"] == {"bob": {"approved": 2, "rejected": 0, "approval_rate": 1.0},
                                  "carol": {"approved": 1, "rejected": 0, "approval_rate": 1.0},
                                  "dan": {"approved": 1, "rejected": 1, "approval_rate": 0.5}}
    assert (stats["escalations"], stats["expiries"]) == (2, 1)


def test_time_to_decision_counts_to_the_approval_that_met_the_quorum() -> None:
    review = _review(1, (_act("approve", "bob", 100), _act("approve", "dan", 250)), "approved", quorum=2)
    assert decided_at(review) == ("approved", 250)
    assert decided_at(_review(2, (_act("approve", "bob", 100),), "pending", quorum=2)) is None
    assert percentile([], 0.5) is None and percentile([3.0, 1.0, 2.0], 0.5) == 2.0


def test_statistics_through_the_gateway_filter_by_system_and_window(gateway: Gateway) -> None:
    assert gateway.desk is not None
    first = hold(gateway)
    gateway.desk.act(first, _reviewer(BOB), "approve", "", at(10))
    later = Action.from_dict({**ACTION, "args": {"amount": 150002}})
    gateway.decide(later, now=T0 + timedelta(hours=1))
    whole = gateway.desk.stats(ReviewQuery(system="credit-scoring"), at(70))
    assert whole["total"] == 2 and whole["decided"]["approved"] == 1
    assert whole["time_to_decision"]["median"] == 600.0
    window = gateway.desk.stats(ReviewQuery(since=at(30), until=at(90)), at(70))
    assert window["total"] == 1 and window["by_status"]["pending"] == 1
    assert gateway.desk.stats(ReviewQuery(system="other"), at(70))["total"] == 0


def _reviewer(k: ApiKey) -> Any:
    from lictor.oversight import Reviewer

    return Reviewer(k.id, k.user, k.roles)


def test_a_serving_gateway_sweeps_by_itself(tmp_path: Path) -> None:
    """``lictor serve`` (a gateway built with ``publish``) records an expiry nobody asked about."""
    import dataclasses
    import time

    from lictor.config import Settings

    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "credit.yaml").write_text(POLICY.replace("USES", "1").replace(
        "ttl: 2h, escalate_after: 30m", "ttl: 2s, escalate_after: 1s"))
    base = Settings(database=f"sqlite:///{tmp_path / 'audit.db'}", policies=tmp_path / "p")
    settings = dataclasses.replace(
        base, audit=dataclasses.replace(base.audit, key_file=tmp_path / "audit.key",
                                        payload_key_file=tmp_path / "payload.key", checkpoint_interval=60.0),
        reviews=dataclasses.replace(base.reviews, sweep_interval=0.05))
    gateway = Gateway.from_settings(settings, publish=True)
    try:
        decision = gateway.decide(Action.from_dict(ACTION))
        assert decision.review is not None
        give_up = time.monotonic() + 30
        while "expired" not in [leaf["event"] for leaf in review_leaves(gateway)]:
            assert time.monotonic() < give_up, "the sweep never recorded the expiry"
            time.sleep(0.05)
        assert [leaf["event"] for leaf in review_leaves(gateway)] == ["created", "escalated", "expired"]
    finally:
        gateway.close()
