"""Review requests and the rules of human oversight, as pure functions over frozen data.

A review request holds the hash of the exact action it was raised for, the approval requirements
of the rules that held the action, and every reviewer's act. The rules (only a listed approver may
act, four eyes, quorum of distinct reviewers, expiry, rejection is final, single use) live here so
that every store applies the very same ones inside its own transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from lictor.audit.canonical import canonical_json
from lictor.errors import InputError, ReviewError
from lictor.model import Action, ApprovalRequirement, Decision, data_subjects

__all__ = [
    "STATUSES",
    "Act",
    "ReviewRequest",
    "Reviewer",
    "action_hash",
    "apply_act",
    "apply_use",
    "escalate",
    "expire",
    "forget",
    "matches",
    "new_review",
    "quorum_met",
    "time_text",
]

#: Every status a review can have; only ``pending`` and ``approved`` can still change.
STATUSES = ("pending", "approved", "rejected", "expired", "used")
#: The most characters a reviewer's comment may hold.
MAX_COMMENT = 4000


def action_hash(action: Action) -> str:
    """``sha256:`` + the SHA-256 of the RFC 8785 JSON of the action without ``approval`` and
    ``request_id``: any change to an argument, the agent or the principal changes it."""
    data = action.to_dict()
    data.pop("approval", None)
    data.pop("request_id", None)
    return "sha256:" + hashlib.sha256(canonical_json(data)).hexdigest()


def time_text(seconds: float) -> str:
    """An epoch time as RFC 3339 UTC with a ``Z``."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")[:-6] + "Z"


@dataclass(frozen=True, slots=True)
class Reviewer:
    """Who acts on a review: the API key's id, its user id and its business roles."""

    key_id: str
    user: str | None
    roles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Act:
    """One reviewer's approval or rejection, with the time and the comment."""

    verdict: str  # "approve" | "reject"
    user: str
    key_id: str
    at: float
    comment: str = ""
    groups: tuple[str, ...] = ()  # the approvers entries the reviewer matched when acting
    salt: str = ""  # hex; salts the audit leaf's commitments to the user and the comment

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "user": self.user, "key_id": self.key_id, "at": time_text(self.at),
                "at_epoch": self.at, "comment": self.comment, "groups": list(self.groups), "salt": self.salt}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Act:
        return cls(str(data["verdict"]), str(data["user"]), str(data["key_id"]), float(data["at_epoch"]),
                   str(data.get("comment", "")), tuple(str(g) for g in data.get("groups", ())),
                   str(data.get("salt", "")))


