"""A limit store that cannot count is an error of the ``limit`` rule, handled by the rule's ``on_error``."""

from __future__ import annotations

from pathlib import Path

from lictor import Verdict, load_policies
from lictor.errors import InternalError
from lictor.model import Action

POLICY = """\
apiVersion: lictor/v1
kind: Policy
metadata:
  name: quota
spec:
  rules:
    - name: strict
      limit: {key: principal.id, max: 5, per: 1m}
      verdict: BLOCK
    - name: tolerant
      limit: {key: principal.id, max: 5, per: 1m}
      verdict: BLOCK
      on_error: skip
    - name: noted
      limit: {key: principal.id, max: 5, per: 1m}
      verdict: LOG
"""

ACTION = Action.from_dict({"system": "s", "kind": "tool_call", "name": "t", "principal": {"id": "ann"}})


class Broken:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def hit(self, key: str, *, now: float, window: float, cap: int) -> int:
        raise self.error


def test_a_store_out_of_reach_fails_each_limit_rule_its_own_way(tmp_path: Path) -> None:
    (tmp_path / "quota.yaml").write_text(POLICY)
    policies = load_policies(tmp_path).with_limits(Broken(InternalError("no answer from the store")))
    decision = policies.evaluate(ACTION)
    assert decision.verdict is Verdict.BLOCK
    assert [r.rule for r in decision.reasons] == ["strict"]
    assert [(e.rule, e.applied, e.message) for e in decision.errors] == [
        (rule, applied, "limit store error: no answer from the store")
        for rule, applied in (("strict", True), ("tolerant", False), ("noted", False))]


def test_a_store_that_fails_unexpectedly_blocks_the_whole_decision(tmp_path: Path) -> None:
    (tmp_path / "quota.yaml").write_text(POLICY)
    decision = load_policies(tmp_path).with_limits(Broken(RuntimeError("bug"))).evaluate(ACTION)
    assert decision.verdict is Verdict.BLOCK and decision.reasons == ()
    assert [e.message for e in decision.errors] == ["internal error while deciding: RuntimeError: bug"]
