"""The hot path: a loaded PolicySet decides one Action, with no I/O and the clock passed in.

Policies are indexed by their target's systems, kinds and names: the candidates for each
(system, kind, name) are computed once and cached, so a decision costs what the rules that can
match cost, not what the whole set costs. Combination (docs/policy-language.md): every matched rule is a
reason, the most restrictive verdict wins, CONSTRAIN obligations accumulate in policy order, errors
are listed and fail closed for BLOCK and CONSTRAIN rules unless ``on_error: skip``.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lictor.errors import LictorError
from lictor.model import Action, ApprovalRequirement, Decision, Finding, Reason, RuleError, Verdict
from lictor.policy.celfuncs import compile_glob
from lictor.policy.celrt import as_error, type_name
from lictor.policy.constrain import ObligationError, apply_obligations
from lictor.policy.document import Policy, PolicyTest, Rule
from lictor.policy.limits import InMemoryLimitStore, LimitStore

__all__ = ["PolicySet"]

_CACHE_MAX = 65536
_VERDICTS = tuple(sorted(Verdict))


def _matcher(patterns: Sequence[str]) -> Callable[[str | None], bool] | None:
    """A predicate for "value matches any of these globs"; None when the field is unconstrained."""
    if not patterns:
        return None
    exact = frozenset(p for p in patterns if not any(c in p for c in "*?["))
    globs = [compile_glob(p) for p in patterns if p not in exact]

    def match(value: str | None) -> bool:
        if value is None:
            return False
        return value in exact or any(g(value) for g in globs)

    return match


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    policy: str
    rule: Rule
    name: str
    verdict: Verdict
    test: Callable[[Any], Any] | None
    apply_on_error: bool
    reason: Reason
    limit_key: Callable[[Any], Any] | None
    location: str
    rank: int  # the verdict as a plain int, compared on the hot path


@dataclass(frozen=True, slots=True)
class _CompiledPolicy:
    policy: Policy
    systems: Callable[[str | None], bool] | None
    kinds: Callable[[str | None], bool] | None
    names: Callable[[str | None], bool] | None
    agents: Callable[[str | None], bool] | None
    roles: Callable[[str | None], bool] | None
    rules: tuple[_CompiledRule, ...]


def _compile_policy(policy: Policy) -> _CompiledPolicy:
    rules = []
    for rule in policy.rules:
        approval = None
        if rule.approval is not None:
            approval = ApprovalRequirement(rule.approval.approvers, rule.approval.quorum, rule.approval.ttl_seconds,
                                           rule.approval.uses, rule.approval.escalate_after_seconds,
                                           rule.approval.escalate_to)
        loc = rule.location
        rules.append(_CompiledRule(
            policy=policy.name,
            rule=rule,
            name=rule.name,
            verdict=rule.verdict,
            test=rule.program.function if rule.program is not None else None,
            apply_on_error=rule.on_error == "apply",
            reason=Reason(policy.name, rule.name, rule.verdict, rule.message, approval),
            limit_key=rule.limit.key_program.function if rule.limit and rule.limit.key_program else None,
            location=f"{loc.file}:{loc.line}:{loc.column}",
            rank=int(rule.verdict),
        ))
    t = policy.target
    return _CompiledPolicy(policy, _matcher(t.systems), _matcher(t.kinds), _matcher(t.names),
                           _matcher(t.agents), _matcher(t.roles), tuple(rules))


_ID_PREFIX = os.urandom(5).hex()
_ID_COUNTER = itertools.count(int.from_bytes(os.urandom(3), "big"))


def _new_decision_id(now: datetime) -> str:
    """``dec_`` + 12 hex digits of milliseconds + a per-process random part + a counter: sortable by
    time, unique across processes without coordination."""
    return f"dec_{int(now.timestamp() * 1000):012x}{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFF:08x}"


def _timestamp(now: datetime) -> str:
    if now.tzinfo is not UTC:
        now = now.astimezone(UTC)
    return now.isoformat(timespec="microseconds")[:-6] + "Z"


_SIMPLE_VALUE = re.compile(r"[^\x00-\x1f]{0,256}\Z")


class PolicySet:
    """A validated, compiled set of policies; build it with :func:`lictor.load_policies`."""

    def __init__(self, policies: Sequence[Policy], *, revision: str, default_verdict: Verdict = Verdict.ALLOW,
                 tests: Sequence[PolicyTest] = (), limits: LimitStore | None = None,
                 redaction_key: bytes | None = None) -> None:
        self.policies = tuple(sorted(policies, key=lambda p: p.name))
        self.tests = tuple(tests)
        self.revision = revision
        self.default_verdict = default_verdict
        self.limits: LimitStore = limits if limits is not None else InMemoryLimitStore()
        #: The key of ``redact`` tags in ``mode: hash`` (None: unkeyed SHA-256).
        self.redaction_key = redaction_key
        #: Whether some rule has a ``limit`` (its counting may wait on a shared store).
        self.has_limits = any(rule.limit is not None for policy in self.policies for rule in policy.rules)
        self._compiled = tuple(_compile_policy(p) for p in self.policies)
        self._candidates: dict[tuple[str, str, str | None], tuple[_CompiledPolicy, ...]] = {}

    def with_limits(self, limits: LimitStore) -> PolicySet:
        """The same policies counting ``limit`` rules in another store (e.g. fresh for a test case)."""
        return PolicySet(self.policies, revision=self.revision, default_verdict=self.default_verdict,
                         tests=self.tests, limits=limits, redaction_key=self.redaction_key)

    def with_redaction_key(self, key: bytes | None) -> PolicySet:
        """The same policies (and limit counters) keying ``redact`` hash tags with ``key``."""
        return PolicySet(self.policies, revision=self.revision, default_verdict=self.default_verdict,
                         tests=self.tests, limits=self.limits, redaction_key=key)

    @property
    def rule_count(self) -> int:
        return sum(len(p.rules) for p in self.policies)

    # -- index ------------------------------------------------------------------

    def _lookup(self, key: tuple[str, str, str | None]) -> tuple[_CompiledPolicy, ...]:
        system, kind, name = key
        found = tuple(
            cp for cp in self._compiled
            if (cp.systems is None or cp.systems(system))
            and (cp.kinds is None or cp.kinds(kind))
            and (cp.names is None or cp.names(name))
        )
        if len(self._candidates) >= _CACHE_MAX:
            self._candidates.clear()
        self._candidates[key] = found
        return found

    # -- evaluation ---------------------------------------------------------------

    def evaluate(self, action: Action, *, now: datetime | None = None, findings: Sequence[Finding] = (),
                 explain: list[dict[str, Any]] | None = None,
                 excused: Collection[tuple[str, str]] = ()) -> Decision:
        """Decide ``action``. ``now`` is the clock (default: the current UTC time); ``findings`` are the
        detectors' facts; ``explain``, when a list, receives one entry per rule considered.
        ``excused`` names (policy, rule) pairs whose approval was granted: they are still listed in
        the reasons but contribute no verdict (when only excused rules match, the verdict is ALLOW)."""
        started = time.perf_counter_ns()
        if now is None:
            now = datetime.now(UTC)
        elif now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        try:
            return self._decide(action, now, findings, explain, started, excused)
        except Exception as exc:  # an internal failure never allows: BLOCK with the error
            error = RuleError("", "", f"internal error while deciding: {type(exc).__name__}: {exc}", True)
            return Decision(
                decision_id=_new_decision_id(now), verdict=Verdict.BLOCK, errors=(error,),
                findings=tuple(findings), policy_revision=self.revision, timestamp=_timestamp(now),
                duration_us=(time.perf_counter_ns() - started) // 1000,
            )

    def _decide(self, action: Action, now: datetime, findings: Sequence[Finding],
                explain: list[dict[str, Any]] | None, started: int,
                excused: Collection[tuple[str, str]] = ()) -> Decision:
        key = (action.system, action.kind, action.name)
        candidates = self._candidates.get(key)
        if candidates is None:
            candidates = self._lookup(key)
        if explain is not None:
            self._explain_targets(key, candidates, explain)
        matched: list[_CompiledRule] = []
        errors: list[RuleError] = []
        if not candidates:
            return self._combine(action, now, findings, matched, errors, started)
        activation = _activation(action, findings, now)
        agent_id = action.agent.id
        roles = action.principal.roles
        for cp in candidates:
            if cp.agents is not None and not cp.agents(agent_id):
                if explain is not None:
                    explain.append({"policy": cp.policy.name, "result": "skipped", "why": "target.agents"})
                continue
            if cp.roles is not None and not any(cp.roles(r) for r in roles):
                if explain is not None:
                    explain.append({"policy": cp.policy.name, "result": "skipped", "why": "target.roles"})
                continue
            for cr in cp.rules:
                # the condition is evaluated inline: this loop is the hot path
                test = cr.test
                if test is None:
                    outcome = cr.limit_key is None or self._limit(cr, activation, now, errors)
                else:
                    try:
                        result = test(activation)
                    except Exception as exc:
                        outcome = self._error(cr, f"condition error: {as_error(exc).message}", errors)
                    else:
                        if result is True:
                            outcome = cr.limit_key is None or self._limit(cr, activation, now, errors)
                        elif result is False:
                            outcome = False
                        else:
                            outcome = self._error(cr, f"condition must be a bool, got {type_name(result)}", errors)
                if outcome:
                    matched.append(cr)
                if explain is not None:
                    explain.append(_explained(cr, outcome, errors))
        return self._combine(action, now, findings, matched, errors, started, excused)

    def _limit(self, cr: _CompiledRule, activation: dict[str, Any], now: datetime,
               errors: list[RuleError]) -> bool:
        """Count this action for the rule's ``limit``; True when the window now holds more than max."""
        limit = cr.rule.limit
        assert limit is not None and cr.limit_key is not None
        try:
            value = cr.limit_key(activation)
        except Exception as exc:
            return self._error(cr, f"limit key error: {as_error(exc).message}", errors)
        if type(value) not in (str, int, bool) or (type(value) is str and not _SIMPLE_VALUE.match(value)):
            return self._error(cr, f"limit key must be a string or integer, got {type_name(value)}", errors)
        try:
            count = self.limits.hit(f"{cr.policy}/{cr.name}\x00{value}", now=now.timestamp(),
                                    window=limit.per_seconds, cap=limit.max + 1)
        except LictorError as exc:  # a shared store out of reach: the rule's on_error decides
            return self._error(cr, f"limit store error: {exc}", errors)
        return count > limit.max

    @staticmethod
    def _error(cr: _CompiledRule, message: str, errors: list[RuleError]) -> bool:
        errors.append(RuleError(cr.policy, cr.name, message, cr.apply_on_error, cr.location))
        return cr.apply_on_error

    def _combine(self, action: Action, now: datetime, findings: Sequence[Finding], matched: list[_CompiledRule],
                 errors: list[RuleError], started: int, excused: Collection[tuple[str, str]] = ()) -> Decision:
        if matched:
            rank = 0
            for cr in matched:
                if cr.rank > rank and not (excused and (cr.policy, cr.name) in excused):
                    rank = cr.rank
            verdict = _VERDICTS[rank]
        else:
            verdict = self.default_verdict
        constrained: dict[str, Any] | None = None
        constraints: list[dict[str, Any]] = []
        if verdict is Verdict.CONSTRAIN:
            data = action.to_dict()
            for cr in matched:
                if not cr.rule.constrain:
                    continue
                try:
                    data = apply_obligations(data, cr.rule.constrain, findings, hash_key=self.redaction_key)
                except ObligationError as exc:
                    errors.append(RuleError(cr.policy, cr.name, f"constraint error: {exc}", True, cr.location))
                    verdict = Verdict.BLOCK
                    break
                constraints.extend({"policy": cr.policy, "rule": cr.name, ob.op: ob.spec} for ob in cr.rule.constrain)
            else:
                constrained = data
            if verdict is Verdict.BLOCK:
                constraints.clear()
        return Decision(
            decision_id=_new_decision_id(now),
            verdict=verdict,
            reasons=tuple(cr.reason for cr in matched),
            errors=tuple(errors),
            constraints=tuple(constraints),
            action=constrained,
            findings=tuple(findings),
            policy_revision=self.revision,
            timestamp=_timestamp(now),
            duration_us=(time.perf_counter_ns() - started) // 1000,
        )

    def _explain_targets(self, key: tuple[str, str, str | None], candidates: Sequence[_CompiledPolicy],
                         explain: list[dict[str, Any]]) -> None:
        system, kind, name = key
        chosen = {id(c) for c in candidates}
        for cp in self._compiled:
            if id(cp) in chosen:
                continue
            why = next(f"target.{field}" for field, m, v in
                       (("systems", cp.systems, system), ("kinds", cp.kinds, kind), ("names", cp.names, name))
                       if m is not None and not m(v))
            explain.append({"policy": cp.policy.name, "result": "skipped", "why": why})


