"""Human oversight: review requests raised by ``approval`` rules, the reviewers' acts, and approvals
bound to the exact action they were given for."""

from lictor.oversight.desk import ReviewDesk
from lictor.oversight.port import ReviewQuery, ReviewStore
from lictor.oversight.review import (
    STATUSES,
    Act,
    Reviewer,
    ReviewRequest,
    action_hash,
    apply_act,
    apply_use,
    expire,
    forget,
    matches,
    new_review,
    quorum_met,
    time_text,
)

__all__ = [
    "STATUSES",
    "Act",
    "ReviewDesk",
    "ReviewQuery",
    "ReviewRequest",
    "ReviewStore",
    "Reviewer",
    "action_hash",
    "apply_act",
    "apply_use",
    "expire",
    "forget",
    "matches",
    "new_review",
    "quorum_met",
    "time_text",
]
