"""Loading policies: every problem reported at once as file:line:column, and a stable revision."""

from __future__ import annotations

from pathlib import Path

import pytest

from lictor import PolicyError, Verdict, load_policies

HEADER = "apiVersion: lictor/v1\nkind: Policy\n"


def problems(tmp_path: Path, **files: str) -> list[str]:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(PolicyError) as info:
        load_policies(tmp_path)
    return [str(d).replace(str(tmp_path) + "/", "") for d in info.value.diagnostics]


def test_every_problem_is_reported_with_its_position(tmp_path: Path) -> None:
    text = (
        HEADER
        + """metadata: {name: p}
spec:
  target: {system: [x]}
  rules:
    - name: a
      when: args.amount >
      verdict: BLOCK
    - name: a
      verdict: DENY
    - name: c
      verdict: LOG
      approval: {approvers: ["role:x"]}
"""
    )
    got = problems(tmp_path, **{"p.yaml": text})
    assert got == [
        "p.yaml:5:12: unknown field 'system' in target (did you mean 'systems'?)",
        "p.yaml:8:26: syntax error: unexpected end of expression",
        "p.yaml:10:13: duplicate rule name 'a' (first at rule 1)",
        "p.yaml:11:16: verdict must be one of ALLOW, LOG, CONSTRAIN, BLOCK, got 'DENY'",
        "p.yaml:14:7: approval is only allowed on BLOCK rules (blocked unless approved)",
    ]


def test_problems_in_several_files_are_all_reported(tmp_path: Path) -> None:
    ok = HEADER + "metadata: {name: same}\nspec:\n  rules: [{name: r, verdict: LOG}]\n"
    got = problems(tmp_path, **{"a.yaml": ok, "b.yaml": ok, "c.yaml": "key: [unclosed\n"})
    assert got[0].startswith("b.yaml:1:1: duplicate policy name 'same' (first defined at ")
    assert got[1].startswith("c.yaml:2:1: YAML syntax error")


