"""The review table, in SQL that SQLite and PostgreSQL share, and the one in-memory review store.

Each SQL function takes an open connection (inside the caller's transaction) and the dialect's
parameter mark (``?`` or ``%s``); ``lock`` is `` FOR UPDATE`` where the dialect locks rows (SQLite's
``BEGIN IMMEDIATE`` already holds the whole database). A review is kept as its JSON document plus the
columns that are searched.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, Protocol

from lictor.errors import InputError, ReviewError
from lictor.oversight import (
    Reviewer,
    ReviewQuery,
    ReviewRequest,
    apply_act,
    apply_use,
    escalate,
    expire,
    forget,
)
from lictor.store.tables import filters

__all__ = [
    "MemoryReviews",
    "act_change",
    "change_review",
    "due_reviews",
    "escalate_change",
    "expire_change",
    "find_review",
    "find_reviews",
    "forget_subject",
    "open_review",
    "use_change",
]


class _Conn(Protocol):
    def execute(self, query: Any, params: Any = ..., /) -> Any: ...


_COLUMNS = "id, action_hash, agent_id, system, status, created_at, expires_at, doc, escalate_at"

Change = Callable[[ReviewRequest], ReviewRequest | None]


def _row(review: ReviewRequest) -> tuple[Any, ...]:
    return (review.id, review.action_hash, review.agent_id or "", review.system, review.status, review.created_at,
            review.expires_at, json.dumps(review.to_dict(), separators=(",", ":")), _escalate_at(review))


def _escalate_at(review: ReviewRequest) -> float | None:
    """When the sweep should escalate the review: None once it escalated, or when it never does."""
    return review.escalate_at if review.escalated_at is None and review.status == "pending" else None


def _due(review: ReviewRequest, now: float) -> bool:
    if review.status in ("pending", "approved") and review.expires_at <= now:
        return True
    due = _escalate_at(review)
    return due is not None and due <= now


def _review(doc: Any) -> ReviewRequest:
    return ReviewRequest.from_dict(json.loads(doc))


def open_review(conn: _Conn, mark: str, review: ReviewRequest, now: float) -> tuple[ReviewRequest, bool]:
    row = conn.execute(f"SELECT doc FROM review WHERE action_hash = {mark} AND agent_id = {mark}"
                       f" AND status = 'pending' AND expires_at > {mark} ORDER BY created_at, id LIMIT 1",
                       (review.action_hash, review.agent_id or "", now)).fetchone()
    if row is not None:
        return _review(row[0]), False
    conn.execute(f"INSERT INTO review ({_COLUMNS}) VALUES ({', '.join([mark] * 9)})", _row(review))
    return review, True


def find_review(conn: _Conn, mark: str, review_id: str, lock: str = "") -> ReviewRequest | None:
    row = conn.execute(f"SELECT doc FROM review WHERE id = {mark}{lock}", (review_id,)).fetchone()
    return None if row is None else _review(row[0])


def find_reviews(conn: _Conn, mark: str, query: ReviewQuery) -> list[ReviewRequest]:
    _check(query)
    where, params = filters(mark, (("status", query.status), ("system", query.system)), "created_at",
                            query.since, query.until)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    found: list[ReviewRequest] = []
    offset = 0
    while len(found) < query.limit:  # the approver filter reads the document: page until enough
        rows = conn.execute(f"SELECT doc FROM review{clause} ORDER BY created_at, id LIMIT 500 OFFSET {offset}",
                            tuple(params)).fetchall()
        found.extend(r for r in (_review(row[0]) for row in rows)
                     if query.approver is None or query.approver in r.approvers)
        if len(rows) < 500:
            break
        offset += 500
    return found[:query.limit]


def change_review(conn: _Conn, mark: str, review_id: str, change: Change, lock: str = "") -> ReviewRequest | None:
    """Read the review (locked), apply ``change`` and write the result back when there is one."""
    review = find_review(conn, mark, review_id, lock)
    if review is None:
        raise ReviewError(f"there is no review {review_id!r}", reason="not_found")
    changed = change(review)
    if changed is not None:
        row = _row(changed)
        conn.execute(f"UPDATE review SET status = {mark}, doc = {mark}, escalate_at = {mark} WHERE id = {mark}",
                     (changed.status, row[7], row[8], changed.id))
    return changed


def due_reviews(conn: _Conn, mark: str, now: float, limit: int) -> list[ReviewRequest]:
    """Open reviews past their expiry, and pending ones past their escalation time, oldest first."""
    rows = conn.execute(
        f"SELECT doc FROM review WHERE (status IN ('pending', 'approved') AND expires_at <= {mark})"
        f" OR (status = 'pending' AND escalate_at <= {mark}) ORDER BY created_at, id LIMIT {int(limit)}",
        (now, now)).fetchall()
    return [_review(row[0]) for row in rows]


def act_change(reviewer: Reviewer, verdict: str, comment: str, now: float) -> Change:
    return lambda review: apply_act(review, reviewer, verdict, comment, now)


def use_change(action_hash: str, now: float) -> Change:
    return lambda review: apply_use(review, action_hash, now)


def escalate_change(now: float) -> Change:
    return lambda review: escalate(review, now)


def expire_change(now: float) -> Change:
    return lambda review: expire(review, now)


def _check(query: ReviewQuery) -> None:
    if query.limit < 1:
        raise InputError("the limit is at least 1", path="$.limit")


def forget_subject(conn: _Conn, mark: str, subject: str) -> int:
    """Delete the reviews that concern ``subject`` and blank their acts elsewhere; only documents
    holding the subject's id as a JSON string are read (a LIKE on the stored JSON)."""
    needle = json.dumps(subject)
    pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = conn.execute(f"SELECT id, doc FROM review WHERE doc LIKE {mark} ESCAPE '\\'", (pattern,)).fetchall()
    changed = 0
    for review_id, doc in rows:
        outcome = forget(_review(doc), subject)
        if outcome is True:
            conn.execute(f"DELETE FROM review WHERE id = {mark}", (review_id,))
        elif isinstance(outcome, ReviewRequest):
            conn.execute(f"UPDATE review SET doc = {mark} WHERE id = {mark}", (_row(outcome)[7], review_id))
        else:
            continue
        changed += 1
    return changed


