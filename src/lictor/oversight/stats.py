"""Oversight statistics for evidence reports: how many reviews ended how, how long people took to
decide, how often each reviewer approved, how many escalated or expired.

Computed from the review records themselves (a pure function of the reviews and the time), so a
report can be reproduced from the same store at the same moment.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from lictor.oversight.review import STATUSES, ReviewRequest, quorum_met, time_text

__all__ = ["decided_at", "percentile", "review_stats"]


def decided_at(review: ReviewRequest) -> tuple[str, float] | None:
    """How and when people decided the review: (``approved``, the time of the approval that met the
    quorum) or (``rejected``, the time of the rejection); None while undecided (or expired undecided)."""
    for act in review.acts:
        if act.verdict == "reject":
            return "rejected", act.at
    approvals = [a for a in review.acts if a.verdict == "approve"]
    for n in range(1, len(approvals) + 1):
        if quorum_met(review.requirements, approvals[:n], review.escalated_at):
            return "approved", approvals[n - 1].at
    return None


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile (``share`` from 0 to 1) of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def review_stats(reviews: Iterable[ReviewRequest], now: float) -> dict[str, Any]:
    """Statistics over ``reviews`` at time ``now``: ``total``; ``by_status`` (every status, at
    ``now``: a review past its expiry counts as expired); ``decided`` (``approved``, ``rejected``,
    ``approval_rate``); ``time_to_decision`` in seconds (``count``, ``median``, ``p90``, ``max``);
    ``reviewers`` (per user id: ``approved``, ``rejected``, ``approval_rate``); ``escalations`` and
    ``expiries`` (how many reviews escalated, and expired)."""
    by_status = dict.fromkeys(STATUSES, 0)
    outcomes = {"approved": 0, "rejected": 0}
    durations: list[float] = []
    reviewers: dict[str, dict[str, int]] = {}
    total = escalations = 0
    for review in reviews:
        total += 1
        by_status[review.status_at(now)] += 1
        if review.escalated_at is not None:
            escalations += 1
        decided = decided_at(review)
        if decided is not None:
            outcomes[decided[0]] += 1
            durations.append(max(0.0, decided[1] - review.created_at))
        for act in review.acts:
            counts = reviewers.setdefault(act.user, {"approved": 0, "rejected": 0})
            counts["approved" if act.verdict == "approve" else "rejected"] += 1
    decided_count = outcomes["approved"] + outcomes["rejected"]
    return {
        "at": time_text(now),
        "total": total,
        "by_status": by_status,
        "decided": {**outcomes, "approval_rate": _rate(outcomes["approved"], decided_count)},
        "time_to_decision": {"count": len(durations), "median": percentile(durations, 0.5),
                             "p90": percentile(durations, 0.9), "max": max(durations, default=None)},
        "reviewers": {user: {**counts, "approval_rate": _rate(counts["approved"],
                                                              counts["approved"] + counts["rejected"])}
                      for user, counts in sorted(reviewers.items())},
        "escalations": escalations,
        "expiries": by_status["expired"],
    }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