def test_cel_errors_point_into_the_expression(tmp_path: Path) -> None:
    text = (
        HEADER
        + """metadata: {name: p}
spec:
  rules:
    - name: plain
      when: args.x > 1 && nmae == "a"
      verdict: BLOCK
    - name: quoted
      when: '"a" in principal.roles && foo(1)'
      verdict: BLOCK
    - name: block
      when: |
        args.x > 1 &&
          args.y.frob()
      verdict: BLOCK
"""
    )
    assert problems(tmp_path, **{"p.yaml": text}) == [
        "p.yaml:7:27: undeclared reference to 'nmae'",
        "p.yaml:10:40: unknown function foo()",
        "p.yaml:15:18: unknown method .frob()",
    ]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("{name: r, verdict: CONSTRAIN}", "a CONSTRAIN rule needs a constrain list"),
        (
            "{name: r, verdict: BLOCK, constrain: [{remove: [args.a]}]}",
            "constrain is only allowed on CONSTRAIN rules",
        ),
        ("{name: r, verdict: CONSTRAIN, constrain: [{remove: [name]}]}", "invalid path 'name'"),
        (
            "{name: r, verdict: CONSTRAIN, constrain: [{redact: {paths: [args.a], pattern: '(a'}}]}",
            "invalid regular expression",
        ),
        (
            "{name: r, verdict: CONSTRAIN, constrain: [{clamp: {path: args.a}}]}",
            "clamp needs min, max or both",
        ),
        (
            "{name: r, verdict: CONSTRAIN, constrain: [{clamp: {path: args.a, min: 5, max: 1}}]}",
            "clamp.min is greater",
        ),
        (
            "{name: r, verdict: CONSTRAIN, constrain: [{remove: [args.a], set: {path: args.b, value: 1}}]}",
            "exactly one of",
        ),
        (
            "{name: r, verdict: BLOCK, approval: {approvers: [alice]}}",
            "approvers are 'role:NAME' or 'user:ID'",
        ),
        (
            "{name: r, verdict: BLOCK, approval: {approvers: ['role:x'], ttl: soon}}",
            "positive duration",
        ),
        (
            "{name: r, verdict: BLOCK, limit: {key: agent.id, max: -1, per: 1h}}",
            "limit.max must be at least 0",
        ),
        (
            "{name: r, verdict: BLOCK, limit: {key: agent.id, max: 1}}",
            "missing required field 'per'",
        ),
        ("{name: r, verdict: BLOCK, on_error: ignore}", "on_error must be 'apply' or 'skip'"),
        ("{name: R!, verdict: BLOCK}", "rule names use lowercase"),
        ("{name: r, verdict: BLOCK, when: 1u == 1}", "unsigned integer literals are not supported"),
        ('{name: r, verdict: BLOCK, when: \'b"x" == b"x"\'}', "bytes literals are not supported"),
        ("{name: r, verdict: BLOCK, when: 'name.matches(\"[\")'}", "invalid regular expression"),
    ],
)
def test_rule_validation(tmp_path: Path, rule: str, message: str) -> None:
    text = HEADER + f"metadata: {{name: p}}\nspec:\n  rules:\n    - {rule}\n"
    got = problems(tmp_path, **{"p.yaml": text})
    assert any(message in g for g in got), got
    assert all(g.startswith("p.yaml:") for g in got)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "apiVersion: lictor/v2\nkind: Policy\nmetadata: {name: p}\nspec: {rules: [{name: r, verdict: LOG}]}\n",
            "apiVersion must be 'lictor/v1'",
        ),
        (
            "apiVersion: lictor/v1\nkind: Rule\nmetadata: {name: p}\nspec: {}\n",
            "kind must be 'Policy' or 'PolicyTest'",
        ),
        (
            HEADER + "metadata: {name: Bad Name}\nspec: {rules: [{name: r, verdict: LOG}]}\n",
            "metadata.name must use lowercase",
        ),
        (HEADER + "metadata: {name: p}\nspec: {rules: []}\n", "non-empty list of rules"),
        (
            HEADER
            + "metadata: {name: p}\nspec:\n  rules: [{name: r, verdict: LOG}]\n  rules: [{name: s, verdict: LOG}]\n",
            "duplicate key 'rules'",
        ),
        (
            HEADER + "metadata: &m {name: p}\nspec: {rules: [{name: r, verdict: LOG}]}\n",
            "anchors and aliases are not allowed",
        ),
        (
            HEADER
            + "metadata: {name: p}\nspec: {target: {kinds: [tool]}, rules: [{name: r, verdict: LOG}]}\n",
            "unknown kind 'tool'",
        ),
        ("- just a list\n", "document must be a mapping"),
    ],
)
def test_document_validation(tmp_path: Path, text: str, message: str) -> None:
    got = problems(tmp_path, **{"p.yaml": text})
    assert any(message in g for g in got), got


def test_missing_directory_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no such file"):
        load_policies(tmp_path / "absent")


def test_revision_ignores_formatting_and_comments_but_not_content(tmp_path: Path) -> None:
    a = (
        HEADER
        + "metadata: {name: p}\nspec: {rules: [{name: r, when: 'args.a > 1', verdict: LOG}]}\n"
    )
    b = (
        HEADER
        + "# a comment\nmetadata:\n  name: p\nspec:\n  rules:\n    - name: r\n      when: 'args.a > 1'\n      verdict: LOG\n"
    )
    c = a.replace("> 1", "> 2")
    revs = []
    for i, text in enumerate((a, b, c)):
        d = tmp_path / str(i)
        d.mkdir()
        (d / "x.yaml").write_text(text)
        revs.append(load_policies(d).revision)
    assert revs[0] == revs[1] != revs[2]
    assert revs[0].startswith("sha256:") and len(revs[0]) == 7 + 64
    d = tmp_path / "0"
    assert load_policies(d, default_verdict=Verdict.BLOCK).revision != revs[0]
