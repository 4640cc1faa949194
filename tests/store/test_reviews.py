"""The review store contract, run against memory, SQLite and PostgreSQL, races included."""

from __future__ import annotations

import threading
from typing import cast

import pytest

from lictor.errors import ReviewError
from lictor.model import Action, ApprovalRequirement, Decision, Reason, Verdict
from lictor.oversight import (
    Reviewer,
    ReviewQuery,
    ReviewRequest,
    ReviewStore,
    action_hash,
    new_review,
)
from tests.store.conftest import Backend

NOW = 1_800_000_000.0
ACTION = Action.from_dict({"system": "credit-scoring", "kind": "tool_call", "name": "approve_credit",
                           "args": {"amount": 150000}, "agent": {"id": "loan-agent-7"},
                           "principal": {"id": "alice"}})


def held(action: Action = ACTION, *, quorum: int = 1, ttl: int = 3600, at: float = NOW) -> ReviewRequest:
    requirement = ApprovalRequirement(("role:credit-officer",), quorum, ttl)
    decision = Decision("dec_1", Verdict.BLOCK, (Reason("credit", "large", Verdict.BLOCK, "", requirement),))
    return new_review(decision, action, at)


def reviews(backend: Backend) -> ReviewStore:
    store = backend.open()
    assert isinstance(store, ReviewStore)
    return cast(ReviewStore, store)


def officer(user: str) -> Reviewer:
    return Reviewer(f"key-{user}", user, ("credit-officer",))


def test_a_second_identical_request_returns_the_pending_review(backend: Backend) -> None:
    store = reviews(backend)
    first, created = store.open_review(held(), NOW)
    assert created
    again, created = store.open_review(held(), NOW + 1)
    assert not created and again.id == first.id
    other = Action.from_dict({**ACTION.to_dict(), "args": {"amount": 150001}})
    assert store.open_review(held(other), NOW)[1]
    assert store.review(first.id) == first
    assert store.review("rev_none") is None
    # once expired, a new request gets a new review
    assert store.open_review(held(), NOW + 3600)[1]


def test_listing_filters(backend: Backend) -> None:
    store = reviews(backend)
    a, _ = store.open_review(held(), NOW)
    other = Action.from_dict({**ACTION.to_dict(), "system": "hr"})
    b, _ = store.open_review(held(other, at=NOW + 10), NOW + 10)
    assert [r.id for r in store.reviews(ReviewQuery())] == [a.id, b.id]
    assert [r.id for r in store.reviews(ReviewQuery(system="hr"))] == [b.id]
    assert [r.id for r in store.reviews(ReviewQuery(since=NOW + 5))] == [b.id]
    assert [r.id for r in store.reviews(ReviewQuery(until=NOW + 5))] == [a.id]
    assert [r.id for r in store.reviews(ReviewQuery(approver="role:credit-officer", limit=1))] == [a.id]
    assert store.reviews(ReviewQuery(approver="role:nobody")) == []
    store.act_on_review(a.id, officer("bob"), "approve", "", NOW + 20)
    assert [r.id for r in store.reviews(ReviewQuery(status="approved"))] == [a.id]


def test_acts_and_uses_follow_the_rules(backend: Backend) -> None:
    store = reviews(backend)
    review, _ = store.open_review(held(), NOW)
    with pytest.raises(ReviewError) as exc:
        store.act_on_review(review.id, Reviewer("k", "alice", ("credit-officer",)), "approve", "", NOW)
    assert exc.value.reason == "self_approval"
    with pytest.raises(ReviewError) as exc:
        store.act_on_review(review.id, Reviewer("k", "eve", ("analyst",)), "approve", "", NOW)
    assert exc.value.reason == "not_approver"
    with pytest.raises(ReviewError) as exc:
        store.use_review(review.id, review.action_hash, NOW)
    assert exc.value.reason == "not_approved"
    approved = store.act_on_review(review.id, officer("bob"), "approve", "fine", NOW + 1)
    assert approved.status == "approved" and approved.acts[0].user == "bob"
    with pytest.raises(ReviewError) as exc:
        store.use_review(review.id, "sha256:other", NOW + 2)
    assert exc.value.reason == "action_changed"
    used = store.use_review(review.id, review.action_hash, NOW + 2)
    assert used.status == "used" and used.uses == 1
    with pytest.raises(ReviewError) as exc:
        store.use_review(review.id, review.action_hash, NOW + 3)
    assert exc.value.reason == "used"
    with pytest.raises(ReviewError) as exc:
        store.act_on_review("rev_none", officer("bob"), "approve", "", NOW)
    assert exc.value.reason == "not_found"


def test_expiry_is_marked_once(backend: Backend) -> None:
    store = reviews(backend)
    review, _ = store.open_review(held(ttl=60), NOW)
    assert store.expire_review(review.id, NOW + 59) is None
    with pytest.raises(ReviewError) as exc:
        store.act_on_review(review.id, officer("bob"), "approve", "", NOW + 60)
    assert exc.value.reason == "expired"
    expired = store.expire_review(review.id, NOW + 60)
    assert expired is not None and expired.status == "expired"
    assert store.expire_review(review.id, NOW + 61) is None


