"""Human oversight: review requests raised by ``approval`` rules, the reviewers' acts, and approvals
bound to the exact action they were given for."""

from lictor.oversight.desk import ReviewDesk
from lictor.oversight.port import ReviewQuery, ReviewSignal, ReviewStore
from lictor.oversight.review import (
    STATUSES,
    Act,
    Reviewer,
    ReviewRequest,
    action_hash,
    apply_act,
    apply_use,
    escalate,
    expire,
    forget,
    matches,
    new_review,
    quorum_met,
    time_text,
)
from lictor.oversight.stats import decided_at, percentile, review_stats

__all__ = [
    "STATUSES",
    "Act",
    "ReviewDesk",
    "ReviewQuery",
    "ReviewRequest",
    "ReviewSignal",
    "ReviewStore",
    "Reviewer",
    "action_hash",
    "apply_act",
    "apply_use",
    "decided_at",
    "escalate",
    "expire",
    "forget",
    "matches",
    "new_review",
    "percentile",
    "quorum_met",
    "review_stats",
    "time_text",
]
