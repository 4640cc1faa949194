"""The decision index: a queryable table of the decision leaves, as a port every store implements.

The log itself is only appended to and read by index. Auditors and agents also ask "which
decisions did system X get last week" and "what was decision dec_…": the index answers from a
few columns (id, leaf index, time, system, verdict, the policies that matched) that a store fills
from each decision leaf in the same transaction as the leaf, so a decision is indexed exactly when
it is in the log. It holds nothing that the leaf does not already show in clear.

The index also remembers which decision answered a client's ``request_id`` (scoped by the caller,
for example an API key id), so a retried request gets the original decision back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import orjson

__all__ = ["DecisionIndex", "DecisionQuery", "IndexedDecision", "index_entries", "index_entry"]

_DECISION_MARK = b'"type":"decision"'


@dataclass(frozen=True, slots=True)
class IndexedDecision:
    """One decision as the index knows it: where its leaf is and what it says in clear."""

    decision_id: str
    leaf_index: int
    ts: str
    system: str
    verdict: str
    policies: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DecisionQuery:
    """A filter over the index; every field given must match. ``since``/``until`` compare the
    leaf's RFC 3339 UTC timestamp text (``since`` inclusive, ``until`` exclusive); ``after`` is the
    cursor: only leaves after this index. Results come in log order, at most ``limit`` of them."""

    system: str | None = None
    verdict: str | None = None
    policy: str | None = None
    since: str | None = None
    until: str | None = None
    after: int | None = None
    limit: int = 100


def index_entry(data: bytes, leaf_index: int) -> IndexedDecision | None:
    """The index entry of a stored leaf, or None when it is not a (readable) decision leaf."""
    if _DECISION_MARK not in data:
        return None
    try:
        leaf = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(leaf, dict) or leaf.get("type") != "decision":
        return None
    decision_id, ts, system, verdict = (leaf.get(k) for k in ("decision_id", "ts", "system", "verdict"))
    if not all(isinstance(v, str) for v in (decision_id, ts, system, verdict)):
        return None
    reasons = leaf.get("reasons")
    policies: list[str] = []
    if isinstance(reasons, list):
        for reason in reasons:
            name = reason.get("policy") if isinstance(reason, dict) else None
            if isinstance(name, str) and name not in policies:
                policies.append(name)
    return IndexedDecision(str(decision_id), leaf_index, str(ts), str(system), str(verdict), tuple(policies))


def index_entries(leaves: Sequence[bytes], first: int) -> list[IndexedDecision]:
    """The index entries of a batch whose first leaf gets index ``first``."""
    found = (index_entry(data, first + offset) for offset, data in enumerate(leaves))
    return [entry for entry in found if entry is not None]


@runtime_checkable
class DecisionIndex(Protocol):
    """Reads of the decision index, and the request ids it remembers."""

    def decision(self, decision_id: str) -> IndexedDecision | None:
        """The decision with this id, or None."""
        ...

    def decisions(self, query: DecisionQuery) -> list[IndexedDecision]:
        """The decisions that match ``query``, in log order."""
        ...

    def remember_request(self, scope: str, request_id: str, decision_id: str) -> str:
        """Note that ``decision_id`` answered ``request_id`` from ``scope`` unless another decision
        did first; return the decision id that holds (the first one's)."""
        ...

    def requested(self, scope: str, request_id: str) -> str | None:
        """The decision id that answered ``request_id`` from ``scope``, if one did."""
        ...

