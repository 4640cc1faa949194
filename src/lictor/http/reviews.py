"""The review routes: list and show held actions (long-polling for a change), approve and reject,
and the oversight statistics.

A waiter on ``GET /v1/reviews/{id}?wait=SECONDS`` wakes as soon as the review changes: a change in
this process directly, one in another gateway process through the review signal (Redis pub/sub, or
PostgreSQL's ``LISTEN``/``NOTIFY``) when one is configured. It also re-reads the store every
``reviews.poll_interval`` seconds, the safety net for a lost signal and the only way to notice other
processes' changes when there is no signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from prometheus_client import Gauge
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from lictor.errors import ReviewError
from lictor.http.problems import Problem, parse_json
from lictor.http.schemas import problem_responses
from lictor.oversight import ReviewQuery, ReviewRequest
from lictor.runtime import Gateway

__all__ = ["MAX_WAIT", "ReviewApi"]

#: The longest a ``wait`` may last, in seconds.
MAX_WAIT = 60.0
_ID = r"^[A-Za-z0-9_.:-]{1,128}$"
_STATUS = {"not_found": 404, "not_approver": 403, "self_approval": 403, "comment_required": 422}


def problem(exc: ReviewError) -> Problem:
    """The problem document for a refused review step (404, 403, 422 or 409)."""
    return Problem(_STATUS.get(exc.reason, 409), exc.message, extra={"reason": exc.reason})


def shown(review: ReviewRequest, gateway: Gateway) -> dict[str, Any]:
    """A review as reviewers see it, with the system's risk tier."""
    data = review.view(time.time())
    if data["risk_tier"] is None:
        data["risk_tier"] = gateway.risk_tier(review.system)
    return data