def _explained(cr: _CompiledRule, outcome: bool, errors: list[RuleError]) -> dict[str, Any]:
    entry: dict[str, Any] = {"policy": cr.policy, "rule": cr.name, "verdict": cr.verdict.name,
                             "result": "matched" if outcome else "not matched"}
    if errors and errors[-1].policy == cr.policy and errors[-1].rule == cr.name:
        entry["error"] = errors[-1].message
        entry["why"] = "error, rule applied (on_error: apply)" if outcome else "error, rule skipped (on_error: skip)"
    elif cr.rule.limit is not None:
        entry["why"] = "limit exceeded" if outcome else ("condition false" if cr.test else "within limit")
    else:
        entry["why"] = "condition true" if outcome and cr.test else ("no condition" if outcome else "condition false")
    return entry


def _activation(action: Action, findings: Sequence[Finding], now: datetime) -> dict[str, Any]:
    """The CEL variables for one action: plain JSON-shaped values."""
    agent: dict[str, Any] = {"attrs": action.agent.attrs}
    if action.agent.id is not None:
        agent["id"] = action.agent.id
    p = action.principal
    principal: dict[str, Any] = {"roles": list(p.roles), "attrs": p.attrs}
    if p.id is not None:
        principal["id"] = p.id
    r = action.resource
    resource: dict[str, Any] = {"labels": list(r.labels), "attrs": r.attrs}
    if r.id is not None:
        resource["id"] = r.id
    if r.classification is not None:
        resource["classification"] = r.classification
    return {
        "system": action.system,
        "kind": action.kind,
        "name": action.name,
        "args": action.args,
        "agent": agent,
        "principal": principal,
        "resource": resource,
        "content": action.content,
        "context": action.context,
        "findings": [{"type": f.type, "path": f.path, "start": f.start, "end": f.end, "score": f.score}
                     for f in findings],
        "now": now,
    }
