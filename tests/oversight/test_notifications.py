"""Review steps reach the configured webhooks: created when an action is held, approved when a
reviewer acts, each as a signed request the gateway sends without holding up the decision."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx

from lictor.model import Action, Verdict
from lictor.oversight import Reviewer
from lictor.runtime import Gateway
from lictor.webhooks import Endpoint, WebhookNotifier

EXAMPLES = Path(__file__).parents[2] / "examples"
CREDIT = {"system": "credit-scoring", "kind": "tool_call", "name": "approve_credit",
          "args": {"amount": 150000, "customer_id": "C-42"}, "agent": {"id": "loan-agent-7"},
          "principal": {"id": "alice"}, "context": {"confidence": 0.93}}


def test_review_steps_are_sent_to_the_approvers_webhook(tmp_path: Path) -> None:
    received: list[dict[str, object]] = []
    headers: list[httpx.Headers] = []
    two = threading.Event()

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append(json.loads(request.content))
        headers.append(request.headers)
        if len(received) >= 2:
            two.set()
        return httpx.Response(204)

    notifier = WebhookNotifier({"role:credit-officer": [Endpoint("https://hooks.example.com/reviews", "s3cr3t-k3y")]},
                               public_url="https://lictor.example.com", transport=httpx.MockTransport(receiver))
    gateway = Gateway.open(policies=EXAMPLES / "policies", database=f"sqlite:///{tmp_path / 'audit.db'}",
                           key_file=tmp_path / "audit.key", payload_key_file=tmp_path / "payload.key")
    gateway.notify_reviews_to(notifier)
    try:
        decision = gateway.decide(Action.from_dict(CREDIT))
        assert decision.verdict is Verdict.BLOCK and decision.review is not None
        review_id = decision.review["id"]
        assert gateway.desk is not None
        gateway.desk.act(review_id, Reviewer("key-1", "bob", ("credit-officer",)), "approve", "ok", time.time())
        assert two.wait(30)  # delivered by the notifier's own thread
    finally:
        gateway.close()
    created, approved = received[0], received[1]
    assert created["type"] == "review.created" and created["review_id"] == review_id
    assert created["system"] == "credit-scoring" and created["name"] == "approve_credit"
    assert "role:credit-officer" in created["approvers"]  # type: ignore[operator]
    assert created["link"] == f"https://lictor.example.com/v1/reviews/{review_id}"
    assert approved["type"] == "review.approved" and approved["reviewer"] == "bob"
    assert all(h["lictor-signature"].startswith("t=") for h in headers)
