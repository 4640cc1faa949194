"""The storage port of human oversight: what a review store must do, each step atomically."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from lictor.oversight.review import Reviewer, ReviewRequest

__all__ = ["ReviewQuery", "ReviewSignal", "ReviewStore"]


@dataclass(frozen=True, slots=True)
class ReviewQuery:
    """Filters for listing reviews; times are epoch seconds of creation (``since`` inclusive,
    ``until`` exclusive); ``approver`` is an entry such as ``role:credit-officer``. Statuses are the
    stored ones (a review past its expiry stays ``pending`` until it is marked expired)."""

    status: str | None = None
    system: str | None = None
    approver: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 100


@runtime_checkable
class ReviewStore(Protocol):
    """Where review requests are kept. Every method that changes a review reads and writes it in one
    transaction, so two reviewers acting at once are both counted or one is refused, never lost."""

    def open_review(self, review: ReviewRequest, now: float) -> tuple[ReviewRequest, bool]:
        """Store ``review``, unless a review for the same action hash and agent is still pending at
        ``now``: then that one. Returns (the review, whether it was created)."""
        ...

    def review(self, review_id: str) -> ReviewRequest | None:
        ...

    def reviews(self, query: ReviewQuery) -> list[ReviewRequest]:
        """Matching reviews, oldest first, at most ``query.limit``."""
        ...

    def act_on_review(self, review_id: str, reviewer: Reviewer, verdict: str, comment: str,
                      now: float) -> ReviewRequest:
        """Apply :func:`~lictor.oversight.review.apply_act` atomically; raises ReviewError (reason
        ``not_found`` when there is no such review)."""
        ...

    def use_review(self, review_id: str, action_hash: str, now: float) -> ReviewRequest:
        """Apply :func:`~lictor.oversight.review.apply_use` atomically: of two callers racing for the
        last use, exactly one succeeds."""
        ...

    def forget_subject(self, subject: str) -> int:
        """Erasure: delete every review that concerns ``subject`` and blank their user id and
        comment in the reviews they acted on (:func:`~lictor.oversight.review.forget`), in one
        transaction; return how many reviews were deleted or changed."""
        ...

    def expire_review(self, review_id: str, now: float) -> ReviewRequest | None:
        """Mark the review expired when it is past its expiry and still open; the review when this
        call changed it, None otherwise (so the expiry is recorded once)."""
        ...

    def escalate_review(self, review_id: str, now: float) -> ReviewRequest | None:
        """Apply :func:`~lictor.oversight.review.escalate` atomically; the review when this call
        escalated it, None otherwise (so the escalation is recorded once, whoever sweeps)."""
        ...

    def due_reviews(self, now: float, limit: int = 100) -> list[ReviewRequest]:
        """Open reviews past their expiry and pending ones past their escalation time at ``now``,
        oldest first, at most ``limit`` (what a sweep must settle)."""
        ...


class ReviewSignal(Protocol):
    """How gateway processes tell each other that a review changed, so that those waiting on it wake
    at once. A hint, never the record: a lost signal only delays a waiter until its next poll."""

    def publish(self, review_id: str) -> None:
        """Tell every subscriber, in every process, that review ``review_id`` changed (never raises)."""
        ...

    def subscribe(self, callback: Callable[[str], None], *, ready_within: float = 5.0) -> None:
        """Call ``callback(review_id)`` from a background thread for each change announced anywhere
        (``"*"`` when any review may have changed unseen, after reconnecting); the first call waits
        up to ``ready_within`` seconds for the listener to listen."""
        ...

    def close(self, timeout: float = 3.0) -> None:
        ...