def test_racing_reviewers_are_all_counted(backend: Backend) -> None:
    stores = [reviews(backend) for _ in range(2)] if backend.name != "memory" else [reviews(backend)] * 2
    review, _ = stores[0].open_review(held(quorum=8), NOW)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def approve(n: int) -> None:
        barrier.wait()
        try:
            stores[n % 2].act_on_review(review.id, officer(f"officer-{n}"), "approve", "", NOW + 1)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=approve, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    final = stores[0].review(review.id)
    assert final is not None and final.status == "approved"
    assert sorted(a.user for a in final.acts) == sorted(f"officer-{n}" for n in range(8))


def test_two_consumers_race_for_a_single_use(backend: Backend) -> None:
    stores = [reviews(backend) for _ in range(2)] if backend.name != "memory" else [reviews(backend)] * 2
    review, _ = stores[0].open_review(held(), NOW)
    stores[0].act_on_review(review.id, officer("bob"), "approve", "", NOW)
    barrier = threading.Barrier(4)
    won: list[ReviewRequest] = []
    refused: list[str] = []

    def use(n: int) -> None:
        barrier.wait()
        try:
            won.append(stores[n % 2].use_review(review.id, action_hash(ACTION), NOW + 1))
        except ReviewError as exc:
            refused.append(exc.reason)

    threads = [threading.Thread(target=use, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and refused == ["used"] * 3


def test_erasing_a_subject_deletes_their_reviews_and_blanks_their_acts(backend: Backend) -> None:
    store = reviews(backend)
    alices, _ = store.open_review(held(), NOW)
    for_bob = Action.from_dict({**ACTION.to_dict(), "principal": {"id": "bob"},
                                "context": {"data_subjects": ["C-42"]}})
    requirement = ApprovalRequirement(("role:credit-officer",), 1, 3600)
    decision = Decision("dec_2", Verdict.BLOCK, (Reason("credit", "large", Verdict.BLOCK, "", requirement),))
    bobs, _ = store.open_review(new_review(decision, for_bob, NOW, context={"action": for_bob.to_dict()}), NOW)
    store.act_on_review(bobs.id, officer("carol"), "approve", "fine by me", NOW + 1)

    assert store.forget_subject("al_ce") == 0  # LIKE wildcards in an id match nothing else
    assert store.forget_subject("alice") == 1
    assert store.review(alices.id) is None
    assert store.forget_subject("carol") == 1  # carol only reviewed: her act stays, blanked
    kept = store.review(bobs.id)
    assert kept is not None and kept.status == "approved"
    assert [(a.user, a.comment) for a in kept.acts] == [("(erased)", "")]
    assert store.forget_subject("C-42") == 1  # a listed data subject of the held action
    assert store.review(bobs.id) is None
    assert store.forget_subject("nobody") == 0


def escalating(*, at: float = NOW, after: int = 600, ttl: int = 3600) -> ReviewRequest:
    requirement = ApprovalRequirement(("role:credit-officer",), 1, ttl, 1, after, ("role:cro",))
    decision = Decision("dec_1", Verdict.BLOCK, (Reason("credit", "large", Verdict.BLOCK, "", requirement),))
    return new_review(decision, ACTION, at)


def test_due_reviews_and_escalation_are_atomic_and_once(backend: Backend) -> None:
    store = reviews(backend)
    review, _ = store.open_review(escalating(), NOW)
    plain, _ = store.open_review(held(Action.from_dict({**ACTION.to_dict(), "args": {"amount": 1}})), NOW)
    assert store.due_reviews(NOW + 599) == []
    assert [r.id for r in store.due_reviews(NOW + 600)] == [review.id]
    escalated = store.escalate_review(review.id, NOW + 601)
    assert escalated is not None and escalated.escalated_at == NOW + 601
    assert "role:cro" in escalated.approvers
    assert store.escalate_review(review.id, NOW + 602) is None  # once
    assert store.due_reviews(NOW + 700) == []  # escalated: not due again until it expires
    stored = store.review(review.id)
    assert stored is not None and stored.escalated_at == NOW + 601  # survives the round trip
    cro = Reviewer("key-carol", "carol", ("cro",))
    assert store.act_on_review(review.id, cro, "approve", "", NOW + 700).status == "approved"
    assert {r.id for r in store.due_reviews(NOW + 3600, limit=10)} == {review.id, plain.id}  # both expire now
    assert len(store.due_reviews(NOW + 3600, limit=1)) == 1


def test_racing_sweeps_escalate_once(backend: Backend) -> None:
    store = reviews(backend)
    review, _ = store.open_review(escalating(), NOW)
    results: list[ReviewRequest | None] = []
    threads = [threading.Thread(target=lambda: results.append(store.escalate_review(review.id, NOW + 900)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r is not None for r in results) == 1
