"""Prometheus metrics of one app, in a registry of its own (never the process-global one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from lictor.model import Decision

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """Decisions by verdict, system and policy, decision latency, errors and the log's size."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.decisions = Counter("lictor_decisions", "Decisions made, by verdict and system.",
                                 ["verdict", "system"], registry=self.registry)
        self.rules = Counter("lictor_rule_matches", "Rules that contributed to a decision, by policy and verdict.",
                             ["policy", "verdict"], registry=self.registry)
        self.latency = Histogram("lictor_decision_seconds",
                                 "Time to decide and make the record durable, per decision.",
                                 buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
                                 registry=self.registry)
        self.errors = Counter("lictor_http_errors", "Error responses, by status code.", ["status"],
                              registry=self.registry)
        self.replays = Counter("lictor_idempotent_replays", "Requests answered with the decision an earlier "
                               "request with the same request_id got.", registry=self.registry)
        self.log_size = Gauge("lictor_audit_log_size", "Leaves in the audit log.", registry=self.registry)

    def observe(self, decision: Decision, system: str, seconds: float) -> None:
        self.decisions.labels(decision.verdict.name, system).inc()
        for reason in decision.reasons:
            self.rules.labels(reason.policy, reason.verdict.name).inc()
        self.latency.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
