"""Several `lictor serve` processes on one PostgreSQL schema and one Redis prefix: one log, one
policy revision, one set of `limit` counters."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from lictor.cli import main
from tests.http.conftest import LARGE, POLICY
from tests.http.process import serve

REFUNDS = """apiVersion: lictor/v1
kind: Policy
metadata: {name: refunds}
spec:
  target: {names: [issue_refund]}
  rules:
    - name: velocity
      limit: {key: agent.id, max: 3, per: 1h}
      verdict: BLOCK
      message: At most 3 refunds an hour
"""

REFUND = {"system": "support-bot", "kind": "tool_call", "name": "issue_refund", "args": {"amount": 20},
          "agent": {"id": "bot-1"}}


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str, redis_url: str) -> Path:
    """A settings file naming the test's schema, Redis prefix, policies and key files."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("LICTOR_")]:
        monkeypatch.delenv(name)
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "credit.yaml").write_text(POLICY)
    (policies / "refunds.yaml").write_text(REFUNDS)
    config = tmp_path / "lictor.yaml"
    config.write_text(f"database: {json.dumps(postgres_url)}\nredis: {json.dumps(redis_url)}\n"
                      f"policies: {policies}\naudit:\n  origin: lictor.test/processes\n"
                      f"  key_file: {tmp_path / 'audit.key'}\n  payload_key_file: {tmp_path / 'payload.key'}\n"
                      "  checkpoint_interval: 200ms\n")
    return config


def test_two_processes_share_one_log_one_revision_and_the_limits(deployment: Path, tmp_path: Path) -> None:
    agent = cli("keys", "create", "--scope", "agent", "--config", str(deployment)).strip()
    auth = {"Authorization": f"Bearer {agent}"}
    with serve(["--config", str(deployment)], cwd=tmp_path) as one, \
            serve(["--config", str(deployment)], cwd=tmp_path) as two:
        servers = [one.url, two.url]
        revisions = {httpx.get(f"{url}/v1/policies", headers=auth, timeout=10).json()["revision"] for url in servers}
        assert len(revisions) == 1
        indices = []
        for n in range(6):
            answer = httpx.post(f"{servers[n % 2]}/v1/decide", json=LARGE, headers=auth, timeout=10).json()
            assert answer["verdict"] == "BLOCK"
            indices.append(answer["audit"]["index"])
        assert len(set(indices)) == 6
        verdicts = [httpx.post(f"{servers[n % 2]}/v1/decide", json=REFUND, headers=auth, timeout=10).json()["verdict"]
                    for n in range(5)]
        assert verdicts == ["ALLOW", "ALLOW", "ALLOW", "BLOCK", "BLOCK"]
    cli("audit", "checkpoint", "--config", str(deployment))
    report = json.loads(cli("audit", "verify", "--config", str(deployment), "--json"))
    assert report["outcome"] == "valid"
    assert report["leaf_types"]["decision"] == 11


def test_demo_with_two_workers_serves_with_the_printed_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with serve(["--demo", "--workers", "2"], cwd=tmp_path) as served:
        agent = next(line.split()[1] for line in served.log.read_text().splitlines() if line.startswith("agent "))
        auth = {"Authorization": f"Bearer {agent}"}
        for _ in range(4):  # the connections may land on either worker
            with httpx.Client(base_url=served.url, headers=auth, timeout=10) as client:
                answer = client.post("/v1/decide", json=LARGE)
                assert answer.status_code == 200 and answer.json()["audit"]["index"] is not None
                assert client.get("/v1/policies").json()["policies"]


def test_demo_without_the_example_policies_is_refused_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("lictor.cli.serve._EXAMPLES", (tmp_path / "nowhere",))
    result = CliRunner().invoke(main, ["serve", "--demo"], catch_exceptions=False)
    assert result.exit_code == 2
    assert "LICTOR_POLICIES" in result.stderr and "example policies" in result.stderr


def test_serve_refuses_a_memory_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LICTOR_DATABASE", "memory://")
    result = CliRunner().invoke(main, ["serve", "--demo"], catch_exceptions=False)
    assert result.exit_code == 2 and "memory://" in result.stderr


APPROVALS = """apiVersion: lictor/v1
kind: Policy
metadata: {name: payouts}
spec:
  target: {names: [payout]}
  rules:
    - name: needs-finance
      verdict: BLOCK
      approval: {approvers: ["role:finance"], ttl: 1h}
"""
PAYOUT = {"system": "treasury", "kind": "tool_call", "name": "payout", "args": {"amount": 9000},
          "agent": {"id": "payout-bot"}, "principal": {"id": "alice"}}


def _waiters(url: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("lictor_review_waiters "):
            return float(line.split()[1])
    return 0.0


@pytest.mark.parametrize("channel", ["redis", "postgres"])
def test_a_long_poll_on_one_process_wakes_on_an_approval_in_another(
        channel: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str, redis_url: str) -> None:
    """Waiters poll only once an hour here: the approval on B can reach the waiter on A within its
    wait only as a signal (Redis pub/sub, or PostgreSQL's NOTIFY without Redis). A wait that times
    out answers the status it started with (pending), so the status tells the two apart."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("LICTOR_")]:
        monkeypatch.delenv(name)
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "payouts.yaml").write_text(APPROVALS)
    config = tmp_path / "lictor.yaml"
    config.write_text(f"database: {json.dumps(postgres_url)}\n"
                      + (f"redis: {json.dumps(redis_url)}\n" if channel == "redis" else "")
                      + f"policies: {tmp_path / 'policies'}\naudit:\n  origin: lictor.test/waiters\n"
                      f"  key_file: {tmp_path / 'audit.key'}\n  payload_key_file: {tmp_path / 'payload.key'}\n"
                      "reviews:\n  poll_interval: 1h\n")
    agent = cli("keys", "create", "--scope", "agent", "--config", str(config)).strip()
    reviewer = cli("keys", "create", "--scope", "reviewer", "--user", "bob", "--roles", "finance",
                   "--config", str(config)).strip()
    with serve(["--config", str(config)], cwd=tmp_path) as one, serve(["--config", str(config)], cwd=tmp_path) as two:
        held = httpx.post(f"{one.url}/v1/decide", json=PAYOUT, headers={"Authorization": f"Bearer {agent}"},
                          timeout=10).json()
        review_id = held["review"]["id"]
        answers: list[httpx.Response] = []
        waiter = threading.Thread(target=lambda: answers.append(httpx.get(
            f"{one.url}/v1/reviews/{review_id}?wait=45", headers={"Authorization": f"Bearer {agent}"}, timeout=60)))
        waiter.start()
        give_up = time.monotonic() + 30
        while _waiters(one.url) < 1:  # approve only once the request waits on process one
            assert time.monotonic() < give_up and waiter.is_alive(), "the waiter never started waiting"
            time.sleep(0.05)
        approved = httpx.post(f"{two.url}/v1/reviews/{review_id}/approve", json={"comment": "ok"},
                              headers={"Authorization": f"Bearer {reviewer}"}, timeout=10)
        assert approved.status_code == 200 and approved.json()["status"] == "approved"
        waiter.join(60)
        assert answers and answers[0].status_code == 200
        assert answers[0].json()["status"] == "approved"  # woken by the signal, not by the hourly poll
