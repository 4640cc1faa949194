"""The command line: exit codes, output shapes, and clear one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from lictor.cli import main

POLICY = """apiVersion: lictor/v1
kind: Policy
metadata: {name: credit}
spec:
  target: {names: [approve_credit]}
  rules:
    - name: large
      when: args.amount > 100000
      verdict: BLOCK
---
apiVersion: lictor/v1
kind: PolicyTest
metadata: {name: credit-test}
spec:
  cases:
    - name: large is blocked
      action: {system: s, kind: tool_call, name: approve_credit, args: {amount: 100001}}
      expect: {verdict: BLOCK, rules: [credit/large]}
    - name: small is allowed
      action: {system: s, kind: tool_call, name: approve_credit, args: {amount: 5}}
      expect: {verdict: ALLOW}
"""

LARGE = {"system": "s", "kind": "tool_call", "name": "approve_credit", "args": {"amount": 150000}}
SMALL = {**LARGE, "args": {"amount": 5}}


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    d = tmp_path / "policies"
    d.mkdir()
    (d / "credit.yaml").write_text(POLICY)
    return d


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=stdin)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_eval_one_action(policies: Path) -> None:
    code, out, _ = run("eval", "--policies", str(policies), "--now", "2026-11-28T15:00:00Z", stdin=json.dumps(LARGE))
    assert code == 0
    decision = json.loads(out)
    assert decision["verdict"] == "BLOCK"
    assert decision["reasons"][0]["rule"] == "large"
    assert decision["timestamp"] == "2026-11-28T15:00:00.000000Z"


def test_eval_json_lines_and_explain(policies: Path) -> None:
    lines = "\n".join(json.dumps(a) for a in (LARGE, SMALL)) + "\n"
    code, out, _ = run("eval", "--policies", str(policies), "--explain", stdin=lines)
    assert code == 0
    first, second = (json.loads(line) for line in out.splitlines())
    assert (first["verdict"], second["verdict"]) == ("BLOCK", "ALLOW")
    assert first["explain"] == [{"policy": "credit", "rule": "large", "verdict": "BLOCK", "result": "matched",
                                 "why": "condition true"}]
    assert second["explain"][0]["result"] == "not matched"


def test_eval_explain_names_the_target_that_excluded_a_policy(policies: Path) -> None:
    action = {**LARGE, "name": "other_tool"}
    _, out, _ = run("eval", "--policies", str(policies), "--explain", stdin=json.dumps(action))
    assert json.loads(out)["explain"] == [{"policy": "credit", "result": "skipped", "why": "target.names"}]


def test_eval_default_deny(policies: Path) -> None:
    action = {**LARGE, "name": "other_tool"}
    _, out, _ = run("eval", "--policies", str(policies), "--default-verdict", "BLOCK", stdin=json.dumps(action))
    assert json.loads(out)["verdict"] == "BLOCK"


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("{not json", "<stdin>: invalid JSON"),
        ("", "no input"),
        (json.dumps({**LARGE, "sytem": "x"}), "$.sytem: unknown field 'sytem'"),
        (json.dumps(LARGE) + "\n{bad\n", "<stdin>:2: invalid JSON"),
    ],
)
def test_eval_bad_input_is_one_line_and_exit_2(policies: Path, stdin: str, message: str) -> None:
    code, _, err = run("eval", "--policies", str(policies), stdin=stdin)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_eval_reports_every_bad_line_and_decides_the_others(policies: Path) -> None:
    lines = "\n".join([json.dumps(LARGE), "{bad", json.dumps({**SMALL, "kind": "nope"}), json.dumps(SMALL)])
    code, out, err = run("eval", "--policies", str(policies), stdin=lines)
    assert code == 2
    assert [json.loads(line)["verdict"] for line in out.splitlines()] == ["BLOCK", "ALLOW"]
    assert "<stdin>:2: invalid JSON" in err
    assert "<stdin>:3: $.kind: unknown kind 'nope'" in err


def test_eval_findings_file(policies: Path, tmp_path: Path) -> None:
    (policies / "pii.yaml").write_text(
        "apiVersion: lictor/v1\nkind: Policy\nmetadata: {name: pii}\nspec:\n  rules:\n"
        "    - {name: has-pii, when: 'has_finding(\"pii.*\")', verdict: LOG}\n")
    findings = tmp_path / "f.json"
    findings.write_text(json.dumps([{"type": "pii.email", "path": "args.note", "start": 0, "end": 3}]))
    _, out, _ = run("eval", "--policies", str(policies), "--findings", str(findings), stdin=json.dumps(SMALL))
    assert json.loads(out)["verdict"] == "LOG"


def test_policy_check_ok_and_errors(policies: Path) -> None:
    code, out, _ = run("policy", "check", str(policies))
    assert code == 0 and out.startswith("ok: 1 policy, 1 rule, 2 test cases (revision sha256:")
    (policies / "bad.yaml").write_text("apiVersion: lictor/v1\nkind: Policy\nmetadata: {name: bad}\nspec:\n"
                                       "  rules:\n    - {name: r, verdict: NOPE, when: 'args.a >'}\n")
    code, out, err = run("policy", "check", str(policies))
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 2
    assert all(line.startswith(str(policies / "bad.yaml") + ":6:") for line in lines)
    assert "2 errors" in err


def test_policy_test_counts(policies: Path) -> None:
    code, out, _ = run("policy", "test", str(policies))
    assert code == 0
    assert out.splitlines()[-1] == "2 passed, 0 failed"
    (policies / "credit.yaml").write_text(POLICY.replace("expect: {verdict: ALLOW}", "expect: {verdict: LOG}"))
    code, out, _ = run("policy", "test", str(policies))
    assert code == 1
    assert "verdict: expected LOG, got ALLOW" in out
    assert out.splitlines()[-1] == "1 passed, 1 failed"


def test_policy_test_with_invalid_yaml_is_a_clear_error(policies: Path) -> None:
    (policies / "broken.yaml").write_text("a: [1,\n")
    code, out, _ = run("policy", "test", str(policies))
    assert code == 1
    assert "broken.yaml:2:1: YAML syntax error" in out


def test_console_script_runs() -> None:
    proc = subprocess.run([sys.executable, "-m", "lictor", "--version"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert proc.stdout.startswith("lictor, version ")


def _commands(group: click.Group, prefix: str = "lictor") -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            out.extend(_commands(command, path))
        else:
            out.append((path, command))
    return out


def test_every_command_and_option_is_documented() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
    missing = []
    for path, command in _commands(main):
        if path not in docs:
            missing.append(path)
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--") and opt not in docs:
                    missing.append(f"{path} {opt}")
    assert not missing, f"undocumented in docs/cli.md: {missing}"
