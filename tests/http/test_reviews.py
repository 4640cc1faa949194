"""The review routes: list, show with long-polling, approve and reject, with problem documents."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.http.conftest import LARGE, Served, serve

APPROVAL = """
    - name: needs-officer
      when: args.amount > 120000
      verdict: BLOCK
      approval: {approvers: ["role:credit-officer"], ttl: 1h}
"""
ACTION = {**LARGE, "args": {"amount": 130000}, "principal": {"id": "alice"}, "agent": {"id": "a-1"}}


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Served]:
    for served in serve(tmp_path, f"sqlite:///{tmp_path / 'lictor.db'}"):
        policy = served.policies / "credit.yaml"
        policy.write_text(policy.read_text().replace("      when: args.amount > 100000\n", "      when: args.amount > 200000\n") + APPROVAL)
        served.gateway.reload(served.policies)
        for user, roles in (("bob", ["credit-officer"]), ("dan", ["credit-officer"]), ("alice", ["credit-officer"]),
                            ("eve", ["analyst"])):
            served.keys[user] = served.gateway.keys.create("reviewer", user=user, roles=roles)[1]
        yield served


def held(desk: Served) -> str:
    decision = desk.client.post("/v1/decide", json=ACTION, headers=desk.as_("agent")).json()
    assert decision["verdict"] == "BLOCK" and decision["review"]["status"] == "pending"
    return str(decision["review"]["id"])


def test_list_show_approve_and_use(desk: Served) -> None:
    review_id = held(desk)
    listed = desk.client.get("/v1/reviews?status=pending", headers=desk.as_("bob")).json()["reviews"]
    assert [r["id"] for r in listed] == [review_id]
    shown = desk.client.get(f"/v1/reviews/{review_id}", headers=desk.as_("bob")).json()
    assert shown["action"]["args"]["amount"] == 130000 and shown["principal_id"] == "alice"
    assert shown["reasons"][-1]["rule"] == "needs-officer" and shown["risk_tier"] == "high"
    assert desk.client.get("/v1/reviews?approver=role:nobody", headers=desk.as_("bob")).json()["reviews"] == []
    approved = desk.client.post(f"/v1/reviews/{review_id}/approve", json={"comment": "ok"}, headers=desk.as_("bob"))
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    granted = desk.client.post("/v1/decide", json={**ACTION, "approval": review_id}, headers=desk.as_("agent")).json()
    assert granted["verdict"] == "CONSTRAIN" and granted["review"]["approved_by"][0]["user"] == "bob"
    replay = desk.client.post("/v1/decide", json={**ACTION, "approval": review_id}, headers=desk.as_("agent")).json()
    assert replay["verdict"] == "BLOCK"


@pytest.mark.parametrize(("who", "path", "body", "status", "reason"), [
    ("alice", "approve", {}, 403, "self_approval"),
    ("eve", "approve", {}, 403, "not_approver"),
    ("bob", "reject", {}, 422, "comment_required"),
])
def test_refusals_are_problems(desk: Served, who: str, path: str, body: dict[str, str], status: int,
                               reason: str) -> None:
    review_id = held(desk)
    response = desk.client.post(f"/v1/reviews/{review_id}/{path}", json=body, headers=desk.as_(who))
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["reason"] == reason


def test_other_errors(desk: Served) -> None:
    review_id = held(desk)
    assert desk.client.post(f"/v1/reviews/{review_id}/approve", headers=desk.as_("agent")).status_code == 403
    assert desk.client.get("/v1/reviews/rev_none", headers=desk.as_("bob")).status_code == 404
    assert desk.client.post(f"/v1/reviews/{review_id}/approve", json={"x": 1}, headers=desk.as_("bob")).status_code == 422
    rejected = desk.client.post(f"/v1/reviews/{review_id}/reject", json={"comment": "no"}, headers=desk.as_("bob"))
    assert rejected.json()["status"] == "rejected"
    again = desk.client.post(f"/v1/reviews/{review_id}/approve", headers=desk.as_("dan"))
    assert again.status_code == 409 and again.json()["reason"] == "final"
    assert desk.client.get("/v1/reviews?since=2026-01-01T00:00:00", headers=desk.as_("bob")).status_code == 422


def test_long_poll_wakes_on_approval(desk: Served) -> None:
    review_id = held(desk)

    def approve_later() -> None:
        time.sleep(0.3)
        desk.gateway.act_on_review(review_id, desk.gateway.keys.authenticate(desk.keys["dan"]), "approve")  # type: ignore[arg-type]

    started = time.monotonic()
    threading.Thread(target=approve_later).start()
    shown = desk.client.get(f"/v1/reviews/{review_id}?wait=20", headers=desk.as_("agent")).json()
    assert shown["status"] == "approved"
    assert time.monotonic() - started < 20 and desk.gateway.hub is not None and desk.gateway.hub.poll_interval < 5
    quick = time.monotonic()
    assert desk.client.get(f"/v1/reviews/{review_id}?wait=0.2", headers=desk.as_("agent")).json()["status"] == "approved"
    assert time.monotonic() - quick < 5


def test_a_waiter_wakes_when_a_reviewer_acts_through_the_same_process(desk: Served) -> None:
    review_id = held(desk)
    answers: list[dict[str, object]] = []

    def wait() -> None:
        answers.append(desk.client.get(f"/v1/reviews/{review_id}?wait=30", headers=desk.as_("agent")).json())

    waiter = threading.Thread(target=wait)
    started = time.monotonic()
    waiter.start()
    time.sleep(0.2)
    desk.client.post(f"/v1/reviews/{review_id}/approve", headers=desk.as_("bob"))
    waiter.join(30)
    assert answers and answers[0]["status"] == "approved" and time.monotonic() - started < 10
    assert "acts" not in answers[0]  # an agent sees the outcome, not the reviewers


def test_every_listing_filter(desk: Served) -> None:
    first = held(desk)
    other = desk.client.post("/v1/decide", json={**ACTION, "args": {"amount": 130001}},
                             headers=desk.as_("agent")).json()["review"]["id"]
    desk.client.post(f"/v1/reviews/{first}/approve", headers=desk.as_("bob"))

    def ids(query: str) -> list[str]:
        answer = desk.client.get(f"/v1/reviews?{query}", headers=desk.as_("bob"))
        assert answer.status_code == 200, answer.text
        return [r["id"] for r in answer.json()["reviews"]]

    assert ids("") == [first, other]
    assert ids("status=approved") == [first] and ids("status=pending") == [other]
    assert ids("system=credit-scoring") == [first, other] and ids("system=elsewhere") == []
    assert ids("approver=role:credit-officer") == [first, other] and ids("approver=role:cro") == []
    assert ids("since=2999-01-01T00:00:00Z") == [] and ids("until=2999-01-01T00:00:00Z") == [first, other]
    assert ids("since=2000-01-01T00:00:00%2B02:00&limit=1") == [first]
    assert desk.client.get("/v1/reviews?status=maybe", headers=desk.as_("bob")).status_code == 422


def test_stats_for_auditors_and_admins(desk: Served) -> None:
    review_id = held(desk)
    desk.client.post(f"/v1/reviews/{review_id}/reject", json={"comment": "no"}, headers=desk.as_("bob"))
    for scope in ("auditor", "admin"):
        stats = desk.client.get("/v1/reviews/stats?system=credit-scoring", headers=desk.as_(scope))
        assert stats.status_code == 200
        body = stats.json()
        assert body["total"] == 1 and body["decided"] == {"approved": 0, "rejected": 1, "approval_rate": 0.0}
        assert body["reviewers"] == {"bob": {"approved": 0, "rejected": 1, "approval_rate": 0.0}}
    assert desk.client.get("/v1/reviews/stats", headers=desk.as_("bob")).status_code == 403
    assert desk.client.get("/v1/reviews/stats", headers=desk.as_("agent")).status_code == 403
    assert desk.client.get("/v1/reviews/stats").status_code == 401
    window = desk.client.get("/v1/reviews/stats?since=2999-01-01T00:00:00Z", headers=desk.as_("auditor")).json()
    assert window["total"] == 0 and window["filters"]["since"] == "2999-01-01T00:00:00Z"
    assert desk.client.get("/v1/reviews/stats?until=2026-01-01T00:00:00", headers=desk.as_("auditor")).status_code == 422


def test_a_wait_that_times_out_answers_the_status_it_began_with(desk: Served) -> None:
    review_id = held(desk)
    shown = desk.client.get(f"/v1/reviews/{review_id}?wait=0.2", headers=desk.as_("agent"))
    assert shown.status_code == 200 and shown.json()["status"] == "pending"
