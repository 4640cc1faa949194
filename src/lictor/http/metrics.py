"""Prometheus metrics of one app, in a registry of its own (never the process-global one)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lictor.model import Decision

__all__ = ["CONTENT_TYPE", "ErrorCounter", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

#: The route label of a request that matched no route (so unknown paths cannot grow the label set).
UNMATCHED = "unmatched"


class Metrics:
    """Decisions by verdict, system and policy, decision latency, HTTP errors, idempotent replays,
    and the audit log's size, queue depth, batch sizes and flush latency."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.decisions = Counter("lictor_decisions", "Decisions made, by verdict and system.",
                                 ["verdict", "system"], registry=self.registry)
        self.policy_decisions = Counter(
            "lictor_policy_decisions", "Decisions a policy gave a reason for, by policy and the decision's verdict.",
            ["policy", "verdict"], registry=self.registry)
        self.rules = Counter("lictor_rule_matches", "Rules that contributed to a decision, by policy and verdict.",
                             ["policy", "verdict"], registry=self.registry)
        self.latency = Histogram("lictor_decision_seconds",
                                 "Time to decide and make the record durable, per decision.",
                                 buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
                                 registry=self.registry)
        self.errors = Counter("lictor_http_errors", "Error responses, by status class (4xx, 5xx) and route template.",
                              ["status_class", "route"], registry=self.registry)
        self.replays = Counter("lictor_idempotent_replays", "Requests answered with the decision an earlier "
                               "request with the same request_id got.", registry=self.registry)
        self.log_size = Gauge("lictor_audit_log_size", "Leaves in the audit log.", registry=self.registry)
        self.queue_depth = Gauge("lictor_audit_queue_depth", "Entries waiting for the audit log's writer.",
                                 registry=self.registry)
        self.review_waiters = Gauge("lictor_review_waiters", "Requests waiting on a review (GET /v1/reviews/{id}?wait=).",
                                    registry=self.registry)
        self.batch_size = Histogram("lictor_audit_batch_size", "Leaves committed to the store together (group commit).",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), registry=self.registry)
        self.flush_latency = Histogram("lictor_audit_flush_seconds", "Time the store took to commit one batch.",
                                       buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0),
                                       registry=self.registry)

    def observe(self, decision: Decision, system: str, seconds: float) -> None:
        verdict = decision.verdict.name
        self.decisions.labels(verdict, system).inc()
        for policy in {reason.policy for reason in decision.reasons}:
            self.policy_decisions.labels(policy, verdict).inc()
        for reason in decision.reasons:
            self.rules.labels(reason.policy, reason.verdict.name).inc()
        self.latency.observe(seconds)

    def observe_batch(self, size: int, seconds: float) -> None:
        """The audit log's ``on_batch`` observer."""
        self.batch_size.observe(size)
        self.flush_latency.observe(seconds)

    def watch_queue(self, depth: Callable[[], int]) -> None:
        """Read the queue depth from ``depth`` at each scrape."""
        self.queue_depth.set_function(lambda: float(depth()))

    def observe_error(self, status: int, route: str) -> None:
        self.errors.labels(f"{status // 100}xx", route).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ErrorCounter:
    """A raw ASGI middleware that counts every 4xx and 5xx answer (and every exception that escapes,
    as a 5xx) by the template of the route it matched."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Sequence[BaseRoute] = ()) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes  # to name the route of an answer given before routing (a 413)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        async def tracked(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except BaseException:
            self.metrics.observe_error(status if status >= 400 else 500, self._route(scope))
            raise
        if status >= 400:
            self.metrics.observe_error(status, self._route(scope))

    def _route(self, scope: Scope) -> str:
        route = scope.get("route")
        if not isinstance(route, BaseRoute):
            route = next((r for r in self.routes if r.matches(scope)[0] is not Match.NONE), None)
        path = getattr(route, "path", None)
        return path if isinstance(path, str) else UNMATCHED