class MemoryReviews:
    """Reviews in a dict behind one lock (the memory store's part of the review port)."""

    def __init__(self) -> None:
        self._reviews_lock = threading.Lock()
        self._reviews: dict[str, ReviewRequest] = {}

    def open_review(self, review: ReviewRequest, now: float) -> tuple[ReviewRequest, bool]:
        with self._reviews_lock:
            for held in sorted(self._reviews.values(), key=lambda r: (r.created_at, r.id)):
                if (held.action_hash == review.action_hash and (held.agent_id or "") == (review.agent_id or "")
                        and held.status == "pending" and held.expires_at > now):
                    return held, False
            self._reviews[review.id] = review
            return review, True

    def review(self, review_id: str) -> ReviewRequest | None:
        with self._reviews_lock:
            return self._reviews.get(review_id)

    def reviews(self, query: ReviewQuery) -> list[ReviewRequest]:
        _check(query)
        with self._reviews_lock:
            found = sorted(self._reviews.values(), key=lambda r: (r.created_at, r.id))
        return [r for r in found if (query.status is None or r.status == query.status)
                and (query.system is None or r.system == query.system)
                and (query.approver is None or query.approver in r.approvers)
                and (query.since is None or r.created_at >= query.since)
                and (query.until is None or r.created_at < query.until)][:query.limit]

    def _change(self, review_id: str, change: Change) -> ReviewRequest | None:
        with self._reviews_lock:
            review = self._reviews.get(review_id)
            if review is None:
                raise ReviewError(f"there is no review {review_id!r}", reason="not_found")
            changed = change(review)
            if changed is not None:
                self._reviews[review_id] = changed
            return changed

    def act_on_review(self, review_id: str, reviewer: Reviewer, verdict: str, comment: str,
                      now: float) -> ReviewRequest:
        changed = self._change(review_id, act_change(reviewer, verdict, comment, now))
        assert changed is not None
        return changed

    def use_review(self, review_id: str, action_hash: str, now: float) -> ReviewRequest:
        changed = self._change(review_id, use_change(action_hash, now))
        assert changed is not None
        return changed

    def expire_review(self, review_id: str, now: float) -> ReviewRequest | None:
        return self._change(review_id, expire_change(now))

    def escalate_review(self, review_id: str, now: float) -> ReviewRequest | None:
        return self._change(review_id, escalate_change(now))

    def due_reviews(self, now: float, limit: int = 100) -> list[ReviewRequest]:
        with self._reviews_lock:
            found = sorted(self._reviews.values(), key=lambda r: (r.created_at, r.id))
        return [r for r in found if _due(r, now)][:limit]

    def forget_subject(self, subject: str) -> int:
        changed = 0
        with self._reviews_lock:
            for review_id, review in list(self._reviews.items()):
                outcome = forget(review, subject)
                if outcome is True:
                    del self._reviews[review_id]
                elif isinstance(outcome, ReviewRequest):
                    self._reviews[review_id] = outcome
                else:
                    continue
                changed += 1
        return changed
