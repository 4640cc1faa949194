"""The review desk: raises reviews for held actions, checks presented approvals, records every step.

The gateway asks the desk twice per decision that concerns oversight: before evaluation, which
rules a presented approval excuses (:meth:`ReviewDesk.presented`), and after it, what the decision
becomes (:meth:`ReviewDesk.settle`: a pending review, a used approval, or BLOCK with the reason).
Every step is a ``review`` leaf appended through the :class:`Evidence` port; people appear in those
leaves only as salted commitments, API keys by their id.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from lictor.audit.leaf import commit, leaf_time
from lictor.errors import ReviewError
from lictor.model import Action, Decision, RuleError, Verdict
from lictor.oversight.port import ReviewQuery, ReviewStore
from lictor.oversight.review import (
    Act,
    Reviewer,
    ReviewRequest,
    action_hash,
    apply_use,
    new_review,
    time_text,
)
from lictor.oversight.stats import review_stats

__all__ = ["Evidence", "Presented", "ReviewDesk"]


class Evidence(Protocol):
    """Where review leaves go (the audit log)."""

    def append(self, leaf: dict[str, Any]) -> object:
        ...


@dataclass(frozen=True, slots=True)
class Presented:
    """An approval an action presents, as checked before evaluation."""

    review_id: str
    review: ReviewRequest | None
    problem: ReviewError | None

    @property
    def excused(self) -> tuple[tuple[str, str], ...]:
        return () if self.problem is not None or self.review is None else self.review.rules


class ReviewDesk:
    """Oversight over one review store, recording to one log."""

    def __init__(self, store: ReviewStore, evidence: Evidence,
                 listener: Callable[[str, ReviewRequest], None] | None = None) -> None:
        self.store = store
        self.evidence = evidence
        self.listener = listener  # told of each step after it is recorded (notifications); never fails one

    # ---------------------------------------------------------------- the decision path

    def presented(self, action: Action, now: float) -> Presented | None:
        """The approval ``action`` presents, checked (without using it); None when it presents none."""
        if action.approval is None:
            return None
        review = self.store.review(action.approval)
        if review is None:
            return Presented(action.approval, None, ReviewError(f"there is no review {action.approval!r}",
                                                                reason="not_found"))
        review = self._expired(review, now)
        try:
            apply_use(review, action_hash(action), now)
        except ReviewError as exc:
            return Presented(review.id, review, exc)
        return Presented(review.id, review, None)

    def settle(self, decision: Decision, action: Action, presented: Presented | None, now: float,
               context: Mapping[str, Any] | None = None) -> Decision:
        """The decision after oversight: a used approval lifts its rules; a refused one BLOCKs with
        the reason; an approval rule still holding the action raises (or returns) a pending review."""
        if presented is not None and presented.problem is not None:
            refused = RuleError("", "", f"approval {presented.review_id} refused ({presented.problem.reason}): "
                                f"{presented.problem.message}", True)
            decision = dataclasses.replace(decision, verdict=Verdict.BLOCK, action=None, constraints=(),
                                           errors=(*decision.errors, refused))
            summary: dict[str, Any] | None = None
            if presented.review is not None:
                summary = {**presented.review.summary(now), "refused": presented.problem.reason}
            decision = dataclasses.replace(decision, review=summary)
        elif presented is not None and presented.review is not None and decision.verdict is not Verdict.BLOCK:
            return self._use(decision, action, presented.review, now)
        held = [r for r in decision.reasons if r.approval is not None
                and (presented is None or (r.policy, r.rule) not in presented.excused)]
        if decision.verdict is not Verdict.BLOCK or not held:
            return decision
        review, created = self.store.open_review(
            new_review(dataclasses.replace(decision, reasons=tuple(held)), action, now, context=context), now)
        if created:
            self._record(review, "created", now, decision_id=decision.decision_id,
                         rules=[{"policy": p, "rule": r} for p, r in review.rules],
                         approvers=list(review.approvers), quorum=review.quorum,
                         expires_at=time_text(review.expires_at))
        return dataclasses.replace(decision, review=review.summary(now))

    def _use(self, decision: Decision, action: Action, review: ReviewRequest, now: float) -> Decision:
        try:
            used = self.store.use_review(review.id, action_hash(action), now)
        except ReviewError as exc:  # lost a race for the last use, or expired meanwhile
            refused = RuleError("", "", f"approval {review.id} refused ({exc.reason}): {exc.message}", True)
            return dataclasses.replace(decision, verdict=Verdict.BLOCK, action=None, constraints=(),
                                       errors=(*decision.errors, refused),
                                       review={**review.summary(now), "refused": exc.reason})
        self._record(used, "used", now, decision_id=decision.decision_id, uses=used.uses)
        approved_by = [{"user": a.user, "key_id": a.key_id, "at": time_text(a.at)}
                       for a in used.acts if a.verdict == "approve"]
        return dataclasses.replace(decision, review={**used.summary(now), "approved_by": approved_by})

    # ---------------------------------------------------------------- reviewers

    def act(self, review_id: str, reviewer: Reviewer, verdict: str, comment: str, now: float) -> ReviewRequest:
        """Approve or reject; raises ReviewError when a rule refuses. The act is recorded in the log."""
        current = self.store.review(review_id)
        if current is not None:
            self._expired(current, now)
        review = self.store.act_on_review(review_id, reviewer, verdict, comment, now)
        act = review.acts[-1]
        self._record(review, "approved" if verdict == "approve" else "rejected", now,
                     reviewer=self._reviewer(act), comment=commit(act.comment, bytes.fromhex(act.salt)[16:]))
        return review

    def review(self, review_id: str, now: float) -> ReviewRequest:
        """The review (marked, and recorded, expired when its time has passed); ReviewError when none."""
        review = self.store.review(review_id)
        if review is None:
            raise ReviewError(f"there is no review {review_id!r}", reason="not_found")
        return self._expired(review, now)

    def reviews(self, query: ReviewQuery, now: float) -> list[ReviewRequest]:
        """The matching reviews; those found past their expiry are marked (and recorded) expired, and
        left out when the query asks for another status."""
        found = [self._expired(r, now) for r in self.store.reviews(query)]
        return [r for r in found if query.status is None or r.status == query.status]

    def stats(self, query: ReviewQuery, now: float) -> dict[str, Any]:
        """Oversight statistics (:func:`~lictor.oversight.stats.review_stats`) over every review the
        query's ``system``, ``approver``, ``since`` and ``until`` select (its status and limit are
        not used: the statistics count every status)."""
        selected = dataclasses.replace(query, status=None, limit=10**9)
        return {**review_stats(self.reviews(selected, now), now),
                "filters": {"system": query.system, "approver": query.approver,
                            "since": time_text(query.since) if query.since is not None else None,
                            "until": time_text(query.until) if query.until is not None else None}}

    # ---------------------------------------------------------------- evidence

    def sweep(self, now: float, limit: int = 100) -> int:
        """Escalate and expire the reviews due at ``now`` (at most ``limit`` of them), recording each
        step once even when several gateways sweep the same store; returns how many were due. A
        gateway's sweeper thread calls this periodically, so an expiry is recorded even when nobody
        looks at the review again; tests call it with their own clock."""
        due = self.store.due_reviews(now, limit)
        for review in due:
            self._expired(review, now)
        return len(due)

    def notified(self, review_id: str, system: str, notification: str, *, group: str | None, outcome: str,
                 attempts: int, http_status: int | None, now: float) -> None:
        """Record what became of one notification of a review (a ``notified`` leaf): the event sent,
        the approver group whose endpoint it went to, the outcome (delivered, failed, refused,
        dropped) and the attempts made; never the endpoint or what was sent."""
        self.evidence.append({"v": 1, "type": "review", "ts": leaf_time(now), "event": "notified",
                              "review": review_id, "system": system, "notification": notification,
                              "group": group, "outcome": outcome, "attempts": attempts,
                              "http_status": http_status})

    def _expired(self, review: ReviewRequest, now: float) -> ReviewRequest:
        """The review after the steps its time calls for: escalation when it is due, then expiry."""
        due = review.escalate_at
        if (review.status == "pending" and review.escalated_at is None and due is not None
                and due <= now < review.expires_at):
            escalated = self.store.escalate_review(review.id, now)
            if escalated is not None:
                self._record(escalated, "escalated", now, escalate_to=list(escalated.escalated_to),
                             approvers=list(escalated.approvers))
                review = escalated
            else:
                review = self.store.review(review.id) or review
        if review.status not in ("pending", "approved") or now < review.expires_at:
            return review
        changed = self.store.expire_review(review.id, now)
        if changed is None:
            return self.store.review(review.id) or review
        self._record(changed, "expired", now, expires_at=time_text(changed.expires_at))
        return changed

    @staticmethod
    def _reviewer(act: Act) -> dict[str, str]:
        return {"key_id": act.key_id, "user": commit(act.user, bytes.fromhex(act.salt)[:16])}

    def _record(self, review: ReviewRequest, event: str, now: float, **details: Any) -> None:
        self.evidence.append({"v": 1, "type": "review", "ts": leaf_time(now), "event": event, "review": review.id,
                              "system": review.system, "status": review.status, **details})
        if self.listener is not None:
            with contextlib.suppress(Exception):  # a notification problem never undoes a recorded step
                self.listener(event, review)