@dataclass(frozen=True, slots=True)
class ReviewRequest:
    """A held action waiting for (or holding) people's decision."""

    id: str
    action_hash: str
    system: str
    decision_id: str
    rules: tuple[tuple[str, str], ...]  # (policy, rule) of the approval rules that held the action
    requirements: tuple[ApprovalRequirement, ...]
    created_at: float
    expires_at: float
    agent_id: str | None = None
    principal_id: str | None = None
    status: str = "pending"
    acts: tuple[Act, ...] = ()
    uses_allowed: int = 1
    uses: int = 0
    context: dict[str, Any] = field(default_factory=dict)  # the action, reasons and findings, for reviewers
    escalated_at: float | None = None  # when the second approver groups (``escalate_to``) were let in

    @property
    def approvers(self) -> tuple[str, ...]:
        """Who may act now: every rule's approvers, and their ``escalate_to`` groups once escalated."""
        return tuple(dict.fromkeys(a for r in self.requirements for a in _groups(r, self.escalated_at)))

    @property
    def escalate_at(self) -> float | None:
        """When the review escalates if still undecided: the earliest ``escalate_after`` of its rules
        (None when none escalates)."""
        afters = [r.escalate_after_seconds for r in self.requirements if r.escalate_after_seconds is not None]
        return self.created_at + min(afters) if afters else None

    @property
    def escalated_to(self) -> tuple[str, ...]:
        """The second approver groups of the rules (whether or not the review escalated yet)."""
        return tuple(dict.fromkeys(a for r in self.requirements for a in r.escalate_to))

    @property
    def quorum(self) -> int:
        return max((r.quorum for r in self.requirements), default=1)

    def status_at(self, now: float) -> str:
        """The status at time ``now``: a pending or approved review past its expiry is expired."""
        if self.status in ("pending", "approved") and now >= self.expires_at:
            return "expired"
        return self.status

    def summary(self, now: float) -> dict[str, Any]:
        """What a decision carries in ``review``."""
        return {"id": self.id, "status": self.status_at(now), "approvers": list(self.approvers),
                "expires_at": time_text(self.expires_at)}

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        status = self.status if now is None else self.status_at(now)
        return {
            "id": self.id, "status": status, "action_hash": self.action_hash, "system": self.system,
            "decision_id": self.decision_id, "rules": [{"policy": p, "rule": r} for p, r in self.rules],
            "requirements": [r.to_dict() for r in self.requirements], "approvers": list(self.approvers),
            "quorum": self.quorum, "created_at": time_text(self.created_at), "created_epoch": self.created_at,
            "expires_at": time_text(self.expires_at), "expires_epoch": self.expires_at,
            "agent_id": self.agent_id, "principal_id": self.principal_id,
            "acts": [a.to_dict() for a in self.acts], "uses_allowed": self.uses_allowed, "uses": self.uses,
            "context": self.context, "escalated_at": time_text(self.escalated_at) if self.escalated_at is not None else None,
            "escalated_epoch": self.escalated_at,
        }

    def view(self, now: float) -> dict[str, Any]:
        """What a reviewer is shown: the review with its full context (``action`` with its arguments,
        ``reasons``, ``findings``, ``risk_tier``) and every act, without the stored epoch times and
        the commitment salts."""
        data = self.to_dict(now)
        for name in ("created_epoch", "expires_epoch", "escalated_epoch"):
            data.pop(name)
        data["acts"] = [{k: v for k, v in act.items() if k not in ("at_epoch", "salt")} for act in data["acts"]]
        context = data.pop("context")
        data["action"] = context.get("action")
        data["reasons"] = context.get("reasons", [])
        data["findings"] = context.get("findings", [])
        data["risk_tier"] = context.get("risk_tier")
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReviewRequest:
        return cls(
            id=str(data["id"]), action_hash=str(data["action_hash"]), system=str(data["system"]),
            decision_id=str(data["decision_id"]),
            rules=tuple((str(r["policy"]), str(r["rule"])) for r in data["rules"]),
            requirements=tuple(ApprovalRequirement.from_dict(r) for r in data["requirements"]),
            created_at=float(data["created_epoch"]), expires_at=float(data["expires_epoch"]),
            agent_id=data.get("agent_id"), principal_id=data.get("principal_id"), status=str(data["status"]),
            acts=tuple(Act.from_dict(a) for a in data.get("acts", ())),
            uses_allowed=int(data.get("uses_allowed", 1)), uses=int(data.get("uses", 0)),
            context=dict(data.get("context") or {}),
            escalated_at=float(data["escalated_epoch"]) if data.get("escalated_epoch") is not None else None,
        )


def _groups(requirement: ApprovalRequirement, escalated_at: float | None) -> tuple[str, ...]:
    return (*requirement.approvers, *requirement.escalate_to) if escalated_at is not None else requirement.approvers


def forget(review: ReviewRequest, subject: str) -> ReviewRequest | bool | None:
    """What erasing ``subject`` does to a stored review: True when the review concerns them (their
    principal id, or the held action's principal or listed data subjects), so it is deleted whole;
    the review with their acts' user id and comment blanked when they only reviewed it; None when
    it does not mention them. The audit log keeps the review's leaves, which hold only commitments."""
    held = review.context.get("action")
    try:
        concerned = data_subjects(Action.from_dict(held)) if isinstance(held, dict) else []
    except InputError:  # not an action any more: only the stored principal id can tell
        concerned = []
    if subject == review.principal_id or subject in concerned:
        return True
    if not any(act.user == subject for act in review.acts):
        return None
    acts = tuple(replace(act, user="(erased)", comment="") if act.user == subject else act
                 for act in review.acts)
    return replace(review, acts=acts)


def new_review(decision: Decision, action: Action, now: float, *, uses_allowed: int | None = None,
               context: Mapping[str, Any] | None = None) -> ReviewRequest:
    """The review a BLOCK decision whose reasons carry ``approval`` asks for; it lasts as long as the
    shortest ``ttl`` of those rules, and its approval may be used as often as the fewest ``uses`` of
    them allow (unless ``uses_allowed`` says otherwise)."""
    held = [r for r in decision.reasons if r.approval is not None]
    if not held:
        raise InputError("the decision holds no rule that asks for approval", path="$.reasons")
    requirements = tuple(dict.fromkeys(r.approval for r in held if r.approval is not None))
    ttl = min(r.ttl_seconds for r in requirements)
    return ReviewRequest(
        id="rev_" + secrets.token_hex(12), action_hash=action_hash(action), system=action.system,
        decision_id=decision.decision_id, rules=tuple(dict.fromkeys((r.policy, r.rule) for r in held)),
        requirements=requirements, created_at=now, expires_at=now + ttl, agent_id=action.agent.id,
        principal_id=action.principal.id, context=dict(context or {}),
        uses_allowed=uses_allowed if uses_allowed is not None else min(r.uses for r in requirements),
    )


