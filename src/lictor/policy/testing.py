"""Policy tests (``kind: PolicyTest``): decide each case's action and compare with what it expects.

Each case runs against fresh ``limit`` counters, so cases do not depend on each other or on order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from lictor.errors import InputError
from lictor.model import Action, Decision, Finding, Verdict
from lictor.policy.document import PolicyTest, TestCase
from lictor.policy.evaluate import PolicySet
from lictor.policy.limits import InMemoryLimitStore

__all__ = ["CaseResult", "run_policy_tests"]

DEFAULT_NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class CaseResult:
    test: str
    case: str
    location: str
    failures: tuple[str, ...]
    decision: Decision | None

    @property
    def passed(self) -> bool:
        return not self.failures


def _run_case(policies: PolicySet, test: PolicyTest, case: TestCase) -> CaseResult:
    loc = f"{case.location.file}:{case.location.line}:{case.location.column}"
    try:
        action = Action.from_dict(case.action)
        findings = tuple(Finding.from_dict(f, f"$.findings[{i}]") for i, f in enumerate(case.findings))
    except InputError as exc:
        return CaseResult(test.name, case.name, loc, (f"invalid action: {exc}",), None)
    isolated = policies.with_limits(InMemoryLimitStore())
    now = test.now or DEFAULT_NOW
    decision = None
    for _ in range(case.repeat):
        decision = isolated.evaluate(action, now=now, findings=findings)
    assert decision is not None
    failures: list[str] = []
    expect = case.expect
    want = Verdict[expect["verdict"]]
    if decision.verdict is not want:
        failures.append(f"verdict: expected {want.name}, got {decision.verdict.name}")
    got_rules = [f"{r.policy}/{r.rule}" for r in decision.reasons]
    if "rules" in expect:
        want_rules = [expect["rules"]] if isinstance(expect["rules"], str) else list(expect["rules"])
        if sorted(want_rules) != sorted(got_rules):
            failures.append(f"rules: expected {sorted(want_rules)}, got {sorted(got_rules)}")
    if "action" in expect and decision.action != expect["action"]:
        failures.append(f"action: expected {expect['action']}, got {decision.action}")
    if "errors" in expect and len(decision.errors) != expect["errors"]:
        listed = "; ".join(e.message for e in decision.errors) or "none"
        failures.append(f"errors: expected {expect['errors']}, got {len(decision.errors)} ({listed})")
    return CaseResult(test.name, case.name, loc, tuple(failures), decision)


def run_policy_tests(policies: PolicySet) -> Iterator[CaseResult]:
    """Run every case of every PolicyTest loaded with ``policies``, in file order."""
    for test in policies.tests:
        for case in test.cases:
            yield _run_case(policies, test, case)
