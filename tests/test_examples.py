"""The example policies load, their tests pass, and every seed scenario is tested both ways."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
POLICIES = REPO / "examples" / "policies"
ACTIONS = REPO / "examples" / "actions"
CONTROL_ID = re.compile(r"42001:A\.\d+(\.\d+)*")

#: scenario -> (the PolicyTest that covers it, the rules whose match makes a case positive)
SCENARIOS: dict[str, tuple[str, set[str]]] = {
    "credit decisions above $100,000 need approval": (
        "credit-decisions-test", {"credit-decisions/large-credit-needs-approval"}),
    "low model confidence goes to human review": (
        "model-confidence-test", {"model-confidence/low-confidence-needs-review",
                                  "model-confidence/missing-confidence-needs-review"}),
    "analysts may read customer records, not delete them": (
        "customer-records-test", {"customer-records/analysts-cannot-delete",
                                  "customer-records/staff-roles-only"}),
    "restricted data only for privileged roles": (
        "restricted-data-test", {"restricted-data/restricted-needs-privileged-role"}),
    "support bot tool allow list": (
        "agent-tools-test", {"support-bot-tools/only-allowed-tools"}),
    "research agent tool deny list": (
        "agent-tools-test", {"research-agent-tools/forbidden-tools"}),
    "PII redaction in outgoing e-mail": (
        "outgoing-email-test", {"outgoing-email/redact-personal-data"}),
    "refund amount clamp": ("support-refunds-test", {"support-refunds/clamp-refund-amount"}),
    "refund velocity limit": ("support-refunds-test", {"support-refunds/refund-velocity"}),
    "production LLM requests are logged": ("llm-logging-test", {"llm-logging/log-production-requests"}),
}


def _documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(POLICIES.rglob("*.y*ml")):
        with path.open(encoding="utf-8") as f:
            docs.extend(d for d in yaml.safe_load_all(f) if d)
    return docs


DOCUMENTS = _documents()
POLICY_DOCS = [d for d in DOCUMENTS if d["kind"] == "Policy"]
TEST_DOCS = {d["metadata"]["name"]: d for d in DOCUMENTS if d["kind"] == "PolicyTest"}
ALL_CASES = [case for d in TEST_DOCS.values() for case in d["spec"]["cases"]]


def run_cli(args: list[str]) -> Any:
    from lictor.cli import main

    return CliRunner().invoke(main, args, prog_name="lictor", catch_exceptions=False)


def test_policy_check_accepts_the_examples() -> None:
    result = run_cli(["policy", "check", str(POLICIES)])
    assert result.exit_code == 0, result.output


def test_policy_tests_of_the_examples_pass() -> None:
    result = run_cli(["policy", "test", str(POLICIES)])
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    assert last == f"{len(ALL_CASES)} passed, 0 failed", result.output


def test_the_revision_does_not_depend_on_how_the_files_are_laid_out(tmp_path: Path) -> None:
    import lictor

    revision = lictor.load_policies(POLICIES).revision
    assert revision.startswith("sha256:")
    # Every document in one file, in reverse order, without comments: the same rules.
    texts = ["\n".join(line for line in p.read_text(encoding="utf-8").splitlines()
                       if not line.lstrip().startswith("#"))
             for p in sorted(POLICIES.glob("*.yaml"), reverse=True)]
    (tmp_path / "all.yml").write_text("\n---\n".join(texts), encoding="utf-8")
    assert lictor.load_policies(tmp_path).revision == revision
    blocking = lictor.load_policies(POLICIES, default_verdict=lictor.Verdict.BLOCK).revision
    assert blocking != revision


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_scenario_has_a_positive_and_a_negative_case(scenario: str) -> None:
    test_name, rules = SCENARIOS[scenario]
    cases = TEST_DOCS[test_name]["spec"]["cases"]
    positive = [c for c in cases if rules & set(c["expect"].get("rules", []))]
    negative = [c for c in cases if "rules" in c["expect"] and not rules & set(c["expect"]["rules"])]
    assert positive, f"{scenario}: no case where {sorted(rules)} match"
    assert negative, f"{scenario}: no case where {sorted(rules)} do not match"


def test_the_velocity_limit_is_tested_just_over_and_at_its_maximum() -> None:
    refunds = TEST_DOCS["support-refunds-test"]["spec"]["cases"]
    repeats = {c.get("repeat", 1): c["expect"]["verdict"] for c in refunds}
    assert repeats.get(11) == "BLOCK" and repeats.get(10) == "ALLOW"


def test_every_rule_of_every_example_policy_matches_in_some_case() -> None:
    expected = {f"{d['metadata']['name']}/{r['name']}" for d in POLICY_DOCS for r in d["spec"]["rules"]}
    tested = {rule for case in ALL_CASES for rule in case["expect"].get("rules", [])}
    assert expected - tested == set()
    assert tested - expected == set()


@pytest.mark.parametrize("doc", POLICY_DOCS, ids=lambda d: d["metadata"]["name"])
def test_every_example_policy_says_what_it_is_for_and_which_controls_it_serves(doc: dict[str, Any]) -> None:
    metadata = doc["metadata"]
    assert metadata.get("description", "").strip()
    assert metadata.get("controls")
    for control in metadata["controls"]:
        assert CONTROL_ID.fullmatch(control), control


def test_the_controls_used_are_the_ones_documented() -> None:
    text = (REPO / "docs" / "policy-language.md").read_text(encoding="utf-8")
    section = text.split("## ISO/IEC 42001 controls", 1)[1]
    rows = dict(re.findall(r"^\| `(42001:[^`]+)` \|[^|]+\| (.+) \|$", section, re.M))
    for doc in POLICY_DOCS:
        name = doc["metadata"]["name"]
        for control in doc["metadata"]["controls"]:
            assert control in rows, f"{name}: {control} is not in the controls table"
            assert f"`{name}`" in rows[control], f"{name} is not listed under {control}"
    used = {c for d in POLICY_DOCS for c in d["metadata"]["controls"]}
    assert set(rows) == used


@pytest.mark.parametrize("path", sorted(p for p in ACTIONS.glob("*.json")
                                       if p.name != "typo.json" and not p.name.endswith(".findings.json")),
                         ids=lambda p: p.name)
def test_example_actions_are_valid(path: Path) -> None:
    from lictor.model import Action

    Action.from_dict(json.loads(path.read_text(encoding="utf-8")))


def test_eval_blocks_the_large_credit_example() -> None:
    result = run_cli(["eval", "--policies", str(POLICIES), str(ACTIONS / "credit-large.json")])
    assert result.exit_code == 0, result.output
    decision = json.loads(result.output)
    assert decision["verdict"] == "BLOCK"
    assert [r["rule"] for r in decision["reasons"]] == ["large-credit-needs-approval"]
    assert decision["reasons"][0]["approval"]["approvers"] == ["role:credit-officer"]


def test_eval_reads_json_lines() -> None:
    result = run_cli(["eval", "--policies", str(POLICIES), str(ACTIONS / "batch.jsonl")])
    assert result.exit_code == 0, result.output
    verdicts = [json.loads(line)["verdict"] for line in result.output.splitlines() if line.strip()]
    assert verdicts == ["ALLOW", "BLOCK", "LOG"]