def matches(approvers: Sequence[str], reviewer: Reviewer) -> bool:
    """Whether the reviewer is one of ``approvers`` (``user:ID`` or ``role:NAME``)."""
    for approver in approvers:
        kind, _, name = approver.partition(":")
        if (kind == "user" and reviewer.user is not None and name == reviewer.user) or (
                kind == "role" and name in reviewer.roles):
            return True
    return False


def apply_act(review: ReviewRequest, reviewer: Reviewer, verdict: str, comment: str, now: float) -> ReviewRequest:
    """The review after ``reviewer`` approves or rejects it; raises ReviewError when a rule refuses."""
    if verdict not in ("approve", "reject"):
        raise InputError("a review is approved or rejected", path="$.verdict")
    if len(comment) > MAX_COMMENT:
        raise InputError(f"a comment holds at most {MAX_COMMENT} characters", path="$.comment")
    status = review.status_at(now)
    if status == "expired":
        raise ReviewError(f"review {review.id} expired at {time_text(review.expires_at)}", reason="expired")
    if status != "pending":
        raise ReviewError(f"review {review.id} is {status}; its outcome is final", reason="final")
    if reviewer.user is None:
        raise ReviewError("only a key that names its user may review (four eyes need to know who)",
                          reason="not_approver")
    if not matches(review.approvers, reviewer):
        raise ReviewError(f"{reviewer.user!r} is not one of the approvers ({', '.join(review.approvers)})",
                          reason="not_approver")
    if review.principal_id is not None and reviewer.user == review.principal_id:
        raise ReviewError("the principal who asked for the action may not review it (four eyes)",
                          reason="self_approval")
    if any(a.user == reviewer.user for a in review.acts):
        raise ReviewError(f"{reviewer.user!r} has already acted on review {review.id}", reason="already_acted")
    if verdict == "reject" and not comment.strip():
        raise ReviewError("a rejection needs a comment saying why", reason="comment_required")
    groups = tuple(a for a in review.approvers if matches((a,), reviewer))
    acts = (*review.acts, Act(verdict, reviewer.user, reviewer.key_id, now, comment, groups,
                                   secrets.token_hex(32)))
    if verdict == "reject":
        new_status = "rejected"
    else:
        new_status = "approved" if quorum_met(review.requirements, acts, review.escalated_at) else "pending"
    return replace(review, acts=acts, status=new_status)


def quorum_met(requirements: Sequence[ApprovalRequirement], acts: Sequence[Act],
               escalated_at: float | None = None) -> bool:
    """Whether every requirement has its quorum of distinct approving users who matched it (or its
    ``escalate_to`` groups, once the review escalated)."""
    for requirement in requirements:
        wanted = set(_groups(requirement, escalated_at))
        counted = {a.user for a in acts if a.verdict == "approve" and wanted & set(a.groups)}
        if len(counted) < requirement.quorum:
            return False
    return True


def apply_use(review: ReviewRequest, hash_: str, now: float) -> ReviewRequest:
    """The review after one use of its approval for the action hashed ``hash_``; raises ReviewError
    when it is not approved, expired, used up, or the action changed."""
    status = review.status_at(now)
    if review.action_hash != hash_:
        raise ReviewError(f"review {review.id} approved a different action (its arguments, agent or "
                          "principal changed)", reason="action_changed")
    if status == "used" or (status == "approved" and review.uses >= review.uses_allowed):
        raise ReviewError(f"the approval of review {review.id} has already been used", reason="used")
    if status == "expired":
        raise ReviewError(f"review {review.id} expired at {time_text(review.expires_at)}", reason="expired")
    if status != "approved":
        raise ReviewError(f"review {review.id} is {status}, not approved", reason="not_approved")
    uses = review.uses + 1
    return replace(review, uses=uses, status="used" if uses >= review.uses_allowed else "approved")


def escalate(review: ReviewRequest, now: float) -> ReviewRequest | None:
    """The review escalated (its ``escalate_to`` groups may act too), when it is still pending at
    ``now``, past its ``escalate_at``, not expired and not escalated yet; otherwise None."""
    due = review.escalate_at
    if (review.status != "pending" or review.escalated_at is not None or due is None or now < due
            or now >= review.expires_at):
        return None
    return replace(review, escalated_at=now)


def expire(review: ReviewRequest, now: float) -> ReviewRequest | None:
    """The review marked expired, when it is past its expiry and still open; otherwise None."""
    if review.status in ("pending", "approved") and now >= review.expires_at:
        return replace(review, status="expired")
    return None
