"""``lictor reviews``: list, show, approve and reject on the deployment's database with a reviewer key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lictor.runtime import open_audit_reader
from tests.cli.conftest import EXAMPLES, run_cli
from tests.test_webhooks import SECRET, TOKEN, Receiver, receiver  # noqa: F401 -- the receiver fixture

LARGE = {"system": "credit-scoring", "kind": "tool_call", "name": "approve_credit",
         "args": {"amount": 150000, "customer_id": "C-42"}, "context": {"confidence": 0.93},
         "principal": {"id": "alice"}}


@pytest.fixture
def held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "large.json").write_text(json.dumps(LARGE))
    code, out, err = run_cli("eval", "--policies", str(EXAMPLES / "policies"), "--db", "sqlite:///lictor.db",
                             "large.json", cwd=tmp_path)
    assert code == 0, err
    decision = json.loads(out)
    assert decision["verdict"] == "BLOCK" and decision["review"]["status"] == "pending"
    return str(decision["review"]["id"])


def key(tmp_path: Path, user: str, roles: str = "credit-officer", scope: str = "reviewer") -> str:
    code, out, err = run_cli("keys", "create", "--scope", scope, "--user", user, "--roles", roles,
                             "--db", "sqlite:///lictor.db", cwd=tmp_path)
    assert code == 0, err
    return out.strip()


def test_list_show_approve(held: str, tmp_path: Path) -> None:
    code, out, _ = run_cli("reviews", "list", "--status", "pending", "--db", "sqlite:///lictor.db", cwd=tmp_path)
    assert code == 0 and out.startswith(f"{held}\tpending\tcredit-scoring\trole:credit-officer\t")
    code, out, _ = run_cli("reviews", "show", held, "--db", "sqlite:///lictor.db", cwd=tmp_path)
    shown = json.loads(out)
    assert shown["action"]["args"]["amount"] == 150000 and shown["principal_id"] == "alice"
    code, out, _ = run_cli("reviews", "list", "--json", "--db", "sqlite:///lictor.db", cwd=tmp_path)
    assert json.loads(out)["id"] == held
    bob = key(tmp_path, "bob")
    code, out, err = run_cli("reviews", "approve", held, "--key", bob, "--comment", "fine", "--db",
                             "sqlite:///lictor.db", cwd=tmp_path)
    assert code == 0, err
    assert out.strip() == f"{held} approved"
    (tmp_path / "approved.json").write_text(json.dumps({**LARGE, "approval": held}))
    code, out, _ = run_cli("eval", "--policies", str(EXAMPLES / "policies"), "--db", "sqlite:///lictor.db",
                           "approved.json", cwd=tmp_path)
    assert json.loads(out)["verdict"] == "ALLOW"
    code, _, _ = run_cli("audit", "verify", "--db", "sqlite:///lictor.db", cwd=tmp_path)
    assert code == 0


@pytest.mark.parametrize(("user", "roles", "scope", "args", "message"), [
    ("alice", "credit-officer", "reviewer", ["approve"], "four eyes"),
    ("eve", "analyst", "reviewer", ["approve"], "not one of the approvers"),
    ("bob", "credit-officer", "auditor", ["approve"], "needs reviewer"),
    ("bob", "credit-officer", "reviewer", ["reject", "--comment", " "], "needs a comment"),
])
def test_refusals_exit_2(held: str, tmp_path: Path, user: str, roles: str, scope: str, args: list[str],
                         message: str) -> None:
    text = key(tmp_path, user, roles, scope)
    code, _, err = run_cli("reviews", args[0], held, "--key", text, *args[1:], "--db", "sqlite:///lictor.db",
                           cwd=tmp_path)
    assert code == 2 and message in err


def test_a_key_is_required_and_unknown_reviews_are_errors(held: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LICTOR_REVIEWER_KEY", raising=False)
    code, _, err = run_cli("reviews", "approve", held, "--db", "sqlite:///lictor.db", cwd=tmp_path)
    assert code == 2 and "--key" in err
    code, _, err = run_cli("reviews", "show", "rev_none", "--db", "sqlite:///lictor.db", cwd=tmp_path)
    assert code == 2 and "no review" in err
    monkeypatch.setenv("LICTOR_REVIEWER_KEY", key(tmp_path, "bob"))
    code, _, err = run_cli("reviews", "reject", held, "--comment", "no", "--db", "sqlite:///lictor.db", cwd=tmp_path)
    assert code == 0, err


def _config(tmp_path: Path, hook: str) -> None:
    (tmp_path / "lictor.yaml").write_text(json.dumps({
        "database": "sqlite:///lictor.db", "policies": str(EXAMPLES / "policies"),
        "notifications": {"public_url": "https://lictor.example.com",
                          "webhooks": {"role:credit-officer": [{"url": hook, "secret": SECRET}]}}}))


def test_approving_from_the_terminal_sends_the_webhooks_and_records_their_outcome(
        held: str, tmp_path: Path, receiver: Receiver) -> None:  # noqa: F811 -- the imported fixture
    _config(tmp_path, receiver.url)
    bob = key(tmp_path, "bob")
    code, _, err = run_cli("reviews", "approve", held, "--key", bob, "--comment", "fine", cwd=tmp_path)
    assert code == 0, err
    approved = [r.json for r in receiver.requests if r.json["type"] == "review.approved"]
    assert len(approved) == 1  # sent before the command ended
    assert approved[0]["review_id"] == held and approved[0]["reviewer"] == "bob"
    assert approved[0]["link"] == f"https://lictor.example.com/v1/reviews/{held}"
    reader = open_audit_reader("sqlite:///lictor.db")
    try:
        leaves = [json.loads(data) for data in reader.leaves() if data]
    finally:
        reader.close()
    notified = [leaf for leaf in leaves if leaf.get("event") == "notified"]
    assert [(n["notification"], n["outcome"], n["group"]) for n in notified] == [
        ("review.approved", "delivered", "role:credit-officer")]
    assert TOKEN not in json.dumps(leaves)
    code, _, _ = run_cli("audit", "verify", cwd=tmp_path)
    assert code == 0


def test_stats_and_time_windows(held: str, tmp_path: Path) -> None:
    bob = key(tmp_path, "bob")
    run_cli("reviews", "approve", held, "--key", bob, "--db", "sqlite:///lictor.db", cwd=tmp_path)
    code, out, err = run_cli("reviews", "stats", "--json", "--system", "credit-scoring", "--db",
                             "sqlite:///lictor.db", cwd=tmp_path)
    assert code == 0, err
    stats = json.loads(out)
    assert stats["total"] == 1 and stats["by_status"]["approved"] == 1
    assert stats["decided"] == {"approved": 1, "rejected": 0, "approval_rate": 1.0}
    assert stats["reviewers"]["bob"]["approved"] == 1 and stats["time_to_decision"]["count"] == 1
    code, out, _ = run_cli("reviews", "stats", "--db", "sqlite:///lictor.db", cwd=tmp_path)
    assert code == 0 and "reviewer bob\tapproved 1, rejected 0, approval rate 100%" in out
    future = "2999-01-01T00:00:00Z"
    code, out, _ = run_cli("reviews", "stats", "--json", "--since", future, "--db", "sqlite:///lictor.db",
                           cwd=tmp_path)
    assert json.loads(out)["total"] == 0
    code, out, _ = run_cli("reviews", "list", "--until", future, "--db", "sqlite:///lictor.db", cwd=tmp_path)
    assert out.startswith(held)
    code, out, _ = run_cli("reviews", "list", "--since", future, "--db", "sqlite:///lictor.db", cwd=tmp_path)
    assert code == 0 and out == ""
    code, _, err = run_cli("reviews", "list", "--since", "2026-01-01T00:00:00", "--db", "sqlite:///lictor.db",
                           cwd=tmp_path)
    assert code == 2 and "--since" in err and "time zone" in err
