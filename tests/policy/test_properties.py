"""Properties of combination: a tiny reference evaluator, order independence, default verdict.

Hypothesis builds random policy sets from condition templates whose meaning is obvious in Python;
the engine's decision must equal the reference's, and must not change when files, policies or
rules are rearranged.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lictor import Action, Verdict, load_policies

NOW = datetime(2026, 11, 28, tzinfo=UTC)
VERDICTS = list(Verdict)


@dataclass(frozen=True)
class Cond:
    cel: str | None
    kind: str
    value: Any


def reference_match(cond: Cond, action: dict[str, Any]) -> bool | None:
    """True/False, or None when the condition cannot be evaluated (an error)."""
    args, context = action.get("args", {}), action.get("context", {})
    roles = action.get("principal", {}).get("roles", [])
    if cond.kind == "always":
        return True
    if cond.kind == "amount":
        amount = args.get("amount")
        return None if amount is None else amount > cond.value
    if cond.kind == "name":
        return action.get("name") == cond.value
    if cond.kind == "role":
        return cond.value in roles
    if cond.kind == "flag":
        return None if "flag" not in context else context["flag"] is True
    raise AssertionError(cond.kind)


conditions = st.one_of(
    st.just(Cond(None, "always", None)),
    st.integers(0, 100).map(lambda n: Cond(f"args.amount > {n}", "amount", n)),
    st.sampled_from(["read", "delete", "pay"]).map(lambda s: Cond(f'name == "{s}"', "name", s)),
    st.sampled_from(["analyst", "officer"]).map(
        lambda r: Cond(f'"{r}" in principal.roles', "role", r)
    ),
    st.just(Cond("context.flag == true", "flag", None)),
)


@st.composite
def rule_specs(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "cond": draw(conditions),
        "verdict": draw(
            st.sampled_from(
                [v for v in VERDICTS if v is not Verdict.CONSTRAIN] + [Verdict.CONSTRAIN]
            )
        ),
        "on_error": draw(st.sampled_from([None, "apply", "skip"])),
        "target_names": draw(st.sampled_from([None, ["read"], ["delete", "pay"], ["*"]])),
    }


@st.composite
def policy_sets(draw: st.DrawFn) -> list[list[dict[str, Any]]]:
    return draw(st.lists(st.lists(rule_specs(), min_size=1, max_size=4), min_size=1, max_size=4))


actions = st.fixed_dictionaries(
    {
        "system": st.just("s"),
        "kind": st.just("tool_call"),
        "name": st.sampled_from(["read", "delete", "pay"]),
    },
    optional={
        "args": st.fixed_dictionaries({}, optional={"amount": st.integers(-5, 105)}),
        "context": st.fixed_dictionaries({}, optional={"flag": st.booleans()}),
        "principal": st.fixed_dictionaries(
            {"roles": st.lists(st.sampled_from(["analyst", "officer", "x"]))}
        ),
    },
)


def to_documents(spec: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    docs = []
    for pi, rules in enumerate(spec):
        # one target per policy: the first rule's target stands for the policy
        target = rules[0]["target_names"]
        doc_rules = []
        for ri, r in enumerate(rules):
            rule: dict[str, Any] = {"name": f"r{ri}", "verdict": r["verdict"].name}
            if r["cond"].cel is not None:
                rule["when"] = r["cond"].cel
            if r["on_error"] is not None:
                rule["on_error"] = r["on_error"]
            if r["verdict"] is Verdict.CONSTRAIN:
                rule["constrain"] = [{"set": {"path": f"args.p{pi}r{ri}", "value": True}}]
            doc_rules.append(rule)
        spec_body: dict[str, Any] = {"rules": doc_rules}
        if target is not None:
            spec_body["target"] = {"names": target}
        docs.append(
            {
                "apiVersion": "lictor/v1",
                "kind": "Policy",
                "metadata": {"name": f"p{pi}"},
                "spec": spec_body,
            }
        )
    return docs


def reference(
    spec: list[list[dict[str, Any]]], action: dict[str, Any], default: Verdict
) -> tuple[Verdict, set[str]]:
    matched: list[tuple[str, Verdict]] = []
    for pi, rules in enumerate(spec):
        target = rules[0]["target_names"]
        if target is not None and "*" not in target and action["name"] not in target:
            continue
        for ri, r in enumerate(rules):
            m = reference_match(r["cond"], action)
            if m is None:
                fail_closed = r["verdict"] in (Verdict.BLOCK, Verdict.CONSTRAIN)
                m = fail_closed if r["on_error"] is None else r["on_error"] == "apply"
            if m:
                matched.append((f"p{pi}/r{ri}", r["verdict"]))
    verdict = max((v for _, v in matched), default=default)
    return verdict, {name for name, _ in matched}


def write(tmp: Path, docs: list[dict[str, Any]], files: int, seed: int) -> Path:
    rng = random.Random(seed)
    tmp.mkdir(parents=True, exist_ok=True)
    for old in tmp.glob("*.yaml"):
        old.unlink()
    buckets: list[list[dict[str, Any]]] = [[] for _ in range(files)]
    for doc in docs:
        buckets[rng.randrange(files)].append(doc)
    for i, bucket in enumerate(buckets):
        if bucket:
            (tmp / f"{rng.random():.6f}-{i}.yaml").write_text(yaml.safe_dump_all(bucket))
    return tmp


def errors(d: Any) -> list[tuple[str, str, str, bool]]:
    return [(e.policy, e.rule, e.message, e.applied) for e in d.errors]


SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(spec=policy_sets(), action=actions, default=st.sampled_from([Verdict.ALLOW, Verdict.BLOCK]))
def test_engine_equals_reference(
    tmp_path: Path, spec: list[list[dict[str, Any]]], action: dict[str, Any], default: Verdict
) -> None:
    policies = load_policies(
        write(tmp_path / "a", to_documents(spec), 1, 0), default_verdict=default
    )
    decision = policies.evaluate(Action.from_dict(action), now=NOW)
    want_verdict, want_rules = reference(spec, action, default)
    assert decision.verdict is want_verdict
    assert {f"{r.policy}/{r.rule}" for r in decision.reasons} == want_rules
    if not want_rules:
        assert decision.verdict is default
    if decision.verdict is Verdict.CONSTRAIN:
        assert decision.action is not None
        applied = {k for k in decision.action.get("args", {}) if k.startswith("p")}
        constrain_rules = {n.replace("/", "") for n in want_rules}
        assert applied == {
            n
            for n in constrain_rules
            if spec[int(n[1 : n.index("r")])][int(n[n.index("r") + 1 :])]["verdict"]
            is Verdict.CONSTRAIN
        }


@SETTINGS
@given(spec=policy_sets(), action=actions, files=st.integers(1, 4), seed=st.integers(0, 10**6))
def test_arrangement_of_files_changes_nothing(
    tmp_path: Path, spec: list[list[dict[str, Any]]], action: dict[str, Any], files: int, seed: int
) -> None:
    docs = to_documents(spec)
    one = load_policies(write(tmp_path / "one", docs, 1, 0))
    shuffled_docs = list(docs)
    random.Random(seed).shuffle(shuffled_docs)
    many = load_policies(write(tmp_path / "many", shuffled_docs, files, seed))
    assert one.revision == many.revision
    a, b = (p.evaluate(Action.from_dict(action), now=NOW) for p in (one, many))
    assert (a.verdict, a.reasons, a.action, a.constraints) == (
        b.verdict,
        b.reasons,
        b.action,
        b.constraints,
    )
    assert errors(a) == errors(b)  # locations name the files, which differ


@SETTINGS
@given(spec=policy_sets(), action=actions, seed=st.integers(0, 10**6))
def test_rule_order_changes_no_verdict(
    tmp_path: Path, spec: list[list[dict[str, Any]]], action: dict[str, Any], seed: int
) -> None:
    docs = to_documents(spec)
    reordered = [
        {
            **d,
            "spec": {
                **d["spec"],
                "rules": random.Random(seed + i).sample(
                    d["spec"]["rules"], len(d["spec"]["rules"])
                ),
            },
        }
        for i, d in enumerate(docs)
    ]
    a = load_policies(write(tmp_path / "a", docs, 1, 0)).evaluate(Action.from_dict(action), now=NOW)
    b = load_policies(write(tmp_path / "b", reordered, 1, 0)).evaluate(
        Action.from_dict(action), now=NOW
    )
    assert a.verdict is b.verdict
    assert sorted(a.reasons, key=repr) == sorted(b.reasons, key=repr)
    assert sorted(errors(a)) == sorted(errors(b))