class ReviewApi:
    """The review routes over one gateway; ``caller`` authenticates as the main API does."""

    def __init__(self, gateway: Gateway, caller: Any, waiting: Gauge | None = None) -> None:
        self.gateway = gateway
        self.caller = caller
        self.waiting = waiting  # how many requests are waiting on a review now
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def _watch(self) -> None:
        """Be told of every review change (here or, through the signal, in other processes), once."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        hub = self.gateway.hub
        if hub is not None:
            loop = self._loop

            def changed(review_id: str) -> None:
                if not loop.is_closed():
                    loop.call_soon_threadsafe(self._wake, review_id)

            hub.on_change(changed)

    def _wake(self, review_id: str) -> None:
        """Wake the waiters on ``review_id`` (every waiter for ``*``)."""
        waiting = (list(self._waiters.values()) if review_id == "*"
                   else [self._waiters.get(review_id, set())])
        for events in waiting:
            for event in list(events):
                event.set()

    async def list(self, request: Request,
                   status: Annotated[Literal["pending", "approved", "rejected", "expired", "used"] | None,
                                     Query()] = None,
                   system: Annotated[str | None, Query(max_length=256)] = None,
                   approver: Annotated[str | None, Query(max_length=256)] = None,
                   since: Annotated[datetime | None, Query()] = None,
                   until: Annotated[datetime | None, Query()] = None,
                   limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Response:
        self.caller(request, "reviewer", "auditor", "admin")
        query = ReviewQuery(status=status, system=system, approver=approver, since=_epoch(since, "since"),
                            until=_epoch(until, "until"), limit=limit)
        found = await run_in_threadpool(self.gateway.list_reviews, query)
        return JSONResponse({"reviews": [shown(r, self.gateway) for r in found]})

    async def show(self, request: Request, review_id: Annotated[str, Path(pattern=_ID)],
                   wait: Annotated[float, Query(ge=0, le=3600)] = 0) -> Response:
        key = self.caller(request, "reviewer", "auditor", "admin", "agent")
        if wait > 0:
            self._watch()
        review = await self._load(review_id)
        if wait > 0:
            review = await self._wait(review_id, review, min(wait, MAX_WAIT))
        if key.scope == "agent":  # an agent waits for the outcome; the reviewers' acts are not its business
            now = time.time()
            return JSONResponse({**review.summary(now), "uses": review.uses, "uses_allowed": review.uses_allowed})
        return JSONResponse(shown(review, self.gateway))

    async def _wait(self, review_id: str, review: ReviewRequest, wait: float) -> ReviewRequest:
        """The review once its status differs from ``review``'s, or ``review`` as it was when ``wait``
        seconds pass without a change seen (woken by a change here or in another process, or by
        the poll every ``reviews.poll_interval``)."""
        deadline = time.monotonic() + wait
        first = review.status_at(time.time())
        poll = self.gateway.hub.poll_interval if self.gateway.hub is not None else 0.5
        if self.waiting is not None:
            self.waiting.inc()
        try:
            while review.status_at(time.time()) == first:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                event = asyncio.Event()
                self._waiters.setdefault(review_id, set()).add(event)
                try:
                    # a change between the last read and now is not missed: read again, then sleep
                    review = await self._load(review_id)
                    if review.status_at(time.time()) != first:
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(event.wait(), min(poll, left))
                finally:
                    self._waiters.get(review_id, set()).discard(event)
                    if not self._waiters.get(review_id):
                        self._waiters.pop(review_id, None)
                if event.is_set() or time.monotonic() < deadline:  # woken, or time to poll
                    review = await self._load(review_id)
        finally:
            if self.waiting is not None:
                self.waiting.dec()
        return review

    async def approve(self, request: Request, review_id: Annotated[str, Path(pattern=_ID)]) -> Response:
        return await self._act(request, review_id, "approve")

    async def reject(self, request: Request, review_id: Annotated[str, Path(pattern=_ID)]) -> Response:
        return await self._act(request, review_id, "reject")

    async def _act(self, request: Request, review_id: str, verdict: str) -> Response:
        key = self.caller(request, "reviewer")
        raw = await request.body()
        body = parse_json(raw) if raw.strip() or verdict == "reject" else {}
        if not isinstance(body, dict):
            raise Problem(422, "the body is a JSON object", errors=[{"path": "$", "message": "expected an object"}])
        unknown = sorted(set(body) - {"comment"})
        if unknown:
            raise Problem(422, f"unknown field {unknown[0]!r}",
                          errors=[{"path": f"$.{unknown[0]}", "message": "unknown field"}])
        comment = body.get("comment", "")
        if not isinstance(comment, str):
            raise Problem(422, "comment is a string", errors=[{"path": "$.comment", "message": "expected a string"}])
        try:
            review = await run_in_threadpool(self.gateway.act_on_review, review_id, key, verdict, comment)
        except ReviewError as exc:
            raise problem(exc) from None
        self._wake(review_id)
        return JSONResponse(shown(review, self.gateway))

    async def stats(self, request: Request,
                    system: Annotated[str | None, Query(max_length=256)] = None,
                    approver: Annotated[str | None, Query(max_length=256)] = None,
                    since: Annotated[datetime | None, Query()] = None,
                    until: Annotated[datetime | None, Query()] = None) -> Response:
        """Oversight statistics over the reviews created in [since, until) (auditor or admin key)."""
        self.caller(request, "auditor", "admin")
        query = ReviewQuery(system=system, approver=approver, since=_epoch(since, "since"),
                            until=_epoch(until, "until"))
        return JSONResponse(await run_in_threadpool(self.gateway.review_stats, query))

    async def _load(self, review_id: str) -> ReviewRequest:
        try:
            return await run_in_threadpool(self.gateway.show_review, review_id)
        except ReviewError as exc:
            raise problem(exc) from None

    def add_routes(self, router: APIRouter) -> None:
        add = router.add_api_route
        add("/v1/reviews", self.list, methods=["GET"], summary="List review requests", tags=["reviews"],
            responses=problem_responses(401, 403, 422, 503))
        add("/v1/reviews/stats", self.stats, methods=["GET"], tags=["reviews"],
            summary="Oversight statistics: outcomes, time to decision, approval rate by reviewer (auditor, admin)",
            responses=problem_responses(401, 403, 422, 503))
        add("/v1/reviews/{review_id}", self.show, methods=["GET"], tags=["reviews"],
            summary="One review request with its context; ?wait=SECONDS long-polls for a change",
            responses=problem_responses(401, 403, 404, 422, 503))
        for verdict, handler in (("approve", self.approve), ("reject", self.reject)):
            add(f"/v1/reviews/{{review_id}}/{verdict}", handler, methods=["POST"], tags=["reviews"],
                summary=f"{verdict.capitalize()} a review request (reviewer key)",
                responses=problem_responses(400, 401, 403, 404, 409, 413, 422, 503))


def _epoch(value: datetime | None, name: str) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise Problem(422, f"{name} needs a time zone (e.g. 2026-11-28T15:00:00Z)",
                      errors=[{"path": f"query.{name}", "message": "a time zone is required"}])
    return value.astimezone(UTC).timestamp()
